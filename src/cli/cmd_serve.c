/* cmd_serve: `axllama serve [--models DIR]`: the Ollama-compatible server. Reads the environment
 * (OLLAMA_HOST, OLLAMA_ORIGINS, OLLAMA_KEEP_ALIVE, ...), loads the model registry, starts the
 * engine and the HTTP API, logs to stderr with timestamps, and on SIGINT/SIGTERM stops the HTTP
 * server, unloads every model (no child process is left) and exits 0. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/http_server.h"
#include "api/ollama.h"
#include "api/openai.h"
#include "cli/commands.h"
#include "common/buf.h"
#include "engine/engine.h"
#include "models/manifest.h"
#include "config/config.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* One line to stderr: "2026-01-02T03:04:05.678Z message", written with a single write(2) so that
 * lines from different threads never interleave. */
static void log_line(void *user, const char *line)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t k = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + k, sizeof stamp - k, ".%03ldZ", ts.tv_nsec / 1000000);
    strbuf out = {0};
    sb_printf(&out, "%s %s\n", stamp, line);
    pthread_mutex_lock(&log_lock);
    size_t done = 0;
    while (done < out.len) {
        ssize_t n = write(STDERR_FILENO, out.data + done, out.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    pthread_mutex_unlock(&log_lock);
    sb_free(&out);
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(NULL, line);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: axllama serve [--models DIR]\n"
               "\n"
               "Serves the Ollama API (docs/api.md) and the OpenAI API under /v1 (docs/openai.md)\n"
               "for the models of the manifest directories.\n"
               "\n"
               "  --models DIR  read model manifests from DIR only (default: $AXLLAMA_MODELS, else\n"
               "                ~/.config/axllama/models then /etc/axllama/models)\n"
               "\n"
               "Environment: OLLAMA_HOST (default 127.0.0.1:11434), OLLAMA_ORIGINS, OLLAMA_KEEP_ALIVE,\n"
               "OLLAMA_MAX_QUEUE, OLLAMA_LOAD_TIMEOUT, OLLAMA_DEBUG, AXLLAMA_MODELS,\n"
               "AXLLAMA_TOKENIZER_DIR (the built-in model's tokenizer data).\n");
}

/* The axllama-emu binary next to the running axllama (for the built-in model). */
static char *emu_binary_path(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    strbuf path = {0};
    sb_printf(&path, "%s/axllama-emu", self);
    return sb_steal(&path);
}

/* $AXLLAMA_TOKENIZER_DIR, else the cache scripts/fetch-tokenizer.sh fills:
 * ${AXLLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/axllama}/tokenizers/qwen3. */
static char *default_tokenizer_dir(void)
{
    const char *explicit_dir = getenv("AXLLAMA_TOKENIZER_DIR");
    if (explicit_dir && *explicit_dir)
        return xstrdup(explicit_dir);
    strbuf dir = {0};
    const char *cache = getenv("AXLLAMA_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (cache && *cache)
        sb_printf(&dir, "%s/tokenizers/qwen3", cache);
    else if (xdg && *xdg)
        sb_printf(&dir, "%s/axllama/tokenizers/qwen3", xdg);
    else if (home && *home)
        sb_printf(&dir, "%s/.cache/axllama/tokenizers/qwen3", home);
    else
        return NULL;
    return sb_steal(&dir);
}

static void log_warnings(char *warnings)
{
    if (!warnings)
        return;
    for (char *save = NULL, *line = strtok_r(warnings, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (*line)
            logf_("warning: %s", line);
}

static void registry_warn(void *user, const char *msg)
{
    (void)user;
    logf_("models: %s", msg);
}

/* Waits for SIGINT or SIGTERM (blocked in every thread, so only this wait takes them). */
static int wait_for_stop_signal(const sigset_t *stop_signals)
{
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        int sig = sigtimedwait(stop_signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM)
            return sig;
    }
}

int cmd_serve(int argc, char **argv)
{
    const char *models_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--models") && i + 1 < argc) {
            models_dir = argv[++i];
        } else if (!strncmp(argv[i], "--models=", 9)) {
            models_dir = argv[i] + 9;
        } else {
            fprintf(stderr, "axllama serve: unknown or incomplete argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    /* before any thread exists, so that every thread inherits the mask */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    server_config cfg;
    char *warnings = NULL;
    server_config_from_env(&cfg, &warnings);
    log_warnings(warnings);
    free(warnings);

    char *emu = emu_binary_path();
    char *tokenizer_dir = default_tokenizer_dir();
    model_registry reg = {0};
    if (!model_registry_load(&reg, models_dir, emu, tokenizer_dir, registry_warn, NULL))
        logf_("warning: no models to serve (see the messages above; docs/models.md explains manifests)");
    for (size_t i = 0; i < reg.n; i++)
        logf_("model %s (%s)", reg.models[i].name, reg.models[i].path ? reg.models[i].path : "built-in");

    engine_config ecfg = {
        .models = &reg,
        .max_queue = cfg.max_queue,
        .default_keep_alive_s = cfg.keep_alive_s,
        .load_timeout_s = cfg.load_timeout_s,
        .stall_timeout_s = cfg.stall_timeout_s,
        .reset_every_turn = cfg.reset_every_turn,
        .log = log_line,
    };
    engine *eng = engine_new(&ecfg);
    ollama_api api = {.engine = eng, .models = &reg, .log = log_line};
    openai_api oai = {.engine = eng, .models = &reg, .log = log_line};
    http_route routes[OLLAMA_API_MAX_ROUTES + OPENAI_API_MAX_ROUTES];
    size_t n_routes = ollama_api_routes(&api, routes, OLLAMA_API_MAX_ROUTES);
    n_routes += openai_api_routes(&oai, routes + n_routes, OPENAI_API_MAX_ROUTES);
    http_server_config hcfg = {
        .host = cfg.host,
        .port = cfg.port,
        .routes = routes,
        .n_routes = n_routes,
        .origins = (const char *const *)cfg.origins,
        .log = log_line,
        .log_requests = true,
    };
    char err[512] = "";
    http_server *http = http_server_start(&hcfg, err, sizeof err);
    int status = 0;
    if (!http) {
        logf_("error: %s", err);
        status = 1;
    } else {
        logf_("Listening on %s (version %s, Ollama API %s)", http_server_address(http), AXLLAMA_VERSION,
              OLLAMA_API_VERSION);
        int sig = wait_for_stop_signal(&stop_signals);
        logf_("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        http_server_stop(http);
    }
    engine_free(eng); /* unloads: stops the runtime and reaps it */
    model_registry_free(&reg);
    server_config_free(&cfg);
    free(emu);
    free(tokenizer_dir);
    if (status == 0)
        logf_("stopped");
    return status;
}
