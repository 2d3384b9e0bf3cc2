/* config: every setting axllama reads from the environment, with Ollama's names and parsing rules
 * (OLLAMA_HOST, OLLAMA_ORIGINS, OLLAMA_KEEP_ALIVE, OLLAMA_MAX_QUEUE, OLLAMA_LOAD_TIMEOUT,
 * OLLAMA_DEBUG, AXLLAMA_MODELS, AXLLAMA_TOKENIZER_DIR, AXLLAMA_CACHE, AXLLAMA_STALL_TIMEOUT,
 * AXLLAMA_RESET_EVERY_TURN, ... and the limits AXLLAMA_MAX_*, AXLLAMA_REQUEST_TIMEOUT), Go's
 * time.ParseDuration, and a request's keep_alive value. See config.h. */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 11434
#define DEFAULT_MAX_QUEUE 512
#define DEFAULT_KEEP_ALIVE_S 300.0
#define DEFAULT_STALL_TIMEOUT_S 60.0 /* a full 2,048-token prefill takes ~25 s on a Pi 5 */
#define DEFAULT_CONTEXT_RETAIN 0.5
#define DEFAULT_RUNTIME_PROBE_S 5.0
#define DEFAULT_LOAD_TIMEOUT_S 300.0

/* ------------------------------------------------------------------------------------------ */
/* trimming (envconfig.Var: TrimSpace, then Trim of '"' and '\'') */

static bool is_env_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_env_quote(unsigned char c)
{
    return c == '"' || c == '\'';
}

/* [*b, *e) with leading and trailing bytes matching pred removed. */
static void trim_span(const char **b, const char **e, bool (*pred)(unsigned char))
{
    while (*b < *e && pred((unsigned char)**b))
        (*b)++;
    while (*e > *b && pred((unsigned char)(*e)[-1]))
        (*e)--;
}

/* An owned copy of value with spaces, then quotes, then spaces trimmed ("" for NULL). */
static char *trim_env_value(const char *value)
{
    if (!value)
        return xstrdup("");
    const char *b = value, *e = value + strlen(value);
    trim_span(&b, &e, is_env_space);
    trim_span(&b, &e, is_env_quote);
    trim_span(&b, &e, is_env_space);
    return xstrndup(b, (size_t)(e - b));
}

/* ------------------------------------------------------------------------------------------ */
/* OLLAMA_HOST (envconfig.Host) */

/* Go's net.SplitHostPort. */
static bool split_host_port(const char *hp, const char **host, size_t *host_len, const char **port)
{
    const char *last_colon = strrchr(hp, ':');
    if (!last_colon)
        return false; /* missing port */
    size_t j = 0, k = 0;
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end || end + 1 != last_colon)
            return false; /* missing ']', missing port or too many colons */
        *host = hp + 1;
        *host_len = (size_t)(end - hp - 1);
        j = 1;
        k = (size_t)(end - hp) + 1;
    } else {
        *host = hp;
        *host_len = (size_t)(last_colon - hp);
        if (memchr(hp, ':', *host_len))
            return false; /* too many colons */
    }
    if (strchr(hp + j, '[') || strchr(hp + k, ']'))
        return false;
    *port = last_colon + 1;
    return true;
}

static bool is_decimal_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Go's strconv.ParseInt(s, 10, bits) for bits 32 or 64: optional sign, decimal digits, in range. */
static bool parse_go_int(const char *s, int bits, long long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (!is_decimal_digit((unsigned char)*q))
            return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || (bits == 32 && (v < INT32_MIN || v > INT32_MAX)))
        return false;
    *out = v;
    return true;
}

/* Go's net.ParseIP(x).String() when x is an IP address. */
static bool canonical_ip(const char *s, char *out, size_t outlen)
{
    unsigned char addr[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, s, addr) == 1) {
        if (!inet_ntop(AF_INET, addr, text, sizeof text))
            return false;
    } else if (inet_pton(AF_INET6, s, addr) == 1) {
        static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, v4_mapped, sizeof v4_mapped) == 0) {
            if (!inet_ntop(AF_INET, addr + 12, text, sizeof text))
                return false;
        } else if (!inet_ntop(AF_INET6, addr, text, sizeof text)) {
            return false;
        }
    } else {
        return false;
    }
    return (size_t)snprintf(out, outlen, "%s", text) < outlen;
}

/* parse_ollama_host plus whether the port was rejected (then *bad_port is the text). */
static void ollama_host(const char *value, char *host, size_t hostlen, int *port, char **bad_port)
{
    char *s = trim_env_value(value);
    int default_port = DEFAULT_PORT;
    const char *hostport = s;
    char *scheme_end = strstr(s, "://");
    if (scheme_end) {
        size_t scheme_len = (size_t)(scheme_end - s);
        if (scheme_len == 4 && strncmp(s, "http", 4) == 0)
            default_port = 80;
        else if (scheme_len == 5 && strncmp(s, "https", 5) == 0)
            default_port = 443;
        hostport = scheme_end + 3;
    } else if (strcmp(s, "ollama.com") == 0) {
        hostport = "ollama.com:443";
    }
    char *hp = xstrdup(hostport);
    char *path = strchr(hp, '/');
    if (path)
        *path = '\0'; /* a path is for clients only */

    char *host_text;
    const char *port_text = NULL;
    const char *h;
    size_t h_len;
    if (split_host_port(hp, &h, &h_len, &port_text)) {
        host_text = xstrndup(h, h_len);
    } else {
        char ip[INET6_ADDRSTRLEN];
        const char *b = hp, *e = hp + strlen(hp);
        while (b < e && (*b == '[' || *b == ']'))
            b++;
        while (e > b && (e[-1] == '[' || e[-1] == ']'))
            e--;
        char *bare = xstrndup(b, (size_t)(e - b));
        if (canonical_ip(bare, ip, sizeof ip))
            host_text = xstrdup(ip);
        else
            host_text = xstrdup(hp[0] ? hp : DEFAULT_HOST);
        free(bare);
    }

    long long n = default_port;
    if (port_text && (!parse_go_int(port_text, 32, &n) || n < 0 || n > 65535)) {
        if (bad_port)
            *bad_port = xstrdup(port_text);
        n = default_port;
    }
    *port = (int)n;
    if (hostlen > 0) {
        if (strlen(host_text) < hostlen)
            memcpy(host, host_text, strlen(host_text) + 1);
        else /* never bind to a truncated name */
            snprintf(host, hostlen, "%s", strlen(DEFAULT_HOST) < hostlen ? DEFAULT_HOST : "");
    }
    free(host_text);
    free(hp);
    free(s);
}

void parse_ollama_host(const char *value, char *host, size_t hostlen, int *port)
{
    ollama_host(value, host, hostlen, port, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Go durations (time.ParseDuration) */

/* Go's time.quote: "..." with '"' and '\\' escaped, bytes < 0x20 or >= 0x80 as \xNN. */
static void duration_quote(strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x80) {
            sb_puts(sb, "\\x");
            sb_putc(sb, hex[*p >> 4]);
            sb_putc(sb, hex[*p & 15]);
        } else {
            if (*p == '"' || *p == '\\')
                sb_putc(sb, '\\');
            sb_putc(sb, (char)*p);
        }
    }
    sb_putc(sb, '"');
}

static bool duration_error(char *err, size_t errlen, const char *what, const char *unit, const char *orig)
{
    if (err && errlen) {
        strbuf sb = {0};
        sb_puts(&sb, "time: ");
        sb_puts(&sb, what);
        if (unit) {
            duration_quote(&sb, unit);
            sb_puts(&sb, " in duration ");
        }
        duration_quote(&sb, orig);
        snprintf(err, errlen, "%s", sb.data);
        sb_free(&sb);
    }
    return false;
}

#define DURATION_LIMIT (1ull << 63) /* Go's time.Duration range, in nanoseconds */

typedef enum { DURATION_OK, DURATION_INVALID, DURATION_MISSING_UNIT, DURATION_UNKNOWN_UNIT } duration_status;

/* The number that starts a duration component ("12", "1.5", ".5"), *p moved past it: its integer
 * part in *whole, its fraction as *frac / *scale (digits beyond what fits are ignored, as Go does). */
static duration_status duration_number(const char **p, uint64_t *whole, uint64_t *frac, double *scale)
{
    const char *q = *p, *start = q;
    uint64_t v = 0;
    for (; is_decimal_digit((unsigned char)*q); q++) {
        if (v > DURATION_LIMIT / 10)
            return DURATION_INVALID;
        v = v * 10 + (uint64_t)(*q - '0');
        if (v > DURATION_LIMIT)
            return DURATION_INVALID;
    }
    bool pre = q != start, post = false;
    uint64_t f = 0;
    double sc = 1;
    if (*q == '.') {
        const char *fstart = ++q;
        bool overflow = false;
        for (; is_decimal_digit((unsigned char)*q); q++) {
            if (overflow || f > (UINT64_MAX >> 1) / 10) { /* Go: the 1<<63-1 guard */
                overflow = true;
                continue;
            }
            uint64_t y = f * 10 + (uint64_t)(*q - '0');
            if (y > DURATION_LIMIT) {
                overflow = true;
                continue;
            }
            f = y;
            sc *= 10;
        }
        post = q != fstart;
    }
    if (!pre && !post)
        return DURATION_INVALID;
    *p = q;
    *whole = v;
    *frac = f;
    *scale = sc;
    return DURATION_OK;
}

/* One "<number><unit>" of a duration at *p, in nanoseconds in *ns, *p moved past it. An unknown
 * unit is left at [*unit, *unit + *unit_len) for the message. */
static duration_status duration_component(const char **p, uint64_t *ns, const char **unit, size_t *unit_len)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ull},           {"us", 1000ull},      {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ull},                                               /* U+03BC Greek small letter mu */
        {"ms", 1000000ull},     {"s", 1000000000ull}, {"m", 60ull * 1000000000ull}, {"h", 3600ull * 1000000000ull},
    };
    if (!(**p == '.' || is_decimal_digit((unsigned char)**p)))
        return DURATION_INVALID;
    uint64_t v, f;
    double scale;
    duration_status st = duration_number(p, &v, &f, &scale);
    if (st != DURATION_OK)
        return st;
    const char *ustart = *p;
    while (**p && **p != '.' && !is_decimal_digit((unsigned char)**p))
        (*p)++;
    if (*p == ustart)
        return DURATION_MISSING_UNIT;
    size_t ulen = (size_t)(*p - ustart);
    uint64_t per_unit = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == ulen && memcmp(units[i].name, ustart, ulen) == 0)
            per_unit = units[i].ns;
    if (!per_unit) {
        *unit = ustart;
        *unit_len = ulen;
        return DURATION_UNKNOWN_UNIT;
    }
    if (v > DURATION_LIMIT / per_unit)
        return DURATION_INVALID;
    v *= per_unit;
    if (f > 0) {
        v += (uint64_t)((double)f * ((double)per_unit / scale));
        if (v > DURATION_LIMIT)
            return DURATION_INVALID;
    }
    *ns = v;
    return DURATION_OK;
}

bool parse_go_duration(const char *s, double *out, char *err, size_t errlen)
{
    const char *orig = s ? s : "";
    const char *p = orig;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (strcmp(p, "0") == 0) {
        *out = 0;
        return true;
    }
    if (!*p)
        return duration_error(err, errlen, "invalid duration ", NULL, orig);
    uint64_t total = 0;
    while (*p) {
        uint64_t ns = 0;
        const char *unit = NULL;
        size_t unit_len = 0;
        duration_status st = duration_component(&p, &ns, &unit, &unit_len);
        if (st == DURATION_MISSING_UNIT)
            return duration_error(err, errlen, "missing unit in duration ", NULL, orig);
        if (st == DURATION_UNKNOWN_UNIT) {
            char *u = xstrndup(unit, unit_len);
            duration_error(err, errlen, "unknown unit ", u, orig);
            free(u);
            return false;
        }
        if (st != DURATION_OK || ns > DURATION_LIMIT - total)
            return duration_error(err, errlen, "invalid duration ", NULL, orig);
        total += ns;
    }
    if (!neg && total > DURATION_LIMIT - 1)
        return duration_error(err, errlen, "invalid duration ", NULL, orig);
    *out = neg ? -((double)total / 1e9) : (double)total / 1e9;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* keep_alive (api.Duration.UnmarshalJSON) */

bool parse_keep_alive(const json_t *v, bool *present, double *seconds, char *err, size_t errlen)
{
    *present = false;
    if (!v || json_is_null(v))
        return true;
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        if (!parse_go_duration(json_string_value(v), &d, err, errlen))
            return false;
    } else {
        /* Go's reflect.TypeOf of the decoded value */
        const char *type = json_is_boolean(v) ? "bool"
                           : json_is_array(v) ? "[]interface {}"
                                              : "map[string]interface {}";
        if (err && errlen)
            snprintf(err, errlen, "Unsupported type: '%s'", type);
        return false;
    }
    *present = true;
    /* past a Go time.Duration (2^63 ns, ~292 years) it is forever, as a negative value is; NaN too */
    *seconds = (d < 0 || !(d < 9223372036.0)) ? -1 : d;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* the environment */

char *config_env_value(const char *name)
{
    const char *raw = getenv(name);
    if (!raw)
        return NULL;
    char *v = trim_env_value(raw);
    if (!v[0]) {
        free(v);
        return NULL;
    }
    return v;
}

/* A Go duration or a bare integer of seconds (envconfig.KeepAlive / LoadTimeout). */
static bool env_duration(const char *value, double *out)
{
    long long n;
    if (parse_go_duration(value, out, NULL, 0))
        return true;
    if (parse_go_int(value, 64, &n)) {
        *out = (double)n;
        return true;
    }
    return false;
}

static const char *const default_origin_hosts[] = {"localhost", "127.0.0.1", "0.0.0.0"};
static const char *const default_origin_schemes[] = {"app://*", "file://*", "tauri://*", "vscode-webview://*",
                                                     "vscode-file://*"};

static char **allowed_origins(const char *value)
{
    size_t cap = 1 + 4 * 3 + 5 + (value ? strlen(value) + 1 : 0);
    char **list = xcalloc(cap, sizeof *list);
    size_t n = 0;
    for (const char *p = value; p && *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        trim_span(&b, &e, is_env_space);
        if (e > b)
            list[n++] = xstrndup(b, (size_t)(e - b));
        p = comma ? comma + 1 : end;
    }
    for (size_t i = 0; i < 3; i++) {
        const char *h = default_origin_hosts[i];
        strbuf sb = {0};
        sb_printf(&sb, "http://%s", h);
        list[n++] = sb_steal(&sb);
        sb_printf(&sb, "https://%s", h);
        list[n++] = sb_steal(&sb);
        sb_printf(&sb, "http://%s:*", h);
        list[n++] = sb_steal(&sb);
        sb_printf(&sb, "https://%s:*", h);
        list[n++] = sb_steal(&sb);
    }
    for (size_t i = 0; i < sizeof default_origin_schemes / sizeof default_origin_schemes[0]; i++)
        list[n++] = xstrdup(default_origin_schemes[i]);
    list[n] = NULL;
    return list;
}

static void read_host(server_config *c, strbuf *warn)
{
    char *host = config_env_value("OLLAMA_HOST");
    char *bad_port = NULL;
    ollama_host(host, c->host, sizeof c->host, &c->port, &bad_port);
    if (bad_port)
        sb_printf(warn, "OLLAMA_HOST=\"%s\": invalid port \"%s\"; using the default port %d\n", host, bad_port,
                  c->port);
    free(bad_port);
    free(host);
}

static bool read_duration(const char *name, bool positive_only, const char *examples, const char *default_text,
                          double *out, strbuf *warn);

/* A positive integer variable up to max: *out untouched when unset; a bad value warns (one line
 * ending in "; using the default <default>") and leaves *out untouched. */
static void read_positive(const char *name, unsigned long long max, unsigned long long *out, strbuf *warn)
{
    char *v = config_env_value(name);
    if (!v)
        return;
    bool ok = v[0] != '\0';
    for (const char *p = v; *p && ok; p++)
        ok = is_decimal_digit((unsigned char)*p);
    errno = 0;
    unsigned long long n = ok ? strtoull(v, NULL, 10) : 0;
    if (ok && errno != ERANGE && n > 0 && n <= max)
        *out = n;
    else
        sb_printf(warn, "%s=\"%s\": not a positive integer; using the default %llu\n", name, v, *out);
    free(v);
}

/* A size variable: a positive number of bytes, optionally followed by K, M or G (1024-based; KB, KiB
 * and B spellings, any case); same rules as read_positive otherwise. */
static void read_bytes(const char *name, size_t *out, strbuf *warn)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},    {"b", 0},    {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20},
                 {"mb", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}};
    char *v = config_env_value(name);
    if (!v)
        return;
    const char *p = v;
    while (is_decimal_digit((unsigned char)*p))
        p++;
    bool ok = p != v;
    errno = 0;
    unsigned long long n = ok ? strtoull(v, NULL, 10) : 0;
    ok = ok && errno != ERANGE && n > 0;
    size_t k = 0, n_units = sizeof units / sizeof units[0];
    while (k < n_units && strcasecmp(p, units[k].suffix) != 0)
        k++;
    ok = ok && k < n_units && n <= (SIZE_MAX >> units[k].shift);
    if (ok)
        *out = (size_t)(n << units[k].shift);
    else
        sb_printf(warn,
                  "%s=\"%s\": not a positive number of bytes (\"8M\", \"512K\", \"1048576\"); using the "
                  "default %zu\n",
                  name, v, *out);
    free(v);
}

static void read_max_queue(server_config *c, strbuf *warn)
{
    unsigned long long n = DEFAULT_MAX_QUEUE;
    read_positive("OLLAMA_MAX_QUEUE", SIZE_MAX, &n, warn);
    c->max_queue = (size_t)n;
}

/* The limits of docs/api.md's "Limits" section. */
static void read_limits(server_config *c, strbuf *warn)
{
    c->max_body_bytes = CONFIG_DEFAULT_MAX_BODY;
    read_bytes("AXLLAMA_MAX_BODY", &c->max_body_bytes, warn);
    c->max_queued_bytes = CONFIG_DEFAULT_MAX_QUEUED_BYTES;
    read_bytes("AXLLAMA_MAX_QUEUED_BYTES", &c->max_queued_bytes, warn);
    unsigned long long n = CONFIG_DEFAULT_MAX_CONNECTIONS;
    read_positive("AXLLAMA_MAX_CONNECTIONS", 1u << 20, &n, warn);
    c->max_connections = (unsigned)n;
    n = CONFIG_DEFAULT_MAX_CONNECTIONS_PER_IP;
    read_positive("AXLLAMA_MAX_CONNECTIONS_PER_IP", 1u << 20, &n, warn);
    c->max_connections_per_ip = (unsigned)n;
    n = CONFIG_DEFAULT_MAX_STOP;
    read_positive("AXLLAMA_MAX_STOP", 1u << 20, &n, warn);
    c->max_stop = (size_t)n;
    n = CONFIG_DEFAULT_MAX_TOOLS;
    read_positive("AXLLAMA_MAX_TOOLS", 1u << 20, &n, warn);
    c->max_tools = (size_t)n;
    c->request_timeout_s = CONFIG_DEFAULT_REQUEST_TIMEOUT_S;
    read_duration("AXLLAMA_REQUEST_TIMEOUT", true, "not a positive duration (\"30s\", \"2m\") or whole seconds", "1m",
                  &c->request_timeout_s, warn);
}

/* A duration variable (a Go duration or whole seconds): *out untouched when unset; when the value
 * is not a duration, or not positive while positive_only, one warning ending in "; using the
 * default <default_text>" and *out untouched. Returns whether *out was set. */
static bool read_duration(const char *name, bool positive_only, const char *examples, const char *default_text,
                          double *out, strbuf *warn)
{
    char *v = config_env_value(name);
    if (!v)
        return false;
    double d;
    bool ok = env_duration(v, &d) && (!positive_only || d > 0);
    if (ok)
        *out = d;
    else
        sb_printf(warn, "%s=\"%s\": %s; using the default %s\n", name, v, examples, default_text);
    free(v);
    return ok;
}

/* On for any value but "0" and "false" (any case), as Ollama's envconfig.Bool. */
static bool read_debug(void)
{
    char *v = config_env_value("OLLAMA_DEBUG");
    bool on = v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
    free(v);
    return on;
}

void server_config_from_env(server_config *c, char **warnings)
{
    memset(c, 0, sizeof *c);
    strbuf warn = {0};

    read_host(c, &warn);
    read_max_queue(c, &warn);

    c->keep_alive_s = DEFAULT_KEEP_ALIVE_S;
    if (read_duration("OLLAMA_KEEP_ALIVE", false, "neither a duration (\"5m\", \"1h30m\", \"-1\"...) nor whole seconds",
                      "5m", &c->keep_alive_s, &warn) &&
        c->keep_alive_s < 0)
        c->keep_alive_s = -1;

    c->load_timeout_s = DEFAULT_LOAD_TIMEOUT_S;
    if (read_duration("OLLAMA_LOAD_TIMEOUT", false, "neither a duration (\"5m\", \"90s\"...) nor whole seconds", "5m",
                      &c->load_timeout_s, &warn) &&
        c->load_timeout_s <= 0)
        c->load_timeout_s = 0;

    char *origins = config_env_value("OLLAMA_ORIGINS");
    c->origins = allowed_origins(origins);
    free(origins);

    c->debug = read_debug();
    c->models_dir = config_env_value("AXLLAMA_MODELS");
    c->tokenizer_dir = config_env_value("AXLLAMA_TOKENIZER_DIR");
    c->cache_dir = config_env_value("AXLLAMA_CACHE");

    c->stall_timeout_s = DEFAULT_STALL_TIMEOUT_S;
    read_duration("AXLLAMA_STALL_TIMEOUT", true, "not a positive duration (\"2m\", \"90s\") or whole seconds", "1m",
                  &c->stall_timeout_s, &warn);

    c->runtime_probe_s = DEFAULT_RUNTIME_PROBE_S;
    read_duration("AXLLAMA_RUNTIME_PROBE", true, "not a positive duration (\"5s\", \"500ms\") or whole seconds", "5s",
                  &c->runtime_probe_s, &warn);

    c->context_retain = DEFAULT_CONTEXT_RETAIN;
    char *retain = config_env_value("AXLLAMA_CONTEXT_RETAIN");
    if (retain) {
        char *end;
        double r = strtod(retain, &end);
        if (*end == '\0' && end != retain && r > 0 && r <= 1)
            c->context_retain = r;
        else
            sb_printf(&warn,
                      "AXLLAMA_CONTEXT_RETAIN=\"%s\": not a number above 0 and at most 1; using the default 0.5\n",
                      retain);
        free(retain);
    }

    char *restore = config_env_value("AXLLAMA_RESTORE");
    c->restore = !restore || (strcmp(restore, "0") && strcasecmp(restore, "false"));
    free(restore);

    char *reset = config_env_value("AXLLAMA_RESET_EVERY_TURN");
    c->reset_every_turn = reset && !strcmp(reset, "1");
    free(reset);

    read_limits(c, &warn);

    if (warnings)
        *warnings = warn.len ? sb_steal(&warn) : NULL;
    sb_free(&warn);
}

void server_config_free(server_config *c)
{
    if (!c)
        return;
    if (c->origins) {
        for (char **p = c->origins; *p; p++)
            free(*p);
        free(c->origins);
    }
    free(c->models_dir);
    free(c->tokenizer_dir);
    free(c->cache_dir);
    memset(c, 0, sizeof *c);
}
