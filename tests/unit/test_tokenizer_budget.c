/* Tests for the tokenizer's budgeted encoding (issue 9, defect 6) on the real Qwen3 data: encoding
 * within a budget gives exactly tokenizer_encode's first ids and stops, looking only at a bounded
 * prefix of a text of any length; the tail of a text is encoded from a window at its end with
 * tokenizer_encode's ids; the longest token's bytes. */
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
#include "tokenizer/tokenizer.h"

static tokenizer *tok;

/* Mixed text: words, punctuation, numbers, newlines, CJK, emoji, a combining accent (NFC), special
 * tokens; about bytes long. */
static char *mixed_text(size_t bytes)
{
    static const char *const parts[] = {
        "The quick brown fox, 1234 times. ",
        "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C ",
        "cafe\xCC\x81 na\xC3\xAFve\n",
        "<|im_start|>user\n",
        "    indented code();\n",
        "\xF0\x9F\x98\x80!? ",
        "<|im_end|>\n",
        "--------------------\n",
    };
    strbuf b = {0};
    for (size_t i = 0; b.len < bytes; i++)
        sb_puts(&b, parts[(i * 7 + i / 3) % (sizeof parts / sizeof parts[0])]);
    return sb_steal(&b);
}

static void assert_prefix_of_full(const idvec *got, size_t from, const idvec *full, size_t n)
{
    assert_true(got->len >= from + n && full->len >= n);
    if (memcmp(got->v + from, full->v, n * sizeof *full->v) != 0)
        fail_msg("the budgeted ids differ from tokenizer_encode's first %zu", n);
}

static void test_a_text_within_the_budget_is_encoded_whole(void **state)
{
    (void)state;
    char *text = mixed_text(3000);
    idvec full = {0}, got = {0};
    tokenizer_encode(tok, text, strlen(text), &full);
    assert_true(tokenizer_encode_limit(tok, text, strlen(text), full.len, &got));
    assert_int_equal(got.len, full.len);
    assert_prefix_of_full(&got, 0, &full, full.len);
    iv_free(&full);
    iv_free(&got);
    free(text);
}

static void test_a_text_over_the_budget_stops_one_id_past_it(void **state)
{
    (void)state;
    char *text = mixed_text(20000);
    idvec full = {0}, got = {0};
    tokenizer_encode(tok, text, strlen(text), &full);
    size_t limits[] = {0, 1, 7, 100, 1000, full.len - 1};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        iv_clear(&got);
        iv_push(&got, 42); /* appends after what out holds */
        assert_false(tokenizer_encode_limit(tok, text, strlen(text), limits[i], &got));
        assert_int_equal(got.len, 1 + limits[i] + 1);
        assert_int_equal(got.v[0], 42);
        assert_prefix_of_full(&got, 1, &full, limits[i] + 1);
    }
    iv_free(&full);
    iv_free(&got);
    free(text);
}

static void test_the_cost_is_the_budgets_not_the_texts(void **state)
{
    (void)state;
    size_t n = (size_t)64 << 20; /* 64 MiB: seconds to encode whole */
    char *text = mixed_text(n);
    idvec got = {0};
    double t0 = clock_mono();
    assert_false(tokenizer_encode_limit(tok, text, strlen(text), 2048, &got));
    double took = clock_mono() - t0;
    assert_int_equal(got.len, 2049);
    printf("the first 2,049 ids of a 64 MiB text: %.1f ms\n", took * 1e3);
    assert_true(took < 1.0);
    iv_free(&got);
    free(text);
}

static void test_the_tail_is_the_end_of_tokenizer_encode(void **state)
{
    (void)state;
    char *text = mixed_text(200000);
    idvec full = {0};
    tokenizer_encode(tok, text, strlen(text), &full);
    size_t wants[] = {1, 10, 2040, 5000};
    for (size_t i = 0; i < sizeof wants / sizeof wants[0]; i++) {
        idvec tail = {0};
        iv_push(&tail, 7);
        tokenizer_encode_tail(tok, text, strlen(text), wants[i], &tail);
        assert_int_equal(tail.len, 1 + wants[i]);
        if (memcmp(tail.v + 1, full.v + full.len - wants[i], wants[i] * sizeof *tail.v) != 0)
            fail_msg("the last %zu ids differ from tokenizer_encode's", wants[i]);
        iv_free(&tail);
    }
    /* a short text: all of its ids */
    idvec tail = {0}, whole = {0};
    tokenizer_encode_tail(tok, "short text", 10, 100, &tail);
    tokenizer_encode(tok, "short text", 10, &whole);
    assert_int_equal(tail.len, whole.len);
    assert_memory_equal(tail.v, whole.v, whole.len * sizeof *whole.v);
    iv_free(&tail);
    iv_free(&whole);
    iv_free(&full);
    free(text);
}

static void test_the_longest_token_is_128_bytes_in_qwen3(void **state)
{
    (void)state;
    assert_int_equal(tokenizer_max_token_bytes(tok), 128); /* a run of 128 spaces */
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    tok = dir ? tokenizer_load(dir, err, sizeof err) : NULL;
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
        cmocka_unit_test(test_a_text_within_the_budget_is_encoded_whole),
        cmocka_unit_test(test_a_text_over_the_budget_stops_one_id_past_it),
        cmocka_unit_test(test_the_cost_is_the_budgets_not_the_texts),
        cmocka_unit_test(test_the_tail_is_the_end_of_tokenizer_encode),
        cmocka_unit_test(test_the_longest_token_is_128_bytes_in_qwen3),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
