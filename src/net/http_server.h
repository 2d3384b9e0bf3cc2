/* http_server: axllama's one HTTP server, on libmicrohttpd, under the Ollama/OpenAI API, the in-process
 * tokenizer service and the emulator of the vendor runtime: the listen socket (net_listen), a route table
 * (method + exact or prefix path), a fallback handler for unrouted requests, request bodies accumulated up
 * to a limit (413), JSON replies, and chunked streaming responses pulled from a producer with short
 * waits, ended (and the producer cancelled) when the client disconnects or the server stops.
 *
 * What the API needs besides is on unless a config field turns it off: Ollama's CORS rules
 * (OLLAMA_ORIGINS) and the Host-header guard of a loopback listener (docs/spec/ollama-api.md §4.2, §4.3),
 * with Go's own Host checks on any listener (400 "malformed Host header", "too many Host headers",
 * "missing required Host header"), gin's 404/405 texts for unrouted requests (replaced by a fallback
 * handler), the early 413 (replaced by handler_takes_oversize), request logging (log_requests).
 *
 * Limits every server has (a client cannot hold the server with slow or idle connections):
 *   - at most max_connections connections, and at most max_connections_per_ip from one address
 *     (further connections are closed as soon as they are accepted);
 *   - at most max_body_bytes_held bytes of request bodies held at once (503 beyond it): parallel large
 *     requests cannot take the machine's memory;
 *   - a deadline for each request: its request line, headers and body must all arrive within
 *     request_timeout_s (from the connection's start for its first request, from the request line
 *     for a later one on a kept-alive connection); a kept-alive connection may stay idle for at
 *     most idle_timeout_s after its last answer, however slowly it trickles bytes. A connection that
 *     misses either is closed without an answer (a watchdog thread shuts its socket down). Nothing
 *     bounds a request once its handler runs (generation may take minutes).
 *
 * Threading (http_server_config.threading):
 *   - HTTP_THREAD_PER_CONNECTION (the default; the API and the emulator): a handler runs on its
 *     connection's thread and may block (waiting for a model to load, collecting a whole answer): it
 *     polls http_request_abandoned() between short waits. Streaming producers are pulled on the same
 *     thread. Measured on the 2-core dev box this mode serves > 20k small keep-alive requests/s (see
 *     docs/api.md), so the epoll pool + suspend/resume alternative buys nothing for the API and would
 *     make streaming handlers far more complex. Connections that run a handler flagged `blocking` have
 *     their idle timeout lifted until the response is complete (libmicrohttpd would otherwise close a
 *     stream that is quiet for longer than the timeout).
 *   - HTTP_THREAD_POOL (the tokenizer service): pool_threads threads share every connection; a handler
 *     holds its pool thread while it runs, so handlers must be quick. */
#ifndef AXLLAMA_NET_HTTP_SERVER_H
#define AXLLAMA_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"

#define HTTP_DEFAULT_MAX_BODY ((size_t)32 << 20)
#define HTTP_DEFAULT_IDLE_TIMEOUT_S 300u
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024u
#define HTTP_DEFAULT_REQUEST_TIMEOUT_S 60.0
#define HTTP_DEFAULT_POOL_THREADS 4u
/* How long a streaming response waits for its producer between checks of the client. */
#define HTTP_STREAM_POLL_S 0.05

#define HTTP_CONTENT_TYPE_JSON "application/json; charset=utf-8"
#define HTTP_CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
#define HTTP_CONTENT_TYPE_NDJSON "application/x-ndjson"

typedef struct http_server http_server;
typedef struct http_conn http_conn; /* private per-request state */

typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query string */
    const char *body;   /* NUL-terminated, "" when there is none */
    size_t body_len;
    http_conn *conn;
    bool body_too_large; /* only with handler_takes_oversize: the body passed the limit and was dropped
                            (body is then "") */
} http_request;

typedef struct http_response http_response;

/* A route's handler. Returns the response to send, or NULL to drop the connection without an
 * answer (only when http_request_abandoned() said the client is gone). */
typedef http_response *(*http_handler)(const http_request *req, void *user);

typedef struct {
    const char *method; /* exact; HEAD is not implied by GET: register it */
    const char *path;   /* exact; or a prefix when it ends in '*': "/v1/models/" + '*' takes any
                           longer path that starts with "/v1/models/" (the handler reads req->path) */
    http_handler handler;
    void *user;
    bool blocking; /* the handler may wait long (generation): lift the idle timeout */
} http_route;

typedef enum {
    HTTP_THREAD_PER_CONNECTION, /* one thread per connection: handlers may block (the default) */
    HTTP_THREAD_POOL,           /* pool_threads threads for every connection: handlers must be quick */
} http_threading;

typedef struct {
    const char *host;         /* NULL: 127.0.0.1; "": all interfaces (IPv6 dual-stack, else IPv4); a name that
                          resolves to both families binds its IPv4 address */
    int port;                 /* 0: an ephemeral port, see http_server_port() */
    const http_route *routes; /* copied (the strings must outlive the server) */
    size_t n_routes;
    const char *const *origins;                /* CORS: allowed Origin patterns (one '*' wildcard each), "*"
                                   alone = all; NULL-terminated, copied; NULL = none */
    size_t max_body_bytes;                     /* 0: HTTP_DEFAULT_MAX_BODY */
    unsigned idle_timeout_s;                   /* keep-alive idle timeout; 0: HTTP_DEFAULT_IDLE_TIMEOUT_S */
    unsigned max_connections;                  /* 0: HTTP_DEFAULT_MAX_CONNECTIONS */
    unsigned max_connections_per_ip;           /* connections one client address may hold at once; 0: no such limit */
    size_t max_body_bytes_held;                /* the bodies of the requests in progress (from their headers until their
                                   answer is complete) take at most this many bytes: a request whose
                                   body would pass it gets 503 before its body is read (a request is
                                   always taken when none is in progress); 0: no such limit */
    double request_timeout_s;                  /* a request's line, headers and body arrive within this (above);
                                   0: HTTP_DEFAULT_REQUEST_TIMEOUT_S */
    void (*log)(void *user, const char *line); /* optional: errors, and requests if log_requests */
    void *log_user;
    bool log_requests; /* one line per request: status, time to first byte, client, path */
    /* Called once per request when its answer is queued (or the client left before it: status 499),
     * on the connection's thread: the method, the pattern of the route whose path it asked for
     * ("/api/chat", "/v1/models/" + '*'; also for a refusal such as a 403 or a 405), NULL when no
     * route has that path, and the status. For metrics. Optional. */
    void (*on_response)(void *user, const char *method, const char *route, unsigned status);
    void *on_response_user;

    /* Unrouted requests (no route has their method and path) run this handler once their body is in,
     * instead of getting gin's 404 / 405 texts. NULL: gin's texts. */
    http_handler fallback;
    void *fallback_user;
    /* Called for every request once its headers are in, before its body is read (req->body is ""; the
     * headers and the query can be read): a response refuses the request at once (its body is never
     * read), NULL lets it go on. Runs after the CORS and Host checks, before routing. Optional. */
    http_handler before_body;
    void *before_body_user;
    /* An oversized body gets no 413 from the server (neither early, from Content-Length, nor once the
     * upload passed the limit): the handler runs with req->body_too_large set and an empty body. */
    bool handler_takes_oversize;
    bool disable_cors;       /* no Origin checks: no 403, no preflight, no Access-Control-* headers */
    bool disable_host_guard; /* no Host-header checks: neither Go's (any listener) nor the DNS-rebinding
                                guard of a loopback listener */
    http_threading threading;
    unsigned pool_threads; /* HTTP_THREAD_POOL: 0 = HTTP_DEFAULT_POOL_THREADS; 1 = the listener's thread */
} http_server_config;

/* Binds and starts serving; NULL with a message in err on failure (bad host, port in use...). */
http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen);
/* Stops accepting, ends running streams (their producers are cancelled), waits for every
 * connection thread and frees. NULL is a no-op. */
void http_server_stop(http_server *srv);
uint16_t http_server_port(const http_server *srv);
/* The address actually bound, for logs: "127.0.0.1:11434", "[::]:11434". */
const char *http_server_address(const http_server *srv);
/* Whether the listener is on a loopback address (then the Host-header guard applies). */
bool http_server_is_loopback(const http_server *srv);

/* A request header (case-insensitive name), or NULL. */
const char *http_request_header(const http_request *req, const char *name);
/* How many times the request has a header (case-insensitive name). */
size_t http_request_header_count(const http_request *req, const char *name);
/* Whether the client's address is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x). */
bool http_request_peer_is_loopback(const http_request *req);
/* A query parameter of the request's URL (percent-decoded), or NULL. */
const char *http_request_query(const http_request *req, const char *name);
/* True when the client has closed its connection, or the server is stopping: a handler that
 * waits must then give up (cancel its work and return NULL). Cheap: one poll() with no wait. */
bool http_request_abandoned(const http_request *req);

/* ---- responses (each returns a new response; the dispatcher sends and frees it) */

/* body is copied. */
http_response *http_response_bytes(unsigned status, const char *content_type, const char *body, size_t len);
/* body must stay valid forever (a literal). */
http_response *http_response_static(unsigned status, const char *content_type, const char *body);
/* body (malloc'ed) is taken over. */
http_response *http_response_take(unsigned status, const char *content_type, char *body, size_t len);
/* The value serialised with http_json_encode, application/json; charset=utf-8. */
http_response *http_response_json(unsigned status, const json_t *value);
/* {"error": message} with the status. */
http_response *http_response_error(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* status with no body. */
http_response *http_response_empty(unsigned status);
/* Adds a header (name and value are copied). */
void http_response_add_header(http_response *resp, const char *name, const char *value);

/* A streamed (chunked) 200 response. The producer is pulled on the connection's thread:
 *   pull:   appends the next bytes to out (e.g. one NDJSON line), waiting at most timeout_s for
 *           them; returns false once the stream is complete (bytes appended by that call are
 *           still sent). Whatever a call appends is sent and flushed at once.
 *   cancel: the client went away, or the server is stopping, before the stream completed.
 *   free:   always called exactly once, at the end (after cancel if any).
 * The state is freed with ops->free even if the response is never sent. */
typedef struct {
    bool (*pull)(void *state, strbuf *out, double timeout_s);
    void (*cancel)(void *state);
    void (*free)(void *state);
} http_stream_ops;

http_response *http_response_stream(const char *content_type, const http_stream_ops *ops, void *state);

/* Compact JSON (jansson) with U+2028, U+2029 and U+0085 written as \u2028, \u2029, \u0085, so
 * that no line splitter (Python's str.splitlines, httpx) can cut a line inside a string. Those
 * characters can only occur inside JSON strings, so the bytes are replaced after serialisation.
 * Returns a malloc'ed NUL-terminated string (length in *len if len is not NULL); NULL only when
 * the value cannot be serialised. */
char *http_json_encode(const json_t *value, size_t *len);

/* A JSON string for any C string (NULL = ""): invalid UTF-8 bytes become U+FFFD, because jansson
 * refuses to build a string from them. Never NULL. */
json_t *http_json_string(const char *s);

#endif
