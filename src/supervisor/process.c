/* process: starting and ending child processes for the supervisor: finding the program in PATH, the
 * environment, fork + exec with a synchronous report of an exec failure (a CLOEXEC status pipe), the
 * child's clean start (own process group, SIGKILL as parent-death signal, default signals, no fd
 * but 0-2), a pseudo-terminal for its stdout, bounded reaping, and running a command to capture its
 * output. See process.h. */
#include "supervisor/process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/utf8.h"

extern char **environ;

/* Copies src into dst (size n > 0), cut at a UTF-8 character boundary if it does not fit. */
void process_copy_text(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        len = utf8_complete_prefix(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void process_set_error(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        process_copy_text(err, errlen, msg);
}

void process_free_strings(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

/* "status 3" or "killed by SIGABRT". */
void process_describe_status(int status, char *out, size_t n)
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
bool process_reap_within(pid_t pid, double timeout_s, int *status)
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
char *process_resolve(const char *name)
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
char **process_environment(const char *const *extra)
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
pid_t process_spawn(const char *shown, const char *path, char *const argv[], char *const envp[], const char *workdir,
                    int out_fd, int err_fd, char *err, size_t errlen)
{
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int report[2];
    if (null_fd < 0 || pipe2(report, O_CLOEXEC) != 0) {
        int e = errno;
        if (null_fd >= 0)
            close(null_fd);
        strbuf sb = {0};
        sb_printf(&sb, "cannot run %s: %s", shown, strerror(e));
        process_set_error(err, errlen, sb.data);
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
        process_set_error(err, errlen, sb.data);
        sb_free(&sb);
        return -1;
    }
    setpgid(pid, pid); /* also here, so the group exists before we could signal it */

    exec_report r = {0};
    size_t got = 0;
    bool timed_out = false;
    double end = clock_mono() + PROCESS_EXEC_REPORT_TIMEOUT_S;
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
    if (!process_reap_within(pid, PROCESS_KILL_WAIT_S, &status)) {
        kill(pid, SIGKILL);
        process_reap_within(pid, PROCESS_KILL_WAIT_S, &status);
    }
    strbuf sb = {0};
    if (timed_out)
        sb_printf(&sb, "cannot run %s: it did not start within %.0f s", shown, PROCESS_EXEC_REPORT_TIMEOUT_S);
    else if (got == sizeof r && r.stage == STAGE_CHDIR)
        sb_printf(&sb, "cannot run %s in %s: %s", shown, workdir ? workdir : ".", strerror(r.err));
    else if (got == sizeof r)
        sb_printf(&sb, "cannot run %s: %s", shown, strerror(r.err));
    else
        sb_printf(&sb, "cannot run %s: exec failed", shown);
    process_set_error(err, errlen, sb.data);
    sb_free(&sb);
    return -1;
}

/* A pseudo-terminal for the child's stdout: the vendor writes its log with printf, which is
 * block-buffered on a pipe (lines arrive in 4 KiB bursts, the load progress jumps, and whatever is
 * buffered is lost when the runtime aborts or crashes) but line-buffered on a terminal. Raw mode
 * (no \n -> \r\n), a 200x50 window for progress bars. False if no pty is available (a pipe is
 * used then). */
bool process_open_pty(int *master_fd, int *slave_fd)
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

char *process_run_and_capture(char *const argv[], double timeout_s, size_t max_bytes)
{
    char *path = process_resolve(argv[0]);
    if (!path)
        return NULL;
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        free(path);
        return NULL;
    }
    char err[256];
    pid_t pid = process_spawn(argv[0], path, argv, environ, NULL, out[1], -1, err, sizeof err);
    close(out[1]);
    free(path);
    if (pid <= 0) {
        close(out[0]);
        return NULL;
    }
    strbuf text = {0};
    bool finished = false;
    double end = clock_mono() + timeout_s;
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
        if (text.len < max_bytes)
            sb_append(&text, buf, (size_t)n);
    }
    close(out[0]);
    int status;
    if (!finished || !process_reap_within(pid, 1.0, &status)) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        process_reap_within(pid, PROCESS_KILL_WAIT_S, &status);
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
