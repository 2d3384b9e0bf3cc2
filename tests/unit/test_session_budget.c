/* Tests for engine/session's planning of prompts far larger than the window (issue 9, defect 6): a
 * newest turn of megabytes is truncated from its first ids and the ids of its end without encoding
 * the whole text (its count then a lower bound), refused as "more than N tokens" without truncation,
 * a huge system prompt is refused the same way, a huge new turn after a held conversation resets, and
 * a raw prompt is cut the same way; each in far less time than encoding the text would take. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "engine/session.h"

static tokenizer *tok;
static session_model model;

#define MSG(r, c) ((chat_message){.role = (r), .content = (c)})
#define HUGE_BYTES ((size_t)24 << 20)
#define QUICK_S 2.0 /* encoding 24 MiB whole takes several seconds */

static char *words(size_t bytes, const char *first, const char *last)
{
    strbuf b = {0};
    sb_puts(&b, first);
    while (b.len < bytes)
        sb_puts(&b, "lorem ipsum dolor ");
    sb_puts(&b, last);
    return sb_steal(&b);
}

static char *decoded(const idvec *ids)
{
    strbuf out = {0};
    tokenizer_decode(tok, ids->v, ids->len, &out);
    sb_puts(&out, "");
    return sb_steal(&out);
}

static void test_a_huge_newest_turn_is_truncated_from_its_start_and_end(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    session_model m = model;
    m.truncate = true;
    char *text = words(HUGE_BYTES, "BEGINNING of the document. ", " THE END. What is it about?");
    chat_message msgs[] = {MSG("user", text)};
    session_plan plan;
    char err[256] = "";
    double t0 = clock_mono();
    assert_true(session_plan_chat(&s, &m, msgs, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    double took = clock_mono() - t0;
    printf("planned a %zu MiB turn in %.0f ms\n", HUGE_BYTES >> 20, took * 1e3);
    assert_true(took < QUICK_S);
    assert_true(plan.reset);
    assert_true(plan.truncated_at_least);
    assert_true(plan.truncated > 0);
    size_t budget = (size_t)(2048 - (int)plan.reset_ids.len) / 128 * 128;
    assert_true(plan.diff.len <= budget && plan.diff.len > budget - 16);
    char *got = decoded(&plan.diff);
    assert_true(!strncmp(got, "<|im_start|>user\nBEGINNING", 26));
    const char *tail = " THE END. What is it about?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_string_equal(got + strlen(got) - strlen(tail), tail);
    free(got);
    session_plan_free(&plan);
    session_free(&s);
    free(text);
}

static void test_a_huge_turn_without_truncation_is_refused_quickly(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    char *text = words(HUGE_BYTES, "", "");
    chat_message msgs[] = {MSG("user", text)};
    session_plan plan;
    char err[256] = "";
    double t0 = clock_mono();
    assert_false(session_plan_chat(&s, &model, msgs, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(clock_mono() - t0 < QUICK_S);
    assert_non_null(strstr(err, "the prompt is too long: more than "));
    session_free(&s);
    free(text);
}

static void test_a_huge_system_prompt_is_refused_quickly(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    session_model m = model;
    m.truncate = true; /* a system prompt is never cut */
    char *text = words(HUGE_BYTES, "", "");
    chat_message msgs[] = {MSG("system", text), MSG("user", "Hi")};
    session_plan plan;
    char err[256] = "";
    double t0 = clock_mono();
    assert_false(session_plan_chat(&s, &m, msgs, 2, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(clock_mono() - t0 < QUICK_S);
    assert_string_equal(err, "the system prompt is too long: more than 2048 tokens (this model's context takes at most "
                             "2048)");
    session_free(&s);
    free(text);
}

static void test_a_huge_next_turn_after_a_held_conversation_resets(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    session_model m = model;
    m.truncate = true;
    chat_message first[] = {MSG("user", "Hi")};
    session_plan plan;
    char err[256] = "";
    assert_true(session_plan_chat(&s, &m, first, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    idvec gen = {0};
    tokenizer_encode(tok, "Hello!", 6, &gen);
    session_commit(&s, &plan, gen.v, gen.len, "Hello!", true);
    session_plan_free(&plan);
    char *text = words(HUGE_BYTES, "", "");
    chat_message next[] = {MSG("user", "Hi"), MSG("assistant", "Hello!"), MSG("user", text)};
    double t0 = clock_mono();
    assert_true(session_plan_chat(&s, &m, next, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(clock_mono() - t0 < QUICK_S);
    assert_true(plan.reset); /* no room after the held turn: reset, keep only the newest turn, cut */
    assert_true(plan.truncated_at_least);
    session_plan_free(&plan);
    iv_free(&gen);
    session_free(&s);
    free(text);
}

static void test_a_huge_raw_prompt_is_cut_or_refused(void **state)
{
    (void)state;
    session_model m = model;
    m.truncate = true;
    char *text = words(HUGE_BYTES, "START ", " FINISH");
    session_plan plan;
    char err[256] = "";
    double t0 = clock_mono();
    assert_true(session_plan_raw(&m, text, &plan, err, sizeof err));
    assert_true(clock_mono() - t0 < QUICK_S);
    assert_true(plan.truncated_at_least && plan.diff.len <= 2048);
    char *got = decoded(&plan.diff);
    assert_true(!strncmp(got, "START", 5));
    assert_string_equal(got + strlen(got) - 7, " FINISH");
    free(got);
    session_plan_free(&plan);
    assert_false(session_plan_raw(&model, text, &plan, err, sizeof err));
    assert_non_null(strstr(err, "the prompt is too long: more than 8192 tokens"));
    free(text);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    tok = dir ? tokenizer_load(dir, err, sizeof err) : NULL;
    model = (session_model){.tok = tok,
                            .family = CHAT_TEMPLATE_QWEN3,
                            .max_prefill = 2048,
                            .max_positions = 2559,
                            .default_system = "You are helpful."};
    return tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tokenizer_free(tok);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_huge_newest_turn_is_truncated_from_its_start_and_end),
        cmocka_unit_test(test_a_huge_turn_without_truncation_is_refused_quickly),
        cmocka_unit_test(test_a_huge_system_prompt_is_refused_quickly),
        cmocka_unit_test(test_a_huge_next_turn_after_a_held_conversation_resets),
        cmocka_unit_test(test_a_huge_raw_prompt_is_cut_or_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
