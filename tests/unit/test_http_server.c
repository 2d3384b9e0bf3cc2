/* test_http_server: the HTTP server's own behaviours (src/net/http_server.c), exercised through
 * the Ollama routes (src/api/ollama.h) over the fake engine (fake_engine.h) with libcurl: the
 * 404/405 texts, keep-alive connection reuse, the body limit (413, chunked too), line separators
 * escaped in JSON lines and http_json_encode, CORS per the allowed origins, the Host guard of a
 * loopback listener, a client that disconnects cancelling its job (mid-stream and before the first
 * event), and stopping the server ending running streams. One cmocka group with its own server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/ollama.h"
#include "common/buf.h"
#include "common/clock.h"
#include "fake_engine.h"
#include "http_probe.h"
#include "models/manifest.h"
#include "net/http_server.h"

/* ================================================================== the server under test */

/* The Ollama routes over the fake engine, with two models ("qwen3-test" runs the generations,
 * "plain" answers /api/show) and CORS origins; other servers with other settings are started by
 * the tests that need them. */
static model_manifest ollama_routes_models[2];
static model_registry ollama_routes_registry = {ollama_routes_models, 2};
static engine *ollama_routes_engine;
static ollama_api ollama_routes_api;
static http_route ollama_routes[OLLAMA_API_MAX_ROUTES];
static size_t ollama_routes_n;
static http_server *ollama_routes_srv;
static char ollama_routes_base[64];

static const char *const ollama_routes_origins[] = {"http://localhost", "http://localhost:*", "app://*",
                                                    "chrome-extension://abcdef", NULL};

static http_server *start_ollama_routes_server(const char *host, const char *const *origins, size_t max_body)
{
    return probe_start_server(ollama_routes, ollama_routes_n, host, origins, max_body);
}

static int ollama_routes_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static char *empty_list[] = {NULL};
    ollama_routes_models[0] = (model_manifest){
        .name = "qwen3-test:latest",
        .modified = 1000000000,
        .runtime_args = empty_list,
        .env = empty_list,
        .template_family = CHAT_TEMPLATE_QWEN3,
        .max_prefill = 2048,
        .max_positions = 2559,
        .thinking = true,
    };
    memset(ollama_routes_models[0].digest, 'a', 64);
    ollama_routes_models[1] = (model_manifest){
        .name = "plain:latest",
        .modified = 1100000000,
        .runtime_args = empty_list,
        .env = empty_list,
        .template_family = CHAT_TEMPLATE_QWEN25,
        .max_prefill = 1024,
        .max_positions = 1280,
    };
    memset(ollama_routes_models[1].digest, 'b', 64);
    engine_config ecfg = {.models = &ollama_routes_registry};
    ollama_routes_engine = engine_new(&ecfg);
    ollama_routes_api = (ollama_api){.engine = ollama_routes_engine, .models = &ollama_routes_registry};
    ollama_routes_n = ollama_api_routes(&ollama_routes_api, ollama_routes, OLLAMA_API_MAX_ROUTES);
    ollama_routes_srv = start_ollama_routes_server("127.0.0.1", ollama_routes_origins, 0);
    probe_base_url(ollama_routes_srv, ollama_routes_base, sizeof ollama_routes_base);
    probe_set_base(ollama_routes_base);
    return 0;
}

static int ollama_routes_teardown(void **state)
{
    (void)state;
    http_server_stop(ollama_routes_srv);
    engine_free(ollama_routes_engine);
    curl_global_cleanup();
    return 0;
}

/* The previous test's jobs are released (the server does it after the last byte went out), then
 * the fake forgets them. */
static int ollama_routes_before_each(void **state)
{
    (void)state;
    fake_wait_idle();
    fake_reset();
    return 0;
}

/* ================================================================== routing, connections, bodies */

static void test_unknown_path_is_404_text(void **state)
{
    (void)state;
    const char *paths[] = {"/nope", "/api", "/api/version/", "/api/pull"};
    for (size_t i = 0; i < 4; i++) {
        probe_result r = probe_get(paths[i]);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.body.data, "404 page not found");
        probe_assert_header(&r, "Content-Type", "text/plain");
        probe_result_free(&r);
    }
}

static void test_wrong_method_is_405_text(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"GET", "/api/chat"}, {"DELETE", "/api/tags"}, {"POST", "/api/ps"}, {"HEAD", "/api/ps"}, {"PUT", "/"}};
    for (size_t i = 0; i < 5; i++) {
        probe_result r = probe_must(&(probe_request){.method = cases[i][0], .path = cases[i][1]});
        assert_int_equal(r.status, 405);
        if (strcmp(cases[i][0], "HEAD") != 0)
            assert_string_equal(r.body.data, "405 method not allowed");
        probe_assert_header(&r, "Content-Type", "text/plain");
        probe_result_free(&r);
    }
}

static void test_keep_alive_connection_is_reused(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    long total = 0;
    for (int i = 0; i < 5; i++) {
        probe_result r = probe_must(&(probe_request){.method = i % 2 ? "GET" : "POST",
                                                     .path = i % 2 ? "/api/version" : "/api/show",
                                                     .body = i % 2 ? NULL : "{\"model\":\"plain\"}",
                                                     .curl = curl});
        assert_int_equal(r.status, 200);
        total += r.connects;
        probe_result_free(&r);
    }
    curl_easy_cleanup(curl);
    assert_int_equal(total, 1);
}

static void test_body_limit_is_413(void **state)
{
    (void)state;
    http_server *small = start_ollama_routes_server("127.0.0.1", NULL, 1024);
    char base[64];
    probe_base_url(small, base, sizeof base);
    char *big = malloc(4096);
    memset(big, ' ', 4095);
    big[4095] = '\0';
    big[0] = '{';
    big[4094] = '}';
    probe_result r = probe_must(&(probe_request){.method = "POST", .path = "/api/show", .body = big, .base = base});
    probe_assert_error(&r, 413, "request body too large (limit 1024 bytes)");
    probe_result_free(&r);
    /* chunked: no Content-Length, the limit is enforced as the body arrives */
    r = probe_must(&(probe_request){
        .method = "POST", .path = "/api/show", .body = big, .base = base, .headers = {"Transfer-Encoding: chunked"}});
    probe_assert_error(&r, 413, "request body too large (limit 1024 bytes)");
    probe_result_free(&r);
    r = probe_must(
        &(probe_request){.method = "POST", .path = "/api/show", .body = "{\"model\":\"plain\"}", .base = base});
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    free(big);
    http_server_stop(small);
}

/* ================================================================== JSON line safety */

static bool contains_bytes(const strbuf *b, const char *needle)
{
    return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static void test_line_separators_are_escaped(void **state)
{
    (void)state;
    static const char tricky[] = "a\xE2\x80\xA8"
                                 "b\xE2\x80\xA9"
                                 "c\xC2\x85"
                                 "d\n\xE2\x82\xAC";
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = tricky},
                                      {.kind = JOB_EV_THINKING, .text = tricky},
                                      {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(steps);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA8"));
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA9"));
    assert_false(contains_bytes(&r.body, "\xC2\x85"));
    assert_true(contains_bytes(&r.body, "\\u2028"));
    assert_true(contains_bytes(&r.body, "\\u2029"));
    assert_true(contains_bytes(&r.body, "\\u0085"));
    assert_true(contains_bytes(&r.body, "\xE2\x82\xAC")); /* other characters stay raw UTF-8 */
    json_t *lines[4];
    size_t n = probe_ndjson_lines(&r, lines, 4);
    assert_int_equal(n, 3);
    assert_string_equal(probe_str(lines[0], "message.content"), tricky);
    assert_string_equal(probe_str(lines[1], "message.thinking"), tricky);
    probe_free_lines(lines, n);
    probe_result_free(&r);

    FAKE_SCRIPT(steps);
    r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}");
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA8"));
    assert_string_equal(probe_str(r.json, "response"), tricky);
    probe_result_free(&r);
}

static void test_json_encode_escapes_only_separators(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "k", "\xE2\x80\xA8\xE2\x80\xA9\xC2\x85\xC2\xA9\xE2\x80\xA7");
    size_t len;
    char *s = http_json_encode(v, &len);
    assert_string_equal(s, "{\"k\":\"\\u2028\\u2029\\u0085\xC2\xA9\xE2\x80\xA7\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(v);
    json_t *bad = http_json_string("ok\xFF");
    assert_string_equal(json_string_value(bad), "ok\xEF\xBF\xBD");
    json_decref(bad);
}

/* ================================================================== CORS and the Host guard */

static void test_cors(void **state)
{
    (void)state;
    probe_result r = probe_must(
        &(probe_request){.method = "GET", .path = "/api/version", .headers = {"Origin: http://localhost:3000"}});
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:3000");
    probe_assert_header(&r, "Vary", "Origin");
    probe_result_free(&r);

    const char *refused[] = {"Origin: https://evil.example", "Origin: null", "Origin: http://localhost.evil.example",
                             "Origin: chrome-extension://other"};
    for (size_t i = 0; i < 4; i++) {
        r = probe_must(&(probe_request){
            .method = "POST", .path = "/api/show", .body = "{\"model\":\"plain\"}", .headers = {refused[i]}});
        if (r.status != 403 || r.body.len != 0)
            fail_msg("%s: expected 403 with no body, got %ld '%s'", refused[i], r.status, r.body.data);
        probe_result_free(&r);
    }
    /* refused before routing: even an unknown path */
    r = probe_must(&(probe_request){.method = "GET", .path = "/nope", .headers = {"Origin: https://evil.example"}});
    assert_int_equal(r.status, 403);
    probe_result_free(&r);

    const char *allowed[] = {"Origin: http://localhost", "Origin: app://obsidian.md",
                             "Origin: chrome-extension://abcdef"};
    for (size_t i = 0; i < 3; i++) {
        r = probe_must(&(probe_request){.method = "GET", .path = "/api/tags", .headers = {allowed[i]}});
        assert_int_equal(r.status, 200);
        probe_assert_header(&r, "Access-Control-Allow-Origin", allowed[i] + 8);
        probe_result_free(&r);
    }

    r = probe_must(&(probe_request){.method = "OPTIONS",
                                    .path = "/api/chat",
                                    .headers = {"Origin: http://localhost:5173", "Access-Control-Request-Method: POST",
                                                "Access-Control-Request-Headers: content-type"}});
    assert_int_equal(r.status, 204);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:5173");
    probe_assert_header(&r, "Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD");
    probe_assert_header(&r, "Access-Control-Max-Age", "43200");
    char v[1024];
    probe_header(&r, "Access-Control-Allow-Headers", v, sizeof v);
    assert_non_null(strstr(v, "Authorization,Content-Type,User-Agent,Accept"));
    assert_non_null(strstr(v, "X-Stainless-Timeout"));
    probe_result_free(&r);

    /* same origin (Origin = http://<Host>): no CORS at all */
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: %s", ollama_routes_base);
    r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {origin}});
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "");
    probe_result_free(&r);

    /* OLLAMA_ORIGINS=*: everything, answered with "*" */
    static const char *const all[] = {"*", NULL};
    http_server *open = start_ollama_routes_server("127.0.0.1", all, 0);
    char base[64];
    probe_base_url(open, base, sizeof base);
    r = probe_must(&(probe_request){
        .method = "GET", .path = "/api/version", .base = base, .headers = {"Origin: https://evil.example"}});
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "*");
    probe_result_free(&r);
    http_server_stop(open);
}

static void test_host_guard_on_loopback(void **state)
{
    (void)state;
    assert_true(http_server_is_loopback(ollama_routes_srv));
    const char *refused[] = {"Host: evil.example", "Host: evil.example:11434", "Host: 8.8.8.8",
                             "Host: localhost.evil.com"};
    for (size_t i = 0; i < 4; i++) {
        probe_result r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {refused[i]}});
        if (r.status != 403 || r.body.len != 0)
            fail_msg("%s: expected 403 with no body, got %ld '%s'", refused[i], r.status, r.body.data);
        probe_result_free(&r);
    }
    const char *allowed[] = {"Host: localhost:11434", "Host: LOCALHOST",   "Host: 127.0.0.1:8080", "Host: 192.168.1.5",
                             "Host: 10.1.2.3:11434",  "Host: [::1]:11434", "Host: my-box.local",   "Host: x.internal",
                             "Host: app.localhost",   "Host: 0.0.0.0"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        probe_result r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {allowed[i]}});
        if (r.status != 200)
            fail_msg("%s: expected 200, got %ld", allowed[i], r.status);
        probe_result_free(&r);
    }
    char hostname[256], hdr[300];
    if (gethostname(hostname, sizeof hostname) == 0) {
        snprintf(hdr, sizeof hdr, "Host: %s:11434", hostname);
        probe_result r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {hdr}});
        assert_int_equal(r.status, 200);
        probe_result_free(&r);
    }
    /* an allowed host *name* answers OPTIONS itself, as Ollama does */
    probe_result r =
        probe_must(&(probe_request){.method = "OPTIONS", .path = "/api/chat", .headers = {"Host: localhost"}});
    assert_int_equal(r.status, 204);
    probe_result_free(&r);

    /* not on loopback: every Host passes */
    http_server *lan = start_ollama_routes_server("", NULL, 0);
    assert_false(http_server_is_loopback(lan));
    char base[64];
    probe_base_url(lan, base, sizeof base);
    r = probe_must(
        &(probe_request){.method = "GET", .path = "/api/version", .base = base, .headers = {"Host: evil.example"}});
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    http_server_stop(lan);
}

/* ================================================================== cancellation */

typedef struct {
    strbuf got;
    double aborted_at;
} abort_ctx;

/* Takes the first NDJSON line, then makes curl abort the transfer. */
static size_t abort_after_first_line(char *data, size_t size, size_t n, void *user)
{
    abort_ctx *a = user;
    sb_append(&a->got, data, size * n);
    if (memchr(a->got.data, '\n', a->got.len)) {
        a->aborted_at = clock_mono();
        return 0;
    }
    return size * n;
}

static void test_client_disconnect_mid_stream_cancels_job(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_CONTENT, .text = "b", .delay_s = 30},
                                      {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(steps);
    abort_ctx a = {0};
    CURL *curl = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/api/chat", ollama_routes_base);
    const char *body = "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, abort_after_first_line);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl); /* closes the socket */
    double closed_at = clock_mono();
    assert_int_equal(rc, CURLE_WRITE_ERROR);
    assert_true(a.aborted_at > 0);
    double cancelled_at = fake_wait_cancel(0);
    assert_true(cancelled_at > 0);
    double delay = cancelled_at - closed_at;
    if (delay > 0.2)
        fail_msg("job_cancel came %.0f ms after the client left", delay * 1e3);
    /* and the job is released */
    assert_int_equal(fake_wait_count(&fake.releases, 1), 1);
    sb_free(&a.got);
}

static void test_client_gone_before_first_event_cancels_job(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "late", .delay_s = 30}};
    FAKE_SCRIPT(steps);
    for (int stream = 0; stream < 2; stream++) {
        int before = fake_count(&fake.cancels);
        probe_result r = probe_perform(
            &(probe_request){.method = "POST",
                             .path = "/api/generate",
                             .timeout_ms = 300,
                             .body = stream ? "{\"model\":\"qwen3-test\",\"prompt\":\"x\"}"
                                            : "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}"});
        double closed_at = clock_mono();
        assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
        probe_result_free(&r);
        double cancelled_at = fake_wait_cancel(before);
        assert_true(cancelled_at > 0);
        if (cancelled_at - closed_at > 0.2)
            fail_msg("job_cancel came %.0f ms after the client left", (cancelled_at - closed_at) * 1e3);
    }
}

typedef struct {
    const char *base;
    atomic_bool first_line; /* the first NDJSON line arrived */
    probe_result result;
} bg_request;

static bool note_first_line(void *user, const strbuf *body)
{
    bg_request *b = user;
    if (memchr(body->data, '\n', body->len))
        atomic_store(&b->first_line, true);
    return true;
}

static void *run_bg_request(void *arg)
{
    bg_request *b = arg;
    b->result = probe_perform(&(probe_request){.method = "POST",
                                               .path = "/api/generate",
                                               .base = b->base,
                                               .body = "{\"model\":\"qwen3-test\",\"prompt\":\"x\"}",
                                               .on_body = note_first_line,
                                               .on_body_user = b});
    return NULL;
}

static void test_server_stop_ends_streams(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_CONTENT, .text = "b", .delay_s = 30}};
    FAKE_SCRIPT(steps);
    http_server *srv = start_ollama_routes_server("127.0.0.1", NULL, 0);
    char base[64];
    probe_base_url(srv, base, sizeof base);
    bg_request b = {.base = base};
    pthread_t t;
    pthread_create(&t, NULL, run_bg_request, &b);
    /* the stream is running: its first line reached the client */
    double deadline = deadline_in(3);
    while (!atomic_load(&b.first_line) && !deadline_passed(deadline))
        clock_sleep(0.002);
    double stop_at = clock_mono();
    http_server_stop(srv);
    double stop_took = clock_mono() - stop_at;
    pthread_join(t, NULL);
    assert_true(atomic_load(&b.first_line));
    assert_true(stop_took < 1.0);
    assert_int_equal(fake_count(&fake.cancels), 1);
    assert_int_equal(fake_count(&fake.releases), 1);
    assert_int_equal(b.result.status, 200);
    assert_non_null(strstr(b.result.body.data, "\"response\":\"a\""));
    probe_result_free(&b.result);
}

int main(void)
{
    const struct CMUnitTest ollama_routes_tests[] = {
        cmocka_unit_test_setup(test_unknown_path_is_404_text, ollama_routes_before_each),
        cmocka_unit_test_setup(test_wrong_method_is_405_text, ollama_routes_before_each),
        cmocka_unit_test_setup(test_keep_alive_connection_is_reused, ollama_routes_before_each),
        cmocka_unit_test_setup(test_body_limit_is_413, ollama_routes_before_each),
        cmocka_unit_test_setup(test_line_separators_are_escaped, ollama_routes_before_each),
        cmocka_unit_test_setup(test_json_encode_escapes_only_separators, ollama_routes_before_each),
        cmocka_unit_test_setup(test_cors, ollama_routes_before_each),
        cmocka_unit_test_setup(test_host_guard_on_loopback, ollama_routes_before_each),
        cmocka_unit_test_setup(test_client_disconnect_mid_stream_cancels_job, ollama_routes_before_each),
        cmocka_unit_test_setup(test_client_gone_before_first_event_cancels_job, ollama_routes_before_each),
        cmocka_unit_test_setup(test_server_stop_ends_streams, ollama_routes_before_each),
    };
    return cmocka_run_group_tests_name("http_server through the Ollama routes", ollama_routes_tests,
                                       ollama_routes_setup, ollama_routes_teardown);
}
