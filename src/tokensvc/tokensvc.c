/* tokensvc: the tokenizer service's front (see tokensvc.h): its configuration, start and stop, the
 * HTTP server it runs on (net/http_server with a thread pool, no CORS or Host guard, every request
 * through one handler), what every request goes through before the protocol or the proxy answers it
 * (loopback_only's refusals, the method, the body limit, the request observer, collapsed leading
 * slashes), the pinned uid, and the staging seam the engine drives. */
#include "tokensvc/tokensvc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tokensvc/tokensvc_internal.h"

#define STATUS_FORBIDDEN 403u
#define STATUS_METHOD_NOT_ALLOWED 405u
#define STATUS_CONTENT_TOO_LARGE 413u

/* At most this many connections at once (the runtime keeps one or two). */
#define TOKSVC_MAX_CONNECTIONS 256u

/* ---------------------------------------------------------------- the HTTP front */

static http_response *toksvc_too_large(const tok_service *svc)
{
    return tokproto_error(STATUS_CONTENT_TOO_LARGE, "request body too large (limit %zu bytes)", svc->max_body);
}

/* Whether a Host header names this machine's loopback: 127.x.y.z, localhost or [::1], with or without
 * a port. */
static bool host_is_loopback(const char *host)
{
    char name[64];
    const char *end;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (!end)
            return false;
        end++;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
    }
    size_t n = (size_t)(end - host);
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, host, n);
    name[n] = '\0';
    if (*end == ':') { /* a port: digits only */
        const char *p = end + 1;
        if (!*p)
            return false;
        for (; *p; p++)
            if (*p < '0' || *p > '9')
                return false;
    } else if (*end) {
        return false;
    }
    unsigned char v4[4];
    if (inet_pton(AF_INET, name, v4) == 1)
        return v4[0] == 127;
    return strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0;
}

/* loopback_only: the runtime on this machine, not another machine, another host name or a web page. */
static http_response *toksvc_check_origin(const http_request *req)
{
    if (!http_request_peer_is_loopback(req))
        return tokproto_error(STATUS_FORBIDDEN, "the tokenizer service answers this machine only");
    const char *host = http_request_header(req, "Host");
    if (http_request_header_count(req, "Host") > 1 || (host && !host_is_loopback(host)))
        return tokproto_error(STATUS_FORBIDDEN, "the tokenizer service answers requests to 127.0.0.1, localhost or "
                                                "[::1] only");
    static const char *const browser_headers[] = {"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode"};
    for (size_t i = 0; i < sizeof browser_headers / sizeof browser_headers[0]; i++)
        if (http_request_header(req, browser_headers[i]))
            return tokproto_error(STATUS_FORBIDDEN, "the tokenizer service does not answer web pages");
    return NULL;
}

/* Refusals made as soon as the headers are in: loopback_only's (403), a method other than GET and POST
 * (405), a POST whose declared body is over the limit (413, before it is uploaded). */
static http_response *toksvc_check_headers(const http_request *req, void *user)
{
    tok_service *svc = user;
    if (svc->loopback_only) {
        http_response *refused = toksvc_check_origin(req);
        if (refused)
            return refused;
    }
    bool is_get = !strcmp(req->method, "GET"), is_post = !strcmp(req->method, "POST");
    if (!is_get && !is_post) {
        http_response *r = tokproto_error(STATUS_METHOD_NOT_ALLOWED, "Method not allowed (use GET or POST)");
        if (r)
            http_response_add_header(r, "Allow", "GET, POST");
        return r;
    }
    const char *declared = http_request_header(req, "Content-Length");
    if (is_post && declared) {
        errno = 0;
        unsigned long long n = strtoull(declared, NULL, 10);
        if (errno == ERANGE || n > svc->max_body)
            return toksvc_too_large(svc);
    }
    return NULL;
}

/* Every complete request: shown to the observer, then answered by the proxy or the protocol. An
 * oversized body was dropped (the server leaves the 413 to us): a GET is answered all the same, a
 * POST gets 413. */
static http_response *toksvc_handle(const http_request *req, void *user)
{
    tok_service *svc = user;
    if (svc->on_request) {
        const char *uid = http_request_query(req, "uid");
        strbuf path = {0};
        sb_puts(&path, req->path);
        if (uid)
            sb_printf(&path, "?uid=%s", uid);
        svc->on_request(svc->user, req->method, path.data, req->body, req->body_len);
        sb_free(&path);
    }
    const char *path = req->path;
    while (path[0] == '/' && path[1] == '/')
        path++;
    bool is_get = !strcmp(req->method, "GET");
    if (svc->upstream_url && !req->body_too_large)
        return tokproxy_forward(svc, req, path);
    if (is_get)
        return tokproto_get(svc, req, path);
    if (req->body_too_large)
        return toksvc_too_large(svc);
    return tokproto_post(svc, req, path);
}

/* libmicrohttpd's messages, on stderr as the service's own. */
static void toksvc_log(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "axllama: tokenizer service: %s\n", line);
}

/* net_listen says "cannot resolve listen address 'H': why"; the service has always said "cannot
 * resolve host 'H': why" (its callers and tests read that). */
static void toksvc_word_listen_error(char *err, size_t errlen)
{
    static const char theirs[] = "cannot resolve listen address ", ours[] = "cannot resolve host ";
    size_t n = sizeof theirs - 1;
    if (strncmp(err, theirs, n) != 0)
        return;
    char rest[512];
    snprintf(rest, sizeof rest, "%s", err + n);
    snprintf(err, errlen, "%s%s", ours, rest);
}

/* ---------------------------------------------------------------- start / stop */

tok_service *tok_service_new_unbound(const tok_service_config *cfg)
{
    tok_service *svc = xcalloc(1, sizeof *svc);
    svc->tok = cfg->tok;
    svc->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : TOK_SERVICE_DEFAULT_MAX_BODY;
    svc->on_new_uid = cfg->on_new_uid;
    svc->on_decode = cfg->on_decode;
    svc->on_request = cfg->on_request;
    svc->on_encode = cfg->on_encode;
    svc->on_upstream_error = cfg->on_upstream_error;
    svc->on_unknown_uid = cfg->on_unknown_uid;
    svc->loopback_only = cfg->loopback_only;
    svc->user = cfg->user;
    svc->uids = uid_table_new(cfg->max_uids ? cfg->max_uids : TOK_SERVICE_DEFAULT_MAX_UIDS);
    if (cfg->upstream_url)
        tokproxy_init(svc, cfg->upstream_url,
                      cfg->upstream_timeout_s > 0 ? cfg->upstream_timeout_s : TOK_SERVICE_DEFAULT_TIMEOUT_S);
    return svc;
}

tok_service *tok_service_start(const tok_service_config *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->tok) {
        snprintf(err, errlen, "tokenizer service: no tokenizer given");
        return NULL;
    }
    tok_service *svc = tok_service_new_unbound(cfg);
    http_server_config hcfg = {
        .host = cfg->host ? cfg->host : TOK_SERVICE_DEFAULT_HOST,
        .port = cfg->port,
        .max_body_bytes = svc->max_body,
        .idle_timeout_s = cfg->connection_timeout_s ? cfg->connection_timeout_s : TOK_SERVICE_DEFAULT_TIMEOUT_S,
        .max_connections = TOKSVC_MAX_CONNECTIONS,
        .log = toksvc_log,
        .fallback = toksvc_handle,
        .fallback_user = svc,
        .before_body = toksvc_check_headers,
        .before_body_user = svc,
        .handler_takes_oversize = true,
        .disable_cors = true,
        .disable_host_guard = true,
        .threading = HTTP_THREAD_POOL,
        .pool_threads = cfg->threads ? cfg->threads : TOK_SERVICE_DEFAULT_THREADS,
    };
    svc->http = http_server_start(&hcfg, err, errlen);
    if (!svc->http) {
        toksvc_word_listen_error(err, errlen);
        tok_service_stop(svc);
        return NULL;
    }
    return svc;
}

void tok_service_stop(tok_service *svc)
{
    if (!svc)
        return;
    http_server_stop(svc->http); /* no request runs after this */
    uid_table_free(svc->uids);
    tokproxy_free(svc);
    free(svc);
}

uint16_t tok_service_port(const tok_service *svc)
{
    return http_server_port(svc->http);
}

bool tok_service_pin_uid(tok_service *svc, const char *uid)
{
    return !svc->upstream_url && uid && uid_table_pin(svc->uids, uid);
}

bool tok_service_last_uid(tok_service *svc, char out[TOK_SERVICE_UID_LEN + 1])
{
    return uid_table_last(svc->uids, out);
}

/* ---------------------------------------------------------------- the seam */

bool tok_service_stage_encode(tok_service *svc, const char *uid, const int32_t *full, size_t n_full, size_t n_diff)
{
    if (!uid || n_diff > n_full || (n_full && !full) || !tokproto_ids_in_vocab(svc->tok, full, n_full))
        return false;
    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st)
        return false;
    pthread_mutex_lock(&st->lock);
    iv_clear(&st->staged_full);
    iv_append(&st->staged_full, full, n_full);
    st->staged_diff = n_diff;
    st->has_staged_encode = true;
    pthread_mutex_unlock(&st->lock);
    uid_table_release(svc->uids, st);
    return true;
}

bool tok_service_stage_reset(tok_service *svc, const char *uid, const int32_t *ids, size_t n)
{
    if (!uid || (n && !ids) || !tokproto_ids_in_vocab(svc->tok, ids, n))
        return false;
    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st)
        return false;
    pthread_mutex_lock(&st->lock);
    iv_clear(&st->staged_reset);
    iv_append(&st->staged_reset, ids, n);
    st->has_staged_reset = true;
    pthread_mutex_unlock(&st->lock);
    uid_table_release(svc->uids, st);
    return true;
}

bool tok_service_clear_staged(tok_service *svc, const char *uid)
{
    if (!uid)
        return false;
    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st)
        return false;
    pthread_mutex_lock(&st->lock);
    st->has_staged_encode = false;
    iv_free(&st->staged_full);
    st->has_staged_reset = false;
    iv_free(&st->staged_reset);
    pthread_mutex_unlock(&st->lock);
    uid_table_release(svc->uids, st);
    return true;
}
