/* config: every setting axllama reads from the environment, in one place, with Ollama's names and
 * parsing rules (docs/spec/ollama-api.md §3.2, §4.1, §4.4, §4.6): `axllama serve`'s OLLAMA_HOST,
 * OLLAMA_MAX_QUEUE, OLLAMA_KEEP_ALIVE, OLLAMA_LOAD_TIMEOUT, OLLAMA_ORIGINS, OLLAMA_DEBUG,
 * AXLLAMA_MODELS, AXLLAMA_TOKENIZER_DIR, AXLLAMA_CACHE, AXLLAMA_STALL_TIMEOUT,
 * AXLLAMA_RESET_EVERY_TURN, AXLLAMA_CONTEXT_RETAIN, AXLLAMA_RESTORE, AXLLAMA_RUNTIME_PROBE and the
 * limits that keep a client from exhausting a small machine (AXLLAMA_MAX_BODY,
 * AXLLAMA_MAX_CONNECTIONS, AXLLAMA_MAX_CONNECTIONS_PER_IP, AXLLAMA_REQUEST_TIMEOUT,
 * AXLLAMA_MAX_QUEUED_BYTES, AXLLAMA_MAX_STOP, AXLLAMA_MAX_TOOLS) (README's configuration table);
 * the client commands' OLLAMA_HOST (read
 * with config_env_value and parse_ollama_host); Go-style durations; a request's keep_alive value.
 * Not settings, so read where they are used: HOME, XDG_*, PATH, and the emulator's own
 * AXLLAMA_EMU_ARGS (a separate program). */
#ifndef AXLLAMA_CONFIG_CONFIG_H
#define AXLLAMA_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct {
    char host[256];         /* listen host ("" = all interfaces, from ":port"); brackets removed from IPv6 */
    int port;               /* listen port */
    size_t max_queue;       /* OLLAMA_MAX_QUEUE, default 512 */
    double keep_alive_s;    /* OLLAMA_KEEP_ALIVE, default 300 (5m); < 0 = forever */
    double load_timeout_s;  /* OLLAMA_LOAD_TIMEOUT, default 300; <= 0 = no limit (stored as 0) */
    char **origins;         /* OLLAMA_ORIGINS entries plus Ollama's defaults, NULL-terminated */
    bool debug;             /* OLLAMA_DEBUG: one more log line per request, the settings at start */
    char *models_dir;       /* AXLLAMA_MODELS, NULL if unset */
    char *tokenizer_dir;    /* AXLLAMA_TOKENIZER_DIR (the built-in model's tokenizer data), NULL if unset */
    char *cache_dir;        /* AXLLAMA_CACHE (where scripts/fetch-tokenizer.sh puts that data), NULL if unset */
    double stall_timeout_s; /* AXLLAMA_STALL_TIMEOUT (seconds or a Go duration), default 60 */
    bool reset_every_turn;  /* AXLLAMA_RESET_EVERY_TURN=1 (make bench's baseline) */
    double context_retain;  /* AXLLAMA_CONTEXT_RETAIN: share of the window a history trim keeps, default 0.5 */
    bool restore;           /* AXLLAMA_RESTORE (default on; "0"/"false" off): background restore */
    double runtime_probe_s; /* AXLLAMA_RUNTIME_PROBE: liveness probe interval of a ready runtime, default 5 */
    /* limits (docs/api.md, "Limits"); the defaults fit a 4 GB Raspberry Pi */
    size_t max_body_bytes;           /* AXLLAMA_MAX_BODY: a request body, default 8 MiB */
    unsigned max_connections;        /* AXLLAMA_MAX_CONNECTIONS: open connections, default 512 */
    unsigned max_connections_per_ip; /* AXLLAMA_MAX_CONNECTIONS_PER_IP: from one client address, default 128 */
    double request_timeout_s;        /* AXLLAMA_REQUEST_TIMEOUT: a request's headers and body, default 60 */
    size_t max_queued_bytes;         /* AXLLAMA_MAX_QUEUED_BYTES: requests held by the engine, default 64 MiB */
    size_t max_stop;                 /* AXLLAMA_MAX_STOP: stop sequences of a request, default 16 */
    size_t max_tools;                /* AXLLAMA_MAX_TOOLS: tool definitions of a request, default 64 */
} server_config;

#define CONFIG_DEFAULT_MAX_BODY ((size_t)8 << 20)
#define CONFIG_DEFAULT_MAX_CONNECTIONS 512u
#define CONFIG_DEFAULT_MAX_CONNECTIONS_PER_IP 128u
#define CONFIG_DEFAULT_REQUEST_TIMEOUT_S 60.0
#define CONFIG_DEFAULT_MAX_QUEUED_BYTES ((size_t)64 << 20)
#define CONFIG_DEFAULT_MAX_STOP 16u
#define CONFIG_DEFAULT_MAX_TOOLS 64u

/* Reads the environment. Every value is trimmed of spaces and surrounding quotes first (Ollama's
 * envconfig.Var); an empty value counts as unset. OLLAMA_KEEP_ALIVE and OLLAMA_LOAD_TIMEOUT take a
 * Go duration or a bare integer of seconds, AXLLAMA_STALL_TIMEOUT and AXLLAMA_RUNTIME_PROBE a positive
 * one, as does AXLLAMA_REQUEST_TIMEOUT; OLLAMA_MAX_QUEUE, AXLLAMA_MAX_CONNECTIONS,
 * AXLLAMA_MAX_CONNECTIONS_PER_IP, AXLLAMA_MAX_STOP and AXLLAMA_MAX_TOOLS a positive integer;
 * AXLLAMA_MAX_BODY and AXLLAMA_MAX_QUEUED_BYTES a positive number of bytes, optionally followed by
 * K, M or G (KiB, MiB, GiB; "KB", "KiB", "B" spellings and any case accepted: "8M", "512KiB");
 * AXLLAMA_CONTEXT_RETAIN a number in (0, 1];
 * AXLLAMA_RESET_EVERY_TURN is on for "1" only; AXLLAMA_RESTORE is off for "0" and "false" (any
 * case); OLLAMA_DEBUG is on
 * for any value but "0" and "false" (any case); OLLAMA_ORIGINS entries are comma-separated (spaces
 * around an entry trimmed, empty entries dropped), followed by Ollama's defaults (http/https
 * localhost, 127.0.0.1, 0.0.0.0 with and without ":*", app:// file:// tauri:// vscode-webview://
 * vscode-file:// with "*"); "*" stays an entry of its own for the CORS code to honour. Bad values
 * fall back to the default with one warning line each (ending in '\n') in *warnings (caller frees;
 * NULL if none; warnings may be NULL). */
void server_config_from_env(server_config *c, char **warnings);
void server_config_free(server_config *c);

/* The variable trimmed by the rules above (spaces, then quotes, then spaces), as an owned copy;
 * NULL when it is unset or empty after trimming. */
char *config_env_value(const char *name);

/* OLLAMA_HOST rules: trims spaces and quotes; no scheme -> http, default port 11434; http:// -> 80,
 * https:// -> 443; ":1234" -> host "" port 1234; "[::1]" or "::1" -> host "::1"; a path is ignored;
 * a bad port -> the default port (of the scheme); bare "ollama.com" -> ollama.com:443. An IP
 * without a port is written in canonical form ("[0:0::1]" -> "::1"). Writes host and port; a host
 * that does not fit in hostlen is replaced by 127.0.0.1 (never a truncated name). */
void parse_ollama_host(const char *value, char *host, size_t hostlen, int *port);

/* Go's time.ParseDuration: "300ms", "1.5h", "2h45m", "-1m", "0"; units ns us µs ms s m h; a bare
 * number other than 0 is an error ("time: missing unit in duration \"300\""). Seconds in *out.
 * false and Go's exact message in err (err may be NULL): time: invalid duration "abc",
 * time: missing unit in duration "1", time: unknown unit "d" in duration "1d"; the range is Go's
 * (about ±292 years). */
bool parse_go_duration(const char *s, double *out, char *err, size_t errlen);

/* A request's keep_alive value: a number (seconds; negative = forever), a duration string, or null
 * (= absent: returns true with *present false). Any other JSON type is an error
 * ("Unsupported type: 'bool'" style message). Negative results become -1 (forever). */
bool parse_keep_alive(const json_t *v, bool *present, double *seconds, char *err, size_t errlen);

#endif
