/* http_server: the HTTP plumbing under axllama's APIs (see http_server.h): listener, routing,
 * bodies, CORS and the Host guard, responses and chunked streaming with disconnect detection. */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/utf8.h"

/* Each connection thread's stack: enough for jansson's recursive parser at its maximum depth
 * (2048) even under AddressSanitizer, and small enough that max_connections threads stay cheap. */
#define HTTP_THREAD_STACK_BYTES ((size_t)2 << 20)

/* Status codes by number: older libmicrohttpd releases name some of them differently. */
#define STATUS_NO_CONTENT 204u
#define STATUS_FORBIDDEN 403u
#define STATUS_NOT_FOUND 404u
#define STATUS_METHOD_NOT_ALLOWED 405u
#define STATUS_CONTENT_TOO_LARGE 413u
#define STATUS_INTERNAL_ERROR 500u

/* gin's default bodies for unrouted requests (Ollama keeps them). */
#define BODY_404 "404 page not found"
#define BODY_405 "405 method not allowed"

/* Ollama's CORS settings (gin-contrib/cors as configured in server/routes.go). */
#define CORS_ALLOW_METHODS "GET,POST,PUT,PATCH,DELETE,HEAD"
#define CORS_ALLOW_HEADERS                                                                              \
    "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,Openai-Beta,X-Stainless-Arch,"       \
    "X-Stainless-Async,X-Stainless-Custom-Poll-Interval,X-Stainless-Helper-Method,X-Stainless-Lang,"    \
    "X-Stainless-Os,X-Stainless-Package-Version,X-Stainless-Poll-Helper,X-Stainless-Retry-Count,"       \
    "X-Stainless-Runtime,X-Stainless-Runtime-Version,X-Stainless-Timeout"
#define CORS_MAX_AGE "43200"

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
} ip_addr;

struct http_server {
    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;
    char address[INET6_ADDRSTRLEN + 16];
    bool loopback;

    http_route *routes;
    size_t n_routes;
    char **origins;
    size_t n_origins;
    bool allow_all_origins;
    size_t max_body;
    unsigned idle_timeout_s;
    void (*log)(void *user, const char *line);
    void *log_user;
    bool log_requests;

    char hostname[256]; /* lower case; "" if unknown */
    ip_addr *local_ips; /* the machine's interface addresses, for the Host guard */
    size_t n_local_ips;

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
    struct timespec start;
};

struct http_response {
    struct MHD_Response *mhd;
    unsigned status;
    struct http_stream *stream; /* streamed responses only */
};

typedef struct http_stream {
    http_stream_ops ops;
    void *state;
    strbuf pending;
    size_t sent; /* bytes of pending already handed to libmicrohttpd */
    bool finished, cancelled;
    http_server *srv;
    int fd;
} http_stream;

/* ------------------------------------------------------------------------------------ logging */

static void logf_(http_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(http_server *srv, const char *fmt, ...)
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

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *srv = cls;
    if (!srv->log)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    logf_(srv, "http: %s", line);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void format_sockaddr(const struct sockaddr *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)outlen);
}

static void log_request(http_conn *c, const char *method, const char *path, unsigned status)
{
    http_server *srv = c->srv;
    if (!srv->log_requests || !srv->log)
        return;
    char client[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info)
        format_sockaddr(info->client_addr, client, sizeof client);
    logf_(srv, "[HTTP] %3u | %10.3fms | %15s | %-7s \"%s\"", status, seconds_since(&c->start) * 1e3, client,
          method, path);
}

/* ------------------------------------------------------------------------------------ JSON */

char *http_json_encode(const json_t *value, size_t *len)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return NULL;
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)s[i + 1];
        if (a == 0xC2 && b == 0x85)
            extra += 4; /* 2 bytes -> "\u0085" */
        else if (a == 0xE2 && b == 0x80 && i + 2 < n &&
                 ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
            extra += 3; /* 3 bytes -> "\u2028" / "\u2029" */
    }
    if (extra == 0) {
        if (len)
            *len = n;
        return s;
    }
    char *out = xmalloc(n + extra + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i];
        if (a == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85) {
            memcpy(out + o, "\\u0085", 6);
            o += 6;
            i += 1;
        } else if (a == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            memcpy(out + o, (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 2;
        } else {
            out[o++] = (char)a;
        }
    }
    out[o] = '\0';
    free(s);
    if (len)
        *len = o;
    return out;
}

json_t *http_json_string(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (utf8_is_valid(s, n))
        return json_stringn(s, n);
    strbuf fixed = {0};
    utf8_append_lossy(&fixed, s, n);
    json_t *v = json_stringn(fixed.data ? fixed.data : "", fixed.len);
    sb_free(&fixed);
    return v;
}

/* ------------------------------------------------------------------------------------ responses */

static http_response *wrap(struct MHD_Response *mhd, unsigned status)
{
    if (!mhd)
        abort(); /* only out of memory: see buf.h's policy */
    http_response *r = xmalloc(sizeof *r);
    r->mhd = mhd;
    r->status = status;
    r->stream = NULL;
    return r;
}

static http_response *with_type(http_response *r, const char *content_type)
{
    if (content_type)
        MHD_add_response_header(r->mhd, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return r;
}

http_response *http_response_bytes(unsigned status, const char *content_type, const char *body, size_t len)
{
    return with_type(wrap(MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY), status),
                     content_type);
}

http_response *http_response_static(unsigned status, const char *content_type, const char *body)
{
    return with_type(
        wrap(MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT), status),
        content_type);
}

http_response *http_response_take(unsigned status, const char *content_type, char *body, size_t len)
{
    return with_type(wrap(MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE), status),
                     content_type);
}

http_response *http_response_empty(unsigned status)
{
    return wrap(MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT), status);
}

http_response *http_response_json(unsigned status, const json_t *value)
{
    size_t len;
    char *text = http_json_encode(value, &len);
    if (!text)
        return http_response_static(STATUS_INTERNAL_ERROR, HTTP_CONTENT_TYPE_JSON,
                                    "{\"error\":\"cannot serialise the response\"}");
    return http_response_take(status, HTTP_CONTENT_TYPE_JSON, text, len);
}

http_response *http_response_error(unsigned status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *obj = json_object();
    json_object_set_new(obj, "error", http_json_string(msg));
    http_response *r = http_response_json(status, obj);
    json_decref(obj);
    return r;
}

void http_response_add_header(http_response *resp, const char *name, const char *value)
{
    MHD_add_response_header(resp->mhd, name, value);
}

static void response_free(http_response *r)
{
    MHD_destroy_response(r->mhd); /* a stream's state goes with it (stream_free) */
    free(r);
}

/* ------------------------------------------------------------------------------------ streaming */

/* The peer closed (FIN or RST) or the socket is gone. Pipelined request bytes do not count. */
static bool socket_closed(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void stream_cancel(http_stream *s)
{
    if (!s->finished && !s->cancelled) {
        s->cancelled = true;
        if (s->ops.cancel)
            s->ops.cancel(s->state);
    }
}

/* libmicrohttpd asks for the next bytes of the chunked body. Runs on the connection's thread (so
 * it may wait); waits in HTTP_STREAM_POLL_S steps, checking the client and the server between. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_stream *s = cls;
    for (;;) {
        if (s->sent < s->pending.len) {
            size_t n = s->pending.len - s->sent;
            if (n > max)
                n = max;
            memcpy(buf, s->pending.data + s->sent, n);
            s->sent += n;
            if (s->sent == s->pending.len) {
                sb_clear(&s->pending);
                s->sent = 0;
            }
            return (ssize_t)n;
        }
        if (s->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->cancelled || atomic_load(&s->srv->stopping) || socket_closed(s->fd)) {
            stream_cancel(s);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!s->ops.pull(s->state, &s->pending, HTTP_STREAM_POLL_S))
            s->finished = true;
    }
}

static void stream_free(void *cls)
{
    http_stream *s = cls;
    stream_cancel(s); /* the connection died before the end (write error, shutdown) */
    if (s->ops.free)
        s->ops.free(s->state);
    sb_free(&s->pending);
    free(s);
}

http_response *http_response_stream(const char *content_type, const http_stream_ops *ops, void *state)
{
    http_stream *s = xcalloc(1, sizeof *s);
    s->ops = *ops;
    s->state = state;
    s->fd = -1;
    /* the block size bounds one read; our lines go out as soon as they exist anyway */
    struct MHD_Response *mhd = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s,
                                                                 stream_free);
    http_response *r = with_type(wrap(mhd, 200), content_type);
    r->stream = s;
    return r;
}

/* ------------------------------------------------------------------------------------ requests */

const char *http_request_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn->mhd, MHD_HEADER_KIND, name);
}

static int conn_fd(http_conn *c)
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
    return atomic_load(&c->srv->stopping) || socket_closed(conn_fd(c));
}

/* ------------------------------------------------------------------------------------ CORS + Host */

static bool origin_matches(const char *pattern, const char *origin)
{
    const char *star = strchr(pattern, '*');
    if (!star)
        return strcasecmp(pattern, origin) == 0;
    size_t pre = (size_t)(star - pattern), suf = strlen(star + 1), n = strlen(origin);
    return n >= pre + suf && strncasecmp(origin, pattern, pre) == 0 && strcasecmp(origin + n - suf, star + 1) == 0;
}

static bool origin_allowed(const http_server *srv, const char *origin)
{
    if (srv->allow_all_origins)
        return true;
    for (size_t i = 0; i < srv->n_origins; i++)
        if (origin_matches(srv->origins[i], origin))
            return true;
    return false;
}

/* "http://" + host or "https://" + host: the page talks to its own origin. */
static bool same_origin(const char *origin, const char *host)
{
    if (!host)
        return false;
    const char *rest = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    return rest && strcmp(rest, host) == 0;
}

static bool ipv4_special(const unsigned char *a)
{
    return a[0] == 127                                  /* loopback */
           || a[0] == 10                                /* private */
           || (a[0] == 172 && (a[1] & 0xF0) == 16)      /* private */
           || (a[0] == 192 && a[1] == 168)              /* private */
           || (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0); /* unspecified */
}

static bool ip_is_local(const http_server *srv, const ip_addr *ip)
{
    for (size_t i = 0; i < srv->n_local_ips; i++)
        if (srv->local_ips[i].family == ip->family &&
            memcmp(srv->local_ips[i].addr, ip->addr, ip->family == AF_INET ? 4 : 16) == 0)
            return true;
    return false;
}

/* Go's netip rules as Ollama's allowedHostsMiddleware uses them: loopback, private, unspecified,
 * or one of this machine's addresses. */
static bool host_ip_allowed(const http_server *srv, const ip_addr *ip)
{
    if (ip->family == AF_INET)
        return ipv4_special(ip->addr) || ip_is_local(srv, ip);
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (memcmp(ip->addr, v4_mapped, 12) == 0) {
        ip_addr v4 = {.family = AF_INET};
        memcpy(v4.addr, ip->addr + 12, 4);
        return ipv4_special(v4.addr) || ip_is_local(srv, &v4);
    }
    static const unsigned char zero[16] = {0};
    bool unspecified = memcmp(ip->addr, zero, 16) == 0;
    bool loopback = memcmp(ip->addr, zero, 15) == 0 && ip->addr[15] == 1;
    bool unique_local = (ip->addr[0] & 0xFE) == 0xFC; /* fc00::/7 */
    return unspecified || loopback || unique_local || ip_is_local(srv, ip);
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

typedef enum { HOST_OK, HOST_PREFLIGHT, HOST_FORBIDDEN } host_verdict;

/* Ollama's DNS-rebinding guard for a loopback listener (spec §4.3). An allowed host *name* (not
 * an IP) answers OPTIONS with 204 itself, as Ollama does. */
static host_verdict check_host(const http_server *srv, const char *host_header, bool is_options)
{
    char host[256];
    const char *h = host_header ? host_header : "";
    size_t n;
    if (h[0] == '[') { /* [v6]:port or [v6] */
        const char *close = strchr(h, ']');
        if (!close)
            return HOST_FORBIDDEN;
        h++;
        n = (size_t)(close - h);
    } else {
        const char *colon = strchr(h, ':');
        n = colon && !strchr(colon + 1, ':') ? (size_t)(colon - h) : strlen(h); /* name:port, or bare v6 */
    }
    if (n >= sizeof host)
        return HOST_FORBIDDEN;
    memcpy(host, h, n);
    host[n] = '\0';

    ip_addr ip;
    if (inet_pton(AF_INET, host, ip.addr) == 1) {
        ip.family = AF_INET;
        return host_ip_allowed(srv, &ip) ? HOST_OK : HOST_FORBIDDEN;
    }
    if (inet_pton(AF_INET6, host, ip.addr) == 1) {
        ip.family = AF_INET6;
        return host_ip_allowed(srv, &ip) ? HOST_OK : HOST_FORBIDDEN;
    }
    bool allowed = n == 0 || strcasecmp(host, "localhost") == 0 ||
                   (srv->hostname[0] && strcasecmp(host, srv->hostname) == 0) ||
                   ends_with_ci(host, n, ".localhost") || ends_with_ci(host, n, ".local") ||
                   ends_with_ci(host, n, ".internal");
    if (!allowed)
        return HOST_FORBIDDEN;
    return is_options ? HOST_PREFLIGHT : HOST_OK;
}

/* ------------------------------------------------------------------------------------ dispatch */

static enum MHD_Result send_response(http_conn *c, http_response *r, const char *method, const char *path)
{
    if (c->cors_origin) {
        MHD_add_response_header(r->mhd, "Access-Control-Allow-Origin", c->cors_origin);
        if (!c->srv->allow_all_origins)
            MHD_add_response_header(r->mhd, "Vary", "Origin");
    }
    if (r->stream) {
        r->stream->srv = c->srv;
        r->stream->fd = conn_fd(c);
    }
    enum MHD_Result ret = MHD_queue_response(c->mhd, r->status, r->mhd);
    log_request(c, method, path, r->status);
    response_free(r);
    return ret;
}

static http_response *preflight_response(const http_server *srv)
{
    http_response *r = http_response_empty(STATUS_NO_CONTENT);
    MHD_add_response_header(r->mhd, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    MHD_add_response_header(r->mhd, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    MHD_add_response_header(r->mhd, "Access-Control-Max-Age", CORS_MAX_AGE);
    if (!srv->allow_all_origins) {
        MHD_add_response_header(r->mhd, "Vary", "Access-Control-Request-Method");
        MHD_add_response_header(r->mhd, "Vary", "Access-Control-Request-Headers");
    }
    return r;
}

/* What happens before routing (gin middleware order: CORS, then the Host guard). Returns a
 * response to send now, or NULL to go on; sets c->cors_origin. */
static http_response *before_routing(http_conn *c, const char *method)
{
    http_server *srv = c->srv;
    bool is_options = strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0;
    const char *host = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "Origin");
    if (origin && *origin && !same_origin(origin, host)) {
        if (!origin_allowed(srv, origin))
            return http_response_empty(STATUS_FORBIDDEN);
        c->cors_origin = srv->allow_all_origins ? "*" : origin;
        if (is_options)
            return preflight_response(srv);
    }
    if (srv->loopback) {
        host_verdict v = check_host(srv, host, is_options);
        if (v == HOST_FORBIDDEN)
            return http_response_empty(STATUS_FORBIDDEN);
        if (v == HOST_PREFLIGHT)
            return http_response_empty(STATUS_NO_CONTENT);
    }
    return NULL;
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

/* The route for method + path, or a 404/405 response. */
static const http_route *find_route(const http_server *srv, const char *method, const char *path,
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
    if (path_known) {
        *fail = http_response_static(STATUS_METHOD_NOT_ALLOWED, "text/plain", BODY_405);
        MHD_add_response_header((*fail)->mhd, MHD_HTTP_HEADER_ALLOW, allow);
    } else {
        *fail = http_response_static(STATUS_NOT_FOUND, "text/plain", BODY_404);
    }
    return NULL;
}

static enum MHD_Result run_handler(http_conn *c, const char *method, const char *path)
{
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
    };
    http_response *r = c->route->handler(&req, c->route->user);
    if (!r) {
        log_request(c, method, path, 499);
        return MHD_NO; /* the client is gone: close */
    }
    return send_response(c, r, method, path);
}

/* The declared body size (0 when absent or chunked: then the limit is checked as it arrives). */
static void declared_body_size(struct MHD_Connection *mhd, unsigned long long *content_length)
{
    const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    *content_length = cl ? strtoull(cl, NULL, 10) : 0;
}

static http_response *too_large(const http_server *srv)
{
    return http_response_error(STATUS_CONTENT_TOO_LARGE, "request body too large (limit %zu bytes)", srv->max_body);
}

/* libmicrohttpd calls this once when the headers are in, then once per piece of body, then once
 * more with *upload_size == 0 when the body is complete. Only refusals (403, 404, 405, 413,
 * preflights) are answered on the first call: answering a normal request there makes
 * libmicrohttpd 0.9.x handle the connection far more slowly (~11k instead of ~70k small
 * keep-alive requests/s on the dev box), so handlers always run on a later call. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *srv = cls;
    http_conn *c = *con_cls;
    if (!c) {
        http_conn first = {.srv = srv, .mhd = mhd, .fd = -1};
        if (srv->log_requests)
            clock_gettime(CLOCK_MONOTONIC, &first.start);
        http_response *early = before_routing(&first, method);
        if (!early)
            first.route = find_route(srv, method, url, &early);
        unsigned long long content_length;
        declared_body_size(mhd, &content_length);
        if (!early && content_length > srv->max_body)
            early = too_large(srv);
        if (early)
            return send_response(&first, early, method, url);
        c = xmalloc(sizeof *c);
        *c = first;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!c->too_large) {
            if (c->body.len + *upload_size > srv->max_body) {
                c->too_large = true;
                sb_free(&c->body);
            } else {
                sb_append(&c->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->too_large)
        return send_response(c, too_large(srv), method, url);
    return run_handler(c, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *mhd, void **con_cls, enum MHD_RequestTerminationCode code)
{
    (void)code;
    http_server *srv = cls;
    http_conn *c = *con_cls;
    if (!c)
        return;
    if (c->timeout_lifted) /* back to the keep-alive idle timeout */
        MHD_set_connection_option(mhd, MHD_CONNECTION_OPTION_TIMEOUT, srv->idle_timeout_s);
    sb_free(&c->body);
    free(c);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------------------------ start/stop */

static bool sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static int bind_and_listen(int family, const struct sockaddr *addr, socklen_t len, bool dual_stack)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual_stack)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Binds host:port and listens. "" = all interfaces: IPv6 dual-stack when possible, else IPv4;
 * a name that resolves to both families binds its IPv4 address first. */
static int open_listener(const char *host, int port, char *err, size_t errlen)
{
    int fd = -1, last_errno = EADDRNOTAVAIL;
    if (!host[0]) {
        struct sockaddr_in6 any6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                    .sin6_addr = IN6ADDR_ANY_INIT};
        fd = bind_and_listen(AF_INET6, (const struct sockaddr *)&any6, sizeof any6, true);
        if (fd < 0) {
            struct sockaddr_in any4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            fd = bind_and_listen(AF_INET, (const struct sockaddr *)&any4, sizeof any4, false);
        }
        if (fd < 0)
            snprintf(err, errlen, "cannot listen on port %d: %s", port, strerror(errno));
        return fd;
    }
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    for (int want = AF_INET, pass = 0; pass < 2 && fd < 0; pass++, want = AF_INET6)
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
            if (ai->ai_family == want) {
                fd = bind_and_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, false);
                if (fd < 0)
                    last_errno = errno;
            }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(last_errno));
    return fd;
}

static void collect_local_ips(http_server *srv)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return;
    size_t cap = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        if (srv->n_local_ips == cap) {
            cap = cap ? cap * 2 : 8;
            srv->local_ips = xrealloc(srv->local_ips, cap * sizeof *srv->local_ips);
        }
        ip_addr *ip = &srv->local_ips[srv->n_local_ips++];
        memset(ip, 0, sizeof *ip);
        ip->family = i->ifa_addr->sa_family;
        if (ip->family == AF_INET)
            memcpy(ip->addr, &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr, 4);
        else
            memcpy(ip->addr, &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr, 16);
    }
    freeifaddrs(ifs);
}

static void server_free(http_server *srv)
{
    for (size_t i = 0; i < srv->n_origins; i++)
        free(srv->origins[i]);
    free(srv->origins);
    free(srv->routes);
    free(srv->local_ips);
    free(srv);
}

http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen)
{
    http_server *srv = xcalloc(1, sizeof *srv);
    atomic_init(&srv->stopping, false);
    srv->listen_fd = -1;
    srv->n_routes = cfg->n_routes;
    srv->routes = xmalloc((cfg->n_routes ? cfg->n_routes : 1) * sizeof *srv->routes);
    if (cfg->n_routes)
        memcpy(srv->routes, cfg->routes, cfg->n_routes * sizeof *srv->routes);
    for (const char *const *o = cfg->origins; o && *o; o++) {
        const char *v = *o;
        while (*v == ' ')
            v++;
        if (!strcmp(v, "*"))
            srv->allow_all_origins = true;
        srv->origins = xrealloc(srv->origins, (srv->n_origins + 1) * sizeof *srv->origins);
        srv->origins[srv->n_origins++] = xstrdup(v);
    }
    srv->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : HTTP_DEFAULT_MAX_BODY;
    srv->idle_timeout_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : HTTP_DEFAULT_IDLE_TIMEOUT_S;
    srv->log = cfg->log;
    srv->log_user = cfg->log_user;
    srv->log_requests = cfg->log_requests;
    if (gethostname(srv->hostname, sizeof srv->hostname) != 0)
        srv->hostname[0] = '\0';
    srv->hostname[sizeof srv->hostname - 1] = '\0';
    collect_local_ips(srv);

    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    if (cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, errlen, "invalid port %d", cfg->port);
        server_free(srv);
        return NULL;
    }
    srv->listen_fd = open_listener(host, cfg->port, err, errlen);
    if (srv->listen_fd < 0) {
        server_free(srv);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(srv->listen_fd, (struct sockaddr *)&ss, &sl);
    srv->loopback = sockaddr_is_loopback(&ss);
    char ip[INET6_ADDRSTRLEN] = "";
    format_sockaddr((const struct sockaddr *)&ss, ip, sizeof ip);
    if (ss.ss_family == AF_INET6) {
        srv->port = ntohs(((const struct sockaddr_in6 *)(const void *)&ss)->sin6_port);
        snprintf(srv->address, sizeof srv->address, "[%s]:%u", ip, (unsigned)srv->port);
    } else {
        srv->port = ntohs(((const struct sockaddr_in *)(const void *)&ss)->sin_port);
        snprintf(srv->address, sizeof srv->address, "%s:%u", ip, (unsigned)srv->port);
    }

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_LISTEN_SOCKET,
        srv->listen_fd, MHD_OPTION_CONNECTION_TIMEOUT, srv->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections ? cfg->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)HTTP_THREAD_STACK_BYTES, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", srv->address);
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
    /* take the listen socket back so that it is closed exactly once, by us */
    if (MHD_quiesce_daemon(srv->daemon) == MHD_INVALID_SOCKET)
        srv->listen_fd = -1; /* libmicrohttpd keeps it and closes it */
    MHD_stop_daemon(srv->daemon);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
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
