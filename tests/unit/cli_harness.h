/* cli_harness: what the tests of the `axllama` client commands share: `axllama serve` on
 * axllama-emu with a few models (echo, plain, slow, loady) for the whole group, a fake server with
 * canned /api/chat answers that keeps the request bodies, the CLI run with pipes (run_cli_*) or in
 * a pseudo-terminal (pty_*), and the runtime's KV cache reports from the server log. */
#ifndef AXLLAMA_TESTS_CLI_HARNESS_H
#define AXLLAMA_TESTS_CLI_HARNESS_H

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <cmocka.h>

#include "net/http_server.h"
#include "serve_harness.h"

static h_server srv;

/* HOME of the sessions in a pseudo-terminal (their ~/.axllama/history), made by group_setup. */
static char pty_home[64];

/* Removes pty_home's history and the directories (what a session can create there). */
static inline void pty_home_clean(void)
{
    static const char *const files[] = {"/.axllama/history", "/.axllama/history.tmp"};
    char path[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s%s", pty_home, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/.axllama", pty_home);
    rmdir(path);
}

/* ---- a fake server: canned /api/chat answers (thinking, stream errors: an error line for model
 * "broken", a 503 with a text body for "busy", a line that is not JSON for "garbage", HTML for "html"), request
 * bodies kept ---- */

static http_server *fake;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *fake_requests; /* every /api/chat body with messages, in order */

static inline http_response *fake_chat(const http_request *req, void *user)
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
        } else if (model && !strcmp(model, "busy")) { /* an error status with a text body */
            json_decref(body);
            return http_response_static(503, HTTP_CONTENT_TYPE_TEXT, "Server busy, try later\n");
        } else if (model && !strcmp(model, "garbage")) { /* a 200 stream that is not NDJSON */
            sb_printf(&out, "%s\"content\":\"fine\"},\"done\":false}\nnot json at all\n", head);
        } else if (model && !strcmp(model, "html")) { /* a 200 answer that is not NDJSON at all */
            sb_puts(&out, "<html>a captive portal</html>\n");
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

static inline bool fake_start(void)
{
    static const http_route routes[] = {{.method = "POST", .path = "/api/chat", .handler = fake_chat}};
    http_server_config cfg = {.host = "127.0.0.1", .port = 0, .routes = routes, .n_routes = 1};
    char err[256];
    fake_requests = json_array();
    fake = http_server_start(&cfg, err, sizeof err);
    return fake != NULL;
}

/* The i-th recorded request (borrowed), or NULL. */
static inline json_t *fake_request(size_t i)
{
    pthread_mutex_lock(&fake_lock);
    json_t *r = json_array_get(fake_requests, i);
    pthread_mutex_unlock(&fake_lock);
    return r;
}

static inline size_t fake_count(void)
{
    pthread_mutex_lock(&fake_lock);
    size_t n = json_array_size(fake_requests);
    pthread_mutex_unlock(&fake_lock);
    return n;
}

static inline int group_setup(void **state)
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
    strcpy(pty_home, "/tmp/axllama-home-XXXXXX");
    if (!mkdtemp(pty_home))
        return -1;
    return h_server_start(&srv, NULL) && fake_start() ? 0 : -1;
}

static inline int group_teardown(void **state)
{
    (void)state;
    h_server_stop(&srv);
    pty_home_clean();
    rmdir(pty_home);
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

static inline void cli_free(cli_result *r)
{
    sb_free(&r->out);
    sb_free(&r->err);
}

/* `axllama ARGS...` with OLLAMA_HOST=host, the extra environment env ("NAME=value" entries,
 * NULL-terminated; may be NULL) and stdin_text on stdin (NULL: nothing, closed). */
static inline cli_result run_cli_env(const char *host, const char *const *env, const char *stdin_text,
                                     const char *const *args)
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
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
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

/* `axllama ARGS...` with OLLAMA_HOST=host and stdin_text on stdin (NULL: nothing, closed). */
static inline cli_result run_cli_host(const char *host, const char *stdin_text, const char *const *args)
{
    return run_cli_env(host, NULL, stdin_text, args);
}

static inline cli_result run_cli_at(int port, const char *stdin_text, const char *const *args)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    return run_cli_host(host, stdin_text, args);
}

#define CLI(stdin_text, ...) run_cli_at(srv.port, stdin_text, (const char *const[]){__VA_ARGS__, NULL})
#define FAKE_CLI(stdin_text, ...) \
    run_cli_at(http_server_port(fake), stdin_text, (const char *const[]){__VA_ARGS__, NULL})

/* ---- a session in a pseudo-terminal ---- */

typedef struct {
    int master;
    pid_t pid;
    strbuf out;  /* everything the terminal showed */
    size_t mark; /* pty_expect searches from here */
    int status;  /* exit status once reaped, else -1 */
} pty_session;

static inline bool pty_start_at(pty_session *p, int port, const char *const *args)
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
        setenv("HOME", pty_home, 1); /* the session's history goes there */
        setenv("TERM", "xterm", 1);  /* the line editor's key and screen sequences */
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

static inline bool pty_start(pty_session *p, const char *const *args)
{
    return pty_start_at(p, srv.port, args);
}

/* Reads what is there (waiting up to wait_s for something). False at EOF. */
static inline bool pty_read(pty_session *p, double wait_s)
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
static inline bool pty_expect(pty_session *p, const char *needle, double timeout_s)
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

static inline void pty_send(pty_session *p, const char *s)
{
    ssize_t w = write(p->master, s, strlen(s));
    (void)w;
}

/* Writes all of s to the terminal while reading what it shows meanwhile (a long input is echoed as
 * it is read: a writer that does not read could block the session and itself). False when the
 * terminal stopped taking input for 10 s. */
static inline bool pty_send_all(pty_session *p, const char *s)
{
    size_t len = strlen(s), off = 0;
    double end = h_now() + 10;
    while (off < len && h_now() < end) {
        struct pollfd pfd = {.fd = p->master, .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        if (pfd.revents & POLLIN)
            pty_read(p, 0);
        if (pfd.revents & POLLOUT) {
            size_t chunk = len - off < 256 ? len - off : 256;
            ssize_t w = write(p->master, s + off, chunk);
            if (w > 0) {
                off += (size_t)w;
                end = h_now() + 10;
            }
        }
    }
    return off == len;
}

/* Waits for the exit (reading the terminal meanwhile); the exit status or -1. */
static inline int pty_wait(pty_session *p, double timeout_s)
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

static inline void pty_close(pty_session *p)
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
static inline long last_prompt_eval_count(const char *text)
{
    long n = -1;
    const char *key = "prompt eval count:";
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key))
        n = strtol(p + strlen(key), NULL, 10);
    return n;
}

/* The runtime logs "[GetKVCache]...: precompute_len:N, remaining:M" at the end of every generation:
 * N is the length of its KV cache. How many such lines the server log has, and the last N. */
static inline size_t kv_reports(long *last)
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
static inline long wait_kv_report(size_t *seen, double timeout_s)
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

#define LONG_MSG                                                                                                 \
    "Alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec " \
    "romeo sierra tango uniform victor whiskey xray yankee zulu"

#endif
