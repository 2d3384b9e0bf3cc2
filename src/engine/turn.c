/* turn: one turn on the runtime: stage -> start -> pump -> finish. See turn.h.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#include "engine/turn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "engine/output.h"
#include "engine/toolcall.h"

/* How long the pump waits for the runtime before it looks at the client and the server again;
 * job_cancel and shutdown interrupt the wait (driver_interrupt), so this is only a bound. */
#define PUMP_WAIT_S 1.0

/* Where the turn's output goes: thinking straight to the job; content through the tool-call
 * parser when the request has tools; the answer as the client got it is kept for the session. */
typedef struct {
    job *j;
    toolcall_parser *tc; /* NULL without tools */
    strbuf content;      /* content pieces sent (tool-call blocks not included) */
    chat_tool_call *calls;
    size_t n_calls;
} turn_sink;

static void sink_text(void *user, const char *text, size_t len)
{
    turn_sink *k = user;
    sb_append(&k->content, text, len);
    job_push(k->j, (job_event){.kind = JOB_EV_CONTENT, .text = xstrndup(text, len)});
}

static void sink_call(void *user, const char *name, const char *arguments)
{
    turn_sink *k = user;
    k->calls = xrealloc(k->calls, (k->n_calls + 1) * sizeof *k->calls);
    k->calls[k->n_calls++] = (chat_tool_call){.name = xstrdup(name), .arguments_json = xstrdup(arguments)};
    job_push(k->j,
             (job_event){.kind = JOB_EV_TOOL_CALL, .tool_name = xstrdup(name), .tool_arguments = xstrdup(arguments)});
}

static void sink_piece(void *user, bool thinking, const char *text, size_t len)
{
    turn_sink *k = user;
    if (thinking)
        job_push(k->j, (job_event){.kind = JOB_EV_THINKING, .text = xstrndup(text, len)});
    else if (k->tc)
        toolcall_push(k->tc, text, len);
    else
        sink_text(k, text, len);
}

/* The state of one turn. */
typedef struct {
    const turn_plan *plan;
    job *j;
    const turn_runtime *rt;
    const turn_staging *staging;
    turn_outcome *out;
    turn_sink sink;
    output_filter *filter;
    output_status ost;
    bool running; /* the runtime accepted the generation: end the run at the exit */
    bool stop_sent;
    size_t start_pos;  /* the position the prefill ends at */
    size_t n_streamed; /* ids streamed as pieces */
    double t_gen, t_first, t_last;
    run_event end; /* the END event */
} turn_state;

static turn_result failed(turn_state *t, bool wedged, const char *fmt, const char *detail)
{
    t->out->result = TURN_FAILED;
    t->out->wedged = wedged;
    snprintf(t->out->error, sizeof t->out->error, fmt, detail);
    return TURN_FAILED;
}

static const char *refusal_text(drv_status st)
{
    return st == DRV_DOWN ? "no answer" : st == DRV_BUSY ? "it stays busy" : "error";
}

/* stage: the ids the runtime's /reset and /encode will be answered with. */
static turn_result turn_stage(turn_state *t)
{
    const turn_plan *p = t->plan;
    if (!p->staged)
        return TURN_OK;
    if (!p->uid || !p->uid[0])
        return failed(t, false, "%s", "the runtime did not register with the tokenizer service");
    idvec full = {0};
    if (p->reset) {
        if (!t->staging->stage_reset(t->staging->svc, p->uid, p->reset_ids->v, p->reset_ids->len))
            return failed(t, false, "%s", "cannot stage the reset");
        iv_append(&full, p->reset_ids->v, p->reset_ids->len);
    } else if (p->held_ids) {
        iv_append(&full, p->held_ids->v, p->held_ids->len);
    }
    iv_append(&full, p->diff->v, p->diff->len);
    bool staged = t->staging->stage_encode(t->staging->svc, p->uid, full.v, full.len, p->diff->len);
    t->start_pos = full.len;
    iv_free(&full);
    return staged ? TURN_OK : failed(t, false, "%s", "cannot stage the prompt");
}

/* start: reset (when planned), then generate. A runtime that stays busy is wedged (the old build's
 * context-full bug, or a hang): only a restart helps. */
static turn_result turn_start(turn_state *t)
{
    const turn_plan *p = t->plan;
    t->t_gen = clock_mono(); /* the prompt's evaluation starts here: with a reset's prefill, if any */
    if (p->reset) {
        long tokens = p->staged && p->reset_ids ? (long)p->reset_ids->len : -1; /* the system block we staged */
        drv_status st = t->rt->reset(t->rt->rt, p->reset_system, tokens);
        if (st != DRV_OK) /* busy for a minute, or no answer at all: wedged or hung */
            return failed(t, st == DRV_BUSY || st == DRV_DOWN, "the runtime refused the reset (%s)", refusal_text(st));
    }
    drv_status st = t->rt->start(t->rt->rt, p->prompt, &p->sampling);
    if (st != DRV_OK)
        return failed(t, st == DRV_BUSY || st == DRV_DOWN, "the runtime refused the generation (%s)", refusal_text(st));
    t->running = true;
    return TURN_OK;
}

static bool should_stop(const turn_state *t)
{
    return t->ost != OUTPUT_MORE || job_is_cancelled(t->j) ||
           (t->plan->shutting_down && atomic_load(t->plan->shutting_down)) ||
           (t->plan->yield && t->plan->yield(t->plan->yield_user));
}

/* pump: the run's events until it ends. */
static turn_result turn_pump(turn_state *t)
{
    for (;;) {
        if (!t->stop_sent && should_stop(t)) {
            t->rt->request_stop(t->rt->rt);
            t->stop_sent = true;
        }
        run_event ev;
        run_event_kind kind = t->rt->next(t->rt->rt, &ev, deadline_in(PUMP_WAIT_S));
        if (kind == RUN_PIECE) {
            double now = clock_mono();
            if (t->t_first == 0)
                t->t_first = now;
            t->t_last = now;
            t->n_streamed += ev.ids.len;
            if (t->ost == OUTPUT_MORE)
                t->ost = output_push(t->filter, ev.ids.v, ev.ids.len);
            run_event_free(&ev);
        } else if (kind == RUN_END) {
            t->end = ev;
            if (ev.context_full) {
                t->out->result = TURN_CONTEXT_FULL;
                return TURN_CONTEXT_FULL;
            }
            return TURN_OK;
        } else if (kind == RUN_FAILED) {
            t->out->failure = ev.failure;
            turn_result r = failed(t, ev.failure == DRV_FAIL_HUNG || ev.failure == DRV_FAIL_STOP, "%s", ev.error);
            run_event_free(&ev);
            return r;
        }
    }
}

/* finish: counts, timings, the done reason and what the cache holds. */
static void turn_finish(turn_state *t)
{
    const turn_plan *p = t->plan;
    turn_outcome *o = t->out;
    output_finish(t->filter);
    if (t->sink.tc)
        toolcall_finish(t->sink.tc);
    size_t n_gen = t->end.ids.len;
    bool hit_end = t->start_pos + n_gen + 1 >= (size_t)p->max_positions;
    o->done_reason = t->ost == OUTPUT_LIMIT ? "length" : t->ost == OUTPUT_STOP ? "stop" : hit_end ? "length" : "stop";
    o->eos = !t->stop_sent && !hit_end;
    if (p->staged) { /* the runtime prefilled the reset's system block (if any) and the diff */
        o->metrics.prompt_eval_count = (int)((p->reset ? p->reset_ids->len : 0) + p->diff->len);
        o->metrics.prompt_tokens = (int)t->start_pos;
    } else { /* compatibility mode: what the upstream answered the runtime's /encode with */
        o->metrics.prompt_eval_count = o->metrics.prompt_tokens = (int)(t->end.prefilled > 0 ? t->end.prefilled : 0);
    }
    o->metrics.eval_count = (int)(t->ost == OUTPUT_MORE ? n_gen : output_ids_taken(t->filter));
    /* The first piece comes after the prefill and two decode steps (§2.6); the pieces after it
     * tell the time per token. A reply of one piece cannot tell it: then the time per token
     * measured on an earlier turn (plan.per_token_hint_s) is used, else the end of the run. */
    double t_end = clock_mono();
    double per_token =
        t->n_streamed > 3 && t->t_last > t->t_first ? (t->t_last - t->t_first) / (double)(t->n_streamed - 3) : 0;
    o->per_token_s = per_token;
    if (per_token == 0)
        per_token = p->per_token_hint_s;
    double first = t->t_first > 0 ? t->t_first : t_end;
    double prefill = first - t->t_gen - 2 * per_token;
    if (prefill < 0)
        prefill = 0;
    double last = t->t_last > 0 ? t->t_last : t_end;
    if (last <= first && per_token == 0)
        last = t_end; /* no measure at all: at least the time to the run's end */
    double eval = last - t->t_gen - prefill;
    o->metrics.prompt_eval_ns = (uint64_t)(prefill * 1e9);
    o->metrics.eval_ns = (uint64_t)((eval > 0 ? eval : 0) * 1e9);
    iv_append(&o->generated, t->end.ids.v, t->end.ids.len);
    o->content = sb_steal(&t->sink.content);
    o->calls = t->sink.calls;
    o->n_calls = t->sink.n_calls;
    t->sink.calls = NULL;
    t->sink.n_calls = 0;
    o->result = TURN_OK;
}

/* The one exit: whatever the turn took is given back. */
static void cleanup(turn_state *t)
{
    if (t->running)
        t->rt->end(t->rt->rt);
    if (t->out->result != TURN_OK && t->plan->staged && t->plan->uid && t->plan->uid[0])
        t->staging->clear_staged(t->staging->svc, t->plan->uid);
    run_event_free(&t->end);
    output_free(t->filter);
    toolcall_free(t->sink.tc);
    sb_free(&t->sink.content);
    for (size_t i = 0; i < t->sink.n_calls; i++) {
        free((char *)t->sink.calls[i].name);
        free((char *)t->sink.calls[i].arguments_json);
    }
    free(t->sink.calls);
}

turn_result turn_run(const turn_plan *plan, job *j, const tokenizer *tok, const turn_runtime *rt,
                     const turn_staging *staging, turn_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->result = TURN_FAILED;
    turn_state t = {.plan = plan, .j = j, .rt = rt, .staging = staging, .out = out, .ost = OUTPUT_MORE};
    t.sink.j = j;
    if (j->n_tools)
        t.sink.tc = toolcall_new(sink_text, sink_call, &t.sink);
    sb_puts(&t.sink.content, "");
    t.filter = output_new(tok, j->think == 1, (const char *const *)j->options.stop, j->options.n_stop,
                          j->options.has_num_predict ? j->options.num_predict : -1, sink_piece, &t.sink);
    if (turn_stage(&t) == TURN_OK && turn_start(&t) == TURN_OK && turn_pump(&t) == TURN_OK)
        turn_finish(&t);
    cleanup(&t);
    return out->result;
}

void turn_outcome_free(turn_outcome *out)
{
    iv_free(&out->generated);
    free(out->content);
    for (size_t i = 0; i < out->n_calls; i++) {
        free((char *)out->calls[i].name);
        free((char *)out->calls[i].arguments_json);
    }
    free(out->calls);
    memset(out, 0, sizeof *out);
}
