/* supervisor: owns the vendor runtime child process (or axllama-emu): spawn, log capture, load
 * progress, readiness, liveness, restart with backoff after a death, clean stop. See supervisor.h
 * for the contract. Beside it: process.c (fork/exec, the pty, reaping), runtime_log.c (the child's
 * output made into log lines), devices.c (`--devices auto` with axcl-smi).
 *
 * Design:
 *   - One monitor thread per start. It forks the child itself (PR_SET_PDEATHSIG follows the thread
 *     that forked, so the child must come from a thread that lives as long as the child does), reads
 *     both output pipes with poll(), reaps with waitpid(WNOHANG), probes readiness, enforces the
 *     load timeout, waits out the restart backoff and runs the stop sequence. It is the only owner
 *     of the child: nobody else signals or reaps it, so a pid is never reused under our feet.
 *   - Callbacks run on the monitor thread without the lock held.
 *   - The child gets its own process group (signals to axllama's terminal do not reach it twice;
 *     the stop and kill signals go to the whole group, so helpers it started die with it), stdin
 *     /dev/null, a clean signal mask and default dispositions, every inherited fd above 2 closed
 *     on exec, and SIGKILL as its parent-death signal (axllama dying hard takes the runtime along).
 *   - Its stdout is a pseudo-terminal in raw mode (see open_pty: the vendor's printf log is then
 *     line-buffered, so progress is live and a crash loses no line), its stderr a pipe.
 *   - Exec failure is reported synchronously through a CLOEXEC status pipe.
 *   - Stop while ready: GET /api/stop, SIGINT to the group, SIGKILL after stop_timeout_s. Stop while
 *     loading: SIGKILL at once, because the vendor's SIGINT handler only stops the HTTP server,
 *     which does not exist yet during init (docs/spec/runtime-protocol.md §4.4), so SIGINT would only
 *     cost stop_timeout_s.
 *   - A start that fails to load (exec error, exit or timeout during load, port taken) is final:
 *     RT_FAILED, no retry. Only a runtime that was ready and then died is restarted; a restart
 *     that fails to load is final too (typically a dead device, which needs a host reboot). */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "net/http_client.h"
#include "net/socket.h"
#include "supervisor/process.h"
#include "supervisor/runtime_log.h"

#define DEFAULT_LOAD_TIMEOUT_S 300.0
#define DEFAULT_STOP_TIMEOUT_S 10.0
#define DEFAULT_BACKOFF_INITIAL_S 1.0
#define DEFAULT_BACKOFF_MAX_S 60.0
#define BACKOFF_RESET_UPTIME_S 60.0 /* a run that stayed up this long resets the backoff */
#define PROBE_INTERVAL_S 0.05       /* readiness probe while loading */
#define PROBE_TIMEOUT_S 1.0
#define API_STOP_TIMEOUT_S 1.0
#define PORT_CHECK_TIMEOUT_S 0.5
#define MONITOR_TICK_S 0.05 /* reaping latency */
#define ERROR_LINE_MAX 150
#define DEFAULT_LIVENESS_INTERVAL_S 5.0 /* a ready runtime's HTTP server is asked this often ... */
#define DEFAULT_LIVENESS_TIMEOUT_S 2.0  /* ... to answer within this ... */
#define DEFAULT_LIVENESS_FAILURES 2     /* ... and killed as hung after this many misses in a row */
/* An unrouted path: any answer (the vendor's 404) proves the server lives, and unlike
 * /api/generate_provider it drains nothing and changes nothing. */
#define LIVENESS_PATH "/axllama-liveness"

/* ---- small helpers ---- */

static char **copy_string_list(const char *const *list)
{
    size_t n = 0;
    while (list && list[n])
        n++;
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(list[i]);
    return out;
}

/* ---- the supervisor ---- */

/* What the monitor thread is doing (monitor-thread only). */
typedef enum {
    PHASE_LOADING,
    PHASE_READY,
    PHASE_RESTART_WAIT,
    PHASE_DONE, /* final state set: the monitor ends once no child is left */
} monitor_phase;

struct supervisor {
    /* configuration (own copies) */
    char *binary;
    char **args;
    char **env;
    char *workdir;
    int port;
    double load_timeout_s, stop_timeout_s, backoff_initial_s, backoff_max_s;
    double liveness_interval_s, liveness_timeout_s; /* interval <= 0: no liveness probe */
    int liveness_failures;
    bool restart;
    void (*on_log)(void *user, const char *line);
    void (*on_exit)(void *user, const rt_status *st);
    void (*on_state)(void *user, const rt_status *st);
    void *user;

    pthread_mutex_t control; /* serialises start / stop / free */
    pthread_mutex_t lock;    /* guards the fields up to the monitor-only block */
    pthread_cond_t changed;  /* state changes, spawn report */
    rt_status st;
    bool thread_exists;  /* created and not yet joined */
    bool monitor_active; /* the monitor has not set a final state yet */
    bool stop_requested;
    bool spawn_reported;
    bool spawn_ok; /* the first spawn's outcome (the state may have moved on since) */
    char spawn_error[256];
    unsigned long state_seq;    /* state changes so far */
    unsigned long notified_seq; /* state changes whose callbacks have returned */
    pthread_t monitor;
    pthread_t monitor_self; /* set by the monitor itself */
    bool monitor_self_known;
    int wake[2]; /* self-pipe: wakes the monitor's poll() */
    bool served; /* the current run answered a request (supervisor_note_served) */

    /* monitor thread only */
    monitor_phase phase;
    pid_t child; /* 0: none */
    output_stream out[2];
    double spawned_at, ready_at, load_deadline, next_probe, restart_at, stop_deadline, kill_deadline;
    double next_backoff;
    double next_liveness;
    int liveness_misses;
    bool stopping, killed, load_timed_out, saw_server_running, hung;
    char last_error_line[ERROR_LINE_MAX + 1];
    http_client *http; /* the monitor thread's, to probe and stop the runtime */
};

supervisor *supervisor_new(const supervisor_config *cfg)
{
    supervisor *s = xcalloc(1, sizeof *s);
    s->binary = xstrdup(cfg->binary ? cfg->binary : "");
    s->args = copy_string_list(cfg->args);
    s->env = copy_string_list(cfg->env);
    s->workdir = cfg->workdir ? xstrdup(cfg->workdir) : NULL;
    s->port = cfg->port;
    s->load_timeout_s = cfg->load_timeout_s > 0 ? cfg->load_timeout_s : DEFAULT_LOAD_TIMEOUT_S;
    s->stop_timeout_s = cfg->stop_timeout_s > 0 ? cfg->stop_timeout_s : DEFAULT_STOP_TIMEOUT_S;
    s->backoff_initial_s = cfg->backoff_initial_s > 0 ? cfg->backoff_initial_s : DEFAULT_BACKOFF_INITIAL_S;
    s->backoff_max_s = cfg->backoff_max_s > 0 ? cfg->backoff_max_s : DEFAULT_BACKOFF_MAX_S;
    if (s->backoff_max_s < s->backoff_initial_s)
        s->backoff_max_s = s->backoff_initial_s;
    s->liveness_interval_s = cfg->liveness_interval_s == 0 ? DEFAULT_LIVENESS_INTERVAL_S : cfg->liveness_interval_s;
    s->liveness_timeout_s = cfg->liveness_timeout_s > 0 ? cfg->liveness_timeout_s : DEFAULT_LIVENESS_TIMEOUT_S;
    s->liveness_failures = cfg->liveness_failures > 0 ? cfg->liveness_failures : DEFAULT_LIVENESS_FAILURES;
    s->restart = cfg->restart;
    s->on_log = cfg->on_log;
    s->on_exit = cfg->on_exit;
    s->on_state = cfg->on_state;
    s->user = cfg->user;
    pthread_mutex_init(&s->control, NULL);
    pthread_mutex_init(&s->lock, NULL);
    clock_cond_init(&s->changed);
    s->st.state = RT_STOPPED;
    s->st.state_since = clock_mono();
    s->wake[0] = s->wake[1] = -1;
    s->out[0].fd = s->out[1].fd = -1;
    return s;
}

/* Waits on s->changed until the absolute CLOCK_MONOTONIC time end (lock held). */
static void wait_changed_until(supervisor *s, double end)
{
    clock_cond_wait_until(&s->changed, &s->lock, end);
}

/* Sets the state (error: new message; NULL keeps the current one), calls on_exit (if died) and
 * on_state, then wakes the waiters: supervisor_start and supervisor_wait_ready only act on a state
 * whose callbacks have returned, so a caller never sees READY before its own on_state did.
 * final: the monitor is done after this. spawn_report: the outcome of the first spawn. */
static void change_state(supervisor *s, rt_state state, const char *error, bool final, bool died, bool spawn_report)
{
    pthread_mutex_lock(&s->lock);
    s->st.state = state;
    s->st.state_since = clock_mono();
    if (error)
        process_copy_text(s->st.error, sizeof s->st.error, error);
    if (final)
        s->monitor_active = false;
    if (spawn_report) {
        s->spawn_reported = true;
        s->spawn_ok = state != RT_FAILED;
        if (!s->spawn_ok)
            process_copy_text(s->spawn_error, sizeof s->spawn_error, s->st.error);
    }
    unsigned long seq = ++s->state_seq;
    rt_status snapshot = s->st;
    pthread_mutex_unlock(&s->lock);
    if (final)
        s->phase = PHASE_DONE;
    if (died && s->on_exit)
        s->on_exit(s->user, &snapshot);
    if (s->on_state)
        s->on_state(s->user, &snapshot);
    pthread_mutex_lock(&s->lock);
    if (s->notified_seq < seq)
        s->notified_seq = seq;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void set_state(supervisor *s, rt_state state, const char *error, bool final, bool died)
{
    change_state(s, state, error, final, died, false);
}

/* ---- output handling (monitor thread) ---- */

static void note_progress(supervisor *s, const char *line, bool complete)
{
    int step, total;
    if (s->phase != PHASE_LOADING || !runtime_log_progress(line, complete, &step, &total))
        return;
    pthread_mutex_lock(&s->lock);
    s->st.load_step = step;
    s->st.load_total = total;
    pthread_mutex_unlock(&s->lock);
}

/* A whole line of the runtime's output: the readiness hint, the load progress, the last error-looking
 * line (for the message if it dies), then the log. */
static void runtime_line(void *user, const char *line)
{
    supervisor *s = user;
    if (s->phase == PHASE_LOADING && strstr(line, "Server running on port")) {
        s->saw_server_running = true;
        s->next_probe = 0; /* probe at once */
    }
    note_progress(s, line, true);
    if (runtime_log_is_error(line))
        process_copy_text(s->last_error_line, sizeof s->last_error_line, line);
    if (s->on_log)
        s->on_log(s->user, line);
}

static void runtime_partial_line(void *user, const char *partial)
{
    note_progress(user, partial, false);
}

static void read_stream(supervisor *s, output_stream *o)
{
    output_sink k = {.on_line = runtime_line, .on_partial = runtime_partial_line, .user = s};
    output_read(o, &k);
}

/* After the child ended: takes what is still in the pipes, emits partial lines, closes both. */
static void close_streams(supervisor *s)
{
    output_sink sink = {.on_line = runtime_line, .on_partial = runtime_partial_line, .user = s};
    for (int k = 0; k < 2; k++) {
        output_stream *o = &s->out[k];
        for (int i = 0; i < 64 && o->fd >= 0; i++)
            output_read(o, &sink);
        if (o->fd >= 0) { /* a leftover holder keeps it open: stop reading anyway */
            close(o->fd);
            o->fd = -1;
        }
        o->esc = ESC_NONE;
        if (o->line.len) /* the last line had no newline */
            output_feed(o, &sink, "\n", 1);
        sb_free(&o->line);
    }
}

/* ---- HTTP (monitor thread) ---- */

/* GET http://127.0.0.1:port<path> on a fresh connection (none of the runtime's few threads is kept
 * busy); true if any HTTP answer came within timeout_s. */
static bool http_get_answers(supervisor *s, const char *path, double timeout_s)
{
    if (!s->http)
        return false;
    http_reply r;
    bool answered = http_client_call(s->http, &(http_call){.path = path, .timeout_s = timeout_s}, &r) == HTTPC_OK;
    http_reply_free(&r);
    return answered;
}

/* ---- the child's life (monitor thread) ---- */

static void signal_child_group(supervisor *s, int sig)
{
    if (s->child <= 0)
        return;
    if (kill(-s->child, sig) != 0)
        kill(s->child, sig);
}

/* Checks the port, then spawns the runtime with fresh pipes (stdout: a pty if possible). False
 * with a message on failure. */
static bool spawn_runtime(supervisor *s, char *err, size_t errlen)
{
    if (net_port_answers(s->port, PORT_CHECK_TIMEOUT_S)) {
        /* the vendor would print "Server running", fail to bind and exit 0 */
        char msg[160];
        snprintf(msg, sizeof msg, "port %d is already in use by another process (is a runtime still running?)",
                 s->port);
        process_set_error(err, errlen, msg);
        return false;
    }
    char *path = process_resolve(s->binary);
    if (!path) {
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: %s", s->binary, strerror(errno));
        process_set_error(err, errlen, sb.data);
        sb_free(&sb);
        return false;
    }
    size_t n_args = 0;
    while (s->args[n_args])
        n_args++;
    char **argv = xcalloc(n_args + 2, sizeof *argv);
    argv[0] = s->binary;
    for (size_t i = 0; i < n_args; i++)
        argv[i + 1] = s->args[i];
    char **envp = process_environment((const char *const *)s->env);
    int pipes[2][2] = {{-1, -1}, {-1, -1}};
    pid_t pid = -1;
    if ((!process_open_pty(&pipes[0][0], &pipes[0][1]) && pipe2(pipes[0], O_CLOEXEC) != 0) ||
        pipe2(pipes[1], O_CLOEXEC) != 0) {
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: pipe: %s", s->binary, strerror(errno));
        process_set_error(err, errlen, sb.data);
        sb_free(&sb);
    } else {
        pid = process_spawn(s->binary, path, argv, envp, s->workdir, pipes[0][1], pipes[1][1], err, errlen);
    }
    for (int k = 0; k < 2; k++) {
        if (pipes[k][1] >= 0)
            close(pipes[k][1]);
        if (pid > 0) {
            fcntl(pipes[k][0], F_SETFL, fcntl(pipes[k][0], F_GETFL) | O_NONBLOCK);
            s->out[k].fd = pipes[k][0];
            s->out[k].esc = ESC_NONE;
        } else if (pipes[k][0] >= 0) {
            close(pipes[k][0]);
        }
    }
    process_free_strings(envp);
    free(argv);
    free(path);
    if (pid <= 0)
        return false;

    double now = clock_mono();
    s->child = pid;
    s->phase = PHASE_LOADING;
    s->spawned_at = now;
    s->load_deadline = now + s->load_timeout_s;
    s->next_probe = now + PROBE_INTERVAL_S;
    s->stopping = s->killed = s->load_timed_out = s->saw_server_running = s->hung = false;
    s->last_error_line[0] = '\0';
    pthread_mutex_lock(&s->lock);
    s->served = false;
    s->st.pid = pid;
    s->st.load_step = s->st.load_total = 0;
    s->st.exited = false;
    s->st.last_exit = 0;
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* Formats "<what> (<status>)[: <last error line>]" into msg. */
static void exit_message(supervisor *s, const char *what, int status, char *msg, size_t n)
{
    char how[64];
    process_describe_status(status, how, sizeof how);
    strbuf sb = {0};
    sb_printf(&sb, "%s (%s)", what, how);
    if (s->last_error_line[0])
        sb_printf(&sb, ": %s", s->last_error_line);
    process_copy_text(msg, n, sb.data);
    sb_free(&sb);
}

/* The child ended with status (already reaped). */
static void handle_exit(supervisor *s, int status)
{
    close_streams(s);
    /* Whatever it left behind in its group. Only the group: the pid itself is reaped and free for
     * reuse (the group id stays taken while members are left). */
    kill(-s->child, SIGKILL);
    s->child = 0;
    pthread_mutex_lock(&s->lock);
    s->st.pid = 0;
    s->st.exited = true;
    s->st.last_exit = status;
    pthread_mutex_unlock(&s->lock);

    char msg[256];
    if (s->stopping) {
        set_state(s, RT_STOPPED, NULL, true, false);
    } else if (s->load_timed_out) {
        snprintf(msg, sizeof msg, "runtime did not become ready within %g s", s->load_timeout_s);
        set_state(s, RT_FAILED, msg, true, false);
    } else if (s->phase == PHASE_LOADING) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && s->saw_server_running)
            snprintf(msg, sizeof msg,
                     "runtime exited (status 0) right after \"Server running on port\" without answering on port "
                     "%d: the port is probably taken by another process",
                     s->port);
        else
            exit_message(s, "runtime exited during load", status, msg, sizeof msg);
        set_state(s, RT_FAILED, msg, true, false);
    } else {
        double now = clock_mono();
        if (s->hung)
            snprintf(msg, sizeof msg, "runtime stopped answering (no answer to %d probes in a row); killed",
                     s->liveness_failures);
        else
            exit_message(s, "runtime died", status, msg, sizeof msg);
        pthread_mutex_lock(&s->lock);
        bool served = s->served;
        pthread_mutex_unlock(&s->lock);
        if (s->restart) {
            if (served || now - s->ready_at >= BACKOFF_RESET_UPTIME_S) /* it worked: start the back-off over */
                s->next_backoff = s->backoff_initial_s;
            s->restart_at = now + s->next_backoff;
            pthread_mutex_lock(&s->lock);
            s->st.restart_at = s->restart_at;
            pthread_mutex_unlock(&s->lock);
            s->next_backoff *= 2;
            if (s->next_backoff > s->backoff_max_s)
                s->next_backoff = s->backoff_max_s;
            s->phase = PHASE_RESTART_WAIT;
            set_state(s, RT_RESTARTING, msg, false, true);
        } else {
            set_state(s, RT_STOPPED, msg, true, true);
        }
    }
}

/* A ready runtime that stops answering HTTP (stopped, deadlocked, its machine thrashing) is hung:
 * after liveness_failures misses in a row it is killed, and its death restarts it as any other. */
static void check_liveness(supervisor *s)
{
    if (http_get_answers(s, LIVENESS_PATH, s->liveness_timeout_s)) {
        s->liveness_misses = 0;
    } else if (++s->liveness_misses >= s->liveness_failures) {
        if (s->on_log) {
            char line[160];
            snprintf(line, sizeof line, "axllama: the runtime did not answer %d probes in a row: killing it",
                     s->liveness_misses);
            s->on_log(s->user, line);
        }
        s->hung = true;
        signal_child_group(s, SIGKILL);
        s->killed = true;
        s->kill_deadline = clock_mono() + PROCESS_KILL_WAIT_S;
    }
    s->next_liveness = clock_mono() + s->liveness_interval_s;
}

/* Stop requested while a child lives. */
static void begin_stop(supervisor *s, double now)
{
    s->stopping = true;
    if (s->phase == PHASE_READY) {
        http_get_answers(s, "/api/stop", API_STOP_TIMEOUT_S); /* end a generation first */
        signal_child_group(s, SIGINT);
        s->stop_deadline = clock_mono() + s->stop_timeout_s;
    } else { /* still loading: the runtime ignores SIGINT until it serves (see top of file) */
        signal_child_group(s, SIGKILL);
        s->killed = true;
        s->kill_deadline = now + PROCESS_KILL_WAIT_S;
    }
}

static void report_spawn(supervisor *s, bool ok, const char *err)
{
    if (ok)
        change_state(s, RT_LOADING, "", false, false, true);
    else
        change_state(s, RT_FAILED, err, true, false, true);
}

/* The deadlines of a living child: a requested stop, the stop's SIGKILL, the load timeout, an
 * unkillable child. False when the monitor must end (a child that SIGKILL does not end). */
static bool enforce_deadlines(supervisor *s, bool stop, double now)
{
    if (stop && !s->stopping) {
        begin_stop(s, now);
    } else if (s->stopping && !s->killed && now >= s->stop_deadline) {
        signal_child_group(s, SIGKILL); /* ignored SIGINT, or hung */
        s->killed = true;
        s->kill_deadline = now + PROCESS_KILL_WAIT_S;
    } else if (!s->stopping && !s->killed && s->phase == PHASE_LOADING && now >= s->load_deadline) {
        signal_child_group(s, SIGKILL);
        s->killed = s->load_timed_out = true;
        s->kill_deadline = now + PROCESS_KILL_WAIT_S;
    }
    if (!s->killed || now < s->kill_deadline)
        return true;
    /* unkillable (stuck in the kernel): give up on it rather than hang */
    char msg[160];
    snprintf(msg, sizeof msg, "runtime (pid %d) did not end after SIGKILL; left behind", (int)s->child);
    close_streams(s);
    s->child = 0;
    pthread_mutex_lock(&s->lock);
    s->st.pid = 0;
    pthread_mutex_unlock(&s->lock);
    set_state(s, RT_FAILED, msg, true, false);
    return false;
}

typedef enum { MONITOR_GO_ON, MONITOR_RESPAWNED, MONITOR_END } monitor_step;

/* No child: the monitor is done, a stop ends the restart backoff, or the restart is due. */
static monitor_step without_child(supervisor *s, bool stop, double now)
{
    if (s->phase == PHASE_DONE)
        return MONITOR_END;
    if (stop) { /* waiting out a restart backoff */
        set_state(s, RT_STOPPED, NULL, true, false);
        return MONITOR_END;
    }
    if (s->phase != PHASE_RESTART_WAIT || now < s->restart_at)
        return MONITOR_GO_ON;
    pthread_mutex_lock(&s->lock);
    s->st.restarts++;
    pthread_mutex_unlock(&s->lock);
    char err[256];
    if (!spawn_runtime(s, err, sizeof err)) {
        set_state(s, RT_FAILED, err, true, false);
        return MONITOR_END;
    }
    set_state(s, RT_LOADING, NULL, false, false);
    return MONITOR_RESPAWNED;
}

/* Sleeps until the child's output, a wake-up (stop, free) or the next due check, then reads the
 * output that came. */
static void wait_for_events(supervisor *s, double now)
{
    double wait_s = MONITOR_TICK_S; /* reaping: waitpid has no event to wait on here */
    if (s->child <= 0 && s->phase == PHASE_RESTART_WAIT)
        wait_s = s->restart_at - now < 1.0 ? s->restart_at - now : 1.0;
    if (s->child > 0 && s->phase == PHASE_LOADING && !s->stopping && s->next_probe - now < wait_s)
        wait_s = s->next_probe - now;
    if (wait_s < 0)
        wait_s = 0;
    struct pollfd pfds[3];
    nfds_t nfds = 0;
    pfds[nfds++] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
    for (int k = 0; k < 2; k++)
        if (s->out[k].fd >= 0)
            pfds[nfds++] = (struct pollfd){.fd = s->out[k].fd, .events = POLLIN};
    if (poll(pfds, nfds, (int)(wait_s * 1000 + 0.999)) > 0 && (pfds[0].revents & POLLIN)) {
        char drain[64];
        while (read(s->wake[0], drain, sizeof drain) > 0) {
        }
    }
    for (int k = 0; k < 2; k++)
        if (s->out[k].fd >= 0)
            read_stream(s, &s->out[k]);
}

/* Reaps the child if it ended (true), else probes its readiness while it loads and its liveness
 * once ready. */
static bool check_child(supervisor *s)
{
    int status;
    pid_t r = waitpid(s->child, &status, WNOHANG);
    if (r < 0 && errno == ECHILD) /* SIGCHLD ignored: the kernel reaped it, status unknown */
        status = 0;
    if (r == s->child || (r < 0 && errno == ECHILD)) {
        handle_exit(s, status);
        return true;
    }
    double now = clock_mono();
    if (s->phase == PHASE_LOADING && !s->stopping && !s->killed && now >= s->next_probe) {
        if (http_get_answers(s, "/api/generate_provider", PROBE_TIMEOUT_S)) {
            s->phase = PHASE_READY;
            s->ready_at = clock_mono();
            s->next_liveness = s->ready_at + s->liveness_interval_s;
            s->liveness_misses = 0;
            set_state(s, RT_READY, NULL, false, false);
        } else {
            s->next_probe = clock_mono() + PROBE_INTERVAL_S;
        }
    } else if (s->phase == PHASE_READY && s->liveness_interval_s > 0 && !s->stopping && !s->killed &&
               now >= s->next_liveness) {
        check_liveness(s);
    }
    return false;
}

static void *monitor_main(void *arg)
{
    supervisor *s = arg;
    pthread_mutex_lock(&s->lock);
    s->monitor_self = pthread_self(); /* for supervisor_stop called from a callback */
    s->monitor_self_known = true;
    pthread_mutex_unlock(&s->lock);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s->port);
    s->http = http_client_new(&(http_client_config){.base_url = base, .fresh_connection = true});
    char err[256];
    bool ok = spawn_runtime(s, err, sizeof err);
    report_spawn(s, ok, err);
    while (ok) {
        double now = clock_mono();
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop_requested;
        pthread_mutex_unlock(&s->lock);
        if (s->child > 0 && !enforce_deadlines(s, stop, now))
            break;
        if (s->child <= 0) {
            monitor_step step = without_child(s, stop, now);
            if (step == MONITOR_END)
                break;
            if (step == MONITOR_RESPAWNED)
                continue;
        }
        wait_for_events(s, now);
        if (s->child > 0)
            check_child(s);
    }
    close_streams(s);
    http_client_free(s->http);
    s->http = NULL;
    return NULL;
}

/* Joins a monitor that has ended or is ending (control held). */
static void join_monitor(supervisor *s)
{
    pthread_mutex_lock(&s->lock);
    bool exists = s->thread_exists;
    s->thread_exists = false;
    pthread_mutex_unlock(&s->lock);
    if (!exists)
        return;
    pthread_join(s->monitor, NULL);
    for (int k = 0; k < 2; k++)
        if (s->wake[k] >= 0) {
            close(s->wake[k]);
            s->wake[k] = -1;
        }
}

/* Long (80 lines) because it holds the control lock from the first check to the spawn's outcome:
 * reset the state, start the monitor, wait for the spawn, each undoing what came before on failure;
 * split up, the lock's scope would be split with it. */
bool supervisor_start(supervisor *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->control);
    pthread_mutex_lock(&s->lock);
    bool running = s->thread_exists && s->monitor_active && !s->stop_requested;
    pthread_mutex_unlock(&s->lock);
    if (running) { /* already loading, ready or restarting */
        pthread_mutex_unlock(&s->control);
        return true;
    }
    join_monitor(s);

    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot start the supervisor: pipe: %s", strerror(errno));
        process_set_error(err, errlen, msg);
        s->wake[0] = s->wake[1] = -1;
        pthread_mutex_unlock(&s->control);
        return false;
    }
    pthread_mutex_lock(&s->lock);
    s->st.restarts = 0;
    s->st.error[0] = '\0';
    s->st.exited = false;
    s->st.last_exit = 0;
    s->st.pid = 0;
    s->st.load_step = s->st.load_total = 0;
    s->stop_requested = false;
    s->spawn_reported = false;
    s->monitor_active = true;
    s->monitor_self_known = false;
    s->thread_exists = true;
    pthread_mutex_unlock(&s->lock);
    s->phase = PHASE_LOADING;
    s->child = 0;
    s->next_backoff = s->backoff_initial_s;

    /* The monitor takes no process signals: axllama's own handling stays where it is. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->monitor, NULL, monitor_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_lock(&s->lock);
        s->thread_exists = s->monitor_active = false;
        pthread_mutex_unlock(&s->lock);
        for (int k = 0; k < 2; k++) {
            close(s->wake[k]);
            s->wake[k] = -1;
        }
        char msg[128];
        snprintf(msg, sizeof msg, "cannot start the supervisor thread: %s", strerror(rc));
        process_set_error(err, errlen, msg);
        pthread_mutex_unlock(&s->control);
        return false;
    }

    /* The spawn outcome (the port check and exec take well under this). */
    pthread_mutex_lock(&s->lock);
    double end = clock_mono() + PROCESS_EXEC_REPORT_TIMEOUT_S + 2 * PROCESS_KILL_WAIT_S;
    while ((!s->spawn_reported || s->notified_seq != s->state_seq) && clock_mono() < end)
        wait_changed_until(s, end);
    bool reported = s->spawn_reported;
    bool ok = reported && s->spawn_ok;
    if (reported && !ok)
        process_set_error(err, errlen, s->spawn_error);
    pthread_mutex_unlock(&s->control);
    pthread_mutex_unlock(&s->lock);
    if (!reported) {
        process_set_error(err, errlen, "the runtime did not start in time");
        supervisor_stop(s);
    }
    if (!ok) {
        pthread_mutex_lock(&s->control);
        join_monitor(s);
        pthread_mutex_unlock(&s->control);
    }
    return ok;
}

bool supervisor_wait_ready(supervisor *s, double timeout_s, char *err, size_t errlen)
{
    double end = clock_mono() + (timeout_s > 0 ? timeout_s : 0);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        rt_state state = s->st.state;
        if (s->notified_seq != s->state_seq && clock_mono() < end) { /* its callbacks are still running */
            wait_changed_until(s, end);
            continue;
        }
        if (state == RT_READY) {
            pthread_mutex_unlock(&s->lock);
            return true;
        }
        if (state == RT_FAILED || state == RT_STOPPED) {
            process_set_error(err, errlen, s->st.error[0] ? s->st.error : "the runtime is not running");
            pthread_mutex_unlock(&s->lock);
            return false;
        }
        if (clock_mono() >= end) {
            char msg[160];
            if (state == RT_LOADING && s->st.load_total > 0)
                snprintf(msg, sizeof msg, "the runtime is not ready after %g s (loading %d / %d)", timeout_s,
                         s->st.load_step, s->st.load_total);
            else
                snprintf(msg, sizeof msg, "the runtime is not ready after %g s (%s)", timeout_s,
                         state == RT_RESTARTING ? "restarting" : "loading");
            process_set_error(err, errlen, msg);
            pthread_mutex_unlock(&s->lock);
            return false;
        }
        wait_changed_until(s, end);
    }
}

rt_status supervisor_status(supervisor *s)
{
    pthread_mutex_lock(&s->lock);
    rt_status st = s->st;
    pthread_mutex_unlock(&s->lock);
    return st;
}

void supervisor_stop(supervisor *s)
{
    pthread_mutex_lock(&s->lock);
    bool from_monitor = s->thread_exists && s->monitor_self_known && pthread_equal(pthread_self(), s->monitor_self);
    if (from_monitor) { /* called from a callback: request only; the monitor acts when it returns */
        s->stop_requested = true;
        pthread_mutex_unlock(&s->lock);
        return;
    }
    pthread_mutex_unlock(&s->lock);

    pthread_mutex_lock(&s->control);
    pthread_mutex_lock(&s->lock);
    s->stop_requested = true;
    int wake_fd = s->thread_exists ? s->wake[1] : -1;
    pthread_mutex_unlock(&s->lock);
    if (wake_fd >= 0) {
        ssize_t ignored = write(wake_fd, "x", 1);
        (void)ignored;
    }
    join_monitor(s); /* the stop sequence is bounded: /api/stop + stop_timeout + SIGKILL wait */
    pthread_mutex_unlock(&s->control);
}

void supervisor_note_served(supervisor *s)
{
    pthread_mutex_lock(&s->lock);
    s->served = true;
    pthread_mutex_unlock(&s->lock);
}

void supervisor_free(supervisor *s)
{
    if (!s)
        return;
    supervisor_stop(s);
    free(s->binary);
    process_free_strings(s->args);
    process_free_strings(s->env);
    free(s->workdir);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->control);
    free(s);
}

const char *rt_state_name(rt_state s)
{
    switch (s) {
    case RT_STOPPED: return "stopped";
    case RT_LOADING: return "loading";
    case RT_READY: return "ready";
    case RT_RESTARTING: return "restarting";
    case RT_FAILED: return "failed";
    }
    return "unknown";
}
