/* openai_harness: what the tests of the OpenAI-compatible API on `axllama serve` (test_api_openai.c,
 * test_api_responses.c) share: one server per test with a model "m" on axllama-emu, requests with
 * the answer parsed as JSON, members by dotted path, and the assertion on OpenAI error objects. */
#ifndef AXLLAMA_TESTS_OPENAI_HARNESS_H
#define AXLLAMA_TESTS_OPENAI_HARNESS_H

#include "serve_harness.h"
#include "server_fixture.h"

/* One server per test: model "m" (emulator args). The teardown stops it if a test failed. */
static void start(h_server *s, const char *const *emu_args)
{
    start_model_m(s, emu_args, NULL, NULL);
}

/* SIGTERM, and the server must exit 0 (under ASan: no error, no leak); its log is shown if not. */
static void stop(h_server *s)
{
    int status = 0;
    bool exited = false;
    kill(s->pid, SIGTERM);
    for (double end = h_now() + 30; h_now() < end && !exited; h_sleep(0.01))
        exited = waitpid(s->pid, &status, WNOHANG) == s->pid;
    if (!exited) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
    }
    s->exited = true;
    bool clean = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!clean) {
        char *log = h_server_log(s);
        fprintf(stderr, "the server did not exit cleanly (status %d):\n%s\n", status, log);
        free(log);
    }
    h_server_stop(s);
    assert_true(clean);
}

/* An answer: status, body, and the body parsed as JSON (NULL when it is not). */
typedef struct {
    h_http http;
    json_t *json;
} answer;

static answer call(h_server *s, const char *method, const char *path, const char *body)
{
    answer a = {0};
    a.http = h_srv(s, method, path, body);
    a.json = json_loads(a.http.body.data, 0, NULL);
    return a;
}

static void answer_free(answer *a)
{
    json_decref(a->json);
    h_http_free(&a->http);
}

static json_t *get(json_t *o, const char *path)
{
    /* "a.b.0.c": objects by key, arrays by index */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(k, NULL, 10)) : json_object_get(v, k);
    return v;
}

static const char *gs(json_t *o, const char *path)
{
    const char *v = json_string_value(get(o, path));
    return v ? v : "(none)";
}

static long long gi(json_t *o, const char *path)
{
    json_t *v = get(o, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

/* Asserts an OpenAI error object with this status, type and message prefix. */
static void assert_error(const answer *a, long status, const char *type, const char *message_prefix)
{
    if (a->http.status != status || !a->json)
        fail_msg("expected %ld, got %ld: %s", status, a->http.status, a->http.body.data);
    assert_non_null(strstr(a->http.headers.data, "application/json"));
    json_t *e = json_object_get(a->json, "error");
    assert_true(json_is_object(e));
    assert_string_equal(gs(e, "type"), type);
    const char *msg = gs(e, "message");
    if (strncmp(msg, message_prefix, strlen(message_prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", msg, message_prefix);
    assert_true(json_object_get(e, "param") != NULL); /* present (null or the field) */
    assert_true(json_is_null(json_object_get(e, "code")));
}

#endif
