/* Tests for supervisor/supervisor: spawning the runtime (build/axllama-emu, with axllama's tokenizer
 * service in-process), readiness, load progress, log capture, load failures, the port check,
 * restart with backoff after a death, the stop sequence, no child ever left behind, and
 * `--devices auto` with a fake axcl-smi. Children that no emulator flag can imitate (one that
 * ignores SIGINT while serving) are this test binary itself, re-run with --fake-runtime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <microhttpd.h>
#include <sys/stat.h>

#include "supervisor/supervisor.h"
#include "unit/emu_harness.h"

static h_tokenizer g_tok;
static char g_emu[PATH_MAX];  /* absolute path of axllama-emu */
static char g_self[PATH_MAX]; /* this test binary, for --fake-runtime */
static char g_tmpdir[64];     /* scratch directory for scripts */

/* ---- a runtime this binary can play: serves HTTP on a port and ignores SIGINT ---- */

static enum MHD_Result fake_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                   const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    static const char body[] = "{\"done\":true,\"response\":\"\"}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* Prints "Server running on port N...", binds bind_delay_s later (the vendor binds a few µs after
 * the line; the delay makes a supervisor that trusts the line visible), then serves until killed. */
static int fake_runtime_main(int port, double bind_delay_s)
{
    signal(SIGINT, SIG_IGN);
    printf("Server running on port %d...\n", port);
    fflush(stdout);
    h_sleep(bind_delay_s);
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, fake_answer,
                                            NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
    if (!d)
        return 3;
    h_sleep(30.0); /* a safety net: the tests kill it long before */
    MHD_stop_daemon(d);
    return 0;
}

/* A runtime whose init fails hard: one log line with printf (no flush), then abort(). */
static int fake_crash_main(void)
{
    printf("[E][                            Init][  42]: device exploded\n");
    abort();
}

/* An axllama that supervises `runtime` (a program without arguments), prints "runtime <pid>" and
 * then waits to be killed. */
static int fake_axllama_main(const char *runtime)
{
    const char *no_args[] = {NULL};
    supervisor_config cfg = {.binary = runtime, .args = no_args, .port = h_free_port(), .load_timeout_s = 60};
    supervisor *s = supervisor_new(&cfg);
    char err[256];
    if (!supervisor_start(s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("runtime %d\n", (int)supervisor_status(s).pid);
    fflush(stdout);
    h_sleep(30.0);
    supervisor_free(s);
    return 0;
}

/* ---- what the callbacks saw ---- */

typedef struct {
    rt_state state;
    double at;
    int restarts;
} state_event;

typedef struct {
    pthread_mutex_t lock;
    supervisor *sup; /* set before start: on_log looks at the state */
    char **lines;
    size_t n_lines, cap_lines;
    bool saw_server_running;
    double server_running_at;                    /* when that line came */
    bool line_before_server_running_not_loading; /* a line before "Server running" came while not LOADING */
    int n_exits;
    rt_status exit_status; /* what on_exit got last */
    rt_state state_at_exit;
    state_event states[64];
    size_t n_states;
} recorder;

static void rec_log(void *user, const char *line)
{
    recorder *r = user;
    rt_status st = supervisor_status(r->sup);
    pthread_mutex_lock(&r->lock);
    if (r->n_lines == r->cap_lines) {
        r->cap_lines = r->cap_lines ? 2 * r->cap_lines : 64;
        r->lines = xrealloc(r->lines, r->cap_lines * sizeof *r->lines);
    }
    r->lines[r->n_lines++] = xstrdup(line);
    if (!r->saw_server_running && st.state != RT_LOADING)
        r->line_before_server_running_not_loading = true;
    if (strstr(line, "Server running on port") && !r->saw_server_running) {
        r->saw_server_running = true;
        r->server_running_at = h_now();
    }
    pthread_mutex_unlock(&r->lock);
}

static void rec_exit(void *user, const rt_status *st)
{
    recorder *r = user;
    pthread_mutex_lock(&r->lock);
    r->n_exits++;
    r->exit_status = *st;
    r->state_at_exit = st->state;
    pthread_mutex_unlock(&r->lock);
}

static void rec_state(void *user, const rt_status *st)
{
    recorder *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->n_states < sizeof r->states / sizeof r->states[0])
        r->states[r->n_states++] = (state_event){st->state, st->state_since, st->restarts};
    pthread_mutex_unlock(&r->lock);
}

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
}

static void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n_lines; i++)
        free(r->lines[i]);
    free(r->lines);
    pthread_mutex_destroy(&r->lock);
}

static int rec_exits(recorder *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->n_exits;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Waits until on_exit was called n times (true) or timeout_s passes. */
static bool rec_wait_exits(recorder *r, int n, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (rec_exits(r) < n && h_now() < end)
        h_sleep(0.002);
    return rec_exits(r) >= n;
}

static size_t rec_count_state(recorder *r, rt_state state)
{
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_states; i++)
        n += r->states[i].state == state;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Index of the first line containing needle, or -1. */
static long rec_find_line(recorder *r, const char *needle)
{
    long found = -1;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_lines && found < 0; i++)
        if (strstr(r->lines[i], needle))
            found = (long)i;
    pthread_mutex_unlock(&r->lock);
    return found;
}

/* ---- building supervisors ---- */

typedef struct {
    int port;
    char port_str[16];
    char url[64];
    const char *args[40];
} emu_cmd;

/* The emulator on a free port with the fast profile, our tokenizer service, and extra flags. */
static void emu_cmd_init(emu_cmd *c, const char *const *extra)
{
    memset(c, 0, sizeof *c);
    c->port = h_free_port();
    snprintf(c->port_str, sizeof c->port_str, "%d", c->port);
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%u", (unsigned)tok_service_port(g_tok.svc));
    const char *base[] = {"--devices",  "0",         "--emu-profile",         "fast",
                          "--emu-port", c->port_str, "--url_tokenizer_model", c->url};
    size_t n = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        c->args[n++] = base[i];
    for (size_t i = 0; extra && extra[i] && n < 39; i++)
        c->args[n++] = extra[i];
    c->args[n] = NULL;
}

static supervisor_config base_config(recorder *r, const char *binary, const char *const *args, int port)
{
    return (supervisor_config){.binary = binary,
                               .args = args,
                               .port = port,
                               .load_timeout_s = 10,
                               .stop_timeout_s = 5,
                               .restart = false,
                               .backoff_initial_s = 0.1,
                               .backoff_max_s = 5,
                               .on_log = rec_log,
                               .on_exit = rec_exit,
                               .on_state = rec_state,
                               .user = r};
}

static supervisor *new_sup(recorder *r, const supervisor_config *cfg)
{
    supervisor *s = supervisor_new(cfg);
    r->sup = s;
    return s;
}

/* Starts; fails the test with the message if it does not start. */
static void start_ok(supervisor *s)
{
    char err[256] = "";
    bool ok = supervisor_start(s, err, sizeof err);
    if (!ok)
        fail_msg("supervisor_start: %s", err);
}

static void wait_ready_ok(supervisor *s, double timeout_s)
{
    char err[256] = "";
    if (!supervisor_wait_ready(s, timeout_s, err, sizeof err))
        fail_msg("supervisor_wait_ready: %s", err);
}

/* True if pid no longer exists at all (reaped: not even a zombie). */
static bool process_gone(pid_t pid)
{
    return pid > 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

/* True if pid does not exist or is a zombie (for processes that are not our children). */
static bool process_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

static bool wait_until_dead(pid_t pid, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (!process_dead(pid) && h_now() < end)
        h_sleep(0.01);
    return process_dead(pid);
}

/* Waits until the supervisor reports state (true) or timeout_s passes. */
static bool wait_state(supervisor *s, rt_state state, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (h_now() < end) {
        if (supervisor_status(s).state == state)
            return true;
        h_sleep(0.002);
    }
    return supervisor_status(s).state == state;
}

static void post_generate(int port)
{
    h_http r = h_request_to(port, "POST", "/api/generate", "{\"prompt\":\"hi\"}", 5.0);
    assert_int_equal(r.status, 200);
    h_http_free(&r);
}

/* Writes an executable shell script into the scratch directory; returns its path (static buffer). */
static const char *write_script(const char *name, const char *body)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", g_tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

/* ---- tests ---- */

static void test_ready_only_after_the_port_answers(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-init-seconds", "0.3", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_LOADING);
    assert_true(st.pid > 0);
    assert_false(h_tcp_connects(c.port, 0.2)); /* still loading: nothing listens yet */
    assert_int_equal(supervisor_status(s).state, RT_LOADING);
    wait_ready_ok(s, 10);
    h_http reply = h_request_to(c.port, "GET", "/api/generate_provider", NULL, 2.0);
    assert_int_equal(reply.status, 200);
    h_http_free(&reply);
    assert_true(r.saw_server_running);
    assert_false(r.line_before_server_running_not_loading);
    assert_int_equal(rec_count_state(&r, RT_READY), 1);
    supervisor_free(s);
    assert_true(process_gone(st.pid));
    rec_free(&r);

    /* a runtime that prints "Server running" 1 s before it binds: the line is not readiness */
    rec_init(&r);
    int port = h_free_port();
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%d", port);
    const char *args[] = {"--fake-runtime", port_str, "1.0", NULL};
    cfg = base_config(&r, g_self, args, port);
    cfg.stop_timeout_s = 0.2;
    s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    assert_true(h_tcp_connects(port, 1.0));
    pthread_mutex_lock(&r.lock);
    assert_true(r.saw_server_running);
    double line_at = r.server_running_at, ready_at = -1;
    for (size_t i = 0; i < r.n_states; i++)
        if (r.states[i].state == RT_READY)
            ready_at = r.states[i].at;
    pthread_mutex_unlock(&r.lock);
    assert_true(ready_at - line_at >= 0.6); /* 1 s minus generous scheduling slack */
    assert_true(ready_at - line_at < 2.0);
    supervisor_free(s);
    rec_free(&r);
}

static void test_progress_k_of_n_is_reported_while_loading(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-init-seconds", "0.3", "--axmodel_num", "5", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    int intermediate_step = 0, intermediate_total = 0;
    double end = h_now() + 10;
    rt_status st = supervisor_status(s);
    while (st.state == RT_LOADING && h_now() < end) {
        if (st.load_step > 0 && st.load_step < st.load_total) {
            intermediate_step = st.load_step;
            intermediate_total = st.load_total;
        }
        h_sleep(0.002);
        st = supervisor_status(s);
    }
    assert_int_equal(st.state, RT_READY);
    assert_true(intermediate_step >= 1 && intermediate_step <= 7);
    assert_int_equal(intermediate_total, 8); /* axmodel_num + 3 */
    assert_int_equal(st.load_step, 8);
    assert_int_equal(st.load_total, 8);
    supervisor_free(s);
    rec_free(&r);
}

static void test_on_log_gets_plain_lines(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--axmodel_num", "5", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    supervisor_free(s);
    assert_true(r.n_lines > 10);
    for (size_t i = 0; i < r.n_lines; i++) {
        const char *line = r.lines[i];
        assert_true(line[0] != '\0');
        assert_null(strchr(line, '\x1b'));
        assert_null(strchr(line, '\r'));
        assert_null(strchr(line, '\n'));
        assert_false(isspace((unsigned char)line[strlen(line) - 1]));
    }
    long init_ok = rec_find_line(&r, "LLM init ok");
    assert_true(init_ok >= 0);
    assert_memory_equal(r.lines[init_ok], "[I][", 4); /* the colour code before it is gone */
    /* each \r redraw of the progress bar is a line of its own */
    long first = rec_find_line(&r, "tokenizer init ok"), last = rec_find_line(&r, "init post axmodel ok");
    assert_true(first >= 0 && last > first);
    assert_null(strstr(r.lines[first], "axmodel ok"));
    assert_non_null(strstr(r.lines[first], "1 /   8"));
    assert_non_null(strstr(r.lines[last], "8 /   8"));
    assert_int_equal(last - first, 7);
    rec_free(&r);
}

static void test_exec_failure_is_reported_synchronously(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    const char *no_args[] = {NULL};
    char not_executable[PATH_MAX];
    snprintf(not_executable, sizeof not_executable, "%s/not-executable", g_tmpdir);
    FILE *f = fopen(not_executable, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n", f);
    fclose(f);
    chmod(not_executable, 0644);
    static const struct {
        const char *binary, *message_after_binary;
    } cases[] = {
        {"/nonexistent/dir/axllama-runtime", ": No such file or directory"},
        {"axllama-no-such-runtime", ": No such file or directory"},
        {NULL, ": Permission denied"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *binary = cases[i].binary ? cases[i].binary : not_executable;
        supervisor_config cfg = base_config(&r, binary, no_args, h_free_port());
        supervisor *s = new_sup(&r, &cfg);
        char err[256] = "", want[PATH_MAX + 64];
        double t0 = h_now();
        assert_false(supervisor_start(s, err, sizeof err));
        assert_true(h_now() - t0 < 2.0);
        snprintf(want, sizeof want, "cannot run %s%s", binary, cases[i].message_after_binary);
        assert_string_equal(err, want);
        rt_status st = supervisor_status(s);
        assert_int_equal(st.state, RT_FAILED);
        assert_int_equal(st.pid, 0);
        assert_string_equal(st.error, want);
        supervisor_free(s);
    }
    assert_int_equal(r.n_lines, 0);
    assert_int_equal(rec_count_state(&r, RT_LOADING), 0);
    unlink(not_executable);
    rec_free(&r);
}

static void test_exit_during_load_fails_with_status_and_last_error_line(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-exit-during-init", "2:3", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    char err[256] = "";
    assert_false(supervisor_wait_ready(s, 10, err, sizeof err));
    const char *prefix = "runtime exited during load (status 3): ";
    assert_memory_equal(err, prefix, strlen(prefix));
    assert_non_null(strstr(err, "axllama-emu: fault: exit during init at step 2"));
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_FAILED);
    assert_true(st.exited);
    assert_true(WIFEXITED(st.last_exit) && WEXITSTATUS(st.last_exit) == 3);
    assert_int_equal(st.pid, 0);
    assert_string_equal(st.error, err);
    assert_int_equal(rec_exits(&r), 0); /* on_exit is for deaths after ready */
    supervisor_free(s);
    rec_free(&r);
}

/* Whether the recorder got exactly this log line. */
static bool rec_has_line(recorder *r, const char *want)
{
    pthread_mutex_lock(&r->lock);
    bool found = false;
    for (size_t i = 0; i < r->n_lines && !found; i++)
        found = !strcmp(r->lines[i], want);
    pthread_mutex_unlock(&r->lock);
    return found;
}

static void test_stdout_is_line_buffered_so_a_crash_loses_no_line(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    const char *args[] = {"--fake-crash", NULL};
    supervisor_config cfg = base_config(&r, g_self, args, h_free_port());
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    char err[256] = "";
    assert_false(supervisor_wait_ready(s, 10, err, sizeof err));
    const char *exited = "runtime exited during load (killed by SIGABRT): ";
    const char *child_line = "[E][                            Init][  42]: device exploded";
    const char *qemu_line = "qemu: uncaught target signal 6 (Aborted)";
    const char *last = err + strlen(exited);
    assert_memory_equal(err, exited, strlen(exited));
    if (!strncmp(last, qemu_line, strlen(qemu_line))) {
        /* Under qemu-user (make test-arm64) the emulator writes its own line after the child's
         * crash, which is then the last error line; the child's line must still have come. */
        assert_true(!strcmp(last, qemu_line) || !strcmp(last + strlen(qemu_line), " - core dumped"));
        assert_true(rec_has_line(&r, child_line));
    } else {
        assert_string_equal(last, child_line);
    }
    supervisor_free(s);
    rec_free(&r);
}

static void test_load_timeout_fails_and_kills_the_child(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-init-seconds", "5", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.load_timeout_s = 0.5;
    supervisor *s = new_sup(&r, &cfg);
    double t0 = h_now();
    start_ok(s);
    pid_t pid = supervisor_status(s).pid;
    assert_true(pid > 0);
    char err[256] = "";
    assert_false(supervisor_wait_ready(s, 10, err, sizeof err));
    double took = h_now() - t0;
    assert_true(took >= 0.5 && took < 2.0);
    assert_string_equal(err, "runtime did not become ready within 0.5 s");
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_FAILED);
    assert_true(st.exited && WIFSIGNALED(st.last_exit) && WTERMSIG(st.last_exit) == SIGKILL);
    assert_true(process_gone(pid));
    supervisor_free(s);
    rec_free(&r);
}

static void test_port_in_use_is_refused_and_nothing_is_spawned(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    int port = ntohs(a.sin_port);
    emu_cmd c;
    emu_cmd_init(&c, NULL);
    supervisor_config cfg = base_config(&r, g_emu, c.args, port);
    supervisor *s = new_sup(&r, &cfg);
    size_t uids_before = h_count(&g_tok, "/get_uid");
    char err[256] = "", want[160];
    assert_false(supervisor_start(s, err, sizeof err));
    snprintf(want, sizeof want, "port %d is already in use by another process (is a runtime still running?)", port);
    assert_string_equal(err, want);
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_FAILED);
    assert_int_equal(st.pid, 0);
    h_sleep(0.3);
    assert_int_equal(h_count(&g_tok, "/get_uid"), uids_before); /* no emulator ever came up */
    assert_int_equal(r.n_lines, 0);
    assert_int_equal(rec_count_state(&r, RT_LOADING), 0);
    supervisor_free(s);
    close(fd);
    rec_free(&r);
}

static void test_exit_0_after_server_running_reports_a_taken_port(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    int port = h_free_port();
    char body[128];
    snprintf(body, sizeof body, "echo 'Server running on port %d...'\nexit 0", port);
    const char *script = write_script("bind-fails.sh", body);
    const char *no_args[] = {NULL};
    supervisor_config cfg = base_config(&r, script, no_args, port);
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    char err[256] = "", want[64];
    assert_false(supervisor_wait_ready(s, 5, err, sizeof err));
    assert_memory_equal(err, "runtime exited (status 0) right after", strlen("runtime exited (status 0) right after"));
    snprintf(want, sizeof want, "without answering on port %d", port);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "taken by another process"));
    supervisor_free(s);
    rec_free(&r);
}

static void test_death_after_ready_calls_on_exit_and_restarts(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-crash-at", "1", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.restart = true;
    cfg.backoff_initial_s = 0.3;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    pid_t first = supervisor_status(s).pid;
    post_generate(c.port);
    assert_true(rec_wait_exits(&r, 1, 5));
    assert_int_equal(supervisor_status(s).state, RT_RESTARTING);
    pthread_mutex_lock(&r.lock);
    rt_status at_exit = r.exit_status;
    pthread_mutex_unlock(&r.lock);
    assert_true(at_exit.exited && WIFSIGNALED(at_exit.last_exit) && WTERMSIG(at_exit.last_exit) == SIGABRT);
    assert_int_equal(at_exit.state, RT_RESTARTING);
    assert_int_equal(at_exit.pid, 0);
    assert_non_null(strstr(at_exit.error, "runtime died (killed by SIGABRT)"));
    assert_true(process_gone(first));
    wait_ready_ok(s, 10);
    rt_status st = supervisor_status(s);
    assert_int_equal(st.restarts, 1);
    assert_true(st.pid > 0 && st.pid != first);
    h_http reply = h_request_to(c.port, "GET", "/api/generate_provider", NULL, 2.0);
    assert_int_equal(reply.status, 200);
    h_http_free(&reply);
    assert_int_equal(rec_count_state(&r, RT_READY), 2);
    supervisor_free(s);
    assert_true(process_gone(st.pid));
    rec_free(&r);
}

/* Delay between the k-th (0-based) RESTARTING state and the LOADING state after it. */
static double restart_delay(recorder *r, int k)
{
    double delay = -1;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_states; i++) {
        if (r->states[i].state != RT_RESTARTING || k-- != 0)
            continue;
        for (size_t j = i + 1; j < r->n_states; j++)
            if (r->states[j].state == RT_LOADING) {
                delay = r->states[j].at - r->states[i].at;
                break;
            }
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return delay;
}

static void crash_once(supervisor *s, recorder *r, int port, int exits_before)
{
    post_generate(port);
    assert_true(rec_wait_exits(r, exits_before + 1, 5));
    wait_ready_ok(s, 10);
}

static void test_backoff_doubles_after_each_death_up_to_the_cap(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-crash-at", "1", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.restart = true;
    cfg.backoff_initial_s = 0.3;
    cfg.backoff_max_s = 0.75;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    for (int i = 0; i < 3; i++)
        crash_once(s, &r, c.port, i);
    assert_int_equal(supervisor_status(s).restarts, 3);
    double d1 = restart_delay(&r, 0), d2 = restart_delay(&r, 1), d3 = restart_delay(&r, 2);
    /* lower bounds are exact; upper bounds leave room for a loaded machine */
    assert_true(d1 >= 0.3 && d1 < 0.55); /* 0.3 */
    assert_true(d2 >= 0.6 && d2 < 0.85); /* 0.6 */
    assert_true(d3 >= 0.75 && d3 < 1.1); /* 1.2, capped at 0.75 */
    supervisor_free(s);
    rec_free(&r);
}

/* A crash after the runtime served a request starts the back-off over: 0.3, then 0.6, then (served)
 * 0.3 again. */
static void test_a_served_request_resets_the_backoff(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-crash-at", "1", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.restart = true;
    cfg.backoff_initial_s = 0.3;
    cfg.backoff_max_s = 5;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    crash_once(s, &r, c.port, 0);
    crash_once(s, &r, c.port, 1);
    supervisor_note_served(s);
    crash_once(s, &r, c.port, 2);
    double d1 = restart_delay(&r, 0), d2 = restart_delay(&r, 1), d3 = restart_delay(&r, 2);
    assert_true(d1 >= 0.3 && d1 < 0.55);
    assert_true(d2 >= 0.6 && d2 < 0.85);
    assert_true(d3 >= 0.3 && d3 < 0.55); /* not 1.2 */
    supervisor_free(s);
    rec_free(&r);
}

/* A runtime that stops answering while ready (SIGSTOP: the kernel still accepts its connections) is
 * found by the liveness probe, killed and restarted; RT_RESTARTING tells when the next start is. */
static void test_a_runtime_that_stops_answering_is_killed_and_restarted(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, NULL);
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.restart = true;
    cfg.backoff_initial_s = 0.3;
    cfg.liveness_interval_s = 0.2;
    cfg.liveness_timeout_s = 0.3;
    cfg.liveness_failures = 2;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    h_sleep(0.5); /* probes that are answered change nothing */
    assert_int_equal(supervisor_status(s).state, RT_READY);
    pid_t first = supervisor_status(s).pid;
    kill(first, SIGSTOP);
    double t0 = h_now();
    assert_true(rec_wait_exits(&r, 1, 10));
    assert_true(h_now() - t0 < 5); /* 2 misses of 0.3 s, 0.2 s apart: about 1 s */
    pthread_mutex_lock(&r.lock);
    rt_status at_exit = r.exit_status;
    pthread_mutex_unlock(&r.lock);
    assert_int_equal(at_exit.state, RT_RESTARTING);
    assert_non_null(strstr(at_exit.error, "runtime stopped answering"));
    assert_true(at_exit.restart_at > t0);
    assert_true(wait_until_dead(first, 5));
    wait_ready_ok(s, 10);
    rt_status st = supervisor_status(s);
    assert_true(st.pid > 0 && st.pid != first);
    assert_int_equal(st.restarts, 1);
    supervisor_free(s);
    rec_free(&r);
}

static void test_restart_off_stays_stopped_after_a_death(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-crash-at", "1", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.restart = false;
    cfg.backoff_initial_s = 0.1;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    post_generate(c.port);
    assert_true(rec_wait_exits(&r, 1, 5));
    assert_int_equal(supervisor_status(s).state, RT_STOPPED);
    h_sleep(0.5); /* well past the backoff */
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_STOPPED);
    assert_int_equal(st.pid, 0);
    assert_int_equal(st.restarts, 0);
    assert_int_equal(rec_count_state(&r, RT_LOADING), 1);
    assert_int_equal(rec_count_state(&r, RT_RESTARTING), 0);
    assert_false(h_tcp_connects(c.port, 0.2));
    char err[256] = "";
    assert_false(supervisor_wait_ready(s, 0.2, err, sizeof err));
    assert_non_null(strstr(err, "runtime died (killed by SIGABRT)"));
    supervisor_free(s);
    rec_free(&r);
}

static void test_stop_sends_sigint_and_the_emulator_exits_0(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, (const char *const[]){"--emu-reply-tokens", "200", NULL});
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.stop_timeout_s = 5;
    cfg.restart = true;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    pid_t pid = supervisor_status(s).pid;
    post_generate(c.port);
    double t0 = h_now();
    supervisor_stop(s);
    double took = h_now() - t0;
    assert_true(took < 3.0); /* well before the SIGKILL at 5 s */
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_STOPPED);
    assert_int_equal(st.pid, 0);
    assert_true(st.exited);
    assert_true(WIFEXITED(st.last_exit));
    assert_int_equal(WEXITSTATUS(st.last_exit), 0);
    assert_true(process_gone(pid));
    assert_int_equal(rec_exits(&r), 0); /* a stop is not a death */
    assert_int_equal(rec_count_state(&r, RT_RESTARTING), 0);
    supervisor_stop(s); /* idempotent */
    assert_int_equal(supervisor_status(s).state, RT_STOPPED);
    supervisor_free(s);
    rec_free(&r);
}

static void test_child_ignoring_sigint_is_killed_after_stop_timeout(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    int port = h_free_port();
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%d", port);
    const char *args[] = {"--fake-runtime", port_str, NULL};
    supervisor_config cfg = base_config(&r, g_self, args, port);
    cfg.stop_timeout_s = 0.5;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    pid_t pid = supervisor_status(s).pid;
    double t0 = h_now();
    supervisor_stop(s);
    double took = h_now() - t0;
    assert_true(took >= 0.5 && took < 2.5);
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_STOPPED);
    assert_true(st.exited && WIFSIGNALED(st.last_exit) && WTERMSIG(st.last_exit) == SIGKILL);
    assert_true(process_gone(pid));
    supervisor_free(s);
    rec_free(&r);
}

static void test_stop_while_loading_kills_the_whole_group_at_once(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    const char *script = write_script("ignores-sigint.sh", "trap '' INT\nsleep 100 &\necho \"helper $!\"\nwait");
    const char *no_args[] = {NULL};
    supervisor_config cfg = base_config(&r, script, no_args, h_free_port());
    cfg.stop_timeout_s = 5;
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    pid_t pid = supervisor_status(s).pid;
    double end = h_now() + 5;
    while (rec_find_line(&r, "helper ") < 0 && h_now() < end)
        h_sleep(0.005);
    long at = rec_find_line(&r, "helper ");
    assert_true(at >= 0);
    pid_t helper = (pid_t)atoi(r.lines[at] + strlen("helper "));
    assert_true(helper > 0 && !process_dead(helper));
    double t0 = h_now();
    supervisor_stop(s);
    assert_true(h_now() - t0 < 1.0);
    rt_status st = supervisor_status(s);
    assert_int_equal(st.state, RT_STOPPED);
    assert_true(st.exited && WIFSIGNALED(st.last_exit) && WTERMSIG(st.last_exit) == SIGKILL);
    assert_true(process_gone(pid));
    assert_true(wait_until_dead(helper, 2.0)); /* the runtime's own child went with it */
    supervisor_free(s);
    rec_free(&r);
}

static void test_stop_then_start_again(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, NULL);
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    supervisor *s = new_sup(&r, &cfg);
    supervisor_stop(s); /* never started: nothing to do */
    assert_int_equal(supervisor_status(s).state, RT_STOPPED);
    char err[256] = "";
    assert_false(supervisor_wait_ready(s, 0.1, err, sizeof err));
    assert_string_equal(err, "the runtime is not running");
    start_ok(s);
    start_ok(s); /* already running: fine */
    wait_ready_ok(s, 10);
    pid_t first = supervisor_status(s).pid;
    supervisor_stop(s);
    assert_true(process_gone(first));
    start_ok(s);
    wait_ready_ok(s, 10);
    rt_status st = supervisor_status(s);
    assert_true(st.pid > 0 && st.pid != first);
    assert_int_equal(st.restarts, 0);
    supervisor_free(s);
    assert_true(process_gone(st.pid));
    rec_free(&r);
}

static void test_free_never_leaves_a_process(void **state)
{
    (void)state;
    /* ready */
    recorder r;
    rec_init(&r);
    emu_cmd c;
    emu_cmd_init(&c, NULL);
    supervisor_config cfg = base_config(&r, g_emu, c.args, c.port);
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    pid_t pid = supervisor_status(s).pid;
    supervisor_free(s);
    assert_true(process_gone(pid));
    rec_free(&r);

    /* loading */
    rec_init(&r);
    emu_cmd_init(&c, (const char *const[]){"--emu-init-seconds", "5", NULL});
    cfg = base_config(&r, g_emu, c.args, c.port);
    s = new_sup(&r, &cfg);
    start_ok(s);
    h_sleep(0.1);
    pid = supervisor_status(s).pid;
    assert_int_equal(supervisor_status(s).state, RT_LOADING);
    double t0 = h_now();
    supervisor_free(s);
    assert_true(h_now() - t0 < 1.0);
    assert_true(process_gone(pid));
    rec_free(&r);

    /* restarting, with a long backoff: free does not wait it out, and starts nothing */
    rec_init(&r);
    emu_cmd_init(&c, (const char *const[]){"--emu-crash-at", "1", NULL});
    cfg = base_config(&r, g_emu, c.args, c.port);
    cfg.restart = true;
    cfg.backoff_initial_s = 5;
    s = new_sup(&r, &cfg);
    start_ok(s);
    wait_ready_ok(s, 10);
    pid = supervisor_status(s).pid;
    post_generate(c.port);
    assert_true(wait_state(s, RT_RESTARTING, 5));
    t0 = h_now();
    supervisor_free(s);
    assert_true(h_now() - t0 < 1.0);
    assert_true(process_gone(pid));
    assert_int_equal(rec_count_state(&r, RT_LOADING), 1);
    assert_false(h_tcp_connects(c.port, 0.2));
    rec_free(&r);
}

static void test_runtime_dies_when_axllama_dies_hard(void **state)
{
    (void)state;
    const char *script = write_script("sleeper.sh", "exec sleep 100");
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t axllama = fork();
    if (axllama == 0) {
        dup2(out[1], 1);
        execl(g_self, g_self, "--fake-axllama", script, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    assert_true(axllama > 0);
    char buf[64] = "";
    size_t got = 0;
    double end = h_now() + 10;
    while (!strchr(buf, '\n') && got < sizeof buf - 1 && h_now() < end) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) == 1) {
            ssize_t n = read(out[0], buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
        }
    }
    close(out[0]);
    pid_t runtime = strncmp(buf, "runtime ", 8) ? 0 : (pid_t)atoi(buf + 8);
    kill(axllama, SIGKILL);
    int status;
    waitpid(axllama, &status, 0);
    assert_true(runtime > 0);
    assert_true(wait_until_dead(runtime, 3.0)); /* PR_SET_PDEATHSIG took it along */
}

static void test_env_and_workdir_reach_the_child(void **state)
{
    (void)state;
    recorder r;
    rec_init(&r);
    const char *script = write_script("env.sh", "echo \"cwd=$(pwd) value=$AXLLAMA_TEST_VALUE\"\nexit 4");
    const char *no_args[] = {NULL};
    const char *env[] = {"AXLLAMA_TEST_VALUE=from the config", NULL};
    supervisor_config cfg = base_config(&r, script, no_args, h_free_port());
    cfg.env = env;
    cfg.workdir = "/";
    supervisor *s = new_sup(&r, &cfg);
    start_ok(s);
    char err[256] = "";
    assert_false(supervisor_wait_ready(s, 5, err, sizeof err));
    assert_string_equal(err, "runtime exited during load (status 4)");
    assert_true(rec_find_line(&r, "cwd=/ value=from the config") >= 0);
    supervisor_free(s);
    rec_free(&r);
}

/* ---- --devices auto ---- */

static char *detect_with_fake_smi(const char *script_body)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/smi", g_tmpdir);
    mkdir(dir, 0755);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/axcl-smi", dir);
    if (script_body) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n", script_body);
        fclose(f);
        chmod(path, 0755);
    } else {
        unlink(path);
    }
    char *old_path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char new_path[PATH_MAX * 2];
    snprintf(new_path, sizeof new_path, "%s:/usr/bin:/bin", dir);
    setenv("PATH", new_path, 1);
    char *devices = supervisor_detect_devices();
    setenv("PATH", old_path, 1);
    free(old_path);
    return devices;
}

static const char two_cards[] =
    "+------------------------------------------------------------------------------------------------+\n"
    "| AXCL-SMI  V3.10.2_20251111020143                                Driver  V3.10.2_20251111020143 |\n"
    "+-----------------------------------------+--------------+---------------------------------------+\n"
    "| Card  Name                     Firmware | Bus-Id       |                          Memory-Usage |\n"
    "| Fan   Temp                Pwr:Usage/Cap | CPU      NPU |                             CMM-Usage |\n"
    "|=========================================+==============+=======================================|\n"
    "|    0  AX8850                    V3.10.2 | 0001:01:00.0 |                148 MiB /      945 MiB |\n"
    "|   --   41C                      -- / -- | 2%        0% |                 18 MiB /     7040 MiB |\n"
    "+-----------------------------------------+--------------+---------------------------------------+\n"
    "|    1  AX8850                    V3.10.2 | 0002:01:00.0 |                148 MiB /      945 MiB |\n"
    "|   --   40C                      -- / -- | 1%        0% |                 18 MiB /     7040 MiB |\n"
    "+-----------------------------------------+--------------+---------------------------------------+\n"
    "\n"
    "+------------------------------------------------------------------------------------------------+\n"
    "| Processes:                                                                                     |\n"
    "| Card      PID  Process Name                                                   NPU Memory Usage |\n"
    "|================================================================================================|\n"
    "|    7    12345  /opt/qwen3/main_api_axcl_aarch64                                     4894032 KiB |\n"
    "+------------------------------------------------------------------------------------------------+";

static void test_detect_devices_reads_the_card_column(void **state)
{
    (void)state;
    /* one border per card, then the Processes table (whose card column says 7) */
    char *devices = detect_with_fake_smi(two_cards);
    assert_string_equal(devices, "0,1");
    free(devices);
}

static const char two_cards_one_block[] =
    "+------------------------------------------------------------------------------------------------+\n"
    "| AXCL-SMI  V3.10.2_20251111020143                                Driver  V3.10.2_20251111020143 |\n"
    "+-----------------------------------------+--------------+---------------------------------------+\n"
    "| Card  Name                     Firmware | Bus-Id       |                          Memory-Usage |\n"
    "| Fan   Temp                Pwr:Usage/Cap | CPU      NPU |                             CMM-Usage |\n"
    "|=========================================+==============+=======================================|\n"
    "|    0  AX8850                    V3.10.2 | 0001:01:00.0 |                148 MiB /      945 MiB |\n"
    "|   --   41C                      -- / -- | 2%        0% |                 18 MiB /     7040 MiB |\n"
    "|    2  AX8850                    V3.10.2 | 0002:01:00.0 |                148 MiB /      945 MiB |\n"
    "|   --   40C                      -- / -- | 1%        0% |                 18 MiB /     7040 MiB |\n"
    "+-----------------------------------------+--------------+---------------------------------------+\n"
    "\n"
    "+------------------------------------------------------------------------------------------------+\n"
    "| Processes:                                                                                     |\n"
    "| Card      PID  Process Name                                                   NPU Memory Usage |\n"
    "|================================================================================================|\n"
    "|    7    12345  /opt/qwen3/main_api_axcl_aarch64                                     4894032 KiB |\n"
    "+------------------------------------------------------------------------------------------------+";

static void test_detect_devices_lists_every_card_and_ignores_processes(void **state)
{
    (void)state;
    char *devices = detect_with_fake_smi(two_cards_one_block);
    assert_string_equal(devices, "0,2");
    free(devices);
}

static void test_detect_devices_falls_back_to_0(void **state)
{
    (void)state;
    char *devices = detect_with_fake_smi("axcl-smi: no device found");
    assert_string_equal(devices, "0");
    free(devices);
    devices = detect_with_fake_smi(NULL); /* not on PATH */
    assert_string_equal(devices, "0");
    free(devices);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    const char *build = getenv("AXLLAMA_BUILD");
    char given[PATH_MAX];
    snprintf(given, sizeof given, "%s/axllama-emu", build ? build : "build");
    if (!realpath(given, g_emu)) {
        fprintf(stderr, "no emulator at %s (set AXLLAMA_BUILD)\n", given);
        return -1;
    }
    strcpy(g_tmpdir, "/tmp/axllama-sup-test-XXXXXX");
    if (!mkdtemp(g_tmpdir))
        return -1;
    return h_tokenizer_start(&g_tok) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    h_tokenizer_stop(&g_tok);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--fake-crash"))
        return fake_crash_main();
    if (argc == 3 && !strcmp(argv[1], "--fake-axllama"))
        return fake_axllama_main(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "--fake-runtime"))
        return fake_runtime_main(atoi(argv[2]), argc >= 4 ? atof(argv[3]) : 0.0);
    if (!realpath("/proc/self/exe", g_self))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_only_after_the_port_answers),
        cmocka_unit_test(test_progress_k_of_n_is_reported_while_loading),
        cmocka_unit_test(test_on_log_gets_plain_lines),
        cmocka_unit_test(test_exec_failure_is_reported_synchronously),
        cmocka_unit_test(test_exit_during_load_fails_with_status_and_last_error_line),
        cmocka_unit_test(test_stdout_is_line_buffered_so_a_crash_loses_no_line),
        cmocka_unit_test(test_load_timeout_fails_and_kills_the_child),
        cmocka_unit_test(test_port_in_use_is_refused_and_nothing_is_spawned),
        cmocka_unit_test(test_exit_0_after_server_running_reports_a_taken_port),
        cmocka_unit_test(test_death_after_ready_calls_on_exit_and_restarts),
        cmocka_unit_test(test_backoff_doubles_after_each_death_up_to_the_cap),
        cmocka_unit_test(test_a_served_request_resets_the_backoff),
        cmocka_unit_test(test_a_runtime_that_stops_answering_is_killed_and_restarted),
        cmocka_unit_test(test_restart_off_stays_stopped_after_a_death),
        cmocka_unit_test(test_stop_sends_sigint_and_the_emulator_exits_0),
        cmocka_unit_test(test_child_ignoring_sigint_is_killed_after_stop_timeout),
        cmocka_unit_test(test_stop_while_loading_kills_the_whole_group_at_once),
        cmocka_unit_test(test_stop_then_start_again),
        cmocka_unit_test(test_free_never_leaves_a_process),
        cmocka_unit_test(test_runtime_dies_when_axllama_dies_hard),
        cmocka_unit_test(test_env_and_workdir_reach_the_child),
        cmocka_unit_test(test_detect_devices_reads_the_card_column),
        cmocka_unit_test(test_detect_devices_lists_every_card_and_ignores_processes),
        cmocka_unit_test(test_detect_devices_falls_back_to_0),
    };
    return cmocka_run_group_tests_name("supervisor", tests, group_setup, group_teardown);
}
