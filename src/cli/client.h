/* client: the HTTP client of the `axllama` CLI commands (run, list, ps, show, stop): the server's
 * address from OLLAMA_HOST (read through config: the server's trimming and parsing rules, then
 * 0.0.0.0 -> 127.0.0.1 and :: -> ::1 as Ollama's ConnectableHost does), JSON requests, NDJSON
 * streams delivered line by line, an abort flag (Ctrl-C) checked every 100 ms, a periodic tick
 * callback, and timeouts. Built on net/http_client (so a loopback server is never reached through
 * http_proxy / HTTPS_PROXY / ALL_PROXY); main() calls http_client_global_init() first. */
#ifndef AXLLAMA_CLI_CLIENT_H
#define AXLLAMA_CLI_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct {
    char base[700];    /* "http://127.0.0.1:11434" plus the OLLAMA_HOST path, no trailing '/' */
    char address[300]; /* "127.0.0.1:11434" for messages */
} client;

typedef enum {
    CLIENT_OK = 0,       /* 2xx (and, for a stream, no error line) */
    CLIENT_SERVER_ERROR, /* status >= 400 or an {"error":...} line: error holds the server's message */
    CLIENT_UNREACHABLE,  /* no connection could be made (refused, unknown host, connect timeout) */
    CLIENT_ABORTED,      /* the abort flag was raised, or a line callback asked to stop */
    CLIENT_TRANSPORT,    /* any other failure (reset mid-answer, timeout, bad JSON): error says what */
} client_result;

typedef struct {
    const char *method; /* "GET" or "POST" */
    const char *path;   /* "/api/chat" */
    json_t *body;       /* sent as JSON when not NULL (borrowed) */
    /* Streaming: called for every NDJSON line of a 2xx answer that is not an error line. Returning
     * false stops the transfer (CLIENT_ABORTED). NULL: the whole body is parsed into resp.json. */
    bool (*on_line)(void *user, json_t *line);
    void (*on_tick)(void *user); /* about every 100 ms while the transfer runs (may be NULL) */
    void *user;
    volatile sig_atomic_t *abort; /* checked every 100 ms; non-zero ends with CLIENT_ABORTED */
    double timeout_s;             /* whole transfer (0 = none of its own; a week at most) */
    double idle_timeout_s;        /* no byte received for this long (0 = none) */
} client_req;

typedef struct {
    client_result result;
    long status;  /* HTTP status, 0 without an answer */
    json_t *json; /* the parsed body of a non-streamed answer (NULL if not JSON) */
    char error[1024];
} client_resp;

/* Reads OLLAMA_HOST. client_free releases what client_init took (today nothing). */
void client_init(client *c);
void client_free(client *c);

/* Runs one request. Always fills resp (free with client_resp_free). */
client_result client_do(const client *c, const client_req *req, client_resp *resp);
void client_resp_free(client_resp *resp);

/* "Error: ..." text for a failed request: the server's message, or for CLIENT_UNREACHABLE
 * "could not connect to axllama server at ADDR, is it running? (start it with 'axllama serve')". */
void client_error_text(const client *c, const client_resp *resp, char *out, size_t outlen);

/* Prints "Error: <client_error_text>" to stderr, frees resp and returns 1 (the exit status). */
int client_fail(const client *c, client_resp *resp);

/* Monotonic seconds. */
double client_now(void);

#endif
