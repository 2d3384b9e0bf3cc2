/* driver: the vendor runtime's protocol (docs/spec/runtime-protocol.md) and every quirk of it, so that
 * nothing above it needs to know them. It speaks to the runtime's HTTP API (POST /api/reset, POST
 * /api/generate, GET /api/generate_provider, GET /api/stop) over one kept-alive connection, and it
 * reads what the runtime tells axllama's tokenizer service during a run (its /encode and /decode
 * calls, handed in by the engine's callbacks). A run is reported as a sequence of events: PIECE (the
 * ids of one streamed piece), then END (every generated id) or FAILED.
 *
 * The quirks it handles:
 *   - "400 llm is running" while a reset prefill (or the previous run) is still going: /api/reset and
 *     /api/generate are retried with a growing back-off (5 ms doubling to 250 ms) for up to
 *     busy_timeout_s (§2.5, §7.4); past that the runtime is wedged (the old build's context-full bug).
 *     The generate after a reset first waits most of the reset's prefill out, at the fastest pace
 *     (seconds per 128-token chunk) earlier resets on this runtime showed.
 *   - done:true before the run started (§2.5, §7.6): the run counts as started only once the runtime
 *     called our /encode; a done before that is ignored.
 *   - the end of a run is told by the runtime's decode calls, not by polling (§2.6): a decode of more
 *     than 3 ids, or of exactly the ids streamed so far, is the final decode of the whole reply; the
 *     driver then confirms done:true with a few quick polls. A decode of <= 3 ids equal to what was
 *     streamed may still be a piece (a reply that repeats itself): it is held until the poll or the
 *     next decode tells which it was.
 *   - the 1-2 ids the runtime never streams at the context end or after a stop are in the final
 *     decode: they come out as a last PIECE before END.
 *   - context full (§2.8): the runtime ran the turn (called /encode) and ended without a single decode
 *     call; END has context_full set.
 *   - a stop that lands before the runtime's Run begins is lost (§2.7): /api/stop is repeated every
 *     0.5 s until the run ends (at most stop_grace_s, then FAILED).
 *   - the text queue that is never cleared (§2.5, §7.5): polls drain it; its text is not used (the
 *     pieces come from the decode calls), except to log the context-full message.
 *   - a runtime that makes no progress (no decode call, no answer to a poll) for stall_timeout_s is
 *     hung: FAILED with hung set (the engine then restarts it).
 * While a run is going the runtime is polled only as a slow watchdog (every 1 s), besides the quick
 * polls that confirm an end.
 *
 * Threads: the run functions (driver_reset ... driver_end_run) are called by the engine worker only;
 * the driver_saw_* and driver_fail_run functions by any thread (the tokenizer service's, the
 * supervisor's): they only queue what they saw under the driver's lock and wake the worker. */
#ifndef AXLLAMA_ENGINE_DRIVER_H
#define AXLLAMA_ENGINE_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"

typedef enum {
    DRV_OK,
    DRV_BUSY,     /* 400 {"error": "llm is running"} (after the retries) */
    DRV_REJECTED, /* another 4xx/5xx answer */
    DRV_DOWN,     /* no answer (refused, timed out) */
} drv_status;

/* The runtime's sampling keys for one request (has_* false = key not sent). */
typedef struct {
    bool has_temperature, has_repetition_penalty, has_top_p, has_top_k;
    double temperature, repetition_penalty, top_p;
    int top_k;
} drv_sampling;

typedef struct {
    double call_timeout_s;  /* one HTTP call; <= 0: 5 */
    double busy_timeout_s;  /* how long "llm is running" may last (a reset prefill); <= 0: 60 */
    double stall_timeout_s; /* a run with no progress this long is hung; <= 0: 120 */
    double stop_grace_s;    /* after /api/stop, how long the run may take to end; <= 0: 30 */
    log_sink log;
} rt_driver_config;

typedef struct rt_driver rt_driver;

rt_driver *driver_new(const rt_driver_config *cfg);
void driver_free(rt_driver *d);
/* Points the driver at the runtime on 127.0.0.1:port (port 0: none); drops the old connection and
 * whatever a failed runtime left (a pending failure, queued observations). Worker thread. */
void driver_attach(rt_driver *d, int port);

/* ---- what the runtime tells our tokenizer service (any thread) */

/* The runtime called /encode (its run began). diff_len: the prefill length the service answered
 * (compatibility mode: the upstream's), < 0 when not known. */
void driver_saw_encode(rt_driver *d, long diff_len);
/* The runtime called /decode with these ids. */
void driver_saw_decode(rt_driver *d, const int32_t *ids, size_t n);

typedef enum {
    DRV_FAIL_NONE,
    DRV_FAIL_DIED,      /* the runtime exited */
    DRV_FAIL_UPSTREAM,  /* the tokenizer upstream failed (compatibility mode) */
    DRV_FAIL_HUNG,      /* no progress, or no answer, for too long */
    DRV_FAIL_STOP,      /* the runtime did not stop after /api/stop */
    DRV_FAIL_TOKENIZER, /* the tokenizer service does not know the runtime's uid */
} drv_failure;

/* The run cannot go on (the runtime died, the upstream failed): the current run, or the next one
 * if none is going, ends with FAILED and this message. The first failure's message wins. */
void driver_fail_run(rt_driver *d, drv_failure kind, const char *message);

/* Makes a driver_next that is waiting return RUN_NONE now (a client left, the server stops), so
 * the caller can act without polling. Any thread. */
void driver_interrupt(rt_driver *d);

/* ---- one run (the worker thread) */

/* POST /api/reset {"system_prompt": ...} (asynchronous in the runtime), retrying "llm is running".
 * prefill_tokens: the system block the runtime prefills for it (<= 0: not known); the next
 * driver_start waits that prefill out at the pace earlier resets showed. */
drv_status driver_reset(rt_driver *d, const char *system_prompt, long prefill_tokens);
/* POST /api/generate, retrying "llm is running"; on DRV_OK the run has begun: read it with
 * driver_next until END or FAILED, then call driver_end_run. */
drv_status driver_start(rt_driver *d, const char *prompt, const drv_sampling *s);

typedef enum { RUN_NONE, RUN_PIECE, RUN_END, RUN_FAILED } run_event_kind;

typedef struct {
    run_event_kind kind;
    idvec ids;           /* PIECE: the piece's ids; END: every generated id */
    bool context_full;   /* END: the runtime refused the turn (no decode call at all) */
    long prefilled;      /* END: the diff length the runtime's /encode was answered (< 0 unknown) */
    drv_failure failure; /* FAILED */
    char error[320];     /* FAILED: the message */
} run_event;

/* The next event of the run, waiting at most until deadline (clock_mono seconds); RUN_NONE when
 * nothing came by then. After END or FAILED, further calls return the same kind again. ev->ids is
 * owned by ev: free with run_event_free. */
run_event_kind driver_next(rt_driver *d, run_event *ev, double deadline);
void run_event_free(run_event *ev);
/* Ends the run early (num_predict, a stop sequence, a client that left): /api/stop now and again
 * until the run ends. Idempotent. */
void driver_request_stop(rt_driver *d);
/* The run is over for the caller: stops listening to the tokenizer traffic and forgets it. */
void driver_end_run(rt_driver *d);

/* Runtime HTTP calls this driver made since driver_new (every endpoint) and TCP connections it
 * opened: for tests and make bench. */
unsigned long driver_calls(const rt_driver *d);
unsigned long driver_connects(const rt_driver *d);

#endif
