/* proxy: the tokenizer service's compatibility mode (see tokensvc.h, PROXY MODE): every request is
 * forwarded unchanged to an external tokenizer service with net/http_client, its answer is passed
 * back unchanged (502 when there is none), and what the answers say is reported through the
 * callbacks: the new uid, the diff of each /encode, the text of each /decode, every failure. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokensvc/tokensvc_internal.h"

#define STATUS_OK 200
#define STATUS_BAD_GATEWAY 502u

/* ---------------------------------------------------------------- the clients */

void tokproxy_init(tok_service *svc, const char *upstream_url, double timeout_s)
{
    size_t n = strlen(upstream_url);
    while (n && upstream_url[n - 1] == '/')
        n--;
    svc->upstream_url = xstrndup(upstream_url, n);
    svc->upstream_timeout_s = timeout_s;
    pthread_mutex_init(&svc->clients.lock, NULL);
}

void tokproxy_free(tok_service *svc)
{
    if (!svc->upstream_url)
        return;
    for (size_t i = 0; i < svc->clients.n_idle; i++)
        http_client_free(svc->clients.idle[i]);
    free(svc->clients.idle);
    pthread_mutex_destroy(&svc->clients.lock);
    free(svc->upstream_url);
    svc->upstream_url = NULL;
}

/* An idle client, or a new one (at most one per forwarding thread exists). NULL if libcurl fails. */
static http_client *tokproxy_take_client(tok_service *svc)
{
    http_client *c = NULL;
    pthread_mutex_lock(&svc->clients.lock);
    if (svc->clients.n_idle)
        c = svc->clients.idle[--svc->clients.n_idle];
    pthread_mutex_unlock(&svc->clients.lock);
    if (c)
        return c;
    http_client_config cfg = {
        .base_url = svc->upstream_url,
        .connect_timeout_s = svc->upstream_timeout_s,
        .timeout_s = svc->upstream_timeout_s,
        .max_body = svc->max_body,
    };
    return http_client_new(&cfg);
}

static void tokproxy_give_back_client(tok_service *svc, http_client *c)
{
    pthread_mutex_lock(&svc->clients.lock);
    if (svc->clients.n_idle == svc->clients.cap_idle) {
        svc->clients.cap_idle = svc->clients.cap_idle ? 2 * svc->clients.cap_idle : 4;
        svc->clients.idle = xrealloc(svc->clients.idle, svc->clients.cap_idle * sizeof *svc->clients.idle);
    }
    svc->clients.idle[svc->clients.n_idle++] = c;
    pthread_mutex_unlock(&svc->clients.lock);
}

/* ---------------------------------------------------------------- what the answers say */

static void tokproxy_report(tok_service *svc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tokproxy_report(tok_service *svc, const char *path, const char *fmt, ...)
{
    if (!svc->on_upstream_error)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    svc->on_upstream_error(svc->user, path, msg);
}

/* An array of integers as int32 ids (malloc'ed, never NULL); false if it is not one. */
static bool tokproxy_json_ids(json_t *arr, int32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr))
        return false;
    size_t len = json_array_size(arr);
    int32_t *ids = xmalloc((len ? len : 1) * sizeof *ids);
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
            free(ids);
            return false;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    *out = ids;
    *n = len;
    return true;
}

/* Tells the callbacks what a successful answer of the upstream says. */
static void tokproxy_observe(tok_service *svc, const char *path, const http_request *req, const strbuf *answer_body)
{
    bool get_uid = !strcmp(path, "/get_uid"), encode = !strcmp(path, "/encode"), decode = !strcmp(path, "/decode");
    if (!get_uid && !encode && !decode)
        return;
    json_t *answer = json_loadb(answer_body->data ? answer_body->data : "", answer_body->len, 0, NULL);
    json_t *request = decode || encode ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    const char *uid = request ? json_string_value(json_object_get(request, "uid")) : NULL;
    bool ok = false;
    if (get_uid) {
        const char *u = json_string_value(json_object_get(answer, "uid"));
        if (u && strlen(u) <= TOK_SERVICE_UID_LEN) {
            ok = true;
            uid_table_set_last(svc->uids, u);
            if (svc->on_new_uid)
                svc->on_new_uid(svc->user, u);
        }
    } else if (encode) {
        int32_t *diff;
        size_t n;
        if (tokproxy_json_ids(json_object_get(answer, "diff"), &diff, &n)) {
            ok = true;
            if (svc->on_encode)
                svc->on_encode(svc->user, uid ? uid : "", diff, n);
            free(diff);
        }
    } else {
        int32_t *ids;
        size_t n;
        json_t *text = json_object_get(answer, "text");
        if (json_is_string(text) && tokproxy_json_ids(json_object_get(request, "token_ids"), &ids, &n)) {
            ok = true;
            if (svc->on_decode)
                svc->on_decode(svc->user, uid ? uid : "", ids, n, json_string_value(text), json_string_length(text));
            free(ids);
        }
    }
    if (!ok)
        tokproxy_report(svc, path, "tokenizer upstream %s: malformed answer to %s", svc->upstream_url, path);
    json_decref(answer);
    json_decref(request);
}

/* ---------------------------------------------------------------- forwarding */

/* The path with the uid query parameter (the only one the protocol has), escaped again. */
static char *tokproxy_target(const http_request *req, const char *path)
{
    strbuf target = {0};
    sb_puts(&target, path);
    const char *uid = http_request_query(req, "uid");
    if (uid) {
        char *esc = http_url_escape(uid);
        sb_printf(&target, "?uid=%s", esc);
        free(esc);
    }
    return sb_steal(&target);
}

http_response *tokproxy_forward(tok_service *svc, const http_request *req, const char *path)
{
    bool is_get = !strcmp(req->method, "GET");
    http_client *client = tokproxy_take_client(svc);
    if (!client)
        return tokproto_error(STATUS_BAD_GATEWAY, "tokenizer upstream: cannot create an HTTP client");
    char *target = tokproxy_target(req, path);
    http_call call = {
        .method = is_get ? "GET" : "POST",
        .path = target,
        .body = is_get ? NULL : req->body,
        .body_len = is_get ? 0 : req->body_len,
        .content_type = "application/json",
    };
    http_reply reply;
    http_client_call(client, &call, &reply);
    tokproxy_give_back_client(svc, client);
    free(target);

    http_response *answer;
    long code = reply.status;
    if (reply.result != HTTPC_OK || code < 100 || code > 599) {
        const char *why = reply.result == HTTPC_TOO_LARGE ? "answer too large"
                          : reply.result != HTTPC_OK      ? reply.error
                                                          : "bad status";
        tokproxy_report(svc, path, "tokenizer upstream %s: %s %s: %s", svc->upstream_url, req->method, path, why);
        answer = tokproto_error(STATUS_BAD_GATEWAY, "tokenizer upstream %s: %s", svc->upstream_url, why);
    } else {
        if (code == STATUS_OK)
            tokproxy_observe(svc, path, req, &reply.body);
        else if (strcmp(path, "/api/generate_provider") && strcmp(path, "/api/stop"))
            tokproxy_report(svc, path, "tokenizer upstream %s: %s %s answered %ld: %.200s", svc->upstream_url,
                            req->method, path, code, reply.body.data ? reply.body.data : "");
        answer = http_response_bytes((unsigned)code, reply.content_type[0] ? reply.content_type : TOKSVC_CONTENT_TYPE,
                                     reply.body.data ? reply.body.data : "", reply.body.len);
    }
    http_reply_free(&reply);
    return answer;
}
