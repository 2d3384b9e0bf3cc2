/* http_client: axllama's one HTTP client, over libcurl, for every outgoing call: the engine's calls to
 * the runtime, the supervisor's readiness probe, the tokenizer service's proxy to an upstream, the
 * emulator's calls to the tokenizer service, and the CLI's calls to the server.
 *   - libcurl is initialised once, by http_client_global_init() in main() before any thread starts
 *     (http_client_new also makes sure, for tests);
 *   - never signals (CURLOPT_NOSIGNAL); a connect timeout and a total timeout on every call, an idle
 *     timeout on request, and a cap on the answer's body;
 *   - no proxy for a loopback host (127.0.0.0/8, ::1, localhost), whatever http_proxy / HTTPS_PROXY /
 *     ALL_PROXY say: a proxy cannot reach our own children; other hosts follow the environment, as
 *     Go's clients do;
 *   - one handle keeps its connection between calls (keep-alive), so a turn talks to the runtime
 *     over one TCP connection; http_client_connects() counts the connections it opened.
 * A handle is used by one thread at a time; make one per thread. */
#ifndef AXLLAMA_NET_HTTP_CLIENT_H
#define AXLLAMA_NET_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_S 5.0
#define HTTP_CLIENT_DEFAULT_TIMEOUT_S 30.0
#define HTTP_CLIENT_DEFAULT_MAX_BODY ((size_t)16 << 20)

typedef struct http_client http_client;

typedef struct {
    const char *base_url;     /* "http://127.0.0.1:8000" (a trailing '/' is dropped); paths are appended */
    double connect_timeout_s; /* <= 0: HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_S */
    double timeout_s;         /* a call's default total timeout; <= 0: HTTP_CLIENT_DEFAULT_TIMEOUT_S */
    size_t max_body;          /* answers with a larger body fail with HTTPC_TOO_LARGE; 0: 16 MiB */
    bool fresh_connection;    /* open a new connection per call and close it after (probes that must
                                 keep none of a server's few threads busy) */
    const char *user_agent;   /* NULL: none sent */
} http_client_config;

typedef struct {
    const char *method; /* NULL: POST when there is a body, else GET; "HEAD" sends no body back */
    const char *path;   /* appended to base_url, query included ("/encode?uid=..."); NULL: "" */
    const char *body;   /* NULL: no body */
    size_t body_len;
    const char *content_type;   /* of the body; NULL: application/json */
    const char *const *headers; /* NULL-terminated extra "Name: value" lines; may be NULL */
    double timeout_s;           /* this call's total timeout; <= 0: the client's */
    double idle_timeout_s;      /* no byte received for this long ends the call (HTTPC_TIMEOUT); 0: none */
    /* Streaming: the answer's body bytes as they arrive (the reply's body then stays empty); false
     * stops the call (HTTPC_ABORTED). NULL: the body is collected into the reply. */
    bool (*on_data)(void *user, const char *data, size_t n);
    /* Asked about every 100 ms while the call runs; false stops it (HTTPC_ABORTED). May be NULL. */
    bool (*keep_going)(void *user);
    void *user;
} http_call;

typedef enum {
    HTTPC_OK,          /* an answer came; its status is in the reply (any status) */
    HTTPC_UNREACHABLE, /* no connection: refused, unknown host, connect timeout */
    HTTPC_TIMEOUT,     /* the total or idle timeout passed after connecting */
    HTTPC_TOO_LARGE,   /* the answer's body passed max_body */
    HTTPC_ABORTED,     /* keep_going or on_data said stop */
    HTTPC_FAILED,      /* any other failure (connection reset mid-answer, bad URL...) */
} http_client_result;

typedef struct {
    http_client_result result;
    long status;            /* HTTP status; 0 without an answer */
    strbuf body;            /* the answer's body when not streamed; NUL-terminated, data NULL if empty */
    char content_type[128]; /* "" when none */
    char error[256];        /* what failed, for messages; "" on HTTPC_OK */
} http_reply;

/* curl_global_init, once per process; call from main() before starting threads. */
void http_client_global_init(void);

/* NULL only if libcurl cannot make a handle. The config's strings are copied. */
http_client *http_client_new(const http_client_config *cfg);
void http_client_free(http_client *c);

/* Runs one call. Always fills reply (free with http_reply_free) and returns reply->result. */
http_client_result http_client_call(http_client *c, const http_call *call, http_reply *reply);
void http_reply_free(http_reply *r);

/* Shorthands: GET path / POST a JSON body to path. */
http_client_result http_client_get(http_client *c, const char *path, http_reply *reply);
http_client_result http_client_post_json(http_client *c, const char *path, const char *json, http_reply *reply);

/* TCP connections this handle has opened so far (a kept-alive connection counts once). */
unsigned long http_client_connects(const http_client *c);

/* The base URL as configured (no trailing '/'). */
const char *http_client_base_url(const http_client *c);

/* Whether a URL's host is loopback (127.0.0.0/8, ::1, localhost): such a host is never proxied. */
bool http_url_is_loopback(const char *url);

/* s percent-encoded for a query value (caller frees). */
char *http_url_escape(const char *s);

#endif
