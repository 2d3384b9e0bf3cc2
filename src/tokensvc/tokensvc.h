/* tokensvc: the tokenizer service the vendor runtime calls over HTTP (the protocol of the vendor's
 * qwen3_tokenizer_uid.py, see docs/spec/tokenizer-protocol.md): GET /get_uid, /bos_id, /eos_id and
 * POST /reset, /encode, /decode, with per-uid conversation state. Served by net/http_server on a
 * small thread pool; every uid's state has its own lock. The module's files: tokensvc.c (start,
 * stop, the HTTP front and the staging seam), uid_table.c (the uids and their state), protocol.c
 * (the six endpoints), proxy.c (the compatibility mode below).
 *
 * THE SEAM: axllama runs this service in-process, so it decides what the runtime prefills. Before
 * calling the runtime's generate, the engine stages the answer of that uid's next /encode with
 * tok_service_stage_encode() (and, before a runtime reset, the next /reset with
 * tok_service_stage_reset()); the runtime then prefills exactly those ids instead of what the
 * service would compute from the prompt text. The engine learns the runtime's uid from the
 * on_new_uid callback (or tok_service_last_uid()), and receives every piece of generated text
 * straight from the runtime's /decode calls through the on_decode callback (no polling).
 *
 * Where axllama deliberately differs from the vendor script (docs/tokenizer-service.md):
 *   - /decode streams with a decode_stream per uid: complete UTF-8 text is returned at once, only
 *     an incomplete multibyte tail (<= 3 bytes) is held back; invalid bytes become U+FFFD (the
 *     vendor returns "" while its cache holds U+FFFD, which can silence a uid for good). /reset
 *     and /encode start a fresh stream.
 *   - errors have real status codes and a JSON body {"error": "..."} (400 bad request, 404 unknown
 *     uid or endpoint, 405 method, 413 body too large); the service stays up.
 *   - at most max_uids uids are kept (default 4096); creating one more evicts the least recently
 *     used (the vendor never deletes any), never the pinned uid (tok_service_pin_uid: inside `axllama
 *     serve`, the runtime's), so a client that floods GET /get_uid cannot take the runtime's uid away.
 *   - binds 127.0.0.1 by default (the vendor binds 0.0.0.0); with loopback_only (the service inside
 *     `axllama serve`) it also answers 403 to a request from another machine, addressed to another
 *     host (a Host header other than 127.x.x.x, localhost or [::1], with or without a port) or made by
 *     a web page (an Origin, Referer or Sec-Fetch-* header: a browser's cross-site GET /get_uid). The
 *     vendor runtime's client sends none of these. `axllama tokenizer serve --host 0.0.0.0` (a public
 *     bind the user asked for) does not set it.
 *   - a request naming an unknown uid is reported (on_unknown_uid) before its 404, so that the engine
 *     fails the runtime's turn at once instead of waiting for a reply that cannot come.
 *
 * PROXY MODE (compatibility mode, cfg.upstream_url set): every request is forwarded unchanged (the
 * method, the path, the body, and the uid query parameter, the only one the protocol has) to an
 * external tokenizer service (the vendor's qwen3_tokenizer_uid.py) with net/http_client (bounded
 * by upstream_timeout_s; never through an HTTP proxy for a loopback upstream) and its answer (status
 * and body) returned unchanged; nothing is computed here and nothing can be staged (the stage
 * functions return false). The service only watches:
 * on_new_uid gets the uid of a /get_uid answer, on_encode the `diff` of each /encode answer,
 * on_decode the ids and the answered text of each /decode, on_upstream_error every call the
 * upstream failed (no answer: the runtime then gets 502 {"error": ...}; a non-200 answer or a
 * malformed /get_uid, /encode or /decode answer is passed on unchanged and reported). The vendor
 * runtime makes one call at a time, so the callbacks see its calls in order. */
#ifndef AXLLAMA_TOKENSVC_TOKENSVC_H
#define AXLLAMA_TOKENSVC_TOKENSVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* A uid is a UUID4 in its 36-character text form. */
#define TOK_SERVICE_UID_LEN 36

#define TOK_SERVICE_DEFAULT_HOST "127.0.0.1"
#define TOK_SERVICE_DEFAULT_PORT 12345
#define TOK_SERVICE_DEFAULT_THREADS 4
#define TOK_SERVICE_DEFAULT_MAX_BODY ((size_t)8 << 20)
#define TOK_SERVICE_DEFAULT_MAX_UIDS 4096
#define TOK_SERVICE_DEFAULT_TIMEOUT_S 30

typedef struct tok_service tok_service;

/* Called after GET /get_uid created a uid, before the answer is sent. */
typedef void (*tok_service_uid_fn)(void *user, const char *uid);
/* Called for every successful /decode with the ids the runtime sent and the text answered (len
 * bytes, NUL-terminated, possibly empty). Runs on an HTTP thread while that uid's state is locked,
 * so calls for one uid arrive in order; it must be quick and must not call tok_service_*. */
typedef void (*tok_service_decode_fn)(void *user, const char *uid, const int32_t *ids, size_t n_ids, const char *text,
                                      size_t len);

/* Called for every complete request before it is answered: method, path (with the query string)
 * and the raw body (NUL-terminated, len bytes; empty for GET). Runs on an HTTP thread; must be quick
 * and must not call tok_service_*. For logging and for tests that watch the runtime's traffic. */
typedef void (*tok_service_request_fn)(void *user, const char *method, const char *path, const char *body, size_t len);

/* Proxy mode: the diff of a successful /encode answer (what the runtime will prefill). Runs on an
 * HTTP thread before the answer is sent; same rules as on_decode. */
typedef void (*tok_service_encode_fn)(void *user, const char *uid, const int32_t *diff, size_t n_diff);
/* Proxy mode: the upstream failed a call (path without the query; message names the upstream). */
typedef void (*tok_service_error_fn)(void *user, const char *path, const char *message);
/* POST /reset, /encode or /decode named a uid the service does not know (path: "/encode"...). Runs on
 * an HTTP thread before the 404 is answered; same rules as on_decode. */
typedef void (*tok_service_unknown_uid_fn)(void *user, const char *path, const char *uid);

typedef struct {
    const tokenizer *tok;                      /* required; borrowed: must outlive the service, never freed by it */
    const char *host;                          /* NULL: 127.0.0.1 ("localhost" binds IPv4 first) */
    uint16_t port;                             /* 0: an ephemeral port, see tok_service_port() */
    unsigned threads;                          /* 0: TOK_SERVICE_DEFAULT_THREADS */
    size_t max_body_bytes;                     /* 0: 8 MiB; larger request bodies get 413 */
    size_t max_uids;                           /* 0: 4096; more evict the least recently used uid */
    unsigned connection_timeout_s;             /* 0: 30; an idle connection is closed after this */
    tok_service_uid_fn on_new_uid;             /* optional */
    tok_service_decode_fn on_decode;           /* optional */
    tok_service_request_fn on_request;         /* optional */
    tok_service_unknown_uid_fn on_unknown_uid; /* optional */
    bool loopback_only;                        /* refuse other machines, other hosts and web pages (above) */
    const char *upstream_url;                  /* NULL: the normal mode; "http://host:port": proxy mode (above) */
    double upstream_timeout_s;                 /* proxy mode: per forwarded call; <= 0: 30 */
    tok_service_encode_fn on_encode;           /* optional; proxy mode only */
    tok_service_error_fn on_upstream_error;    /* optional; proxy mode only */
    void *user;                                /* passed to the callbacks */
} tok_service_config;

/* Binds, starts serving and returns the service; NULL with a message in err on failure (bad
 * host, port in use, ...). */
tok_service *tok_service_start(const tok_service_config *cfg, char *err, size_t errlen);
/* Stops serving (open connections are closed) and frees everything; NULL is a no-op. */
void tok_service_stop(tok_service *svc);
/* The port actually bound (the ephemeral one when cfg.port was 0). */
uint16_t tok_service_port(const tok_service *svc);

/* Makes uid the pinned uid, never evicted (at most one: a new pin replaces the old). False if uid is
 * unknown (or in proxy mode, where the upstream keeps the uids). */
bool tok_service_pin_uid(tok_service *svc, const char *uid);

/* Copies the uid most recently handed out by GET /get_uid into out (TOK_SERVICE_UID_LEN + 1
 * bytes); false if none yet. */
bool tok_service_last_uid(tok_service *svc, char out[TOK_SERVICE_UID_LEN + 1]);

/* The next POST /encode for uid answers {"token_ids": full, "diff": the last n_diff ids of full}
 * instead of computing them from its text; last_reply is then ignored and the message history is
 * left alone; token_ids becomes full, so a later unstaged /encode diffs against it. The request is
 * still validated. Replaces an earlier stage. False if uid is unknown, n_diff > n_full or an id is
 * out of range. */
bool tok_service_stage_encode(tok_service *svc, const char *uid, const int32_t *full, size_t n_full, size_t n_diff);
/* The next POST /reset for uid answers {"token_ids": ids} (and sets token_ids and the message
 * history to [system prompt of that request]) instead of the rendered system block. Same false
 * cases as above. */
bool tok_service_stage_reset(tok_service *svc, const char *uid, const int32_t *ids, size_t n);
/* Drops what was staged for uid (both kinds); false if uid is unknown. */
bool tok_service_clear_staged(tok_service *svc, const char *uid);

#endif
