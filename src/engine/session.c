/* session: KV-cache bookkeeping and turn planning (continue or reset, fit). See session.h. */
#include "engine/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

enum { PREFILL_CHUNK = 128 };

/* A prompt is counted exactly up to this many times max_prefill tokens (what a truncation reports);
 * beyond that encoding stops (tokenizer_encode_limit): a prompt of megabytes costs the same as one of
 * a few windows, and its count is a lower bound. */
#define SESSION_COUNT_WINDOWS 4

static size_t count_limit(const session_model *m)
{
    return (size_t)m->max_prefill * SESSION_COUNT_WINDOWS;
}

void session_init(session *s)
{
    memset(s, 0, sizeof *s);
}

static void free_calls(chat_tool_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)calls[i].name);
        free((char *)calls[i].arguments_json);
    }
    free(calls);
}

static chat_tool_call *copy_calls(const chat_tool_call *calls, size_t n)
{
    if (!n)
        return NULL;
    chat_tool_call *c = xcalloc(n, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].name = xstrdup(calls[i].name ? calls[i].name : "");
        c[i].arguments_json = xstrdup(calls[i].arguments_json ? calls[i].arguments_json : "{}");
    }
    return c;
}

static void free_msgs(held_message *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].role);
        free(msgs[i].content);
        free_calls(msgs[i].tool_calls, msgs[i].n_tool_calls);
    }
    free(msgs);
}

void session_invalidate(session *s)
{
    iv_free(&s->kv_ids);
    free(s->system);
    free(s->tools);
    free_msgs(s->msgs, s->n_msgs);
    memset(s, 0, sizeof *s);
}

void session_free(session *s)
{
    session_invalidate(s);
}

void session_plan_free(session_plan *plan)
{
    iv_free(&plan->reset_ids);
    iv_free(&plan->diff);
    free(plan->system);
    free(plan->tools);
    free_msgs(plan->msgs, plan->n_msgs);
    memset(plan, 0, sizeof *plan);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

char *session_normalize_reply(const char *content)
{
    strbuf out = {0};
    const char *p = content ? content : "";
    for (;;) {
        const char *open = strstr(p, "<think>");
        const char *close = open ? strstr(open, "</think>") : NULL;
        if (!open || !close) {
            sb_puts(&out, p);
            break;
        }
        sb_append(&out, p, (size_t)(open - p));
        p = close + strlen("</think>");
    }
    char *s = sb_steal(&out);
    size_t start = 0, end = strlen(s);
    while (start < end && is_space(s[start]))
        start++;
    while (end > start && is_space(s[end - 1]))
        end--;
    memmove(s, s + start, end - start);
    s[end - start] = '\0';
    return s;
}

/* Two arguments texts: equal as JSON values (a client may re-serialise them), else as text. */
static bool same_arguments(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return true;
    json_t *x = json_loads(a, JSON_DECODE_ANY, NULL), *y = json_loads(b, JSON_DECODE_ANY, NULL);
    bool same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

static bool same_calls(const held_message *held, const chat_message *m)
{
    if (held->n_tool_calls != m->n_tool_calls)
        return false;
    for (size_t i = 0; i < held->n_tool_calls; i++) {
        const chat_tool_call *a = &held->tool_calls[i], *b = &m->tool_calls[i];
        if (strcmp(a->name, b->name ? b->name : "") ||
            !same_arguments(a->arguments_json, b->arguments_json ? b->arguments_json : "{}"))
            return false;
    }
    return true;
}

static bool same_message(const held_message *held, const chat_message *m)
{
    if (strcmp(held->role, m->role))
        return false;
    if (!strcmp(m->role, "assistant")) {
        char *a = session_normalize_reply(held->content), *b = session_normalize_reply(m->content);
        bool same = !strcmp(a, b) && same_calls(held, m);
        free(a);
        free(b);
        return same;
    }
    return !strcmp(held->content, m->content ? m->content : "");
}

static int budget_for(const session_model *m, int held)
{
    int b = (m->max_prefill - held) / PREFILL_CHUNK * PREFILL_CHUNK;
    return b < 0 ? 0 : b;
}

/* The runtime's SetKVCache rules (a cache of 0 tokens is not checked by the runtime: we check
 * it against max_prefill ourselves), plus room for at least one generated token. */
static bool turn_fits(const session_model *m, size_t held, size_t turn)
{
    if (held + turn > (size_t)m->max_prefill || held + turn + 1 >= (size_t)m->max_positions)
        return false;
    return held == 0 || turn <= (size_t)budget_for(m, (int)held);
}

/* The request's conversation with the system message first (the model's default if the request
 * has none and the model has one). Returns the array to render (borrowing strings). */
static chat_message *with_system(const session_model *m, const chat_message *msgs, size_t n, size_t *out_n)
{
    bool has_system = n > 0 && msgs[0].role && !strcmp(msgs[0].role, "system");
    bool add = !has_system && m->default_system && *m->default_system;
    chat_message *all = xcalloc(n + 1, sizeof *all);
    size_t k = 0;
    if (add)
        all[k++] = (chat_message){.role = "system", .content = m->default_system};
    for (size_t i = 0; i < n; i++)
        all[k++] = msgs[i];
    *out_n = k;
    return all;
}

/* The tool list as one string (NULL: none). */
static char *tools_key(const char *const *tools_json, size_t n_tools)
{
    if (!n_tools)
        return NULL;
    strbuf k = {0};
    for (size_t i = 0; i < n_tools; i++) {
        if (i)
            sb_putc(&k, '\n');
        sb_puts(&k, tools_json[i] ? tools_json[i] : "");
    }
    return sb_steal(&k);
}

static void copy_into_plan(session_plan *plan, const chat_message *all, size_t n)
{
    size_t start = 0;
    if (n > 0 && !strcmp(all[0].role, "system")) {
        plan->system = xstrdup(all[0].content ? all[0].content : "");
        start = 1;
    }
    plan->n_msgs = n - start;
    plan->msgs = xcalloc(plan->n_msgs + 1, sizeof *plan->msgs);
    for (size_t i = start; i < n; i++) {
        plan->msgs[i - start].role = xstrdup(all[i].role);
        plan->msgs[i - start].content = xstrdup(all[i].content ? all[i].content : "");
        plan->msgs[i - start].tool_calls = copy_calls(all[i].tool_calls, all[i].n_tool_calls);
        plan->msgs[i - start].n_tool_calls = all[i].tool_calls ? all[i].n_tool_calls : 0;
    }
}

/* The request's tool definitions while one plan is made. */
typedef struct {
    const char *const *json;
    size_t n;
} tool_list;

static bool render(const session_model *m, const tool_list *tools, const chat_message *msgs, size_t n, int think,
                   size_t first, bool gen, strbuf *out)
{
    chat_template_options opt = {.add_generation_prompt = gen,
                                 .enable_thinking = think,
                                 .first_message = first,
                                 .tools_json = tools->json,
                                 .n_tools = tools->n};
    return chat_template_render(m->family, msgs, n, &opt, out);
}

typedef enum {
    CONTINUE_OK,        /* plan->diff holds the new turn */
    CONTINUE_DIFFERENT, /* another conversation (or none held) */
    CONTINUE_NO_ROOM,   /* the held conversation, but the new turn does not fit after it */
} continue_result;

/* Continue if the request extends the held conversation; fills plan->diff. */
static continue_result try_continue(const session *s, const session_model *m, const tool_list *tools,
                                    const chat_message *all, size_t n, int think, session_plan *plan)
{
    if (!s->valid || !s->continuable || s->n_msgs == 0)
        return CONTINUE_DIFFERENT;
    if ((s->tools == NULL) != (plan->tools == NULL) || (s->tools && strcmp(s->tools, plan->tools)))
        return CONTINUE_DIFFERENT; /* another tool list: another system block */
    bool has_system = n > 0 && !strcmp(all[0].role, "system");
    const char *system = has_system ? (all[0].content ? all[0].content : "") : NULL;
    if ((system == NULL) != (s->system == NULL) || (system && strcmp(system, s->system)))
        return CONTINUE_DIFFERENT;
    size_t start = (has_system ? 1 : 0) + s->skipped; /* the held conversation's first message */
    size_t first_new = start + s->n_msgs;
    if (n <= first_new)
        return CONTINUE_DIFFERENT;
    for (size_t i = 0; i < s->n_msgs; i++)
        if (!same_message(&s->msgs[i], &all[start + i]))
            return CONTINUE_DIFFERENT;
    if (!strcmp(all[first_new].role, "assistant") || !strcmp(all[n - 1].role, "assistant"))
        return CONTINUE_DIFFERENT;
    strbuf text = {0};
    sb_puts(&text, "<|im_end|>\n");
    bool ok = render(m, tools, all, n, think, first_new, true, &text);
    if (ok) /* a turn of more than max_prefill ids cannot fit: no need to count the rest */
        tokenizer_encode_limit(m->tok, text.data, text.len, (size_t)m->max_prefill, &plan->diff);
    sb_free(&text);
    if (!ok || !turn_fits(m, s->kv_ids.len, plan->diff.len)) {
        iv_clear(&plan->diff);
        return ok ? CONTINUE_NO_ROOM : CONTINUE_DIFFERENT;
    }
    plan->reset = false;
    return CONTINUE_OK;
}

/* The largest turn (in tokens) that fits after a system block of sys tokens (0: none fits). */
static size_t max_turn(const session_model *m, size_t sys)
{
    size_t best = 0;
    size_t hi = (size_t)m->max_prefill > sys ? (size_t)m->max_prefill - sys : 0;
    for (size_t lo = 0; lo <= hi;) { /* turn_fits is monotonic in the turn's length */
        size_t mid = lo + (hi - lo) / 2;
        if (turn_fits(m, sys, mid)) {
            best = mid;
            lo = mid + 1;
        } else if (mid == 0) {
            break;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

/* Cuts the middle of ids (a turn too long for the window) to at most max tokens: keeps its first
 * SESSION_TRUNCATE_KEEP_START tokens and its end. Returns the number cut; 0 if it cannot. */
static size_t truncate_middle(idvec *ids, size_t max)
{
    size_t keep_start = SESSION_TRUNCATE_KEEP_START;
    if (ids->len <= max)
        return 0;
    if (max < 2 * keep_start)
        return 0; /* no room for a meaningful start and end */
    size_t cut = ids->len - max;
    memmove(ids->v + keep_start, ids->v + keep_start + cut, (ids->len - keep_start - cut) * sizeof *ids->v);
    ids->len -= cut;
    return cut;
}

/* The truncation of a turn too long to have been counted (tokenizer_encode_limit stopped after
 * count_limit() + 1 ids): plan->diff holds the turn's first ids; keeps SESSION_TRUNCATE_KEEP_START of
 * them and the last max - SESSION_TRUNCATE_KEEP_START ids of the whole text (text, n: the system block
 * then the turn), encoded from its end alone. truncated is then a lower bound. False if max leaves no
 * room for a start and an end. */
static bool truncate_uncounted(const session_model *m, const char *text, size_t n, size_t max, session_plan *plan)
{
    size_t keep_start = SESSION_TRUNCATE_KEEP_START;
    if (max < 2 * keep_start || plan->diff.len < keep_start)
        return false;
    size_t seen = plan->diff.len; /* the turn has more ids than this */
    plan->diff.len = keep_start;
    tokenizer_encode_tail(m->tok, text, n, max - keep_start, &plan->diff);
    plan->truncated = seen > max ? seen - max : 1;
    plan->truncated_at_least = true;
    return true;
}

/* One reset plan being fitted: the conversation (msgs[0..count), the system message first when
 * start is 1), where each turn begins (cuts), and the rendering of the view that keeps all but
 * the oldest `drop` turns. */
typedef struct {
    const session_model *m;
    const tool_list *tools;
    const chat_message *msgs;
    size_t count, start;
    int think;
    size_t *cuts, n_cuts;
    chat_message *view;
    size_t view_count;
    strbuf text;
    idvec full; /* the rendering of the view: the system block, then the turn to prefill */
    /* full holds every id; else only the first count_limit() + 1 (the view cannot fit) */
    bool complete;
    size_t measured; /* the drop that full holds; SIZE_MAX: none */
} fitting;

/* Renders the view without the oldest drop turns into f->full; false if it cannot be rendered. */
static bool measure(fitting *f, size_t drop)
{
    if (f->measured == drop)
        return true;
    size_t from = drop ? f->cuts[drop - 1] : f->start;
    memcpy(f->view, f->msgs, f->start * sizeof *f->view);
    memcpy(f->view + f->start, f->msgs + from, (f->count - from) * sizeof *f->view);
    f->view_count = f->start + (f->count - from);
    sb_clear(&f->text);
    iv_clear(&f->full);
    f->measured = SIZE_MAX;
    if (!render(f->m, f->tools, f->view, f->view_count, f->think, 0, true, &f->text))
        return false;
    /* a view of more than max_prefill ids cannot fit: encoding stops a little past that (a huge prompt
     * costs the budget, not its length) */
    f->complete = tokenizer_encode_limit(f->m->tok, f->text.data, f->text.len, count_limit(f->m), &f->full);
    f->measured = drop;
    return true;
}

/* The fewest oldest turns to drop (the system message stays). Fewer turns never take more tokens,
 * so it is found by bisection: O(log turns) renders, not one per dropped turn (a 20,000-message
 * history would otherwise keep the worker busy for minutes). Headroom (retain_ratio) applies when
 * turns must go anyway or the held conversation ran out of room. Returns 1 with *drop and f->full
 * set to that view, 0 when even the last turn alone does not fit (f->full: that turn), -1 when the
 * conversation cannot be rendered. */
static int choose_drop(fitting *f, size_t sys, bool overflow, size_t *drop)
{
    const session_model *m = f->m;
    double ratio = m->retain_ratio > 0 ? m->retain_ratio : SESSION_DEFAULT_RETAIN;
    size_t limit = ratio >= 1 ? SIZE_MAX : (size_t)(ratio * m->max_prefill);
    if (!measure(f, 0))
        return -1;
    bool plain = turn_fits(m, sys, f->full.len - sys);
    bool headroom = overflow || !plain;
    *drop = 0;
    if (plain && (!headroom || f->full.len <= limit))
        return 1;
    if (f->n_cuts == 0)
        return plain;
    if (!measure(f, f->n_cuts))
        return -1;
    *drop = f->n_cuts;
    if (!turn_fits(m, sys, f->full.len - sys))
        return 0;
    if (f->full.len > limit)
        return 1;                  /* the last turn alone takes more than the headroom allows: keep just it */
    size_t lo = 0, hi = f->n_cuts; /* lo does not fit (with headroom), hi does */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (!measure(f, mid))
            return -1;
        if (turn_fits(m, sys, f->full.len - sys) && f->full.len <= limit)
            hi = mid;
        else
            lo = mid;
    }
    *drop = hi;
    return measure(f, hi) ? 1 : -1;
}

/* A reset plan: the system block to stage for /api/reset, and the rest of the (fitted) conversation
 * to prefill. overflow: the held conversation had no room for this turn (keep headroom). */
static bool plan_reset(const session_model *m, const tool_list *tools, chat_message *all, size_t n, int think,
                       bool last_turn_only, bool overflow, session_plan *plan, char *err, size_t errlen)
{
    bool has_system = n > 0 && !strcmp(all[0].role, "system");
    fitting f = {.m = m,
                 .tools = tools,
                 .msgs = all,
                 .count = n,
                 .start = has_system ? 1 : 0,
                 .think = think,
                 .measured = SIZE_MAX};
    if (has_system) {
        if (!render(m, tools, all, 1, think, 0, false, &f.text)) {
            snprintf(err, errlen, "the conversation cannot be rendered (unknown role?)");
            sb_free(&f.text);
            return false;
        }
        if (!tokenizer_encode_limit(m->tok, f.text.data, f.text.len, (size_t)m->max_prefill, &plan->reset_ids)) {
            snprintf(err, errlen,
                     "the system prompt is too long: more than %d tokens (this model's context takes at "
                     "most %d)",
                     m->max_prefill, m->max_prefill);
            sb_free(&f.text);
            return false;
        }
    }
    size_t sys = plan->reset_ids.len;
    if (sys >= (size_t)m->max_prefill) {
        snprintf(err, errlen, "the system prompt is too long: %zu tokens (this model's context takes at most %d)", sys,
                 m->max_prefill);
        sb_free(&f.text);
        return false;
    }
    chat_message *trimmed = NULL;
    if (last_turn_only) { /* keep the system message and the last turn only */
        size_t last_user = 0;
        for (size_t i = f.start + 1; i < n; i++)
            if (!strcmp(all[i].role, "user"))
                last_user = i;
        if (last_user > f.start) {
            trimmed = xcalloc(n, sizeof *trimmed);
            memcpy(trimmed, all, f.start * sizeof *trimmed);
            memcpy(trimmed + f.start, all + last_user, (n - last_user) * sizeof *trimmed);
            plan->dropped = last_user - f.start;
            f.msgs = trimmed;
            f.count = n - plan->dropped;
        }
    }
    f.cuts = xcalloc(f.count + 1, sizeof *f.cuts);
    for (size_t i = f.start + 1; i < f.count; i++)
        if (!strcmp(f.msgs[i].role, "user"))
            f.cuts[f.n_cuts++] = i;
    f.view = xcalloc(f.count + 1, sizeof *f.view);
    size_t drop = 0;
    int verdict = choose_drop(&f, sys, overflow, &drop);
    if (verdict >= 0 && (f.full.len < sys || (sys && memcmp(f.full.v, plan->reset_ids.v, sys * sizeof *f.full.v)))) {
        snprintf(err, errlen, "internal error: the system block does not prefix the conversation");
        verdict = -1;
    } else if (verdict < 0) {
        snprintf(err, errlen, "the conversation cannot be rendered (unknown role?)");
    }
    if (verdict >= 0)
        iv_append(&plan->diff, f.full.v + sys, f.full.len - sys);
    if (verdict == 0 && m->truncate && !f.complete) {
        verdict = truncate_uncounted(m, f.text.data, f.text.len, max_turn(m, sys), plan) ? 1 : 0;
    } else if (verdict == 0 && m->truncate) {
        size_t turn = plan->diff.len;
        plan->truncated = truncate_middle(&plan->diff, max_turn(m, sys));
        verdict = plan->truncated ? 1 : 0;
        if (!verdict)
            plan->diff.len = turn;
    }
    bool ok = verdict == 1;
    if (ok) {
        plan->reset = true;
        plan->dropped += drop ? f.cuts[drop - 1] - f.start : 0;
        plan->skipped = plan->dropped;
        copy_into_plan(plan, f.view, f.view_count);
    } else if (verdict == 0) {
        snprintf(err, errlen,
                 "the prompt is too long: %s%zu tokens with the system prompt (this model takes at most %d per turn "
                 "after a %zu-token system prompt)",
                 f.complete ? "" : "more than ", f.complete ? f.full.len : f.full.len - 1,
                 sys ? budget_for(m, (int)sys) : m->max_prefill, sys);
    }
    free(f.cuts);
    free(f.view);
    free(trimmed);
    sb_free(&f.text);
    iv_free(&f.full);
    return ok;
}

bool session_plan_chat(const session *s, const session_model *m, const chat_message *msgs, size_t n, int think,
                       plan_mode mode, session_plan *plan, char *err, size_t errlen)
{
    return session_plan_chat_tools(s, m, msgs, n, NULL, 0, think, mode, plan, err, errlen);
}

bool session_plan_chat_tools(const session *s, const session_model *m, const chat_message *msgs, size_t n,
                             const char *const *tools_json, size_t n_tools, int think, plan_mode mode,
                             session_plan *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    tool_list tools = {tools_json, tools_json ? n_tools : 0};
    plan->tools = tools_key(tools.json, tools.n);
    size_t count;
    chat_message *all = with_system(m, msgs, n, &count);
    bool ok = count > 0;
    if (!ok)
        snprintf(err, errlen, "no messages");
    continue_result cont =
        ok && mode == PLAN_ANY ? try_continue(s, m, &tools, all, count, think, plan) : CONTINUE_DIFFERENT;
    if (cont == CONTINUE_OK) { /* the held conversation (after what its reset dropped) and the new turn */
        size_t start = count > 0 && !strcmp(all[0].role, "system") ? 1 : 0;
        chat_message *view = xcalloc(count + 1, sizeof *view);
        memcpy(view, all, start * sizeof *view);
        memcpy(view + start, all + start + s->skipped, (count - start - s->skipped) * sizeof *view);
        copy_into_plan(plan, view, count - s->skipped);
        plan->skipped = s->skipped;
        free(view);
    } else if (ok)
        ok = plan_reset(m, &tools, all, count, think, mode == PLAN_RESET_LAST_TURN, cont == CONTINUE_NO_ROOM, plan, err,
                        errlen);
    free(all);
    if (!ok)
        session_plan_free(plan);
    return ok;
}

bool session_plan_raw(const session_model *m, const char *prompt, session_plan *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    size_t n = strlen(prompt);
    bool complete = tokenizer_encode_limit(m->tok, prompt, n, count_limit(m), &plan->diff);
    if (!complete && m->truncate)
        truncate_uncounted(m, prompt, n, max_turn(m, 0), plan);
    else if (!turn_fits(m, 0, plan->diff.len) && m->truncate)
        plan->truncated = truncate_middle(&plan->diff, max_turn(m, 0));
    if (!turn_fits(m, 0, plan->diff.len)) {
        if (complete)
            snprintf(err, errlen, "the prompt is too long: %zu tokens (this model takes at most %d)", plan->diff.len,
                     m->max_prefill);
        else
            snprintf(err, errlen, "the prompt is too long: more than %zu tokens (this model takes at most %d)",
                     count_limit(m), m->max_prefill);
        session_plan_free(plan);
        return false;
    }
    plan->reset = true;
    return true;
}

void session_commit(session *s, session_plan *plan, const int32_t *generated, size_t n_generated, const char *reply,
                    bool continuable)
{
    session_commit_calls(s, plan, generated, n_generated, reply, NULL, 0, continuable);
}

void session_commit_calls(session *s, session_plan *plan, const int32_t *generated, size_t n_generated,
                          const char *reply, const chat_tool_call *calls, size_t n_calls, bool continuable)
{
    if (plan->reset) {
        iv_free(&s->kv_ids);
        iv_append(&s->kv_ids, plan->reset_ids.v, plan->reset_ids.len);
        s->system_len = plan->reset_ids.len;
    }
    s->last_generated = n_generated;
    iv_append(&s->kv_ids, plan->diff.v, plan->diff.len);
    iv_append(&s->kv_ids, generated, n_generated);
    free(s->system);
    free(s->tools);
    free_msgs(s->msgs, s->n_msgs);
    s->system = plan->system;
    s->tools = plan->tools;
    s->msgs = plan->msgs;
    s->n_msgs = plan->n_msgs;
    s->skipped = plan->skipped;
    plan->system = NULL;
    plan->tools = NULL;
    plan->msgs = NULL;
    plan->n_msgs = 0;
    if (s->msgs) { /* the reply joins the held conversation */
        s->msgs = xrealloc(s->msgs, (s->n_msgs + 1) * sizeof *s->msgs);
        s->msgs[s->n_msgs].role = xstrdup("assistant");
        s->msgs[s->n_msgs].content = xstrdup(reply ? reply : "");
        s->msgs[s->n_msgs].tool_calls = calls ? copy_calls(calls, n_calls) : NULL;
        s->msgs[s->n_msgs].n_tool_calls = calls ? n_calls : 0;
        s->n_msgs++;
    }
    s->valid = true;
    s->continuable = continuable && s->n_msgs > 0;
}

size_t session_user_turns(const session *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_msgs; i++)
        n += !strcmp(s->msgs[i].role, "user");
    return n;
}

bool session_restore_ids(const session *s, const session_model *m, idvec *reset_ids, idvec *full, size_t *n_diff,
                         int32_t *last_id)
{
    if (!s->valid || !s->continuable || s->last_generated == 0 || s->kv_ids.len <= s->system_len + 1)
        return false;
    size_t prefill = s->kv_ids.len - 1 - s->system_len;
    if (!turn_fits(m, s->system_len, prefill))
        return false;
    iv_clear(reset_ids);
    iv_append(reset_ids, s->kv_ids.v, s->system_len);
    iv_clear(full);
    iv_append(full, s->kv_ids.v, s->kv_ids.len - 1);
    *n_diff = prefill;
    *last_id = s->kv_ids.v[s->kv_ids.len - 1];
    return true;
}

bool session_plan_rewinds(const session *s, const session_plan *plan)
{
    if (!s->valid || plan->n_msgs > s->n_msgs || plan->skipped != s->skipped)
        return false;
    if ((plan->system == NULL) != (s->system == NULL) || (plan->system && strcmp(plan->system, s->system)))
        return false;
    for (size_t i = 0; i < plan->n_msgs; i++) {
        const held_message *h = &plan->msgs[i];
        chat_message m = {
            .role = h->role, .content = h->content, .tool_calls = h->tool_calls, .n_tool_calls = h->n_tool_calls};
        if (!same_message(&s->msgs[i], &m))
            return false;
    }
    return true;
}
