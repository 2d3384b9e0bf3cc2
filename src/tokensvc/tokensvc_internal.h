/* tokensvc_internal: what the tokenizer service's files share: the service itself (its settings,
 * callbacks, uid table, HTTP server and proxy clients) and the entry points the HTTP front
 * (tokensvc.c) calls in the protocol handlers (protocol.c) and the proxy (proxy.c). */
#ifndef AXLLAMA_TOKENSVC_TOKENSVC_INTERNAL_H
#define AXLLAMA_TOKENSVC_TOKENSVC_INTERNAL_H

#include <pthread.h>

#include "net/http_client.h"
#include "net/http_server.h"
#include "tokensvc/tokensvc.h"
#include "tokensvc/uid_table.h"

/* Every answer of the service has this type (the vendor's Flask-free script sends it too). */
#define TOKSVC_CONTENT_TYPE "application/json"

/* The proxy's HTTP clients, one per forwarding thread at a time: a call takes an idle one (or makes
 * one) and gives it back, so the connection to the upstream is kept between calls. */
typedef struct {
    pthread_mutex_t lock;
    http_client **idle;
    size_t n_idle, cap_idle;
} tokproxy_clients;

struct tok_service {
    const tokenizer *tok;
    size_t max_body;
    tok_service_uid_fn on_new_uid;
    tok_service_decode_fn on_decode;
    tok_service_request_fn on_request;
    tok_service_encode_fn on_encode;
    tok_service_error_fn on_upstream_error;
    tok_service_unknown_uid_fn on_unknown_uid;
    bool loopback_only;
    void *user;

    uid_table *uids;
    http_server *http;

    char *upstream_url; /* proxy mode when set (no trailing '/') */
    double upstream_timeout_s;
    tokproxy_clients clients;
};

/* ---- tokensvc.c */

/* The service of cfg (cfg->tok required) without its HTTP server: what tok_service_start binds, and
 * what tests and fuzzing (tests/fuzz/fuzz_tokensvc.c) drive through tokproto_get / tokproto_post.
 * Freed with tok_service_stop. */
tok_service *tok_service_new_unbound(const tok_service_config *cfg);

/* ---- protocol.c: the six endpoints (path already without extra leading slashes) */

/* GET /get_uid, /bos_id, /eos_id; anything else is 404 "Invalid GET endpoint". */
http_response *tokproto_get(tok_service *svc, const http_request *req, const char *path);
/* POST /reset, /encode, /decode; anything else is 404 "Invalid POST endpoint". */
http_response *tokproto_post(tok_service *svc, const http_request *req, const char *path);
/* {"error": message} (bytes made valid UTF-8) with the status; NULL only if it cannot be serialised. */
http_response *tokproto_error(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether every id is in the tokenizer's vocabulary. */
bool tokproto_ids_in_vocab(const tokenizer *tok, const int32_t *ids, size_t n);

/* ---- proxy.c: proxy mode */

void tokproxy_init(tok_service *svc, const char *upstream_url, double timeout_s);
void tokproxy_free(tok_service *svc);
/* Forwards the request (GET or POST, path and uid query) and returns the upstream's answer
 * unchanged, or 502 when there is none; reports what it saw through the callbacks. */
http_response *tokproxy_forward(tok_service *svc, const http_request *req, const char *path);

#endif
