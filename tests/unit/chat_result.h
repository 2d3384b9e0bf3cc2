/* chat_result: an NDJSON answer of `axllama serve` (its lines parsed, the last one at hand) and
 * the small accessors the server tests assert with. */
#ifndef AXLLAMA_TESTS_CHAT_RESULT_H
#define AXLLAMA_TESTS_CHAT_RESULT_H

#include <stdatomic.h>

#include "serve_harness.h"

typedef struct {
    h_http http;
    json_t **lines;
    size_t n;
    json_t *last;
} chat_result;

static chat_result post(h_server *s, const char *path, const char *body)
{
    chat_result r = {0};
    r.http = h_srv(s, "POST", path, body);
    r.lines = h_ndjson(r.http.body.data, &r.n);
    r.last = r.n ? r.lines[r.n - 1] : NULL;
    return r;
}

static void chat_free(chat_result *r)
{
    h_ndjson_free(r->lines, r->n);
    h_http_free(&r->http);
}

static long num(json_t *obj, const char *key)
{
    return (long)json_integer_value(json_object_get(obj, key));
}

static const char *str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

static void assert_done(const chat_result *r, const char *reason)
{
    if (!r->last || !json_is_true(json_object_get(r->last, "done"))) {
        fprintf(stderr, "status %ld body: %s\n", r->http.status, r->http.body.data);
        fail_msg("no final done:true line");
    }
    assert_string_equal(str(r->last, "done_reason"), reason);
}

/* A request on its own thread whose answer is read as it streams: `streaming` turns true with the
 * first whole line, so a test can act mid-stream on an observed event instead of after a pause. */
typedef struct {
    h_server *s;
    const char *path;
    const char *body;
    chat_result r;
    atomic_bool streaming;
} stream_request;

static inline size_t stream_request_collect(char *data, size_t size, size_t n, void *user)
{
    stream_request *t = user;
    sb_append(&t->r.http.body, data, size * n);
    if (memchr(t->r.http.body.data, '\n', t->r.http.body.len))
        atomic_store(&t->streaming, true);
    return size * n;
}

static inline void *stream_request_run(void *arg)
{
    stream_request *t = arg;
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", t->s->port, t->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_request_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t->r.http.status);
    curl_easy_cleanup(c);
    sb_puts(&t->r.http.body, "");
    sb_puts(&t->r.http.headers, "");
    t->r.lines = h_ndjson(t->r.http.body.data, &t->r.n);
    t->r.last = t->r.n ? t->r.lines[t->r.n - 1] : NULL;
    return NULL;
}

/* Waits until the answer's first line arrived (true), or timeout_s passed. */
static inline bool stream_request_wait_streaming(stream_request *t, double timeout_s)
{
    for (double end = h_now() + timeout_s; !atomic_load(&t->streaming) && h_now() < end;)
        h_sleep(0.005); /* a flag set by the request's own thread */
    return atomic_load(&t->streaming);
}

#endif
