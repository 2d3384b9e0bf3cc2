/* Tests for engine/toolcall: <tool_call> blocks parsed from streamed text (split anywhere),
 * several calls, text around them, malformed blocks passed on verbatim, argument shapes; and
 * engine_copy_messages (the system_suffix the format instruction travels in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "engine/engine.h"
#include "engine/toolcall.h"

/* What the parser passed on, as one transcript: text as is, calls as [[name|arguments]]. */
typedef struct {
    strbuf out;
    int calls, texts;
} transcript;

static void on_text(void *user, const char *text, size_t len)
{
    transcript *t = user;
    assert_true(len > 0);
    sb_append(&t->out, text, len);
    t->texts++;
}

static void on_call(void *user, const char *name, const char *arguments)
{
    transcript *t = user;
    sb_printf(&t->out, "[[%s|%s]]", name, arguments);
    t->calls++;
}

/* Parses text pushed in pieces of `step` bytes (0: all at once); returns the transcript. */
static char *run(const char *text, size_t step, int *calls)
{
    transcript t = {0};
    sb_puts(&t.out, "");
    toolcall_parser *p = toolcall_new(on_text, on_call, &t);
    size_t n = strlen(text);
    if (!step)
        step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        toolcall_push(p, text + i, i + step <= n ? step : n - i);
    toolcall_finish(p);
    toolcall_free(p);
    if (calls)
        *calls = t.calls;
    return sb_steal(&t.out);
}

/* The same transcript for every split of the text: whole, byte by byte, 2, 3, 5, 7 bytes. */
static void expect_all_splits(const char *text, const char *want, int want_calls)
{
    const size_t steps[] = {0, 1, 2, 3, 5, 7, 11};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int calls = -1;
        char *got = run(text, steps[i], &calls);
        if (strcmp(got, want) || calls != want_calls)
            fail_msg("split %zu: got %s (%d calls), want %s (%d calls)", steps[i], got, calls, want, want_calls);
        free(got);
    }
}

static void test_one_call_is_parsed_for_every_split(void **state)
{
    (void)state;
    expect_all_splits(
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
        "[[get_weather|{\"city\":\"Paris\",\"days\":3}]]", 1);
}

static void test_text_before_and_after_stays_text(void **state)
{
    (void)state;
    expect_all_splits("Let me check. <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> Done <b>",
                      "Let me check. [[f|{}]] Done <b>", 1);
}

static void test_several_calls_in_order(void **state)
{
    (void)state;
    expect_all_splits("<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
                      "<tool_call>\n{\"name\": \"b\", \"arguments\": {\"y\": [true, null]}}\n</tool_call>",
                      "[[a|{\"x\":1}]][[b|{\"y\":[true,null]}]]", 2);
}

/* Whitespace-only text next to calls is no content (Qwen3 writes "\n" between parallel calls and
 * after the last); text with words keeps its whitespace; a reply without calls keeps all of it. */
static void test_whitespace_only_text_next_to_calls_is_dropped(void **state)
{
    (void)state;
    expect_all_splits("\n<tool_call>{\"name\": \"a\"}</tool_call>\n\n<tool_call>{\"name\": \"b\"}</tool_call>\n",
                      "[[a|{}]][[b|{}]]", 2);
    expect_all_splits("Sure.\n<tool_call>{\"name\": \"a\"}</tool_call>\n And more.\n", "Sure.\n[[a|{}]]\n And more.\n",
                      1);
    expect_all_splits("  \n", "  \n", 0);
}

static void test_argument_key_order_and_unicode_are_kept(void **state)
{
    (void)state;
    expect_all_splits(
        "<tool_call>{\"name\": \"ü\", \"arguments\": {\"z\": \"é\", \"a\": {\"m\": 1, \"b\": 2}}}</tool_call>",
        "[[ü|{\"z\":\"é\",\"a\":{\"m\":1,\"b\":2}}]]", 1);
}

static void test_arguments_absent_null_or_quoted_json(void **state)
{
    (void)state;
    expect_all_splits("<tool_call>{\"name\": \"f\"}</tool_call>", "[[f|{}]]", 1);
    expect_all_splits("<tool_call>{\"name\": \"f\", \"arguments\": null}</tool_call>", "[[f|{}]]", 1);
    expect_all_splits("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 2}\"}</tool_call>", "[[f|{\"q\":2}]]",
                      1);
}

static void test_malformed_blocks_come_back_verbatim_as_text(void **state)
{
    (void)state;
    const char *bad[] = {
        "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>", /* bad JSON */
        "<tool_call>not json at all</tool_call>",
        "<tool_call>{\"arguments\": {}}</tool_call>",                   /* no name */
        "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",   /* empty name */
        "<tool_call>{\"name\": 5}</tool_call>",                         /* name not a string */
        "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>", /* arguments not an object */
        "<tool_call>{\"name\": \"f\", \"arguments\": \"text\"}</tool_call>",
        "<tool_call>[1, 2]</tool_call>",
        "<tool_call></tool_call>",
        "<tool_call>{\"name\": \"f\", \"name\": \"g\"}</tool_call>", /* duplicate key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "a %s b", bad[i]);
        expect_all_splits(text, text, 0);
    }
}

static void test_unclosed_block_at_the_end(void **state)
{
    (void)state;
    /* complete JSON, closing tag missing (generation stopped): still a call */
    expect_all_splits("x <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n", "x [[f|{\"a\":1}]]", 1);
    /* cut inside the JSON: text */
    expect_all_splits("x <tool_call>\n{\"name\": \"f\", \"argu", "x <tool_call>\n{\"name\": \"f\", \"argu", 0);
}

static void test_partial_tags_are_held_then_released(void **state)
{
    (void)state;
    expect_all_splits("a <tool_ca", "a <tool_ca", 0);
    expect_all_splits("a <tool_cal> b <", "a <tool_cal> b <", 0);
    expect_all_splits("</tool_call> stray close", "</tool_call> stray close", 0);
    expect_all_splits("", "", 0);
}

static void test_text_is_passed_on_before_the_end(void **state)
{
    (void)state;
    transcript t = {0};
    toolcall_parser *p = toolcall_new(on_text, on_call, &t);
    toolcall_push(p, "Hello <", 7);
    assert_string_equal(t.out.data, "Hello "); /* "<" could start a tag: held */
    toolcall_push(p, "b>", 2);
    assert_string_equal(t.out.data, "Hello <b>");
    toolcall_push(p, "<tool_call>{\"name\": \"f\"}", 24);
    assert_string_equal(t.out.data, "Hello <b>"); /* inside a block: nothing yet */
    toolcall_push(p, "</tool_call>", 12);
    assert_string_equal(t.out.data, "Hello <b>[[f|{}]]");
    toolcall_finish(p);
    toolcall_free(p);
    sb_free(&t.out);
}

static void test_parse_block_directly(void **state)
{
    (void)state;
    char *name, *args;
    const char *ok = "  {\"name\": \"f\", \"arguments\": {\"k\": 1.5}}  ";
    assert_true(toolcall_parse_block(ok, strlen(ok), &name, &args));
    assert_string_equal(name, "f");
    assert_string_equal(args, "{\"k\":1.5}");
    free(name);
    free(args);
    assert_false(toolcall_parse_block("{", 1, &name, &args));
    assert_null(name);
    assert_null(args);
}

/* ---- engine_copy_messages: where the format instruction goes */

static void test_suffix_is_appended_to_the_request_system_message(void **state)
{
    (void)state;
    chat_tool_call call = {"f", "{\"a\": 1}"};
    chat_message msgs[] = {{.role = "system", .content = "Be terse."},
                           {.role = "user", .content = "q"},
                           {.role = "assistant", .content = "", .tool_calls = &call, .n_tool_calls = 1},
                           {.role = "tool", .content = "r"}};
    size_t n;
    chat_message *out = engine_copy_messages(msgs, 4, "SUFFIX", "Default.", &n);
    assert_int_equal(n, 4);
    assert_string_equal(out[0].content, "Be terse.\n\nSUFFIX");
    assert_string_equal(out[1].content, "q");
    assert_int_equal(out[2].n_tool_calls, 1);
    assert_string_equal(out[2].tool_calls[0].name, "f");
    assert_string_equal(out[2].tool_calls[0].arguments_json, "{\"a\": 1}");
    assert_ptr_not_equal(out[2].tool_calls, &call);
    assert_string_equal(out[3].role, "tool");
    engine_messages_free(out, n);
}

static void test_suffix_goes_after_the_default_system_prompt_or_alone(void **state)
{
    (void)state;
    chat_message msgs[] = {{.role = "user", .content = "q"}};
    size_t n;
    chat_message *out = engine_copy_messages(msgs, 1, "SUFFIX", "Default.", &n);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].role, "system");
    assert_string_equal(out[0].content, "Default.\n\nSUFFIX");
    assert_string_equal(out[1].content, "q");
    engine_messages_free(out, n);
    out = engine_copy_messages(msgs, 1, "SUFFIX", NULL, &n);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].content, "SUFFIX");
    engine_messages_free(out, n);
    chat_message empty_system[] = {{.role = "system", .content = ""}, {.role = "user", .content = "q"}};
    out = engine_copy_messages(empty_system, 2, "SUFFIX", "Default.", &n);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].content, "SUFFIX");
    engine_messages_free(out, n);
}

static void test_no_suffix_copies_as_is(void **state)
{
    (void)state;
    chat_message msgs[] = {{.role = "user", .content = NULL, .reasoning_content = "r"}};
    size_t n;
    chat_message *out = engine_copy_messages(msgs, 1, "", "Default.", &n);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].content, "");
    assert_string_equal(out[0].reasoning_content, "r");
    engine_messages_free(out, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_call_is_parsed_for_every_split),
        cmocka_unit_test(test_text_before_and_after_stays_text),
        cmocka_unit_test(test_several_calls_in_order),
        cmocka_unit_test(test_whitespace_only_text_next_to_calls_is_dropped),
        cmocka_unit_test(test_argument_key_order_and_unicode_are_kept),
        cmocka_unit_test(test_arguments_absent_null_or_quoted_json),
        cmocka_unit_test(test_malformed_blocks_come_back_verbatim_as_text),
        cmocka_unit_test(test_unclosed_block_at_the_end),
        cmocka_unit_test(test_partial_tags_are_held_then_released),
        cmocka_unit_test(test_text_is_passed_on_before_the_end),
        cmocka_unit_test(test_parse_block_directly),
        cmocka_unit_test(test_suffix_is_appended_to_the_request_system_message),
        cmocka_unit_test(test_suffix_goes_after_the_default_system_prompt_or_alone),
        cmocka_unit_test(test_no_suffix_copies_as_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
