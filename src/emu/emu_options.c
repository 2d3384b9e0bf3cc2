/* emu_options: parses axllama-emu's command line the way the vendor runtime's cmdline.hpp parser
 * does (docs/spec/runtime-protocol.md §4.1): the option table, long/short option syntax, the error
 * messages, the "first error + usage" output and the exit statuses, plus the emulator's --emu-*
 * options (also read from AXLLAMA_EMU_ARGS) and their validation. */
#include "emu/emu_options.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "emu/emu_profile.h"

#define ENV_ARGS "AXLLAMA_EMU_ARGS"
#define EMU_PREFIX "--emu-"
/* Upper bound of the context geometry options: far above any real model, low enough that the
 * emulator's per-token bookkeeping stays small. */
#define MAX_CONTEXT_TOKENS (1 << 20)

typedef enum {
    ARG_FLAG,        /* no value (only --help) */
    ARG_STRING,      /* any string, or one of .choices, or (.nonempty) any non-empty string */
    ARG_INT,         /* integer in [.min, .max] */
    ARG_BOOL,        /* 0 or 1 */
    ARG_U64,         /* unsigned 64-bit integer */
    ARG_DOUBLE,      /* finite number >= .dmin (> .dmin when .dmin_exclusive) or .any_number */
    ARG_MODE,        /* axcl | ax650 */
    ARG_FAULT_POINT, /* T[@G] */
    ARG_INIT_EXIT,   /* K[:CODE] */
} arg_kind;

typedef struct {
    const char *name;
    char short_name;
    arg_kind kind;
    size_t offset; /* of the field in emu_options (not used by FLAG, MODE, INIT_EXIT) */
    bool required;
    bool axcl_only;
    bool vendor_int; /* ARG_INT with the vendor parser's rule: any int, no range check */
    long min, max;
    double dmin;
    bool dmin_exclusive;
    bool any_number; /* ARG_DOUBLE without lower bound */
    bool nonempty;
    bool plain_text;            /* ARG_STRING without <think>, </think> or "<|" */
    const char *const *choices; /* NULL-terminated */
    const char *description;
} option_spec;

static const char *const mode_names[] = {"axcl", "ax650", NULL};
static const char *const profile_names[] = {"fast", "qwen3-4b-pi5", "qwen3-4b-ax650", NULL};

#define FIELD(f) offsetof(emu_options, f)

/* Registration order = usage order. The vendor's options come first with its descriptions, then
 * the emulator's, then help (added last by the parser). */
static const option_spec option_table[] = {
    {.name = "system_prompt", .kind = ARG_STRING, .offset = FIELD(system_prompt), .description = "system prompt"},
    {.name = "template_filename_axmodel",
     .kind = ARG_STRING,
     .offset = FIELD(template_filename_axmodel),
     .description = "axmodel path template"},
    {.name = "filename_post_axmodel",
     .kind = ARG_STRING,
     .offset = FIELD(filename_post_axmodel),
     .description = "post axmodel path"},
    {.name = "url_tokenizer_model",
     .kind = ARG_STRING,
     .offset = FIELD(url_tokenizer_model),
     .description = "tokenizer model path"},
    {.name = "filename_tokens_embed",
     .kind = ARG_STRING,
     .offset = FIELD(filename_tokens_embed),
     .description = "tokens embed path"},
    {.name = "axmodel_num",
     .kind = ARG_INT,
     .vendor_int = true,
     .offset = FIELD(axmodel_num),
     .description = "num of axmodel(for template)"},
    {.name = "tokens_embed_num",
     .kind = ARG_INT,
     .vendor_int = true,
     .offset = FIELD(tokens_embed_num),
     .description = "tokens embed num"},
    {.name = "tokens_embed_size",
     .kind = ARG_INT,
     .vendor_int = true,
     .offset = FIELD(tokens_embed_size),
     .description = "tokens embed size"},
    {.name = "use_mmap_load_embed",
     .kind = ARG_BOOL,
     .offset = FIELD(use_mmap_load_embed),
     .description = "it can save os memory"},
    {.name = "devices",
     .kind = ARG_STRING,
     .offset = FIELD(devices),
     .required = true,
     .axcl_only = true,
     .description = "devices id,for example: \"0,1,2,3\" "},

    {.name = "emu-mode",
     .kind = ARG_MODE,
     .choices = mode_names,
     .description = "emulated binary: axcl (main_api_axcl_aarch64, with --devices) or ax650 "
                    "(main_api_ax650)"},
    {.name = "emu-host",
     .kind = ARG_STRING,
     .nonempty = true,
     .offset = FIELD(host),
     .description = "address the emulated runtime listens on"},
    {.name = "emu-port",
     .kind = ARG_INT,
     .min = 0,
     .max = 65535,
     .offset = FIELD(port),
     .description = "port the emulated runtime listens on, 0 = any free port"},
    {.name = "emu-profile",
     .kind = ARG_STRING,
     .choices = profile_names,
     .offset = FIELD(profile),
     .description = "timing profile: fast, qwen3-4b-pi5 or qwen3-4b-ax650"},
    {.name = "emu-time-scale",
     .kind = ARG_DOUBLE,
     .dmin = 0,
     .dmin_exclusive = true,
     .offset = FIELD(time_scale),
     .description = "every duration is multiplied by this (> 0)"},
    {.name = "emu-init-seconds",
     .kind = ARG_DOUBLE,
     .any_number = true,
     .offset = FIELD(init_seconds),
     .description = "init (load) time in seconds instead of the profile's (< 0: the profile's)"},
    {.name = "emu-dispatch-delay",
     .kind = ARG_DOUBLE,
     .dmin = 0,
     .offset = FIELD(dispatch_delay),
     .description = "seconds between queueing a task and the worker picking it up"},
    {.name = "emu-reply-tokens",
     .kind = ARG_INT,
     .min = 0,
     .max = INT_MAX,
     .offset = FIELD(reply_tokens),
     .description = "reply tokens after the think block (cycling the echo), 0 = the echo once"},
    {.name = "emu-think-text",
     .kind = ARG_STRING,
     .plain_text = true,
     .offset = FIELD(think_text),
     .description = "reasoning text inside the reply's think block, empty = the empty block"},
    {.name = "emu-seed", .kind = ARG_U64, .offset = FIELD(seed), .description = "seed of the non-greedy variation"},
    {.name = "emu-unstable",
     .kind = ARG_BOOL,
     .offset = FIELD(unstable),
     .description = "greedy replies differ between generations (the echo rotated by the generation)"},
    {.name = "emu-max-token-len",
     .kind = ARG_INT,
     .min = 257,
     .max = MAX_CONTEXT_TOKENS,
     .offset = FIELD(max_token_len),
     .description = "context length in tokens (max_token_len), > --emu-prefill-max"},
    {.name = "emu-prefill-max",
     .kind = ARG_INT,
     .min = 256,
     .max = MAX_CONTEXT_TOKENS - 1,
     .offset = FIELD(prefill_max),
     .description = "largest prefill group in tokens (prefill_max_token_num), >= 256"},
    {.name = "emu-crash-at",
     .kind = ARG_FAULT_POINT,
     .offset = FIELD(crash_at),
     .description = "fault T[@G]: abort() when producing token T of generation G (G default 1)"},
    {.name = "emu-hang-at",
     .kind = ARG_FAULT_POINT,
     .offset = FIELD(hang_at),
     .description = "fault T[@G]: stop answering at token T of generation G (G default 1)"},
    {.name = "emu-exit-during-init",
     .kind = ARG_INIT_EXIT,
     .description = "fault K[:CODE]: exit with status CODE (default 255) at load step K"},
    {.name = "emu-context-full-wedge",
     .kind = ARG_BOOL,
     .offset = FIELD(context_full_wedge),
     .description = "fault: the old build's context-full bug (runtime wedges)"},
    {.name = "emu-tokenizer-unreachable",
     .kind = ARG_BOOL,
     .offset = FIELD(tokenizer_unreachable),
     .description = "fault: every connect probe to the tokenizer fails"},

    {.name = "help", .short_name = '?', .kind = ARG_FLAG, .description = "print this message"},
};

#define OPTION_COUNT (sizeof option_table / sizeof option_table[0])

typedef struct {
    emu_options *o;
    emu_mode mode;            /* decides which options exist */
    bool given[OPTION_COUNT]; /* set successfully at least once */
    bool help;
    size_t error_count;
    char *first_error;
} parser;

/* ---------------------------------------------------------------- value parsing */

static bool option_exists(const option_spec *spec, emu_mode mode)
{
    return !spec->axcl_only || mode == EMU_MODE_AXCL;
}

static const char *type_name(const option_spec *spec)
{
    switch (spec->kind) {
    case ARG_INT:
    case ARG_U64: return "int";
    case ARG_BOOL: return "bool";
    case ARG_DOUBLE: return "double";
    default: return "string";
    }
}

/* The vendor's integer reading (a stream extraction that must consume the whole string): optional
 * leading white space, optional sign, decimal digits, nothing after, no overflow. */
static bool parse_whole_long(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return false;
    /* strtol accepts "   " as nothing converted (end == s): covered above */
    *out = v;
    return true;
}

static bool parse_whole_u64(const char *s, uint64_t *out)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-')
        return false; /* strtoull would wrap it around */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || *end != '\0' || errno == ERANGE)
        return false;
    *out = (uint64_t)v;
    return true;
}

static bool parse_whole_double(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Strict decimal digits (no sign, no space), at least 1, at most INT_MAX. */
static bool parse_positive_digits(const char *s, size_t n, int *out)
{
    if (n == 0)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX)
            return false;
    }
    if (v < 1)
        return false;
    *out = (int)v;
    return true;
}

/* "T" or "T@G", T and G >= 1; G defaults to 1. */
static bool parse_fault_point(const char *s, emu_fault_point *out)
{
    const char *at = strchr(s, '@');
    emu_fault_point fp = {.generation = 1};
    if (!parse_positive_digits(s, at ? (size_t)(at - s) : strlen(s), &fp.token))
        return false;
    if (at && !parse_positive_digits(at + 1, strlen(at + 1), &fp.generation))
        return false;
    *out = fp;
    return true;
}

/* "K" or "K:CODE", K >= 1, CODE 0..255 (an exit status); CODE defaults to 255. */
static bool parse_init_exit(const char *s, int *step, int *code)
{
    const char *colon = strchr(s, ':');
    int k = 0, c = 255;
    if (!parse_positive_digits(s, colon ? (size_t)(colon - s) : strlen(s), &k))
        return false;
    if (colon) {
        const char *cs = colon + 1;
        if (!strcmp(cs, "0"))
            c = 0;
        else if (!parse_positive_digits(cs, strlen(cs), &c) || c > 255)
            return false;
    }
    *step = k;
    *code = c;
    return true;
}

static bool in_choices(const char *const *choices, const char *value)
{
    for (size_t i = 0; choices[i]; i++)
        if (!strcmp(choices[i], value))
            return true;
    return false;
}

static void *field(emu_options *o, const option_spec *spec)
{
    return (char *)o + spec->offset;
}

/* Stores value into the option's field; false (field unchanged) if the value is invalid. */
static bool store_value(emu_options *o, const option_spec *spec, const char *value)
{
    switch (spec->kind) {
    case ARG_FLAG: return false; /* a flag given a value (--help=x) is an invalid value */
    case ARG_STRING: {
        if (spec->nonempty && !*value)
            return false;
        if (spec->plain_text && (strstr(value, "<think>") || strstr(value, "</think>") || strstr(value, "<|")))
            return false;
        if (spec->choices && !in_choices(spec->choices, value))
            return false;
        if (spec->choices == profile_names && !emu_profile_find(value))
            return false;
        char **slot = field(o, spec);
        free(*slot);
        *slot = xstrdup(value);
        return true;
    }
    case ARG_INT: {
        long v = 0;
        if (!parse_whole_long(value, &v))
            return false;
        long lo = spec->vendor_int ? INT_MIN : spec->min, hi = spec->vendor_int ? INT_MAX : spec->max;
        if (v < lo || v > hi)
            return false;
        *(int *)field(o, spec) = (int)v;
        return true;
    }
    case ARG_BOOL: {
        long v = 0;
        if (!parse_whole_long(value, &v) || (v != 0 && v != 1))
            return false;
        *(bool *)field(o, spec) = v == 1;
        return true;
    }
    case ARG_U64: return parse_whole_u64(value, field(o, spec));
    case ARG_DOUBLE: {
        double v = 0;
        if (!parse_whole_double(value, &v))
            return false;
        if (!spec->any_number && (spec->dmin_exclusive ? !(v > spec->dmin) : !(v >= spec->dmin)))
            return false;
        *(double *)field(o, spec) = v;
        return true;
    }
    case ARG_MODE:
        if (!strcmp(value, "axcl"))
            o->mode = EMU_MODE_AXCL;
        else if (!strcmp(value, "ax650"))
            o->mode = EMU_MODE_AX650;
        else
            return false;
        return true;
    case ARG_FAULT_POINT: return parse_fault_point(value, field(o, spec));
    case ARG_INIT_EXIT: return parse_init_exit(value, &o->exit_init_step, &o->exit_init_code);
    }
    return false;
}

/* The default as the usage shows it ("[=...]"), read from a freshly defaulted struct. */
static void format_default(strbuf *sb, const emu_options *d, const option_spec *spec)
{
    const void *p = (const char *)d + spec->offset;
    switch (spec->kind) {
    case ARG_FLAG: break;
    case ARG_STRING: sb_puts(sb, *(char *const *)p ? *(char *const *)p : ""); break;
    case ARG_INT: sb_printf(sb, "%d", *(const int *)p); break;
    case ARG_BOOL: sb_putc(sb, *(const bool *)p ? '1' : '0'); break;
    case ARG_U64: sb_printf(sb, "%" PRIu64, *(const uint64_t *)p); break;
    case ARG_DOUBLE: sb_printf(sb, "%g", *(const double *)p); break;
    case ARG_MODE:
        sb_puts(sb, mode_names[0]); /* the default, whatever mode is in force */
        break;
    case ARG_FAULT_POINT: {
        const emu_fault_point *fp = p;
        if (fp->token)
            sb_printf(sb, "%d@%d", fp->token, fp->generation);
        break;
    }
    case ARG_INIT_EXIT:
        if (d->exit_init_step)
            sb_printf(sb, "%d:%d", d->exit_init_step, d->exit_init_code);
        break;
    }
}

/* ---------------------------------------------------------------- defaults, usage */

static void set_defaults(emu_options *o, emu_mode mode)
{
    memset(o, 0, sizeof *o);
    o->system_prompt = xstrdup("");
    o->template_filename_axmodel = xstrdup("tinyllama-int8/tinyllama_l%d.axmodel");
    o->filename_post_axmodel = xstrdup("tinyllama-int8/tinyllama_post.axmodel");
    o->url_tokenizer_model = xstrdup("http://127.0.0.1:12345");
    o->filename_tokens_embed = xstrdup("tinyllama.model.embed_tokens.weight.bfloat16.bin");
    o->axmodel_num = 22;
    o->tokens_embed_num = 32000;
    o->tokens_embed_size = 2048;
    o->use_mmap_load_embed = false;
    o->devices = NULL; /* required where it exists: no default */

    o->mode = mode;
    o->host = xstrdup("127.0.0.1");
    o->port = 8000;
    o->profile = xstrdup(mode == EMU_MODE_AX650 ? "qwen3-4b-ax650" : "qwen3-4b-pi5");
    o->time_scale = 1.0;
    o->init_seconds = -1.0;
    o->dispatch_delay = 0.0;
    o->reply_tokens = 0;
    o->think_text = xstrdup("");
    o->seed = 0;
    o->max_token_len = 2559;
    o->prefill_max = 2048;
    o->exit_init_code = 255;
}

static void append_usage(strbuf *sb, const char *prog, emu_mode mode)
{
    emu_options defaults;
    set_defaults(&defaults, mode);

    sb_printf(sb, "usage: %s ", prog);
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (option_exists(&option_table[i], mode) && option_table[i].required)
            sb_printf(sb, "--%s=%s ", option_table[i].name, type_name(&option_table[i]));
    sb_puts(sb, "[options] ... \n");
    sb_puts(sb, "options:\n");

    size_t width = 0;
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (option_exists(&option_table[i], mode) && strlen(option_table[i].name) > width)
            width = strlen(option_table[i].name);

    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option_spec *spec = &option_table[i];
        if (!option_exists(spec, mode))
            continue;
        if (spec->short_name)
            sb_printf(sb, "  -%c, ", spec->short_name);
        else
            sb_puts(sb, "      ");
        sb_printf(sb, "--%-*s%s", (int)(width + 4), spec->name, spec->description);
        if (spec->kind != ARG_FLAG) {
            sb_printf(sb, " (%s", type_name(spec));
            if (!spec->required) {
                sb_puts(sb, " [=");
                format_default(sb, &defaults, spec);
                sb_putc(sb, ']');
            }
            sb_putc(sb, ')');
        }
        sb_putc(sb, '\n');
    }
    emu_options_free(&defaults);
}

/* ---------------------------------------------------------------- the parser */

static void add_error(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_error(parser *p, const char *fmt, ...)
{
    if (p->error_count++ == 0) {
        strbuf sb = {0};
        va_list ap;
        va_start(ap, fmt);
        sb_vprintf(&sb, fmt, ap);
        va_end(ap);
        p->first_error = sb_steal(&sb);
    }
}

static int find_long(const parser *p, const char *name, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (option_exists(&option_table[i], p->mode) && strlen(option_table[i].name) == len &&
            !memcmp(option_table[i].name, name, len))
            return (int)i;
    return -1;
}

static int find_short(const parser *p, char c)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (option_exists(&option_table[i], p->mode) && option_table[i].short_name &&
            (unsigned char)option_table[i].short_name == (unsigned char)c)
            return (int)i;
    return -1;
}

/* --name=value, --name value, or a short option followed by a value. */
static void set_with_value(parser *p, int idx, const char *value)
{
    const option_spec *spec = &option_table[idx];
    if (!store_value(p->o, spec, value)) {
        add_error(p, "option value is invalid: --%s=%s", spec->name, value);
        return;
    }
    p->given[idx] = true;
}

/* --name or a short option without a value. */
static void set_without_value(parser *p, int idx)
{
    const option_spec *spec = &option_table[idx];
    if (spec->kind != ARG_FLAG) {
        add_error(p, "option needs value: --%s", spec->name);
        return;
    }
    p->given[idx] = true;
    p->help = true;
}

/* args[1..total): argv's arguments, then from index vendor_end on the AXLLAMA_EMU_ARGS words.
 * An option's value is never taken across that boundary. */
static void parse_args(parser *p, const char *const *args, int vendor_end, int total)
{
    for (int i = 1; i < total; i++) {
        const char *arg = args[i];
        bool from_env = i >= vendor_end;
        int limit = from_env ? total : vendor_end; /* where this option's value may come from */

        if (from_env && strncmp(arg, EMU_PREFIX, strlen(EMU_PREFIX)) != 0) {
            add_error(p, "%s: only " EMU_PREFIX "* options are allowed there, not: %s", ENV_ARGS, arg);
            continue;
        }
        if (!strncmp(arg, "--", 2)) {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
            int idx = find_long(p, name, name_len);
            if (idx < 0) {
                add_error(p, "undefined option: --%.*s", (int)name_len, name);
                continue;
            }
            if (eq)
                set_with_value(p, idx, eq + 1);
            else if (option_table[idx].kind == ARG_FLAG)
                set_without_value(p, idx);
            else if (i + 1 >= limit)
                add_error(p, "option needs value: --%s", option_table[idx].name);
            else
                set_with_value(p, idx, args[++i]);
        } else if (arg[0] == '-') {
            if (!arg[1])
                continue; /* a lone "-" is skipped */
            /* grouped short options: all but the last are set without a value */
            size_t n = strlen(arg);
            for (size_t j = 1; j + 1 < n; j++) {
                int idx = find_short(p, arg[j]);
                if (idx < 0)
                    add_error(p, "undefined short option: -%c", arg[j]);
                else
                    set_without_value(p, idx);
            }
            int idx = find_short(p, arg[n - 1]);
            if (idx < 0)
                add_error(p, "undefined short option: -%c", arg[n - 1]);
            else if (i + 1 < limit && option_table[idx].kind != ARG_FLAG)
                set_with_value(p, idx, args[++i]);
            else
                set_without_value(p, idx);
        }
        /* else: a "rest" argument, collected and ignored by the vendor binary */
    }

    /* the vendor parser walks its options by name here; only one option is ever required */
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (option_exists(&option_table[i], p->mode) && option_table[i].required && !p->given[i])
            add_error(p, "need option: --%s", option_table[i].name);
}

/* The emulator's cross-option rule: the largest prefill group must fit in the context. */
static void check_geometry(parser *p)
{
    const emu_options *o = p->o;
    if (o->max_token_len > o->prefill_max)
        return;
    int prefill_idx = find_long(p, "emu-prefill-max", strlen("emu-prefill-max"));
    int max_idx = find_long(p, "emu-max-token-len", strlen("emu-max-token-len"));
    if (p->given[prefill_idx] && !p->given[max_idx])
        add_error(p,
                  "option value is invalid: --emu-prefill-max=%d (must be less than "
                  "--emu-max-token-len=%d)",
                  o->prefill_max, o->max_token_len);
    else
        add_error(p,
                  "option value is invalid: --emu-max-token-len=%d (must be greater than "
                  "--emu-prefill-max=%d)",
                  o->max_token_len, o->prefill_max);
}

/* Splits AXLLAMA_EMU_ARGS at white space into words pointing into *storage (freed by caller). */
static size_t split_env_args(char **storage, const char ***words)
{
    const char *env = getenv(ENV_ARGS);
    *storage = NULL;
    *words = NULL;
    if (!env)
        return 0;
    char *s = xstrdup(env);
    size_t n = 0, cap = 0;
    const char **w = NULL;
    for (char *c = s; *c;) {
        while (*c && isspace((unsigned char)*c))
            *c++ = '\0';
        if (!*c)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            w = xrealloc(w, cap * sizeof *w);
        }
        w[n++] = c;
        while (*c && !isspace((unsigned char)*c))
            c++;
    }
    *storage = s;
    *words = w;
    return n;
}

/* One full pass of the parser with the option set of mode; o gets the defaults of mode first. */
static void run_parser(parser *p, emu_options *o, emu_mode mode, const char *const *args, int vendor_end, int total)
{
    memset(p, 0, sizeof *p);
    p->o = o;
    p->mode = mode;
    set_defaults(o, mode);
    if (vendor_end < 1) {
        add_error(p, "argument number must be longer than 0");
        return;
    }
    parse_args(p, args, vendor_end, total);
}

int emu_options_parse(emu_options *o, int argc, char **argv, FILE *err)
{
    char *env_storage = NULL;
    const char **env_words = NULL;
    size_t env_count = split_env_args(&env_storage, &env_words);

    int vendor_end = argc > 0 ? argc : 0;
    int total = vendor_end + (vendor_end > 0 ? (int)env_count : 0);
    const char **args = xcalloc((size_t)total + 1, sizeof *args);
    for (int i = 0; i < vendor_end; i++)
        args[i] = argv[i];
    for (int i = vendor_end; i < total; i++)
        args[i] = env_words[i - vendor_end];

    /* --emu-mode decides whether --devices exists: find it with a first pass over everything
     * (AXCL option set, the default), then parse for real with the option set of that mode. */
    parser p;
    run_parser(&p, o, EMU_MODE_AXCL, args, vendor_end, total);
    emu_mode mode = o->mode;
    if (mode != EMU_MODE_AXCL) {
        free(p.first_error);
        emu_options_free(o);
        run_parser(&p, o, mode, args, vendor_end, total);
        o->mode = mode; /* the option set in force, even if some odd argv says otherwise */
    }
    if (p.error_count == 0 && vendor_end >= 1)
        check_geometry(&p);

    int status = -1;
    const char *prog = vendor_end >= 1 && argv[0] ? argv[0] : "";
    if ((argc == 1 && p.error_count > 0) || p.help) {
        strbuf usage = {0};
        append_usage(&usage, prog, mode);
        fputs(usage.data, err);
        sb_free(&usage);
        status = 0;
    } else if (p.error_count > 0) {
        strbuf msg = {0};
        sb_printf(&msg, "%s\n", p.first_error);
        append_usage(&msg, prog, mode);
        fputs(msg.data, err);
        sb_free(&msg);
        status = 1;
    }
    if (status >= 0)
        emu_options_free(o); /* the program is about to exit: nothing for the caller to free */

    free(p.first_error);
    free(args);
    free(env_words);
    free(env_storage);
    return status;
}

void emu_options_free(emu_options *o)
{
    if (!o)
        return;
    char **strings[] = {&o->system_prompt,
                        &o->template_filename_axmodel,
                        &o->filename_post_axmodel,
                        &o->url_tokenizer_model,
                        &o->filename_tokens_embed,
                        &o->devices,
                        &o->host,
                        &o->profile,
                        &o->think_text};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
}
