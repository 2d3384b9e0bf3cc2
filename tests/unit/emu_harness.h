/* emu_harness: what the emulator's tests share: axllama's tokenizer service in-process (recording
 * every request the emulator makes), build/axllama-emu started as a child process with its output in
 * a file, and a small HTTP client. Header-only (static functions) so each test file stays alone. */
#ifndef AXLLAMA_TESTS_EMU_HARNESS_H
#define AXLLAMA_TESTS_EMU_HARNESS_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "tokenizer/tokenizer.h"
#include "tokensvc/tokensvc.h"

/* ---- clock ---- */

static inline double h_now(void)
{
    return clock_mono();
}

static inline void h_sleep(double s)
{
    clock_sleep(s);
}

/* ---- the tokenizer service, recording the emulator's traffic ---- */

typedef struct {
    char *method;
    char *path; /* with ?uid= for bos_id / eos_id */
    char *body;
} h_request;

typedef struct {
    tokenizer *tok;
    tok_service *svc;
    pthread_mutex_t lock;
    h_request *reqs;
    size_t n_reqs, cap_reqs;
} h_tokenizer;

static void h_record(void *user, const char *method, const char *path, const char *body, size_t len)
{
    h_tokenizer *t = user;
    pthread_mutex_lock(&t->lock);
    if (t->n_reqs == t->cap_reqs) {
        t->cap_reqs = t->cap_reqs ? 2 * t->cap_reqs : 64;
        t->reqs = xrealloc(t->reqs, t->cap_reqs * sizeof *t->reqs);
    }
    t->reqs[t->n_reqs++] = (h_request){xstrdup(method), xstrdup(path), xstrndup(body, len)};
    pthread_mutex_unlock(&t->lock);
}

/* Loads the Qwen3 tokenizer (AXLLAMA_TOKENIZER_DIR) once per process and starts a service on an
 * ephemeral port. Returns false (with a message on stderr) if it cannot. */
static inline bool h_tokenizer_start(h_tokenizer *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    char err[512];
    t->tok = dir ? tokenizer_load(dir, err, sizeof err) : NULL;
    if (!t->tok) {
        fprintf(stderr, "cannot load the tokenizer (AXLLAMA_TOKENIZER_DIR=%s): %s\n", dir ? dir : "(unset)",
                dir ? err : "");
        return false;
    }
    tok_service_config cfg = {.tok = t->tok, .on_request = h_record, .user = t};
    t->svc = tok_service_start(&cfg, err, sizeof err);
    if (!t->svc)
        fprintf(stderr, "cannot start the tokenizer service: %s\n", err);
    return t->svc != NULL;
}

static inline void h_tokenizer_stop(h_tokenizer *t)
{
    tok_service_stop(t->svc);
    tokenizer_free(t->tok);
    for (size_t i = 0; i < t->n_reqs; i++) {
        free(t->reqs[i].method);
        free(t->reqs[i].path);
        free(t->reqs[i].body);
    }
    free(t->reqs);
    pthread_mutex_destroy(&t->lock);
    memset(t, 0, sizeof *t);
}

static inline void h_tokenizer_forget(h_tokenizer *t)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_reqs; i++) {
        free(t->reqs[i].method);
        free(t->reqs[i].path);
        free(t->reqs[i].body);
    }
    t->n_reqs = 0;
    pthread_mutex_unlock(&t->lock);
}

/* Number of recorded requests whose path starts with prefix (e.g. "/decode"). */
static inline size_t h_count(h_tokenizer *t, const char *prefix)
{
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_reqs; i++)
        n += !strncmp(t->reqs[i].path, prefix, strlen(prefix));
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Copy of the body of the k-th (0-based) recorded request with that path prefix; NULL if none. */
static inline char *h_body(h_tokenizer *t, const char *prefix, size_t k)
{
    char *out = NULL;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_reqs && !out; i++)
        if (!strncmp(t->reqs[i].path, prefix, strlen(prefix)) && k-- == 0)
            out = xstrdup(t->reqs[i].body);
    pthread_mutex_unlock(&t->lock);
    return out;
}

/* ---- the emulator process ---- */

typedef struct {
    pid_t pid;
    int port;
    char log_path[64];
    char err_path[64]; /* stderr's own file when spawned with split_stderr; "" otherwise */
    int status;        /* after h_emu_wait */
    bool exited;
} h_emu;

/* What h_emu_spawn_opts can change about the child besides its arguments. */
typedef struct {
    const char *cwd;      /* working directory (NULL: the test's own) */
    const char *emu_args; /* AXLLAMA_EMU_ARGS of the child (NULL: inherited as is) */
    bool split_stderr;    /* stderr into its own file (h_emu_stderr) instead of the log */
} h_spawn_opts;

/* Reads the whole log with ANSI colour codes removed. Caller frees. */
static inline char *h_emu_log(const h_emu *e)
{
    FILE *f = fopen(e->log_path, "rb");
    strbuf sb = {0};
    if (f) {
        int c;
        while ((c = fgetc(f)) != EOF) {
            if (c == 0x1b) { /* ESC [ ... m */
                while ((c = fgetc(f)) != EOF && c != 'm') {
                }
                continue;
            }
            sb_putc(&sb, (char)c);
        }
        fclose(f);
    }
    return sb_steal(&sb);
}

static inline bool h_emu_log_has(const h_emu *e, const char *needle)
{
    char *log = h_emu_log(e);
    bool found = strstr(log, needle) != NULL;
    free(log);
    return found;
}

/* Waits up to timeout_s for needle in the log; false on timeout or if the process died. */
static inline bool h_emu_wait_log(h_emu *e, const char *needle, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (h_now() < end) {
        if (h_emu_log_has(e, needle))
            return true;
        int st;
        if (!e->exited && waitpid(e->pid, &st, WNOHANG) == e->pid) {
            e->exited = true;
            e->status = st;
        }
        if (e->exited)
            return h_emu_log_has(e, needle);
        h_sleep(0.005);
    }
    return false;
}

/* Starts build/axllama-emu with argv (NULL-terminated, without the program name) and the given
 * options (NULL: none). Unless ready is false, waits for "Server running on port N..." and sets
 * e->port. The caller passes every flag (use h_emu_start_fast for the usual set). Returns false if
 * it did not get that far. */
static inline bool h_emu_spawn_opts(h_emu *e, const char *const *args, bool ready, double timeout_s,
                                    const h_spawn_opts *opts)
{
    static const h_spawn_opts no_opts = {0};
    if (!opts)
        opts = &no_opts;
    memset(e, 0, sizeof *e);
    strcpy(e->log_path, "/tmp/axllama-emu-test-XXXXXX");
    int fd = mkstemp(e->log_path);
    if (fd < 0)
        return false;
    int err_fd = fd;
    if (opts->split_stderr) {
        strcpy(e->err_path, "/tmp/axllama-emu-test-err-XXXXXX");
        err_fd = mkstemp(e->err_path);
        if (err_fd < 0) {
            e->err_path[0] = '\0';
            close(fd);
            return false;
        }
    }
    const char *build = getenv("AXLLAMA_BUILD");
    char prog[PATH_MAX], given[PATH_MAX];
    snprintf(given, sizeof given, "%s/axllama-emu", build ? build : "build");
    if (!realpath(given, prog)) /* absolute, so that a cwd option does not change it */
        snprintf(prog, sizeof prog, "%s", given);
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = xcalloc(n + 2, sizeof *argv);
    argv[0] = prog;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    e->pid = fork();
    if (e->pid == 0) {
        dup2(fd, 1);
        dup2(err_fd, 2);
        close(fd);
        if (err_fd != fd)
            close(err_fd);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (opts->cwd && chdir(opts->cwd) != 0)
            _exit(126);
        if (opts->emu_args)
            setenv("AXLLAMA_EMU_ARGS", opts->emu_args, 1);
        struct rlimit no_core = {0, 0}; /* the fault tests abort() on purpose */
        setrlimit(RLIMIT_CORE, &no_core);
        execv(prog, argv);
        _exit(127);
    }
    close(fd);
    if (err_fd != fd)
        close(err_fd);
    free(argv);
    if (e->pid < 0)
        return false;
    if (!ready)
        return true;
    if (!h_emu_wait_log(e, "Server running on port ", timeout_s))
        return false;
    char *log = h_emu_log(e);
    const char *at = strstr(log, "Server running on port ");
    e->port = at ? atoi(at + strlen("Server running on port ")) : 0;
    free(log);
    return e->port > 0 && !e->exited;
}

static inline bool h_emu_spawn(h_emu *e, const char *const *args, bool ready, double timeout_s)
{
    return h_emu_spawn_opts(e, args, ready, timeout_s, NULL);
}

/* The child's stderr (spawned with split_stderr), as written. Caller frees. */
static inline char *h_emu_stderr(const h_emu *e)
{
    strbuf sb = {0};
    FILE *f = e->err_path[0] ? fopen(e->err_path, "rb") : NULL;
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            sb_append(&sb, chunk, n);
        fclose(f);
    }
    if (!sb.data)
        sb_puts(&sb, "");
    return sb_steal(&sb);
}

/* The usual emulator: AXCL mode, --devices 0, fast profile, any free port, our tokenizer service,
 * plus extra args (NULL-terminated list, may be NULL). */
static inline bool h_emu_start_fast(h_emu *e, h_tokenizer *t, const char *const *extra)
{
    static char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)tok_service_port(t->svc));
    const char *args[64] = {"--devices", "0", "--emu-profile", "fast", "--emu-port", "0", "--url_tokenizer_model", url};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i] && n < 63; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return h_emu_spawn(e, args, true, 10.0);
}

/* Waits up to timeout_s for the process to end; true if it did (e->status set). */
static inline bool h_emu_wait(h_emu *e, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (!e->exited && h_now() < end) {
        int st;
        if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
            e->exited = true;
            e->status = st;
            break;
        }
        h_sleep(0.005);
    }
    return e->exited;
}

/* Kills (if still running), reaps and removes the log. */
static inline void h_emu_kill(h_emu *e)
{
    if (e->pid > 0 && !e->exited) {
        kill(e->pid, SIGKILL);
        waitpid(e->pid, &e->status, 0);
        e->exited = true;
    }
    if (e->log_path[0])
        unlink(e->log_path);
    if (e->err_path[0])
        unlink(e->err_path);
}

/* A TCP port on 127.0.0.1 that nothing listens on right now (bound to port 0, then closed). */
static inline int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* True if a TCP connection to 127.0.0.1:port is accepted (by the kernel) within timeout_s. */
static inline bool h_tcp_connects(int port, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t len = sizeof soerr;
        ok = poll(&pfd, 1, (int)(timeout_s * 1000)) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
             soerr == 0;
    }
    close(fd);
    return ok;
}

/* ---- HTTP client ---- */

typedef struct {
    long status; /* 0: no answer (connection failed or timed out) */
    strbuf body;
    strbuf headers;
} h_http;

static size_t h_collect(char *data, size_t size, size_t n, void *user)
{
    sb_append(user, data, size * n);
    return size * n;
}

/* method "GET", "POST", "OPTIONS", ...; body NULL = none. */
static inline h_http h_request_to(int port, const char *method, const char *path, const char *body, double timeout_s)
{
    h_http r = {0};
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    if (!r.body.data)
        sb_puts(&r.body, "");
    if (!r.headers.data)
        sb_puts(&r.headers, "");
    return r;
}

static inline h_http h_get(const h_emu *e, const char *path)
{
    return h_request_to(e->port, "GET", path, NULL, 10.0);
}

static inline h_http h_post(const h_emu *e, const char *path, const char *body)
{
    return h_request_to(e->port, "POST", path, body, 60.0);
}

static inline void h_http_free(h_http *r)
{
    sb_free(&r->body);
    sb_free(&r->headers);
}

/* Polls /api/generate_provider the way a careful driver does (ignoring done:true until the run was
 * seen to start or text came) and returns all text; timeout_s bounds the whole wait. */
static inline char *h_collect_generation(const h_emu *e, double timeout_s)
{
    strbuf text = {0};
    bool started = false;
    double end = h_now() + timeout_s;
    while (h_now() < end) {
        h_http r = h_get(e, "/api/generate_provider");
        bool done = strstr(r.body.data, "\"done\":true") != NULL;
        const char *resp = strstr(r.body.data, "\"response\":\"");
        if (resp) {
            /* the tests' replies contain no escapes other than \n */
            resp += strlen("\"response\":\"");
            const char *close = strrchr(resp, '"');
            for (const char *p = resp; close && p < close; p++) {
                if (p[0] == '\\' && p[1] == 'n') {
                    sb_putc(&text, '\n');
                    p++;
                } else {
                    sb_putc(&text, *p);
                }
            }
            if (close && close > resp)
                started = true;
        }
        if (!done)
            started = true;
        h_http_free(&r);
        if (done && started)
            break;
        h_sleep(0.002);
    }
    return sb_steal(&text);
}

/* ---- API / state-machine helpers (parsed answers, recorded ids, log counts, CPU time) ---- */

/* Value of the response header name (case-insensitive) without the line end; NULL if absent.
 * Caller frees. */
static inline char *h_header(const h_http *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = r->headers.data; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > n && !strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1;
            const char *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' '))
                end--;
            return xstrndup(v, (size_t)(end - v));
        }
        line = eol ? eol + 1 : line + len;
    }
    return NULL;
}

/* Number of occurrences of needle in the log. */
static inline size_t h_emu_log_count(const h_emu *e, const char *needle)
{
    char *log = h_emu_log(e);
    size_t n = 0;
    for (const char *p = strstr(log, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    free(log);
    return n;
}

/* Waits up to timeout_s until needle occurs at least count times in the log. */
static inline bool h_emu_wait_log_count(h_emu *e, const char *needle, size_t count, double timeout_s)
{
    double end = h_now() + timeout_s;
    for (;;) {
        if (h_emu_log_count(e, needle) >= count)
            return true;
        if (h_now() >= end)
            return false;
        h_sleep(0.003);
    }
}

/* One GET /api/generate_provider: the response text (caller frees) and *done; NULL unless the
 * answer was 200 with exactly the keys done (bool) and response (string). */
static inline char *h_poll(const h_emu *e, bool *done)
{
    h_http r = h_get(e, "/api/generate_provider");
    char *text = NULL;
    json_t *j = r.status == 200 ? json_loads(r.body.data, 0, NULL) : NULL;
    json_t *d = json_object_get(j, "done"), *resp = json_object_get(j, "response");
    if (json_is_boolean(d) && json_is_string(resp) && json_object_size(j) == 2) {
        *done = json_is_true(d);
        text = xstrndup(json_string_value(resp), json_string_length(resp));
    }
    json_decref(j);
    h_http_free(&r);
    return text;
}

/* Polls (2 ms apart) until an answer says done:true; returns all text received on the way,
 * including that last answer's. NULL on timeout or on a malformed answer. */
static inline char *h_poll_until_done(const h_emu *e, double timeout_s)
{
    strbuf all = {0};
    sb_puts(&all, "");
    double end = h_now() + timeout_s;
    while (h_now() < end) {
        bool done = false;
        char *text = h_poll(e, &done);
        if (!text)
            break;
        sb_puts(&all, text);
        free(text);
        if (done)
            return sb_steal(&all);
        h_sleep(0.002);
    }
    sb_free(&all);
    return NULL;
}

/* The token_ids of the k-th (0-based) recorded request whose path starts with prefix, appended to
 * out; false if there is no such request or its token_ids is not a list of integers. */
static inline bool h_body_ids(h_tokenizer *t, const char *prefix, size_t k, idvec *out)
{
    char *body = h_body(t, prefix, k);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    json_t *ids = json_object_get(j, "token_ids");
    bool ok = json_is_array(ids);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_integer(v)) {
            ok = false;
            break;
        }
        iv_push(out, (int32_t)json_integer_value(v));
    }
    json_decref(j);
    free(body);
    return ok;
}

/* CPU time (user + system) the process pid has used so far, in seconds, from /proc/PID/stat;
 * negative if it cannot be read. */
static inline double h_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

#endif
