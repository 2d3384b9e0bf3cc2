/* registry: the models axllama serves: the manifests of the models directories (the caller's one
 * directory, else the per-user then the system-wide one), in file-name order, the first definition
 * of a name winning; the built-in emulator model when there is none; lookup by any spelling of a
 * name; and the watch that lets manifests added while the server runs join (model_registry_refresh).
 * See models/manifest.h. */
#include "models/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/clock.h"

/* A directory changed this recently may change again within the same mtime tick without its mtime
 * moving: look again at the next refresh (git's "racy" rule). */
#define RACY_WINDOW_S 2.0

static const model_manifest *registry_lookup(const model_registry *reg, const char *want)
{
    size_t n = reg->n; /* entries below n are complete and never change */
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(reg->models[i].name, want) == 0)
            return &reg->models[i];
    return NULL;
}

const model_manifest *model_registry_find(const model_registry *reg, const char *name)
{
    char want[MODEL_NAME_DISPLAY_MAX];
    if (!reg || !model_name_normalize(name, want, sizeof want))
        return NULL;
    const model_manifest *m = registry_lookup(reg, want);
    if (!m && model_registry_refresh(reg) > 0)
        m = registry_lookup(reg, want);
    return m;
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

typedef struct {
    bool exists;
    struct timespec mtime;
    bool racy; /* changed within RACY_WINDOW_S of the last look: look again */
} dir_state;

/* A manifest file as it was when last read. */
typedef struct {
    char *path;
    struct timespec mtime;
    off_t size;
    ino_t ino;
} seen_file;

struct model_registry_watch {
    pthread_mutex_t lock; /* everything below, and appending to the registry */
    char *dirs[2];
    size_t n_dirs;
    bool explicit_dir;
    dir_state state[2];
    seen_file *seen;
    size_t n_seen;
    size_t capacity; /* of reg->models */
    bool full_reported;
    warn_sink w;
};

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* The entry for path (NULL if never read). */
static seen_file *seen_find(model_registry_watch *w, const char *path)
{
    for (size_t i = 0; i < w->n_seen; i++)
        if (!strcmp(w->seen[i].path, path))
            return &w->seen[i];
    return NULL;
}

/* Whether path is new or changed since it was last read; notes it as read now. */
static bool seen_update(model_registry_watch *w, const char *path, const struct stat *st, bool *changed_file)
{
    seen_file *f = seen_find(w, path);
    *changed_file = f != NULL;
    if (f && same_time(f->mtime, st->st_mtim) && f->size == st->st_size && f->ino == st->st_ino)
        return false;
    if (!f) {
        w->seen = xrealloc(w->seen, (w->n_seen + 1) * sizeof *w->seen);
        f = &w->seen[w->n_seen++];
        f->path = xstrdup(path);
    }
    f->mtime = st->st_mtim;
    f->size = st->st_size;
    f->ino = st->st_ino;
    return true;
}

/* Appends m (taken over) unless the registry is full. The entry is written completely before n
 * grows, so a reader on another thread never sees it half made. */
static bool registry_push(model_registry *reg, model_manifest *m)
{
    model_registry_watch *w = reg->watch;
    size_t n = reg->n;
    if (n >= w->capacity) {
        if (!w->full_reported)
            registry_say(&w->w, "%s: no room for more models until axllama serve restarts (%d may join while it runs)",
                         m->path ? m->path : m->name, MODEL_REGISTRY_SPARE);
        w->full_reported = true;
        model_manifest_free(m);
        return false;
    }
    reg->models[n] = *m;
    memset(m, 0, sizeof *m);
    reg->n = n + 1;
    return true;
}

/* Loading grows the array freely (nobody reads it yet). */
static void registry_reserve_for_load(model_registry *reg)
{
    model_registry_watch *w = reg->watch;
    if (reg->n < w->capacity)
        return;
    w->capacity = w->capacity ? 2 * w->capacity : 8;
    reg->models = xrealloc(reg->models, w->capacity * sizeof *reg->models);
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

/* One manifest file: added unless malformed, a duplicate, or (refresh) unchanged since last read. */
static void load_manifest_file(model_registry *reg, const char *path, bool loading)
{
    model_registry_watch *w = reg->watch;
    const warn_sink *ws = &w->w;
    struct stat st;
    bool changed_file = false;
    if (stat(path, &st) != 0) {
        registry_say(ws, "%s: %s; skipped", path, strerror(errno));
        return;
    }
    if (!seen_update(w, path, &st, &changed_file))
        return; /* read before, unchanged */
    if (!S_ISREG(st.st_mode)) {
        registry_say(ws, "%s: not a regular file; skipped", path);
        return;
    }
    model_manifest m;
    char err[1024];
    if (!model_manifest_load_with_warnings(&m, path, ws->warn, ws->user, err, sizeof err)) {
        registry_say(ws, "%s; model skipped", err);
        return;
    }
    const model_manifest *first = registry_lookup(reg, m.name);
    if (first && changed_file && first->path && !strcmp(first->path, path)) {
        registry_say(ws, "%s: model \"%s\" changed; the change takes effect when axllama serve restarts", path, m.name);
        model_manifest_free(&m);
    } else if (first) {
        registry_say(ws, "%s: model \"%s\" is already defined by %s; this definition is ignored", path, m.name,
                     first->path ? first->path : "the built-in model");
        model_manifest_free(&m);
    } else {
        if (loading)
            registry_reserve_for_load(reg);
        if (registry_push(reg, &m) && !loading)
            registry_say(ws, "%s: model %s added", path, reg->models[reg->n - 1].name);
    }
}

/* Reads the directory's manifests (the directory's state noted first: a file added while it is
 * read is seen at the next refresh). */
static void load_models_directory(model_registry *reg, size_t which, bool loading)
{
    model_registry_watch *w = reg->watch;
    const char *dir = w->dirs[which];
    dir_state *ds = &w->state[which];
    struct stat dst;
    ds->exists = stat(dir, &dst) == 0;
    ds->mtime = ds->exists ? dst.st_mtim : (struct timespec){0};
    ds->racy = ds->exists && clock_wall() - (double)dst.st_mtim.tv_sec < RACY_WINDOW_S;

    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, json_file_filter, by_name_bytes);
    if (n < 0) {
        if (loading && (w->explicit_dir || errno != ENOENT))
            registry_say(&w->w, "models directory %s: %s", dir, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        strbuf path = {0};
        sb_printf(&path, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", entries[i]->d_name);
        load_manifest_file(reg, path.data, loading);
        sb_free(&path);
        free(entries[i]);
    }
    free(entries);
}

/* Whether the directory changed since it was last read. */
static bool directory_changed(const model_registry_watch *w, size_t which)
{
    const dir_state *ds = &w->state[which];
    struct stat st;
    bool exists = stat(w->dirs[which], &st) == 0;
    return exists != ds->exists || (exists && (ds->racy || !same_time(st.st_mtim, ds->mtime)));
}

bool model_registry_load(model_registry *reg, const char *models_dir, const char *emu_binary,
                         const char *default_tokenizer_dir, void (*warn)(void *user, const char *msg), void *user)
{
    reg->models = NULL;
    reg->n = 0;
    model_registry_watch *w = reg->watch = xcalloc(1, sizeof *reg->watch);
    pthread_mutex_init(&w->lock, NULL);
    w->w = (warn_sink){warn, user};

    if (models_dir && models_dir[0]) {
        w->dirs[w->n_dirs++] = xstrdup(models_dir);
        w->explicit_dir = true;
    } else {
        strbuf user_dir = {0};
        const char *xdg = getenv("XDG_CONFIG_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0] == '/') /* the XDG spec: a relative value is ignored */
            sb_printf(&user_dir, "%s/axllama/models", xdg);
        else if (home && home[0])
            sb_printf(&user_dir, "%s/.config/axllama/models", home);
        if (user_dir.data)
            w->dirs[w->n_dirs++] = sb_steal(&user_dir);
        w->dirs[w->n_dirs++] = xstrdup("/etc/axllama/models");
    }
    for (size_t i = 0; i < w->n_dirs; i++)
        load_models_directory(reg, i, true);

    if (reg->n == 0 && emu_binary && default_tokenizer_dir) {
        model_manifest m;
        model_manifest_builtin(&m, emu_binary, default_tokenizer_dir);
        registry_reserve_for_load(reg);
        registry_push(reg, &m);
    } else if (reg->n == 0) {
        registry_say(&w->w,
                     "no model manifest found and no built-in model (axllama-emu or the tokenizer data is missing)");
    }
    /* room for the models that join later: from now on the array never moves */
    w->capacity = reg->n + MODEL_REGISTRY_SPARE;
    reg->models = xrealloc(reg->models, w->capacity * sizeof *reg->models);
    return reg->n > 0;
}

size_t model_registry_refresh(const model_registry *creg)
{
    if (!creg || !creg->watch)
        return 0;
    model_registry *reg = (model_registry *)creg; /* only appends, under the watch's lock */
    model_registry_watch *w = reg->watch;
    pthread_mutex_lock(&w->lock);
    size_t before = reg->n;
    for (size_t i = 0; i < w->n_dirs; i++)
        if (directory_changed(w, i))
            load_models_directory(reg, i, false);
    size_t added = reg->n - before;
    pthread_mutex_unlock(&w->lock);
    return added;
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
    model_registry_watch *w = reg->watch;
    if (w) {
        for (size_t i = 0; i < w->n_dirs; i++)
            free(w->dirs[i]);
        for (size_t i = 0; i < w->n_seen; i++)
            free(w->seen[i].path);
        free(w->seen);
        pthread_mutex_destroy(&w->lock);
        free(w);
    }
    reg->watch = NULL;
}
