/* supervisor: owns the vendor runtime child process (or axllama-emu): spawn, log capture, load
 * progress, readiness, restart with backoff after a death, clean stop, and `--devices auto`
 * detection with axcl-smi. See supervisor.h for the contract.
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

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/utf8.h"
#include "net/http_client.h"
#include "net/socket.h"

extern char **environ;

#define DEFAULT_LOAD_TIMEOUT_S 300.0
#define DEFAULT_STOP_TIMEOUT_S 10.0
#define DEFAULT_BACKOFF_INITIAL_S 1.0
#define DEFAULT_BACKOFF_MAX_S 60.0
#define BACKOFF_RESET_UPTIME_S 60.0 /* a run that stayed up this long resets the backoff */
#define PROBE_INTERVAL_S 0.05       /* readiness probe while loading */
#define PROBE_TIMEOUT_S 1.0
#define API_STOP_TIMEOUT_S 1.0
#define PORT_CHECK_TIMEOUT_S 0.5
#define EXEC_REPORT_TIMEOUT_S 10.0  /* fork until exec */
#define KILL_WAIT_S 5.0             /* SIGKILL until reaped */
#define MONITOR_TICK_S 0.05         /* reaping latency */
#define LINE_MAX_BYTES 4096         /* longer output lines are split */
#define ERROR_LINE_MAX 150
#define DETECT_TIMEOUT_S 5.0
#define DEFAULT_LIVENESS_INTERVAL_S 5.0 /* a ready runtime's HTTP server is asked this often ... */
#define DEFAULT_LIVENESS_TIMEOUT_S 2.0  /* ... to answer within this ... */
#define DEFAULT_LIVENESS_FAILURES 2     /* ... and killed as hung after this many misses in a row */
/* An unrouted path: any answer (the vendor's 404) proves the server lives, and unlike
 * /api/generate_provider it drains nothing and changes nothing. */
#define LIVENESS_PATH "/axllama-liveness"
#define DETECT_OUTPUT_MAX (64 * 1024)

/* ---- small helpers ---- */

/* Copies src into dst (size n > 0), cut at a UTF-8 character boundary if it does not fit. */
static void copy_text(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        len = utf8_complete_prefix(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        copy_text(err, errlen, msg);
}

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

static void free_string_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

/* "status 3" or "killed by SIGABRT". */
static void describe_wait_status(int status, char *out, size_t n)
{
    if (WIFEXITED(status)) {
        snprintf(out, n, "status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        if (abbrev)
            snprintf(out, n, "killed by SIG%s", abbrev);
        else
            snprintf(out, n, "killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(out, n, "wait status 0x%x", (unsigned)status);
    }
}

/* Waits up to timeout_s for pid to end; true with *status if it did. */
static bool reap_within(pid_t pid, double timeout_s, int *status)
{
    double end = clock_mono() + timeout_s;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return r == pid;
        if (clock_mono() >= end)
            return false;
        clock_sleep(0.002); /* a child's end is no event we can wait on here (no SIGCHLD handler) */
    }
}

/* The program to exec: a name with a '/' is a path (a relative one is taken relative to axllama's
 * working directory, not the child's workdir); a bare name is looked up in PATH. NULL with errno
 * set if there is nothing to run. */
static char *resolve_program(const char *name)
{
    if (!name || !*name) {
        errno = ENOENT;
        return NULL;
    }
    if (strchr(name, '/')) {
        if (name[0] == '/')
            return xstrdup(name);
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return xstrdup(name);
        strbuf sb = {0};
        sb_printf(&sb, "%s/%s", cwd, name);
        return sb_steal(&sb);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int first_errno = ENOENT;
    for (const char *dir = path; dir;) {
        const char *colon = strchr(dir, ':');
        size_t dir_len = colon ? (size_t)(colon - dir) : strlen(dir);
        strbuf sb = {0};
        if (dir_len)
            sb_append(&sb, dir, dir_len);
        else
            sb_putc(&sb, '.');
        sb_printf(&sb, "/%s", name);
        struct stat stbuf;
        if (stat(sb.data, &stbuf) == 0 && S_ISREG(stbuf.st_mode)) {
            if (access(sb.data, X_OK) == 0)
                return sb_steal(&sb);
            first_errno = EACCES;
        }
        sb_free(&sb);
        dir = colon ? colon + 1 : NULL;
    }
    errno = first_errno;
    return NULL;
}

/* The inherited environment with the KEY=VALUE entries of extra added (replacing the same keys). */
static char **build_environment(const char *const *extra)
{
    size_t n_env = 0, n_extra = 0;
    while (environ && environ[n_env])
        n_env++;
    while (extra && extra[n_extra])
        n_extra++;
    char **out = xcalloc(n_env + n_extra + 1, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t key_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < n_extra && !replaced; j++)
            replaced = !strncmp(extra[j], environ[i], key_len) && extra[j][key_len] == '=';
        if (!replaced)
            out[n++] = xstrdup(environ[i]);
    }
    for (size_t j = 0; j < n_extra; j++)
        out[n++] = xstrdup(extra[j]);
    return out;
}

/* ---- spawning ---- */

enum { STAGE_CHDIR = 1, STAGE_EXEC = 2 };

typedef struct {
    int stage;
    int err;
} exec_report;

static void report_and_exit(int fd, int stage, int err)
{
    exec_report r = {.stage = stage, .err = err};
    ssize_t ignored = write(fd, &r, sizeof r);
    (void)ignored;
    _exit(127);
}

/* Runs in the forked child: only async-signal-safe calls. */
static void child_exec(const char *path, char *const argv[], char *const envp[], const char *workdir, int out_fd,
                       int err_fd, int null_fd, int report_fd, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent already died: do not outlive it */
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    static const int reset_signals[] = {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof reset_signals / sizeof reset_signals[0]; i++)
        sigaction(reset_signals[i], &dfl, NULL);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* nothing of axllama's leaks (listening sockets...) */
    if (workdir && chdir(workdir) != 0)
        report_and_exit(report_fd, STAGE_CHDIR, errno);
    execve(path, argv, envp);
    report_and_exit(report_fd, STAGE_EXEC, errno);
}

/* Forks and execs path. stdin is /dev/null; stdout and stderr go to out_fd and err_fd (-1:
 * /dev/null). Returns the pid once exec succeeded, or -1 with a message in err ("cannot run
 * <shown>: <reason>"). */
static pid_t spawn_process(const char *shown, const char *path, char *const argv[], char *const envp[],
                           const char *workdir, int out_fd, int err_fd, char *err, size_t errlen)
{
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int report[2];
    if (null_fd < 0 || pipe2(report, O_CLOEXEC) != 0) {
        int e = errno;
        if (null_fd >= 0)
            close(null_fd);
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: %s", shown, strerror(e));
        set_err(err, errlen, sb.data);
        sb_free(&sb);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, argv, envp, workdir, out_fd >= 0 ? out_fd : null_fd, err_fd >= 0 ? err_fd : null_fd, null_fd,
                   report[1], parent);
    int fork_errno = errno;
    close(report[1]);
    close(null_fd);
    if (pid < 0) {
        close(report[0]);
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: fork: %s", shown, strerror(fork_errno));
        set_err(err, errlen, sb.data);
        sb_free(&sb);
        return -1;
    }
    setpgid(pid, pid); /* also here, so the group exists before we could signal it */

    exec_report r = {0};
    size_t got = 0;
    bool timed_out = false;
    double end = clock_mono() + EXEC_REPORT_TIMEOUT_S;
    for (;;) {
        double left = end - clock_mono();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = report[0], .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue;
        ssize_t n = read(report[0], (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF: exec succeeded (the pipe closed on exec) */
        got += (size_t)n;
        if (got == sizeof r)
            break;
    }
    close(report[0]);
    if (got == 0 && !timed_out)
        return pid;

    int status;
    if (!reap_within(pid, KILL_WAIT_S, &status)) {
        kill(pid, SIGKILL);
        reap_within(pid, KILL_WAIT_S, &status);
    }
    strbuf sb = {0};
    if (timed_out)
        sb_printf(&sb, "cannot run %s: it did not start within %.0f s", shown, EXEC_REPORT_TIMEOUT_S);
    else if (got == sizeof r && r.stage == STAGE_CHDIR)
        sb_printf(&sb, "cannot run %s in %s: %s", shown, workdir ? workdir : ".", strerror(r.err));
    else if (got == sizeof r)
        sb_printf(&sb, "cannot run %s: %s", shown, strerror(r.err));
    else
        sb_printf(&sb, "cannot run %s: exec failed", shown);
    set_err(err, errlen, sb.data);
    sb_free(&sb);
    return -1;
}

/* ---- the supervisor ---- */

typedef enum { ESC_NONE, ESC_START, ESC_CSI, ESC_OSC, ESC_OSC_ESC } esc_state;

typedef struct {
    int fd;        /* read end of the child's stdout or stderr; -1 when closed */
    strbuf line;   /* the current line, escape sequences and control characters removed */
    esc_state esc; /* escape-sequence parser state across reads */
} output_stream;

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
    bool thread_exists;      /* created and not yet joined */
    bool monitor_active;     /* the monitor has not set a final state yet */
    bool stop_requested;
    bool spawn_reported;
    bool spawn_ok;          /* the first spawn's outcome (the state may have moved on since) */
    char spawn_error[256];
    unsigned long state_seq;    /* state changes so far */
    unsigned long notified_seq; /* state changes whose callbacks have returned */
    pthread_t monitor;
    pthread_t monitor_self;  /* set by the monitor itself */
    bool monitor_self_known;
    int wake[2];             /* self-pipe: wakes the monitor's poll() */
    bool served;             /* the current run answered a request (supervisor_note_served) */

    /* monitor thread only */
    monitor_phase phase;
    pid_t child;             /* 0: none */
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
        copy_text(s->st.error, sizeof s->st.error, error);
    if (final)
        s->monitor_active = false;
    if (spawn_report) {
        s->spawn_reported = true;
        s->spawn_ok = state != RT_FAILED;
        if (!s->spawn_ok)
            copy_text(s->spawn_error, sizeof s->spawn_error, s->st.error);
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

/* Finds a progress counter "k / N" (digits, " / ", spaces, digits) in line. complete: the line is
 * whole, so N may end it; in a partial line N must be followed by something (it may be cut). */
static bool parse_progress(const char *line, bool complete, int *step, int *total)
{
    for (const char *p = strstr(line, " / "); p; p = strstr(p + 1, " / ")) {
        const char *k_start = p;
        while (k_start > line && isdigit((unsigned char)k_start[-1]))
            k_start--;
        const char *n_start = p + 3;
        while (*n_start == ' ')
            n_start++;
        const char *n_end = n_start;
        while (isdigit((unsigned char)*n_end))
            n_end++;
        if (k_start == p || n_end == n_start || p - k_start > 6 || n_end - n_start > 6)
            continue;
        if (!*n_end && !complete)
            return false;
        int k = atoi(k_start), n = atoi(n_start);
        if (n > 0 && k <= n) {
            *step = k;
            *total = n;
            return true;
        }
    }
    return false;
}

static void note_progress(supervisor *s, const char *line, bool complete)
{
    int step, total;
    if (s->phase != PHASE_LOADING || !parse_progress(line, complete, &step, &total))
        return;
    pthread_mutex_lock(&s->lock);
    s->st.load_step = step;
    s->st.load_total = total;
    pthread_mutex_unlock(&s->lock);
}

static bool looks_like_error(const char *line)
{
    static const char *const words[] = {"error", "fail", "terminate called", "what():", "abort", "segmentation fault",
                                        "dead"};
    if (strstr(line, RUNTIME_BUSY_LINE)) /* the answer to a generate retried while busy: expected */
        return false;
    if (!strncmp(line, "[E]", 3))
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(line, words[i]))
            return true;
    return false;
}

/* Emits the first len bytes of o->line as one log line (if not blank) and keeps the rest. */
static void emit_line(supervisor *s, output_stream *o, size_t len)
{
    if (!o->line.data)
        return;
    size_t end = len;
    while (end > 0 && isspace((unsigned char)o->line.data[end - 1]))
        end--;
    if (end > 0) {
        strbuf clean = {0};
        utf8_append_lossy(&clean, o->line.data, end);
        if (s->phase == PHASE_LOADING && strstr(clean.data, "Server running on port")) {
            s->saw_server_running = true;
            s->next_probe = 0; /* probe at once */
        }
        note_progress(s, clean.data, true);
        if (looks_like_error(clean.data))
            copy_text(s->last_error_line, sizeof s->last_error_line, clean.data);
        if (s->on_log)
            s->on_log(s->user, clean.data);
        sb_free(&clean);
    }
    size_t rest = o->line.len - len;
    memmove(o->line.data, o->line.data + len, rest);
    o->line.len = rest;
    o->line.data[rest] = '\0';
}

/* Feeds raw output bytes: strips ANSI escape sequences (CSI "ESC [ ... final" and OSC "ESC ] ...
 * BEL|ESC \", other "ESC x" pairs), drops control characters except tab, and ends a line at \n or
 * \r (a \r progress redraw becomes a line of its own). */
static void feed_output(supervisor *s, output_stream *o, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        switch (o->esc) {
        case ESC_START:
            o->esc = c == '[' ? ESC_CSI : c == ']' ? ESC_OSC : ESC_NONE;
            continue;
        case ESC_CSI:
            if (c >= 0x40 && c <= 0x7e)
                o->esc = ESC_NONE;
            continue;
        case ESC_OSC:
            if (c == 0x07)
                o->esc = ESC_NONE;
            else if (c == 0x1b)
                o->esc = ESC_OSC_ESC;
            continue;
        case ESC_OSC_ESC:
            o->esc = ESC_NONE;
            continue;
        case ESC_NONE:
            break;
        }
        if (c == 0x1b) {
            o->esc = ESC_START;
        } else if (c == '\n' || c == '\r') {
            emit_line(s, o, o->line.len);
        } else if ((c >= 0x20 && c != 0x7f) || c == '\t') {
            sb_putc(&o->line, (char)c);
            if (o->line.len >= LINE_MAX_BYTES) {
                size_t cut = utf8_complete_prefix(o->line.data, o->line.len);
                emit_line(s, o, cut ? cut : o->line.len);
            }
        }
    }
    if (o->line.data)
        note_progress(s, o->line.data, false); /* a redraw that waits for its \r */
}

/* Reads what is available on one stream (bounded, so one stream cannot starve the loop). */
static void read_stream(supervisor *s, output_stream *o)
{
    char buf[4096];
    for (int i = 0; i < 16 && o->fd >= 0; i++) {
        ssize_t n = read(o->fd, buf, sizeof buf);
        if (n > 0) {
            feed_output(s, o, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) { /* EOF; EIO from a pty: same */
            close(o->fd);
            o->fd = -1;
            if (o->line.len)
                emit_line(s, o, o->line.len);
        }
        break;
    }
}

/* After the child ended: takes what is still in the pipes, emits partial lines, closes both. */
static void close_streams(supervisor *s)
{
    for (int k = 0; k < 2; k++) {
        output_stream *o = &s->out[k];
        for (int i = 0; i < 64 && o->fd >= 0; i++)
            read_stream(s, o);
        if (o->fd >= 0) { /* a leftover holder keeps it open: stop reading anyway */
            close(o->fd);
            o->fd = -1;
        }
        if (o->line.len)
            emit_line(s, o, o->line.len);
        sb_free(&o->line);
        o->esc = ESC_NONE;
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

/* A pseudo-terminal for the child's stdout: the vendor writes its log with printf, which is
 * block-buffered on a pipe (lines arrive in 4 KiB bursts, the load progress jumps, and whatever is
 * buffered is lost when the runtime aborts or crashes) but line-buffered on a terminal. Raw mode
 * (no \n -> \r\n), a 200x50 window for progress bars. False if no pty is available (a pipe is
 * used then). */
static bool open_pty(int *master_fd, int *slave_fd)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return false;
    char name[128];
    int slave = -1;
    if (grantpt(master) == 0 && unlockpt(master) == 0 && ptsname_r(master, name, sizeof name) == 0)
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        close(master);
        return false;
    }
    struct termios tio;
    if (tcgetattr(slave, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(slave, TCSANOW, &tio);
    }
    struct winsize ws = {.ws_row = 50, .ws_col = 200};
    ioctl(master, TIOCSWINSZ, &ws);
    *master_fd = master;
    *slave_fd = slave;
    return true;
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
        set_err(err, errlen, msg);
        return false;
    }
    char *path = resolve_program(s->binary);
    if (!path) {
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: %s", s->binary, strerror(errno));
        set_err(err, errlen, sb.data);
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
    char **envp = build_environment((const char *const *)s->env);
    int pipes[2][2] = {{-1, -1}, {-1, -1}};
    pid_t pid = -1;
    if ((!open_pty(&pipes[0][0], &pipes[0][1]) && pipe2(pipes[0], O_CLOEXEC) != 0) ||
        pipe2(pipes[1], O_CLOEXEC) != 0) {
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: pipe: %s", s->binary, strerror(errno));
        set_err(err, errlen, sb.data);
        sb_free(&sb);
    } else {
        pid = spawn_process(s->binary, path, argv, envp, s->workdir, pipes[0][1], pipes[1][1], err, errlen);
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
    free_string_list(envp);
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
    describe_wait_status(status, how, sizeof how);
    strbuf sb = {0};
    sb_printf(&sb, "%s (%s)", what, how);
    if (s->last_error_line[0])
        sb_printf(&sb, ": %s", s->last_error_line);
    copy_text(msg, n, sb.data);
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
        s->kill_deadline = clock_mono() + KILL_WAIT_S;
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
        s->kill_deadline = now + KILL_WAIT_S;
    }
}

static void report_spawn(supervisor *s, bool ok, const char *err)
{
    if (ok)
        change_state(s, RT_LOADING, "", false, false, true);
    else
        change_state(s, RT_FAILED, err, true, false, true);
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

        if (s->child > 0) {
            if (stop && !s->stopping) {
                begin_stop(s, now);
            } else if (s->stopping && !s->killed && now >= s->stop_deadline) {
                signal_child_group(s, SIGKILL); /* ignored SIGINT, or hung */
                s->killed = true;
                s->kill_deadline = now + KILL_WAIT_S;
            } else if (!s->stopping && !s->killed && s->phase == PHASE_LOADING && now >= s->load_deadline) {
                signal_child_group(s, SIGKILL);
                s->killed = s->load_timed_out = true;
                s->kill_deadline = now + KILL_WAIT_S;
            }
            if (s->killed && now >= s->kill_deadline) {
                /* unkillable (stuck in the kernel): give up on it rather than hang */
                char msg[160];
                snprintf(msg, sizeof msg, "runtime (pid %d) did not end after SIGKILL; left behind", (int)s->child);
                close_streams(s);
                s->child = 0;
                pthread_mutex_lock(&s->lock);
                s->st.pid = 0;
                pthread_mutex_unlock(&s->lock);
                set_state(s, RT_FAILED, msg, true, false);
                break;
            }
        } else {
            if (s->phase == PHASE_DONE)
                break;
            if (stop) { /* waiting out a restart backoff */
                set_state(s, RT_STOPPED, NULL, true, false);
                break;
            }
            if (s->phase == PHASE_RESTART_WAIT && now >= s->restart_at) {
                pthread_mutex_lock(&s->lock);
                s->st.restarts++;
                pthread_mutex_unlock(&s->lock);
                if (!spawn_runtime(s, err, sizeof err)) {
                    set_state(s, RT_FAILED, err, true, false);
                    break;
                }
                set_state(s, RT_LOADING, NULL, false, false);
                continue;
            }
        }

        double wait_s = MONITOR_TICK_S;
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

        if (s->child > 0) {
            int status;
            pid_t r = waitpid(s->child, &status, WNOHANG);
            if (r < 0 && errno == ECHILD) /* SIGCHLD ignored: the kernel reaped it, status unknown */
                status = 0;
            if (r == s->child || (r < 0 && errno == ECHILD)) {
                handle_exit(s, status);
                continue;
            }
            now = clock_mono();
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
        }
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
        set_err(err, errlen, msg);
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
        set_err(err, errlen, msg);
        pthread_mutex_unlock(&s->control);
        return false;
    }

    /* The spawn outcome (the port check and exec take well under this). */
    pthread_mutex_lock(&s->lock);
    double end = clock_mono() + EXEC_REPORT_TIMEOUT_S + 2 * KILL_WAIT_S;
    while ((!s->spawn_reported || s->notified_seq != s->state_seq) && clock_mono() < end)
        wait_changed_until(s, end);
    bool reported = s->spawn_reported;
    bool ok = reported && s->spawn_ok;
    if (reported && !ok)
        set_err(err, errlen, s->spawn_error);
    pthread_mutex_unlock(&s->control);
    pthread_mutex_unlock(&s->lock);
    if (!reported) {
        set_err(err, errlen, "the runtime did not start in time");
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
            set_err(err, errlen, s->st.error[0] ? s->st.error : "the runtime is not running");
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
            set_err(err, errlen, msg);
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
    free_string_list(s->args);
    free_string_list(s->env);
    free(s->workdir);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->control);
    free(s);
}

/* ---- device detection ---- */

/* True if line has a PCI address token like "0001:01:00.0" (hex digits, two ':' then one '.'). */
static bool has_pci_address(const char *line)
{
    for (const char *p = line; *p; p++) {
        if (!isxdigit((unsigned char)*p) || (p > line && isxdigit((unsigned char)p[-1])))
            continue;
        int colons = 0, dots = 0, digits = 0;
        const char *q = p;
        for (; isxdigit((unsigned char)*q) || *q == ':' || *q == '.'; q++) {
            if (*q == ':')
                colons += dots == 0;
            else if (*q == '.')
                dots++;
            else
                digits++;
        }
        if (colons == 2 && dots == 1 && digits >= 4 && isxdigit((unsigned char)q[-1]))
            return true;
        p = q - 1;
    }
    return false;
}

/* Parses the card indices out of plain `axcl-smi` output into a sorted, comma-separated list ("" if
 * none). The heuristic: the device table is the one whose header row has both "Card" and
 * "Bus-Id"; its body starts after the "|===" rule and runs over "+---" borders (one per card, as
 * nvidia-smi-style tools print) until a blank line, a line that is not part of a table, or the
 * "Processes" table. A card row starts with "| <index>  <name>" and carries the card's PCI address
 * ("0001:01:00.0") in its Bus-Id cell; its second row ("|   --   41C ...") and the rows of the
 * Processes table (card index, then a PID, no PCI address) never match. Example (V3.10.2):
 *   | Card  Name                     Firmware | Bus-Id       |                          Memory-Usage |
 *   | Fan   Temp                Pwr:Usage/Cap | CPU      NPU |                             CMM-Usage |
 *   |=========================================+==============+=======================================|
 *   |    0  AX8850                    V3.10.2 | 0001:01:00.0 |                148 MiB /      945 MiB |
 *   |   --   41C                      -- / -- | 2%        0% |                 18 MiB /     7040 MiB |
 *   +-----------------------------------------+--------------+---------------------------------------+
 * These indices are what --devices takes (docs/spec/runtime-protocol.md §4.1). Not used: the "Device
 * ID : N" of `axcl-smi info --cmm` minus one (what one field tool did): N is a PCIe-style number
 * (driver logs say "device 1: dead" for card 0) and the minus one is a guess. */
static char *parse_card_indices(const char *text)
{
    bool seen_header = false, in_table = false;
    bool present[256] = {false};
    char *copy = xstrdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!in_table) {
            if (strstr(p, "Card") && strstr(p, "Bus-Id"))
                seen_header = true;
            else if (seen_header && !strncmp(p, "|=", 2))
                in_table = true;
            continue;
        }
        if ((*p != '|' && *p != '+') || strstr(p, "Processes") || strstr(p, "PID"))
            break; /* the device table ended */
        if (*p != '|')
            continue;
        p++;
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            continue;
        char *end;
        long card = strtol(p, &end, 10);
        if ((*end == ' ' || *end == '\t') && has_pci_address(end) && card >= 0 && card < 256)
            present[card] = true;
    }
    free(copy);
    strbuf out = {0};
    sb_puts(&out, "");
    for (int i = 0; i < 256; i++)
        if (present[i])
            sb_printf(&out, "%s%d", out.len ? "," : "", i);
    return sb_steal(&out);
}

/* Runs argv[0] (looked up in PATH) and returns its stdout (at most DETECT_OUTPUT_MAX bytes), or NULL
 * if it cannot run or does not finish within DETECT_TIMEOUT_S (it is killed then). */
static char *run_and_capture(char *const argv[])
{
    char *path = resolve_program(argv[0]);
    if (!path)
        return NULL;
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        free(path);
        return NULL;
    }
    char err[256];
    pid_t pid = spawn_process(argv[0], path, argv, environ, NULL, out[1], -1, err, sizeof err);
    close(out[1]);
    free(path);
    if (pid <= 0) {
        close(out[0]);
        return NULL;
    }
    strbuf text = {0};
    bool finished = false;
    double end = clock_mono() + DETECT_TIMEOUT_S;
    while (clock_mono() < end) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        int rc = poll(&pfd, 1, (int)((end - clock_mono()) * 1000) + 1);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            finished = true;
            break;
        }
        if (text.len < DETECT_OUTPUT_MAX)
            sb_append(&text, buf, (size_t)n);
    }
    close(out[0]);
    int status;
    if (!finished || !reap_within(pid, 1.0, &status)) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        reap_within(pid, KILL_WAIT_S, &status);
        finished = false;
    }
    if (!finished) {
        sb_free(&text);
        return NULL;
    }
    if (!text.data)
        sb_puts(&text, "");
    return sb_steal(&text);
}

char *supervisor_detect_devices(void)
{
    char *argv[] = {(char *)"axcl-smi", NULL};
    char *output = run_and_capture(argv);
    char *devices = output ? parse_card_indices(output) : NULL;
    free(output);
    if (!devices || !*devices) {
        free(devices);
        devices = xstrdup("0");
    }
    return devices;
}
