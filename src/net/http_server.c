/* http_server: the dispatcher of axllama's one HTTP server (see http_server.h): the listener, the
 * libmicrohttpd daemon and its threads, its connection limits, routing and the fallback, request
 * bodies and their limit, request logging, start and stop. Responses and streaming live in
 * http_response.c, CORS and the Host checks in http_origin.c, the deadlines of slow connections in
 * http_watchdog.c. */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "net/http_server_internal.h"
#include "net/socket.h"

/* Each connection thread's stack: enough for jansson's recursive parser at its maximum depth
 * (2048) even under AddressSanitizer, and small enough that max_connections threads stay cheap. */
#define HTTP_THREAD_STACK_BYTES ((size_t)2 << 20)

/* File descriptors a server needs besides its connections (listener, pipes, the runtime's, logs). */
#define HTTP_SPARE_FDS 64u

/* A message libmicrohttpd repeats (one per refused connection under a flood) is logged once per this
 * many seconds, with how often it came in between. */
#define MHD_LOG_REPEAT_WINDOW_S 10.0

/* Status codes by number: older libmicrohttpd releases name some of them differently. */
#define STATUS_NOT_FOUND 404u
#define STATUS_METHOD_NOT_ALLOWED 405u
#define STATUS_CONTENT_TOO_LARGE 413u
#define STATUS_SERVICE_UNAVAILABLE 503u
/* What the log shows for a request whose client went away before its answer (nginx's code). */
#define STATUS_CLIENT_GONE 499u

/* gin's default bodies for unrouted requests (Ollama keeps them). */
#define BODY_404 "404 page not found"
#define BODY_405 "405 method not allowed"

/* ------------------------------------------------------------------------------------ logging */

static void server_logf(http_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void server_logf(http_server *srv, const char *fmt, ...)
{
    if (!srv->log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv->log(srv->log_user, line);
}

/* libmicrohttpd's own error messages, one line each; a line that repeats within
 * MHD_LOG_REPEAT_WINDOW_S is counted instead, and the count logged with its next appearance. */
static void server_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *srv = cls;
    if (!srv->log)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    double now = clock_mono();
    pthread_mutex_lock(&srv->mhd_log_lock);
    bool repeat = strncmp(line, srv->mhd_log_last, sizeof srv->mhd_log_last - 1) == 0;
    if (repeat && now - srv->mhd_log_at < MHD_LOG_REPEAT_WINDOW_S) {
        srv->mhd_log_repeats++;
        pthread_mutex_unlock(&srv->mhd_log_lock);
        return;
    }
    unsigned long repeats = repeat ? srv->mhd_log_repeats : 0;
    snprintf(srv->mhd_log_last, sizeof srv->mhd_log_last, "%s", line);
    srv->mhd_log_at = now;
    srv->mhd_log_repeats = 0;
    pthread_mutex_unlock(&srv->mhd_log_lock);
    if (repeats)
        server_logf(srv, "http: %s (%lu more times in the last %.0f s)", line, repeats, MHD_LOG_REPEAT_WINDOW_S);
    else
        server_logf(srv, "http: %s", line);
}

static void sockaddr_format_ip(const struct sockaddr *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)outlen);
}

static bool route_path_matches(const char *pattern, const char *path);

/* The on_response hook: the route's pattern (the route that took the request, else the first one
 * with its path), NULL when none has it. */
static void server_report_response(http_conn *c, const char *method, const char *path, unsigned status)
{
    http_server *srv = c->srv;
    if (!srv->on_response)
        return;
    const char *route = c->route && c->route->path[0] ? c->route->path : NULL;
    for (size_t i = 0; !route && i < srv->n_routes; i++)
        if (route_path_matches(srv->routes[i].path, path))
            route = srv->routes[i].path;
    srv->on_response(srv->on_response_user, method, route, status);
}

static void server_log_request(http_conn *c, const char *method, const char *path, unsigned status)
{
    http_server *srv = c->srv;
    server_report_response(c, method, path, status);
    if (!srv->log_requests || !srv->log)
        return;
    char client[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info)
        sockaddr_format_ip(info->client_addr, client, sizeof client);
    server_logf(srv, "[HTTP] %3u | %10.3fms | %15s | %-7s \"%s\"", status, (clock_mono() - c->start) * 1e3, client,
                method, path);
}

/* ------------------------------------------------------------------------------------ requests */

const char *http_request_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn->mhd, MHD_HEADER_KIND, name);
}

typedef struct {
    const char *name;
    size_t count;
} header_counter;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)value;
    header_counter *hc = cls;
    if (key && strcasecmp(key, hc->name) == 0)
        hc->count++;
    return MHD_YES;
}

size_t http_request_header_count(const http_request *req, const char *name)
{
    header_counter hc = {.name = name};
    MHD_get_connection_values(req->conn->mhd, MHD_HEADER_KIND, count_header, &hc);
    return hc.count;
}

bool http_request_peer_is_loopback(const http_request *req)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(req->conn->mhd, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info && info->client_addr && net_sockaddr_is_loopback(info->client_addr);
}

const char *http_request_query(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn->mhd, MHD_GET_ARGUMENT_KIND, name);
}

static int http_conn_fd(http_conn *c)
{
    if (c->fd < 0) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info)
            c->fd = info->connect_fd;
    }
    return c->fd;
}

bool http_request_abandoned(const http_request *req)
{
    http_conn *c = req->conn;
    return atomic_load(&c->srv->stopping) || http_socket_closed(http_conn_fd(c));
}

/* ------------------------------------------------------------------------------------ dispatch */

static enum MHD_Result server_send_response(http_conn *c, http_response *r, const char *method, const char *path)
{
    http_watchdog_handling(&c->srv->watchdog, c->mhd); /* no deadline while the answer goes out */
    http_origin_decorate(c, r);
    if (r->stream)
        http_stream_attach(r->stream, c->srv, c->mhd, http_conn_fd(c));
    enum MHD_Result ret = MHD_queue_response(c->mhd, r->status, r->mhd);
    server_log_request(c, method, path, r->status);
    http_response_free(r);
    return ret;
}

/* A route path is exact, or a prefix when it ends in '*': "/v1/models/" + '*' takes "/v1/models/x"
 * and "/v1/models/a/b", not "/v1/models/". */
static bool route_path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, path, n - 1) == 0 && path[n - 1] != '\0';
    return strcmp(pattern, path) == 0;
}

/* The route for method + path; else the fallback when there is one; else NULL and a 404/405. */
static const http_route *server_find_route(const http_server *srv, const char *method, const char *path,
                                           http_response **fail)
{
    bool path_known = false;
    char allow[128] = "";
    for (size_t i = 0; i < srv->n_routes; i++) {
        const http_route *r = &srv->routes[i];
        if (!route_path_matches(r->path, path))
            continue;
        if (strcmp(r->method, method) == 0)
            return r;
        path_known = true;
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", r->method);
    }
    if (srv->fallback.handler)
        return &srv->fallback;
    if (path_known) {
        *fail = http_response_static(STATUS_METHOD_NOT_ALLOWED, "text/plain", BODY_405);
        MHD_add_response_header((*fail)->mhd, MHD_HTTP_HEADER_ALLOW, allow);
    } else {
        *fail = http_response_static(STATUS_NOT_FOUND, "text/plain", BODY_404);
    }
    return NULL;
}

static enum MHD_Result server_run_handler(http_conn *c, const char *method, const char *path)
{
    http_watchdog_handling(&c->srv->watchdog, c->mhd);
    if (c->route->blocking && !c->timeout_lifted) {
        /* libmicrohttpd would close a connection whose stream stays quiet past the idle timeout */
        MHD_set_connection_option(c->mhd, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
        c->timeout_lifted = true;
    }
    http_request req = {
        .method = method,
        .path = path,
        .body = c->body.data ? c->body.data : "",
        .body_len = c->body.len,
        .conn = c,
        .body_too_large = c->too_large,
    };
    http_response *r = c->route->handler(&req, c->route->user);
    if (!r) {
        server_log_request(c, method, path, STATUS_CLIENT_GONE);
        return MHD_NO; /* the client is gone: close */
    }
    return server_send_response(c, r, method, path);
}

/* The declared body size (0 when absent or chunked: then the limit is checked as it arrives). */
static unsigned long long declared_body_size(struct MHD_Connection *mhd)
{
    const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl ? strtoull(cl, NULL, 10) : 0;
}

static http_response *body_too_large_response(const http_server *srv)
{
    return http_response_error(STATUS_CONTENT_TOO_LARGE, "request body too large (limit %zu bytes)", srv->max_body);
}

static http_response *over_budget_response(const http_server *srv)
{
    return http_response_error(STATUS_SERVICE_UNAVAILABLE,
                               "server busy, please try again.  the requests in progress hold too much data (at "
                               "most %zu bytes at once)",
                               srv->max_body_held);
}

/* Takes n more bytes of the server's body budget for c; false (nothing taken) when that would pass the
 * budget while other requests hold some of it. */
static bool body_budget_take(http_conn *c, size_t n)
{
    http_server *srv = c->srv;
    if (!srv->max_body_held || n == 0)
        return true;
    pthread_mutex_lock(&srv->held_lock);
    bool others = srv->body_bytes_held > c->held;
    bool ok = !others || srv->body_bytes_held + n <= srv->max_body_held;
    if (ok) {
        srv->body_bytes_held += n;
        c->held += n;
    }
    pthread_mutex_unlock(&srv->held_lock);
    return ok;
}

static void body_budget_release(http_conn *c)
{
    http_server *srv = c->srv;
    if (!c->held)
        return;
    pthread_mutex_lock(&srv->held_lock);
    srv->body_bytes_held -= c->held;
    c->held = 0;
    pthread_mutex_unlock(&srv->held_lock);
}

/* What is decided as soon as the headers are in: Go's Host checks, the CORS and Host-guard checks,
 * the user's before_body hook, routing (404/405 when there is no fallback) and a declared oversized
 * body (413). Returns a response to send now, or NULL to read the body; sets c->route. */
static http_response *server_check_headers(http_conn *c, const char *method, const char *url, const char *version)
{
    http_server *srv = c->srv;
    http_response *early = NULL;
    if (srv->host_guard)
        early = http_host_header_check(c, version);
    if (!early && (srv->cors || srv->host_guard))
        early = http_origin_check(c, method);
    if (!early && srv->before_body) {
        http_request req = {.method = method, .path = url, .body = "", .conn = c};
        early = srv->before_body(&req, srv->before_body_user);
    }
    if (!early)
        c->route = server_find_route(srv, method, url, &early);
    unsigned long long declared = early ? 0 : declared_body_size(c->mhd);
    if (!early && !srv->handler_takes_oversize && declared > srv->max_body)
        early = body_too_large_response(srv);
    if (!early && declared <= srv->max_body && !body_budget_take(c, (size_t)declared))
        early = over_budget_response(srv); /* refused before the body is uploaded */
    return early;
}

/* libmicrohttpd calls this once when the headers are in, then once per piece of body, then once
 * more with *upload_size == 0 when the body is complete. Only refusals (403, 404, 405, 413,
 * preflights, the before_body hook's) are answered on the first call: answering a normal request
 * there makes libmicrohttpd 0.9.x handle the connection far more slowly (~11k instead of ~70k small
 * keep-alive requests/s on the dev box), so handlers always run on a later call. */
static enum MHD_Result server_on_access(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
                                        const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    http_server *srv = cls;
    http_conn *c = *con_cls;
    if (!c) {
        http_conn first = {.srv = srv, .mhd = mhd, .fd = -1};
        if (srv->log_requests)
            first.start = clock_mono();
        http_response *early = server_check_headers(&first, method, url, version);
        if (early)
            return server_send_response(&first, early, method, url);
        c = xmalloc(sizeof *c);
        *c = first;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!c->too_large && !c->over_budget) {
            if (*upload_size > srv->max_body - c->body.len) {
                c->too_large = true; /* stop buffering; the answer comes once the upload ends */
                sb_free(&c->body);
            } else if (c->body.len + *upload_size > c->held &&
                       !body_budget_take(c, c->body.len + *upload_size - c->held)) {
                c->over_budget = true; /* a chunked body (or one longer than declared) passed the budget */
                sb_free(&c->body);
            } else {
                sb_append(&c->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->over_budget)
        return server_send_response(c, over_budget_response(srv), method, url);
    if (c->too_large && !srv->handler_takes_oversize)
        return server_send_response(c, body_too_large_response(srv), method, url);
    return server_run_handler(c, method, url);
}

static void server_on_request_done(void *cls, struct MHD_Connection *mhd, void **con_cls,
                                   enum MHD_RequestTerminationCode code)
{
    (void)code;
    http_server *srv = cls;
    http_watchdog_answered(&srv->watchdog, mhd); /* kept alive: the idle deadline starts */
    http_conn *c = *con_cls;
    if (!c)
        return;
    if (c->timeout_lifted) /* back to the keep-alive idle timeout */
        MHD_set_connection_option(mhd, MHD_CONNECTION_OPTION_TIMEOUT, srv->idle_timeout_s);
    body_budget_release(c);
    sb_free(&c->body);
    free(c);
    *con_cls = NULL;
}

/* A request line arrived (libmicrohttpd's URI log callback): the request's deadline starts. */
static void *server_on_request_line(void *cls, const char *uri, struct MHD_Connection *mhd)
{
    (void)uri;
    http_server *srv = cls;
    http_watchdog_request_line(&srv->watchdog, mhd);
    return NULL; /* *con_cls stays NULL until the headers are in */
}

static void server_on_connection(void *cls, struct MHD_Connection *mhd, void **socket_context,
                                 enum MHD_ConnectionNotificationCode code)
{
    http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        http_watchdog_opened(&srv->watchdog, mhd, socket_context);
    else
        http_watchdog_closed(&srv->watchdog, socket_context);
}

/* ------------------------------------------------------------------------------------ start/stop */

static void server_free(http_server *srv)
{
    http_origin_rules_free(&srv->rules);
    pthread_mutex_destroy(&srv->mhd_log_lock);
    pthread_mutex_destroy(&srv->held_lock);
    free(srv->routes);
    free(srv);
}

/* Raises the soft limit on open files (up to the hard one) so that max_connections connections fit:
 * the usual soft limit of 1024 would make accept() fail well before libmicrohttpd's own limit. */
static void server_raise_fd_limit(unsigned max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + HTTP_SPARE_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* Learns the bound address: port, loopback or not, and the text for logs. Returns the family. */
static int server_learn_address(http_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    getsockname(srv->listen_fd, (struct sockaddr *)&ss, &sl);
    srv->loopback = net_sockaddr_is_loopback((const struct sockaddr *)&ss);
    srv->port = net_bound_port(srv->listen_fd);
    char ip[INET6_ADDRSTRLEN] = "";
    sockaddr_format_ip((const struct sockaddr *)&ss, ip, sizeof ip);
    if (ss.ss_family == AF_INET6)
        snprintf(srv->address, sizeof srv->address, "[%s]:%u", ip, (unsigned)srv->port);
    else
        snprintf(srv->address, sizeof srv->address, "%s:%u", ip, (unsigned)srv->port);
    return ss.ss_family;
}

static bool server_start_daemon(http_server *srv, const http_server_config *cfg, int family)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned pool = 0; /* 0 (and 1) mean no pool: the listener's thread serves every connection */
    if (cfg->threading == HTTP_THREAD_POOL)
        pool = cfg->pool_threads ? cfg->pool_threads : HTTP_DEFAULT_POOL_THREADS;
    else
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    if (pool == 1)
        pool = 0; /* libmicrohttpd would warn that it ignores 1 */
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned max_connections = cfg->max_connections ? cfg->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    server_raise_fd_limit(max_connections);
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, server_on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv,
        MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_CONNECTION_TIMEOUT, srv->idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTP_THREAD_STACK_BYTES,
        MHD_OPTION_NOTIFY_COMPLETED, server_on_request_done, srv, MHD_OPTION_NOTIFY_CONNECTION, server_on_connection,
        srv, MHD_OPTION_URI_LOG_CALLBACK, server_on_request_line, srv, MHD_OPTION_END);
    return srv->daemon != NULL;
}

http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen)
{
    if (cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, errlen, "invalid port %d", cfg->port);
        return NULL;
    }
    http_server *srv = xcalloc(1, sizeof *srv);
    atomic_init(&srv->stopping, false);
    pthread_mutex_init(&srv->mhd_log_lock, NULL);
    pthread_mutex_init(&srv->held_lock, NULL);
    srv->n_routes = cfg->n_routes;
    srv->routes = xmalloc((cfg->n_routes ? cfg->n_routes : 1) * sizeof *srv->routes);
    if (cfg->n_routes)
        memcpy(srv->routes, cfg->routes, cfg->n_routes * sizeof *srv->routes);
    srv->fallback = (http_route){.method = "", .path = "", .handler = cfg->fallback, .user = cfg->fallback_user};
    srv->before_body = cfg->before_body;
    srv->before_body_user = cfg->before_body_user;
    srv->handler_takes_oversize = cfg->handler_takes_oversize;
    srv->cors = !cfg->disable_cors;
    srv->host_guard = !cfg->disable_host_guard;
    if (srv->cors || srv->host_guard)
        http_origin_rules_init(&srv->rules, cfg->origins);
    srv->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : HTTP_DEFAULT_MAX_BODY;
    srv->max_body_held = cfg->max_body_bytes_held;
    srv->idle_timeout_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : HTTP_DEFAULT_IDLE_TIMEOUT_S;
    srv->log = cfg->log;
    srv->log_user = cfg->log_user;
    srv->log_requests = cfg->log_requests;
    srv->on_response = cfg->on_response;
    srv->on_response_user = cfg->on_response_user;

    srv->listen_fd = net_listen(cfg->host ? cfg->host : "127.0.0.1", cfg->port, err, errlen);
    if (srv->listen_fd < 0) {
        server_free(srv);
        return NULL;
    }
    int family = server_learn_address(srv);
    double request_timeout = cfg->request_timeout_s > 0 ? cfg->request_timeout_s : HTTP_DEFAULT_REQUEST_TIMEOUT_S;
    if (!http_watchdog_start(&srv->watchdog, request_timeout, srv->idle_timeout_s)) {
        snprintf(err, errlen, "cannot start the HTTP server on %s: no thread for its watchdog", srv->address);
        http_watchdog_stop(&srv->watchdog);
        close(srv->listen_fd);
        server_free(srv);
        return NULL;
    }
    if (!server_start_daemon(srv, cfg, family)) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", srv->address);
        http_watchdog_stop(&srv->watchdog);
        close(srv->listen_fd);
        server_free(srv);
        return NULL;
    }
    return srv;
}

void http_server_stop(http_server *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, true); /* handlers and streams give up within HTTP_STREAM_POLL_S */
    /* libmicrohttpd closes the listen socket it was given. No MHD_quiesce_daemon first: with a
     * thread pool on epoll it races the workers removing the socket from their epoll sets and
     * aborts the process ("Failed to remove listen FD from epoll set"). */
    MHD_stop_daemon(srv->daemon); /* every connection reported closed: nothing is tracked any more */
    srv->listen_fd = -1;
    http_watchdog_stop(&srv->watchdog);
    server_free(srv);
}

uint16_t http_server_port(const http_server *srv)
{
    return srv->port;
}

const char *http_server_address(const http_server *srv)
{
    return srv->address;
}

bool http_server_is_loopback(const http_server *srv)
{
    return srv->loopback;
}
