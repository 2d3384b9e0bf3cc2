/* chat_result: an NDJSON answer of `axllama serve` (its lines parsed, the last one at hand) and
 * the small accessors the server tests assert with. Include after serve_harness.h. */
#ifndef AXLLAMA_TESTS_CHAT_RESULT_H
#define AXLLAMA_TESTS_CHAT_RESULT_H

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

#endif
