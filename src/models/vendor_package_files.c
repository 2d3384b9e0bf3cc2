/* vendor_package_files: the package folder and its files for `axllama import` (see
 * vendor_package.h): listing the folder, finding the runtime's binary, the run script (and its
 * flags, through run_script.c) and the tokenizer folder, and checking every file the runtime needs
 * (missing, Git LFS pointers, not executable, another machine's build). */
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

#include "models/vendor_package_internal.h"

#define VP_SCRIPT_MAX_BYTES (1u << 20)
/* A Git LFS pointer is about 130 bytes; anything this large is real content. */
#define VP_LFS_POINTER_MAX_BYTES 1024
#define VP_LFS_POINTER_PREFIX "version https://git-lfs.github.com/spec/"

/* ------------------------------------------------------------------------------------ files */

/* The last part of a path. */
const char *vp_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

char *vp_read_small_file(const char *path, size_t max, size_t *len_out)
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

char *vp_path_join(const char *dir, const char *rel)
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
    char *text = vp_read_small_file(path, VP_LFS_POINTER_MAX_BYTES, NULL);
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
    char *path = vp_path_join(dir, rel);
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

/* ------------------------------------------------------------------------ the binary, the script, the tokenizer */

static int by_bytes(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

bool vp_list_dir(const char *dir, dir_listing *out)
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

void vp_dir_listing_free(dir_listing *l)
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
    char *p = vp_path_join(dir, name);
    struct stat st;
    bool d = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return d;
}

static bool is_regular(const char *dir, const char *name)
{
    char *p = vp_path_join(dir, name);
    struct stat st;
    bool r = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return r;
}

/* The runtime and its binary; false with a message. */
bool vp_find_binary(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err)
{
    if (opt->has_runtime) {
        imp->runtime = opt->runtime;
    } else if (!vp_runtime_for_machine(opt->machine, opt->axcl_driver, &imp->runtime)) {
        sb_printf(err, "this machine (%s) runs none of the vendor's runtimes (they are built for aarch64 and x86_64)",
                  opt->machine);
        return false;
    }
    const char *want = vp_runtime_binary(imp->runtime);
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], want)) {
            imp->binary = vp_path_join(imp->dir, want);
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
        sb_printf(err, "%s has no %s, %s", imp->dir, want, vp_runtime_description(imp->runtime));
        if (opt->has_runtime)
            sb_printf(err, " (asked for with --runtime %s)", vp_runtime_name(imp->runtime));
        else
            sb_printf(err, ", which this machine needs (%s%s)", opt->machine,
                      vp_machine_is_aarch64(opt->machine)
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
const char *vp_find_script(const dir_listing *l, vp_runtime rt, bool *other)
{
    const char *match = NULL, *any = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const char *n = l->names[i];
        if (strncmp(n, "run", 3) || !ends_with(n, ".sh"))
            continue;
        if (!any)
            any = n;
        if (strstr(n, vp_runtime_script_key(rt)) && (!match || (strstr(n, "_api") && !strstr(match, "_api"))))
            match = n;
    }
    *other = !match && any;
    return match ? match : any;
}

bool vp_read_script_flags(vp_import *imp, const char *script, strbuf *err)
{
    char *path = vp_path_join(imp->dir, script);
    char *text = vp_read_small_file(path, VP_SCRIPT_MAX_BYTES, NULL);
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

bool vp_find_tokenizer(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err)
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
    const char *keys[] = {vp_base_name(pattern), pattern_dir, vp_base_name(imp->dir), NULL};
    const char *best = NULL, *only = NULL, *incomplete = NULL;
    size_t best_fit = 0, n_complete = 0;
    bool tie = false;
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->names[i];
        if (!is_tokenizer_folder(name) || !is_dir(imp->dir, name))
            continue;
        char *tok = vp_path_join(imp->dir, name);
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
        imp->tokenizer_dir = vp_path_join(imp->dir, chosen);
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
const char *vp_find_upstream_script(const dir_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (ends_with(l->names[i], "_tokenizer_uid.py") || ends_with(l->names[i], "tokenizer_uid.py"))
            return l->names[i];
    return NULL;
}

bool vp_check_files(const vp_options *opt, vp_import *imp, strbuf *err)
{
    file_report r = {0};
    check_file(imp->dir, vp_runtime_binary(imp->runtime), vp_runtime_binary(imp->runtime), false, &r);
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
        const char *base = vp_base_name(imp->dir);
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
    bool fits = !arch || (vp_machine_is_x86_64(opt->machine) && !strcmp(arch, "x86_64")) ||
                (vp_machine_is_aarch64(opt->machine) && !strcmp(arch, "aarch64")) ||
                (!vp_machine_is_x86_64(opt->machine) && !vp_machine_is_aarch64(opt->machine));
    if (!fits) {
        sb_printf(err,
                  "%s is a program for %s, and this machine is %s; pick the build for this machine with "
                  "--runtime",
                  imp->binary, arch, opt->machine);
        return false;
    }
    return true;
}
