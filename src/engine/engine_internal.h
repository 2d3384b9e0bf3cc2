/* engine_internal: the engine object, shared by the engine's own files (engine.c: the worker and the
 * public API; loader.c: loading and unloading; compat.c: compatibility mode). Nothing outside
 * src/engine/ includes this. The thread and lock rules are at the top of engine.c. */
#ifndef AXLLAMA_ENGINE_ENGINE_INTERNAL_H
#define AXLLAMA_ENGINE_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/log.h"
#include "engine/driver.h"
#include "engine/engine.h"
#include "engine/job.h"
#include "engine/session.h"
#include "engine/turn.h"
#include "tokensvc/tokensvc.h"

/* Compatibility mode (manifest "tokenizer_upstream"): what the runtime's conversation holds, at the
 * message level (the upstream renders it, so ids cannot be compared). */
typedef struct {
    bool valid;
    char *system;
    char **roles, **contents; /* after the system message, the reply last */
    size_t n;
} compat_session;

struct engine {
    engine_config cfg;
    log_sink log;
    plan_mode plan_mode; /* PLAN_RESET with reset_every_turn: the seeds' design, for make bench */
    rt_driver *drv;      /* lives as long as the engine; attached to each loaded runtime */

    /* the queue (queue_lock) */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond; /* monotonic: a job, an unload request, or shutdown */
    job *head, *tail;
    size_t queued;
    size_t held_bytes;      /* the text of the jobs queued or running (job.bytes), for max_queued_bytes */
    char *unload_requested; /* model name, handled by the worker when idle */
    atomic_bool shutting_down;
    pthread_t worker;
    _Atomic uint64_t heartbeat_ns; /* clock_mono_ns() when the worker was last seen turning */
    job *running;                  /* the job the worker runs (queue_lock): job_cancel interrupts its wait */
    bool restoring; /* the worker restores a displaced conversation (queue_lock): a submit interrupts it */

    /* the loaded model: written by the worker only, under status_lock (engine_ps reads it) */
    pthread_mutex_t status_lock;
    const model_manifest *loaded;
    tokenizer *tok;
    tok_service *svc;
    supervisor *sup;
    int runtime_port;
    char uid[TOK_SERVICE_UID_LEN + 1];
    double keep_alive_s; /* sticky, per loaded model */
    bool running_job;
    double expires_mono; /* clock_mono(); valid when !running_job and keep_alive >= 0 */
    /* counters for engine_get_stats (written by the worker) */
    const model_manifest *loading;                    /* a load in progress, until its runtime is known */
    uint64_t loads_ok, loads_failed, restarts_before; /* restarts of the runtimes unloaded so far */
    double load_seconds, last_load_seconds;
    bool last_load_failed;
    char last_load_model[128];
    char last_load_error[256];

    /* worker only */
    double per_token_s; /* the loaded runtime's time per generated token, last measured */
    session sess;
    session displaced; /* a multi-turn conversation a one-off request pushed out of the runtime */
    const model_manifest *displaced_model;
    atomic_bool runtime_died;   /* set by the supervisor's thread */
    atomic_bool tokenizer_lost; /* the service does not know the runtime's uid (set by on_unknown_uid) */
    /* compatibility mode */
    supervisor *up_sup; /* the upstream tokenizer command, NULL when none */
    atomic_bool upstream_died;
    compat_session compat;
};

/* What a job gets when the tokenizer service lost the runtime's uid. */
#define TOKENIZER_LOST_MESSAGE \
    "the tokenizer service lost the runtime's conversation; the model is being reloaded, try again"

/* loader.c */
/* Makes m the loaded model, ready to run (loading it, or waiting out a load or restart in progress).
 * 0, or the HTTP status to fail the job with and a message: 503 while a crashed runtime waits out a
 * long restart back-off (a retryable answer instead of a silent wait), 500 when it cannot load. */
int engine_ensure_loaded(engine *e, const model_manifest *m, char *err, size_t errlen);
/* Stops the runtime (and the upstream) and forgets the model. */
void engine_unload_now(engine *e);

/* restore.c */
/* Before a turn that resets the runtime: keeps the conversation it held if it was a multi-turn chat,
 * so that it can be restored later. */
void restore_note_displaced(engine *e, const session_plan *plan, const model_manifest *m);
/* After a job, with the queue empty: puts a displaced conversation back into the runtime when a
 * one-off request pushed it out, so its next turn continues (AXLLAMA_RESTORE). */
void restore_if_due(engine *e);
/* The model is unloaded or changes: nothing to restore any more. */
void restore_forget(engine *e);

/* compat.c */
void compat_clear(compat_session *c);
/* Runs a job in compatibility mode (docs/models.md) and ends it with DONE or ERROR. */
void compat_run_job(engine *e, job *j, job_metrics *mt);

/* engine.c */
/* The worker notes that it still turns (engine_responsive). */
void engine_beat(engine *e);
/* The turn's view of the runtime (the driver) and of the tokenizer service's staging seam. */
turn_runtime engine_turn_runtime(engine *e);
turn_staging engine_turn_staging(engine *e);
/* The runtime's sampling keys for j: its options, else the manifest's parameters (engine.c). */
drv_sampling engine_sampling(const job *j);
/* What a failed turn leaves to the engine: a wedged or hung runtime is stopped (the next job
 * starts it again). */
void engine_after_failed_turn(engine *e, const turn_outcome *o);
/* Ends j with DONE (metrics' total_ns set here) or with a 500 and the turn's error. */
void engine_end_job(engine *e, job *j, const turn_outcome *o, job_metrics *mt);

#endif
