/* Tests for net/http_client against tiny_http (a raw-socket server): answers and statuses, one
 * kept-alive connection for many calls, loopback never proxied while other hosts follow the proxy
 * environment, body cap, timeouts, streaming, abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/clock.h"
#include "net/http_client.h"
#include "net/socket.h"
#include "tiny_http.h"

static size_t answer_by_path(tiny_http *t, const char *line, const char *body, char *out, size_t outlen)
{
    (void)t;
    if (strstr(line, " /echo "))
        return tiny_answer(out, outlen, 200, body);
    if (strstr(line, " /busy "))
        return tiny_answer(out, outlen, 400, "{\"error\": \"llm is running\"}");
    if (strstr(line, " /big ")) {
        static char big[40000];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        return tiny_answer(out, outlen, 200, big);
    }
    if (strstr(line, " /slow ")) {
        clock_sleep(1.0);
        return tiny_answer(out, outlen, 200, "{}");
    }
    if (strstr(line, "http://example.invalid")) /* a request for a proxy */
        return tiny_answer(out, outlen, 200, "{\"proxied\":true}");
    return tiny_answer(out, outlen, 200, "{\"ok\":true}");
}

static http_client *client_for(const tiny_http *t, double timeout_s, size_t max_body)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", t->port);
    http_client_config cfg = {.base_url = base, .timeout_s = timeout_s, .max_body = max_body};
    return http_client_new(&cfg);
}

static void test_get_and_post_return_status_and_body(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    http_client *c = client_for(&t, 5, 0);
    http_reply r;
    assert_int_equal(http_client_get(c, "/x", &r), HTTPC_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"ok\":true}");
    assert_string_equal(r.content_type, "application/json");
    http_reply_free(&r);
    assert_int_equal(http_client_post_json(c, "/echo", "{\"a\":1}", &r), HTTPC_OK);
    assert_string_equal(r.body.data, "{\"a\":1}");
    assert_string_equal(t.last_line, "POST /echo HTTP/1.1");
    http_reply_free(&r);
    assert_int_equal(http_client_post_json(c, "/busy", "{}", &r), HTTPC_OK); /* any status is an answer */
    assert_int_equal(r.status, 400);
    http_reply_free(&r);
    http_client_free(c);
    tiny_stop(&t);
}

static void test_many_calls_share_one_connection(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    http_client *c = client_for(&t, 5, 0);
    for (int i = 0; i < 20; i++) {
        http_reply r;
        assert_int_equal(http_client_get(c, "/x", &r), HTTPC_OK);
        http_reply_free(&r);
    }
    assert_int_equal(atomic_load(&t.requests), 20);
    assert_int_equal(atomic_load(&t.accepts), 1);
    assert_int_equal(http_client_connects(c), 1);
    http_client_free(c);
    tiny_stop(&t);
}

static void test_fresh_connection_opens_one_per_call(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", t.port);
    http_client_config cfg = {.base_url = base, .fresh_connection = true};
    http_client *c = http_client_new(&cfg);
    for (int i = 0; i < 3; i++) {
        http_reply r;
        assert_int_equal(http_client_get(c, "/x", &r), HTTPC_OK);
        http_reply_free(&r);
    }
    assert_int_equal(http_client_connects(c), 3);
    http_client_free(c);
    tiny_stop(&t);
}

/* A dead proxy in every proxy variable: loopback calls still get through. */
static void test_loopback_is_never_proxied(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", net_free_port());
    const char *vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        setenv(vars[i], proxy, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    http_client *c = client_for(&t, 5, 0);
    http_reply r;
    assert_int_equal(http_client_get(c, "/x", &r), HTTPC_OK);
    assert_int_equal(r.status, 200);
    http_reply_free(&r);
    http_client_free(c);
    char base[64];
    snprintf(base, sizeof base, "http://localhost:%d", t.port);
    c = http_client_new(&(http_client_config){.base_url = base});
    assert_int_equal(http_client_get(c, "/x", &r), HTTPC_OK);
    http_reply_free(&r);
    http_client_free(c);
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    tiny_stop(&t);
}

/* The same environment does apply to other hosts (as Go's clients do): the proxy gets the call. */
static void test_other_hosts_follow_the_proxy_environment(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", t.port);
    setenv("http_proxy", proxy, 1);
    http_client *c = http_client_new(&(http_client_config){.base_url = "http://example.invalid:80"});
    http_reply r;
    assert_int_equal(http_client_get(c, "/thing", &r), HTTPC_OK);
    assert_string_equal(r.body.data, "{\"proxied\":true}");
    assert_string_equal(t.last_line, "GET http://example.invalid/thing HTTP/1.1");
    http_reply_free(&r);
    http_client_free(c);
    unsetenv("http_proxy");
    tiny_stop(&t);
}

static void test_url_loopback_classification(void **state)
{
    (void)state;
    assert_true(http_url_is_loopback("http://127.0.0.1:8000"));
    assert_true(http_url_is_loopback("http://127.1.2.3"));
    assert_true(http_url_is_loopback("http://[::1]:11434/x"));
    assert_true(http_url_is_loopback("http://LocalHost:1"));
    assert_false(http_url_is_loopback("http://192.168.1.2:11434"));
    assert_false(http_url_is_loopback("http://127.0.0.1.example.com"));
    assert_false(http_url_is_loopback("http://example.com"));
}

static void test_answers_over_the_cap_fail(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    http_client *c = client_for(&t, 5, 1000);
    http_reply r;
    assert_int_equal(http_client_get(c, "/big", &r), HTTPC_TOO_LARGE);
    assert_true(r.body.len <= 1000);
    assert_non_null(strstr(r.error, "larger than 1000 bytes"));
    http_reply_free(&r);
    http_client_free(c);
    tiny_stop(&t);
}

static void test_a_slow_answer_times_out(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    http_client *c = client_for(&t, 0.2, 0);
    http_reply r;
    assert_int_equal(http_client_get(c, "/slow", &r), HTTPC_TIMEOUT);
    assert_int_equal(r.status, 0);
    http_reply_free(&r);
    http_client_free(c);
    tiny_stop(&t);
}

static void test_nobody_listening_is_unreachable(void **state)
{
    (void)state;
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", net_free_port());
    http_client *c = http_client_new(&(http_client_config){.base_url = base});
    http_reply r;
    assert_int_equal(http_client_get(c, "/x", &r), HTTPC_UNREACHABLE);
    assert_true(r.error[0] != '\0');
    http_reply_free(&r);
    http_client_free(c);
}

static bool collect_chunks(void *user, const char *data, size_t n)
{
    strbuf *sb = user;
    sb_append(sb, data, n);
    return true;
}

static void test_streamed_bodies_go_to_on_data(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    http_client *c = client_for(&t, 5, 10); /* the cap is for collected bodies only */
    strbuf got = {0};
    http_call call = {.path = "/big", .on_data = collect_chunks, .user = &got};
    http_reply r;
    assert_int_equal(http_client_call(c, &call, &r), HTTPC_OK);
    assert_int_equal(got.len, 39999);
    assert_null(r.body.data);
    http_reply_free(&r);
    sb_free(&got);
    http_client_free(c);
    tiny_stop(&t);
}

static bool stop_now(void *user)
{
    (void)user;
    return false;
}

static void test_keep_going_false_aborts_within_a_slice(void **state)
{
    (void)state;
    tiny_http t;
    tiny_start(&t, answer_by_path);
    http_client *c = client_for(&t, 5, 0);
    http_call call = {.path = "/slow", .keep_going = stop_now};
    http_reply r;
    double start = clock_mono();
    assert_int_equal(http_client_call(c, &call, &r), HTTPC_ABORTED);
    assert_true(clock_mono() - start < 0.9); /* before the 1 s answer */
    http_reply_free(&r);
    http_client_free(c);
    tiny_stop(&t);
}

static void test_escape_encodes_reserved_bytes(void **state)
{
    (void)state;
    char *e = http_url_escape("a b&c/é");
    assert_string_equal(e, "a%20b%26c%2F%C3%A9");
    free(e);
}

int main(void)
{
    http_client_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post_return_status_and_body),
        cmocka_unit_test(test_many_calls_share_one_connection),
        cmocka_unit_test(test_fresh_connection_opens_one_per_call),
        cmocka_unit_test(test_loopback_is_never_proxied),
        cmocka_unit_test(test_other_hosts_follow_the_proxy_environment),
        cmocka_unit_test(test_url_loopback_classification),
        cmocka_unit_test(test_answers_over_the_cap_fail),
        cmocka_unit_test(test_a_slow_answer_times_out),
        cmocka_unit_test(test_nobody_listening_is_unreachable),
        cmocka_unit_test(test_streamed_bodies_go_to_on_data),
        cmocka_unit_test(test_keep_going_false_aborts_within_a_slice),
        cmocka_unit_test(test_escape_encodes_reserved_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
