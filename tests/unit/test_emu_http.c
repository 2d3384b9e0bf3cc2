/* Tests of axllama-emu's HTTP API as a client sees it on the wire (docs/spec/runtime-protocol.md §1):
 * status codes and bodies byte for byte, the EXCEPTION_WHAT header of wrongly typed JSON, 404s,
 * CORS and OPTIONS, the synchronous /api/chat, and "llm is running" while a task runs. One
 * tokenizer service for the whole binary, a fresh emulator per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_harness.h"

#define STATUS_OK "{\"status\": \"ok\"}"
#define BAD_FORMAT "{\"error\": \"Invalid request format\"}"
#define BAD_MESSAGE "{\"error\": \"Invalid message format\"}"
#define LLM_RUNNING "{\"error\": \"llm is running\"}"
#define IDLE "{\"done\":true,\"response\":\"\"}"
#define THINK "<think>\\n\\n</think>\\n\\n" /* as it appears inside a JSON string */
#define TYPE_ERROR "[json.exception.type_error.302] type must be "

static h_tokenizer g_tok;
static h_emu g_emu; /* the current test's emulator; killed by the teardown even after a failure */

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return h_tokenizer_start(&g_tok) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    h_tokenizer_stop(&g_tok);
    curl_global_cleanup();
    return 0;
}

static int emu_teardown(void **state)
{
    (void)state;
    h_emu_kill(&g_emu);
    memset(&g_emu, 0, sizeof g_emu);
    return 0;
}

/* Starts the fast emulator with extra arguments and forgets its start-up traffic. */
static h_emu *start_list(const char *const *extra)
{
    assert_true(h_emu_start_fast(&g_emu, &g_tok, extra));
    h_tokenizer_forget(&g_tok);
    return &g_emu;
}
#define START(...) start_list((const char *const[]){__VA_ARGS__, NULL})
#define START_PLAIN() start_list(NULL)

/* Asserts status and exact body, the CORS header on every answer and the JSON content type on
 * every answer with a body; frees r. */
static void expect(h_http *r, long status, const char *body)
{
    assert_int_equal(r->status, status);
    assert_string_equal(r->body.data, body);
    char *origin = h_header(r, "Access-Control-Allow-Origin");
    assert_non_null(origin);
    assert_string_equal(origin, "*");
    free(origin);
    if (*body) {
        char *type = h_header(r, "Content-Type");
        assert_non_null(type);
        assert_string_equal(type, "application/json");
        free(type);
    }
    h_http_free(r);
}

/* Asserts a 500 with empty body and EXCEPTION_WHAT: what; frees r. */
static void expect_exception(h_http *r, const char *what)
{
    char *header = h_header(r, "EXCEPTION_WHAT");
    assert_non_null(header);
    assert_string_equal(header, what);
    free(header);
    expect(r, 500, "");
}

static void post_expect(h_emu *e, const char *path, const char *body, long status, const char *answer)
{
    h_http r = h_post(e, path, body);
    expect(&r, status, answer);
}

/* Waits for the end of the n-th generation (its GetKVCache line). */
static void wait_generations(h_emu *e, size_t n)
{
    assert_true(h_emu_wait_log_count(e, "remaining:", n, 10.0));
}

/* The refused requests before it queued nothing: a valid task queued now runs first in the worker's
 * FIFO, so once it ran the tokenizer has seen exactly its own call (`path`). An event to wait on
 * instead of a pause that hopes nothing happens in it. */
static void assert_only_a_valid_task_ran(h_emu *e, const char *endpoint, const char *path)
{
    bool reset = !strcmp(endpoint, "/api/reset");
    post_expect(e, endpoint, reset ? "{\"system_prompt\": \"barrier\"}" : "{\"prompt\": \"barrier\"}", 200, STATUS_OK);
    bool seen = false;
    for (double end = h_now() + 10; !seen && h_now() < end; h_sleep(0.002)) { /* the test's own recorder */
        size_t n = h_count(&g_tok, path);
        char *body = n ? h_body(&g_tok, path, n - 1) : NULL;
        seen = body && strstr(body, "barrier");
        free(body);
    }
    assert_true(seen);
    assert_int_equal(h_count(&g_tok, path), 1);
}

/* ---- /api/reset ---- */

static void test_reset_with_empty_object_answers_status_ok(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    assert_true(h_emu_wait_log(e, "input token num : 21, prefill_split_num : 1 prefill_grpid : 2", 5.0)); /* it ran */
}

static void test_reset_with_empty_body_answers_invalid_request_format(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/reset", "", 400, BAD_FORMAT);
    post_expect(e, "/api/reset", "{\"system_prompt\":", 400, BAD_FORMAT);
    assert_only_a_valid_task_ran(e, "/api/reset", "/reset"); /* nothing was queued */
}

static void test_reset_with_non_string_system_prompt_answers_500_with_exception_what(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_post(e, "/api/reset", "{\"system_prompt\": 5}");
    expect_exception(&r, TYPE_ERROR "string, but is number");
    assert_only_a_valid_task_ran(e, "/api/reset", "/reset");
}

/* ---- /api/generate ---- */

static void test_generate_with_unparseable_json_answers_invalid_request_format(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/generate", "{\"prompt\": \"hi\"", 400, BAD_FORMAT);
    post_expect(e, "/api/generate", "", 400, BAD_FORMAT);
    assert_only_a_valid_task_ran(e, "/api/generate", "/encode");
}

static void test_generate_without_prompt_answers_invalid_request_format(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/generate", "{\"text\": \"hi\", \"top-k\": 5}", 400, BAD_FORMAT);
    post_expect(e, "/api/generate", "[\"prompt\"]", 400, BAD_FORMAT); /* contains() on a non-object */
    assert_only_a_valid_task_ran(e, "/api/generate", "/encode");
    assert_false(h_emu_log_has(e, "top-k:")); /* rejected before the sampling keys are read */
}

static void test_generate_with_non_string_prompt_answers_500_with_exception_what(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_post(e, "/api/generate", "{\"prompt\": 42}");
    expect_exception(&r, TYPE_ERROR "string, but is number");
    r = h_post(e, "/api/generate", "{\"prompt\": null}");
    expect_exception(&r, TYPE_ERROR "string, but is null");
    assert_only_a_valid_task_ran(e, "/api/generate", "/encode");
}

/* top-p is applied before top-k throws: the next plain generate is sampled (a shuffle of the echo,
 * same bytes in another order) instead of greedy. */
static void test_generate_with_wrongly_typed_sampling_value_answers_500_keeping_earlier_keys(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    static const char greedy[] = "<think>\n\n</think>\n\nalpha beta gamma delta epsilon zeta eta theta/no_think";
    h_http r =
        h_post(e, "/api/generate",
               "{\"prompt\": \"alpha beta gamma delta epsilon zeta eta theta\", \"top-p\": 0.5, \"top-k\": \"5\"}");
    expect_exception(&r, TYPE_ERROR "number, but is string");
    assert_true(h_emu_log_has(e, "top-p: 0.500000"));
    post_expect(e, "/api/generate", "{\"prompt\": \"alpha beta gamma delta epsilon zeta eta theta\"}", 200, STATUS_OK);
    wait_generations(e, 1);
    char *text = h_poll_until_done(e, 5.0);
    assert_non_null(text);
    assert_int_equal(strlen(text), strlen(greedy));
    assert_string_not_equal(text, greedy);
    assert_memory_equal(text, "<think>\n\n</think>\n\n", 19); /* the think block is not shuffled */
    free(text);
}

/* nlohmann reads any number (a huge integer as floating point); top-k converts like the vendor's
 * static_cast (no crash, no 400). */
static void test_sampling_values_of_any_size_are_accepted(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/generate", "{\"prompt\": \"a\", \"top-k\": 99999999999999999999}", 200, STATUS_OK);
    wait_generations(e, 1);
    post_expect(e, "/api/generate", "{\"prompt\": \"b\", \"top-k\": -1e30, \"temperature\": 1e300}", 200, STATUS_OK);
    wait_generations(e, 2);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"c\"}], \"top-k\": 3e9}", 200,
                "{\"done\":true,\"message\":\"" THINK "c/no_think\"}");
    assert_true(h_emu_log_has(e, "top-k: 2147483647"));
    assert_true(h_emu_log_has(e, "top-k: -2147483648 is invalid"));
}

static void test_generate_with_prompt_answers_status_ok(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/generate", "{\"prompt\": \"hello\", \"stream\": true, \"model\": \"x\"}", 200, STATUS_OK);
    wait_generations(e, 1);
    h_http r = h_get(e, "/api/generate_provider");
    expect(&r, 200, "{\"done\":true,\"response\":\"" THINK "hello/no_think\"}");
}

/* ---- /api/generate_provider ---- */

static void test_provider_when_idle_answers_done_true_empty_compact(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    for (int i = 0; i < 3; i++) {
        h_http r = h_get(e, "/api/generate_provider");
        expect(&r, 200, IDLE);
    }
}

/* ---- /api/chat ---- */

static void test_chat_without_messages_answers_invalid_request_format(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/chat", "{\"prompt\": \"hi\"}", 400, BAD_FORMAT);
    post_expect(e, "/api/chat", "{\"messages\": [", 400, BAD_FORMAT);
    post_expect(e, "/api/chat", "", 400, BAD_FORMAT);
    assert_int_equal(h_count(&g_tok, "/encode"), 0);
}

static void test_chat_with_messages_object_answers_500_must_be_array(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_post(e, "/api/chat", "{\"messages\": {\"role\": \"user\", \"content\": \"hi\"}}");
    expect_exception(&r, TYPE_ERROR "array, but is object");
    assert_int_equal(h_count(&g_tok, "/encode"), 0);
}

static void test_chat_without_element_having_role_and_content_answers_invalid_message_format(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\"}, {\"content\": \"hi\"}, \"text\", 3]}", 400,
                BAD_MESSAGE);
    post_expect(e, "/api/chat", "{\"messages\": []}", 400, BAD_MESSAGE);
    assert_int_equal(h_count(&g_tok, "/encode"), 0);
}

/* The first element with both keys runs, whatever its role; later elements are ignored. */
static void test_chat_runs_only_first_element_with_role_and_content(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/chat",
                "{\"messages\": [{\"content\": \"skipped\"}, {\"role\": \"system\", \"content\": \"first\"}, "
                "{\"role\": \"user\", \"content\": \"second\"}]}",
                200, "{\"done\":true,\"message\":\"" THINK "first/no_think\"}");
    assert_int_equal(h_count(&g_tok, "/encode"), 1);
    char *encode = h_body(&g_tok, "/encode", 0);
    assert_non_null(strstr(encode, "\"text\":\"first\""));
    free(encode);
}

static void test_chat_with_non_string_content_answers_500(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_post(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": [\"hi\"]}]}");
    expect_exception(&r, TYPE_ERROR "string, but is array");
    assert_int_equal(h_count(&g_tok, "/encode"), 0);
}

static void test_chat_answers_think_block_and_echo(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hello there\"}]}", 200,
                "{\"done\":true,\"message\":\"" THINK "hello there/no_think\"}");
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"again/no_think\"}]}", 200,
                "{\"done\":true,\"message\":\"" THINK "again/no_think\"}");
}

/* fast profile x20: prefill chunk 0.1 s, 40 ms per token; 4 think ids + 6 reply ids, each after a
 * decode step (the last step produces EOS): the answer cannot come before 0.1 + 10 x 0.04 s. */
static void test_chat_answers_only_after_whole_generation(void **state)
{
    (void)state;
    h_emu *e = START("--emu-time-scale", "20", "--emu-init-seconds", "0", "--emu-reply-tokens", "6");
    double t0 = h_now();
    h_http r = h_post(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"ab\"}]}");
    double elapsed = h_now() - t0;
    assert_int_equal(r.status, 200);
    h_http_free(&r);
    idvec ids = {0};
    assert_true(h_body_ids(&g_tok, "/decode", 0, &ids));
    assert_int_equal(ids.len, 10);
    iv_free(&ids);
    double expected = 0.005 * 20 + 10 * (20.0 / 500.0);
    assert_true(elapsed >= expected - 0.002);
    assert_true(elapsed < 2 * expected + 1.0);
    h_http p = h_get(e, "/api/generate_provider"); /* finished and nothing streamed */
    expect(&p, 200, IDLE);
}

/* ---- /api/stop ---- */

static void test_stop_always_answers_status_ok(void **state)
{
    (void)state;
    h_emu *e = START("--emu-reply-tokens", "200");
    h_http r = h_get(e, "/api/stop"); /* idle */
    expect(&r, 200, STATUS_OK);
    r = h_request_to(e->port, "GET", "/api/stop", "{\"ignored\": 1}", 5.0); /* a body is ignored */
    expect(&r, 200, STATUS_OK);
    post_expect(e, "/api/generate", "{\"prompt\": \"x\"}", 200, STATUS_OK);
    bool done = true;
    for (double end = h_now() + 5.0; done && h_now() < end;) { /* wait until the run is on */
        free(h_poll(e, &done));
    }
    assert_false(done);
    r = h_get(e, "/api/stop"); /* running */
    expect(&r, 200, STATUS_OK);
    wait_generations(e, 1);
}

/* ---- routing, methods, CORS ---- */

static void test_unknown_path_answers_404_empty(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    static const char *paths[] = {"/", "/api/health", "/api/tags", "/v1/models", "/api/generate/", "/api/chat/x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        h_http r = h_get(e, paths[i]);
        expect(&r, 404, "");
        r = h_post(e, paths[i], "{}");
        expect(&r, 404, "");
    }
}

static void test_known_path_with_wrong_method_answers_404_empty(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    static const char *gets[] = {"/api/generate", "/api/reset", "/api/chat"};
    for (size_t i = 0; i < 3; i++) {
        h_http r = h_get(e, gets[i]);
        expect(&r, 404, "");
    }
    post_expect(e, "/api/generate_provider", "{}", 404, "");
    post_expect(e, "/api/stop", "{}", 404, "");
    h_http r = h_request_to(e->port, "PUT", "/api/generate", "{\"prompt\": \"x\"}", 5.0);
    expect(&r, 404, "");
    r = h_request_to(e->port, "DELETE", "/api/stop", NULL, 5.0);
    expect(&r, 404, "");
    assert_only_a_valid_task_ran(e, "/api/generate", "/encode");
}

/* A method httplib's parser does not know: 400 before the pre-routing hook (no CORS header). */
static void test_unknown_method_answers_400_empty_without_cors(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_request_to(e->port, "FROB", "/api/stop", NULL, 5.0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "");
    assert_null(h_header(&r, "Access-Control-Allow-Origin"));
    h_http_free(&r);
}

/* TRACE (and CONNECT, PRI) parse but httplib routes no such method: 400 after the hook. */
static void test_parsed_but_unrouted_method_answers_400_empty(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_request_to(e->port, "TRACE", "/api/stop", NULL, 5.0);
    expect(&r, 400, "");
    r = h_request_to(e->port, "TRACE", "/nowhere", NULL, 5.0);
    expect(&r, 400, "");
}

static void test_options_answers_200_with_cors_preflight_headers(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    static const char *paths[] = {"/api/generate", "/api/chat", "/nowhere", "/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        h_http r = h_request_to(e->port, "OPTIONS", paths[i], NULL, 5.0);
        char *methods = h_header(&r, "Access-Control-Allow-Methods");
        char *headers = h_header(&r, "Access-Control-Allow-Headers");
        assert_non_null(methods);
        assert_non_null(headers);
        assert_string_equal(methods, "GET, POST, OPTIONS");
        assert_string_equal(headers, "Content-Type");
        free(methods);
        free(headers);
        expect(&r, 200, "");
    }
    h_http r = h_request_to(e->port, "OPTIONS", "/api/generate", "{\"prompt\": \"x\"}", 5.0);
    expect(&r, 200, "");
    assert_only_a_valid_task_ran(e, "/api/generate", "/encode"); /* OPTIONS never reaches a handler */
}

/* Every kind of answer: 200 (hand-written and nlohmann bodies), 400, 404, 500. expect() checks
 * the Access-Control-Allow-Origin header and, for bodies, Content-Type: application/json. */
static void test_every_answer_has_cors_origin_and_json_content_type(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    h_http r = h_get(e, "/api/stop");
    expect(&r, 200, STATUS_OK);
    r = h_get(e, "/api/generate_provider");
    expect(&r, 200, IDLE);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 200,
                "{\"done\":true,\"message\":\"" THINK "hi/no_think\"}");
    post_expect(e, "/api/generate", "{}", 400, BAD_FORMAT);
    post_expect(e, "/api/chat", "{\"messages\": []}", 400, BAD_MESSAGE);
    r = h_get(e, "/missing");
    expect(&r, 404, "");
    r = h_post(e, "/api/generate", "{\"prompt\": true}");
    expect_exception(&r, TYPE_ERROR "string, but is boolean");
    post_expect(e, "/api/reset", "{\"system_prompt\": \"You are terse.\"}", 200, STATUS_OK);
}

/* ---- llm is running ---- */

/* Polls the provider until it says done:false (a task runs); false on timeout. */
static bool wait_busy(h_emu *e, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (h_now() < end) {
        bool done = true;
        char *text = h_poll(e, &done);
        free(text);
        if (text && !done)
            return true;
        h_sleep(0.001);
    }
    return false;
}

/* fast profile x100: the reset prefill (21 tokens, one chunk) takes 0.5 s. Every gated request in
 * that window gets 400; afterwards the same generate is accepted. */
static void test_requests_during_reset_prefill_answer_llm_is_running(void **state)
{
    (void)state;
    h_emu *e = START("--emu-time-scale", "100", "--emu-init-seconds", "0");
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    assert_true(wait_busy(e, 5.0));
    post_expect(e, "/api/generate", "{\"prompt\": \"hi\"}", 400, LLM_RUNNING);
    post_expect(e, "/api/reset", "{\"system_prompt\": \"x\"}", 400, LLM_RUNNING);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 400, LLM_RUNNING);
    h_http r = h_get(e, "/api/stop"); /* not gated */
    expect(&r, 200, STATUS_OK);
    r = h_get(e, "/api/generate_provider");
    expect(&r, 200, "{\"done\":false,\"response\":\"\"}"); /* still inside the prefill */
    for (double end = h_now() + 5.0; h_now() < end;) {     /* until the prefill is over */
        bool done = false;
        free(h_poll(e, &done));
        if (done)
            break;
    }
    post_expect(e, "/api/generate", "{\"prompt\": \"hi\"}", 200, STATUS_OK);
    assert_int_equal(h_count(&g_tok, "/reset"), 1); /* the rejected reset never reached the tokenizer */
}

/* A running generation gates the same way. */
static void test_requests_during_generation_answer_llm_is_running(void **state)
{
    (void)state;
    h_emu *e = START("--emu-reply-tokens", "400");
    post_expect(e, "/api/generate", "{\"prompt\": \"long\"}", 200, STATUS_OK);
    assert_true(wait_busy(e, 5.0));
    post_expect(e, "/api/generate", "{\"prompt\": \"hi\"}", 400, LLM_RUNNING);
    post_expect(e, "/api/reset", "{}", 400, LLM_RUNNING);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 400, LLM_RUNNING);
    h_http r = h_get(e, "/api/stop");
    expect(&r, 200, STATUS_OK);
    wait_generations(e, 1);
    assert_int_equal(h_count(&g_tok, "/encode"), 1);
}

#define T(name) cmocka_unit_test_teardown(name, emu_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_reset_with_empty_object_answers_status_ok),
        T(test_reset_with_empty_body_answers_invalid_request_format),
        T(test_reset_with_non_string_system_prompt_answers_500_with_exception_what),
        T(test_generate_with_unparseable_json_answers_invalid_request_format),
        T(test_generate_without_prompt_answers_invalid_request_format),
        T(test_generate_with_non_string_prompt_answers_500_with_exception_what),
        T(test_generate_with_wrongly_typed_sampling_value_answers_500_keeping_earlier_keys),
        T(test_generate_with_prompt_answers_status_ok),
        T(test_provider_when_idle_answers_done_true_empty_compact),
        T(test_chat_without_messages_answers_invalid_request_format),
        T(test_chat_with_messages_object_answers_500_must_be_array),
        T(test_chat_without_element_having_role_and_content_answers_invalid_message_format),
        T(test_chat_runs_only_first_element_with_role_and_content),
        T(test_chat_with_non_string_content_answers_500),
        T(test_chat_answers_think_block_and_echo),
        T(test_chat_answers_only_after_whole_generation),
        T(test_stop_always_answers_status_ok),
        T(test_unknown_path_answers_404_empty),
        T(test_known_path_with_wrong_method_answers_404_empty),
        T(test_unknown_method_answers_400_empty_without_cors),
        T(test_parsed_but_unrouted_method_answers_400_empty),
        T(test_sampling_values_of_any_size_are_accepted),
        T(test_options_answers_200_with_cors_preflight_headers),
        T(test_every_answer_has_cors_origin_and_json_content_type),
        T(test_requests_during_reset_prefill_answer_llm_is_running),
        T(test_requests_during_generation_answer_llm_is_running),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
