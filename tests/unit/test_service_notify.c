/* Tests of cli/service_notify (systemd's notify protocol for `axllama serve`): a fake NOTIFY_SOCKET
 * (an AF_UNIX datagram socket the test reads) receives READY / STATUS / WATCHDOG / STOPPING. In
 * process with a fake engine and a tiny HTTP server as the probed listener: what each state says,
 * that WATCHDOG=1 is withheld while the engine is wedged or the listener does not answer, that
 * nothing starts outside systemd. End to end: `axllama serve` under a fake service manager reports
 * ready, a model load's progress, watchdog pings and STOPPING on SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/un.h>

#include "serve_harness.h"
#include "tiny_http.h"

#include "cli/service_notify.h"

/* ---- the fake service manager: a datagram socket and every line received on it ---- */

typedef struct {
    char dir[64];
    char path[96]; /* fits sockaddr_un.sun_path */
    int fd;
    char **lines;
    size_t n, cap;
} fake_manager;

static void fm_open(fake_manager *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->dir, "/tmp/axllama-notify-XXXXXX");
    assert_non_null(mkdtemp(m->dir));
    snprintf(m->path, sizeof m->path, "%s/notify", m->dir);
    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(m->fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", m->path);
    assert_int_equal(bind(m->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void fm_close(fake_manager *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->lines[i]);
    free(m->lines);
    close(m->fd);
    unlink(m->path);
    rmdir(m->dir);
}

/* Receives for up to timeout_s (returns after the first datagram, or at the timeout). */
static bool fm_pump(fake_manager *m, double timeout_s)
{
    struct pollfd p = {.fd = m->fd, .events = POLLIN};
    int ms = timeout_s > 0 ? (int)(timeout_s * 1000) : 0;
    if (poll(&p, 1, ms) <= 0)
        return false;
    char buf[4096];
    ssize_t got = recv(m->fd, buf, sizeof buf - 1, 0);
    if (got <= 0)
        return false;
    buf[got] = '\0';
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (m->n == m->cap)
            m->lines = xrealloc(m->lines, (m->cap = m->cap ? m->cap * 2 : 64) * sizeof *m->lines);
        m->lines[m->n++] = xstrdup(line);
    }
    return true;
}

/* Index (from `from` on) of the first line equal to want (or starting with it when prefix). */
static long fm_find(const fake_manager *m, size_t from, const char *want, bool prefix)
{
    for (size_t i = from; i < m->n; i++)
        if (prefix ? !strncmp(m->lines[i], want, strlen(want)) : !strcmp(m->lines[i], want))
            return (long)i;
    return -1;
}

/* Receives until such a line comes (searching from `from`); its index, or -1 after timeout_s. */
static long fm_wait(fake_manager *m, size_t from, const char *want, bool prefix, double timeout_s)
{
    double end = h_now() + timeout_s;
    for (;;) {
        long i = fm_find(m, from, want, prefix);
        if (i >= 0)
            return i;
        double left = end - h_now();
        if (left <= 0)
            return -1;
        fm_pump(m, left);
    }
}

/* Receives everything for duration_s. */
static void fm_listen(fake_manager *m, double duration_s)
{
    double end = h_now() + duration_s;
    while (h_now() < end)
        fm_pump(m, end - h_now());
}

static size_t fm_count(const fake_manager *m, size_t from, const char *want)
{
    size_t k = 0;
    for (size_t i = from; i < m->n; i++)
        k += !strcmp(m->lines[i], want);
    return k;
}

static void fm_dump(const fake_manager *m)
{
    for (size_t i = 0; i < m->n; i++)
        fprintf(stderr, "  notify[%zu]: %s\n", i, m->lines[i]);
}

/* ---- the fake engine and the probed listener ---- */

typedef struct {
    pthread_mutex_t lock;
    bool responsive;
    double max_age_asked; /* the last max_age_s the check passed */
    size_t n;
    engine_loaded_model model;
} fake_engine_state;

static fake_engine_state fe;

static bool fe_responsive(void *user, double max_age_s)
{
    (void)user;
    pthread_mutex_lock(&fe.lock);
    fe.max_age_asked = max_age_s;
    bool r = fe.responsive;
    pthread_mutex_unlock(&fe.lock);
    return r;
}

static size_t fe_loaded(void *user, engine_loaded_model *out, size_t max)
{
    (void)user;
    pthread_mutex_lock(&fe.lock);
    size_t n = fe.n < max ? fe.n : max;
    if (n)
        out[0] = fe.model;
    pthread_mutex_unlock(&fe.lock);
    return n;
}

static void fe_set(size_t n, const char *name, rt_state st, int step, int total)
{
    pthread_mutex_lock(&fe.lock);
    fe.n = n;
    memset(&fe.model, 0, sizeof fe.model);
    if (name)
        snprintf(fe.model.name, sizeof fe.model.name, "%s", name);
    fe.model.state = st;
    fe.model.load_step = step;
    fe.model.load_total = total;
    pthread_mutex_unlock(&fe.lock);
}

static void fe_set_responsive(bool r)
{
    pthread_mutex_lock(&fe.lock);
    fe.responsive = r;
    pthread_mutex_unlock(&fe.lock);
}

static atomic_int listener_status = 200;

static size_t listener_handler(tiny_http *t, const char *request_line, const char *body, char *out, size_t outlen)
{
    (void)t;
    (void)body;
    if (strncmp(request_line, "GET " SERVICE_PROBE_PATH " ", strlen("GET " SERVICE_PROBE_PATH " ")) != 0)
        return tiny_answer(out, outlen, 404, "{}");
    return tiny_answer(out, outlen, atomic_load(&listener_status), "{\"version\":\"0.12.6\"}");
}

static char log_lines[16][512];
static atomic_int n_log_lines;

static void capture_log(void *user, const char *line)
{
    (void)user;
    int i = atomic_fetch_add(&n_log_lines, 1);
    if (i < 16)
        snprintf(log_lines[i], sizeof log_lines[i], "%s", line);
}

static bool log_has(const char *needle)
{
    int n = atomic_load(&n_log_lines);
    for (int i = 0; i < n && i < 16; i++)
        if (strstr(log_lines[i], needle))
            return true;
    return false;
}

typedef struct {
    fake_manager fm;
    tiny_http listener;
    char address[64];
    service_notify *n;
} fixture;

/* A fake manager in NOTIFY_SOCKET, watchdog_usec in WATCHDOG_USEC (0: unset), a listener that
 * answers 200, an idle responsive engine. */
static void fx_setup(fixture *f, unsigned long watchdog_usec)
{
    memset(f, 0, sizeof *f);
    fm_open(&f->fm);
    setenv("NOTIFY_SOCKET", f->fm.path, 1);
    unsetenv("WATCHDOG_PID");
    if (watchdog_usec) {
        char v[32];
        snprintf(v, sizeof v, "%lu", watchdog_usec);
        setenv("WATCHDOG_USEC", v, 1);
    } else {
        unsetenv("WATCHDOG_USEC");
    }
    atomic_store(&listener_status, 200);
    tiny_start(&f->listener, listener_handler);
    snprintf(f->address, sizeof f->address, "127.0.0.1:%d", f->listener.port);
    fe_set(0, NULL, RT_STOPPED, 0, 0);
    fe_set_responsive(true);
    atomic_store(&n_log_lines, 0);
}

static void fx_start(fixture *f, bool keep_probe_log)
{
    service_notify_config cfg = {
        .address = f->address,
        .responsive = fe_responsive,
        .loaded = fe_loaded,
        .log = capture_log,
        .keep_probe_log = keep_probe_log,
    };
    f->n = service_notify_ready(&cfg);
    assert_non_null(f->n);
}

static void fx_teardown(fixture *f)
{
    service_notify_free(f->n);
    tiny_stop(&f->listener);
    fm_close(&f->fm);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* ---- pure functions ---- */

static void test_status_text_names_each_state(void **state)
{
    (void)state;
    char out[256];
    engine_loaded_model m = {.name = "qwen3:4b", .state = RT_LOADING, .load_step = 12, .load_total = 39};
    service_status_text(&m, 1, "127.0.0.1:11434", out, sizeof out);
    assert_string_equal(out, "loading qwen3:4b 12/39");
    m.load_total = 0;
    service_status_text(&m, 1, "127.0.0.1:11434", out, sizeof out);
    assert_string_equal(out, "loading qwen3:4b");
    m.state = RT_READY;
    service_status_text(&m, 1, "127.0.0.1:11434", out, sizeof out);
    assert_string_equal(out, "ready qwen3:4b");
    m.state = RT_RESTARTING;
    service_status_text(&m, 1, "127.0.0.1:11434", out, sizeof out);
    assert_string_equal(out, "restarting qwen3:4b (the runtime died)");
    m.state = RT_FAILED;
    service_status_text(&m, 1, "127.0.0.1:11434", out, sizeof out);
    assert_string_equal(out, "failed to load qwen3:4b");
    m.state = RT_STOPPED;
    service_status_text(&m, 1, "127.0.0.1:11434", out, sizeof out);
    assert_string_equal(out, "stopped qwen3:4b");
    service_status_text(&m, 0, "[::]:11434", out, sizeof out);
    assert_string_equal(out, "listening on [::]:11434, no model loaded");
}

static void test_probe_url_goes_to_loopback_for_a_wildcard_listener(void **state)
{
    (void)state;
    char *u = service_probe_url("0.0.0.0:11434");
    assert_string_equal(u, "http://127.0.0.1:11434");
    free(u);
    u = service_probe_url("[::]:8080");
    assert_string_equal(u, "http://[::1]:8080");
    free(u);
    u = service_probe_url("192.168.1.5:11434");
    assert_string_equal(u, "http://192.168.1.5:11434");
    free(u);
    u = service_probe_url("[::1]:11434");
    assert_string_equal(u, "http://[::1]:11434");
    free(u);
}

/* ---- in process ---- */

static void test_without_notify_socket_nothing_starts(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "200000", 1);
    service_notify_config cfg = {.address = "127.0.0.1:1", .responsive = fe_responsive, .loaded = fe_loaded};
    service_notify *n = service_notify_ready(&cfg);
    assert_null(n);
    assert_false(
        service_notify_swallow_log_line(n, "[HTTP] 200 |    0.100ms |       127.0.0.1 | GET     \"/api/version\""));
    service_notify_stopping(n); /* no-ops */
    service_notify_free(n);
    unsetenv("WATCHDOG_USEC");
}

static void test_ready_comes_with_the_listening_status(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 0);
    fx_start(&f, false);
    long ready = fm_wait(&f.fm, 0, "READY=1", false, 2.0);
    assert_true(ready >= 0);
    char want[128];
    snprintf(want, sizeof want, "STATUS=listening on %s, no model loaded", f.address);
    assert_true(fm_find(&f.fm, 0, want, false) >= 0);
    /* no watchdog asked for: no ping, no probe */
    fm_listen(&f.fm, 1.2);
    assert_int_equal(fm_count(&f.fm, 0, "WATCHDOG=1"), 0);
    assert_int_equal(atomic_load(&f.listener.requests), 0);
    /* a status is sent when it changes, not on every poll */
    assert_int_equal(fm_count(&f.fm, 0, want), 1);
    fx_teardown(&f);
}

static void test_status_follows_a_model_load_step_by_step(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 0);
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "READY=1", false, 2.0) >= 0);
    fe_set(1, "qwen3:4b", RT_LOADING, 0, 0);
    assert_true(fm_wait(&f.fm, 0, "STATUS=loading qwen3:4b", false, 2.0) >= 0);
    fe_set(1, "qwen3:4b", RT_LOADING, 12, 39);
    /* while a load runs the poll is fast */
    double t0 = h_now();
    assert_true(fm_wait(&f.fm, 0, "STATUS=loading qwen3:4b 12/39", false, 2.0) >= 0);
    assert_true(h_now() - t0 < SERVICE_STATUS_POLL_S);
    fe_set(1, "qwen3:4b", RT_LOADING, 39, 39);
    assert_true(fm_wait(&f.fm, 0, "STATUS=loading qwen3:4b 39/39", false, 2.0) >= 0);
    fe_set(1, "qwen3:4b", RT_READY, 39, 39);
    assert_true(fm_wait(&f.fm, 0, "STATUS=ready qwen3:4b", false, 2.0) >= 0);
    fe_set(1, "qwen3:4b", RT_RESTARTING, 0, 0);
    assert_true(fm_wait(&f.fm, 0, "STATUS=restarting qwen3:4b (the runtime died)", false, 2.0) >= 0);
    fx_teardown(&f);
}

static void test_watchdog_pings_while_the_engine_turns_and_the_listener_answers(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 200000); /* a check every 0.1 s */
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "READY=1", false, 2.0) >= 0);
    fm_listen(&f.fm, 1.0);
    size_t pings = fm_count(&f.fm, 0, "WATCHDOG=1");
    if (pings < 4)
        fm_dump(&f.fm);
    assert_true(pings >= 4);
    /* each ping follows an answered probe of the listener's GET /api/version */
    assert_true(atomic_load(&f.listener.requests) >= (int)pings);
    assert_string_equal(f.listener.last_line, "GET /api/version HTTP/1.1");
    assert_true(log_has("systemd watchdog: a check every 0.1s"));
    pthread_mutex_lock(&fe.lock);
    double asked = fe.max_age_asked;
    pthread_mutex_unlock(&fe.lock);
    assert_true(asked == SERVICE_ENGINE_MAX_AGE_S); /* the engine may be held up to a minute */
    fx_teardown(&f);
}

static void test_no_watchdog_ping_while_the_engine_is_wedged(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 200000);
    fe_set_responsive(false);
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "READY=1", false, 2.0) >= 0);
    long why = fm_wait(&f.fm, 0, "STATUS=watchdog: the engine's worker has not turned for more than 90s", false, 2.0);
    assert_true(why >= 0);
    fm_listen(&f.fm, 1.0);
    assert_int_equal(fm_count(&f.fm, 0, "WATCHDOG=1"), 0);
    assert_int_equal(atomic_load(&f.listener.requests), 0); /* the engine failed first: no probe needed */
    assert_true(log_has("watchdog: not telling systemd the server is alive: the engine's worker"));
    /* the worker turns again: pings resume and the status is the server's again */
    size_t mark = f.fm.n;
    fe_set_responsive(true);
    assert_true(fm_wait(&f.fm, mark, "WATCHDOG=1", false, 2.0) >= 0);
    char want[128];
    snprintf(want, sizeof want, "STATUS=listening on %s, no model loaded", f.address);
    assert_true(fm_wait(&f.fm, mark, want, false, 2.0) >= 0);
    assert_true(log_has("watchdog: the server serves again"));
    fx_teardown(&f);
}

static void test_no_watchdog_ping_while_the_listener_answers_an_error(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 200000);
    atomic_store(&listener_status, 503);
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "STATUS=watchdog: the HTTP listener answered GET /api/version with status 503", false,
                        2.0) >= 0);
    fm_listen(&f.fm, 1.0);
    assert_int_equal(fm_count(&f.fm, 0, "WATCHDOG=1"), 0);
    assert_true(atomic_load(&f.listener.requests) >= 2);
    size_t mark = f.fm.n;
    atomic_store(&listener_status, 200);
    assert_true(fm_wait(&f.fm, mark, "WATCHDOG=1", false, 2.0) >= 0);
    fx_teardown(&f);
}

static void test_no_watchdog_ping_while_nothing_listens(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 200000);
    snprintf(f.address, sizeof f.address, "127.0.0.1:%d", h_free_port()); /* nobody there */
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "STATUS=watchdog: the HTTP listener did not answer GET /api/version within 1s: ",
                        true, 3.0) >= 0);
    fm_listen(&f.fm, 0.5);
    assert_int_equal(fm_count(&f.fm, 0, "WATCHDOG=1"), 0);
    fx_teardown(&f);
}

static void test_watchdog_pid_of_another_process_turns_the_watchdog_off(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 200000);
    setenv("WATCHDOG_PID", "1", 1); /* systemd's watchdog is for another process */
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "READY=1", false, 2.0) >= 0);
    fm_listen(&f.fm, 0.8);
    assert_int_equal(fm_count(&f.fm, 0, "WATCHDOG=1"), 0);
    assert_int_equal(atomic_load(&f.listener.requests), 0);
    fx_teardown(&f);
}

static void test_stopping_is_the_last_message(void **state)
{
    (void)state;
    fixture f;
    fx_setup(&f, 200000);
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "WATCHDOG=1", false, 2.0) >= 0);
    service_notify_stopping(f.n);
    long stopping = fm_wait(&f.fm, 0, "STOPPING=1", false, 2.0);
    assert_true(stopping >= 0);
    fe_set(1, "qwen3:4b", RT_READY, 0, 0); /* would change the status, were it still polled */
    fm_listen(&f.fm, 0.6);
    assert_int_equal(f.fm.n, (size_t)stopping + 2); /* STOPPING=1, STATUS=stopping, then nothing */
    assert_string_equal(f.fm.lines[stopping + 1], "STATUS=stopping");
    service_notify_stopping(f.n); /* twice: nothing more */
    fm_listen(&f.fm, 0.2);
    assert_int_equal(f.fm.n, (size_t)stopping + 2);
    fx_teardown(&f);
}

static void test_the_probe_request_log_line_is_swallowed_once(void **state)
{
    (void)state;
    const char *probe_line = "[HTTP] 200 |    0.100ms |       127.0.0.1 | GET     \"/api/version\"";
    fixture f;
    fx_setup(&f, 10000000); /* one check at once, the next after 5 s */
    fx_start(&f, false);
    assert_true(fm_wait(&f.fm, 0, "WATCHDOG=1", false, 2.0) >= 0);
    assert_false(
        service_notify_swallow_log_line(f.n, "[HTTP] 200 |    0.100ms |       127.0.0.1 | POST    \"/api/chat\""));
    assert_false(service_notify_swallow_log_line(f.n, "model qwen3:4b GET \"/api/version\""));
    assert_true(service_notify_swallow_log_line(f.n, probe_line));
    assert_false(service_notify_swallow_log_line(f.n, probe_line)); /* a client's own request is logged */
    fx_teardown(&f);

    fx_setup(&f, 10000000);
    fx_start(&f, true); /* OLLAMA_DEBUG keeps them */
    assert_true(fm_wait(&f.fm, 0, "WATCHDOG=1", false, 2.0) >= 0);
    assert_false(service_notify_swallow_log_line(f.n, probe_line));
    fx_teardown(&f);
}

/* ---- end to end: axllama serve under a fake service manager ---- */

typedef struct {
    int port;
    h_http reply;
} load_request;

static void *load_model(void *arg)
{
    load_request *r = arg;
    r->reply = h_request_to(r->port, "POST", "/api/generate", "{\"model\":\"slow:1\"}", 60.0);
    return NULL;
}

/* `axllama serve` with NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID set as systemd sets them (the
 * pid is the server's own, so it is set after the fork). */
static bool start_serve_under_manager(h_server *s, const char *notify_path)
{
    s->port = h_free_port();
    strcpy(s->log_path, "/tmp/axllama-serve-log-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0)
        return false;
    char prog[512];
    snprintf(prog, sizeof prog, "%s/axllama", h_build_dir());
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        char v[64];
        snprintf(v, sizeof v, "127.0.0.1:%d", s->port);
        setenv("OLLAMA_HOST", v, 1);
        setenv("AXLLAMA_MODELS", s->dir, 1);
        setenv("NOTIFY_SOCKET", notify_path, 1);
        setenv("WATCHDOG_USEC", "400000", 1);
        snprintf(v, sizeof v, "%d", (int)getpid());
        setenv("WATCHDOG_PID", v, 1);
        char *argv[] = {prog, "serve", NULL};
        execv(prog, argv);
        _exit(127);
    }
    close(fd);
    s->exited = false;
    return s->pid > 0;
}

static void test_serve_reports_ready_load_progress_watchdog_and_stopping(void **state)
{
    (void)state;
    fake_manager fm;
    fm_open(&fm);
    h_server s;
    h_server_dir(&s);
    h_write_manifest(s.dir, "slow:1", (const char *const[]){"--emu-init-seconds", "2", NULL}, NULL);
    assert_true(start_serve_under_manager(&s, fm.path));

    long ready = fm_wait(&fm, 0, "READY=1", false, 20.0);
    if (ready < 0) {
        char *log = h_server_log(&s);
        fprintf(stderr, "no READY=1; server log:\n%s\n", log);
        free(log);
    }
    assert_true(ready >= 0);
    assert_true(h_server_wait_log(&s, "Listening on", 5.0)); /* READY=1 only once it listens */
    char want[128];
    snprintf(want, sizeof want, "STATUS=listening on 127.0.0.1:%d, no model loaded", s.port);
    assert_true(fm_find(&fm, 0, want, false) >= 0);

    /* the watchdog: a check every 0.2 s, each one pinging */
    fm_listen(&fm, 1.5);
    size_t pings = fm_count(&fm, 0, "WATCHDOG=1");
    if (pings < 3)
        fm_dump(&fm);
    assert_true(pings >= 3);

    /* a load of about 2 s: its progress, then ready */
    size_t mark = fm.n;
    load_request req = {.port = s.port};
    pthread_t t;
    pthread_create(&t, NULL, load_model, &req);
    long loading = fm_wait(&fm, mark, "STATUS=loading slow:1 ", true, 20.0);
    long ready_model = fm_wait(&fm, mark, "STATUS=ready slow:1", false, 30.0);
    pthread_join(t, NULL);
    assert_int_equal(req.reply.status, 200);
    h_http_free(&req.reply);
    if (loading < 0 || ready_model < 0)
        fm_dump(&fm);
    assert_true(loading >= 0 && ready_model > loading);
    int k = 0, total = 0;
    assert_int_equal(sscanf(fm.lines[loading], "STATUS=loading slow:1 %d/%d", &k, &total), 2);
    assert_true(k >= 0 && k <= total && total > 0);
    /* pings went on during the load */
    assert_true(fm_find(&fm, (size_t)loading, "WATCHDOG=1", false) >= 0);

    /* SIGTERM: STOPPING=1, and the server exits 0 */
    mark = fm.n;
    kill(s.pid, SIGTERM);
    long stopping = fm_wait(&fm, mark, "STOPPING=1", false, 10.0);
    assert_true(stopping >= 0);
    assert_true(h_server_wait_log(&s, "stopped", 20.0));
    char *log = h_server_log(&s);
    /* the probes' request lines are not in the log; the load's request is */
    assert_null(strstr(log, "\"/api/version\""));
    assert_non_null(strstr(log, "\"/api/generate\""));
    assert_non_null(strstr(log, "systemd watchdog: a check every 0.2s"));
    free(log);
    int status = h_server_stop(&s);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fm_close(&fm);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    pthread_mutex_init(&fe.lock, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_text_names_each_state),
        cmocka_unit_test(test_probe_url_goes_to_loopback_for_a_wildcard_listener),
        cmocka_unit_test(test_without_notify_socket_nothing_starts),
        cmocka_unit_test(test_ready_comes_with_the_listening_status),
        cmocka_unit_test(test_status_follows_a_model_load_step_by_step),
        cmocka_unit_test(test_watchdog_pings_while_the_engine_turns_and_the_listener_answers),
        cmocka_unit_test(test_no_watchdog_ping_while_the_engine_is_wedged),
        cmocka_unit_test(test_no_watchdog_ping_while_the_listener_answers_an_error),
        cmocka_unit_test(test_no_watchdog_ping_while_nothing_listens),
        cmocka_unit_test(test_watchdog_pid_of_another_process_turns_the_watchdog_off),
        cmocka_unit_test(test_stopping_is_the_last_message),
        cmocka_unit_test(test_the_probe_request_log_line_is_swallowed_once),
        cmocka_unit_test(test_serve_reports_ready_load_progress_watchdog_and_stopping),
    };
    int rc = cmocka_run_group_tests_name("service_notify", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
