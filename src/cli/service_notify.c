/* service_notify: READY / STATUS / WATCHDOG / STOPPING for systemd over sd_notify, one thread that
 * polls the engine and checks the server. See service_notify.h. */
#include "cli/service_notify.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "cli/commands.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "net/http_client.h"

/* How long after a probe ended its request log line may still come (the server logs a request once
 * it has sent the answer, which the probe may have read already). */
#define PROBE_LOG_GRACE_S 2.0
#define WHY_MAX 256
#define STATUS_MAX (WHY_MAX + 16)

struct service_notify {
    char *address;
    char *probe_url;
    service_notify_config cfg; /* address points into this struct's copy */
    log_sink log;

    bool watchdog;        /* sd_watchdog_enabled said yes */
    double watchdog_s;    /* WATCHDOG_USEC in seconds */
    double interval_s;    /* between two checks: WATCHDOG_USEC / 2 */
    double probe_timeout; /* the HTTP probe's bound */
    double engine_max_age;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* stop, with wake */
    pthread_cond_t wake;
    bool stop;
    atomic_bool stopping; /* set under send_lock; read by the probe's keep_going */
    pthread_mutex_t send_lock;

    pthread_mutex_t probe_lock; /* probe_budget, probe_window_end */
    int probe_budget;           /* request log lines still to swallow for the current probe (0 or 1) */
    double probe_window_end;    /* INFINITY while the probe runs */

    char status[STATUS_MAX];        /* the last STATUS= sent */
    char watchdog_fail[STATUS_MAX]; /* "watchdog: WHY" when the last check failed, else "" */
    atomic_bool send_failed_logged;
};

static void notify_send(service_notify *n, const char *msg)
{
    int r = sd_notify(0, msg);
    if (r < 0 && !atomic_exchange(&n->send_failed_logged, true))
        log_printf(&n->log, "warning: cannot notify the service manager (NOTIFY_SOCKET): %s", strerror(-r));
}

/* The thread's messages: none once STOPPING=1 went (send_lock orders them after it). */
static void notify_send_unless_stopping(service_notify *n, const char *msg)
{
    pthread_mutex_lock(&n->send_lock);
    if (!atomic_load(&n->stopping))
        notify_send(n, msg);
    pthread_mutex_unlock(&n->send_lock);
}

/* ------------------------------------------------------------------------------------- status */

void service_status_text(const engine_loaded_model *m, size_t n, const char *address, char *out, size_t outlen)
{
    if (n == 0 || !m) {
        snprintf(out, outlen, "listening on %s, no model loaded", address ? address : "?");
        return;
    }
    switch (m->state) {
    case RT_LOADING:
        if (m->load_total > 0)
            snprintf(out, outlen, "loading %s %d/%d", m->name, m->load_step, m->load_total);
        else
            snprintf(out, outlen, "loading %s", m->name);
        break;
    case RT_READY: snprintf(out, outlen, "ready %s", m->name); break;
    case RT_RESTARTING: snprintf(out, outlen, "restarting %s (the runtime died)", m->name); break;
    case RT_FAILED: snprintf(out, outlen, "failed to load %s", m->name); break;
    case RT_STOPPED:
    default: snprintf(out, outlen, "stopped %s", m->name); break;
    }
}

/* Sends STATUS= when it changed (never after STOPPING=1); returns whether a load runs (to poll
 * faster). */
static bool update_status(service_notify *n)
{
    if (atomic_load(&n->stopping))
        return false;
    engine_loaded_model m;
    size_t k = n->cfg.loaded ? n->cfg.loaded(n->cfg.user, &m, 1) : 0;
    char text[sizeof n->status];
    if (n->watchdog_fail[0])
        snprintf(text, sizeof text, "%s", n->watchdog_fail);
    else
        service_status_text(&m, k, n->address, text, sizeof text);
    if (strcmp(text, n->status) != 0) {
        snprintf(n->status, sizeof n->status, "%s", text);
        strbuf msg = {0};
        sb_printf(&msg, "STATUS=%s", text);
        notify_send_unless_stopping(n, msg.data);
        sb_free(&msg);
    }
    return k > 0 && m.state == RT_LOADING;
}

/* ----------------------------------------------------------------------------------- watchdog */

char *service_probe_url(const char *address)
{
    strbuf url = {0};
    const char *colon = address ? strrchr(address, ':') : NULL;
    if (!colon)
        sb_printf(&url, "http://%s", address ? address : "127.0.0.1:11434");
    else if (!strncmp(address, "0.0.0.0:", 8))
        sb_printf(&url, "http://127.0.0.1%s", colon);
    else if (!strncmp(address, "[::]:", 5))
        sb_printf(&url, "http://[::1]%s", colon);
    else
        sb_printf(&url, "http://%s", address);
    return sb_steal(&url);
}

static bool probe_keep_going(void *user)
{
    service_notify *n = user;
    return !atomic_load(&n->stopping);
}

/* Whether the listener answers GET SERVICE_PROBE_PATH with 200 in time; why not in why. */
static bool probe_listener(service_notify *n, http_client *client, char *why, size_t whylen)
{
    pthread_mutex_lock(&n->probe_lock);
    n->probe_budget = 1;
    n->probe_window_end = INFINITY;
    pthread_mutex_unlock(&n->probe_lock);

    http_call call = {
        .method = "GET",
        .path = SERVICE_PROBE_PATH,
        .timeout_s = n->probe_timeout,
        .keep_going = probe_keep_going,
        .user = n,
    };
    http_reply reply;
    http_client_result r = http_client_call(client, &call, &reply);
    bool ok = r == HTTPC_OK && reply.status == 200;
    if (r != HTTPC_OK)
        snprintf(why, whylen, "the HTTP listener did not answer GET %s within %gs: %.150s", SERVICE_PROBE_PATH,
                 n->probe_timeout, reply.error);
    else if (!ok)
        snprintf(why, whylen, "the HTTP listener answered GET %s with status %ld", SERVICE_PROBE_PATH, reply.status);
    http_reply_free(&reply);

    pthread_mutex_lock(&n->probe_lock);
    n->probe_window_end = clock_mono() + PROBE_LOG_GRACE_S;
    pthread_mutex_unlock(&n->probe_lock);
    return ok;
}

bool service_notify_swallow_log_line(service_notify *n, const char *line)
{
    if (!n || n->cfg.keep_probe_log || !line)
        return false;
    /* http_server's request line: [HTTP] status | time | client | METHOD "path" */
    if (!strstr(line, "[HTTP]") || !strstr(line, "| GET ") || !strstr(line, "\"" SERVICE_PROBE_PATH "\""))
        return false;
    bool swallow = false;
    pthread_mutex_lock(&n->probe_lock);
    if (n->probe_budget > 0 && clock_mono() <= n->probe_window_end) {
        n->probe_budget--;
        swallow = true;
    }
    pthread_mutex_unlock(&n->probe_lock);
    return swallow;
}

/* One check: the engine's worker turns and the listener answers. Pings systemd when both hold;
 * logs a failure when it starts and the recovery when it ends. */
static void watchdog_check(service_notify *n, http_client *client)
{
    char why[WHY_MAX] = "";
    bool ok = !n->cfg.responsive || n->cfg.responsive(n->cfg.user, n->engine_max_age);
    if (!ok)
        snprintf(why, sizeof why, "the engine's worker has not turned for more than %gs", n->engine_max_age);
    else
        ok = probe_listener(n, client, why, sizeof why);
    if (atomic_load(&n->stopping))
        return;
    if (ok) {
        notify_send_unless_stopping(n, "WATCHDOG=1");
        if (n->watchdog_fail[0])
            log_printf(&n->log, "watchdog: the server serves again");
        n->watchdog_fail[0] = '\0';
        return;
    }
    if (!n->watchdog_fail[0])
        log_printf(&n->log, "watchdog: not telling systemd the server is alive: %s", why);
    snprintf(n->watchdog_fail, sizeof n->watchdog_fail, "watchdog: %s", why);
}

static void *notify_main(void *arg)
{
    service_notify *n = arg;
    http_client *client = NULL;
    if (n->watchdog) {
        http_client_config hc = {
            .base_url = n->probe_url,
            .connect_timeout_s = n->probe_timeout,
            .timeout_s = n->probe_timeout,
            .max_body = 64 << 10,
            .fresh_connection = true, /* keeps none of the server's connection threads busy between checks */
            .user_agent = "axllama-watchdog/" AXLLAMA_VERSION,
        };
        client = http_client_new(&hc);
    }
    double next_check = clock_mono();
    pthread_mutex_lock(&n->lock);
    while (!n->stop) {
        pthread_mutex_unlock(&n->lock);
        if (n->watchdog && client && clock_mono() >= next_check) {
            next_check = clock_mono() + n->interval_s;
            watchdog_check(n, client);
        }
        bool loading = update_status(n);
        double wake_at = clock_mono() + (loading ? SERVICE_STATUS_LOADING_POLL_S : SERVICE_STATUS_POLL_S);
        if (n->watchdog && next_check < wake_at)
            wake_at = next_check;
        pthread_mutex_lock(&n->lock);
        while (!n->stop && !deadline_passed(wake_at))
            clock_cond_wait_until(&n->wake, &n->lock, wake_at);
    }
    pthread_mutex_unlock(&n->lock);
    http_client_free(client);
    return NULL;
}

/* -------------------------------------------------------------------------------- life cycle */

service_notify *service_notify_ready(const service_notify_config *cfg)
{
    const char *socket_path = getenv("NOTIFY_SOCKET");
    if (!socket_path || !socket_path[0])
        return NULL;
    service_notify *n = xcalloc(1, sizeof *n);
    n->cfg = *cfg;
    n->address = xstrdup(cfg->address ? cfg->address : "127.0.0.1:11434");
    n->cfg.address = n->address;
    n->probe_url = service_probe_url(n->address);
    n->log = (log_sink){.fn = cfg->log, .user = cfg->log_user};
    uint64_t usec = 0;
    n->watchdog = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
    n->watchdog_s = (double)usec / 1e6;
    n->interval_s = n->watchdog_s / 2;
    n->probe_timeout = fmin(fmax(n->interval_s, SERVICE_PROBE_MIN_S), SERVICE_PROBE_MAX_S);
    n->engine_max_age = fmax(SERVICE_ENGINE_MAX_AGE_S, n->watchdog_s);
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->probe_lock, NULL);
    pthread_mutex_init(&n->send_lock, NULL);
    clock_cond_init(&n->wake);
    atomic_init(&n->stopping, false);
    atomic_init(&n->send_failed_logged, false);

    service_status_text(NULL, 0, n->address, n->status, sizeof n->status);
    strbuf msg = {0};
    sb_printf(&msg, "READY=1\nSTATUS=%s", n->status);
    notify_send(n, msg.data);
    sb_free(&msg);
    if (n->watchdog)
        log_printf(&n->log, "systemd watchdog: a check every %gs (WATCHDOG_USEC %llu)", n->interval_s,
                   (unsigned long long)usec);
    n->thread_started = pthread_create(&n->thread, NULL, notify_main, n) == 0;
    if (!n->thread_started)
        log_printf(&n->log, "warning: cannot start the systemd status and watchdog thread: no WATCHDOG=1 will be sent");
    return n;
}

void service_notify_stopping(service_notify *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->send_lock);
    bool already = atomic_exchange(&n->stopping, true);
    if (!already)
        notify_send(n, "STOPPING=1\nSTATUS=stopping");
    pthread_mutex_unlock(&n->send_lock);
    if (already)
        return;
    pthread_mutex_lock(&n->lock);
    n->stop = true;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->lock);
    if (n->thread_started)
        pthread_join(n->thread, NULL);
}

void service_notify_free(service_notify *n)
{
    if (!n)
        return;
    service_notify_stopping(n);
    pthread_cond_destroy(&n->wake);
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->probe_lock);
    pthread_mutex_destroy(&n->send_lock);
    free(n->address);
    free(n->probe_url);
    free(n);
}
