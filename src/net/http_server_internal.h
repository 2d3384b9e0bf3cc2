/* http_server_internal: what the files of the HTTP server share and nobody else sees: the server and
 * per-request state, the response object, and the entry points of the CORS/Host checks
 * (http_origin.c), of responses and streaming (http_response.c) and of the connection watchdog
 * (http_watchdog.c) that the dispatcher (http_server.c) calls. */
#ifndef AXLLAMA_NET_HTTP_SERVER_INTERNAL_H
#define AXLLAMA_NET_HTTP_SERVER_INTERNAL_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
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

/* Where a connection is in its life, for the watchdog (http_watchdog.c). */
typedef enum {
    HTTP_CONN_AWAITING,  /* accepted; its first request line has not arrived */
    HTTP_CONN_RECEIVING, /* a request line arrived; its headers or body have not all arrived */
    HTTP_CONN_HANDLING,  /* a handler runs or an answer is being made: no deadline */
    HTTP_CONN_SENDING,   /* a streamed answer's bytes wait for the client to take them */
    HTTP_CONN_IDLE,      /* kept alive after an answer, waiting for the next request */
} http_conn_phase;

/* One open connection (libmicrohttpd's socket context), guarded by the watchdog's lock. */
typedef struct http_tracked_conn {
    struct http_tracked_conn *prev, *next;
    int fd;
    http_conn_phase phase;
    double deadline; /* clock_mono() by which the phase must change; 0: none */
} http_tracked_conn;

/* Closes connections that miss their deadline (see http_server.h): a thread that wakes every
 * HTTP_WATCHDOG_TICK_S and shuts down the socket of every late connection (the connection's own
 * thread then closes it; libmicrohttpd reports a closed connection before it closes the socket, so
 * a tracked fd is always still open). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* monotonic: stop */
    http_tracked_conn *head;
    size_t count;
    double request_timeout_s, idle_timeout_s;
    unsigned long closed; /* connections shut down for a missed deadline */
    bool stop;
    bool running;
    pthread_t thread;
} http_watchdog;

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
    size_t max_body_held; /* 0: no limit */
    pthread_mutex_t held_lock;
    size_t body_bytes_held; /* reserved by the requests in progress (held_lock) */
    unsigned idle_timeout_s;
    void (*log)(void *user, const char *line);
    void *log_user;
    bool log_requests;
    void (*on_response)(void *user, const char *method, const char *route, unsigned status);
    void *on_response_user;
    http_watchdog watchdog;
    /* libmicrohttpd's repeated messages (one per refused connection under a flood) are counted, not
     * each logged: the last line and when it was logged, and how often it came again since */
    pthread_mutex_t mhd_log_lock;
    char mhd_log_last[256];
    double mhd_log_at;
    unsigned long mhd_log_repeats;

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
    size_t held; /* bytes of the server's body budget this request holds */
    bool too_large;
    bool over_budget; /* a chunked body passed the server's budget: 503 once it is in */
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

/* Hands a streamed response the server, its connection and the client socket it watches while it
 * waits. */
void http_stream_attach(http_stream *s, http_server *srv, struct MHD_Connection *mhd, int fd);
/* Frees a response after libmicrohttpd queued it (a stream's state goes with the MHD response). */
void http_response_free(http_response *r);
/* True when the peer closed (FIN or RST) or the socket is gone. Pipelined bytes do not count. */
bool http_socket_closed(int fd);

/* ---- http_watchdog.c */

#define HTTP_WATCHDOG_TICK_S 0.25

/* Starts the watchdog's thread; false if it cannot be created. */
bool http_watchdog_start(http_watchdog *w, double request_timeout_s, double idle_timeout_s);
/* Stops the thread and frees what is still tracked (the daemon is stopped first). */
void http_watchdog_stop(http_watchdog *w);
/* libmicrohttpd's connection notifications: a connection opened (its socket context set) or closed. */
void http_watchdog_opened(http_watchdog *w, struct MHD_Connection *mhd, void **socket_context);
void http_watchdog_closed(http_watchdog *w, void **socket_context);
/* A request line arrived / a handler or an early answer runs / an answer is complete. */
void http_watchdog_request_line(http_watchdog *w, struct MHD_Connection *mhd);
void http_watchdog_handling(http_watchdog *w, struct MHD_Connection *mhd);
void http_watchdog_answered(http_watchdog *w, struct MHD_Connection *mhd);
/* A stream handed bytes to libmicrohttpd: the client must take them within the idle timeout (a
 * client that stops reading would otherwise hold its connection and thread for ever). */
void http_watchdog_sending(http_watchdog *w, struct MHD_Connection *mhd);
/* Connections shut down so far for a missed deadline. */
unsigned long http_watchdog_closed_count(http_watchdog *w);

/* ---- http_origin.c */

/* Go's checks of the Host header (net/http's readRequest), on any listener: more than one Host header,
 * one with a byte a host cannot contain, or none on an HTTP/1.1 request is refused with Go's 400 (the
 * connection is then closed). NULL when the header is fine. */
http_response *http_host_header_check(http_conn *c, const char *version);

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
