/* Tests for cli/display: the formatting rules of the client commands, after ollama's format
 * package: human sizes (1024-based), relative times, Go durations, RFC 3339 times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cli/display.c" /* the CLI's formatting rules, not part of the library */

/* ================================================================================================ */
/* the display rules (ollama's format package) */

static void test_display_human_bytes(void **state)
{
    (void)state;
    char b[32];
    const struct {
        int64_t n;
        const char *want;
    } cases[] = {
        {0, "0 B"},           {1023, "1023 B"},       {1024, "1 KB"},         {1536, "1.5 KB"}, {5011488768, "4.7 GB"},
        {5368709120, "5 GB"}, {12884901888, "12 GB"}, {1099511627776, "1 TB"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fmt_human_bytes(cases[i].n, b, sizeof b);
        assert_string_equal(b, cases[i].want);
    }
}

static void test_display_human_time(void **state)
{
    (void)state;
    char b[64];
    const double now = 1.8e9;
    const struct {
        double delta; /* t - now */
        const char *want;
    } cases[] = {{-0.5, "Less than a second ago"}, {-1, "1 second ago"},
                 {-42, "42 seconds ago"},          {-61, "About a minute ago"},
                 {-150, "2 minutes ago"},          {-3600, "About an hour ago"},
                 {-5 * 3600, "5 hours ago"},       {-3 * 86400, "3 days ago"},
                 {-20 * 86400, "2 weeks ago"},     {-90 * 86400, "3 months ago"},
                 {-800 * 86400.0, "2 years ago"},  {241, "4 minutes from now"},
                 {292 * 365 * 86400.0, "Forever"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fmt_human_time(now + cases[i].delta, now, b, sizeof b);
        assert_string_equal(b, cases[i].want);
    }
}

static void test_display_go_duration(void **state)
{
    (void)state;
    char b[64];
    const struct {
        uint64_t ns;
        const char *want;
    } cases[] = {{0, "0s"},
                 {950, "950ns"},
                 {12500, "12.5\xc2\xb5s"},
                 {3250000, "3.25ms"},
                 {1500000000, "1.5s"},
                 {123000000001, "2m3.000000001s"},
                 {3600000000000, "1h0m0s"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fmt_go_duration(cases[i].ns, b, sizeof b);
        assert_string_equal(b, cases[i].want);
    }
}

static void test_display_parse_time(void **state)
{
    (void)state;
    double t;
    assert_true(fmt_parse_time("2026-01-02T03:04:05Z", &t));
    assert_true(t == 1767323045.0);
    assert_true(fmt_parse_time("2026-01-02T04:04:05+01:00", &t));
    assert_true(t == 1767323045.0);
    assert_true(fmt_parse_time("2026-01-02T03:04:05.5Z", &t));
    assert_true(t == 1767323045.5);
    assert_false(fmt_parse_time("2026-01-02 03:04:05", &t));
    assert_false(fmt_parse_time("yesterday", &t));
    assert_false(fmt_parse_time(NULL, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_display_human_bytes),
        cmocka_unit_test(test_display_human_time),
        cmocka_unit_test(test_display_go_duration),
        cmocka_unit_test(test_display_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
