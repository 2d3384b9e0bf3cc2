/* End-to-end tests of `axllama run`'s interactive session, driven through a pseudo-terminal against
 * `axllama serve` on axllama-emu and a fake server: streamed replies, KV reuse across turns, """
 * input, /clear, /set think|nothink|format, Ctrl-C during a reply and at the prompt, Ctrl-D, /bye,
 * --verbose, the load progress indicator, what each turn sends, and the line editor: lines longer
 * than the terminal's 4,095-byte limit, the history file, arrows and Ctrl-R. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "cli_harness.h"

/* ================================================================================================ */
/* interactive sessions */

static void test_interactive_two_turns_stream_and_reuse_cache(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start(&p, (const char *const[]){"echo", "--verbose", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    pty_send(&p, LONG_MSG "\n");
    /* the typed line is echoed by the terminal; the reply follows on its own line */
    assert_true(pty_expect(&p, LONG_MSG "\r\n", 10));
    assert_true(pty_expect(&p, LONG_MSG "\r\n\r\n", 30));
    assert_true(pty_expect(&p, "eval rate:", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    long first = last_prompt_eval_count(p.out.data);
    assert_true(first > 20);

    size_t turn2 = p.mark;
    pty_send(&p, "Short one\n");
    assert_true(pty_expect(&p, "\r\nShort one\r\n\r\n", 30));
    assert_true(pty_expect(&p, "eval rate:", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    long second = last_prompt_eval_count(p.out.data + turn2);
    /* the whole conversation was sent, but only the new turn was prefilled */
    assert_true(second > 0);
    assert_true(second < first);

    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static void test_interactive_multiline_input(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start(&p, (const char *const[]){"echo", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    pty_send(&p, "\"\"\"\n");
    assert_true(pty_expect(&p, "... ", 10));
    pty_send(&p, "First line\n");
    assert_true(pty_expect(&p, "... ", 10));
    pty_send(&p, "second line\"\"\"\n");
    /* one message of two lines */
    assert_true(pty_expect(&p, "\r\nFirst line\r\nsecond line\r\n\r\n>>> ", 30));
    /* opening and closing on one line */
    pty_send(&p, "\"\"\"One-liner\"\"\"\n");
    assert_true(pty_expect(&p, "\r\nOne-liner\r\n\r\n>>> ", 30));
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static void test_interactive_clear_forgets_the_conversation(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start(&p, (const char *const[]){"echo", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    long ignored;
    size_t seen = kv_reports(&ignored);
    pty_send(&p, LONG_MSG "\n");
    assert_true(pty_expect(&p, "\r\n" LONG_MSG "\r\n\r\n>>> ", 30));
    long kv1 = wait_kv_report(&seen, 20);
    pty_send(&p, "Next\n");
    assert_true(pty_expect(&p, "\r\nNext\r\n\r\n>>> ", 30));
    long kv2 = wait_kv_report(&seen, 20);
    assert_true(kv2 > kv1); /* the conversation grew */
    pty_send(&p, "/clear\n");
    assert_true(pty_expect(&p, "Cleared session context", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "Next\n");
    assert_true(pty_expect(&p, "\r\nNext\r\n\r\n>>> ", 30));
    long kv3 = wait_kv_report(&seen, 20);
    assert_true(kv1 > 0 && kv3 > 0);
    /* only [system, "Next", reply] is in the cache now */
    assert_true(kv3 < kv1);
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static void test_interactive_set_think_and_nothink(void **state)
{
    (void)state;
    pty_session p;
    /* plain cannot think: the server refuses think:true, accepts think:false */
    assert_true(pty_start(&p, (const char *const[]){"plain", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    pty_send(&p, "/set think\n");
    assert_true(pty_expect(&p, "Set 'think' mode.", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "Ping\n");
    assert_true(pty_expect(&p, "Error: \"plain\" does not support thinking", 30));
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "/set nothink\n");
    assert_true(pty_expect(&p, "Set 'nothink' mode.", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "Pong\n");
    assert_true(pty_expect(&p, "\r\nPong\r\n\r\n>>> ", 30));
    pty_send(&p, "/?\n");
    assert_true(pty_expect(&p, "Available Commands:", 10));
    assert_true(pty_expect(&p, "/bye", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static void test_interactive_ctrl_c_cancels_the_reply_not_the_session(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start(&p, (const char *const[]){"slow", "--verbose", NULL}));
    assert_true(pty_expect(&p, ">>> ", 60));
    long ignored;
    size_t seen = kv_reports(&ignored);
    pty_send(&p, "Zap\n");
    assert_true(pty_expect(&p, "Zap\r\n", 10)); /* the terminal's echo */
    assert_true(pty_expect(&p, "ZapZap", 30));  /* the reply is streaming */
    double sent = h_now();
    pty_send(&p, "\x03");
    /* back at the prompt long before the 400-token reply (about 32 s) could have ended */
    assert_true(pty_expect(&p, ">>> ", 20));
    assert_true(h_now() - sent < 20);
    size_t after_cancel = p.mark;
    /* the server stopped the runtime at once (the whole reply would take about 30 s more): its KV
     * cache holds far less than the 400-token reply */
    long kv = wait_kv_report(&seen, 15);
    assert_true(kv > 0 && kv < 400);
    /* no statistics for a cancelled reply */
    assert_null(strstr(p.out.data + after_cancel - 4, "eval rate:"));
    /* the session goes on: a new turn streams again */
    pty_send(&p, "Yes\n");
    assert_true(pty_expect(&p, "\r\nYesYes", 30));
    pty_send(&p, "\x03");
    assert_true(pty_expect(&p, ">>> ", 20));
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static void test_interactive_ctrl_c_at_prompt_hints_and_ctrl_d_exits(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start(&p, (const char *const[]){"echo", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    pty_send(&p, "\x03");
    assert_true(pty_expect(&p, "Use Ctrl + d or /bye to exit.", 10));
    assert_true(pty_expect(&p, ">>> ", 10));
    /* still alive */
    pty_send(&p, "Alive\n");
    assert_true(pty_expect(&p, "\r\nAlive\r\n\r\n>>> ", 30));
    pty_send(&p, "\x04");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static void test_interactive_shows_load_progress(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start(&p, (const char *const[]){"loady", NULL}));
    assert_true(pty_expect(&p, "loading loady", 30));
    /* the runtime's k/N load steps, as /api/ps reports them */
    assert_true(pty_expect(&p, "] ", 30));
    assert_true(pty_expect(&p, ">>> ", 60));
    pty_send(&p, "Loaded\n");
    assert_true(pty_expect(&p, "\r\nLoaded\r\n\r\n>>> ", 30));
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

static const char *msg_field(json_t *req, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(req, "messages"), i), key));
}

static void test_interactive_sends_history_think_and_clear(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start_at(&p, http_server_port(fake), (const char *const[]){"fake", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    size_t base = fake_count();
    pty_send(&p, "First\n");
    /* thinking apart (in grey on a terminal), then the answer */
    assert_true(pty_expect(&p, "Thinking...", 10));
    assert_true(pty_expect(&p, "I ponder.", 10));
    assert_true(pty_expect(&p, "...done thinking.", 10));
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    pty_send(&p, "Second\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    json_t *r2 = fake_request(base + 1);
    assert_non_null(r2);
    /* the whole conversation, with the earlier reply and its thinking */
    assert_int_equal(json_array_size(json_object_get(r2, "messages")), 3);
    assert_string_equal(msg_field(r2, 0, "content"), "First");
    assert_string_equal(msg_field(r2, 1, "role"), "assistant");
    assert_string_equal(msg_field(r2, 1, "content"), "The answer.");
    assert_string_equal(msg_field(r2, 1, "thinking"), "I ponder.");
    assert_string_equal(msg_field(r2, 2, "content"), "Second");
    assert_true(json_is_true(json_object_get(r2, "stream")));
    assert_null(json_object_get(r2, "think")); /* the model's default */

    pty_send(&p, "/set nothink\n");
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "Third\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    json_t *r3 = fake_request(base + 2);
    assert_true(json_is_false(json_object_get(r3, "think")));
    assert_int_equal(json_array_size(json_object_get(r3, "messages")), 5);

    pty_send(&p, "/set think\n");
    assert_true(pty_expect(&p, ">>> ", 10));
    pty_send(&p, "/clear\n");
    assert_true(pty_expect(&p, "Cleared session context", 10));
    pty_send(&p, "/set system Be brief.\n");
    assert_true(pty_expect(&p, "Set system message.", 10));
    pty_send(&p, "Fourth\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    json_t *r4 = fake_request(base + 3);
    assert_true(json_is_true(json_object_get(r4, "think")));
    assert_int_equal(json_array_size(json_object_get(r4, "messages")), 2);
    assert_string_equal(msg_field(r4, 0, "role"), "system");
    assert_string_equal(msg_field(r4, 0, "content"), "Be brief.");
    assert_string_equal(msg_field(r4, 1, "content"), "Fourth");
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

/* A whole file (caller frees), or NULL. */
static char *read_text_file(const char *path)
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

/* The content of the last message of a recorded request, or NULL. */
static const char *last_content(json_t *req)
{
    json_t *msgs = json_object_get(req, "messages");
    return json_string_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content"));
}

/* A line longer than the terminal's 4,095-byte canonical-mode limit (typed or pasted) reaches the
 * server whole, also inside a """ message. */
static void test_interactive_long_line_arrives_whole(void **state)
{
    (void)state;
    pty_home_clean();
    pty_session p;
    assert_true(pty_start_at(&p, http_server_port(fake), (const char *const[]){"fake", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    size_t base = fake_count();
    strbuf line = {0};
    for (int i = 0; i < 1000; i++)
        sb_printf(&line, "w%03d-éab ", i); /* 10,000 bytes, two of each ten not ASCII */
    assert_int_equal(line.len, 10000);
    line.data[line.len - 1] = '.'; /* a message is trimmed: no space at its end */
    assert_true(pty_send_all(&p, line.data));
    pty_send(&p, "\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 30));
    assert_int_equal(fake_count(), base + 1);
    const char *got = last_content(fake_request(base));
    assert_non_null(got);
    if (strlen(got) != line.len)
        fail_msg("got %zu bytes: %.40s ... %s", strlen(got), got, got + strlen(got) - 40);
    assert_string_equal(got, line.data);

    /* the same line as the middle of a multi-line message */
    assert_true(pty_send_all(&p, "\"\"\"first\n"));
    assert_true(pty_expect(&p, "... ", 10));
    assert_true(pty_send_all(&p, line.data));
    pty_send(&p, "\nlast\"\"\"\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 30));
    strbuf want = {0};
    sb_printf(&want, "first\n%s\nlast", line.data);
    assert_string_equal(last_content(fake_request(base + 1)), want.data);
    sb_free(&want);
    sb_free(&line);
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

/* The lines typed at the prompt are kept in ~/.axllama/history (0700 directory, 0600 file) and come
 * back in the next session with the up arrow and Ctrl-R. */
static void test_interactive_history_is_kept_and_recalled(void **state)
{
    (void)state;
    pty_home_clean();
    pty_session p;
    assert_true(pty_start_at(&p, http_server_port(fake), (const char *const[]){"fake", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    size_t base = fake_count();
    pty_send(&p, "First question\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    pty_send(&p, "Second question\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    pty_send(&p, "\x1b[A\x1b[A\n"); /* up twice: the first question again */
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    assert_string_equal(last_content(fake_request(base + 2)), "First question");
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);

    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/.axllama", pty_home);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/.axllama/history", pty_home);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = read_text_file(path);
    assert_non_null(text);
    assert_string_equal(text, "First question\nSecond question\nFirst question\n/bye\n");
    free(text);

    /* a new session starts with that history: up goes to /bye, then to the questions */
    assert_true(pty_start_at(&p, http_server_port(fake), (const char *const[]){"fake", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    pty_send(&p, "\x1b[A\x1b[A\x1b[A\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    assert_string_equal(last_content(fake_request(base + 3)), "Second question");
    /* Ctrl-R searches backwards */
    pty_send(&p, "\x12"
                 "Fir");
    assert_true(pty_expect(&p, "First question", 10));
    pty_send(&p, "\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    assert_string_equal(last_content(fake_request(base + 4)), "First question");
    pty_send(&p, "\x04");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

/* /set format json | <schema>, /set noformat: the format of the following requests. */
static void test_interactive_set_format_and_noformat(void **state)
{
    (void)state;
    pty_session p;
    assert_true(pty_start_at(&p, http_server_port(fake), (const char *const[]){"fake", NULL}));
    assert_true(pty_expect(&p, ">>> ", 30));
    size_t base = fake_count();
    pty_send(&p, "/set format json\n");
    assert_true(pty_expect(&p, "Set format to 'json' mode.", 10));
    pty_send(&p, "One\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    assert_string_equal(json_string_value(json_object_get(fake_request(base), "format")), "json");
    pty_send(&p, "/set format {\"type\": \"object\"}\n");
    assert_true(pty_expect(&p, "Set format to 'schema' mode.", 10));
    pty_send(&p, "Two\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    json_t *format = json_object_get(fake_request(base + 1), "format");
    assert_true(json_is_object(format));
    assert_string_equal(json_string_value(json_object_get(format, "type")), "object");
    pty_send(&p, "/set format xml\n");
    assert_true(pty_expect(&p, "Usage: /set format json", 10));
    pty_send(&p, "/set noformat\n");
    assert_true(pty_expect(&p, "Disabled format.", 10));
    pty_send(&p, "Three\n");
    assert_true(pty_expect(&p, "The answer.\r\n\r\n>>> ", 10));
    assert_null(json_object_get(fake_request(base + 2), "format"));
    pty_send(&p, "/bye\n");
    assert_int_equal(pty_wait(&p, 20), 0);
    pty_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interactive_two_turns_stream_and_reuse_cache),
        cmocka_unit_test(test_interactive_multiline_input),
        cmocka_unit_test(test_interactive_clear_forgets_the_conversation),
        cmocka_unit_test(test_interactive_set_think_and_nothink),
        cmocka_unit_test(test_interactive_ctrl_c_cancels_the_reply_not_the_session),
        cmocka_unit_test(test_interactive_ctrl_c_at_prompt_hints_and_ctrl_d_exits),
        cmocka_unit_test(test_interactive_shows_load_progress),
        cmocka_unit_test(test_interactive_sends_history_think_and_clear),
        cmocka_unit_test(test_interactive_long_line_arrives_whole),
        cmocka_unit_test(test_interactive_history_is_kept_and_recalled),
        cmocka_unit_test(test_interactive_set_format_and_noformat),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
