/* loader: loading and unloading a model: the tokenizer, the in-process tokenizer service, the runtime
 * under its supervisor (and in compatibility mode the upstream tokenizer command under one of its
 * own), readiness, and the callbacks through which the tokenizer service and the supervisors report
 * to the engine. Everything here runs on the engine worker, except the callbacks (see engine.c's
 * thread table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "engine/engine_internal.h"
#include "net/http_client.h"
#include "net/socket.h"

#define UPSTREAM_PROBE_INTERVAL_S 0.2
#define DEFAULT_UPSTREAM_START_TIMEOUT_S 60.0
#define READY_WAIT_SLICE_S 0.5
#define RESTART_WAIT_MAX_S 5.0 /* a job waits for a restart due this soon; a later one answers 503 */

/* ---------------------------------------------------------------- callbacks (other threads) */

/* The runtime takes a uid when it starts (GET /get_uid, then /bos_id, /eos_id, /reset) and keeps it:
 * the first uid handed out after each start is the runtime's (e->uid is cleared at a load and when the
 * runtime exits). It is pinned, so that no other client's /get_uid calls can evict it, and a later
 * uid (another client's) does not replace it. */
static void on_new_uid(void *user, const char *uid)
{
    engine *e = user;
    pthread_mutex_lock(&e->status_lock);
    bool adopt = e->uid[0] == '\0';
    if (adopt)
        snprintf(e->uid, sizeof e->uid, "%s", uid);
    tok_service *svc = e->svc; /* this service (it is stopped only after its requests end), or NULL */
    pthread_mutex_unlock(&e->status_lock);
    if (adopt && svc)
        tok_service_pin_uid(svc, uid);
}

/* A request named a uid the service does not know. If it is the runtime's (or a turn is running, whose
 * runtime may hold a uid the engine never saw), the runtime's turn can never progress: fail it now (the
 * engine then reloads the model) instead of waiting out the stall timeout. */
static void on_unknown_uid(void *user, const char *path, const char *uid)
{
    engine *e = user;
    pthread_mutex_lock(&e->status_lock);
    bool runtime_s = !strcmp(uid, e->uid) || e->running_job;
    pthread_mutex_unlock(&e->status_lock);
    if (!runtime_s)
        return;
    log_printf(&e->log, "the tokenizer service does not know uid %s (%s): failing the turn and reloading", uid, path);
    atomic_store(&e->tokenizer_lost, true);
    driver_fail_run(e->drv, DRV_FAIL_TOKENIZER, TOKENIZER_LOST_MESSAGE);
}

static void on_decode(void *user, const char *uid, const int32_t *ids, size_t n, const char *text, size_t len)
{
    (void)uid;
    (void)text;
    (void)len;
    engine *e = user;
    driver_saw_decode(e->drv, ids, n);
}

static void on_request(void *user, const char *method, const char *path, const char *body, size_t len)
{
    (void)method;
    (void)body;
    (void)len;
    engine *e = user;
    if (!strncmp(path, "/encode", 7) || !strncmp(path, "//encode", 8))
        driver_saw_encode(e->drv, -1);
}

static void on_encode(void *user, const char *uid, const int32_t *diff, size_t n)
{
    (void)uid;
    (void)diff;
    engine *e = user;
    driver_saw_encode(e->drv, (long)n);
}

static void on_upstream_error(void *user, const char *path, const char *message)
{
    (void)path;
    engine *e = user;
    char msg[400];
    snprintf(msg, sizeof msg, "the tokenizer upstream failed: %s", message);
    driver_fail_run(e->drv, DRV_FAIL_UPSTREAM, msg);
    log_printf(&e->log, "%s", message);
}

static void on_upstream_log(void *user, const char *line)
{
    engine *e = user;
    log_printf(&e->log, "tokenizer upstream: %s", line);
}

static void on_upstream_exit(void *user, const rt_status *st)
{
    engine *e = user;
    atomic_store(&e->upstream_died, true);
    driver_fail_run(e->drv, DRV_FAIL_UPSTREAM, "the tokenizer upstream exited unexpectedly");
    log_printf(&e->log, "the tokenizer upstream exited (status %d)", st->last_exit);
}

static void on_runtime_log(void *user, const char *line)
{
    engine *e = user;
    /* the runtime's answer to each generate retried while a reset prefills: expected, not logged
     * unless OLLAMA_DEBUG (a reset made hundreds of such lines when retried every 5 ms) */
    if (strstr(line, RUNTIME_BUSY_LINE)) {
        if (log_debug_enabled())
            log_printf(&e->log, "[DEBUG] runtime: %s", line);
        return;
    }
    log_printf(&e->log, "runtime: %s", line);
}

static void on_runtime_exit(void *user, const rt_status *st)
{
    engine *e = user;
    pthread_mutex_lock(&e->status_lock);
    e->uid[0] = '\0'; /* the restarted runtime takes a new uid */
    pthread_mutex_unlock(&e->status_lock);
    atomic_store(&e->runtime_died, true);
    driver_fail_run(e->drv, DRV_FAIL_DIED, "the model runtime exited unexpectedly; it is being restarted");
    log_printf(&e->log, "runtime exited (status %d); restarting", st->last_exit);
}

/* ---------------------------------------------------------------- unloading */

void engine_unload_now(engine *e)
{
    if (!e->loaded)
        return;
    log_printf(&e->log, "unloading %s", e->loaded->name);
    pthread_mutex_lock(&e->status_lock); /* engine_ps must not see half-freed parts */
    if (e->sup)
        e->restarts_before += (uint64_t)supervisor_status(e->sup).restarts;
    supervisor *sup = e->sup;
    supervisor *up = e->up_sup;
    tok_service *svc = e->svc;
    tokenizer *tok = e->tok;
    e->sup = NULL;
    e->up_sup = NULL;
    e->svc = NULL;
    e->tok = NULL;
    e->loaded = NULL;
    e->uid[0] = '\0';
    pthread_mutex_unlock(&e->status_lock);
    supervisor_free(sup); /* stops the runtime: /api/stop, SIGINT, SIGKILL after a timeout */
    supervisor_free(up);  /* then the upstream tokenizer it used (compatibility mode) */
    tok_service_stop(svc);
    tokenizer_free(tok);
    driver_attach(e->drv, 0);
    e->per_token_s = 0;
    session_free(&e->sess);
    restore_forget(e);
    compat_clear(&e->compat);
}

/* ---------------------------------------------------------------- loading */

static char *substitute_port(const char *arg, int port)
{
    strbuf out = {0};
    for (const char *p = arg; *p;) {
        if (!strncmp(p, "{port}", 6)) {
            sb_printf(&out, "%d", port);
            p += 6;
        } else {
            sb_putc(&out, *p++);
        }
    }
    return sb_steal(&out);
}

/* The load timeout in seconds (no limit: a very large number). */
static double load_timeout(const engine *e, const model_manifest *m)
{
    double t = m->has_load_timeout ? m->load_timeout_s : e->cfg.load_timeout_s;
    return t > 0 ? t : 1e9;
}

/* True once an HTTP server answers (any status) at url within timeout_s. Nothing tells us when an
 * external server comes up, so this probes every 0.2 s. */
static bool upstream_answers(const char *url, double timeout_s)
{
    double end = deadline_in(timeout_s);
    http_client *c = http_client_new(&(http_client_config){.base_url = url, .fresh_connection = true});
    bool ok = false;
    while (c && !ok) {
        http_reply r;
        ok = http_client_call(c, &(http_call){.method = "HEAD", .path = "/bos_id"}, &r) == HTTPC_OK;
        http_reply_free(&r);
        if (ok || deadline_passed(end))
            break;
        clock_sleep(UPSTREAM_PROBE_INTERVAL_S);
    }
    http_client_free(c);
    return ok;
}

/* Compatibility mode: starts the manifest's upstream command and waits until it is ready, or
 * (without a command) waits until the upstream's url answers. */
static bool start_upstream(engine *e, const model_manifest *m, supervisor **out, char *err, size_t errlen)
{
    *out = NULL;
    double timeout = m->upstream_start_timeout_s > 0 ? m->upstream_start_timeout_s : DEFAULT_UPSTREAM_START_TIMEOUT_S;
    if (m->upstream_command) {
        log_printf(&e->log, "starting the tokenizer upstream %s", m->upstream_command[0]);
        supervisor_config sc = {.binary = m->upstream_command[0],
                                .args = (const char *const *)m->upstream_command + 1,
                                .workdir = m->upstream_workdir,
                                .port = m->upstream_port,
                                .load_timeout_s = timeout,
                                .stop_timeout_s = 5,
                                .restart = false,
                                .on_log = on_upstream_log,
                                .on_exit = on_upstream_exit,
                                .user = e};
        supervisor *up = supervisor_new(&sc);
        char why[256];
        if (!supervisor_start(up, why, sizeof why) || !supervisor_wait_ready(up, timeout + 5, why, sizeof why)) {
            snprintf(err, errlen, "the tokenizer upstream (%s) did not start: %s", m->upstream_command[0], why);
            supervisor_free(up);
            return false;
        }
        /* ready means its port (the url's, manifest.c checks that) answered HTTP */
        *out = up;
        return true;
    }
    if (!upstream_answers(m->upstream_url, timeout)) {
        snprintf(err, errlen, "the tokenizer upstream %s does not answer", m->upstream_url);
        return false;
    }
    return true;
}

/* supervisor_wait_ready in short slices, so that a server shutting down does not wait out a
 * load (133 s on a Pi, or forever with load_timeout 0). */
static bool wait_ready(engine *e, supervisor *sup, double timeout_s, char *err, size_t errlen)
{
    double end = deadline_in(timeout_s);
    for (;;) {
        if (atomic_load(&e->shutting_down)) {
            snprintf(err, errlen, "the server is shutting down");
            return false;
        }
        engine_beat(e);
        double left = deadline_left(end);
        if (supervisor_wait_ready(sup, left < READY_WAIT_SLICE_S ? left : READY_WAIT_SLICE_S, err, errlen))
            return true;
        rt_state st = supervisor_status(sup).state;
        if ((st != RT_LOADING && st != RT_RESTARTING) || deadline_passed(end))
            return false;
    }
}

/* The runtime's command line: the manifest's arguments ({port} filled in), then
 * --url_tokenizer_model and --devices. NULL-terminated; free each and the array. */
static char **runtime_args(const model_manifest *m, int port, uint16_t tokenizer_port, size_t *n_out)
{
    size_t n = 0;
    char **args = xcalloc(m->n_runtime_args + 6, sizeof *args);
    for (size_t i = 0; i < m->n_runtime_args; i++)
        args[n++] = substitute_port(m->runtime_args[i], port);
    args[n++] = xstrdup("--url_tokenizer_model");
    strbuf url = {0};
    sb_printf(&url, "http://127.0.0.1:%u", (unsigned)tokenizer_port);
    args[n++] = sb_steal(&url);
    if (m->devices) {
        args[n++] = xstrdup("--devices");
        args[n++] = !strcmp(m->devices, "auto") ? supervisor_detect_devices() : xstrdup(m->devices);
    }
    *n_out = n;
    return args;
}

/* The loaded model is m and its runtime is up, loading or restarting: wait for it. 0, 503 (a restart
 * not due soon), or 500 (it is gone: load it again). */
static int reuse_loaded(engine *e, const model_manifest *m, char *err, size_t errlen)
{
    rt_status st = supervisor_status(e->sup);
    if (st.state != RT_READY && st.state != RT_LOADING && st.state != RT_RESTARTING)
        return 500;
    double due = st.restart_at - clock_mono();
    if (st.state == RT_RESTARTING && due > RESTART_WAIT_MAX_S) {
        snprintf(err, errlen,
                 "the model runtime is restarting after a failure (%s); the next start is in %.0f s, try again then",
                 st.error[0] ? st.error : "it died", due);
        return 503;
    }
    if (!wait_ready(e, e->sup, load_timeout(e, m), err, errlen))
        return 500;
    if (atomic_exchange(&e->runtime_died, false)) { /* a restarted runtime holds nothing */
        session_invalidate(&e->sess);
        compat_clear(&e->compat);
        driver_attach(e->drv, e->runtime_port);
    }
    return 0;
}

/* Starts the tokenizer service (and the upstream in compatibility mode) for m's tokenizer. */
static tok_service *start_service(engine *e, const model_manifest *m, const tokenizer *tok, supervisor **up, char *err,
                                  size_t errlen)
{
    atomic_store(&e->upstream_died, false);
    if (m->upstream_url && !start_upstream(e, m, up, err, errlen))
        return NULL;
    tok_service_config tc = {.tok = tok,
                             .host = "127.0.0.1",
                             .port = (uint16_t)m->tokenizer_port,
                             .on_new_uid = on_new_uid,
                             .on_decode = on_decode,
                             .on_request = on_request,
                             .on_unknown_uid = on_unknown_uid,
                             .loopback_only = true,
                             .upstream_url = m->upstream_url,
                             .on_encode = on_encode,
                             .on_upstream_error = on_upstream_error,
                             .user = e};
    char svc_err[256];
    tok_service *svc = tok_service_start(&tc, svc_err, sizeof svc_err);
    if (!svc) {
        snprintf(err, errlen, "cannot start the tokenizer service: %s", svc_err);
        supervisor_free(*up);
        *up = NULL;
    }
    return svc;
}

/* Loads m (nothing is loaded): the tokenizer, its service (and upstream), the runtime. */
static int load_model(engine *e, const model_manifest *m, char *err, size_t errlen)
{
    log_printf(&e->log, "loading %s", m->name);
    tokenizer *tok = tokenizer_load(m->tokenizer_dir, err, errlen);
    if (!tok)
        return 500;
    supervisor *up = NULL;
    tok_service *svc = start_service(e, m, tok, &up, err, errlen);
    if (!svc) {
        tokenizer_free(tok);
        return 500;
    }
    int port = m->runtime_port > 0 ? m->runtime_port : net_free_port();
    size_t n_args;
    char **args = runtime_args(m, port, tok_service_port(svc), &n_args);
    double timeout = load_timeout(e, m);
    supervisor_config sc = {.binary = m->runtime_binary,
                            .args = (const char *const *)args,
                            .env = (const char *const *)m->env,
                            .workdir = m->runtime_workdir,
                            .port = port,
                            .load_timeout_s = timeout,
                            .restart = true,
                            .liveness_interval_s = e->cfg.runtime_probe_s,
                            .on_log = on_runtime_log,
                            .on_exit = on_runtime_exit,
                            .user = e};
    supervisor *sup = supervisor_new(&sc);
    for (size_t i = 0; i < n_args; i++)
        free(args[i]);
    free(args);

    pthread_mutex_lock(&e->status_lock);
    e->loaded = m;
    e->loading = NULL; /* engine_ps tells the rest */
    e->tok = tok;
    e->svc = svc;
    e->sup = sup;
    e->up_sup = up;
    e->runtime_port = port;
    e->uid[0] = '\0';
    e->keep_alive_s = e->cfg.default_keep_alive_s;
    pthread_mutex_unlock(&e->status_lock);
    session_init(&e->sess);
    atomic_store(&e->runtime_died, false);
    atomic_store(&e->tokenizer_lost, false);
    driver_attach(e->drv, port);

    if (!supervisor_start(sup, err, errlen) || !wait_ready(e, sup, timeout, err, errlen)) {
        engine_unload_now(e);
        return 500;
    }
    log_printf(&e->log, "%s is ready", m->name);
    return 0;
}

/* Counts a load for engine_get_stats. */
static void note_load(engine *e, const model_manifest *m, bool ok, double seconds, const char *err)
{
    pthread_mutex_lock(&e->status_lock);
    e->loading = NULL;
    if (ok)
        e->loads_ok++;
    else
        e->loads_failed++;
    e->load_seconds += seconds;
    e->last_load_seconds = seconds;
    e->last_load_failed = !ok;
    snprintf(e->last_load_model, sizeof e->last_load_model, "%s", m->name);
    snprintf(e->last_load_error, sizeof e->last_load_error, "%s", ok ? "" : err);
    pthread_mutex_unlock(&e->status_lock);
}

int engine_ensure_loaded(engine *e, const model_manifest *m, char *err, size_t errlen)
{
    if (e->loaded == m && m->upstream_url &&
        (atomic_load(&e->upstream_died) || (e->up_sup && supervisor_status(e->up_sup).state != RT_READY)))
        engine_unload_now(e); /* the upstream is gone: the runtime's uid with it; start both again */
    if (e->loaded == m && e->sup) {
        int status = reuse_loaded(e, m, err, errlen);
        if (status != 500)
            return status;
        engine_unload_now(e); /* failed or stopped: start over */
    }
    if (e->loaded)
        engine_unload_now(e);

    pthread_mutex_lock(&e->status_lock);
    e->loading = m;
    pthread_mutex_unlock(&e->status_lock);
    double start = clock_mono();
    int status = load_model(e, m, err, errlen);
    note_load(e, m, status == 0, clock_mono() - start, err);
    return status;
}
