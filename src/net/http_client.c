/* http_client: libcurl behind one small interface. See http_client.h.
 *
 * Each handle owns one easy handle and one multi handle: the multi handle's connection cache keeps
 * the connection alive between calls, and driving the transfer with curl_multi_poll in slices of at
 * most 100 ms is what lets keep_going and the idle timeout be checked while a call runs. */
#include "net/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"

#define SLICE_MS 100

struct http_client {
    CURL *easy;
    CURLM *multi;
    char *base_url;
    char *user_agent;
    double connect_timeout_s, timeout_s;
    size_t max_body;
    bool fresh_connection;
    bool no_proxy;
    unsigned long connects;
};

typedef struct {
    const http_call *call;
    http_reply *reply;
    size_t max_body;
    bool too_large;
    bool stopped;
    double last_byte;
} transfer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_client_global_init(void)
{
    pthread_once(&global_once, global_init);
}

/* The host part of an http(s) URL, without brackets, into out. */
static void url_host(const char *url, char *out, size_t n)
{
    out[0] = '\0';
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strpbrk(p, "@/");
    if (at && *at == '@')
        p = at + 1;
    size_t len;
    if (*p == '[') {
        p++;
        const char *end = strchr(p, ']');
        len = end ? (size_t)(end - p) : strlen(p);
    } else {
        len = strcspn(p, ":/?#");
    }
    if (len >= n)
        len = n - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

bool http_url_is_loopback(const char *url)
{
    char host[256];
    url_host(url ? url : "", host, sizeof host);
    if (!strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "0:0:0:0:0:0:0:1"))
        return true;
    unsigned a, b, c, d;
    char rest;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &rest) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}

char *http_url_escape(const char *s)
{
    strbuf out = {0};
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~') {
            sb_putc(&out, (char)*p);
        } else {
            sb_putc(&out, '%');
            sb_putc(&out, hex[*p >> 4]);
            sb_putc(&out, hex[*p & 15]);
        }
    }
    return sb_steal(&out);
}

http_client *http_client_new(const http_client_config *cfg)
{
    http_client_global_init();
    http_client *c = xcalloc(1, sizeof *c);
    c->easy = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->easy || !c->multi) {
        http_client_free(c);
        return NULL;
    }
    const char *base = cfg && cfg->base_url ? cfg->base_url : "";
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    c->base_url = xstrndup(base, n);
    c->user_agent = cfg && cfg->user_agent ? xstrdup(cfg->user_agent) : NULL;
    c->connect_timeout_s =
        cfg && cfg->connect_timeout_s > 0 ? cfg->connect_timeout_s : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_S;
    c->timeout_s = cfg && cfg->timeout_s > 0 ? cfg->timeout_s : HTTP_CLIENT_DEFAULT_TIMEOUT_S;
    c->max_body = cfg && cfg->max_body ? cfg->max_body : HTTP_CLIENT_DEFAULT_MAX_BODY;
    c->fresh_connection = cfg && cfg->fresh_connection;
    c->no_proxy = http_url_is_loopback(c->base_url);
    return c;
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c->base_url);
    free(c->user_agent);
    free(c);
}

unsigned long http_client_connects(const http_client *c)
{
    return c ? c->connects : 0;
}

const char *http_client_base_url(const http_client *c)
{
    return c->base_url;
}

void http_reply_free(http_reply *r)
{
    if (r)
        sb_free(&r->body);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t n = size * nmemb;
    t->last_byte = clock_mono();
    if (t->call->on_data) {
        if (!t->call->on_data(t->call->user, data, n)) {
            t->stopped = true;
            return 0;
        }
        return n;
    }
    if (t->reply->body.len + n > t->max_body) {
        t->too_large = true;
        return 0;
    }
    sb_append(&t->reply->body, data, n);
    return n;
}

static void reply_fail(http_reply *r, http_client_result result, const char *fmt, const char *detail)
{
    r->result = result;
    snprintf(r->error, sizeof r->error, fmt, detail);
}

/* The easy handle set up for one call (the URL and headers are owned by the caller until the end). */
static struct curl_slist *setup_call(http_client *c, const http_call *call, transfer *t, const char *url, char *errbuf)
{
    CURL *e = c->easy;
    curl_easy_reset(e); /* keeps the live connection */
    struct curl_slist *headers = NULL;
    if (call->body) {
        char ctype[160];
        snprintf(ctype, sizeof ctype, "Content-Type: %s", call->content_type ? call->content_type : "application/json");
        headers = curl_slist_append(headers, ctype);
        headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    }
    for (const char *const *h = call->headers; h && *h; h++)
        headers = curl_slist_append(headers, *h);
    double timeout = call->timeout_s > 0 ? call->timeout_s : c->timeout_s;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (c->no_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* "" disables every proxy, the environment's too */
    if (c->fresh_connection) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (c->user_agent)
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    if (call->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
    }
    const char *method = call->method ? call->method : call->body ? "POST" : "GET";
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, call->body ? "POST" : "GET"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return headers;
}

/* Drives the transfer in slices of at most SLICE_MS, asking keep_going and watching the idle
 * timeout between them; libcurl's result code. */
static CURLcode drive(http_client *c, const http_call *call, transfer *t, http_reply *reply)
{
    curl_multi_add_handle(c->multi, c->easy);
    CURLcode code = CURLE_OK;
    for (;;) {
        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *msg;
        int left;
        bool finished = false;
        while ((msg = curl_multi_info_read(c->multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                code = msg->data.result;
                finished = true;
            }
        if (finished)
            break;
        if (call->keep_going && !call->keep_going(call->user)) {
            t->stopped = true;
            break;
        }
        if (call->idle_timeout_s > 0 && clock_mono() - t->last_byte > call->idle_timeout_s) {
            snprintf(reply->error, sizeof reply->error, "no answer for %.0f s", call->idle_timeout_s);
            reply->result = HTTPC_TIMEOUT;
            break;
        }
        curl_multi_poll(c->multi, NULL, 0, SLICE_MS, NULL);
    }
    return code;
}

/* What the call came to: the result, its status and content type, the connections it opened. */
static void conclude(http_client *c, const transfer *t, CURLcode code, const char *errbuf, http_reply *reply)
{
    CURL *e = c->easy;
    long status = 0, connects = 0, request_size = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
        c->connects += (unsigned long)connects;
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &request_size);
    char *ct = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(reply->content_type, sizeof reply->content_type, "%s", ct);
    curl_multi_remove_handle(c->multi, e);
    reply->status = status;
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(code);
    if (reply->result == HTTPC_TIMEOUT) {
        /* the idle timeout, set by drive */
    } else if (t->stopped) {
        reply_fail(reply, HTTPC_ABORTED, "%s", "stopped");
    } else if (t->too_large) {
        snprintf(reply->error, sizeof reply->error, "the answer is larger than %zu bytes", c->max_body);
        reply->result = HTTPC_TOO_LARGE;
    } else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
               (code == CURLE_OPERATION_TIMEDOUT && request_size == 0)) { /* never got to send */
        reply_fail(reply, HTTPC_UNREACHABLE, "%s", detail);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        reply_fail(reply, HTTPC_TIMEOUT, "%s", detail);
    } else if (code != CURLE_OK) {
        reply_fail(reply, HTTPC_FAILED, "%s", detail);
    } else {
        reply->result = HTTPC_OK;
    }
    if (reply->result != HTTPC_OK)
        reply->status = reply->result == HTTPC_ABORTED || reply->result == HTTPC_TOO_LARGE ? status : 0;
}

http_client_result http_client_call(http_client *c, const http_call *call, http_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    transfer t = {.call = call, .reply = reply, .max_body = c->max_body, .last_byte = clock_mono()};
    strbuf url = {0};
    sb_printf(&url, "%s%s", c->base_url, call->path ? call->path : "");
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = setup_call(c, call, &t, url.data, errbuf);
    CURLcode code = drive(c, call, &t, reply);
    conclude(c, &t, code, errbuf, reply);
    curl_slist_free_all(headers);
    sb_free(&url);
    return reply->result;
}

http_client_result http_client_get(http_client *c, const char *path, http_reply *reply)
{
    http_call call = {.method = "GET", .path = path};
    return http_client_call(c, &call, reply);
}

http_client_result http_client_post_json(http_client *c, const char *path, const char *json, http_reply *reply)
{
    http_call call = {.path = path, .body = json ? json : "{}", .body_len = strlen(json ? json : "{}")};
    return http_client_call(c, &call, reply);
}
