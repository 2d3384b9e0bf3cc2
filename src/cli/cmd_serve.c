/* cmd_serve: `axllama serve [--models DIR]`: the Ollama-compatible server. Takes its settings from
 * config (the environment: OLLAMA_HOST, OLLAMA_ORIGINS, OLLAMA_KEEP_ALIVE, ...), loads the model
 * registry, starts the engine and the HTTP API (Ollama, OpenAI, /health and /metrics), logs to
 * stderr through common/log (log_stderr), and on SIGINT/SIGTERM stops the HTTP server, unloads
 * every model (no child process is left) and exits 0. With OLLAMA_DEBUG the settings are logged at
 * start and every request gets one more line (its body size and how long its handler took).
 * Under systemd (NOTIFY_SOCKET) it reports READY / STATUS / WATCHDOG / STOPPING through
 * cli/service_notify. The built-in model's emulator is axllama-emu next to the binary (the build
 * tree), else PREFIX/lib/axllama/axllama-emu for a binary in PREFIX/bin (`make install`, the Debian package). */
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_common.h"
#include "api/health.h"
#include "api/metrics.h"
#include "api/ollama.h"
#include "api/openai.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/service_notify.h"
#include "cli/stop_signals.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "config/config.h"
#include "engine/engine.h"
#include "models/manifest.h"
#include "net/http_server.h"

static const log_sink serve_log = {.fn = log_stderr};

static void serve_usage(FILE *f)
{
    fprintf(f, "Usage: axllama serve [--models DIR]\n"
               "\n"
               "Serves the Ollama API (docs/api.md) and the OpenAI API under /v1 (docs/openai.md)\n"
               "for the models of the manifest directories, and /health and /metrics (Prometheus).\n"
               "\n"
               "  --models DIR  read model manifests from DIR only (default: $AXLLAMA_MODELS, else\n"
               "                ~/.config/axllama/models then /etc/axllama/models)\n"
               "\n"
               "Environment: OLLAMA_HOST (default 127.0.0.1:11434), OLLAMA_ORIGINS, OLLAMA_KEEP_ALIVE,\n"
               "OLLAMA_MAX_QUEUE, OLLAMA_LOAD_TIMEOUT, OLLAMA_DEBUG, AXLLAMA_MODELS,\n"
               "AXLLAMA_TOKENIZER_DIR and AXLLAMA_CACHE (the built-in model's tokenizer data),\n"
               "AXLLAMA_STALL_TIMEOUT, AXLLAMA_RESET_EVERY_TURN, the limits AXLLAMA_MAX_BODY,\n"
               "AXLLAMA_MAX_QUEUED_BYTES, AXLLAMA_MAX_CONNECTIONS, AXLLAMA_MAX_CONNECTIONS_PER_IP,\n"
               "AXLLAMA_REQUEST_TIMEOUT, AXLLAMA_MAX_STOP, AXLLAMA_MAX_TOOLS (README: Configuration).\n");
}

/* Parses the flags into *models_dir (NULL when not given). -1 to go on, else the exit status. */
static int parse_serve_flags(int argc, char **argv, const char **models_dir)
{
    enum { OPT_HELP = OPTION_LONG_BASE, OPT_MODELS };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, OPT_HELP},
        {"models", required_argument, NULL, OPT_MODELS},
        {0},
    };
    *models_dir = NULL;
    options_begin();
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == 'h' || opt == OPT_HELP) {
            serve_usage(stdout);
            return 0;
        }
        if (opt == OPT_MODELS) {
            *models_dir = optarg;
            continue;
        }
        char buf[8];
        fprintf(stderr, "axllama serve: unknown or incomplete argument '%s'\n",
                options_rejected(argv, buf, sizeof buf));
        serve_usage(stderr);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "axllama serve: unknown or incomplete argument '%s'\n", argv[optind]);
        serve_usage(stderr);
        return 2;
    }
    return -1;
}

/* The emulator for the built-in model: axllama-emu next to the running axllama (the build tree),
 * else PREFIX/lib/axllama/axllama-emu when axllama runs from PREFIX/bin (an installed copy). When
 * neither exists, the path next to the binary (its absence is reported when the model loads). */
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
    strbuf next_to = {0};
    sb_printf(&next_to, "%s/axllama-emu", self);
    if (access(next_to.data, X_OK) == 0)
        return sb_steal(&next_to);
    char *parent_end = strrchr(self, '/');
    if (parent_end && !strcmp(parent_end, "/bin")) {
        *parent_end = '\0';
        strbuf installed = {0};
        sb_printf(&installed, "%s/lib/axllama/axllama-emu", self);
        if (access(installed.data, X_OK) == 0) {
            sb_free(&next_to);
            return sb_steal(&installed);
        }
        sb_free(&installed);
    }
    return sb_steal(&next_to);
}

/* AXLLAMA_TOKENIZER_DIR, else the cache scripts/fetch-tokenizer.sh fills:
 * ${AXLLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/axllama}/tokenizers/qwen3. */
static char *default_tokenizer_dir(const server_config *cfg)
{
    if (cfg->tokenizer_dir)
        return xstrdup(cfg->tokenizer_dir);
    strbuf dir = {0};
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (cfg->cache_dir)
        sb_printf(&dir, "%s/tokenizers/qwen3", cfg->cache_dir);
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
            log_printf(&serve_log, "warning: %s", line);
}

static void registry_warning(void *user, const char *msg)
{
    (void)user;
    log_printf(&serve_log, "models: %s", msg);
}

/* OLLAMA_DEBUG: the settings in effect, one line. */
static void log_debug_settings(const server_config *cfg, const char *models_dir, const char *tokenizer_dir)
{
    log_printf(&serve_log,
               "[DEBUG] settings: OLLAMA_HOST %s:%d, OLLAMA_MAX_QUEUE %zu, OLLAMA_KEEP_ALIVE %gs, "
               "OLLAMA_LOAD_TIMEOUT %gs, AXLLAMA_STALL_TIMEOUT %gs, AXLLAMA_RESET_EVERY_TURN %d, "
               "AXLLAMA_CONTEXT_RETAIN %g, AXLLAMA_RESTORE %d, AXLLAMA_RUNTIME_PROBE %gs, AXLLAMA_MAX_BODY %zu, "
               "AXLLAMA_MAX_QUEUED_BYTES %zu, AXLLAMA_MAX_CONNECTIONS %u, AXLLAMA_MAX_CONNECTIONS_PER_IP %u, "
               "AXLLAMA_REQUEST_TIMEOUT %gs, AXLLAMA_MAX_STOP %zu, AXLLAMA_MAX_TOOLS %zu, models %s, built-in "
               "tokenizer %s",
               cfg->host, cfg->port, cfg->max_queue, cfg->keep_alive_s, cfg->load_timeout_s, cfg->stall_timeout_s,
               cfg->reset_every_turn, cfg->context_retain, cfg->restore, cfg->runtime_probe_s, cfg->max_body_bytes,
               cfg->max_queued_bytes, cfg->max_connections, cfg->max_connections_per_ip, cfg->request_timeout_s,
               cfg->max_stop, cfg->max_tools, models_dir ? models_dir : "(default directories)",
               tokenizer_dir ? tokenizer_dir : "(none)");
}

/* OLLAMA_DEBUG: a route's handler wrapped to log, per request, its body size and how long the
 * handler took to answer (for a stream: until the answer started). */
typedef struct {
    http_handler handler;
    void *user;
} debug_route;

static http_response *debug_route_handler(const http_request *req, void *user)
{
    const debug_route *route = user;
    double start = clock_mono();
    http_response *resp = route->handler(req, route->user);
    log_printf(&serve_log, "[DEBUG] %s \"%s\": request body %zu bytes, answered after %.3fms%s", req->method, req->path,
               req->body_len, (clock_mono() - start) * 1e3, resp ? "" : " (client gone)");
    return resp;
}

/* Memory a large request used goes back to the system when it is freed: glibc serves allocations from
 * 256 KiB up with their own mappings (its default threshold climbs up to 32 MiB after the first large
 * free, and what is freed below it stays in the process: 8 parallel 31 MB prompts left ~300 MB). */
#define SERVE_MMAP_THRESHOLD_BYTES (256 * 1024)

static void serve_memory_policy(void)
{
    mallopt(M_MMAP_THRESHOLD, SERVE_MMAP_THRESHOLD_BYTES);
}

/* systemd: the engine as service_notify sees it. */
static bool serve_engine_responsive(void *user, double max_age_s)
{
    return engine_responsive(user, max_age_s);
}

static size_t serve_engine_ps(void *user, engine_loaded_model *out, size_t max)
{
    return engine_ps(user, out, max);
}

/* The HTTP server's log: log_stderr, less the watchdog's own probe lines. */
typedef struct {
    _Atomic(service_notify *) notify;
} serve_http_log_state;

static void serve_http_log(void *user, const char *line)
{
    serve_http_log_state *st = user;
    if (service_notify_swallow_log_line(atomic_load(&st->notify), line))
        return;
    log_stderr(NULL, line);
}

enum { SERVE_MAX_ROUTES = OLLAMA_API_MAX_ROUTES + OPENAI_API_MAX_ROUTES + HEALTH_API_MAX_ROUTES };

/* Everything `axllama serve` runs, from the settings to the routes. */
typedef struct {
    server_config cfg;
    char *emu, *tokenizer_dir;
    model_registry reg;
    engine *eng;
    api_metrics *metrics;
    ollama_api ollama;
    openai_api openai;
    health_api health;
    http_route routes[SERVE_MAX_ROUTES];
    debug_route debug_routes[SERVE_MAX_ROUTES];
    size_t n_routes;
    serve_http_log_state http_log;
} serve_state;

/* The settings (logged), the manifests (the models listed in the log) and the engine. */
static void serve_setup_engine(serve_state *sv, const char *models_flag)
{
    char *warnings = NULL;
    server_config_from_env(&sv->cfg, &warnings);
    log_warnings(warnings);
    free(warnings);
    log_set_debug(sv->cfg.debug);
    const server_config *cfg = &sv->cfg;

    const char *models_dir = models_flag && models_flag[0] ? models_flag : cfg->models_dir;
    sv->emu = emu_binary_path();
    sv->tokenizer_dir = default_tokenizer_dir(cfg);
    if (cfg->debug)
        log_debug_settings(cfg, models_dir, sv->tokenizer_dir);
    if (!model_registry_load(&sv->reg, models_dir, sv->emu, sv->tokenizer_dir, registry_warning, NULL))
        log_printf(&serve_log,
                   "warning: no models to serve (see the messages above; docs/models.md explains manifests)");
    for (size_t i = 0; i < sv->reg.n; i++)
        log_printf(&serve_log, "model %s (%s)", sv->reg.models[i].name,
                   sv->reg.models[i].path ? sv->reg.models[i].path : "built-in");

    engine_config ecfg = {
        .models = &sv->reg,
        .max_queue = cfg->max_queue,
        .max_queued_bytes = cfg->max_queued_bytes,
        .default_keep_alive_s = cfg->keep_alive_s,
        .load_timeout_s = cfg->load_timeout_s,
        .stall_timeout_s = cfg->stall_timeout_s,
        .context_retain = cfg->context_retain,
        .no_restore = !cfg->restore,
        .runtime_probe_s = cfg->runtime_probe_s,
        .reset_every_turn = cfg->reset_every_turn,
        .log = log_stderr,
    };
    sv->eng = engine_new(&ecfg);
}

/* The routes of the three APIs; with OLLAMA_DEBUG each handler wrapped in debug_route_handler. */
static void serve_setup_routes(serve_state *sv)
{
    api_set_limits(&(api_limits){.max_stop = sv->cfg.max_stop, .max_tools = sv->cfg.max_tools});
    sv->metrics = api_metrics_new();
    sv->ollama = (ollama_api){.engine = sv->eng, .models = &sv->reg, .metrics = sv->metrics, .log = log_stderr};
    sv->openai = (openai_api){.engine = sv->eng, .models = &sv->reg, .metrics = sv->metrics, .log = log_stderr};
    sv->health = (health_api){.engine = sv->eng, .metrics = sv->metrics};
    size_t n = ollama_api_routes(&sv->ollama, sv->routes, OLLAMA_API_MAX_ROUTES);
    n += openai_api_routes(&sv->openai, sv->routes + n, OPENAI_API_MAX_ROUTES);
    n += health_api_routes(&sv->health, sv->routes + n, HEALTH_API_MAX_ROUTES);
    sv->n_routes = n;
    for (size_t i = 0; sv->cfg.debug && i < n; i++) {
        sv->debug_routes[i] = (debug_route){.handler = sv->routes[i].handler, .user = sv->routes[i].user};
        sv->routes[i].handler = debug_route_handler;
        sv->routes[i].user = &sv->debug_routes[i];
    }
}

/* Serves until SIGINT or SIGTERM (systemd told READY, then STOPPING), then stops the HTTP server. */
static void serve_until_stopped(serve_state *sv, http_server *http, sigset_t *stop_signals)
{
    log_printf(&serve_log, "Listening on %s (version %s, Ollama API %s)", http_server_address(http), AXLLAMA_VERSION,
               OLLAMA_API_VERSION);
    service_notify_config ncfg = {
        .address = http_server_address(http),
        .responsive = serve_engine_responsive,
        .loaded = serve_engine_ps,
        .user = sv->eng,
        .log = log_stderr,
        .keep_probe_log = sv->cfg.debug,
    };
    service_notify *notify = service_notify_ready(&ncfg); /* NULL when not under systemd */
    atomic_store(&sv->http_log.notify, notify);
    int sig = stop_signals_wait(stop_signals);
    service_notify_stopping(notify);
    log_printf(&serve_log, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_server_stop(http);
    atomic_store(&sv->http_log.notify, NULL);
    service_notify_free(notify);
}

int cmd_serve(int argc, char **argv)
{
    const char *models_flag;
    int st = parse_serve_flags(argc, argv, &models_flag);
    if (st >= 0)
        return st;

    sigset_t stop_signals;
    stop_signals_block(&stop_signals); /* before any thread exists: every thread inherits the mask */
    serve_memory_policy();

    serve_state *sv = xcalloc(1, sizeof *sv);
    serve_setup_engine(sv, models_flag);
    serve_setup_routes(sv);
    const server_config *cfg = &sv->cfg;
    http_server_config hcfg = {
        .host = cfg->host,
        .port = cfg->port,
        .routes = sv->routes,
        .n_routes = sv->n_routes,
        .origins = (const char *const *)cfg->origins,
        .max_body_bytes = cfg->max_body_bytes,
        .max_connections = cfg->max_connections,
        .max_connections_per_ip = cfg->max_connections_per_ip,
        .max_body_bytes_held = cfg->max_queued_bytes,
        .request_timeout_s = cfg->request_timeout_s,
        .log = serve_http_log,
        .log_user = &sv->http_log,
        .log_requests = true,
        .on_response = api_metrics_note_request,
        .on_response_user = sv->metrics,
    };
    char err[512] = "";
    http_server *http = http_server_start(&hcfg, err, sizeof err);
    bool served = http != NULL;
    if (served)
        serve_until_stopped(sv, http, &stop_signals);
    else
        log_printf(&serve_log, "error: %s", err);
    engine_free(sv->eng); /* unloads: stops the runtime and reaps it */
    api_metrics_free(sv->metrics);
    model_registry_free(&sv->reg);
    server_config_free(&sv->cfg);
    free(sv->emu);
    free(sv->tokenizer_dir);
    free(sv);
    if (!served)
        return 1;
    log_printf(&serve_log, "stopped");
    return 0;
}
