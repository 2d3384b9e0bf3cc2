/* http_origin: the API's checks of where a request comes from, as Ollama makes them: Go's own checks
 * of the Host header (net/http refuses a malformed one, several, or none on HTTP/1.1, before any
 * handler), CORS per OLLAMA_ORIGINS (gin-contrib/cors as configured in Ollama's server/routes.go) and
 * the DNS-rebinding guard on the Host header of a loopback listener (docs/spec/ollama-api.md §4.2, §4.3).
 * Servers that set disable_cors / disable_host_guard never get here. */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http_server_internal.h"

#define STATUS_NO_CONTENT 204u
#define STATUS_BAD_REQUEST 400u
#define STATUS_FORBIDDEN 403u

/* Ollama's CORS settings. */
#define CORS_ALLOW_METHODS "GET,POST,PUT,PATCH,DELETE,HEAD"
#define CORS_ALLOW_HEADERS                                                                           \
    "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,Openai-Beta,X-Stainless-Arch,"    \
    "X-Stainless-Async,X-Stainless-Custom-Poll-Interval,X-Stainless-Helper-Method,X-Stainless-Lang," \
    "X-Stainless-Os,X-Stainless-Package-Version,X-Stainless-Poll-Helper,X-Stainless-Retry-Count,"    \
    "X-Stainless-Runtime,X-Stainless-Runtime-Version,X-Stainless-Timeout"
#define CORS_MAX_AGE "43200"

/* ------------------------------------------------------------------------------------ set-up */

static void collect_local_ips(http_origin_rules *rules)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return;
    size_t cap = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        if (rules->n_local_ips == cap) {
            cap = cap ? cap * 2 : 8;
            rules->local_ips = xrealloc(rules->local_ips, cap * sizeof *rules->local_ips);
        }
        http_ip_addr *ip = &rules->local_ips[rules->n_local_ips++];
        memset(ip, 0, sizeof *ip);
        ip->family = i->ifa_addr->sa_family;
        if (ip->family == AF_INET)
            memcpy(ip->addr, &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr, 4);
        else
            memcpy(ip->addr, &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr, 16);
    }
    freeifaddrs(ifs);
}

void http_origin_rules_init(http_origin_rules *rules, const char *const *origins)
{
    memset(rules, 0, sizeof *rules);
    for (const char *const *o = origins; o && *o; o++) {
        const char *v = *o;
        while (*v == ' ')
            v++;
        if (!strcmp(v, "*"))
            rules->allow_all_origins = true;
        rules->origins = xrealloc(rules->origins, (rules->n_origins + 1) * sizeof *rules->origins);
        rules->origins[rules->n_origins++] = xstrdup(v);
    }
    if (gethostname(rules->hostname, sizeof rules->hostname) != 0)
        rules->hostname[0] = '\0';
    rules->hostname[sizeof rules->hostname - 1] = '\0';
    collect_local_ips(rules);
}

void http_origin_rules_free(http_origin_rules *rules)
{
    for (size_t i = 0; i < rules->n_origins; i++)
        free(rules->origins[i]);
    free(rules->origins);
    free(rules->local_ips);
    memset(rules, 0, sizeof *rules);
}

/* ------------------------------------------------------------------------------------ CORS */

static bool origin_pattern_matches(const char *pattern, const char *origin)
{
    const char *star = strchr(pattern, '*');
    if (!star)
        return strcasecmp(pattern, origin) == 0;
    size_t pre = (size_t)(star - pattern), suf = strlen(star + 1), n = strlen(origin);
    return n >= pre + suf && strncasecmp(origin, pattern, pre) == 0 && strcasecmp(origin + n - suf, star + 1) == 0;
}

static bool origin_allowed(const http_origin_rules *rules, const char *origin)
{
    if (rules->allow_all_origins)
        return true;
    for (size_t i = 0; i < rules->n_origins; i++)
        if (origin_pattern_matches(rules->origins[i], origin))
            return true;
    return false;
}

/* "http://" + host or "https://" + host: the page talks to its own origin. */
static bool origin_is_same_host(const char *origin, const char *host)
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

static http_response *cors_preflight_response(const http_origin_rules *rules)
{
    http_response *r = http_response_empty(STATUS_NO_CONTENT);
    MHD_add_response_header(r->mhd, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    MHD_add_response_header(r->mhd, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    MHD_add_response_header(r->mhd, "Access-Control-Max-Age", CORS_MAX_AGE);
    if (!rules->allow_all_origins) {
        MHD_add_response_header(r->mhd, "Vary", "Access-Control-Request-Method");
        MHD_add_response_header(r->mhd, "Vary", "Access-Control-Request-Headers");
    }
    return r;
}

void http_origin_decorate(const http_conn *c, http_response *r)
{
    if (!c->cors_origin)
        return;
    MHD_add_response_header(r->mhd, "Access-Control-Allow-Origin", c->cors_origin);
    if (!c->srv->rules.allow_all_origins)
        MHD_add_response_header(r->mhd, "Vary", "Origin");
}

/* ------------------------------------------------------------------------------------ Go's Host checks */

/* The bytes Go's httpguts.ValidHostHeader accepts: letters, digits, and what a host, an IPv6
 * literal with its zone, or a port can contain. */
static bool host_byte_valid(unsigned char b)
{
    if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'))
        return true;
    return b != '\0' && strchr("!$%&'()*+,-.:;=[]_~", b) != NULL;
}

typedef struct {
    size_t count;
    const char *value;
} host_headers;

static enum MHD_Result collect_host(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    host_headers *h = cls;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        h->count++;
        h->value = value ? value : "";
    }
    return MHD_YES;
}

/* Go's answer to a request it cannot read: "400 Bad Request: <why>", and the connection closed. */
static http_response *go_bad_request(const char *why)
{
    char body[128];
    int n = snprintf(body, sizeof body, "400 Bad Request: %s", why);
    http_response *r = http_response_bytes(STATUS_BAD_REQUEST, HTTP_CONTENT_TYPE_TEXT, body, (size_t)n);
    MHD_add_response_header(r->mhd, MHD_HTTP_HEADER_CONNECTION, "close");
    return r;
}

http_response *http_host_header_check(http_conn *c, const char *version)
{
    host_headers h = {0};
    MHD_get_connection_values(c->mhd, MHD_HEADER_KIND, collect_host, &h);
    if (h.count > 1)
        return go_bad_request("too many Host headers");
    if (h.count == 1) {
        for (const unsigned char *p = (const unsigned char *)h.value; *p; p++)
            if (!host_byte_valid(*p))
                return go_bad_request("malformed Host header");
        return NULL;
    }
    bool http11 = version && strcmp(version, MHD_HTTP_VERSION_1_0) != 0 && strcmp(version, "HTTP/0.9") != 0;
    return http11 ? go_bad_request("missing required Host header") : NULL;
}

/* ------------------------------------------------------------------------------------ Host guard */

static bool ipv4_is_special(const unsigned char *a)
{
    return a[0] == 127                                            /* loopback */
           || a[0] == 10                                          /* private */
           || (a[0] == 172 && (a[1] & 0xF0) == 16)                /* private */
           || (a[0] == 192 && a[1] == 168)                        /* private */
           || (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0); /* unspecified */
}

static bool ip_is_local(const http_origin_rules *rules, const http_ip_addr *ip)
{
    for (size_t i = 0; i < rules->n_local_ips; i++)
        if (rules->local_ips[i].family == ip->family &&
            memcmp(rules->local_ips[i].addr, ip->addr, ip->family == AF_INET ? 4 : 16) == 0)
            return true;
    return false;
}

/* Go's netip rules as Ollama's allowedHostsMiddleware uses them: loopback, private, unspecified,
 * or one of this machine's addresses. */
static bool host_ip_allowed(const http_origin_rules *rules, const http_ip_addr *ip)
{
    if (ip->family == AF_INET)
        return ipv4_is_special(ip->addr) || ip_is_local(rules, ip);
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (memcmp(ip->addr, v4_mapped, 12) == 0) {
        http_ip_addr v4 = {.family = AF_INET};
        memcpy(v4.addr, ip->addr + 12, 4);
        return ipv4_is_special(v4.addr) || ip_is_local(rules, &v4);
    }
    static const unsigned char zero[16] = {0};
    bool unspecified = memcmp(ip->addr, zero, 16) == 0;
    bool loopback = memcmp(ip->addr, zero, 15) == 0 && ip->addr[15] == 1;
    bool unique_local = (ip->addr[0] & 0xFE) == 0xFC; /* fc00::/7 */
    return unspecified || loopback || unique_local || ip_is_local(rules, ip);
}

static bool host_ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

typedef enum { HOST_OK, HOST_PREFLIGHT, HOST_FORBIDDEN } host_verdict;

/* Ollama's DNS-rebinding guard for a loopback listener (docs/spec/ollama-api.md §4.3). An allowed host *name* (not
 * an IP) answers OPTIONS with 204 itself, as Ollama does. */
static host_verdict check_host_header(const http_origin_rules *rules, const char *host_header, bool is_options)
{
    char host[256];
    const char *h = host_header ? host_header : "";
    size_t n;
    if (h[0] == '[') { /* [v6]:port or [v6] */
        const char *close_bracket = strchr(h, ']');
        if (!close_bracket)
            return HOST_FORBIDDEN;
        h++;
        n = (size_t)(close_bracket - h);
    } else {
        const char *colon = strchr(h, ':');
        n = colon && !strchr(colon + 1, ':') ? (size_t)(colon - h) : strlen(h); /* name:port, or bare v6 */
    }
    if (n >= sizeof host)
        return HOST_FORBIDDEN;
    memcpy(host, h, n);
    host[n] = '\0';

    http_ip_addr ip;
    if (inet_pton(AF_INET, host, ip.addr) == 1) {
        ip.family = AF_INET;
        return host_ip_allowed(rules, &ip) ? HOST_OK : HOST_FORBIDDEN;
    }
    if (inet_pton(AF_INET6, host, ip.addr) == 1) {
        ip.family = AF_INET6;
        return host_ip_allowed(rules, &ip) ? HOST_OK : HOST_FORBIDDEN;
    }
    bool allowed = n == 0 || strcasecmp(host, "localhost") == 0 ||
                   (rules->hostname[0] && strcasecmp(host, rules->hostname) == 0) ||
                   host_ends_with(host, n, ".localhost") || host_ends_with(host, n, ".local") ||
                   host_ends_with(host, n, ".internal");
    if (!allowed)
        return HOST_FORBIDDEN;
    return is_options ? HOST_PREFLIGHT : HOST_OK;
}

/* ------------------------------------------------------------------------------------ both */

http_response *http_origin_check(http_conn *c, const char *method)
{
    http_server *srv = c->srv;
    bool is_options = strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0;
    const char *host = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (srv->cors) {
        const char *origin = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "Origin");
        if (origin && *origin && !origin_is_same_host(origin, host)) {
            if (!origin_allowed(&srv->rules, origin))
                return http_response_empty(STATUS_FORBIDDEN);
            c->cors_origin = srv->rules.allow_all_origins ? "*" : origin;
            if (is_options)
                return cors_preflight_response(&srv->rules);
        }
    }
    if (srv->host_guard && srv->loopback) {
        host_verdict v = check_host_header(&srv->rules, host, is_options);
        if (v == HOST_FORBIDDEN)
            return http_response_empty(STATUS_FORBIDDEN);
        if (v == HOST_PREFLIGHT)
            return http_response_empty(STATUS_NO_CONTENT);
    }
    return NULL;
}
