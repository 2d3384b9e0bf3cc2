/* compat: compatibility mode (manifest "tokenizer_upstream", docs/models.md): the vendor's tokenizer
 * script renders the prompt, so nothing is staged and the conversation is tracked at the message
 * level. A turn continues (the new user message is the prompt) when the request extends the held
 * conversation by one user message; otherwise it resets with the real system prompt and sends the
 * last user message. prompt_eval_count is the diff the proxy saw; an upstream failure fails the turn
 * and unloads the model (the next job starts both again). Worker thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

/* One compat turn: reset with system (or not), then generate with prompt. */
typedef struct {
    bool reset;
    const char *system;
    const char *prompt;
    size_t first; /* index of the first message after the system message */
} compat_turn;

void compat_clear(compat_session *c)
{
    free(c->system);
    for (size_t i = 0; i < c->n; i++) {
        free(c->roles[i]);
        free(c->contents[i]);
    }
    free(c->roles);
    free(c->contents);
    memset(c, 0, sizeof *c);
}

/* Whether the request's message i (after the system message) is the held message k. Assistant
 * replies compare as the session compares them (think blocks and surrounding space ignored). */
static bool compat_same_message(const chat_message *m, const compat_session *c, size_t k)
{
    const char *content = m->content ? m->content : "";
    if (strcmp(m->role, c->roles[k]) || m->n_tool_calls)
        return false;
    if (strcmp(m->role, "assistant"))
        return !strcmp(content, c->contents[k]);
    char *a = session_normalize_reply(content), *b = session_normalize_reply(c->contents[k]);
    bool same = !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

/* Plans a compat turn: continue when the request is the held conversation + one new user message,
 * else reset with the request's system prompt (or the manifest's) and send the last user message. */
static void compat_plan(const compat_session *c, const job *j, bool force_reset, compat_turn *ct)
{
    memset(ct, 0, sizeof *ct);
    const chat_message *msgs = j->messages;
    size_t n = j->kind == JOB_CHAT ? j->n_messages : 0;
    const char *system = j->manifest->system_prompt ? j->manifest->system_prompt : "";
    if (n && !strcmp(msgs[0].role, "system")) {
        system = msgs[0].content ? msgs[0].content : "";
        ct->first = 1;
    }
    ct->system = system;
    ct->prompt = job_last_user_text(j);
    bool cont = !force_reset && c->valid && j->kind == JOB_CHAT && n - ct->first == c->n + 1 &&
                !strcmp(msgs[n - 1].role, "user") && !strcmp(system, c->system ? c->system : "");
    for (size_t i = 0; cont && i < c->n; i++)
        cont = compat_same_message(&msgs[ct->first + i], c, i);
    ct->reset = !cont;
}

/* The conversation the runtime holds after a turn that ended with EOS. */
static void compat_commit(compat_session *c, const job *j, const compat_turn *ct, const char *reply, bool eos)
{
    compat_clear(c);
    if (!eos || j->kind != JOB_CHAT)
        return;
    c->valid = true;
    c->system = xstrdup(ct->system);
    size_t n = j->n_messages - ct->first + 1;
    c->roles = xcalloc(n, sizeof *c->roles);
    c->contents = xcalloc(n, sizeof *c->contents);
    for (size_t i = ct->first; i < j->n_messages; i++) {
        c->roles[c->n] = xstrdup(j->messages[i].role);
        c->contents[c->n++] = xstrdup(j->messages[i].content ? j->messages[i].content : "");
    }
    c->roles[c->n] = xstrdup("assistant");
    c->contents[c->n++] = xstrdup(reply ? reply : "");
}

void compat_run_job(engine *e, job *j, job_metrics *mt)
{
    turn_runtime rt = engine_turn_runtime(e);
    turn_staging staging = engine_turn_staging(e);
    turn_outcome o = {0};
    for (int attempt = 0; attempt < 2; attempt++) {
        compat_turn ct;
        compat_plan(&e->compat, j, attempt > 0 || e->plan_mode == PLAN_RESET, &ct);
        log_printf(&e->log, "compatibility mode: %s", ct.reset ? "reset, sending the last user message" : "continuing");
        turn_plan plan = {.reset = ct.reset,
                          .reset_system = ct.system, /* the real one: the upstream renders it */
                          .prompt = ct.prompt,
                          .max_positions = j->manifest->max_positions,
                          .sampling = engine_sampling(j),
                          .per_token_hint_s = e->per_token_s,
                          .shutting_down = &e->shutting_down};
        turn_outcome_free(&o);
        if (turn_run(&plan, j, e->tok, &rt, &staging, &o) == TURN_OK) {
            compat_commit(&e->compat, j, &ct, o.content, o.eos);
            if (o.per_token_s > 0)
                e->per_token_s = o.per_token_s;
        }
        if (o.result != TURN_CONTEXT_FULL)
            break;
        log_printf(&e->log, "the runtime reported a full context; resetting and retrying once");
        compat_clear(&e->compat);
        snprintf(o.error, sizeof o.error, "the context is full even after a reset");
        o.result = TURN_FAILED;
    }
    if (o.result != TURN_OK) {
        compat_clear(&e->compat);
        engine_after_failed_turn(e, &o);
    }
    engine_end_job(e, j, &o, mt);
    if (o.result != TURN_OK && o.failure == DRV_FAIL_UPSTREAM)
        engine_unload_now(e); /* the runtime's uid and history are in doubt: start both again */
    turn_outcome_free(&o);
}
