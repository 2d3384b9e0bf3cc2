/* End-to-end tests of the client commands of the `axllama` binary (run, list, ps, show, stop)
 * against `axllama serve` on axllama-emu: one-shot runs (prompt argument, piped stdin, exit codes,
 * error texts), the table layouts, and interactive sessions driven through a pseudo-terminal
 * (streamed replies, KV reuse across turns, """ input, /clear, /set think|nothink, Ctrl-C during
 * a reply and at the prompt, Ctrl-D, /bye, --verbose, the load progress indicator). */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <cmocka.h>

#include "net/http_server.h"
#include "cli/display.c" /* the CLI's formatting rules, not part of the library */
#include "serve_harness.h"

static h_server srv;

/* ---- a fake server: canned /api/chat answers (thinking, stream errors), request bodies kept ---- */

static http_server *fake;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *fake_requests; /* every /api/chat body with messages, in order */

static http_response *fake_chat(const http_request *req, void *user)
{
    (void)user;
    json_t *body = json_loads(req->body, 0, NULL);
    const char *model = json_string_value(json_object_get(body, "model"));
    json_t *msgs = json_object_get(body, "messages");
    strbuf out = {0};
    const char *head = "{\"model\":\"x\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",";
    if (!json_array_size(msgs)) {
        sb_printf(&out, "%s\"content\":\"\"},\"done\":true,\"done_reason\":\"load\"}\n", head);
    } else {
        pthread_mutex_lock(&fake_lock);
        json_array_append(fake_requests, body);
        pthread_mutex_unlock(&fake_lock);
        if (model && !strcmp(model, "broken")) {
            sb_printf(&out, "%s\"content\":\"partial\"},\"done\":false}\n{\"error\":\"boom\"}\n", head);
        } else {
            sb_printf(&out, "%s\"content\":\"\",\"thinking\":\"I ponder\"},\"done\":false}\n", head);
            sb_printf(&out, "%s\"content\":\"\",\"thinking\":\".\"},\"done\":false}\n", head);
            sb_printf(&out, "%s\"content\":\"The \"},\"done\":false}\n", head);
            sb_printf(&out, "%s\"content\":\"answer.\"},\"done\":false}\n", head);
            sb_printf(&out,
                      "%s\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":2500000000,"
                      "\"load_duration\":1000,\"prompt_eval_count\":7,\"prompt_eval_duration\":500000000,"
                      "\"eval_count\":4,\"eval_duration\":2000000000}\n",
                      head);
        }
    }
    json_decref(body);
    size_t len = out.len;
    return http_response_take(200, HTTP_CONTENT_TYPE_NDJSON, sb_steal(&out), len);
}

static bool fake_start(void)
{
    static const http_route routes[] = {{.method = "POST", .path = "/api/chat", .handler = fake_chat}};
    http_server_config cfg = {.host = "127.0.0.1", .port = 0, .routes = routes, .n_routes = 1};
    char err[256];
    fake_requests = json_array();
    fake = http_server_start(&cfg, err, sizeof err);
    return fake != NULL;
}

/* The i-th recorded request (borrowed), or NULL. */
static json_t *fake_request(size_t i)
{
    pthread_mutex_lock(&fake_lock);
    json_t *r = json_array_get(fake_requests, i);
    pthread_mutex_unlock(&fake_lock);
    return r;
}

static size_t fake_count(void)
{
    pthread_mutex_lock(&fake_lock);
    size_t n = json_array_size(fake_requests);
    pthread_mutex_unlock(&fake_lock);
    return n;
}

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h_server_dir(&srv);
    /* thinking models by default (their think block is empty) */
    h_write_manifest(srv.dir, "echo", NULL, "\"size\": 5011488768");
    /* a model that cannot think */
    h_write_manifest(srv.dir, "plain", NULL, "\"thinking\": false");
    /* 400 tokens at 12.5 tokens/s: a reply of about 32 s */
    const char *slow[] = {"--emu-time-scale", "40", "--emu-reply-tokens", "400", NULL};
    h_write_manifest(srv.dir, "slow", slow, NULL);
    /* a load of about 4 s */
    const char *loady[] = {"--emu-init-seconds", "4", NULL};
    h_write_manifest(srv.dir, "loady", loady, NULL);
    return h_server_start(&srv, NULL) && fake_start() ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    h_server_stop(&srv);
    http_server_stop(fake);
    json_decref(fake_requests);
    curl_global_cleanup();
    return 0;
}

/* ---- running the CLI with pipes ---- */

typedef struct {
    int status; /* exit status, -1 if it did not exit in time (then killed) */
    strbuf out, err;
} cli_result;

static void cli_free(cli_result *r)
{
    sb_free(&r->out);
    sb_free(&r->err);
}

/* `axllama ARGS...` with OLLAMA_HOST=host and stdin_text on stdin (NULL: nothing, closed). */
static cli_result run_cli_host(const char *host, const char *stdin_text, const char *const *args)
{
    cli_result r = {.status = -1};
    int in[2], outp[2], errp[2];
    if (pipe(in) || pipe(outp) || pipe(errp))
        return r;
    char prog[512];
    snprintf(prog, sizeof prog, "%s/axllama", h_build_dir());
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        setenv("OLLAMA_HOST", host, 1);
        const char *argv[32] = {prog};
        size_t n = 1;
        for (size_t i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(prog, (char **)argv);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    close(errp[1]);
    if (stdin_text) {
        ssize_t w = write(in[1], stdin_text, strlen(stdin_text));
        (void)w;
    }
    close(in[1]);
    struct pollfd pfd[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
    strbuf *bufs[2] = {&r.out, &r.err};
    int open_fds = 2;
    double end = h_now() + 60;
    while (open_fds > 0 && h_now() < end) {
        if (poll(pfd, 2, 200) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP)))
                continue;
            char buf[4096];
            ssize_t n = read(pfd[i].fd, buf, sizeof buf);
            if (n > 0) {
                sb_append(bufs[i], buf, (size_t)n);
            } else {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    int st = 0;
    double wend = h_now() + 10;
    while (waitpid(pid, &st, WNOHANG) == 0 && h_now() < wend)
        h_sleep(0.01);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    } else if (WIFEXITED(st)) {
        r.status = WEXITSTATUS(st);
    }
    if (!r.out.data)
        sb_puts(&r.out, "");
    if (!r.err.data)
        sb_puts(&r.err, "");
    return r;
}

static cli_result run_cli_at(int port, const char *stdin_text, const char *const *args)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    return run_cli_host(host, stdin_text, args);
}

#define CLI(stdin_text, ...) run_cli_at(srv.port, stdin_text, (const char *const[]){__VA_ARGS__, NULL})
#define FAKE_CLI(stdin_text, ...)                                                                                     \
    run_cli_at(http_server_port(fake), stdin_text, (const char *const[]){__VA_ARGS__, NULL})

/* ---- a session in a pseudo-terminal ---- */

typedef struct {
    int master;
    pid_t pid;
    strbuf out;  /* everything the terminal showed */
    size_t mark; /* pty_expect searches from here */
    int status;  /* exit status once reaped, else -1 */
} pty_session;

static bool pty_start_at(pty_session *p, int port, const char *const *args)
{
    memset(p, 0, sizeof *p);
    p->status = -1;
    p->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (p->master < 0 || grantpt(p->master) || unlockpt(p->master))
        return false;
    const char *slave_name = ptsname(p->master);
    if (!slave_name)
        return false;
    char slave[128];
    snprintf(slave, sizeof slave, "%s", slave_name);
    char prog[512];
    snprintf(prog, sizeof prog, "%s/axllama", h_build_dir());
    p->pid = fork();
    if (p->pid == 0) {
        setsid();
        int fd = open(slave, O_RDWR);
        if (fd < 0)
            _exit(126);
        ioctl(fd, TIOCSCTTY, 0);
        struct winsize ws = {.ws_row = 40, .ws_col = 200};
        ioctl(fd, TIOCSWINSZ, &ws);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
        close(p->master);
        char host[64];
        snprintf(host, sizeof host, "127.0.0.1:%d", port);
        setenv("OLLAMA_HOST", host, 1);
        const char *argv[32] = {prog, "run"};
        size_t n = 2;
        for (size_t i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(prog, (char **)argv);
        _exit(127);
    }
    sb_puts(&p->out, "");
    return p->pid > 0;
}

static bool pty_start(pty_session *p, const char *const *args)
{
    return pty_start_at(p, srv.port, args);
}

/* Reads what is there (waiting up to wait_s for something). False at EOF. */
static bool pty_read(pty_session *p, double wait_s)
{
    struct pollfd pfd = {.fd = p->master, .events = POLLIN};
    if (poll(&pfd, 1, (int)(wait_s * 1000)) <= 0)
        return true;
    char buf[4096];
    ssize_t n = read(p->master, buf, sizeof buf);
    if (n <= 0)
        return false; /* EIO once the child has gone */
    sb_append(&p->out, buf, (size_t)n);
    return true;
}

/* Waits (up to timeout_s) for needle after the mark; moves the mark past it. */
static bool pty_expect(pty_session *p, const char *needle, double timeout_s)
{
    double end = h_now() + timeout_s;
    for (;;) {
        char *hit = strstr(p->out.data + p->mark, needle);
        if (hit) {
            p->mark = (size_t)(hit - p->out.data) + strlen(needle);
            return true;
        }
        if (h_now() > end || !pty_read(p, 0.1)) {
            hit = strstr(p->out.data + p->mark, needle);
            if (hit)
                p->mark = (size_t)(hit - p->out.data) + strlen(needle);
            if (!hit)
                print_message("pty: did not see \"%s\" in:\n%s\n", needle, p->out.data + p->mark);
            return hit != NULL;
        }
    }
}

static void pty_send(pty_session *p, const char *s)
{
    ssize_t w = write(p->master, s, strlen(s));
    (void)w;
}

/* Waits for the exit (reading the terminal meanwhile); the exit status or -1. */
static int pty_wait(pty_session *p, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (h_now() < end) {
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            p->pid = 0;
            return p->status;
        }
        pty_read(p, 0.05);
    }
    return -1;
}

static void pty_close(pty_session *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->master >= 0)
        close(p->master);
    sb_free(&p->out);
}

/* The value N of the last "prompt eval count:    N token(s)" after from, or -1. */
static long last_prompt_eval_count(const char *text)
{
    long n = -1;
    const char *key = "prompt eval count:";
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key))
        n = strtol(p + strlen(key), NULL, 10);
    return n;
}

/* The runtime logs "[GetKVCache]...: precompute_len:N, remaining:M" at the end of every generation:
 * N is the length of its KV cache. How many such lines the server log has, and the last N. */
static size_t kv_reports(long *last)
{
    char *log = h_server_log(&srv);
    size_t count = 0;
    *last = -1;
    for (const char *p = log ? strstr(log, "GetKVCache") : NULL; p; p = strstr(p + 1, "GetKVCache")) {
        const char *nl = strchr(p, '\n');
        const char *v = strstr(p, "precompute_len:");
        if (v && (!nl || v < nl)) {
            count++;
            *last = strtol(v + strlen("precompute_len:"), NULL, 10);
        }
    }
    free(log);
    return count;
}

/* Waits (up to timeout_s) for a report after the first `seen`; the KV cache length it gives, or -1. */
static long wait_kv_report(size_t *seen, double timeout_s)
{
    double end = h_now() + timeout_s;
    long last;
    for (;;) {
        size_t n = kv_reports(&last);
        if (n > *seen) {
            *seen = n;
            return last;
        }
        if (h_now() > end)
            return -1;
        h_sleep(0.05);
    }
}

/* ================================================================================================ */
/* the display rules (ollama's format package) */

static void test_display_human_bytes(void **state)
{
    (void)state;
    char b[32];
    const struct {
        int64_t n;
        const char *want;
    } cases[] = {{0, "0 B"},           {1023, "1023 B"},       {1024, "1 KB"},          {1536, "1.5 KB"},
                 {5011488768, "4.7 GB"}, {5368709120, "5 GB"}, {12884901888, "12 GB"}, {1099511627776, "1 TB"}};
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
    } cases[] = {{-0.5, "Less than a second ago"}, {-1, "1 second ago"},      {-42, "42 seconds ago"},
                 {-61, "About a minute ago"},      {-150, "2 minutes ago"},   {-3600, "About an hour ago"},
                 {-5 * 3600, "5 hours ago"},       {-3 * 86400, "3 days ago"}, {-20 * 86400, "2 weeks ago"},
                 {-90 * 86400, "3 months ago"},    {-800 * 86400.0, "2 years ago"}, {241, "4 minutes from now"},
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
/* interactive sessions */

#define LONG_MSG                                                                                                      \
    "Alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec "     \
    "romeo sierra tango uniform victor whiskey xray yankee zulu"

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
    assert_true(pty_expect(&p, "Zap\r\n", 10));  /* the terminal's echo */
    assert_true(pty_expect(&p, "ZapZap", 30)); /* the reply is streaming */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_display_human_bytes),
        cmocka_unit_test(test_display_human_time),
        cmocka_unit_test(test_display_go_duration),
        cmocka_unit_test(test_display_parse_time),
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
        cmocka_unit_test(test_interactive_two_turns_stream_and_reuse_cache),
        cmocka_unit_test(test_interactive_multiline_input),
        cmocka_unit_test(test_interactive_clear_forgets_the_conversation),
        cmocka_unit_test(test_interactive_set_think_and_nothink),
        cmocka_unit_test(test_interactive_ctrl_c_cancels_the_reply_not_the_session),
        cmocka_unit_test(test_interactive_ctrl_c_at_prompt_hints_and_ctrl_d_exits),
        cmocka_unit_test(test_interactive_shows_load_progress),
        cmocka_unit_test(test_run_shows_thinking_apart),
        cmocka_unit_test(test_run_verbose_stats_use_go_durations),
        cmocka_unit_test(test_run_error_line_mid_stream_is_exit_1),
        cmocka_unit_test(test_interactive_sends_history_think_and_clear),
        cmocka_unit_test(test_ollama_host_forms_for_a_client),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
