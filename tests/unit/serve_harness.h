/* serve_harness: what the end-to-end tests of `axllama serve` share: a temporary models directory
 * with manifests that run build/axllama-emu, the server started as a child process on a free port
 * (its log in a file), and HTTP helpers for streamed NDJSON answers. Header-only. */
#ifndef AXLLAMA_TESTS_SERVE_HARNESS_H
#define AXLLAMA_TESTS_SERVE_HARNESS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "emu_harness.h"

typedef struct {
    char dir[64]; /* models directory */
    pid_t pid;
    int port;
    char log_path[64];
    bool exited;
    int status;
} h_server;

/* Children of pid whose command name is comm (e.g. "axllama" for the upstream, "axllama-emu"). */
static inline size_t h_children_named(pid_t parent, const char *comm, pid_t *first)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    size_t n = 0;
    char want[64];
    snprintf(want, sizeof want, "(%s)", comm);
    while (d && (de = readdir(d))) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close = strrchr(buf, ')');
        char st = 0;
        int ppid = 0;
        if (strncmp(strchr(buf, '(') ? strchr(buf, '(') : "", want, strlen(want)) == 0 && close &&
            sscanf(close + 2, "%c %d", &st, &ppid) == 2 && ppid == parent && st != 'Z') {
            if (first && !n)
                *first = pid;
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* The emulator child of the server (0 if none). */
static inline pid_t h_runtime_pid(const h_server *s)
{
    pid_t pid = 0;
    h_children_named(s->pid, "axllama-emu", &pid);
    return pid;
}

/* How many ids the tokenizer gives text (the exact counts the server must report). */
static inline size_t h_n_ids(const tokenizer *tok, const char *text)
{
    idvec ids = {0};
    tokenizer_encode(tok, text, strlen(text), &ids);
    size_t n = ids.len;
    iv_free(&ids);
    return n;
}

static inline const char *h_build_dir(void)
{
    const char *b = getenv("AXLLAMA_BUILD");
    return b ? b : "build";
}

/* Writes DIR/NAME.json: a model NAME running axllama-emu (fast profile, free port) with the extra
 * emulator args (NULL-terminated, may be NULL) and extra top-level manifest JSON members
 * (e.g. "\"context\": {\"max_prefill\": 512}"; may be NULL). */
/* The system block of the manifests' default system prompt (Qwen's), as the runtime prefills it
 * after a reset: prompt_eval_count counts it. */
#define H_QWEN_SYSTEM_BLOCK \
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"

static inline void h_write_manifest(const char *dir, const char *name, const char *const *emu_args, const char *extra)
{
    strbuf args = {0};
    sb_puts(&args, "\"--emu-profile\", \"fast\", \"--emu-port\", \"{port}\"");
    for (size_t i = 0; emu_args && emu_args[i]; i++) {
        json_t *s = json_string(emu_args[i]);
        char *q = json_dumps(s, JSON_ENCODE_ANY);
        sb_printf(&args, ", %s", q);
        free(q);
        json_decref(s);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    for (char *p = path + strlen(dir) + 1; *p; p++)
        if (*p == ':')
            *p = '_';
    FILE *f = fopen(path, "w");
    fprintf(f,
            "{\"name\": \"%s\", \"runtime\": {\"binary\": \"%s/axllama-emu\", \"args\": [%s], \"port\": 0, "
            "\"devices\": \"0\", \"load_timeout\": 20}, \"tokenizer\": \"%s\", \"tokenizer_port\": 0%s%s}\n",
            name, h_build_dir(), args.data, getenv("AXLLAMA_TOKENIZER_DIR"), extra ? ", " : "", extra ? extra : "");
    fclose(f);
    sb_free(&args);
}

static inline bool h_server_wait_log(h_server *s, const char *needle, double timeout_s)
{
    h_emu view = {.pid = s->pid};
    strcpy(view.log_path, s->log_path);
    view.exited = s->exited;
    bool ok = h_emu_wait_log(&view, needle, timeout_s);
    s->exited = view.exited;
    s->status = view.status;
    return ok;
}

static inline char *h_server_log(const h_server *s)
{
    h_emu view = {0};
    strcpy(view.log_path, s->log_path);
    return h_emu_log(&view);
}

/* Starts `axllama serve` on a free port with AXLLAMA_MODELS = s->dir (create it and write manifests
 * first with h_server_dir) and extra environment (NULL-terminated "K=V" list, may be NULL). */
static inline bool h_server_start(h_server *s, const char *const *env)
{
    s->port = h_free_port();
    strcpy(s->log_path, "/tmp/axllama-serve-log-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0)
        return false;
    char prog[512], host[64], models[128];
    snprintf(prog, sizeof prog, "%s/axllama", h_build_dir());
    snprintf(host, sizeof host, "OLLAMA_HOST=127.0.0.1:%d", s->port);
    snprintf(models, sizeof models, "AXLLAMA_MODELS=%s", s->dir);
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        putenv(host);
        putenv(models);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        char *argv[] = {prog, "serve", NULL};
        execv(prog, argv);
        _exit(127);
    }
    close(fd);
    s->exited = false;
    return s->pid > 0 && h_server_wait_log(s, "Listening on", 10.0);
}

static inline void h_server_dir(h_server *s)
{
    memset(s, 0, sizeof *s);
    strcpy(s->dir, "/tmp/axllama-models-XXXXXX");
    if (!mkdtemp(s->dir))
        s->dir[0] = '\0';
}

/* SIGTERM, wait (bounded), SIGKILL if needed; removes the models dir and the log. Returns the
 * wait status. */
static inline int h_server_stop(h_server *s)
{
    if (s->pid > 0 && !s->exited) {
        kill(s->pid, SIGTERM);
        double end = h_now() + 20;
        while (h_now() < end) {
            if (waitpid(s->pid, &s->status, WNOHANG) == s->pid) {
                s->exited = true;
                break;
            }
            h_sleep(0.01);
        }
        if (!s->exited) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &s->status, 0);
            s->exited = true;
        }
    }
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", s->dir, de->d_name);
            unlink(path);
        }
        closedir(d);
        rmdir(s->dir);
    }
    unlink(s->log_path);
    return s->status;
}

static inline h_http h_srv(const h_server *s, const char *method, const char *path, const char *body)
{
    return h_request_to(s->port, method, path, body, 60.0);
}

/* Splits an NDJSON body into parsed lines (json_t*, caller json_decref each and frees the array).
 * A blank line or a line that is not JSON makes it return NULL. */
static inline json_t **h_ndjson(const char *body, size_t *n)
{
    *n = 0;
    size_t cap = 16;
    json_t **lines = xcalloc(cap, sizeof *lines);
    const char *p = body;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_t *v = len ? json_loadb(p, len, 0, NULL) : NULL;
        if (!v) {
            for (size_t i = 0; i < *n; i++)
                json_decref(lines[i]);
            free(lines);
            *n = 0;
            return NULL;
        }
        if (*n == cap)
            lines = xrealloc(lines, (cap *= 2) * sizeof *lines);
        lines[(*n)++] = v;
        p += len + (nl ? 1 : 0);
    }
    return lines;
}

static inline void h_ndjson_free(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
    free(lines);
}

/* Concatenation of a string member (e.g. "response") or message.content over all lines. */
static inline char *h_join(json_t **lines, size_t n, const char *outer, const char *key)
{
    strbuf sb = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *obj = outer ? json_object_get(lines[i], outer) : lines[i];
        const char *v = json_string_value(json_object_get(obj, key));
        if (v)
            sb_puts(&sb, v);
    }
    return sb_steal(&sb);
}

#endif
