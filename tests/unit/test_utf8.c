/* Tests for common/utf8: sequence classification, lossy repair, incomplete tails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/utf8.h"

static void assert_next(const char *s, size_t n, utf8_status want, size_t want_len)
{
    size_t len = 0;
    assert_int_equal(utf8_next(s, n, &len), want);
    assert_int_equal(len, want_len);
}

static void test_next_classifies_valid_sequences(void **state)
{
    (void)state;
    assert_next("a", 1, UTF8_OK, 1);
    assert_next("\xC3\xA9", 2, UTF8_OK, 2);
    assert_next("\xE4\xBD\xA0", 3, UTF8_OK, 3);
    assert_next("\xF0\x9F\x98\x80", 4, UTF8_OK, 4);
}

static void test_next_rejects_overlong_surrogate_and_out_of_range(void **state)
{
    (void)state;
    assert_next("\xC0\x80", 2, UTF8_INVALID, 1);     /* overlong lead */
    assert_next("\xE0\x80\x80", 3, UTF8_INVALID, 1); /* E0 needs A0..BF next */
    assert_next("\xED\xA0\x80", 3, UTF8_INVALID, 1); /* surrogate */
    assert_next("\xF4\x90\x80\x80", 4, UTF8_INVALID, 1);
    assert_next("\xF5", 1, UTF8_INVALID, 1);
    assert_next("\x80", 1, UTF8_INVALID, 1);
    assert_next("\xE4\xBD"
                "a",
                3, UTF8_INVALID, 2); /* maximal subpart is the two good bytes */
}

static void test_next_reports_incomplete_tail(void **state)
{
    (void)state;
    assert_next("\xE4\xBD", 2, UTF8_INCOMPLETE, 2);
    assert_next("\xF0\x9F\x98", 3, UTF8_INCOMPLETE, 3);
}

static void test_lossy_replaces_each_maximal_subpart_once(void **state)
{
    (void)state;
    strbuf out = {0};
    utf8_append_lossy(&out,
                      "a\xE4\xBD"
                      "b\xF0\x80z\xFF",
                      8);
    /* E4 BD -> one U+FFFD; F0 80 -> two (80 cannot follow F0); FF -> one */
    assert_string_equal(out.data, "a\xEF\xBF\xBD"
                                  "b\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD");
    sb_free(&out);
}

static void test_lossy_keeps_valid_text_unchanged(void **state)
{
    (void)state;
    strbuf out = {0};
    const char *s = "h\xC3\xA9llo \xF0\x9F\x98\x80";
    utf8_append_lossy(&out, s, strlen(s));
    assert_string_equal(out.data, s);
    assert_true(utf8_is_valid(s, strlen(s)));
    assert_false(utf8_is_valid("\xFF", 1));
    sb_free(&out);
}

static void test_complete_prefix_holds_back_only_an_incomplete_character(void **state)
{
    (void)state;
    assert_int_equal(utf8_complete_prefix("ab\xE4\xBD", 4), 2);
    assert_int_equal(utf8_complete_prefix("ab\xF0\x9F\x98", 5), 2);
    assert_int_equal(utf8_complete_prefix("ab\xE4\xBD\xA0", 5), 5);
    assert_int_equal(utf8_complete_prefix("ab\xFF", 3), 3); /* invalid: not held */
    assert_int_equal(utf8_complete_prefix("ab\xE4"
                                          "a",
                                          4),
                     4); /* broken already */
    assert_int_equal(utf8_complete_prefix("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_classifies_valid_sequences),
        cmocka_unit_test(test_next_rejects_overlong_surrogate_and_out_of_range),
        cmocka_unit_test(test_next_reports_incomplete_tail),
        cmocka_unit_test(test_lossy_replaces_each_maximal_subpart_once),
        cmocka_unit_test(test_lossy_keeps_valid_text_unchanged),
        cmocka_unit_test(test_complete_prefix_holds_back_only_an_incomplete_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
