/* End-to-end tests of compatibility mode (manifest "tokenizer_upstream", docs/models.md): axllama-emu
 * as the runtime and axllama's own tokenizer service run as the EXTERNAL upstream command (a
 * drop-in for the vendor's qwen3_tokenizer_uid.py), axllama's in-process service proxying to it:
 * answers and counts, continuation without a reset, a reset after an edited history, streaming,
 * num_predict, tools refused, upstream start failures, an upstream that dies, no child left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat_result.h"
#include "serve_harness.h"
#include "server_fixture.h"

/* The manifest member for an upstream: `axllama tokenizer serve` on port, or the given command
 * (a JSON array text) when not NULL. */
static char *upstream_json(int port, const char *command, double start_timeout)
{
    strbuf sb = {0};
    sb_printf(&sb,
              "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:%d\", \"start_timeout\": %g, \"command\": ", port,
              start_timeout);
    if (command)
        sb_puts(&sb, command);
    else
        sb_printf(&sb, "[\"%s/axllama\", \"tokenizer\", \"serve\", \"--tokenizer\", \"%s\", \"--port\", \"%d\"]",
                  h_build_dir(), getenv("AXLLAMA_TOKENIZER_DIR"), port);
    sb_puts(&sb, "}");
    return sb_steal(&sb);
}

/* A server with one compat model "m" (emulator args; command NULL = axllama's tokenizer service). */
static int start(h_server *s, const char *const *emu_args, const char *command, double start_timeout)
{
    int port = h_free_port();
    char *extra = upstream_json(port, command, start_timeout);
    h_server_dir(s);
    h_write_manifest(s->dir, "m", emu_args, extra);
    free(extra);
    bool started = h_server_start(s, NULL);
    current = *s;
    if (!started) {
        char *log = h_server_log(s);
        fprintf(stderr, "server did not start:\n%s\n", log);
        free(log);
        fail();
    }
    return port;
}

static const char *content_of(const chat_result *r)
{
    return str(json_object_get(r->last, "message"), "content");
}

static size_t count_in_log(const h_server *s, const char *needle)
{
    char *log = h_server_log(s);
    size_t n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(log);
    return n;
}

#define RESET_LINE "GenerateKVCachePrefill"

static void test_a_chat_answers_with_the_echo_and_the_upstreams_counts(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, 20);
    chat_result r =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hello world\"}]}");
    assert_int_equal(r.http.status, 200);
    assert_done(&r, "stop");
    /* the upstream (not axllama) rendered the prompt: its user message ends with /no_think */
    assert_string_equal(content_of(&r), "Hello world/no_think");
    assert_int_equal(num(r.last, "eval_count"), 4 + h_n_ids(tok, "Hello world/no_think"));
    /* the upstream's diff after the reset: the user turn it rendered + the generation prompt */
    long prompt = num(r.last, "prompt_eval_count");
    assert_int_equal(prompt, h_n_ids(tok, "<|im_start|>user\nHello world/no_think<|im_end|>\n<|im_start|>assistant\n"));
    assert_true(count_in_log(&s, RESET_LINE) >= 1); /* a new conversation starts with a reset */
    chat_free(&r);
    h_server_stop(&s);
}

static void test_turn_two_continues_without_a_reset_and_counts_only_the_new_turn(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, 20);
    chat_result r1 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"First question\"}]}");
    assert_int_equal(r1.http.status, 200);
    assert_string_equal(content_of(&r1), "First question/no_think");
    size_t resets = count_in_log(&s, RESET_LINE);
    chat_result r2 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"First question\"},"
             "{\"role\":\"assistant\",\"content\":\"First question/no_think\"},"
             "{\"role\":\"user\",\"content\":\"Second\"}]}");
    assert_int_equal(r2.http.status, 200);
    assert_done(&r2, "stop");
    assert_string_equal(content_of(&r2), "Second/no_think");
    assert_int_equal(count_in_log(&s, RESET_LINE), resets); /* no reset */
    assert_true(count_in_log(&s, "compatibility mode: continuing") == 1);
    /* only the new turn, as the upstream computed it (the end of the held reply + the new turn) */
    long prompt = num(r2.last, "prompt_eval_count");
    assert_true(prompt > 0);
    assert_true(prompt < num(r1.last, "prompt_eval_count") + 12);
    assert_true(prompt >= (long)h_n_ids(tok, "<|im_start|>user\nSecond/no_think<|im_end|>\n<|im_start|>assistant\n"));
    chat_free(&r1);
    chat_free(&r2);
    h_server_stop(&s);
}

static void test_an_edited_history_resets_and_answers_the_last_message(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, 20);
    chat_result r1 = post(&s, "/api/chat",
                          "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"One\"}]}");
    assert_int_equal(r1.http.status, 200);
    size_t resets = count_in_log(&s, RESET_LINE);
    chat_result r2 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Edited one\"},"
             "{\"role\":\"assistant\",\"content\":\"One/no_think\"},{\"role\":\"user\",\"content\":\"Two\"}]}");
    assert_int_equal(r2.http.status, 200);
    assert_done(&r2, "stop");
    assert_string_equal(content_of(&r2), "Two/no_think");
    assert_true(count_in_log(&s, RESET_LINE) > resets); /* a reset */
    /* only the last user message was sent: the same count as a fresh one-turn chat */
    assert_int_equal(num(r2.last, "prompt_eval_count"),
                     h_n_ids(tok, "<|im_start|>user\nTwo/no_think<|im_end|>\n<|im_start|>assistant\n"));
    /* a different system prompt resets as well */
    size_t resets2 = count_in_log(&s, RESET_LINE);
    chat_result r3 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
             "{\"role\":\"user\",\"content\":\"Edited one\"},{\"role\":\"assistant\",\"content\":\"One/no_think\"},"
             "{\"role\":\"user\",\"content\":\"Two\"},{\"role\":\"assistant\",\"content\":\"Two/no_think\"},"
             "{\"role\":\"user\",\"content\":\"Three\"}]}");
    assert_int_equal(r3.http.status, 200);
    assert_string_equal(content_of(&r3), "Three/no_think");
    assert_true(count_in_log(&s, RESET_LINE) > resets2);
    chat_free(&r1);
    chat_free(&r2);
    chat_free(&r3);
    h_server_stop(&s);
}

static void test_streamed_pieces_add_up_and_num_predict_gives_length(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, 20);
    chat_result r = post(&s, "/api/chat",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"one two three four\"}]}");
    assert_int_equal(r.http.status, 200);
    assert_true(r.n >= 3);
    assert_done(&r, "stop");
    char *content = h_join(r.lines, r.n, "message", "content");
    assert_string_equal(content, "one two three four/no_think");
    free(content);
    chat_result g = post(&s, "/api/generate",
                         "{\"model\":\"m\",\"prompt\":\"alpha beta gamma delta epsilon\",\"stream\":false,"
                         "\"options\":{\"num_predict\":6}}");
    assert_int_equal(g.http.status, 200);
    assert_done(&g, "length");
    assert_int_equal(num(g.last, "eval_count"), 6);
    assert_string_equal(str(g.last, "response"), "alpha beta"); /* 4 ids of think block + 2 of the echo */
    chat_free(&r);
    chat_free(&g);
    h_server_stop(&s);
}

static void test_tools_are_refused_with_400(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, 20);
    chat_result r =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}");
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "does not support tools"));
    chat_free(&r);
    h_server_stop(&s);
}

static void test_a_bad_upstream_command_fails_the_load_with_a_clear_error_and_no_child(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, "[\"/nonexistent/qwen3_tokenizer_uid\"]", 5);
    chat_result r = post(&s, "/api/chat",
                         "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(r.http.status, 500);
    assert_non_null(strstr(r.http.body.data, "tokenizer upstream"));
    assert_non_null(strstr(r.http.body.data, "No such file"));
    assert_int_equal(h_children_named(s.pid, "axllama-emu", NULL), 0);
    chat_free(&r);
    h_server_stop(&s);
}

static void test_an_upstream_whose_port_never_opens_fails_the_load_and_is_killed(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, "[\"sleep\", \"60\"]", 1);
    double t0 = h_now();
    chat_result r = post(&s, "/api/chat",
                         "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(r.http.status, 500);
    assert_non_null(strstr(r.http.body.data, "tokenizer upstream"));
    assert_true(h_now() - t0 < 30); /* bounded by start_timeout, not the 60 s sleep */
    assert_int_equal(h_children_named(s.pid, "sleep", NULL), 0);
    assert_int_equal(h_children_named(s.pid, "axllama-emu", NULL), 0);
    chat_free(&r);
    h_server_stop(&s);
}

static void test_the_upstream_dying_mid_reply_gives_an_error_then_a_fresh_start(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "3000", NULL};
    start(&s, args, NULL, 20);
    chat_result load = post(&s, "/api/generate", "{\"model\":\"m\"}");
    assert_int_equal(load.http.status, 200);
    pid_t up = 0;
    assert_int_equal(h_children_named(s.pid, "axllama", &up), 1);
    stream_request t = {.s = &s,
                        .path = "/api/chat",
                        .body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"doomed reply\"}]}"};
    pthread_t th;
    pthread_create(&th, NULL, stream_request_run, &t);
    assert_true(stream_request_wait_streaming(&t, 30)); /* the reply is under way */
    kill(up, SIGKILL);
    pthread_join(th, NULL);
    assert_int_equal(t.r.http.status, 200);
    assert_non_null(t.r.last);
    assert_non_null(strstr(str(t.r.last, "error"), "tokenizer upstream"));
    assert_null(json_object_get(t.r.last, "done_reason"));
    /* the next request starts the upstream and the runtime again and answers */
    chat_result after = post(&s, "/api/chat",
                             "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":3},"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"alive again\"}]}");
    if (after.http.status != 200 || !after.last || !json_is_true(json_object_get(after.last, "done")))
        fprintf(stderr, "answer %ld: %s\n", after.http.status, after.http.body.data);
    assert_done(&after, "length");
    pid_t up2 = 0;
    assert_int_equal(h_children_named(s.pid, "axllama", &up2), 1);
    assert_true(up2 != up);
    chat_free(&load);
    chat_free(&t.r);
    chat_free(&after);
    h_server_stop(&s);
}

static void test_shutdown_leaves_neither_runtime_nor_upstream(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, 20);
    chat_result r = post(&s, "/api/generate", "{\"model\":\"m\"}");
    assert_int_equal(r.http.status, 200);
    pid_t rt = 0, up = 0;
    assert_int_equal(h_children_named(s.pid, "axllama-emu", &rt), 1);
    assert_int_equal(h_children_named(s.pid, "axllama", &up), 1);
    int status = h_server_stop(&s);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(kill(rt, 0) == -1);
    assert_true(kill(up, 0) == -1);
    chat_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_chat_answers_with_the_echo_and_the_upstreams_counts, stop_current),
        cmocka_unit_test_teardown(test_turn_two_continues_without_a_reset_and_counts_only_the_new_turn, stop_current),
        cmocka_unit_test_teardown(test_an_edited_history_resets_and_answers_the_last_message, stop_current),
        cmocka_unit_test_teardown(test_streamed_pieces_add_up_and_num_predict_gives_length, stop_current),
        cmocka_unit_test_teardown(test_tools_are_refused_with_400, stop_current),
        cmocka_unit_test_teardown(test_a_bad_upstream_command_fails_the_load_with_a_clear_error_and_no_child,
                                  stop_current),
        cmocka_unit_test_teardown(test_an_upstream_whose_port_never_opens_fails_the_load_and_is_killed, stop_current),
        cmocka_unit_test_teardown(test_the_upstream_dying_mid_reply_gives_an_error_then_a_fresh_start, stop_current),
        cmocka_unit_test_teardown(test_shutdown_leaves_neither_runtime_nor_upstream, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
