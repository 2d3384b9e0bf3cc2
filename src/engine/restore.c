/* restore: wins the KV cache back for a conversation that a side request pushed out of the runtime.
 *
 * Open WebUI and others follow a chat reply with one-off requests (a title, tags, follow-ups) that
 * reset the runtime; the chat's next turn would then prefill the whole conversation again (seconds
 * on a Pi). The vendor runtime holds one KV context and cannot save it, so when the runtime is idle
 * after such a request, the engine rebuilds the conversation in it: reset with its system block,
 * prefill everything after it up to just before the reply's last token, and let greedy decoding
 * generate that token again and end the turn (the runtime's first generated token is never checked
 * for end-of-turn and is fed back, §2.6: so the cache ends exactly as the conversation's last turn
 * left it). Anything else coming out discards the restore.
 *
 * When: a conversation is displaced when a turn resets a runtime that held a chat of two user turns
 * or more, unless the new request takes that same chat back to an earlier point (the client went
 * back: the chat was abandoned, not displaced); it is restored after a job, with the queue empty,
 * while the runtime holds at most a one-off (a conversation with a single user message: a title, a
 * tag or follow-up request, or a new chat's first turn, which then pays a reset on its second turn),
 * the same model is loaded, and the conversation's last turn was greedy (a sampled reply cannot be
 * replayed). It yields at once (a stop) to any new
 * request that is not that conversation's next turn. AXLLAMA_RESTORE=0 turns it off. Worker only.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "engine/engine_internal.h"

static session_model model_of(const engine *e, const model_manifest *m)
{
    return (session_model){.tok = e->tok,
                           .family = m->template_family,
                           .max_prefill = m->max_prefill,
                           .max_positions = m->max_positions,
                           .default_system = m->system_prompt,
                           .retain_ratio = e->cfg.context_retain,
                           .truncate = true};
}

void restore_forget(engine *e)
{
    session_invalidate(&e->displaced);
    e->displaced_model = NULL;
}

void restore_note_displaced(engine *e, const session_plan *plan, const model_manifest *m)
{
    if (!plan->reset || !e->sess.valid || !e->sess.continuable || session_user_turns(&e->sess) < 2 ||
        session_plan_rewinds(&e->sess, plan))
        return;
    session_free(&e->displaced);
    e->displaced = e->sess; /* moved: the runtime is about to lose it */
    e->displaced_model = m;
    session_init(&e->sess);
}

/* Whether a queued job is the displaced conversation's next turn (then the restore goes on). */
static bool is_next_turn(engine *e, const job *j)
{
    if (j->manifest != e->displaced_model || j->kind != JOB_CHAT)
        return false;
    session_model sm = model_of(e, j->manifest);
    session_plan plan;
    char err[256];
    if (!session_plan_chat_tools(&e->displaced, &sm, j->messages, j->n_messages, (const char *const *)j->tools_json,
                                 j->n_tools, j->think, PLAN_ANY, &plan, err, sizeof err))
        return false;
    bool next = !plan.reset;
    session_plan_free(&plan);
    return next;
}

/* The restore's yield test and what it found. */
typedef struct {
    engine *e;
    const job *checked; /* the queued job last judged (the queue is FIFO: its head only changes when the
                           worker takes it, so one verdict per head) */
    bool verdict;
    bool yielded;
} yield_state;

/* turn_plan.yield: a new request that is not the conversation's next turn, or an unload, ends it. */
static bool restore_should_yield(void *user)
{
    yield_state *y = user;
    engine *e = y->e;
    pthread_mutex_lock(&e->queue_lock);
    const job *head = e->head;
    bool unload = e->unload_requested != NULL;
    pthread_mutex_unlock(&e->queue_lock);
    if (head && head != y->checked) {
        y->checked = head;
        y->verdict = !is_next_turn(e, head);
    }
    if (unload || (head && y->verdict))
        y->yielded = true;
    return y->yielded;
}

static bool restore_due(engine *e)
{
    if (e->cfg.no_restore || !e->displaced.valid || !e->displaced.last_greedy || !e->loaded ||
        e->loaded != e->displaced_model || !e->sup || supervisor_status(e->sup).state != RT_READY)
        return false;
    return !e->sess.valid || session_user_turns(&e->sess) <= 1; /* a real chat holds it: leave it */
}

/* Runs the restore turn; true when the runtime's cache holds the conversation again. *yielded: it
 * was stopped for a new request (the conversation may be restored later). */
static bool replay(engine *e, const idvec *reset_ids, const idvec *full, size_t n_diff, int32_t last_id, bool *yielded)
{
    const model_manifest *m = e->displaced_model;
    idvec diff = {0};
    iv_append(&diff, full->v + full->len - n_diff, n_diff);
    char uid[TOK_SERVICE_UID_LEN + 1];
    pthread_mutex_lock(&e->status_lock);
    snprintf(uid, sizeof uid, "%s", e->uid);
    pthread_mutex_unlock(&e->status_lock);
    /* two ids at most: the reply's last one again, then nothing but the end of the turn */
    job_request jr = {.kind = JOB_CHAT, .model = m->name, .options = {.has_num_predict = true, .num_predict = 2}};
    job *j = job_new(&jr, m, 0);
    turn_plan tp = {.reset = true,
                    .reset_system = "(staged by axllama)",
                    .prompt = "(restoring a conversation)",
                    .staged = true,
                    .uid = uid,
                    .reset_ids = reset_ids,
                    .diff = &diff,
                    .max_positions = m->max_positions,
                    .sampling = {.has_top_k = true, .top_k = 1}, /* greedy */
                    .shutting_down = &e->shutting_down,
                    .yield = restore_should_yield};
    yield_state ys = {.e = e};
    tp.yield_user = &ys;
    turn_runtime rt = engine_turn_runtime(e);
    turn_staging staging = engine_turn_staging(e);
    turn_outcome o;
    turn_run(&tp, j, e->tok, &rt, &staging, &o);
    *yielded = ys.yielded || atomic_load(&e->shutting_down);
    bool ok = o.result == TURN_OK && o.eos && o.generated.len == 1 && o.generated.v[0] == last_id;
    if (o.result != TURN_OK)
        log_printf(&e->log, "restore failed: %s", o.error);
    else if (!ok && !*yielded)
        log_printf(&e->log, "restore discarded: the model did not end the reply as before (%zu ids)", o.generated.len);
    turn_outcome_free(&o);
    job_unref(j);
    job_unref(j);
    iv_free(&diff);
    return ok;
}

void restore_if_due(engine *e)
{
    if (!restore_due(e))
        return;
    session_model sm = model_of(e, e->displaced_model);
    idvec reset_ids = {0}, full = {0};
    size_t n_diff = 0;
    int32_t last_id = 0;
    if (!session_restore_ids(&e->displaced, &sm, &reset_ids, &full, &n_diff, &last_id)) {
        restore_forget(e); /* too long to replay in one prefill: its next turn resets */
        return;
    }
    pthread_mutex_lock(&e->queue_lock);
    bool idle = !e->head && !e->unload_requested && !atomic_load(&e->shutting_down);
    e->restoring = idle;
    pthread_mutex_unlock(&e->queue_lock);
    if (idle) {
        double t0 = clock_mono();
        bool yielded = false;
        session_invalidate(&e->sess); /* whatever it held is reset now */
        if (replay(e, &reset_ids, &full, n_diff, last_id, &yielded)) {
            e->sess = e->displaced; /* moved back: the runtime holds it again */
            session_init(&e->displaced);
            e->displaced_model = NULL;
            log_printf(&e->log, "restored a conversation of %zu tokens into the runtime in %.2f s", full.len + 1,
                       clock_mono() - t0);
        } else if (yielded) {
            log_printf(&e->log, "restore stopped for a new request");
        } else {
            restore_forget(e);
        }
        pthread_mutex_lock(&e->queue_lock);
        e->restoring = false;
        pthread_mutex_unlock(&e->queue_lock);
    }
    iv_free(&reset_ids);
    iv_free(&full);
}
