/* End-to-end tests of engine/restore.c on `axllama serve` + axllama-emu: a multi-turn chat that a
 * one-off request (a title) pushed out of the runtime is put back while the runtime idles, so its
 * next turn continues (made, used by the next turn); the restore yields to a different request
 * (abandoned); AXLLAMA_RESTORE=0 turns it off; a model that does not reproduce its reply discards
 * it (--emu-unstable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat_result.h"
#include "serve_harness.h"
#include "server_fixture.h"

#define USER_TURN(text) "<|im_start|>user\n" text "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

static void start(h_server *s, const char *const *emu_args, const char *const *env)
{
    start_model_m(s, emu_args, NULL, env);
}

#define CHAT_1 "{\"role\":\"user\",\"content\":\"First question\"}"
#define CHAT_2 \
    CHAT_1 ",{\"role\":\"assistant\",\"content\":\"First question\"},{\"role\":\"user\",\"content\":\"Second\"}"
#define CHAT_3 CHAT_2 ",{\"role\":\"assistant\",\"content\":\"Second\"},{\"role\":\"user\",\"content\":\"Third\"}"
#define TITLE "{\"role\":\"user\",\"content\":\"Generate a title for: First question, Second\"}"

static chat_result chat(h_server *s, const char *messages)
{
    strbuf body = {0};
    sb_printf(&body, "{\"model\":\"m\",\"stream\":false,\"messages\":[%s]}", messages);
    chat_result r = post(s, "/api/chat", body.data);
    sb_free(&body);
    if (r.http.status != 200)
        fprintf(stderr, "answer %ld: %s\n", r.http.status, r.http.body.data);
    assert_int_equal(r.http.status, 200);
    assert_done(&r, "stop");
    return r;
}

/* Two turns of a chat, then a one-off request that resets the runtime. */
static void chat_then_title(h_server *s)
{
    chat_result r = chat(s, CHAT_1);
    chat_free(&r);
    r = chat(s, CHAT_2);
    assert_int_equal(num(r.last, "prompt_eval_count"), h_n_ids(tok, "<|im_end|>\n" USER_TURN("Second")));
    chat_free(&r);
    r = chat(s, TITLE);
    chat_free(&r);
}

static long third_turn_prefill(h_server *s)
{
    chat_result r = chat(s, CHAT_3);
    assert_string_equal(str(json_object_get(r.last, "message"), "content"), "Third");
    long n = num(r.last, "prompt_eval_count");
    chat_free(&r);
    return n;
}

static void test_a_chat_displaced_by_a_one_off_request_is_restored_and_continues(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL);
    chat_then_title(&s);
    assert_true(h_server_wait_log(&s, "restored a conversation", 10));
    /* the next turn continues: only the new part is prefilled */
    assert_int_equal(third_turn_prefill(&s), h_n_ids(tok, "<|im_end|>\n" USER_TURN("Third")));
    h_server_stop(&s);
}

static void test_restore_off_leaves_the_next_turn_to_reset(void **state)
{
    (void)state;
    h_server s;
    const char *env[] = {"AXLLAMA_RESTORE=0", NULL};
    start(&s, NULL, env);
    chat_then_title(&s);
    long prefill = third_turn_prefill(&s);
    assert_true(prefill > (long)h_n_ids(tok, USER_TURN("Third")) + 20); /* the whole chat again */
    char *log = h_server_log(&s);
    assert_null(strstr(log, "restored a conversation"));
    free(log);
    h_server_stop(&s);
}

static void test_a_model_that_strays_from_its_reply_discards_the_restore(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-unstable", "1", NULL};
    start(&s, args, NULL);
    chat_result r = chat(&s, CHAT_1); /* generation 1: rotated; the client sends back what it got */
    char messages[1024];
    snprintf(messages, sizeof messages,
             CHAT_1 ",{\"role\":\"assistant\",\"content\":\"%s\"},"
                    "{\"role\":\"user\",\"content\":\"one two three four five\"}",
             str(json_object_get(r.last, "message"), "content"));
    chat_free(&r);
    r = chat(&s, messages);
    chat_free(&r);
    r = chat(&s, TITLE);
    chat_free(&r);
    if (!h_server_wait_log(&s, "restore discarded", 10)) {
        char *l = h_server_log(&s);
        fprintf(stderr, "%s\n", l);
        free(l);
        fail();
    }
    char *log = h_server_log(&s);
    assert_null(strstr(log, "restored a conversation"));
    free(log);
    h_server_stop(&s);
}

/* The restore of a long chat on a slow profile is under way when another request arrives: it stops
 * at once and the request is served; the chat's next turn then resets. */
static void test_a_restore_yields_to_a_different_request(void **state)
{
    (void)state;
    h_server s;
    /* 0.2 s per 128-token prefill chunk, fast decoding */
    const char *args[] = {"--emu-profile", "qwen3-4b-pi5", "--emu-time-scale", "0.15", "--emu-init-seconds", "0", NULL};
    start(&s, args, NULL);
    strbuf big = {0};
    for (int i = 0; i < 300; i++)
        sb_puts(&big, " word");
    char *messages = xcalloc(1, 8 * big.len + 1024);
    sprintf(messages, "{\"role\":\"user\",\"content\":\"%s\"}", big.data);
    chat_result r = chat(&s, messages);
    chat_free(&r);
    sprintf(messages,
            "{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":\"%s\"},"
            "{\"role\":\"user\",\"content\":\"%s\"}",
            big.data, big.data, big.data);
    r = chat(&s, messages);
    chat_free(&r);
    r = chat(&s, TITLE);
    chat_free(&r);
    assert_true(h_server_wait_log(&s, "input token num", 10)); /* the restore's prefill ... */
    double t0 = h_now();
    r = chat(&s, "{\"role\":\"user\",\"content\":\"Something else\"}"); /* ... meets another request */
    assert_string_equal(str(json_object_get(r.last, "message"), "content"), "Something else");
    assert_true(h_now() - t0 < 5.0);
    chat_free(&r);
    assert_true(h_server_wait_log(&s, "restore stopped for a new request", 10));
    free(messages);
    sb_free(&big);
    h_server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_chat_displaced_by_a_one_off_request_is_restored_and_continues, stop_current),
        cmocka_unit_test_teardown(test_restore_off_leaves_the_next_turn_to_reset, stop_current),
        cmocka_unit_test_teardown(test_a_model_that_strays_from_its_reply_discards_the_restore, stop_current),
        cmocka_unit_test_teardown(test_a_restore_yields_to_a_different_request, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
