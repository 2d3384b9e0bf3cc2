/* Tests for api_common's JSON reading (issue 9, defect 7): escapes jansson refuses and Go accepts are
 * repaired before parsing (an escaped NUL and lone surrogates become \uFFFD, surrogate pairs stay, an
 * escaped backslash is not an escape start), invalid UTF-8 becomes U+FFFD, error positions stay those
 * of the original text; and the process-wide per-request limits. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "api/api_common.h"
#include "config/config.h"

#define FFFD "\xEF\xBF\xBD"

/* The repaired text ("" when nothing changed). */
static char *repaired(const char *text)
{
    strbuf out = {0};
    bool changed = api_json_repair_escapes(text, strlen(text), &out);
    char *s = changed ? sb_steal(&out) : xstrdup("");
    sb_free(&out);
    return s;
}

static void check_repair(const char *text, const char *want)
{
    char *got = repaired(text);
    if (strcmp(got, want) != 0)
        fail_msg("repair of [%s]: got [%s], want [%s]", text, got, want);
    free(got);
}

static void test_nul_and_lone_surrogate_escapes_become_fffd(void **state)
{
    (void)state;
    check_repair("\"a\\u0000b\"", "\"a\\uFFFDb\"");
    check_repair("\"cut \\ud83d\"", "\"cut \\uFFFD\"");       /* a high surrogate at the end */
    check_repair("\"\\uD800x\"", "\"\\uFFFDx\"");             /* a high one before a letter */
    check_repair("\"\\udc00 low\"", "\"\\uFFFD low\"");       /* a low one alone */
    check_repair("\"\\ud800\\u0041\"", "\"\\uFFFD\\u0041\""); /* a high one before a non-surrogate escape */
    check_repair("\"\\ud800\\ud800\\udc00\"", "\"\\uFFFD\\ud800\\udc00\""); /* the second high one pairs */
}

static void test_what_needs_no_repair_is_left_alone(void **state)
{
    (void)state;
    check_repair("\"\\ud83d\\ude00\"", "");       /* a pair */
    check_repair("\"\\\\u0000\"", "");            /* an escaped backslash, then the text u0000 */
    check_repair("\"\\u00e9 \\n \\\" \\/\"", ""); /* other escapes */
    check_repair("{\"a\": [1, 2, \"x\"]}", "");
    check_repair("\"\\u00\"", ""); /* too short: the parser judges it */
    check_repair("\"\\uZZZZ\"", "");
}

static void test_the_repaired_text_parses_as_go_reads_it(void **state)
{
    (void)state;
    const char *text = "{\"c\":\"a\\u0000b \\ud83d\\ude00 \\udfff\"}";
    json_error_t err;
    json_t *v = api_load_json_text(text, strlen(text), 0, &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "c")), "a" FFFD "b \xF0\x9F\x98\x80 " FFFD);
    json_decref(v);
    /* invalid UTF-8 too */
    const char bad[] = "{\"c\":\"x\xFFy\"}";
    v = api_load_json_text(bad, sizeof bad - 1, 0, &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "c")), "x" FFFD "y");
    json_decref(v);
}

static void test_error_positions_are_those_of_the_original_text(void **state)
{
    (void)state;
    const char *text = "{\"c\":\"\\ud800\\u0000\" x}";
    json_error_t err;
    assert_null(api_load_json_text(text, strlen(text), 0, &err));
    assert_int_equal(err.position, (int)(strchr(text, 'x') - text + 1));
}

static void test_limits_default_and_set(void **state)
{
    (void)state;
    api_limits l = api_get_limits();
    assert_int_equal(l.max_stop, CONFIG_DEFAULT_MAX_STOP);
    assert_int_equal(l.max_tools, CONFIG_DEFAULT_MAX_TOOLS);
    api_set_limits(&(api_limits){.max_stop = 3, .max_tools = 0});
    l = api_get_limits();
    assert_int_equal(l.max_stop, 3);
    assert_int_equal(l.max_tools, CONFIG_DEFAULT_MAX_TOOLS); /* 0 keeps the default */
    api_set_limits(&(api_limits){0});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nul_and_lone_surrogate_escapes_become_fffd),
        cmocka_unit_test(test_what_needs_no_repair_is_left_alone),
        cmocka_unit_test(test_the_repaired_text_parses_as_go_reads_it),
        cmocka_unit_test(test_error_positions_are_those_of_the_original_text),
        cmocka_unit_test(test_limits_default_and_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
