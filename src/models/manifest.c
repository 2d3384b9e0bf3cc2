/* manifest: the model manifest file format (one JSON file per model): strict validation naming the
 * file and the key, defaults, paths resolved against the manifest's directory, the sha256 digest
 * (OpenSSL's libcrypto, EVP), and the built-in emulator model's manifest. The format is documented
 * in models/manifest.h and docs/models.md. */
#include "models/manifest.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json_type.h"

#define MANIFEST_MAX_BYTES (1024 * 1024)
#define DEFAULT_RUNTIME_PORT 8000
#define DEFAULT_TOKENIZER_PORT 12345
#define DEFAULT_MAX_PREFILL 2048
#define DEFAULT_MAX_POSITIONS 2559
#define DEFAULT_LOAD_TIMEOUT_S 300.0
#define DEFAULT_UPSTREAM_START_TIMEOUT_S 60.0

#define BUILTIN_NAME "qwen3-emu:latest"
#define BUILTIN_DESCRIPTION                                                                      \
    "axllama built-in model qwen3-emu:latest: axllama-emu --emu-profile fast, Qwen3 tokenizer, " \
    "qwen3 chat template, context 2048/2559"
/* Qwen3-4B w8a16's NPU memory on a Pi 5 + M.2 card (docs/spec/runtime-protocol.md §6.1: 4,894,032 KiB). */
#define BUILTIN_SIZE (4894032ull * 1024ull)

/* ------------------------------------------------------------------------------------------ */
/* digests */

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
        fprintf(stderr, "axllama: sha256 failed\n");
        abort();
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* manifest parsing */

typedef struct {
    const char *path; /* as given, for messages */
    const char *dir;  /* absolute directory of the manifest */
    char *err;
    size_t errlen;
    bool failed;
    void (*warn)(void *user, const char *msg);
    void *user;
} parse_ctx;

static void manifest_fail(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void manifest_fail(parse_ctx *c, const char *fmt, ...)
{
    if (c->failed)
        return; /* the first problem is the one reported */
    c->failed = true;
    if (!c->err || c->errlen == 0)
        return;
    strbuf sb = {0};
    sb_printf(&sb, "%s: ", c->path);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s", sb.data);
    sb_free(&sb);
}

static void manifest_warn(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void manifest_warn(parse_ctx *c, const char *fmt, ...)
{
    if (!c->warn)
        return;
    strbuf sb = {0};
    sb_printf(&sb, "%s: ", c->path);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    c->warn(c->user, sb.data);
    sb_free(&sb);
}

/* The member key of obj, NULL when absent or null (= not set). */
static json_t *manifest_member(json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

/* Warns about every key of obj not in known (NULL-terminated); prefix "" or "runtime.". */
static void warn_unknown_keys(parse_ctx *c, json_t *obj, const char *prefix, const char *const *known)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool found = false;
        for (const char *const *k = known; *k && !found; k++)
            found = strcmp(*k, key) == 0;
        if (!found)
            manifest_warn(c, "unknown key \"%s%s\" ignored", prefix, key);
    }
}

static json_t *manifest_get_object(parse_ctx *c, json_t *obj, const char *key, const char *keypath, bool required)
{
    json_t *v = manifest_member(obj, key);
    if (!v) {
        if (required)
            manifest_fail(c, "\"%s\" is missing (an object)", keypath);
        return NULL;
    }
    if (!json_is_object(v)) {
        manifest_fail(c, "\"%s\": expected an object, got %s", keypath, json_type_name(v, true));
        return NULL;
    }
    return v;
}

/* A string value (borrowed) or NULL when absent; empty strings are an error. */
static const char *manifest_get_string(parse_ctx *c, json_t *obj, const char *key, const char *keypath, bool required,
                                       bool allow_empty)
{
    json_t *v = manifest_member(obj, key);
    if (!v) {
        if (required)
            manifest_fail(c, "\"%s\" is missing (a string)", keypath);
        return NULL;
    }
    if (!json_is_string(v)) {
        manifest_fail(c, "\"%s\": expected a string, got %s", keypath, json_type_name(v, true));
        return NULL;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        manifest_fail(c, "\"%s\": the string contains a NUL character", keypath);
        return NULL;
    }
    if (!allow_empty && !s[0]) {
        manifest_fail(c, "\"%s\": must not be empty", keypath);
        return NULL;
    }
    return s;
}

static void manifest_get_int(parse_ctx *c, json_t *obj, const char *key, const char *keypath, long long min,
                             long long max, int *out)
{
    json_t *v = manifest_member(obj, key);
    if (!v)
        return;
    if (!json_is_integer(v)) {
        manifest_fail(c, "\"%s\": expected an integer from %lld to %lld, got %s", keypath, min, max,
                      json_type_name(v, true));
        return;
    }
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        manifest_fail(c, "\"%s\": %lld is out of range (%lld to %lld)", keypath, n, min, max);
        return;
    }
    *out = (int)n;
}

typedef enum { RANGE_NON_NEGATIVE, RANGE_POSITIVE, RANGE_UNIT } number_range;

/* A number (integer or real) in range; true when set. */
static bool manifest_get_number(parse_ctx *c, json_t *obj, const char *key, const char *keypath, number_range range,
                                double *out)
{
    static const char *const range_text[] = {"0 or more", "more than 0", "from 0 to 1"};
    json_t *v = manifest_member(obj, key);
    if (!v)
        return false;
    if (!json_is_number(v)) {
        manifest_fail(c, "\"%s\": expected a number %s, got %s", keypath, range_text[range], json_type_name(v, true));
        return false;
    }
    double d = json_number_value(v);
    bool ok = d >= 0 && (range != RANGE_POSITIVE || d > 0) && (range != RANGE_UNIT || d <= 1);
    if (!ok) {
        manifest_fail(c, "\"%s\": %g is out of range (%s)", keypath, d, range_text[range]);
        return false;
    }
    *out = d;
    return true;
}

static void manifest_get_bool(parse_ctx *c, json_t *obj, const char *key, const char *keypath, bool *out)
{
    json_t *v = manifest_member(obj, key);
    if (!v)
        return;
    if (!json_is_boolean(v)) {
        manifest_fail(c, "\"%s\": expected true or false, got %s", keypath, json_type_name(v, true));
        return;
    }
    *out = json_is_true(v);
}

/* An owned copy of a string member, or NULL when absent. */
static char *manifest_dup_string(parse_ctx *c, json_t *obj, const char *key, const char *keypath, bool allow_empty)
{
    const char *s = manifest_get_string(c, obj, key, keypath, false, allow_empty);
    return s ? xstrdup(s) : NULL;
}

/* An absolute path: value as is when absolute, "~/x" under $HOME, otherwise under the manifest's
 * directory (leading "./" dropped). */
static char *manifest_resolve_path(parse_ctx *c, const char *value, const char *keypath)
{
    if (value[0] == '/')
        return xstrdup(value);
    strbuf sb = {0};
    if (value[0] == '~' && (value[1] == '/' || value[1] == '\0')) {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') {
            manifest_fail(c, "\"%s\": \"%s\" starts with ~ but $HOME is not set", keypath, value);
            return NULL;
        }
        sb_puts(&sb, home);
        sb_puts(&sb, value + 1);
        return sb_steal(&sb);
    }
    while (value[0] == '.' && value[1] == '/') {
        value += 2;
        while (value[0] == '/')
            value++;
    }
    sb_puts(&sb, c->dir);
    if (value[0] && !(value[0] == '.' && value[1] == '\0')) {
        if (sb.len == 0 || sb.data[sb.len - 1] != '/')
            sb_putc(&sb, '/');
        sb_puts(&sb, value);
    }
    return sb_steal(&sb);
}

static char *manifest_get_path(parse_ctx *c, json_t *obj, const char *key, const char *keypath, bool required)
{
    const char *s = manifest_get_string(c, obj, key, keypath, required, false);
    return s ? manifest_resolve_path(c, s, keypath) : NULL;
}

/* Flags axllama passes itself, which a manifest must not set. */
static const char *reserved_flag(const char *arg)
{
    static const char *const flags[] = {"--url_tokenizer_model", "--devices"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        size_t n = strlen(flags[i]);
        if (strncmp(arg, flags[i], n) == 0 && (arg[n] == '\0' || arg[n] == '='))
            return flags[i];
    }
    return NULL;
}

static void parse_runtime_args(parse_ctx *c, model_manifest *m, json_t *runtime)
{
    m->runtime_args = xcalloc(1, sizeof *m->runtime_args);
    json_t *args = manifest_member(runtime, "args");
    if (!args)
        return;
    if (!json_is_array(args)) {
        manifest_fail(c, "\"runtime.args\": expected an array of strings, got %s", json_type_name(args, true));
        return;
    }
    size_t n = json_array_size(args);
    char **list = xcalloc(n + 1, sizeof *list);
    free(m->runtime_args);
    m->runtime_args = list;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(args, i);
        if (!json_is_string(a)) {
            manifest_fail(c, "\"runtime.args[%zu]\": expected a string, got %s", i, json_type_name(a, true));
            return;
        }
        const char *s = json_string_value(a);
        if (strlen(s) != json_string_length(a)) {
            manifest_fail(c, "\"runtime.args[%zu]\": the string contains a NUL character", i);
            return;
        }
        const char *flag = reserved_flag(s);
        if (flag) {
            manifest_fail(c, "\"runtime.args[%zu]\": %s is added by axllama: remove it%s", i, flag,
                          strcmp(flag, "--devices") == 0 ? " (set \"runtime.devices\" instead)" : "");
            return;
        }
        list[i] = xstrdup(s);
        m->n_runtime_args = i + 1;
    }
}

static void parse_runtime_env(parse_ctx *c, model_manifest *m, json_t *runtime)
{
    m->env = xcalloc(1, sizeof *m->env);
    json_t *env = manifest_get_object(c, runtime, "env", "runtime.env", false);
    if (!env)
        return;
    char **list = xcalloc(json_object_size(env) + 1, sizeof *list);
    free(m->env);
    m->env = list;
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(env, key, value)
    {
        if (!key[0] || strchr(key, '=')) {
            manifest_fail(c, "\"runtime.env\": \"%s\" is not a valid variable name", key);
            return;
        }
        if (!json_is_string(value)) {
            manifest_fail(c, "\"runtime.env.%s\": expected a string, got %s", key, json_type_name(value, true));
            return;
        }
        strbuf sb = {0};
        sb_printf(&sb, "%s=%s", key, json_string_value(value));
        list[n++] = sb_steal(&sb);
    }
}

static bool devices_valid(const char *s)
{
    if (strcmp(s, "auto") == 0)
        return true;
    bool need_digit = true;
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= '0' && ch <= '9')
            need_digit = false;
        else if (ch == ',' && !need_digit)
            need_digit = true;
        else
            return false;
    }
    return !need_digit;
}

static void parse_runtime(parse_ctx *c, model_manifest *m, json_t *root)
{
    json_t *runtime = manifest_get_object(c, root, "runtime", "runtime", true);
    if (!runtime)
        return;
    static const char *const known[] = {"binary", "args", "workdir", "port", "devices", "load_timeout", "env", NULL};
    warn_unknown_keys(c, runtime, "runtime.", known);
    m->runtime_binary = manifest_get_path(c, runtime, "binary", "runtime.binary", true);
    parse_runtime_args(c, m, runtime);
    m->runtime_workdir = manifest_get_path(c, runtime, "workdir", "runtime.workdir", false);
    if (!m->runtime_workdir && !c->failed)
        m->runtime_workdir = xstrdup(c->dir);
    manifest_get_int(c, runtime, "port", "runtime.port", 0, 65535, &m->runtime_port);
    m->devices = manifest_dup_string(c, runtime, "devices", "runtime.devices", false);
    if (m->devices && !devices_valid(m->devices))
        manifest_fail(
            c, "\"runtime.devices\": \"%s\" is neither \"auto\" nor a list of device numbers like \"0\" or \"0,1\"",
            m->devices);
    if (manifest_get_number(c, runtime, "load_timeout", "runtime.load_timeout", RANGE_NON_NEGATIVE, &m->load_timeout_s))
        m->has_load_timeout = true;
    parse_runtime_env(c, m, runtime);
    if (!c->failed && m->runtime_port == 0) {
        bool has_placeholder = false;
        for (size_t i = 0; i < m->n_runtime_args && !has_placeholder; i++)
            has_placeholder = strstr(m->runtime_args[i], "{port}") != NULL;
        if (!has_placeholder)
            manifest_fail(c, "\"runtime.port\" is 0 (a free port per start) but no \"runtime.args\" entry contains "
                             "\"{port}\": the runtime could not learn its port");
    }
}

static void parse_context(parse_ctx *c, model_manifest *m, json_t *root)
{
    json_t *ctx = manifest_get_object(c, root, "context", "context", false);
    if (!ctx)
        return;
    static const char *const known[] = {"max_prefill", "max_positions", NULL};
    warn_unknown_keys(c, ctx, "context.", known);
    manifest_get_int(c, ctx, "max_prefill", "context.max_prefill", 1, INT_MAX, &m->max_prefill);
    manifest_get_int(c, ctx, "max_positions", "context.max_positions", 1, INT_MAX, &m->max_positions);
    if (!c->failed && m->max_prefill > m->max_positions)
        manifest_fail(c, "\"context.max_prefill\" (%d) is larger than \"context.max_positions\" (%d)", m->max_prefill,
                      m->max_positions);
}

static void parse_parameters(parse_ctx *c, model_manifest *m, json_t *root)
{
    json_t *p = manifest_get_object(c, root, "parameters", "parameters", false);
    if (!p)
        return;
    static const char *const known[] = {"temperature", "top_k", "top_p", "repeat_penalty", NULL};
    warn_unknown_keys(c, p, "parameters.", known);
    m->has_temperature =
        manifest_get_number(c, p, "temperature", "parameters.temperature", RANGE_NON_NEGATIVE, &m->temperature);
    m->has_top_p = manifest_get_number(c, p, "top_p", "parameters.top_p", RANGE_UNIT, &m->top_p);
    m->has_repeat_penalty =
        manifest_get_number(c, p, "repeat_penalty", "parameters.repeat_penalty", RANGE_POSITIVE, &m->repeat_penalty);
    m->top_k = -1;
    manifest_get_int(c, p, "top_k", "parameters.top_k", 0, INT_MAX, &m->top_k);
    m->has_top_k = m->top_k >= 0;
    if (!m->has_top_k)
        m->top_k = 0;
}

static void parse_details(parse_ctx *c, model_manifest *m, json_t *root)
{
    json_t *d = manifest_get_object(c, root, "details", "details", false);
    static const char *const known[] = {"family", "parameter_size", "quantization_level", "format", NULL};
    if (d)
        warn_unknown_keys(c, d, "details.", known);
    m->family = manifest_dup_string(c, d, "family", "details.family", true);
    m->parameter_size = manifest_dup_string(c, d, "parameter_size", "details.parameter_size", true);
    m->quantization_level = manifest_dup_string(c, d, "quantization_level", "details.quantization_level", true);
    m->format = manifest_dup_string(c, d, "format", "details.format", true);
    if (!m->family)
        m->family = xstrdup(m->template_family == CHAT_TEMPLATE_QWEN25 ? "qwen2" : "qwen3");
    if (!m->parameter_size)
        m->parameter_size = xstrdup("");
    if (!m->quantization_level)
        m->quantization_level = xstrdup("");
    if (!m->format)
        m->format = xstrdup("axmodel");
}

/* "tokenizer_upstream": compatibility mode (docs/models.md). url "http://HOST[:PORT]" (no path);
 * with a command the host must be 127.0.0.1 or localhost and the port given, since axllama starts
 * the service itself and waits for that port. */
static void parse_upstream(parse_ctx *c, model_manifest *m, json_t *root)
{
    json_t *up = manifest_get_object(c, root, "tokenizer_upstream", "tokenizer_upstream", false);
    if (!up)
        return;
    static const char *const known[] = {"url", "command", "workdir", "start_timeout", NULL};
    warn_unknown_keys(c, up, "tokenizer_upstream.", known);
    const char *url = manifest_get_string(c, up, "url", "tokenizer_upstream.url", true, false);
    if (!url)
        return;
    const char *hostport = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    size_t hp_len = hostport ? strlen(hostport) : 0;
    while (hp_len && hostport[hp_len - 1] == '/')
        hp_len--;
    const char *colon = hostport ? memchr(hostport, ':', hp_len) : NULL;
    bool ok = hostport && hp_len > 0 && !memchr(hostport, '/', hp_len) && colon != hostport;
    long port = 0;
    if (ok && colon) {
        char *end = NULL;
        const char *digits = colon + 1;
        port = digits < hostport + hp_len && *digits >= '0' && *digits <= '9' ? strtol(digits, &end, 10) : -1;
        ok = port >= 1 && port <= 65535 && end == hostport + hp_len;
    }
    if (!ok) {
        manifest_fail(c,
                      "\"tokenizer_upstream.url\": \"%s\" is not a URL like \"http://127.0.0.1:12345\" (http, a host, "
                      "an optional port from 1 to 65535, no path)",
                      url);
        return;
    }
    m->upstream_url = xstrndup(url, 7 + hp_len);
    m->upstream_port = colon ? (int)port : 80;

    json_t *cmd = manifest_member(up, "command");
    if (cmd) {
        if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
            manifest_fail(c, "\"tokenizer_upstream.command\": expected a non-empty array of strings, got %s",
                          json_is_array(cmd) ? "an empty array" : json_type_name(cmd, true));
            return;
        }
        size_t n = json_array_size(cmd);
        m->upstream_command = xcalloc(n + 1, sizeof *m->upstream_command);
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get(cmd, i);
            if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a) ||
                (i == 0 && !json_string_value(a)[0])) {
                manifest_fail(c, "\"tokenizer_upstream.command[%zu]\": expected a %sstring, got %s", i,
                              i == 0 ? "non-empty " : "",
                              json_is_string(a) ? "a string with a NUL character or an empty one"
                                                : json_type_name(a, true));
                return;
            }
            m->upstream_command[i] = xstrdup(json_string_value(a));
            m->n_upstream_command = i + 1;
        }
        size_t host_len = colon ? (size_t)(colon - hostport) : hp_len;
        bool loopback = (host_len == 9 && !strncmp(hostport, "127.0.0.1", 9)) ||
                        (host_len == 9 && !strncmp(hostport, "localhost", 9));
        if (!loopback || !colon) {
            manifest_fail(c, "\"tokenizer_upstream.url\": with a \"command\" it must be http://127.0.0.1:PORT (or "
                             "localhost:PORT): axllama waits for that port");
            return;
        }
    }
    m->upstream_workdir = manifest_get_path(c, up, "workdir", "tokenizer_upstream.workdir", false);
    if (!m->upstream_workdir && !c->failed && c->dir)
        m->upstream_workdir = xstrdup(c->dir);
    manifest_get_number(c, up, "start_timeout", "tokenizer_upstream.start_timeout", RANGE_POSITIVE,
                        &m->upstream_start_timeout_s);
}

static void parse_root(parse_ctx *c, model_manifest *m, json_t *root)
{
    static const char *const known[] = {"name",
                                        "runtime",
                                        "tokenizer",
                                        "tokenizer_port",
                                        "template",
                                        "context",
                                        "system_prompt",
                                        "thinking",
                                        "think_default",
                                        "parameters",
                                        "details",
                                        "size",
                                        "tokenizer_upstream",
                                        NULL};
    warn_unknown_keys(c, root, "", known);

    const char *name = manifest_get_string(c, root, "name", "name", true, false);
    if (name) {
        char display[MODEL_NAME_DISPLAY_MAX];
        if (!model_name_normalize(name, display, sizeof display))
            manifest_fail(
                c,
                "\"name\": \"%s\" is not a valid model name ([host/][namespace/]model[:tag]; parts start with "
                "a letter, digit or _, then letters, digits, _ - .)",
                name);
        else
            m->name = xstrdup(display);
    }
    parse_runtime(c, m, root);
    m->tokenizer_dir = manifest_get_path(c, root, "tokenizer", "tokenizer", true);
    manifest_get_int(c, root, "tokenizer_port", "tokenizer_port", 0, 65535, &m->tokenizer_port);

    const char *tmpl = manifest_get_string(c, root, "template", "template", false, false);
    if (tmpl) {
        if (strcmp(tmpl, "qwen3") == 0)
            m->template_family = CHAT_TEMPLATE_QWEN3;
        else if (strcmp(tmpl, "qwen2.5") == 0)
            m->template_family = CHAT_TEMPLATE_QWEN25;
        else
            manifest_fail(c, "\"template\": \"%s\" is not a known chat template (qwen3 or qwen2.5)", tmpl);
    }
    parse_context(c, m, root);
    parse_upstream(c, m, root);
    char *prompt = manifest_dup_string(c, root, "system_prompt", "system_prompt", true);
    if (prompt) {
        free(m->system_prompt);
        m->system_prompt = prompt;
    }
    manifest_get_bool(c, root, "thinking", "thinking", &m->thinking);
    manifest_get_bool(c, root, "think_default", "think_default", &m->think_default);
    if (!c->failed && m->think_default && !m->thinking)
        manifest_fail(c, "\"think_default\" is true but \"thinking\" is false");
    parse_parameters(c, m, root);
    parse_details(c, m, root);

    json_t *size = manifest_member(root, "size");
    if (size) {
        if (!json_is_integer(size) || json_integer_value(size) < 0)
            manifest_fail(c, "\"size\": expected a non-negative integer (bytes), got %s",
                          json_is_integer(size) ? "a negative integer" : json_type_name(size, true));
        else
            m->size = (uint64_t)json_integer_value(size);
    }
}

static void manifest_defaults(model_manifest *m)
{
    memset(m, 0, sizeof *m);
    m->runtime_port = DEFAULT_RUNTIME_PORT;
    m->load_timeout_s = DEFAULT_LOAD_TIMEOUT_S;
    m->tokenizer_port = DEFAULT_TOKENIZER_PORT;
    m->template_family = CHAT_TEMPLATE_QWEN3;
    m->max_prefill = DEFAULT_MAX_PREFILL;
    m->max_positions = DEFAULT_MAX_POSITIONS;
    m->system_prompt = xstrdup(CHAT_DEFAULT_SYSTEM_PROMPT);
    m->thinking = true;
    m->think_default = false;
    m->upstream_start_timeout_s = DEFAULT_UPSTREAM_START_TIMEOUT_S;
}

/* Reads a whole file (at most MANIFEST_MAX_BYTES); NULL and errno-based message on failure. */
static char *read_manifest_file(const char *path, size_t *len, struct stat *st, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    strbuf sb = {0};
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (sb.len + got > MANIFEST_MAX_BYTES) {
            snprintf(err, errlen, "%s: larger than %d bytes", path, MANIFEST_MAX_BYTES);
            sb_free(&sb);
            fclose(f);
            return NULL;
        }
        sb_append(&sb, chunk, got);
    }
    bool read_error = ferror(f);
    fclose(f);
    if (read_error) {
        snprintf(err, errlen, "%s: read error", path);
        sb_free(&sb);
        return NULL;
    }
    *len = sb.len;
    return sb_steal(&sb);
}

/* The absolute directory holding path. */
static char *manifest_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
    char *abs = realpath(dir, NULL);
    if (abs) {
        free(dir);
        return abs;
    }
    return dir;
}

/* Problems that do not stop the model from being listed: its files are checked at load time. */
static void warn_missing_files(parse_ctx *c, const model_manifest *m)
{
    if (access(m->runtime_binary, X_OK) != 0)
        manifest_warn(c, "\"runtime.binary\": %s: %s (the model cannot load until it exists)", m->runtime_binary,
                      strerror(errno));
    strbuf sb = {0};
    sb_printf(&sb, "%s/tokenizer.json", m->tokenizer_dir);
    if (access(sb.data, R_OK) != 0)
        manifest_warn(c, "\"tokenizer\": %s: %s (the model cannot load until it exists)", sb.data, strerror(errno));
    sb_free(&sb);
}

bool model_manifest_load_with_warnings(model_manifest *m, const char *path, void (*warn)(void *user, const char *msg),
                                       void *user, char *err, size_t errlen)
{
    char scratch[1];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    memset(m, 0, sizeof *m);
    size_t len = 0;
    struct stat st;
    char *text = read_manifest_file(path, &len, &st, err, errlen);
    if (!text)
        return false;

    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column, jerr.text);
        free(text);
        return false;
    }
    char *dir = manifest_dir(path);
    parse_ctx c = {.path = path, .dir = dir, .err = err, .errlen = errlen, .warn = warn, .user = user};
    manifest_defaults(m);
    if (!json_is_object(root))
        manifest_fail(&c, "expected a JSON object at the top level, got %s", json_type_name(root, true));
    else
        parse_root(&c, m, root);
    json_decref(root);

    if (!c.failed) {
        m->path = xstrdup(path);
        m->modified = st.st_mtime;
        sha256_hex(text, len, m->digest);
        warn_missing_files(&c, m);
    } else {
        model_manifest_free(m);
    }
    free(text);
    free(dir);
    return !c.failed;
}

bool model_manifest_load(model_manifest *m, const char *path, char *err, size_t errlen)
{
    return model_manifest_load_with_warnings(m, path, NULL, NULL, err, errlen);
}

static void free_manifest_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

void model_manifest_free(model_manifest *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->path);
    free(m->runtime_binary);
    free_manifest_list(m->runtime_args);
    free(m->runtime_workdir);
    free(m->devices);
    free_manifest_list(m->env);
    free(m->tokenizer_dir);
    free(m->system_prompt);
    free(m->family);
    free(m->parameter_size);
    free(m->quantization_level);
    free(m->format);
    free(m->upstream_url);
    free_manifest_list(m->upstream_command);
    free(m->upstream_workdir);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------------------------ */
/* the built-in model */

void model_manifest_builtin(model_manifest *m, const char *emu_binary, const char *tokenizer_dir)
{
    manifest_defaults(m);
    m->name = xstrdup(BUILTIN_NAME);
    struct stat st;
    m->modified = stat(emu_binary, &st) == 0 ? st.st_mtime : 0;
    sha256_hex(BUILTIN_DESCRIPTION, strlen(BUILTIN_DESCRIPTION), m->digest);
    m->runtime_binary = xstrdup(emu_binary);
    static const char *const args[] = {"--emu-profile",           "fast", "--emu-port", "{port}", "--system_prompt",
                                       CHAT_DEFAULT_SYSTEM_PROMPT};
    m->n_runtime_args = sizeof args / sizeof args[0];
    m->runtime_args = xcalloc(m->n_runtime_args + 1, sizeof *m->runtime_args);
    for (size_t i = 0; i < m->n_runtime_args; i++)
        m->runtime_args[i] = xstrdup(args[i]);
    m->runtime_workdir = NULL;
    m->runtime_port = 0;
    m->devices = xstrdup("0"); /* axllama-emu's default (AXCL) mode requires --devices */
    m->env = xcalloc(1, sizeof *m->env);
    m->tokenizer_dir = xstrdup(tokenizer_dir);
    m->tokenizer_port = 0;
    m->family = xstrdup("qwen3");
    m->parameter_size = xstrdup("4.0B");
    m->quantization_level = xstrdup("W8A16");
    m->format = xstrdup("axmodel");
    m->size = BUILTIN_SIZE;
}
