/* Tests for engine/output: think split, stop sequences, num_predict, UTF-8 safety. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/output.h"

static tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    char err[256];
    tok = tokenizer_load(getenv("AXLLAMA_TOKENIZER_DIR"), err, sizeof err);
    return tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tokenizer_free(tok);
    return 0;
}

typedef struct {
    strbuf thinking, content;
    int pieces;
} sink;

static void collect(void *user, bool thinking, const char *text, size_t len)
{
    sink *s = user;
    assert_true(len > 0);
    sb_append(thinking ? &s->thinking : &s->content, text, len);
    s->pieces++;
}

static void sink_free(sink *s)
{
    sb_free(&s->thinking);
    sb_free(&s->content);
}

static const char *str(const strbuf *b)
{
    return b->data ? b->data : "";
}

/* Feeds text's ids one at a time (the hardest split) and returns the last status. */
static output_status feed(output_filter *o, const char *text)
{
    idvec ids = {0};
    tokenizer_encode(tok, text, strlen(text), &ids);
    output_status st = OUTPUT_MORE;
    for (size_t i = 0; i < ids.len && st == OUTPUT_MORE; i++)
        st = output_push(o, &ids.v[i], 1);
    iv_free(&ids);
    return st;
}

static void test_think_block_becomes_thinking_and_content_is_trimmed(void **state)
{
    (void)state;
    sink s = {0};
    output_filter *o = output_new(tok, true, NULL, 0, -1, collect, &s);
    assert_int_equal(feed(o, "<think>\nLet me see.\nOK.\n</think>\n\nHello there."), OUTPUT_MORE);
    output_finish(o);
    assert_string_equal(str(&s.thinking), "Let me see.\nOK.");
    assert_string_equal(str(&s.content), "Hello there.");
    assert_string_equal(output_content(o), "Hello there.");
    output_free(o);
    sink_free(&s);
}

static void test_hidden_thinking_is_dropped_including_the_empty_block(void **state)
{
    (void)state;
    sink s = {0};
    output_filter *o = output_new(tok, false, NULL, 0, -1, collect, &s);
    feed(o, "<think>\n\n</think>\n\nJust the answer");
    output_finish(o);
    assert_string_equal(str(&s.thinking), "");
    assert_string_equal(str(&s.content), "Just the answer");
    output_free(o);
    sink_free(&s);
}

static void test_text_without_think_block_is_all_content(void **state)
{
    (void)state;
    sink s = {0};
    output_filter *o = output_new(tok, true, NULL, 0, -1, collect, &s);
    feed(o, "<thin is not a tag, <think> later is content");
    output_finish(o);
    assert_string_equal(str(&s.content), "<thin is not a tag, <think> later is content");
    assert_string_equal(str(&s.thinking), "");
    output_free(o);
    sink_free(&s);
}

static void test_stop_sequence_cuts_the_content_and_stops(void **state)
{
    (void)state;
    sink s = {0};
    const char *stop[] = {"world"};
    output_filter *o = output_new(tok, false, stop, 1, -1, collect, &s);
    assert_int_equal(feed(o, "Hello world, and more"), OUTPUT_STOP);
    output_finish(o);
    assert_string_equal(str(&s.content), "Hello ");
    output_free(o);
    sink_free(&s);
}

static void test_text_that_may_become_a_stop_sequence_is_held_back(void **state)
{
    (void)state;
    sink s = {0};
    const char *stop[] = {"STOPHERE"};
    output_filter *o = output_new(tok, false, stop, 1, -1, collect, &s);
    feed(o, "abc STOPH");
    assert_string_equal(str(&s.content), "abc "); /* "STOPH" could still become the stop */
    feed(o, "ALT");
    assert_string_equal(str(&s.content), "abc STOPHALT");
    output_finish(o);
    output_free(o);
    sink_free(&s);
}

static void test_held_text_is_flushed_at_the_end(void **state)
{
    (void)state;
    sink s = {0};
    const char *stop[] = {"\n\nUser:"};
    output_filter *o = output_new(tok, false, stop, 1, -1, collect, &s);
    feed(o, "Answer.\n\n");
    assert_string_equal(str(&s.content), "Answer.");
    output_finish(o);
    assert_string_equal(str(&s.content), "Answer.\n\n");
    output_free(o);
    sink_free(&s);
}

static void test_num_predict_takes_exactly_that_many_ids(void **state)
{
    (void)state;
    sink s = {0};
    output_filter *o = output_new(tok, false, NULL, 0, 3, collect, &s);
    idvec ids = {0};
    tokenizer_encode(tok, "one two three four five", 23, &ids);
    assert_int_equal(output_push(o, ids.v, 2), OUTPUT_MORE);
    assert_int_equal(output_push(o, ids.v + 2, 3), OUTPUT_LIMIT);
    output_finish(o);
    assert_int_equal(output_ids_taken(o), 3);
    strbuf want = {0};
    tokenizer_decode(tok, ids.v, 3, &want);
    assert_string_equal(str(&s.content), want.data);
    sb_free(&want);
    iv_free(&ids);
    output_free(o);
    sink_free(&s);
}

/* A turn that generated nothing (num_predict 0, or a run that ended at once) finishes cleanly:
 * UBSan once caught a write through a NULL buffer here, and an unsanitised build crashed. */
static void test_a_turn_without_any_id_finishes_with_nothing_emitted(void **state)
{
    (void)state;
    const char *stop[] = {"world"};
    for (int with_stop = 0; with_stop < 2; with_stop++) {
        for (int show = 0; show < 2; show++) {
            sink s = {0};
            output_filter *o = output_new(tok, show, with_stop ? stop : NULL, with_stop ? 1 : 0, 0, collect, &s);
            int32_t id = 9707;
            assert_int_equal(output_push(o, &id, 1), OUTPUT_LIMIT); /* num_predict 0 takes nothing */
            output_finish(o);
            assert_int_equal(output_ids_taken(o), 0);
            assert_int_equal(s.pieces, 0);
            assert_string_equal(output_content(o), "");
            output_free(o);
            sink_free(&s);
        }
    }
}

static void test_a_character_split_across_ids_is_emitted_whole(void **state)
{
    (void)state;
    sink s = {0};
    output_filter *o = output_new(tok, false, NULL, 0, -1, collect, &s);
    feed(o, "x\xF0\x9F\xAB\xA8y"); /* U+1FAE8 is three byte-level tokens */
    output_finish(o);
    assert_string_equal(str(&s.content), "x\xF0\x9F\xAB\xA8y");
    output_free(o);
    sink_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_think_block_becomes_thinking_and_content_is_trimmed),
        cmocka_unit_test(test_hidden_thinking_is_dropped_including_the_empty_block),
        cmocka_unit_test(test_text_without_think_block_is_all_content),
        cmocka_unit_test(test_stop_sequence_cuts_the_content_and_stops),
        cmocka_unit_test(test_text_that_may_become_a_stop_sequence_is_held_back),
        cmocka_unit_test(test_held_text_is_flushed_at_the_end),
        cmocka_unit_test(test_num_predict_takes_exactly_that_many_ids),
        cmocka_unit_test(test_a_character_split_across_ids_is_emitted_whole),
        cmocka_unit_test(test_a_turn_without_any_id_finishes_with_nothing_emitted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
