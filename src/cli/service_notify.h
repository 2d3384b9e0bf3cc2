/* service_notify: `axllama serve` as a systemd service (Type=notify, WatchdogSec=), over libsystemd's
 * sd_notify:
 *   - READY=1 once the HTTP server listens (with STATUS=listening on ADDRESS);
 *   - STATUS= lines while a model loads and after it: "loading qwen3:4b 12/39", "ready qwen3:4b",
 *     "restarting NAME (the runtime died)", ... (service_status_text), polled from the engine every
 *     SERVICE_STATUS_POLL_S (every SERVICE_STATUS_LOADING_POLL_S while a load runs): systemd has no
 *     event to wait for, and a poll is cheap;
 *   - WATCHDOG=1 every WATCHDOG_USEC/2 (sd_watchdog_enabled) only when a check proves the server can
 *     still serve: the engine's worker has turned within max(SERVICE_ENGINE_MAX_AGE_S, WATCHDOG_USEC)
 *     (engine_responsive) AND the HTTP listener answered GET /api/version on its own address with
 *     200 within the probe's bound (the interval, between 1 s and 10 s). A failed check sends no
 *     WATCHDOG=1 (systemd restarts the service once WatchdogSec passes without one), says why in a
 *     STATUS= line and in the log;
 *   - STOPPING=1 when the stop signal came (service_notify_stopping).
 * One thread does the polling and the checks; without NOTIFY_SOCKET nothing starts and every call
 * is a no-op. The probe's own request log line is swallowed (service_notify_swallow_log_line) so
 * the journal does not get one line per watchdog check. */
#ifndef AXLLAMA_CLI_SERVICE_NOTIFY_H
#define AXLLAMA_CLI_SERVICE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/engine.h"

#define SERVICE_STATUS_POLL_S 1.0
#define SERVICE_STATUS_LOADING_POLL_S 0.25
/* The engine's worker may be held up to a minute by a busy runtime's back-off (engine.h). */
#define SERVICE_ENGINE_MAX_AGE_S 90.0
#define SERVICE_PROBE_MIN_S 1.0
#define SERVICE_PROBE_MAX_S 10.0
/* The path the watchdog asks the server's own listener for. */
#define SERVICE_PROBE_PATH "/api/version"

typedef struct service_notify service_notify;

typedef struct {
    const char *address; /* the listener as http_server_address() gives it: "127.0.0.1:11434",
                            "[::]:11434"; a wildcard address is probed on loopback */
    /* The engine, through callbacks (engine_responsive and engine_ps in the server; fakes in tests). */
    bool (*responsive)(void *user, double max_age_s);
    size_t (*loaded)(void *user, engine_loaded_model *out, size_t max);
    void *user;
    void (*log)(void *user, const char *line); /* the server's log (watchdog failures, recoveries) */
    void *log_user;
    bool keep_probe_log; /* OLLAMA_DEBUG: leave the probe's request log lines in */
} service_notify_config;

/* Tells systemd the server is ready (READY=1) and starts the status / watchdog thread. NULL when
 * the process does not run under a notify-aware service manager (no NOTIFY_SOCKET). The config's
 * strings are copied. */
service_notify *service_notify_ready(const service_notify_config *cfg);

/* STOPPING=1 (once), then stops the thread (an HTTP probe under way is cut short). NULL: no-op. */
void service_notify_stopping(service_notify *n);
/* Stops (if not yet) and frees. Call after the HTTP server stopped (its log may still ask
 * service_notify_swallow_log_line until then). NULL: no-op. */
void service_notify_free(service_notify *n);

/* For the HTTP server's request log: true when line is the log line of the watchdog's own probe,
 * which the caller then drops (at most one line per probe, only while it runs or within 2 s after
 * it ended). NULL or a kept probe log: always false. */
bool service_notify_swallow_log_line(service_notify *n, const char *line);

/* The base URL that probes the listener at address ("0.0.0.0:P" -> "http://127.0.0.1:P",
 * "[::]:P" -> "http://[::1]:P", else "http://ADDRESS"). Caller frees. */
char *service_probe_url(const char *address);

/* The STATUS= text for what the engine has loaded (n is 0 or 1), into out:
 *   nothing loaded      "listening on ADDRESS, no model loaded"
 *   RT_LOADING          "loading NAME k/N" ("loading NAME" before the first progress line)
 *   RT_READY            "ready NAME"
 *   RT_RESTARTING       "restarting NAME (the runtime died)"
 *   RT_FAILED           "failed to load NAME"
 *   RT_STOPPED          "stopped NAME" */
void service_status_text(const engine_loaded_model *m, size_t n, const char *address, char *out, size_t outlen);

#endif
