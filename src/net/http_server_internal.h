/* http_server_internal: what the three files of the HTTP server share and nobody else sees: the
 * server and per-request state, the response object, and the entry points of the CORS/Host checks
 * (http_origin.c) and of responses and streaming (http_response.c) that the dispatcher
 * (http_server.c) calls. */
#ifndef AXLLAMA_NET_HTTP_SERVER_INTERNAL_H
#define AXLLAMA_NET_HTTP_SERVER_INTERNAL_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdatomic.h>

#include "net/http_server.h"

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
} http_ip_addr;

/* CORS (Ollama's rules) and the Host guard: the origins and the machine's names and addresses. */
typedef struct {
    char **origins;
    size_t n_origins;
    bool allow_all_origins;
    char hostname[256];      /* "" if unknown */
    http_ip_addr *local_ips; /* the machine's interface addresses, for the Host guard */
    size_t n_local_ips;
} http_origin_rules;

struct http_server {
    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;
    char address[INET6_ADDRSTRLEN + 16];
    bool loopback;

    http_route *routes;
    size_t n_routes;
    http_route fallback; /* handler NULL: gin's 404 / 405 */
    http_handler before_body;
    void *before_body_user;
    bool handler_takes_oversize;
    bool cors;       /* Ollama's CORS rules apply */
    bool host_guard; /* the Host guard applies (on a loopback listener) */
    http_origin_rules rules;
    size_t max_body;
    unsigned idle_timeout_s;
    void (*log)(void *user, const char *line);
    void *log_user;
    bool log_requests;
    void (*on_response)(void *user, const char *method, const char *route, unsigned status);
    void *on_response_user;

    atomic_bool stopping;
};

/* Per-request state: libmicrohttpd's con_cls (on the stack only for refusals answered at once). */
struct http_conn {
    http_server *srv;
    struct MHD_Connection *mhd;
    const http_route *route;
    const char *cors_origin; /* Access-Control-Allow-Origin to send, NULL: none */
    int fd;                  /* the client socket, -1 until needed */
    strbuf body;
    bool too_large;
    bool timeout_lifted;
    double start; /* clock_mono() when the headers were in (request logging) */
};

typedef struct http_stream http_stream;

struct http_response {
    struct MHD_Response *mhd;
    unsigned status;
    http_stream *stream; /* streamed responses only */
};

/* ---- http_response.c */

/* Hands a streamed response the server and the client socket it watches while it waits. */
void http_stream_attach(http_stream *s, http_server *srv, int fd);
/* Frees a response after libmicrohttpd queued it (a stream's state goes with the MHD response). */
void http_response_free(http_response *r);
/* True when the peer closed (FIN or RST) or the socket is gone. Pipelined bytes do not count. */
bool http_socket_closed(int fd);

/* ---- http_origin.c */

/* Copies the origin patterns and learns the machine's host name and addresses. */
void http_origin_rules_init(http_origin_rules *rules, const char *const *origins);
void http_origin_rules_free(http_origin_rules *rules);
/* What happens before routing, in gin's middleware order: CORS (when srv->cors), then the Host guard
 * (when srv->host_guard and the listener is loopback). Returns a response to send now (403, a
 * preflight answer), or NULL to go on; sets c->cors_origin. */
http_response *http_origin_check(http_conn *c, const char *method);
/* Adds Access-Control-Allow-Origin (and Vary) when c->cors_origin is set. */
void http_origin_decorate(const http_conn *c, http_response *r);

#endif
