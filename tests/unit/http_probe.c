/* http_probe: the libcurl client of the in-process server tests (see http_probe.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http_probe.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static char probe_default_base[64];

void probe_base_url(const http_server *srv, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%u", (unsigned)http_server_port(srv));
}

void probe_set_base(const char *base)
{
    snprintf(probe_default_base, sizeof probe_default_base, "%s", base);
}

static void probe_quiet_log(void *user, const char *line)
{
    (void)user;
    (void)line;
}

http_server *probe_start_server(const http_route *routes, size_t n_routes, const char *host, const char *const *origins,
                                size_t max_body)
{
    http_server_config cfg = {
        .host = host,
        .port = 0,
        .routes = routes,
        .n_routes = n_routes,
        .origins = origins,
        .max_body_bytes = max_body,
        .log = probe_quiet_log,
    };
    char err[256];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    if (!srv)
        fail_msg("http_server_start: %s", err);
    return srv;
}

typedef struct {
    strbuf *body;
    const probe_request *rq;
} probe_body_sink;

static size_t probe_collect_header(char *data, size_t size, size_t n, void *sb)
{
    sb_append(sb, data, size * n);
    return size * n;
}

static size_t probe_collect_body(char *data, size_t size, size_t n, void *user)
{
    probe_body_sink *sink = user;
    sb_append(sink->body, data, size * n);
    if (sink->rq->on_body && !sink->rq->on_body(sink->rq->on_body_user, sink->body))
        return 0; /* less than given: curl aborts */
    return size * n;
}

probe_result probe_perform(const probe_request *rq)
{
    probe_result r = {.rc = CURLE_FAILED_INIT};
    sb_append(&r.body, "", 0);
    sb_append(&r.headers, "", 0);
    CURL *curl = rq->curl ? rq->curl : curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", rq->base ? rq->base : probe_default_base, rq->path);
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; i < 6 && rq->headers[i]; i++)
        hdrs = curl_slist_append(hdrs, rq->headers[i]);
    probe_body_sink sink = {.body = &r.body, .rq = rq};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, rq->timeout_ms ? rq->timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, probe_collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, probe_collect_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (rq->body) { /* like `curl -d`: application/x-www-form-urlencoded */
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(rq->body));
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    r.rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.connects);
    curl_slist_free_all(hdrs);
    if (!rq->curl)
        curl_easy_cleanup(curl);
    sb_append(&r.body, "", 0);
    r.json = json_loads(r.body.data, 0, NULL);
    return r;
}

probe_result probe_must(const probe_request *rq)
{
    probe_result r = probe_perform(rq);
    if (r.rc != CURLE_OK)
        fail_msg("%s %s: %s", rq->method, rq->path, curl_easy_strerror(r.rc));
    return r;
}

probe_result probe_get(const char *path)
{
    return probe_must(&(probe_request){.method = "GET", .path = path});
}

probe_result probe_post(const char *path, const char *body)
{
    return probe_must(&(probe_request){.method = "POST", .path = path, .body = body});
}

void probe_result_free(probe_result *r)
{
    sb_free(&r->body);
    sb_free(&r->headers);
    json_decref(r->json);
    r->json = NULL;
}

const char *probe_header(const probe_result *r, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t len = strlen(name);
    for (const char *line = r->headers.data; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        if (line_len > len && strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(line + line_len - v), v);
        }
        line = end ? end + 2 : NULL;
    }
    return out;
}

void probe_assert_header(const probe_result *r, const char *name, const char *expected)
{
    char v[512];
    probe_header(r, name, v, sizeof v);
    if (strcmp(v, expected) != 0)
        fail_msg("header %s: expected '%s', got '%s'", name, expected, v);
}

void probe_assert_error(probe_result *r, long status, const char *message)
{
    if (r->status != status || !r->json || !json_is_string(json_object_get(r->json, "error")) ||
        strcmp(json_string_value(json_object_get(r->json, "error")), message) != 0)
        fail_msg("expected %ld {\"error\":\"%s\"}\n     got %ld %s", status, message, r->status, r->body.data);
    assert_int_equal(json_object_size(r->json), 1);
    probe_assert_header(r, "Content-Type", "application/json; charset=utf-8");
}

void probe_expect_error(const char *path, const char *body, long status, const char *message)
{
    probe_result r = probe_post(path, body);
    probe_assert_error(&r, status, message);
    probe_result_free(&r);
}

size_t probe_ndjson_lines(const probe_result *r, json_t **lines, size_t max)
{
    const char *p = r->body.data;
    size_t n = 0;
    if (r->body.len == 0 || p[r->body.len - 1] != '\n')
        fail_msg("NDJSON body does not end with a newline: %s", p);
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (nl == p)
            fail_msg("blank line in NDJSON body: %s", r->body.data);
        json_error_t jerr;
        json_t *v = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        if (!v)
            fail_msg("line %zu is not JSON (%s): %.*s", n, jerr.text, (int)(nl - p), p);
        if (n < max)
            lines[n] = v;
        else
            json_decref(v);
        n++;
        p = nl + 1;
    }
    return n;
}

void probe_free_lines(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
}

const char *probe_str(const json_t *o, const char *path)
{
    char key[64];
    const json_t *cur = o;
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        cur = json_object_get(cur, key);
        path += n + (dot ? 1 : 0);
    }
    return json_is_string(cur) ? json_string_value(cur) : NULL;
}
