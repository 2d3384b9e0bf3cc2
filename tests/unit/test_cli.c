/* End-to-end tests of the one-shot client commands of the `axllama` binary (run, list, ps, show,
 * stop) against `axllama serve` on axllama-emu and a fake server: prompt argument and piped stdin,
 * exit codes and error texts, flag spellings anywhere on the line, the table layouts, OLLAMA_HOST
 * forms, proxies that must not be used for a loopback server, `axllama serve`'s own flags and
 * OLLAMA_DEBUG, and `axllama import` (a fixture package, vendor_fixture.h, listed by a running server
 * at once and answering; where it writes; a bad folder; bad usage). Interactive sessions:
 * test_cli_session.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_harness.h"
#include "vendor_fixture.h"

/* ================================================================================================ */
/* one-shot runs */

static void test_run_prompt_argument_prints_reply_and_exits_0(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "run", "echo", "Say", "banana");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Say banana\n");
    assert_null(strstr(r.err.data, "Error"));
    cli_free(&r);
}

static void test_run_piped_stdin_comes_before_the_arguments(void **state)
{
    (void)state;
    cli_result r = CLI("Piped words", "run", "echo", "and", "more");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Piped words and more\n");
    cli_free(&r);

    r = CLI("Only stdin", "run", "echo");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Only stdin\n");
    cli_free(&r);
}

/* Bytes that are not UTF-8 (a Latin-1 terminal) become U+FFFD, as in ollama; the message is not
 * lost (it used to turn into a load-only request). */
static void test_run_input_that_is_not_utf8_is_repaired_not_dropped(void **state)
{
    (void)state;
    cli_result r = CLI("caf\xe9", "run", "echo");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "caf\xef\xbf\xbd\n");
    cli_free(&r);
}

static void test_run_empty_prompt_only_loads(void **state)
{
    (void)state;
    cli_result r = CLI("", "run", "echo");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "");
    cli_free(&r);
    h_http ps = h_srv(&srv, "GET", "/api/ps", NULL);
    assert_non_null(strstr(ps.body.data, "\"echo:latest\""));
    h_http_free(&ps);
}

static void test_run_unknown_model_is_error_exit_1(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "run", "nosuchmodel", "hi");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err.data, "Error: model 'nosuchmodel' not found\n");
    assert_string_equal(r.out.data, "");
    cli_free(&r);
}

static void test_run_unreachable_server_is_error_exit_1(void **state)
{
    (void)state;
    int port = h_free_port();
    cli_result r = run_cli_at(port, NULL, (const char *const[]){"run", "echo", "hi", NULL});
    assert_int_equal(r.status, 1);
    char want[200];
    snprintf(want, sizeof want,
             "Error: could not connect to axllama server at 127.0.0.1:%d, is it running? (start it with 'axllama "
             "serve')\n",
             port);
    assert_string_equal(r.err.data, want);
    cli_free(&r);
    /* the model commands say the same */
    r = run_cli_at(port, NULL, (const char *const[]){"list", NULL});
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err.data, want);
    cli_free(&r);
}

static void test_run_server_error_mid_request_is_error_exit_1(void **state)
{
    (void)state;
    /* a model that cannot think, asked to think: the server's 400 */
    cli_result r = CLI(NULL, "run", "plain", "--think", "hi");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err.data, "Error: "));
    assert_non_null(strstr(r.err.data, "does not support thinking"));
    cli_free(&r);
}

static void test_run_verbose_prints_ollama_stats(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "run", "echo", "--verbose", "Count me");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Count me\n");
    const char *keys[] = {"total duration:       ", "load duration:        ", "prompt eval count:    ",
                          "prompt eval duration: ", "prompt eval rate:     ", "eval count:           ",
                          "eval duration:        ", "eval rate:            ", "time to first token:  "};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(strstr(r.err.data, keys[i]));
    assert_non_null(strstr(r.err.data, " tokens/s\n"));
    assert_non_null(strstr(r.err.data, " token(s)\n"));
    cli_free(&r);
}

static void test_run_bad_usage_exits_2(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "run");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err.data, "Usage: axllama run MODEL"));
    cli_free(&r);
    r = CLI(NULL, "run", "echo", "--think=maybe", "hi");
    assert_int_equal(r.status, 2);
    cli_free(&r);
    r = CLI(NULL, "run", "--nowordwrap", "echo", "--think=false", "Flags ok");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Flags ok\n");
    cli_free(&r);
}

/* ================================================================================================ */
/* list, ps, show, stop */

/* Offset of word in line (a header column), or -1. */
static long column_of(const char *line, const char *word)
{
    const char *p = strstr(line, word);
    return p ? (long)(p - line) : -1;
}

/* The line of text that starts with prefix (a copy), or NULL. */
static char *line_starting(const char *text, const char *prefix)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!strncmp(p, prefix, strlen(prefix)))
            return xstrndup(p, len);
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static bool is_hex12(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (!strchr("0123456789abcdef", s[i]) || !s[i])
            return false;
    return s[12] == ' ';
}

static void test_list_layout(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "list");
    assert_int_equal(r.status, 0);
    char *header = line_starting(r.out.data, "NAME ");
    char *row = line_starting(r.out.data, "echo:latest ");
    assert_non_null(header);
    assert_non_null(row);
    long id = column_of(header, "ID"), size = column_of(header, "SIZE"), mod = column_of(header, "MODIFIED");
    assert_true(id > 0 && size > id && mod > size);
    assert_true(is_hex12(row + id));
    /* sizes are ollama's HumanBytes (1024-based), times relative */
    assert_memory_equal(row + size, "4.7 GB ", 7);
    assert_non_null(strstr(row + mod, " ago"));
    assert_true(row[size - 1] == ' ' && row[mod - 1] == ' ');
    /* every model of the manifests is listed */
    char *other = line_starting(r.out.data, "slow:latest ");
    assert_non_null(other);
    free(other);
    free(header);
    free(row);
    cli_free(&r);

    r = CLI(NULL, "ls", "sl");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "slow:latest"));
    assert_null(strstr(r.out.data, "echo:latest"));
    cli_free(&r);
}

static void test_ps_layout_after_a_load(void **state)
{
    (void)state;
    cli_result r = CLI("", "run", "echo");
    assert_int_equal(r.status, 0);
    cli_free(&r);
    r = CLI(NULL, "ps");
    assert_int_equal(r.status, 0);
    char *header = line_starting(r.out.data, "NAME ");
    char *row = line_starting(r.out.data, "echo:latest ");
    assert_non_null(header);
    assert_non_null(row);
    long id = column_of(header, "ID"), size = column_of(header, "SIZE"), proc = column_of(header, "PROCESSOR"),
         ctx = column_of(header, "CONTEXT"), until = column_of(header, "UNTIL");
    assert_true(id > 0 && size > id && proc > size && ctx > proc && until > ctx);
    assert_true(is_hex12(row + id));
    assert_memory_equal(row + proc, "100% NPU ", 9);
    assert_true(strtol(row + ctx, NULL, 10) > 0);
    assert_non_null(strstr(row + until, "minutes from now"));
    free(header);
    free(row);
    cli_free(&r);
}

static void test_show_layout(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "show", "echo");
    assert_int_equal(r.status, 0);
    const char *o = r.out.data;
    assert_memory_equal(o, "  Model\n", 8);
    assert_non_null(strstr(o, "\n    architecture      qwen3"));
    assert_non_null(strstr(o, "\n    parameters        "));
    assert_non_null(strstr(o, "\n    context length    "));
    assert_non_null(strstr(o, "\n    quantization      "));
    const char *caps = strstr(o, "\n  Capabilities\n");
    assert_non_null(caps);
    assert_non_null(strstr(caps, "\n    completion"));
    assert_non_null(strstr(caps, "\n    thinking"));
    /* sections in ollama's order */
    const char *sys = strstr(o, "\n  System\n");
    assert_non_null(sys);
    assert_true(sys > caps);
    cli_free(&r);

    r = CLI(NULL, "show", "echo", "--modelfile");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "FROM"));
    cli_free(&r);

    r = CLI(NULL, "show", "nosuchmodel");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err.data, "Error: model 'nosuchmodel:latest' not found\n");
    cli_free(&r);
}

static void test_stop_unloads(void **state)
{
    (void)state;
    cli_result r = CLI("", "run", "echo");
    assert_int_equal(r.status, 0);
    cli_free(&r);
    r = CLI(NULL, "stop", "echo");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err.data, "");
    cli_free(&r);
    r = CLI(NULL, "ps");
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out.data, "echo:latest"));
    assert_non_null(strstr(r.out.data, "NAME"));
    cli_free(&r);
    r = CLI(NULL, "stop", "echo");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err.data, "Error: couldn't find model \"echo\" to stop\n");
    cli_free(&r);
}

/* ================================================================================================ */
/* against the fake server: display of thinking, stream errors, what the session sends */

static void test_run_shows_thinking_apart(void **state)
{
    (void)state;
    cli_result r = FAKE_CLI(NULL, "run", "fake", "Why?");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Thinking...\nI ponder.\n...done thinking.\n\nThe answer.\n");
    cli_free(&r);
    r = FAKE_CLI(NULL, "run", "fake", "--hidethinking", "Why?");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "The answer.\n");
    cli_free(&r);
}

static void test_run_verbose_stats_use_go_durations(void **state)
{
    (void)state;
    cli_result r = FAKE_CLI(NULL, "run", "fake", "--verbose", "Why?");
    assert_int_equal(r.status, 0);
    const char *want = "total duration:       2.5s\n"
                       "load duration:        1\xc2\xb5s\n"
                       "prompt eval count:    7 token(s)\n"
                       "prompt eval duration: 500ms\n"
                       "prompt eval rate:     14.00 tokens/s\n"
                       "eval count:           4 token(s)\n"
                       "eval duration:        2s\n"
                       "eval rate:            2.00 tokens/s\n"
                       "time to first token:  ";
    assert_memory_equal(r.err.data, want, strlen(want));
    cli_free(&r);
}

static void test_run_error_line_mid_stream_is_exit_1(void **state)
{
    (void)state;
    cli_result r = FAKE_CLI(NULL, "run", "broken", "Hi");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out.data, "partial\n");
    assert_string_equal(r.err.data, "Error: boom\n");
    cli_free(&r);
}

/* An error status's body is the message even on a stream (the status is known only at the end). */
static void test_run_error_status_with_a_text_body_is_its_message(void **state)
{
    (void)state;
    cli_result r = FAKE_CLI(NULL, "run", "busy", "Hi");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out.data, "");
    assert_string_equal(r.err.data, "Error: Server busy, try later\n");
    cli_free(&r);
}

static void test_run_stream_line_that_is_not_json_is_exit_1(void **state)
{
    (void)state;
    cli_result r = FAKE_CLI(NULL, "run", "garbage", "Hi");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out.data, "fine\n");
    assert_memory_equal(r.err.data, "Error: invalid JSON line from the server: ", 42);
    cli_free(&r);
    r = FAKE_CLI(NULL, "run", "html", "Hi");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out.data, "");
    assert_memory_equal(r.err.data, "Error: invalid JSON line from the server: ", 42);
    cli_free(&r);
}

static void test_ollama_host_forms_for_a_client(void **state)
{
    (void)state;
    const char *forms[] = {"0.0.0.0:%d", "http://127.0.0.1:%d/", " \"127.0.0.1:%d\" "};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char host[80];
        snprintf(host, sizeof host, forms[i], srv.port);
        cli_result r = run_cli_host(host, NULL, (const char *const[]){"list", NULL});
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out.data, "echo:latest"));
        cli_free(&r);
    }
}

/* ================================================================================================ */
/* flags: getopt_long's spellings, anywhere on the line */

static void test_run_flags_anywhere_and_in_both_spellings(void **state)
{
    (void)state;
    /* a flag after the prompt's words */
    cli_result r = CLI(NULL, "run", "echo", "Say", "banana", "--verbose");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Say banana\n");
    assert_non_null(strstr(r.err.data, "eval rate:"));
    cli_free(&r);
    /* --name=value and --name value; --think with and without a value */
    r = CLI(NULL, "run", "--keepalive=1m", "echo", "--format", "", "--think=false", "Both", "spellings", "--think");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "Both spellings\n");
    cli_free(&r);
    /* after "--" every word is the prompt's */
    r = CLI(NULL, "run", "echo", "--", "--not-a-flag");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "--not-a-flag\n");
    cli_free(&r);
    /* a missing value, an unknown flag */
    r = CLI(NULL, "run", "echo", "hi", "--keepalive");
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err.data, "Error: flag needs an argument: --keepalive\n");
    cli_free(&r);
    r = CLI(NULL, "run", "echo", "--bogus", "hi");
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err.data, "Error: unknown flag: --bogus\n");
    cli_free(&r);
    r = CLI(NULL, "run", "echo", "-x", "hi");
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err.data, "Error: unknown flag: -x\n");
    cli_free(&r);
}

static void test_model_commands_bad_usage_exits_2(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *error;
    } cases[] = {
        {{"list", "--bogus"}, "Error: unknown flag: --bogus\n\nUsage: axllama list"},
        {{"ps", "a", "b"}, "Error: accepts at most 1 arg(s)\n\nUsage: axllama ps"},
        {{"show"}, "Error: accepts 1 arg(s), received 0\n\nUsage: axllama show"},
        {{"show", "echo", "other"}, "Error: accepts 1 arg(s)\n\nUsage: axllama show"},
        {{"show", "echo", "--license", "--system"}, "Error: only one of '--license', '--modelfile'"},
        {{"stop"}, "Error: accepts 1 arg(s), received 0\n\nUsage: axllama stop"},
        {{"stop", "-z", "echo"}, "Error: unknown flag: -z\n\nUsage: axllama stop"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = run_cli_at(srv.port, NULL, cases[i].args);
        if (r.status != 2 || strncmp(r.err.data, cases[i].error, strlen(cases[i].error)))
            fail_msg("%s %s: status %d, stderr [%s]", cases[i].args[0], cases[i].args[1] ? cases[i].args[1] : "",
                     r.status, r.err.data);
        cli_free(&r);
    }
    /* --help anywhere, -h, and show's flags after the model */
    cli_result r = CLI(NULL, "ps", "x", "--help");
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama ps", 17);
    cli_free(&r);
    r = CLI(NULL, "show", "-h");
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama show", 19);
    cli_free(&r);
    r = CLI(NULL, "show", "echo", "-v", "--template");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "<|im_start|>"));
    cli_free(&r);
}

/* ================================================================================================ */
/* proxies: a loopback server is never reached through one */

/* The proxy variables curl reads, all pointing at a port where nothing listens. It used to make
 * every client command fail with "could not connect" against a server on this machine. */
static void test_loopback_server_is_reached_whatever_the_proxy_variables_say(void **state)
{
    (void)state;
    char proxy[6][64];
    static const char *const names[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                        "HTTPS_PROXY", "ALL_PROXY",  "all_proxy"};
    int dead = h_free_port();
    const char *env[9];
    for (size_t i = 0; i < 6; i++) {
        snprintf(proxy[i], sizeof proxy[i], "%s=http://127.0.0.1:%d", names[i], dead);
        env[i] = proxy[i];
    }
    env[6] = "NO_PROXY=";
    env[7] = "no_proxy=";
    env[8] = NULL;
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", srv.port);

    cli_result r = run_cli_env(host, env, NULL, (const char *const[]){"list", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "echo:latest"));
    assert_string_equal(r.err.data, "");
    cli_free(&r);
    r = run_cli_env(host, env, NULL, (const char *const[]){"run", "echo", "No", "proxy", NULL});
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "No proxy\n");
    cli_free(&r);
    r = run_cli_env(host, env, NULL, (const char *const[]){"ps", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "echo:latest"));
    cli_free(&r);
    r = run_cli_env(host, env, NULL, (const char *const[]){"show", "echo", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "architecture"));
    cli_free(&r);
    r = run_cli_env(host, env, NULL, (const char *const[]){"stop", "echo", NULL});
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err.data, "");
    cli_free(&r);
    /* "localhost" is loopback too */
    snprintf(host, sizeof host, "localhost:%d", srv.port);
    r = run_cli_env(host, env, NULL, (const char *const[]){"list", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "echo:latest"));
    cli_free(&r);
}

/* ================================================================================================ */
/* axllama serve's flags and OLLAMA_DEBUG */

/* `axllama serve ARGS...` (NULL-terminated) on a free port with the extra environment env
 * ("NAME=value", NULL-terminated), its log in a file; waits until it listens. */
static bool serve_start_with(h_server *s, const char *const *args, const char *const *env)
{
    s->port = h_free_port();
    strcpy(s->log_path, "/tmp/axllama-serve-log-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0)
        return false;
    char prog[512], host[64];
    snprintf(prog, sizeof prog, "%s/axllama", h_build_dir());
    snprintf(host, sizeof host, "OLLAMA_HOST=127.0.0.1:%d", s->port);
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        putenv(host);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        const char *argv[16] = {prog, "serve"};
        size_t n = 2;
        for (size_t i = 0; args[i] && n < 15; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(prog, (char **)argv);
        _exit(127);
    }
    close(fd);
    s->exited = false;
    return s->pid > 0 && h_server_wait_log(s, "Listening on", 10.0);
}

static void test_serve_models_flag_beats_axllama_models_and_debug_logs_each_request(void **state)
{
    (void)state;
    h_server from_env, from_flag;
    h_server_dir(&from_env);
    h_server_dir(&from_flag);
    h_write_manifest(from_env.dir, "from-env", NULL, NULL);
    h_write_manifest(from_flag.dir, "from-flag", NULL, NULL);
    char models_env[128];
    snprintf(models_env, sizeof models_env, "AXLLAMA_MODELS=%s", from_env.dir);
    const char *env[] = {models_env, "OLLAMA_DEBUG=1", NULL};
    /* the flag after "serve", in its --name=value spelling */
    char flag[128];
    snprintf(flag, sizeof flag, "--models=%s", from_flag.dir);
    assert_true(serve_start_with(&from_flag, (const char *const[]){flag, NULL}, env));
    h_http tags = h_srv(&from_flag, "GET", "/api/tags", NULL);
    assert_int_equal(tags.status, 200);
    assert_non_null(strstr(tags.body.data, "\"from-flag:latest\""));
    assert_null(strstr(tags.body.data, "from-env"));
    h_http_free(&tags);
    /* OLLAMA_DEBUG: the settings at start, one more line per request */
    assert_true(h_server_wait_log(&from_flag, "[DEBUG] GET \"/api/tags\": request body 0 bytes, answered after", 5));
    char *log = h_server_log(&from_flag);
    assert_non_null(strstr(log, "[DEBUG] settings: OLLAMA_HOST 127.0.0.1:"));
    free(log);
    assert_int_equal(h_server_stop(&from_flag), 0);

    /* without the flag AXLLAMA_MODELS is the directory; OLLAMA_DEBUG=0 adds nothing to the log */
    const char *env_quiet[] = {models_env, "OLLAMA_DEBUG=0", NULL};
    assert_true(serve_start_with(&from_env, (const char *const[]){NULL}, env_quiet));
    tags = h_srv(&from_env, "GET", "/api/tags", NULL);
    assert_non_null(strstr(tags.body.data, "\"from-env:latest\""));
    h_http_free(&tags);
    assert_true(h_server_wait_log(&from_env, "[HTTP] 200", 5));
    log = h_server_log(&from_env);
    assert_null(strstr(log, "[DEBUG]"));
    free(log);
    assert_int_equal(h_server_stop(&from_env), 0);
}

static void test_serve_bad_flags_exit_2(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "serve", "--bogus");
    assert_int_equal(r.status, 2);
    assert_memory_equal(r.err.data, "axllama serve: unknown or incomplete argument '--bogus'\nUsage: axllama serve",
                        strlen("axllama serve: unknown or incomplete argument '--bogus'\nUsage: axllama serve"));
    cli_free(&r);
    r = CLI(NULL, "serve", "--models");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err.data, "unknown or incomplete argument '--models'"));
    cli_free(&r);
    r = CLI(NULL, "serve", "stray");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err.data, "unknown or incomplete argument 'stray'"));
    cli_free(&r);
    r = CLI(NULL, "serve", "--help");
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama serve [--models DIR]", 35);
    cli_free(&r);
}

/* `axllama help COMMAND` is the command's own help; ollama's pull/push/rm/cp/create say what to do
 * instead (exit 1), not "unknown command" and the whole usage. */
static void test_help_command_and_ollamas_model_commands(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "help", "run");
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama run MODEL [PROMPT] [flags]\n", 42);
    cli_free(&r);
    r = CLI(NULL, "help", "list");
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama list", 19);
    cli_free(&r);
    r = CLI(NULL, "help");
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama COMMAND [ARGS]", 29);
    cli_free(&r);
    r = CLI(NULL, "help", "nope");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err.data, "unknown command 'nope'"));
    cli_free(&r);
    static const struct {
        const char *cmd, *start;
    } instead[] = {
        {"pull", "Error: axllama does not download models: a model is the vendor's model package plus a manifest"},
        {"push", "Error: axllama has no registry to push to"},
        {"rm", "Error: axllama does not delete models: remove the model's manifest"},
        {"cp", "Error: axllama does not copy models: a model is its manifest file"},
        {"create", "Error: axllama does not create models from a Modelfile"},
    };
    for (size_t i = 0; i < sizeof instead / sizeof instead[0]; i++) {
        r = CLI(NULL, instead[i].cmd, "qwen3:4b");
        assert_int_equal(r.status, 1);
        if (strncmp(r.err.data, instead[i].start, strlen(instead[i].start)) != 0)
            fail_msg("%s: %s", instead[i].cmd, r.err.data);
        assert_null(strstr(r.err.data, "unknown command"));
        assert_null(strstr(r.err.data, "Usage:"));
        assert_string_equal(r.out.data, "");
        cli_result h = CLI(NULL, "help", instead[i].cmd); /* the same text as help, on stdout */
        assert_int_equal(h.status, 0);
        assert_string_equal(h.out.data, r.err.data + strlen("Error: "));
        cli_free(&h);
        cli_free(&r);
    }
}

/* --format json or a schema: passed on as `format`; the server checks the reply. */
static void test_run_format_json_and_schema(void **state)
{
    (void)state;
    cli_result r = CLI(NULL, "run", "echo", "--format", "json", "{\"a\": 1}");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "{\"a\": 1}\n");
    cli_free(&r);
    r = CLI(NULL, "run", "echo", "--format=json", "It is sunny.");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err.data, "Error: the model's reply is not valid JSON"));
    cli_free(&r);
    const char *schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}";
    r = CLI(NULL, "run", "echo", "--format", schema, "{\"a\": 2}");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out.data, "{\"a\": 2}\n");
    cli_free(&r);
    r = CLI(NULL, "run", "echo", "--format", schema, "{\"b\": 2}");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err.data, "Error: the model's reply does not match the format schema: $: missing required "
                                       "property \"a\""));
    cli_free(&r);
    r = CLI(NULL, "run", "echo", "--format", "xml", "x");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err.data, "Error: invalid value for --format: xml"));
    cli_free(&r);

    /* the request carries the schema as an object */
    size_t base = fake_count();
    r = FAKE_CLI(NULL, "run", "fake", "--format", schema, "hi");
    assert_int_equal(r.status, 0);
    cli_free(&r);
    json_t *format = json_object_get(fake_request(base), "format");
    assert_true(json_is_object(format));
    assert_string_equal(json_string_value(json_object_get(format, "type")), "object");
}

/* ================================================================================================ */
/* axllama import */

static vfix pkg;

/* `axllama import ARGS...` with the extra environment env (may be NULL). */
static cli_result import_cli(const char *const *env, const char *const *args)
{
    const char *argv[24] = {"import"};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return run_cli_env("127.0.0.1:1", env, NULL, argv);
}

static void test_import_then_list_shows_it_at_once_and_a_chat_runs_on_it(void **state)
{
    (void)state;
    assert_true(vfix_make(&pkg, "Qwen3-4B"));
    /* the fixture's vendor binary is main_api_axcl_x86 (the emulator, built for this machine):
     * --runtime picks it on any machine (an arm64 host would pick main_api_axcl_aarch64) */
    h_server s;
    h_server_dir(&s);
    /* the vendor binary serves on a fixed port; the emulator standing in for it is told the same one */
    char port[16], emu_args[96];
    snprintf(port, sizeof port, "%d", h_free_port());
    snprintf(emu_args, sizeof emu_args, "AXLLAMA_EMU_ARGS=--emu-profile fast --emu-port %s", port);
    const char *env[] = {emu_args, NULL};
    assert_true(serve_start_with(&s, (const char *const[]){"--models", s.dir, NULL}, env));
    cli_result r = run_cli_at(s.port, NULL, (const char *const[]){"list", NULL});
    assert_null(strstr(r.out.data, "qwen3:4b"));
    cli_free(&r);

    r = import_cli(NULL,
                   (const char *const[]){pkg.dir, "--models", s.dir, "--port", port, "--runtime", "axcl_x86", NULL});
    if (r.status != 0)
        fail_msg("import failed: %s", r.err.data);
    char manifest[256];
    snprintf(manifest, sizeof manifest, "  manifest   %s/qwen3-4b.json\n", s.dir);
    assert_memory_equal(r.out.data, "imported qwen3:4b\n", strlen("imported qwen3:4b\n"));
    assert_non_null(strstr(r.out.data, "  runtime    main_api_axcl_x86\n"));
    assert_non_null(strstr(r.out.data, "  flags      from run_qwen3_4b_int8_ctx_axcl_x86.sh; left out: "
                                       "--url_tokenizer_model, --live_print, --devices\n"));
    assert_non_null(strstr(r.out.data, "  context    2048 prefill / 2559 positions (from README.md)\n"));
    assert_non_null(strstr(r.out.data, manifest));
    cli_free(&r);

    /* the running server lists it at once, and it answers */
    r = run_cli_at(s.port, NULL, (const char *const[]){"list", NULL});
    assert_int_equal(r.status, 0);
    char *row = line_starting(r.out.data, "qwen3:4b ");
    assert_non_null(row);
    assert_non_null(strstr(row, " 11 KB ")); /* the model files: 12000 bytes, in ollama's HumanBytes */
    free(row);
    cli_free(&r);
    r = run_cli_at(s.port, NULL, (const char *const[]){"run", "qwen3:4b", "Echo this back", NULL});
    if (r.status != 0)
        fail_msg("run failed: %s", r.err.data);
    assert_non_null(strstr(r.out.data, "Echo this back"));
    cli_free(&r);
    assert_true(h_server_wait_log(&s, "qwen3:4b is ready", 5));

    /* a second import of the same name is refused unless --force */
    r = import_cli(NULL,
                   (const char *const[]){pkg.dir, "--models", s.dir, "--port", port, "--runtime", "axcl_x86", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err.data, "Error: a model named qwen3:4b exists already"));
    cli_free(&r);
    r = import_cli(NULL, (const char *const[]){pkg.dir, "--models", s.dir, "--port", port, "--runtime", "axcl_x86",
                                               "--force", NULL});
    assert_int_equal(r.status, 0);
    cli_free(&r);
    /* another name is another model */
    r = import_cli(NULL, (const char *const[]){pkg.dir, "mine:v2", "--models", s.dir, "--port", port, "--runtime",
                                               "axcl_x86", NULL});
    assert_int_equal(r.status, 0);
    cli_free(&r);
    r = run_cli_at(s.port, NULL, (const char *const[]){"list", "mine", NULL});
    assert_non_null(strstr(r.out.data, "mine:v2"));
    cli_free(&r);

    assert_int_equal(h_server_stop(&s), 0);
    vfix_remove(&pkg);
}

static void test_import_writes_to_axllama_models_else_the_users_directory(void **state)
{
    (void)state;
    assert_true(vfix_make(&pkg, "Qwen3-1.7B"));
    char models[PATH_MAX + 64], home[PATH_MAX + 64], path[PATH_MAX + 128];
    snprintf(models, sizeof models, "AXLLAMA_MODELS=%s/env-models", pkg.root);
    cli_result r = import_cli((const char *const[]){models, NULL}, (const char *const[]){pkg.dir, NULL});
    assert_int_equal(r.status, 0);
    snprintf(path, sizeof path, "%s/env-models/qwen3-1.7b.json", pkg.root);
    assert_int_equal(access(path, F_OK), 0);
    cli_free(&r);

    snprintf(home, sizeof home, "HOME=%s/home", pkg.root);
    r = import_cli((const char *const[]){"AXLLAMA_MODELS=", "XDG_CONFIG_HOME=", home, NULL},
                   (const char *const[]){pkg.dir, NULL});
    assert_int_equal(r.status, 0);
    snprintf(path, sizeof path, "%s/home/.config/axllama/models/qwen3-1.7b.json", pkg.root);
    assert_int_equal(access(path, F_OK), 0);
    cli_free(&r);
    vfix_remove(&pkg);
}

static void test_import_refuses_a_bad_folder_with_exit_1_and_writes_nothing(void **state)
{
    (void)state;
    assert_true(vfix_make(&pkg, "Qwen3-4B"));
    vf_make_lfs_pointer(&pkg, "main_api_axcl_x86");
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/models", pkg.root);
    cli_result r = import_cli(NULL, (const char *const[]){pkg.dir, "--models", dir, "--runtime", "axcl_x86", NULL});
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out.data ? r.out.data : "", "");
    assert_memory_equal(r.err.data, "Error: ", 7);
    assert_non_null(strstr(r.err.data, "main_api_axcl_x86 (132 bytes; the real file has 1.0 MB)"));
    assert_non_null(strstr(r.err.data, "git lfs pull"));
    assert_int_equal(access(dir, F_OK), -1); /* nothing written, not even the directory */
    cli_free(&r);
    vfix_remove(&pkg);
}

static void test_import_bad_usage_exits_2(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *message;
    } cases[] = {
        {{NULL}, "Error: the model package's folder is missing\n"},
        {{"/x", "name", "extra"}, "Error: too many arguments (\"extra\")\n"},
        {{"/x", "--runtime", "axcl"}, "Error: --runtime must be ax650, axcl_aarch64 or axcl_x86, not \"axcl\"\n"},
        {{"/x", "--template", "llama3"}, "Error: --template must be qwen3 or qwen2.5, not \"llama3\"\n"},
        {{"/x", "--port", "70000"}, "Error: --port must be a port number from 1 to 65535, not \"70000\"\n"},
        {{"/x", "--system", "--models=/y"}, "Error: --system and --models both say where to write; give one\n"},
        {{"/x", "--bogus"}, "Error: unknown flag: --bogus\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = import_cli(NULL, cases[i].args);
        assert_int_equal(r.status, 2);
        assert_memory_equal(r.err.data, cases[i].message, strlen(cases[i].message));
        assert_non_null(strstr(r.err.data, "Usage: axllama import DIR [NAME] [flags]"));
        cli_free(&r);
    }
    cli_result r = import_cli(NULL, (const char *const[]){"--help", NULL});
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out.data, "Usage: axllama import DIR [NAME] [flags]", 40);
    cli_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_prompt_argument_prints_reply_and_exits_0),
        cmocka_unit_test(test_run_piped_stdin_comes_before_the_arguments),
        cmocka_unit_test(test_run_input_that_is_not_utf8_is_repaired_not_dropped),
        cmocka_unit_test(test_run_empty_prompt_only_loads),
        cmocka_unit_test(test_run_unknown_model_is_error_exit_1),
        cmocka_unit_test(test_run_unreachable_server_is_error_exit_1),
        cmocka_unit_test(test_run_server_error_mid_request_is_error_exit_1),
        cmocka_unit_test(test_run_verbose_prints_ollama_stats),
        cmocka_unit_test(test_run_bad_usage_exits_2),
        cmocka_unit_test(test_list_layout),
        cmocka_unit_test(test_ps_layout_after_a_load),
        cmocka_unit_test(test_show_layout),
        cmocka_unit_test(test_stop_unloads),
        cmocka_unit_test(test_run_shows_thinking_apart),
        cmocka_unit_test(test_run_verbose_stats_use_go_durations),
        cmocka_unit_test(test_run_error_line_mid_stream_is_exit_1),
        cmocka_unit_test(test_run_error_status_with_a_text_body_is_its_message),
        cmocka_unit_test(test_run_stream_line_that_is_not_json_is_exit_1),
        cmocka_unit_test(test_ollama_host_forms_for_a_client),
        cmocka_unit_test(test_run_flags_anywhere_and_in_both_spellings),
        cmocka_unit_test(test_model_commands_bad_usage_exits_2),
        cmocka_unit_test(test_loopback_server_is_reached_whatever_the_proxy_variables_say),
        cmocka_unit_test(test_serve_models_flag_beats_axllama_models_and_debug_logs_each_request),
        cmocka_unit_test(test_serve_bad_flags_exit_2),
        cmocka_unit_test(test_help_command_and_ollamas_model_commands),
        cmocka_unit_test(test_run_format_json_and_schema),
        cmocka_unit_test(test_import_then_list_shows_it_at_once_and_a_chat_runs_on_it),
        cmocka_unit_test(test_import_writes_to_axllama_models_else_the_users_directory),
        cmocka_unit_test(test_import_refuses_a_bad_folder_with_exit_1_and_writes_nothing),
        cmocka_unit_test(test_import_bad_usage_exits_2),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
