/* supervisor: runs one vendor runtime (or axllama-emu) as a child process and keeps it healthy.
 *   - start: checks that nothing already answers on the runtime's port (a foreign process there is
 *     reported, not waited on), spawns binary + args in workdir with env added, and reports an exec
 *     failure synchronously;
 *   - log: captures stdout and stderr line by line (ANSI colours and \r progress redraws turned into
 *     plain lines) and hands each line to on_log; parses the load progress "k / N" for status;
 *   - readiness: the runtime is ready when its HTTP port answers (GET /api/generate_provider) while
 *     the process lives; exit or load timeout before that is a load failure with a clear message;
 *   - liveness: a ready runtime's HTTP server is probed every liveness_interval_s (5 s) on an
 *     unrouted path (any answer will do; nothing is drained or changed); liveness_failures (2)
 *     misses in a row mean it is hung (stopped, deadlocked): it is killed, which is a death;
 *   - death after ready: on_exit is called (the engine fails the running job), then the runtime is
 *     restarted after a capped exponential backoff (1 s, 2 s, 4 s ... max 60 s; back to 1 s once a
 *     run served a request, supervisor_note_served, or stayed up for a minute) unless restarts
 *     are off;
 *   - stop: GET /api/stop, SIGINT, SIGKILL after stop_timeout; the child is always reaped: no
 *     process is ever left behind (also when axllama itself exits).
 * All waits are bounded. Thread-safe.
 *
 * Details the engine relies on:
 *   - A load failure (exec error, port taken, exit or timeout during load) is final: RT_FAILED, no
 *     retry, also when it happens to a restart. Only a runtime that was ready and then died is
 *     restarted.
 *   - Callbacks run on the supervisor's monitor thread, one at a time, without its lock held: they
 *     may call supervisor_status; supervisor_stop from a callback only requests the stop (it runs
 *     when the callback returns); supervisor_start, supervisor_wait_ready and supervisor_free must
 *     not be called from a callback.
 *   - supervisor_start and supervisor_wait_ready return only after the callbacks of the state they
 *     report have returned (on_state(RT_READY) has run when wait_ready says ready).
 *   - The child runs in its own process group (SIGINT/SIGKILL go to the whole group) with SIGKILL
 *     as its parent-death signal, stdin /dev/null, a clean signal mask, and no inherited fds but
 *     0-2. Its stdout is a pseudo-terminal (a pipe if none is available) so that the vendor's
 *     printf log is line-buffered: live progress, no lines lost in a crash; stderr is a pipe.
 *     axllama must not set SIGCHLD to SIG_IGN (exit statuses would be lost).
 *   - Stopping a runtime that is still loading kills it at once: the vendor's SIGINT handler only
 *     stops its HTTP server, which does not exist before the load ends (docs/spec/runtime-protocol.md §4.4). */
#ifndef AXLLAMA_SUPERVISOR_SUPERVISOR_H
#define AXLLAMA_SUPERVISOR_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What the vendor runtime logs (as an [E] line) each time it refuses a generate because it is busy
 * — expected while axllama waits out a reset's prefill: not an error worth a log line. */
#define RUNTIME_BUSY_LINE "model not available"

typedef enum {
    RT_STOPPED,    /* not running (never started, stopped, or given up) */
    RT_LOADING,    /* spawned, port not answering yet */
    RT_READY,      /* port answers */
    RT_RESTARTING, /* died; waiting out the backoff before the next start */
    RT_FAILED,     /* the last start failed (exec error, exit or timeout during load) */
} rt_state;

/* "stopped", "loading", "ready", "restarting", "failed" (/api/ps, /metrics). */
const char *rt_state_name(rt_state s);

typedef struct {
    rt_state state;
    pid_t pid;     /* 0 when none */
    int load_step; /* last "k / N" seen in the log while loading (0 if none) */
    int load_total;
    double state_since; /* CLOCK_MONOTONIC seconds */
    int restarts;       /* restart attempts after deaths since supervisor_start */
    double restart_at;  /* RT_RESTARTING: when the next start is due (CLOCK_MONOTONIC seconds) */
    int last_exit;      /* wait status of the last exit (valid if exited) */
    bool exited;
    char error[256]; /* last failure or death, "" if none (cleared by supervisor_start; a death's
                            message stays while the restart runs) */
} rt_status;

typedef struct {
    const char *binary;      /* a path (relative: to axllama's working directory, not workdir) or a
                                name looked up in PATH; also the child's argv[0] */
    const char *const *args; /* NULL-terminated, argv[1..] */
    const char *const *env;  /* NULL-terminated KEY=VALUE added to the inherited environment; may be NULL */
    const char *workdir;     /* NULL: inherit */
    int port;                /* the runtime's HTTP port on 127.0.0.1 (required) */
    double load_timeout_s;   /* spawn to ready; <= 0: 300 */
    double stop_timeout_s;   /* SIGINT -> SIGKILL; <= 0: 10 */
    bool restart;            /* restart after a death once ready; false (also a zeroed config): a death
                                leaves the runtime RT_STOPPED. The engine sets it to true. */
    double backoff_initial_s, backoff_max_s; /* <= 0: 1, 60 */
    double liveness_interval_s;              /* 0: 5; < 0: no liveness probe */
    double liveness_timeout_s;               /* <= 0: 2 */
    int liveness_failures;                   /* <= 0: 2 */
    void (*on_log)(void *user, const char *line);
    void (*on_exit)(void *user, const rt_status *st);  /* the child died after being ready (st has the
                                                          new state: RT_RESTARTING or RT_STOPPED);
                                                          called before that state's on_state */
    void (*on_state)(void *user, const rt_status *st); /* every state change */
    void *user;
} supervisor_config;

typedef struct supervisor supervisor;

/* Copies cfg (strings included). */
supervisor *supervisor_new(const supervisor_config *cfg);
/* Spawns the runtime; false with a message if the port is already taken or exec fails ("cannot run
 * BINARY: No such file or directory"). True at once if it is already loading, ready or restarting.
 * Can start again after a stop or a failure. */
bool supervisor_start(supervisor *s, char *err, size_t errlen);
/* Waits until the runtime is ready (true), or it failed / died / the load timed out / timeout_s
 * passed (false, message in err). Also waits through a restart in progress. */
bool supervisor_wait_ready(supervisor *s, double timeout_s, char *err, size_t errlen);
rt_status supervisor_status(supervisor *s);
/* Stops the runtime (see above) and cancels restarts. Returns once the child is reaped; the state
 * is then RT_STOPPED (RT_FAILED stays RT_FAILED). Idempotent; a no-op before any start. */
void supervisor_stop(supervisor *s);
/* The runtime answered a request: a later death restarts it after the shortest back-off again. */
void supervisor_note_served(supervisor *s);
/* supervisor_stop + free. */
void supervisor_free(supervisor *s);

/* `--devices auto`: asks `axcl-smi` for the cards and returns the device list to pass ("0" when
 * axcl-smi is absent or says nothing usable). Heuristic documented in supervisor.c. Caller frees. */
char *supervisor_detect_devices(void);

#endif
