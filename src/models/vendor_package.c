/* vendor_package: reading an AXERA model package for `axllama import` (see vendor_package.h): the
 * runtime for the machine, the run script's flags (run_script.c), the files the runtime needs (missing,
 * Git LFS pointers, not executable, another machine's build), the tokenizer and its chat template,
 * the context geometry, the name, and the manifest made of it all. */
#include "models/vendor_package.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/manifest.h"
#include "tokenizer/tokenizer.h"

#define VP_DEFAULT_PORT 8000
#define VP_DEFAULT_MAX_PREFILL 2048
#define VP_DEFAULT_MAX_POSITIONS 2559
#define VP_AXCL_LOAD_TIMEOUT_S 300
#define VP_AXCL_LIBRARY_PATH "/usr/lib/axcl"
#define VP_SCRIPT_MAX_BYTES (1u << 20)
#define VP_README_MAX_BYTES (4u << 20)
#define VP_CONFIG_MAX_BYTES (8u << 20)
/* A Git LFS pointer is about 130 bytes; anything this large is real content. */
#define VP_LFS_POINTER_MAX_BYTES 1024
#define VP_LFS_POINTER_PREFIX "version https://git-lfs.github.com/spec/"
#define VP_UPSTREAM_PORT 12345

/* ------------------------------------------------------------------------------------ runtimes */

static const struct {
    const char *name, *binary, *script_key, *what;
} runtimes[VP_RUNTIME_COUNT] = {
    [VP_RUNTIME_AX650] = {"ax650", "main_api_ax650", "ax650", "the native AX650 build"},
    [VP_RUNTIME_AXCL_AARCH64] = {"axcl_aarch64", "main_api_axcl_aarch64", "axcl_aarch64",
                                 "the AXCL build for arm64 hosts"},
    [VP_RUNTIME_AXCL_X86] = {"axcl_x86", "main_api_axcl_x86", "axcl_x86", "the AXCL build for x86_64 hosts"},
};

const char *vp_runtime_name(vp_runtime r)
{
    return runtimes[r].name;
}

const char *vp_runtime_binary(vp_runtime r)
{
    return runtimes[r].binary;
}

bool vp_runtime_parse(const char *s, vp_runtime *out)
{
    for (int i = 0; i < VP_RUNTIME_COUNT; i++)
        if (!strcmp(s, runtimes[i].name) || !strcmp(s, runtimes[i].binary)) {
            *out = (vp_runtime)i;
            return true;
        }
    return false;
}

static bool machine_is_x86_64(const char *m)
{
    return !strcmp(m, "x86_64") || !strcmp(m, "amd64");
}

static bool machine_is_aarch64(const char *m)
{
    return !strcmp(m, "aarch64") || !strcmp(m, "arm64");
}

bool vp_runtime_for_machine(const char *machine, bool axcl_driver, vp_runtime *out)
{
    if (machine_is_x86_64(machine)) {
        *out = VP_RUNTIME_AXCL_X86;
        return true;
    }
    if (machine_is_aarch64(machine)) {
        *out = axcl_driver ? VP_RUNTIME_AXCL_AARCH64 : VP_RUNTIME_AX650;
        return true;
    }
    return false;
}

static bool runtime_is_axcl(vp_runtime r)
{
    return r != VP_RUNTIME_AX650;
}

/* The last part of a path. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ------------------------------------------------------------------------------------ template, geometry, name */

static bool contains_all(const char *s, const char *const *needles)
{
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(s, needles[i]))
            return false;
    return true;
}

static bool contains_any(const char *s, const char *const *needles)
{
    for (size_t i = 0; needles[i]; i++)
        if (strstr(s, needles[i]))
            return true;
    return false;
}

bool vp_template_family(const char *t, chat_template_family *out)
{
    static const char *const chatml[] = {"<|im_start|>", "<|im_end|>", NULL};
    static const char *const qwen3[] = {"enable_thinking", "reasoning_content", "<think>", "<tool_call>", NULL};
    static const char *const qwen25[] = {CHAT_DEFAULT_SYSTEM_PROMPT, "<tool_call>", NULL};
    static const char *const thinking[] = {"enable_thinking", "<think>", "reasoning_content", NULL};
    if (!t || !contains_all(t, chatml))
        return false;
    if (contains_all(t, qwen3)) {
        *out = CHAT_TEMPLATE_QWEN3;
        return true;
    }
    if (contains_all(t, qwen25) && !contains_any(t, thinking)) {
        *out = CHAT_TEMPLATE_QWEN25;
        return true;
    }
    return false;
}

const char *vp_template_name(chat_template_family f)
{
    return f == CHAT_TEMPLATE_QWEN25 ? "qwen2.5" : "qwen3";
}

/* The number after "key" and spaces, ':' and spaces, at each occurrence; the largest (0: none). */
static int largest_value_after(const char *text, const char *key)
{
    int best = 0;
    size_t klen = strlen(key);
    for (const char *p = strstr(text, key); p; p = strstr(p + klen, key)) {
        const char *q = p + klen;
        while (*q == ' ')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ')
            q++;
        long v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*q) && digits < 9) {
            v = v * 10 + (*q++ - '0');
            digits++;
        }
        if (digits && v > best)
            best = (int)v;
    }
    return best;
}

void vp_readme_geometry(const char *text, int *max_positions, int *max_prefill)
{
    *max_positions = largest_value_after(text, "max_token_len");
    *max_prefill = largest_value_after(text, "prefill_max_token_num");
}

static bool name_char_ok(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* Where a "-<number>b" part starts in s (the size), or NULL. */
static const char *size_part(const char *s)
{
    for (const char *p = strchr(s, '-'); p; p = strchr(p + 1, '-')) {
        const char *q = p + 1;
        if (!isdigit((unsigned char)*q))
            continue;
        while (isdigit((unsigned char)*q) || *q == '.')
            q++;
        if ((*q == 'b' || *q == 'B' || *q == 'm' || *q == 'M') && (q[1] == '\0' || q[1] == '-' || q[1] == '_'))
            return p;
    }
    return NULL;
}

bool vp_default_name(const char *base, char *out, size_t outlen)
{
    strbuf s = {0};
    for (const char *p = base; *p; p++) {
        unsigned char c = (unsigned char)*p;
        sb_putc(&s, name_char_ok(c) ? (char)tolower(c) : '-');
    }
    if (!s.data) {
        sb_free(&s);
        return false;
    }
    const char *size = size_part(s.data);
    strbuf name = {0};
    if (size && size > s.data) {
        sb_append(&name, s.data, (size_t)(size - s.data));
        sb_printf(&name, ":%s", size + 1);
    } else {
        sb_puts(&name, s.data);
    }
    bool ok = model_name_normalize(name.data, out, outlen);
    sb_free(&s);
    sb_free(&name);
    return ok;
}

/* "4.0B" from a folder name with a "-4B" part; "" without one. */
static char *parameter_size_of(const char *base)
{
    const char *p = size_part(base);
    if (!p || !strchr("bB", p[1 + strspn(p + 1, "0123456789.")]))
        return xstrdup("");
    double v = strtod(p + 1, NULL);
    strbuf sb = {0};
    sb_printf(&sb, "%.1fB", v);
    return sb_steal(&sb);
}

/* "W8A16" from the first "w8a16"-like word of a README; "" without one. */
static char *quantization_of(const char *text)
{
    for (const char *p = text; p && *p; p++) {
        if ((*p != 'w' && *p != 'W') || (p > text && isalnum((unsigned char)p[-1])))
            continue;
        const char *q = p + 1;
        size_t d1 = strspn(q, "0123456789");
        if (!d1 || d1 > 2 || (q[d1] != 'a' && q[d1] != 'A'))
            continue;
        size_t d2 = strspn(q + d1 + 1, "0123456789");
        if (!d2 || d2 > 2 || isalnum((unsigned char)q[d1 + 1 + d2]))
            continue;
        strbuf sb = {0};
        sb_printf(&sb, "W%.*sA%.*s", (int)d1, q, (int)d2, q + d1 + 1);
        return sb_steal(&sb);
    }
    return xstrdup("");
}

void vp_manifest_file_name(const char *name, char *out, size_t outlen)
{
    strbuf sb = {0};
    for (const char *p = name; *p; p++)
        sb_putc(&sb, *p == '/' || *p == ':' ? '-' : *p);
    sb_puts(&sb, ".json");
    snprintf(out, outlen, "%s", sb.data);
    sb_free(&sb);
}

/* ------------------------------------------------------------------------------------ files */

static char *read_small_file(const char *path, size_t max, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    strbuf sb = {0};
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && sb.len <= max)
        sb_append(&sb, buf, n);
    fclose(f);
    if (sb.len > max) {
        sb_free(&sb);
        errno = EFBIG;
        return NULL;
    }
    if (len_out)
        *len_out = sb.len;
    return sb_steal(&sb);
}

static char *path_join(const char *dir, const char *rel)
{
    strbuf sb = {0};
    if (rel[0] == '/')
        sb_puts(&sb, rel);
    else
        sb_printf(&sb, "%s/%s", dir, rel);
    return sb_steal(&sb);
}

/* Whether path is a Git LFS pointer; *real_size gets the size it stands for (0 if unknown). */
static bool is_lfs_pointer(const char *path, const struct stat *st, uint64_t *real_size)
{
    *real_size = 0;
    if (!S_ISREG(st->st_mode) || st->st_size > VP_LFS_POINTER_MAX_BYTES)
        return false;
    char *text = read_small_file(path, VP_LFS_POINTER_MAX_BYTES, NULL);
    bool pointer = text && !strncmp(text, VP_LFS_POINTER_PREFIX, strlen(VP_LFS_POINTER_PREFIX));
    const char *size = pointer ? strstr(text, "\nsize ") : NULL;
    if (size)
        *real_size = strtoull(size + 6, NULL, 10);
    free(text);
    return pointer;
}

static void human_bytes(uint64_t n, char *out, size_t outlen)
{
    static const char *const units[] = {"bytes", "KB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%llu bytes", (unsigned long long)n);
    else
        snprintf(out, outlen, "%.1f %s", v, units[u]);
}

/* What the file checks found. */
typedef struct {
    strbuf missing, pointers;
    size_t n_missing, n_pointers;
    uint64_t model_bytes;
    size_t n_model_files;
} file_report;

/* Checks dir/rel, named in messages as shown. */
static void check_file(const char *dir, const char *rel, const char *shown, bool model_file, file_report *r)
{
    char *path = path_join(dir, rel);
    struct stat st;
    uint64_t real = 0;
    if (stat(path, &st) != 0 || S_ISDIR(st.st_mode)) {
        sb_printf(&r->missing, "\n  %s", shown);
        r->n_missing++;
    } else if (is_lfs_pointer(path, &st, &real)) {
        char real_text[32] = "";
        if (real)
            human_bytes(real, real_text, sizeof real_text);
        sb_printf(&r->pointers, "\n  %s (%lld bytes%s%s)", shown, (long long)st.st_size,
                  real ? "; the real file has " : "", real_text);
        r->n_pointers++;
    } else if (model_file) {
        r->model_bytes += (uint64_t)st.st_size;
        r->n_model_files++;
    }
    free(path);
}

static void file_report_free(file_report *r)
{
    sb_free(&r->missing);
    sb_free(&r->pointers);
}

/* The ELF machine of a program ("x86_64", "aarch64", ...), or NULL when it is not ELF (a script). */
static const char *elf_machine(const char *path)
{
    unsigned char h[20];
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n < sizeof h || memcmp(h, "\177ELF", 4))
        return NULL;
    unsigned m = h[5] == 2 ? (unsigned)h[18] << 8 | h[19] : (unsigned)h[19] << 8 | h[18];
    switch (m) {
    case 62: return "x86_64";
    case 183: return "aarch64";
    case 40: return "arm (32-bit)";
    case 3: return "i386";
    case 243: return "riscv";
    default: return "another processor";
    }
}

/* ------------------------------------------------------------------------------------ inspection */

typedef struct {
    char **names; /* the package folder's entries, sorted */
    size_t n;
} dir_listing;

static int by_bytes(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool list_dir(const char *dir, dir_listing *out)
{
    struct dirent **entries;
    int n = scandir(dir, &entries, NULL, by_bytes);
    if (n < 0)
        return false;
    out->names = xcalloc((size_t)n + 1, sizeof *out->names);
    out->n = 0;
    for (int i = 0; i < n; i++) {
        if (entries[i]->d_name[0] != '.')
            out->names[out->n++] = xstrdup(entries[i]->d_name);
        free(entries[i]);
    }
    free(entries);
    return true;
}

static void dir_listing_free(dir_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static bool is_dir(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct stat st;
    bool d = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return d;
}

static bool is_regular(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct stat st;
    bool r = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return r;
}

/* The runtime and its binary; false with a message. */
static bool find_binary(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err)
{
    if (opt->has_runtime) {
        imp->runtime = opt->runtime;
    } else if (!vp_runtime_for_machine(opt->machine, opt->axcl_driver, &imp->runtime)) {
        sb_printf(err, "this machine (%s) runs none of the vendor's runtimes (they are built for aarch64 and x86_64)",
                  opt->machine);
        return false;
    }
    const char *want = runtimes[imp->runtime].binary;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], want)) {
            imp->binary = path_join(imp->dir, want);
            return true;
        }
    strbuf present = {0};
    for (size_t i = 0; i < l->n; i++)
        if (!strncmp(l->names[i], "main_api_", 9))
            sb_printf(&present, "%s%s", present.len ? ", " : "", l->names[i]);
    if (!present.len) {
        sb_printf(err,
                  "%s has no main_api_* binary (the runtime's API server): it is not an AXERA model package, or one "
                  "from before the API server was shipped",
                  imp->dir);
    } else {
        sb_printf(err, "%s has no %s, %s", imp->dir, want, runtimes[imp->runtime].what);
        if (opt->has_runtime)
            sb_printf(err, " (asked for with --runtime %s)", runtimes[imp->runtime].name);
        else
            sb_printf(err, ", which this machine needs (%s%s)", opt->machine,
                      machine_is_aarch64(opt->machine)
                          ? (opt->axcl_driver ? " with the AXCL driver" : " without the AXCL driver")
                          : "");
        sb_printf(err,
                  ". The package has: %s. --runtime ax650|axcl_aarch64|axcl_x86 picks another one if this "
                  "machine can run it",
                  present.data);
    }
    sb_free(&present);
    return false;
}

/* The run script for the runtime (an _api one first), else any run_*.sh; NULL if there is none. */
static const char *find_script(const dir_listing *l, vp_runtime rt, bool *other)
{
    const char *match = NULL, *any = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const char *n = l->names[i];
        if (strncmp(n, "run", 3) || !ends_with(n, ".sh"))
            continue;
        if (!any)
            any = n;
        if (strstr(n, runtimes[rt].script_key) && (!match || (strstr(n, "_api") && !strstr(match, "_api"))))
            match = n;
    }
    *other = !match && any;
    return match ? match : any;
}

static bool read_script_flags(vp_import *imp, const char *script, strbuf *err)
{
    char *path = path_join(imp->dir, script);
    char *text = read_small_file(path, VP_SCRIPT_MAX_BYTES, NULL);
    free(path);
    if (!text) {
        sb_printf(err, "cannot read %s/%s: %s", imp->dir, script, strerror(errno));
        return false;
    }
    rs_words args;
    char *program = NULL;
    char msg[512];
    bool ok = rs_command(text, &args, &program, msg, sizeof msg) && rs_flags_parse(&args, &imp->flags, msg, sizeof msg);
    if (!ok)
        sb_printf(err, "cannot take the runtime's flags from %s: %s", script, msg);
    rs_words_free(&args);
    free(program);
    free(text);
    return ok;
}

/* How well a tokenizer folder's name fits the model: the length of its prefix ("qwen3" of
 * "qwen3_tokenizer") when a key (the layer pattern, its folder, the package's name) starts with it
 * as a whole word; 0 when none does. */
static size_t tokenizer_fit(const char *folder, const char *const *keys)
{
    size_t n = strlen(folder);
    const char *suffix = ends_with(folder, "_tokenizer") || ends_with(folder, "-tokenizer") ? "_tokenizer" : NULL;
    if (!suffix)
        return 0;
    size_t plen = n - strlen(suffix);
    if (!plen)
        return 0;
    for (size_t i = 0; keys[i]; i++) {
        const char *k = keys[i];
        if (strlen(k) >= plen && !strncasecmp(k, folder, plen) && !isalnum((unsigned char)k[plen]) && k[plen] != '.')
            return plen;
    }
    return 0;
}

static bool is_tokenizer_folder(const char *name)
{
    return ends_with(name, "_tokenizer") || ends_with(name, "-tokenizer") || !strcmp(name, "tokenizer");
}

static bool find_tokenizer(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err)
{
    if (opt->tokenizer_dir) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(opt->tokenizer_dir, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
            sb_printf(err, "--tokenizer %s is not a directory", opt->tokenizer_dir);
            return false;
        }
        imp->tokenizer_dir = xstrdup(real);
        return true;
    }
    /* the layer pattern ("qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel"), its folder, the package */
    const char *pattern = imp->flags.template_filename;
    char *pattern_dir = xstrdup(pattern);
    char *slash = strchr(pattern_dir, '/');
    if (slash)
        *slash = '\0';
    const char *keys[] = {base_name(pattern), pattern_dir, base_name(imp->dir), NULL};
    const char *best = NULL, *only = NULL, *incomplete = NULL;
    size_t best_fit = 0, n_complete = 0;
    bool tie = false;
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->names[i];
        if (!is_tokenizer_folder(name) || !is_dir(imp->dir, name))
            continue;
        char *tok = path_join(imp->dir, name);
        bool complete = is_regular(tok, "tokenizer.json");
        free(tok);
        if (!complete) {
            incomplete = incomplete ? incomplete : name;
            continue;
        }
        n_complete++;
        only = name;
        size_t fit = tokenizer_fit(name, keys);
        if (fit > best_fit) {
            best = name;
            best_fit = fit;
            tie = false;
        } else if (fit && fit == best_fit) {
            tie = true;
        }
    }
    free(pattern_dir);
    const char *chosen = n_complete == 1 ? only : tie ? NULL : best;
    if (chosen) {
        imp->tokenizer_dir = path_join(imp->dir, chosen);
        return true;
    }
    if (n_complete > 1) {
        sb_printf(err, "%s has several tokenizer folders and none of them is clearly this model's:", imp->dir);
        for (size_t i = 0; i < l->n; i++)
            if (is_tokenizer_folder(l->names[i]) && is_dir(imp->dir, l->names[i]))
                sb_printf(err, " %s", l->names[i]);
        sb_puts(err, "; choose one with --tokenizer DIR");
    } else if (incomplete) {
        sb_printf(err,
                  "the tokenizer folder %s/%s has no tokenizer.json; copy the Hugging Face tokenizer files "
                  "(tokenizer.json, tokenizer_config.json) of the model there, or pass another folder with "
                  "--tokenizer DIR",
                  imp->dir, incomplete);
    } else {
        sb_printf(err,
                  "%s has no tokenizer folder (a *_tokenizer directory with tokenizer.json and "
                  "tokenizer_config.json); pass one with --tokenizer DIR",
                  imp->dir);
    }
    return false;
}

/* The *_tokenizer_uid.py (the vendor's tokenizer service) of the package, or NULL. */
static const char *find_upstream_script(const dir_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (ends_with(l->names[i], "_tokenizer_uid.py") || ends_with(l->names[i], "tokenizer_uid.py"))
            return l->names[i];
    return NULL;
}

static bool check_files(const vp_options *opt, vp_import *imp, strbuf *err)
{
    file_report r = {0};
    check_file(imp->dir, runtimes[imp->runtime].binary, runtimes[imp->runtime].binary, false, &r);
    for (int i = 0; i < imp->flags.axmodel_num; i++) {
        char *layer = rs_layer_file(imp->flags.template_filename, i);
        check_file(imp->dir, layer, layer, true, &r);
        free(layer);
    }
    check_file(imp->dir, imp->flags.post_filename, imp->flags.post_filename, true, &r);
    check_file(imp->dir, imp->flags.embed_filename, imp->flags.embed_filename, true, &r);
    /* the tokenizer's files, named relative to the package when the folder is inside it */
    size_t dlen = strlen(imp->dir);
    const char *tok_shown = !strncmp(imp->tokenizer_dir, imp->dir, dlen) && imp->tokenizer_dir[dlen] == '/'
                                ? imp->tokenizer_dir + dlen + 1
                                : imp->tokenizer_dir;
    static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < 2; i++) {
        strbuf shown = {0};
        sb_printf(&shown, "%s/%s", tok_shown, tok_files[i]);
        check_file(imp->tokenizer_dir, tok_files[i], shown.data, false, &r);
        sb_free(&shown);
    }
    imp->size = r.model_bytes;
    imp->n_model_files = r.n_model_files;
    if (r.n_missing)
        sb_printf(err, "%s is incomplete: the runtime needs %s, which %s missing:%s", imp->dir,
                  r.n_missing == 1 ? "this file" : "these files", r.n_missing == 1 ? "is" : "are", r.missing.data);
    if (r.n_pointers) {
        const char *base = base_name(imp->dir);
        sb_printf(err,
                  "%s%s holds Git LFS pointer files (small text stand-ins) instead of the real files the runtime "
                  "needs:%s\nThe package was cloned without Git LFS. Fetch the real files with `git lfs install && "
                  "git lfs pull` inside %s, or download the package again with `huggingface-cli download "
                  "AXERA-TECH/%s --local-dir %s`.",
                  err->len ? "\n" : "", imp->dir, r.pointers.data, imp->dir, base, imp->dir);
    }
    bool ok = !r.n_missing && !r.n_pointers;
    file_report_free(&r);
    if (!ok)
        return false;

    if (access(imp->binary, X_OK) != 0) {
        sb_printf(err,
                  "%s is not executable (a download from Hugging Face does not keep the executable bit); make it "
                  "executable with: chmod +x %s",
                  imp->binary, imp->binary);
        return false;
    }
    const char *arch = elf_machine(imp->binary);
    bool fits = !arch || (machine_is_x86_64(opt->machine) && !strcmp(arch, "x86_64")) ||
                (machine_is_aarch64(opt->machine) && !strcmp(arch, "aarch64")) ||
                (!machine_is_x86_64(opt->machine) && !machine_is_aarch64(opt->machine));
    if (!fits) {
        sb_printf(err,
                  "%s is a program for %s, and this machine is %s; pick the build for this machine with "
                  "--runtime",
                  imp->binary, arch, opt->machine);
        return false;
    }
    return true;
}

/* tokenizer_config.json's chat_template (a string, or the "default" of a list of named ones), else
 * the folder's chat_template.jinja; NULL when there is none. */
static char *read_chat_template(const char *tokenizer_dir)
{
    char *path = path_join(tokenizer_dir, "tokenizer_config.json");
    char *text = read_small_file(path, VP_CONFIG_MAX_BYTES, NULL);
    free(path);
    json_t *config = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *t = json_object_get(config, "chat_template");
    char *out = NULL;
    if (json_is_string(t)) {
        out = xstrdup(json_string_value(t));
    } else if (json_is_array(t)) {
        size_t i;
        json_t *entry;
        json_array_foreach(t, i, entry)
        {
            const char *name = json_string_value(json_object_get(entry, "name"));
            const char *tmpl = json_string_value(json_object_get(entry, "template"));
            if (tmpl && name && !strcmp(name, "default"))
                out = xstrdup(tmpl);
        }
    }
    json_decref(config);
    if (!out) {
        char *jinja = path_join(tokenizer_dir, "chat_template.jinja");
        out = read_small_file(jinja, VP_CONFIG_MAX_BYTES, NULL);
        free(jinja);
    }
    return out;
}

static void compat_advice(const vp_import *imp, const char *upstream, strbuf *err)
{
    if (upstream)
        sb_printf(err,
                  "\nCompatibility mode can serve this model: the vendor's tokenizer service (%s in the package) "
                  "renders the template, and axllama forwards the runtime's calls to it. `axllama import %s --compat` "
                  "writes such a manifest (docs/models.md, \"Compatibility mode\"; the script needs python3 with "
                  "transformers).",
                  upstream, imp->dir);
    else
        sb_puts(err, "\nCompatibility mode can serve this model with a tokenizer service that renders the template "
                     "(the package has no *_tokenizer_uid.py): add a \"tokenizer_upstream\" key to the manifest "
                     "(docs/models.md, \"Compatibility mode\").");
    sb_puts(err, "\nIf the template is a variant of the Qwen3 or the Qwen2.5 one, --template qwen3|qwen2.5 imports it "
                 "with axllama's own rendering of that template.");
}

static bool check_tokenizer_and_template(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err)
{
    char msg[512] = "";
    tokenizer *tok = tokenizer_load(imp->tokenizer_dir, msg, sizeof msg);
    if (!tok) {
        sb_printf(err,
                  "the tokenizer in %s is not one axllama can read: %s\naxllama reads Hugging Face byte-level BPE "
                  "tokenizers (the Qwen2, Qwen2.5 and Qwen3 kind). Compatibility mode cannot serve this model "
                  "either: there the vendor's tokenizer service prepares the prompts, but axllama still decodes the "
                  "generated tokens with this tokenizer (docs/models.md, \"Compatibility mode\").",
                  imp->tokenizer_dir, msg);
        return false;
    }
    tokenizer_free(tok);

    const char *upstream = find_upstream_script(l);
    if (opt->compat) {
        if (!upstream) {
            sb_printf(err,
                      "--compat needs the vendor's tokenizer service (a *_tokenizer_uid.py script) in %s, and "
                      "there is none",
                      imp->dir);
            return false;
        }
        imp->upstream_script = xstrdup(upstream);
    }
    if (opt->template_name) {
        if (!strcmp(opt->template_name, "qwen3")) {
            imp->family = CHAT_TEMPLATE_QWEN3;
        } else if (!strcmp(opt->template_name, "qwen2.5")) {
            imp->family = CHAT_TEMPLATE_QWEN25;
        } else {
            sb_printf(err, "--template %s: axllama knows the templates qwen3 and qwen2.5", opt->template_name);
            return false;
        }
        imp->family_forced = true;
    } else {
        char *tmpl = read_chat_template(imp->tokenizer_dir);
        bool known = vp_template_family(tmpl, &imp->family);
        if (!known && !opt->compat) {
            if (tmpl)
                sb_printf(err,
                          "the chat template in %s/tokenizer_config.json is not one axllama renders (it renders "
                          "the Qwen3 and the Qwen2.5 templates, byte for byte).",
                          imp->tokenizer_dir);
            else
                sb_printf(err,
                          "the tokenizer in %s has no chat template (no chat_template in tokenizer_config.json, "
                          "no chat_template.jinja), so axllama cannot tell how to write the prompts.",
                          imp->tokenizer_dir);
            compat_advice(imp, upstream, err);
        }
        free(tmpl);
        if (!known && !opt->compat)
            return false;
        if (!known)
            imp->family = CHAT_TEMPLATE_QWEN3; /* compatibility mode: the upstream renders */
    }
    imp->thinking = imp->family == CHAT_TEMPLATE_QWEN3;
    return true;
}

static bool settle_geometry(const vp_options *opt, vp_import *imp, const char *readme, strbuf *err)
{
    int positions = 0, prefill = 0;
    if (readme)
        vp_readme_geometry(readme, &positions, &prefill);
    imp->geometry_from_readme = positions > 0 || prefill > 0;
    if (!positions)
        positions = prefill > VP_DEFAULT_MAX_POSITIONS ? prefill : VP_DEFAULT_MAX_POSITIONS;
    if (!prefill)
        prefill = positions < VP_DEFAULT_MAX_PREFILL ? positions : VP_DEFAULT_MAX_PREFILL;
    if (opt->max_positions > 0)
        positions = opt->max_positions;
    if (opt->max_prefill > 0)
        prefill = opt->max_prefill;
    if (prefill > positions) {
        if (opt->max_prefill > 0 || opt->max_positions > 0)
            sb_printf(err,
                      "the largest prefill (%d) is more than the context's positions (%d); check --max-prefill "
                      "and --max-positions",
                      prefill, positions);
        else
            sb_printf(err,
                      "the README's geometry makes no sense: prefill_max_token_num %d is more than "
                      "max_token_len %d; give --max-prefill and --max-positions",
                      prefill, positions);
        return false;
    }
    imp->max_positions = positions;
    imp->max_prefill = prefill;
    return true;
}

static bool settle_name(const vp_options *opt, vp_import *imp, strbuf *err)
{
    char name[MODEL_NAME_DISPLAY_MAX];
    if (opt->name) {
        if (!model_name_normalize(opt->name, name, sizeof name)) {
            sb_printf(err,
                      "\"%s\" is not a valid model name (Ollama's rules: [namespace/]model[:tag], letters, "
                      "digits, '_', '-' and '.'; docs/models.md)",
                      opt->name);
            return false;
        }
    } else if (!vp_default_name(base_name(imp->dir), name, sizeof name)) {
        sb_printf(err, "no model name can be made of the folder's name \"%s\"; give one: axllama import %s NAME",
                  base_name(imp->dir), imp->dir);
        return false;
    }
    imp->name = xstrdup(name);
    return true;
}

bool vendor_package_inspect(const vp_options *opt, vp_import *imp, strbuf *err)
{
    memset(imp, 0, sizeof *imp);
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(opt->dir, real) || stat(real, &st) != 0) {
        sb_printf(err, "cannot open %s: %s", opt->dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        sb_printf(err, "%s is not a directory (give the model package's folder)", opt->dir);
        return false;
    }
    imp->dir = xstrdup(real);
    imp->port = opt->port > 0 ? opt->port : VP_DEFAULT_PORT;
    dir_listing l = {0};
    if (!list_dir(imp->dir, &l)) {
        sb_printf(err, "cannot read %s: %s", imp->dir, strerror(errno));
        vp_import_free(imp);
        return false;
    }
    bool ok = find_binary(opt, &l, imp, err);
    if (ok) {
        const char *script = find_script(&l, imp->runtime, &imp->script_other);
        if (!script) {
            sb_printf(err,
                      "%s has no run_*.sh script, so the runtime's flags (the model files, the layer count, the "
                      "embedding size) are unknown",
                      imp->dir);
            ok = false;
        } else {
            imp->script = xstrdup(script);
            ok = read_script_flags(imp, script, err);
        }
    }
    ok = ok && find_tokenizer(opt, &l, imp, err) && check_files(opt, imp, err) &&
         check_tokenizer_and_template(opt, &l, imp, err);
    char *readme = NULL;
    if (ok) {
        char *path = path_join(imp->dir, "README.md");
        readme = read_small_file(path, VP_README_MAX_BYTES, NULL);
        free(path);
        ok = settle_geometry(opt, imp, readme, err) && settle_name(opt, imp, err);
    }
    if (ok) {
        imp->parameter_size = parameter_size_of(base_name(imp->dir));
        imp->quantization = quantization_of(readme ? readme : "");
    }
    free(readme);
    dir_listing_free(&l);
    if (!ok)
        vp_import_free(imp);
    return ok;
}

void vp_import_free(vp_import *imp)
{
    free(imp->dir);
    free(imp->binary);
    free(imp->script);
    rs_flags_free(&imp->flags);
    free(imp->tokenizer_dir);
    free(imp->name);
    free(imp->parameter_size);
    free(imp->quantization);
    free(imp->upstream_script);
    memset(imp, 0, sizeof *imp);
}

/* ------------------------------------------------------------------------------------ the manifest */

static json_t *string_array(const rs_words *w)
{
    json_t *a = json_array();
    for (size_t i = 0; i < w->n; i++)
        json_array_append_new(a, json_string(w->v[i]));
    return a;
}

json_t *vendor_package_manifest(const vp_import *imp)
{
    json_t *m = json_object();
    json_object_set_new(m, "name", json_string(imp->name));

    json_t *rt = json_object();
    json_object_set_new(rt, "binary", json_string(imp->binary));
    json_object_set_new(rt, "args", string_array(&imp->flags.args));
    json_object_set_new(rt, "workdir", json_string(imp->dir));
    json_object_set_new(rt, "port", json_integer(imp->port));
    if (runtime_is_axcl(imp->runtime)) {
        json_object_set_new(rt, "devices", json_string("auto"));
        json_object_set_new(rt, "load_timeout", json_integer(VP_AXCL_LOAD_TIMEOUT_S));
        json_t *env = json_object();
        json_object_set_new(env, "LD_LIBRARY_PATH", json_string(VP_AXCL_LIBRARY_PATH));
        json_object_set_new(rt, "env", env);
    }
    json_object_set_new(m, "runtime", rt);

    json_object_set_new(m, "tokenizer", json_string(imp->tokenizer_dir));
    json_object_set_new(m, "tokenizer_port", json_integer(0));
    json_object_set_new(m, "template", json_string(vp_template_name(imp->family)));
    json_t *ctx = json_object();
    json_object_set_new(ctx, "max_prefill", json_integer(imp->max_prefill));
    json_object_set_new(ctx, "max_positions", json_integer(imp->max_positions));
    json_object_set_new(m, "context", ctx);
    if (imp->flags.system_prompt && imp->flags.system_prompt[0])
        json_object_set_new(m, "system_prompt", json_string(imp->flags.system_prompt));
    json_object_set_new(m, "thinking", json_boolean(imp->thinking));

    json_t *details = json_object();
    json_object_set_new(details, "family", json_string(imp->family == CHAT_TEMPLATE_QWEN25 ? "qwen2" : "qwen3"));
    json_object_set_new(details, "parameter_size", json_string(imp->parameter_size ? imp->parameter_size : ""));
    json_object_set_new(details, "quantization_level", json_string(imp->quantization ? imp->quantization : ""));
    json_object_set_new(details, "format", json_string("axmodel"));
    json_object_set_new(m, "details", details);
    json_object_set_new(m, "size", json_integer((json_int_t)imp->size));

    if (imp->upstream_script) {
        json_t *up = json_object();
        strbuf url = {0};
        sb_printf(&url, "http://127.0.0.1:%d", VP_UPSTREAM_PORT);
        json_object_set_new(up, "url", json_string(url.data));
        sb_free(&url);
        json_t *cmd = json_array();
        char port[16];
        snprintf(port, sizeof port, "%d", VP_UPSTREAM_PORT);
        const char *words[] = {"python3", imp->upstream_script, "--host", "127.0.0.1", "--port", port};
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            json_array_append_new(cmd, json_string(words[i]));
        json_object_set_new(up, "command", cmd);
        json_object_set_new(up, "workdir", json_string(imp->dir));
        json_object_set_new(m, "tokenizer_upstream", up);
    }
    return m;
}
