/* Tests for cli/line_editor: the history file of `axllama run` (~/.axllama/history: where it is, its
 * permissions, loading with the newest LINE_HISTORY_MAX entries kept and the file trimmed,
 * appending) and the UTF-8 conversions between the terminal and libedit. The editor on a terminal
 * is tested end to end in test_cli_session.c (long lines, arrows, Ctrl-R, history across sessions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>

#include "cli/line_editor.c" /* the CLI's line editor, not part of the library */

static char home[64];

static int make_home(void **state)
{
    (void)state;
    strcpy(home, "/tmp/axllama-le-XXXXXX");
    return mkdtemp(home) ? 0 : -1;
}

static int remove_home(void **state)
{
    (void)state;
    char path[128];
    static const char *const files[] = {"/.axllama/history", "/.axllama/history.tmp", "/h"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s%s", home, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/.axllama", home);
    rmdir(path);
    rmdir(home);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    strbuf sb = {0};
    sb_puts(&sb, "");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_append(&sb, buf, n);
    fclose(f);
    return sb_steal(&sb);
}

static void test_history_path_is_in_home_with_a_private_directory(void **state)
{
    (void)state;
    char *saved = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    char *path = line_history_path();
    char want[128];
    snprintf(want, sizeof want, "%s/.axllama/history", home);
    assert_non_null(path);
    assert_string_equal(path, want);
    struct stat st;
    snprintf(want, sizeof want, "%s/.axllama", home);
    assert_int_equal(stat(want, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    free(path);
    path = line_history_path(); /* the directory exists already: same answer */
    assert_non_null(path);
    free(path);
    if (saved)
        setenv("HOME", saved, 1);
    free(saved);
}

static void test_history_append_creates_a_private_file_and_load_reads_it_back(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/h", home);
    unlink(path);
    char **e;
    size_t n;
    line_history_load(path, &e, &n); /* missing: nothing */
    assert_int_equal(n, 0);
    line_history_free(e, n);
    assert_true(line_history_append(path, "first"));
    assert_true(line_history_append(path, "second line é"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = read_text(path);
    assert_string_equal(text, "first\nsecond line é\n");
    free(text);
    /* empty lines are skipped, CRLF line ends accepted */
    write_text(path, "a\r\n\nb\n\n");
    line_history_load(path, &e, &n);
    assert_int_equal(n, 2);
    assert_string_equal(e[0], "a");
    assert_string_equal(e[1], "b");
    line_history_free(e, n);
    unlink(path);
}

static void test_history_load_keeps_the_newest_entries_and_trims_the_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/h", home);
    strbuf all = {0};
    for (int i = 0; i < LINE_HISTORY_MAX + 250; i++)
        sb_printf(&all, "entry %d\n", i);
    write_text(path, all.data);
    sb_free(&all);
    char **e;
    size_t n;
    line_history_load(path, &e, &n);
    assert_int_equal(n, LINE_HISTORY_MAX);
    assert_string_equal(e[0], "entry 250");
    assert_string_equal(e[n - 1], "entry 1249");
    line_history_free(e, n);
    /* the file now holds just those */
    line_history_load(path, &e, &n);
    assert_int_equal(n, LINE_HISTORY_MAX);
    assert_string_equal(e[0], "entry 250");
    line_history_free(e, n);
    char *text = read_text(path);
    assert_int_equal(strncmp(text, "entry 250\n", 10), 0);
    free(text);
    unlink(path);
}

/* What the terminal sends (UTF-8) becomes libedit's characters and back unchanged. */
static void test_utf8_round_trip_of_typed_characters(void **state)
{
    (void)state;
    const char *samples[] = {"a", "é", "€", "😀", "\x7f"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t len = strlen(samples[i]);
        wchar_t c = le_decode((const unsigned char *)samples[i], len);
        strbuf out = {0};
        le_put_utf8(&out, (uint32_t)c);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, samples[i], len);
        sb_free(&out);
    }
    strbuf bad = {0};
    le_put_utf8(&bad, 0xD800); /* a surrogate is no character */
    assert_string_equal(bad.data, UTF8_REPLACEMENT);
    sb_free(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_path_is_in_home_with_a_private_directory),
        cmocka_unit_test(test_history_append_creates_a_private_file_and_load_reads_it_back),
        cmocka_unit_test(test_history_load_keeps_the_newest_entries_and_trims_the_file),
        cmocka_unit_test(test_utf8_round_trip_of_typed_characters),
    };
    return cmocka_run_group_tests(tests, make_home, remove_home);
}
