/* cmd_import: `axllama import DIR [NAME]`, Ollama's `create` for an AXERA model package: learns the
 * machine (uname, the AXCL driver), has models/vendor_package read and check the folder, and writes
 * the manifest into the models directory (--models / AXLLAMA_MODELS, else the per-user one; --system
 * for /etc/axllama/models), atomically (a hidden temporary file, checked with the manifest parser,
 * then renamed). A running server picks the new file up at once (models/registry.c). docs/cli.md. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/buf.h"
#include "config/config.h"
#include "models/manifest.h"
#include "models/vendor_package.h"

#define SYSTEM_MODELS_DIR "/etc/axllama/models"
#define AXCL_LIBRARY_DIR "/usr/lib/axcl"

static const char import_usage[] =
    "Usage: axllama import DIR [NAME] [flags]\n"
    "\n"
    "Turns an AXERA model package (a folder as AXERA-TECH ships it on Hugging Face: main_api_* binaries,\n"
    "run_*.sh scripts, the *_tokenizer folder, the .axmodel files and the embedding .bin) into a model\n"
    "manifest. NAME defaults to one made of the folder's name (Qwen3-4B -> qwen3:4b).\n"
    "\n"
    "Flags:\n"
    "  --models DIR        write into DIR (default: $AXLLAMA_MODELS, else ~/.config/axllama/models)\n"
    "  --system            write into " SYSTEM_MODELS_DIR "\n"
    "  --runtime R         ax650, axcl_aarch64 or axcl_x86 (default: the one this machine runs)\n"
    "  --tokenizer DIR     the tokenizer folder (default: the package's *_tokenizer folder)\n"
    "  --template T        qwen3 or qwen2.5 (default: recognised from the tokenizer's chat template)\n"
    "  --max-prefill N     the runtime's largest prefill (default: from README.md, else 2048)\n"
    "  --max-positions N   the runtime's KV-cache positions (default: from README.md, else 2559)\n"
    "  --port N            the runtime's port (default 8000, the only one the vendor binary uses)\n"
    "  --compat            compatibility mode: the package's *_tokenizer_uid.py renders the prompts\n"
    "  --force             replace a model of the same name\n"
    "  -h, --help          this help\n";

typedef struct {
    const char *dir, *name, *models_dir, *tokenizer, *template_name;
    bool system, force, compat, has_runtime;
    vp_runtime runtime;
    int max_prefill, max_positions, port;
} import_args;

static int import_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "Error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", import_usage);
    return 2;
}

static bool parse_positive(const char *s, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* -1 to go on, else the exit status. */
static int parse_import_args(int argc, char **argv, import_args *a)
{
    enum {
        OPT_HELP = OPTION_LONG_BASE,
        OPT_MODELS,
        OPT_SYSTEM,
        OPT_RUNTIME,
        OPT_TOKENIZER,
        OPT_TEMPLATE,
        OPT_MAX_PREFILL,
        OPT_MAX_POSITIONS,
        OPT_PORT,
        OPT_COMPAT,
        OPT_FORCE,
    };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, OPT_HELP},
        {"models", required_argument, NULL, OPT_MODELS},
        {"system", no_argument, NULL, OPT_SYSTEM},
        {"runtime", required_argument, NULL, OPT_RUNTIME},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"max-prefill", required_argument, NULL, OPT_MAX_PREFILL},
        {"max-positions", required_argument, NULL, OPT_MAX_POSITIONS},
        {"port", required_argument, NULL, OPT_PORT},
        {"compat", no_argument, NULL, OPT_COMPAT},
        {"force", no_argument, NULL, OPT_FORCE},
        {0},
    };
    memset(a, 0, sizeof *a);
    options_begin();
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(import_usage, stdout); return 0;
        case OPT_MODELS: a->models_dir = optarg; break;
        case OPT_SYSTEM: a->system = true; break;
        case OPT_RUNTIME:
            if (!vp_runtime_parse(optarg, &a->runtime))
                return import_usage_error("--runtime must be ax650, axcl_aarch64 or axcl_x86, not \"%s\"", optarg);
            a->has_runtime = true;
            break;
        case OPT_TOKENIZER: a->tokenizer = optarg; break;
        case OPT_TEMPLATE:
            if (strcmp(optarg, "qwen3") && strcmp(optarg, "qwen2.5"))
                return import_usage_error("--template must be qwen3 or qwen2.5, not \"%s\"", optarg);
            a->template_name = optarg;
            break;
        case OPT_MAX_PREFILL:
            if (!parse_positive(optarg, 1 << 20, &a->max_prefill))
                return import_usage_error("--max-prefill must be a positive whole number, not \"%s\"", optarg);
            break;
        case OPT_MAX_POSITIONS:
            if (!parse_positive(optarg, 1 << 20, &a->max_positions))
                return import_usage_error("--max-positions must be a positive whole number, not \"%s\"", optarg);
            break;
        case OPT_PORT:
            if (!parse_positive(optarg, 65535, &a->port))
                return import_usage_error("--port must be a port number from 1 to 65535, not \"%s\"", optarg);
            break;
        case OPT_COMPAT: a->compat = true; break;
        case OPT_FORCE: a->force = true; break;
        default: {
            char buf[8];
            return import_usage_error("unknown flag: %s", options_rejected(argv, buf, sizeof buf));
        }
        }
    }
    if (optind >= argc)
        return import_usage_error("%s", "the model package's folder is missing");
    if (argc - optind > 2)
        return import_usage_error("too many arguments (\"%s\")", argv[optind + 2]);
    if (a->system && a->models_dir)
        return import_usage_error("%s", "--system and --models both say where to write; give one");
    a->dir = argv[optind];
    a->name = optind + 1 < argc ? argv[optind + 1] : NULL;
    return -1;
}

/* ---------------------------------------------------------------------------------- this machine */

static bool executable_on_path(const char *program)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        return false;
    char *copy = xstrdup(path);
    bool found = false;
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        strbuf p = {0};
        sb_printf(&p, "%s/%s", dir, program);
        found = access(p.data, X_OK) == 0;
        sb_free(&p);
    }
    free(copy);
    return found;
}

static bool axcl_driver_installed(void)
{
    struct stat st;
    return executable_on_path("axcl-smi") || (stat(AXCL_LIBRARY_DIR, &st) == 0 && S_ISDIR(st.st_mode));
}

/* ---------------------------------------------------------------------------------- the target */

/* Where the manifest goes (owned). */
static char *target_directory(const import_args *a)
{
    if (a->system)
        return xstrdup(SYSTEM_MODELS_DIR);
    if (a->models_dir && *a->models_dir)
        return xstrdup(a->models_dir);
    char *env = config_env_value("AXLLAMA_MODELS");
    if (env)
        return env;
    strbuf dir = {0};
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        sb_printf(&dir, "%s/axllama/models", xdg);
    else if (home && *home)
        sb_printf(&dir, "%s/.config/axllama/models", home);
    else
        return NULL;
    return sb_steal(&dir);
}

/* mkdir -p. */
static bool make_directories(const char *dir, char *err, size_t errlen)
{
    char *p = xstrdup(dir);
    bool ok = true;
    for (char *s = p + 1; ok; s++) {
        char c = *s;
        if (c != '/' && c != '\0')
            continue;
        *s = '\0';
        struct stat st;
        if (stat(p, &st) != 0 && mkdir(p, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            ok = false;
        } else if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s is not a directory", p);
            ok = false;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return ok;
}

static void quiet(void *user, const char *msg)
{
    (void)user;
    (void)msg;
}

/* The file the manifest goes to: the one that already defines the name (with --force), else
 * NAME.json; NULL with a message when it would replace something without --force. */
static char *manifest_path(const char *dir, const char *name, bool force, strbuf *err)
{
    model_registry reg = {0};
    model_registry_load(&reg, dir, NULL, NULL, quiet, NULL);
    const model_manifest *same = model_registry_find(&reg, name);
    char *path = NULL;
    if (same && !force) {
        sb_printf(err, "a model named %s exists already (%s); --force replaces it, or give another NAME", same->name,
                  same->path);
    } else if (same) {
        path = xstrdup(same->path);
    } else {
        char file[MODEL_NAME_DISPLAY_MAX + 8];
        vp_manifest_file_name(name, file, sizeof file);
        strbuf p = {0};
        sb_printf(&p, "%s/%s", dir, file);
        struct stat st;
        if (!force && lstat(p.data, &st) == 0) {
            sb_printf(err, "%s exists already (it does not define %s); --force replaces it, or give another NAME",
                      p.data, name);
            sb_free(&p);
        } else {
            path = sb_steal(&p);
        }
    }
    model_registry_free(&reg);
    return path;
}

/* Writes text to path through a hidden temporary file in the same directory, checked with the
 * manifest parser before it is renamed into place. */
static bool write_manifest(const char *dir, const char *path, const char *text, strbuf *err)
{
    strbuf tmp = {0};
    sb_printf(&tmp, "%s/.axllama-import-XXXXXX", dir);
    int fd = mkstemp(tmp.data);
    if (fd < 0) {
        sb_printf(err, "cannot write in %s: %s%s", dir, strerror(errno),
                  errno == EACCES || errno == EPERM ? " (--system needs root: sudo axllama import ...)" : "");
        sb_free(&tmp);
        return false;
    }
    size_t len = strlen(text), done = 0;
    bool ok = fchmod(fd, 0644) == 0;
    while (ok && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        done += n > 0 ? (size_t)n : 0;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok)
        sb_printf(err, "cannot write %s: %s", tmp.data, strerror(errno));
    model_manifest check;
    char why[1024];
    if (ok && !model_manifest_load(&check, tmp.data, why, sizeof why)) {
        sb_printf(err, "the manifest axllama made does not load (a bug; please report it): %s", why);
        ok = false;
    }
    if (ok)
        model_manifest_free(&check);
    if (ok && rename(tmp.data, path) != 0) {
        sb_printf(err, "cannot write %s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok)
        unlink(tmp.data);
    sb_free(&tmp);
    return ok;
}

/* ---------------------------------------------------------------------------------- the report */

static void human_size(uint64_t n, char *out, size_t outlen)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, outlen, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void print_report(const vp_import *imp, const char *path)
{
    printf("imported %s\n", imp->name);
    printf("  package    %s\n", imp->dir);
    printf("  runtime    %s\n", vp_runtime_binary(imp->runtime));
    printf("  flags      from %s", imp->script);
    if (imp->flags.dropped.n) {
        printf("; left out: ");
        for (size_t i = 0; i < imp->flags.dropped.n; i++)
            printf("%s%s", i ? ", " : "", imp->flags.dropped.v[i]);
    }
    printf("\n  tokenizer  %s (template %s%s%s)\n", imp->tokenizer_dir, vp_template_name(imp->family),
           imp->family_forced ? ", as asked" : "", imp->thinking ? ", thinking" : "");
    if (imp->upstream_script)
        printf("  compat     %s renders the prompts (python3 with transformers needed)\n", imp->upstream_script);
    printf("  context    %d prefill / %d positions%s\n", imp->max_prefill, imp->max_positions,
           imp->geometry_from_readme ? " (from README.md)" : "");
    char size[32];
    human_size(imp->size, size, sizeof size);
    printf("  size       %s in %zu model files\n", size, imp->n_model_files);
    printf("  manifest   %s\n", path);
}

static void print_notes(const vp_import *imp, bool axcl_driver)
{
    if (imp->script_other)
        fprintf(stderr, "note: the package has no run script for %s; the flags come from %s\n",
                vp_runtime_name(imp->runtime), imp->script);
    bool refused = false;
    for (size_t i = 0; i < imp->flags.dropped.n; i++)
        refused |=
            strcmp(imp->flags.dropped.v[i], "--url_tokenizer_model") && strcmp(imp->flags.dropped.v[i], "--devices");
    if (refused)
        fprintf(stderr, "note: flags left out: axllama adds --url_tokenizer_model and --devices itself, and "
                        "main_api_* refuses the others (\"undefined option\")\n");
    if (!imp->geometry_from_readme)
        fprintf(stderr,
                "note: README.md shows no context geometry (max_token_len, prefill_max_token_num); the "
                "manifest uses %d / %d (--max-prefill, --max-positions to change)\n",
                imp->max_prefill, imp->max_positions);
    if (imp->runtime != VP_RUNTIME_AX650 && !axcl_driver)
        fprintf(stderr, "warning: the AXCL driver is not installed (no axcl-smi, no " AXCL_LIBRARY_DIR "); "
                        "the model will not load until it is\n");
}

int cmd_import(int argc, char **argv)
{
    import_args a;
    int st = parse_import_args(argc, argv, &a);
    if (st >= 0)
        return st;

    struct utsname un;
    const char *machine = uname(&un) == 0 ? un.machine : "unknown";
    bool axcl = axcl_driver_installed();
    vp_options opt = {.dir = a.dir,
                      .machine = machine,
                      .axcl_driver = axcl,
                      .has_runtime = a.has_runtime,
                      .runtime = a.runtime,
                      .name = a.name,
                      .tokenizer_dir = a.tokenizer,
                      .template_name = a.template_name,
                      .max_prefill = a.max_prefill,
                      .max_positions = a.max_positions,
                      .port = a.port,
                      .compat = a.compat};
    vp_import imp;
    strbuf err = {0};
    char *dir = NULL, *path = NULL, *text = NULL;
    bool ok = vendor_package_inspect(&opt, &imp, &err);
    if (ok && !(dir = target_directory(&a))) {
        sb_puts(&err, "no models directory: HOME is not set (give --models DIR)");
        ok = false;
    }
    char why[512];
    if (ok && !make_directories(dir, why, sizeof why)) {
        sb_printf(&err, "%s%s", why,
                  a.system && geteuid() != 0 ? " (--system needs root: sudo axllama import ...)" : "");
        ok = false;
    }
    if (ok)
        ok = (path = manifest_path(dir, imp.name, a.force, &err)) != NULL;
    if (ok) {
        json_t *m = vendor_package_manifest(&imp);
        char *json = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(m);
        strbuf t = {0};
        sb_printf(&t, "%s\n", json);
        free(json);
        text = sb_steal(&t);
        ok = write_manifest(dir, path, text, &err);
    }
    if (ok) {
        print_report(&imp, path);
        fflush(stdout); /* the report first, then the notes on stderr */
        print_notes(&imp, axcl);
    } else {
        fprintf(stderr, "Error: %s\n", err.data ? err.data : "the import failed");
    }
    vp_import_free(&imp);
    free(text);
    free(path);
    free(dir);
    sb_free(&err);
    return ok ? 0 : 1;
}
