/* turn: one turn of a job on the runtime, as a small explicit state machine:
 *   stage  — hand the tokenizer service what the runtime must prefill (the reset's system block and
 *            the encode's ids; nothing in compatibility mode, where the upstream decides);
 *   start  — reset the runtime (when planned) and start the generation;
 *   pump   — take the run's events: each piece goes through the output filter (thinking/content,
 *            stop sequences, num_predict) and the tool-call parser to the job's events; a limit, a
 *            client that left or a server that stops ends the run with a stop;
 *   finish — the counts and timings, the done reason, and what the runtime's cache now holds.
 * Every exit goes through one cleanup. The turn knows nothing of HTTP or of the runtime's quirks: it
 * depends on two small interfaces, the runtime (the driver, driver.h) and the staging seam of the
 * tokenizer service, so tests drive it with fakes. What the turn leaves behind (committing the
 * session, restarting a wedged runtime) is its caller's. */
#ifndef AXLLAMA_ENGINE_TURN_H
#define AXLLAMA_ENGINE_TURN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common/buf.h"
#include "engine/driver.h"
#include "engine/job.h"
#include "tokenizer/tokenizer.h"

/* The runtime, as the turn uses it (the driver's run functions; fakes in tests). */
typedef struct {
    drv_status (*reset)(void *rt, const char *system_prompt, long prefill_tokens);
    drv_status (*start)(void *rt, const char *prompt, const drv_sampling *s);
    run_event_kind (*next)(void *rt, run_event *ev, double deadline);
    void (*request_stop)(void *rt);
    void (*end)(void *rt);
    void *rt;
} turn_runtime;

/* The tokenizer service's staging seam (tokensvc.h; fakes in tests). */
typedef struct {
    bool (*stage_reset)(void *svc, const char *uid, const int32_t *ids, size_t n);
    bool (*stage_encode)(void *svc, const char *uid, const int32_t *full, size_t n_full, size_t n_diff);
    bool (*clear_staged)(void *svc, const char *uid);
    void *svc;
} turn_staging;

typedef struct {
    bool reset;               /* reset the runtime first */
    const char *reset_system; /* the system_prompt sent with /api/reset */
    const char *prompt;       /* the prompt sent with /api/generate */
    bool staged;              /* stage the ids below (false: compatibility mode) */
    const char *uid;          /* staged: the runtime's uid in the tokenizer service */
    const idvec *reset_ids;   /* staged + reset: the answer to the runtime's /reset */
    const idvec *held_ids;    /* staged + continue: what the runtime's cache holds */
    const idvec *diff;        /* staged: the prefill (the answer to its /encode: held/reset + diff) */
    int max_positions;        /* the runtime's last position (2559 for Qwen3-4B) */
    drv_sampling sampling;
    double per_token_hint_s;          /* the runtime's time per generated token, measured on an earlier
                                 turn (0: none): for the timings of a reply too short to measure */
    const atomic_bool *shutting_down; /* may be NULL */
    /* Asked while the run goes on (and after each driver_interrupt): true ends it with a stop. For
     * the engine's background restore, which yields to a new request. May be NULL. */
    bool (*yield)(void *user);
    void *yield_user;
} turn_plan;

typedef enum { TURN_OK, TURN_CONTEXT_FULL, TURN_FAILED } turn_result;

typedef struct {
    turn_result result;
    const char *done_reason; /* TURN_OK: "stop" or "length" */
    job_metrics metrics;     /* TURN_OK: counts and durations (load_ns and total_ns are the caller's) */
    idvec generated;         /* TURN_OK: every generated id (what the cache holds after the plan's) */
    char *content;           /* TURN_OK: the answer as the client got it, tool-call blocks excluded */
    chat_tool_call *calls;   /* TURN_OK: the tool calls parsed from it */
    size_t n_calls;
    bool eos;            /* TURN_OK: the reply ended with EOS (not a stop, not the context end) */
    double per_token_s;  /* TURN_OK: the time per generated token this turn measured (0: too short) */
    drv_failure failure; /* TURN_FAILED: the driver's reason, DRV_FAIL_NONE for a refused call */
    bool wedged;         /* TURN_FAILED: the runtime stays busy or hangs: only a restart helps */
    char error[512];     /* TURN_FAILED: the message */
} turn_outcome;

/* Runs one turn of j (its options, think and tools) as planned; pieces and tool calls go to j's
 * events (never the terminal one: that is the caller's). Returns out->result. */
turn_result turn_run(const turn_plan *plan, job *j, const tokenizer *tok, const turn_runtime *rt,
                     const turn_staging *staging, turn_outcome *out);
void turn_outcome_free(turn_outcome *out);

#endif
