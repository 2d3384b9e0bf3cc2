/* proc_watch: what the fault tests of `axllama serve` read about its process from /proc: open file
 * descriptors, threads, resident memory, zombie children, the tokenizer service's port (from the
 * runtime's command line); and a streaming request on its own thread that notes when its first bytes
 * and its end arrived. */
#ifndef AXLLAMA_TESTS_PROC_WATCH_H
#define AXLLAMA_TESTS_PROC_WATCH_H

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "serve_harness.h"

/* Entries of /proc/<pid>/<sub> (fd: open descriptors; task: threads). */
static inline size_t pw_count_entries(pid_t pid, const char *sub)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, sub);
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static inline size_t pw_fds(pid_t pid)
{
    return pw_count_entries(pid, "fd");
}

static inline size_t pw_threads(pid_t pid)
{
    return pw_count_entries(pid, "task");
}

/* A "Vm...:" line of /proc/<pid>/status in kB (VmRSS, VmHWM); 0 if unknown. */
static inline long pw_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

/* Children of parent in state Z (exited, never reaped). */
static inline size_t pw_zombies(pid_t parent)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    size_t n = 0;
    while (d && (de = readdir(d))) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close_paren = strrchr(buf, ')');
        char st = 0;
        int ppid = 0;
        if (close_paren && sscanf(close_paren + 2, "%c %d", &st, &ppid) == 2 && ppid == parent && st == 'Z')
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* The port of the tokenizer service the runtime pid was pointed at (--url_tokenizer_model); 0 if
 * unknown. */
static inline int pw_tokenizer_port(pid_t runtime)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)runtime);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    int port = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        if (!strcmp(buf + i, "--url_tokenizer_model") && i + strlen(buf + i) + 1 < len) {
            const char *url = buf + i + strlen(buf + i) + 1;
            const char *colon = strrchr(url, ':');
            port = colon ? atoi(colon + 1) : 0;
        }
    return port;
}

/* A streaming POST on its own thread: body text as it arrives, the status, and when (h_now) the
 * first bytes and the end came. */
typedef struct {
    int port;
    const char *path;
    char *body; /* the request (owned) */
    double timeout_s;
    pthread_t thread;
    strbuf got;
    long status;
    CURLcode rc;
    double t_start;
    _Atomic double t_first; /* 0 until the first bytes */
    double t_end;
} pw_stream;

static inline size_t pw_stream_collect(char *data, size_t size, size_t n, void *user)
{
    pw_stream *s = user;
    if (atomic_load(&s->t_first) == 0)
        atomic_store(&s->t_first, h_now());
    sb_append(&s->got, data, size * n);
    return size * n;
}

static inline void *pw_stream_main(void *arg)
{
    pw_stream *s = arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, s->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(s->timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pw_stream_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    s->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
    curl_easy_cleanup(c);
    s->t_end = h_now();
    if (!s->got.data)
        sb_puts(&s->got, "");
    return NULL;
}

static inline void pw_stream_start(pw_stream *s, int port, const char *path, const char *body, double timeout_s)
{
    memset(s, 0, sizeof *s);
    s->port = port;
    s->path = path;
    s->body = xstrdup(body);
    s->timeout_s = timeout_s;
    s->t_start = h_now();
    atomic_init(&s->t_first, 0.0);
    pthread_create(&s->thread, NULL, pw_stream_main, s);
}

/* Waits (at most timeout_s) for the stream's first bytes. */
static inline bool pw_stream_wait_first(pw_stream *s, double timeout_s)
{
    for (double end = h_now() + timeout_s; h_now() < end; h_sleep(0.01))
        if (atomic_load(&s->t_first) > 0)
            return true;
    return false;
}

static inline void pw_stream_join(pw_stream *s)
{
    pthread_join(s->thread, NULL);
    free(s->body);
    s->body = NULL;
}

static inline void pw_stream_free(pw_stream *s)
{
    sb_free(&s->got);
}

/* The last line of an NDJSON body, parsed (NULL if none or not JSON). */
static inline json_t *pw_last_line(const strbuf *body)
{
    const char *s = body->data ? body->data : "";
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '\n')
        n--;
    size_t start = n;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    return n > start ? json_loadb(s + start, n - start, 0, NULL) : NULL;
}

#endif
