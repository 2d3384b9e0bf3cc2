/* registry: the models axllama serves: the manifests of the models directories (the caller's one
 * directory, else the per-user then the system-wide one), in file-name order, the first definition
 * of a name winning; the built-in emulator model when there is none; lookup by any spelling of a
 * name. See models/manifest.h. */
#include "models/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/buf.h"

const model_manifest *model_registry_find(const model_registry *reg, const char *name)
{
    char want[MODEL_NAME_DISPLAY_MAX];
    if (!reg || !model_name_normalize(name, want, sizeof want))
        return NULL;
    for (size_t i = 0; i < reg->n; i++)
        if (strcasecmp(reg->models[i].name, want) == 0)
            return &reg->models[i];
    return NULL;
}

typedef struct {
    void (*warn)(void *user, const char *msg);
    void *user;
} warn_sink;

static void registry_say(const warn_sink *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void registry_say(const warn_sink *w, const char *fmt, ...)
{
    if (!w->warn)
        return;
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    w->warn(w->user, sb.data);
    sb_free(&sb);
}

static void registry_push(model_registry *reg, model_manifest *m)
{
    reg->models = xrealloc(reg->models, (reg->n + 1) * sizeof *reg->models);
    reg->models[reg->n++] = *m;
    memset(m, 0, sizeof *m);
}

static int json_file_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static int by_name_bytes(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_models_directory(model_registry *reg, const char *dir, bool explicit_dir, const warn_sink *w)
{
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, json_file_filter, by_name_bytes);
    if (n < 0) {
        if (explicit_dir || errno != ENOENT)
            registry_say(w, "models directory %s: %s", dir, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        strbuf path = {0};
        sb_printf(&path, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", entries[i]->d_name);
        struct stat st;
        if (stat(path.data, &st) != 0) {
            registry_say(w, "%s: %s; skipped", path.data, strerror(errno));
        } else if (!S_ISREG(st.st_mode)) {
            registry_say(w, "%s: not a regular file; skipped", path.data);
        } else {
            model_manifest m;
            char err[1024];
            if (!model_manifest_load_with_warnings(&m, path.data, w->warn, w->user, err, sizeof err)) {
                registry_say(w, "%s; model skipped", err);
            } else {
                const model_manifest *first = model_registry_find(reg, m.name);
                if (first) {
                    registry_say(w, "%s: model \"%s\" is already defined by %s; this definition is ignored", path.data,
                                 m.name, first->path ? first->path : "the built-in model");
                    model_manifest_free(&m);
                } else {
                    registry_push(reg, &m);
                }
            }
        }
        sb_free(&path);
        free(entries[i]);
    }
    free(entries);
}

bool model_registry_load(model_registry *reg, const char *models_dir, const char *emu_binary,
                         const char *default_tokenizer_dir, void (*warn)(void *user, const char *msg), void *user)
{
    reg->models = NULL;
    reg->n = 0;
    warn_sink w = {warn, user};

    if (models_dir && models_dir[0]) {
        load_models_directory(reg, models_dir, true, &w);
    } else {
        strbuf user_dir = {0};
        const char *xdg = getenv("XDG_CONFIG_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0] == '/') /* the XDG spec: a relative value is ignored */
            sb_printf(&user_dir, "%s/axllama/models", xdg);
        else if (home && home[0])
            sb_printf(&user_dir, "%s/.config/axllama/models", home);
        if (user_dir.data)
            load_models_directory(reg, user_dir.data, false, &w);
        sb_free(&user_dir);
        load_models_directory(reg, "/etc/axllama/models", false, &w);
    }

    if (reg->n == 0 && emu_binary && default_tokenizer_dir) {
        model_manifest m;
        model_manifest_builtin(&m, emu_binary, default_tokenizer_dir);
        registry_push(reg, &m);
    } else if (reg->n == 0) {
        registry_say(&w,
                     "no model manifest found and no built-in model (axllama-emu or the tokenizer data is missing)");
    }
    return reg->n > 0;
}

void model_registry_free(model_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        model_manifest_free(&reg->models[i]);
    free(reg->models);
    reg->models = NULL;
    reg->n = 0;
}
