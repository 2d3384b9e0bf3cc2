/* emu_runtime: the vendor runtime's worker, KV bookkeeping, generation loop and faults, with a
 * deterministic stand-in for the model. See emu_runtime.h.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#include "emu/emu_runtime.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "emu/emu_log.h"

/* Qwen3 token ids the stand-in model needs (the emulator emulates a Qwen3 model package). */
enum {
    QWEN_IM_START = 151644,
    QWEN_IM_END = 151645,
    QWEN_USER = 872,
    QWEN_ASSISTANT = 77091,
    QWEN_NEWLINE = 198,
    QWEN_DOUBLE_NEWLINE = 271,
    QWEN_THINK = 151667,
    QWEN_THINK_END = 151668,
};

enum { PREFILL_CHUNK = 128 };

typedef enum { TASK_RESET, TASK_GENERATE } task_kind;

typedef struct task {
    task_kind kind;
    char *text; /* system prompt or prompt */
    struct task *next;
} task;

struct emu_runtime {
    const emu_options *opt;
    const emu_profile *profile;
    emu_tokclient *tok;
    int eos_id;

    /* worker queue */
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond;
    task *head, *tail;
    bool finishing;

    atomic_bool busy; /* gllm_runing */
    atomic_bool stop; /* LLM::b_stop */
    atomic_bool hung;

    /* text queue (g_msg_queue): never cleared */
    pthread_mutex_t text_lock;
    strbuf text;

    /* model state, touched by the running task (normally one at a time; a chat racing the worker
     * is the vendor's own hazard, kept data-race free here by this lock) */
    pthread_mutex_t state_lock;
    char *last_reply;
    int precompute_len;
    int group;          /* prefill group chosen by SetKVCache; -1 initially */
    int prefill_budget; /* _attr.prefill_max_token_num: each SetKVCache shrinks it, only a reset
                           or a finished run restores it (so failed turns compound) */
    int *group_capacity;
    int n_groups;
    int generation; /* RunSync calls so far */
    idvec stale_ids, stale_diff;
    emu_sampler sampler;
    idvec think_ids; /* --emu-think-text as ids; empty: the empty think block */
    atomic_ulong calls[EMU_CALLS];
};

/* ---- helpers ---- */

static double scaled(const emu_runtime *rt, double seconds)
{
    return seconds * rt->opt->time_scale;
}

static void push_text(emu_runtime *rt, const char *s, size_t n)
{
    pthread_mutex_lock(&rt->text_lock);
    sb_append(&rt->text, s, n);
    pthread_mutex_unlock(&rt->text_lock);
}

static void hang_forever(emu_runtime *rt)
{
    atomic_store(&rt->hung, true);
    fflush(stdout);
    for (;;)
        pause();
}

static void check_faults(emu_runtime *rt, int generation, int token)
{
    const emu_fault_point *crash = &rt->opt->crash_at, *hang = &rt->opt->hang_at;
    if (crash->token && crash->token == token && crash->generation == generation) {
        fprintf(stderr, "axllama-emu: fault: crash at token %d of generation %d\n", token, generation);
        fflush(stdout);
        abort();
    }
    if (hang->token && hang->token == token && hang->generation == generation) {
        fprintf(stderr, "axllama-emu: fault: hang at token %d of generation %d\n", token, generation);
        hang_forever(rt);
    }
}

/* The vendor aborts when the tokenizer answers 200 with an error (an uncaught exception in the
 * worker thread). */
static void die_on_bad_answer(const char *what)
{
    fprintf(stderr,
            "terminate called after throwing an instance of 'nlohmann::json_abi_v3_11_2::detail::type_error'\n"
            "  what():  [json.exception.type_error.302] type must be array, but is null (tokenizer %s)\n",
            what);
    fflush(stdout);
    abort();
}

/* ---- geometry (§2.8) ---- */

static void build_groups(emu_runtime *rt)
{
    int max = rt->opt->prefill_max;
    rt->group_capacity = xmalloc(sizeof(int) * (size_t)(max / 256 + 4));
    rt->n_groups = 0;
    rt->group_capacity[rt->n_groups++] = 1;
    rt->group_capacity[rt->n_groups++] = 256;
    for (int cap = 512; cap < max; cap += 512)
        rt->group_capacity[rt->n_groups++] = cap;
    if (rt->group_capacity[rt->n_groups - 1] != max)
        rt->group_capacity[rt->n_groups++] = max;
}

/* ALIGN_DOWN(x, a) of the vendor (x & ~(a - 1)): rounds towards minus infinity, also below 0. */
static int align_down(int x, int a)
{
    return x >= 0 ? x / a * a : -((-x + a - 1) / a * a);
}

/* SetKVCache(precompute_len, n): 0 or -1, with the vendor's log lines. The budget is computed
 * from the previous budget, not from the maximum (G-LLM), so after a failed turn the next one gets
 * less room until a reset or a finished run. Caller holds state_lock. */
static int set_kv_cache(emu_runtime *rt, int n)
{
    int pre = rt->precompute_len;
    for (int g = 0; g < rt->n_groups; g++) {
        if (pre + n <= rt->group_capacity[g]) {
            rt->group = g;
            break;
        }
    }
    /* the vendor prints 1-based prefill_grpid (-1 before any fits; its kv_cache_num is then an
     * out-of-bounds read, shown as 0 here) and, on error, the 0-based group index */
    int grpid = rt->group < 0 ? -1 : rt->group + 1;
    int kv_cache_num = rt->group < 0 ? 0 : rt->group_capacity[rt->group];
    EMU_LOGI("SetKVCache", 449, "prefill_grpid:%d kv_cache_num:%d precompute_len:%d input_num_token:%d", grpid,
             kv_cache_num, pre, n);
    if (rt->prefill_budget < INT_MIN / 2) /* endless failures without a reset: stay defined */
        rt->prefill_budget = INT_MIN / 2;
    rt->prefill_budget = align_down(rt->prefill_budget - pre, PREFILL_CHUNK);
    EMU_LOGI("SetKVCache", 452, "current prefill_max_token_num:%d", rt->prefill_budget);
    if (pre == 0) {
        EMU_LOGI("SetKVCache", 456, "first run");
        return 0;
    }
    if (rt->group < 0 || pre + n > kv_cache_num) {
        EMU_LOGE("SetKVCache", 461, "precompute_len(%d) + input_num_token(%d) > _attr.prefill_max_kv_cache_num_grp[%d]",
                 pre, n, grpid - 1);
        return -1;
    }
    if (n > rt->prefill_budget) {
        EMU_LOGE("SetKVCache", 467, "input_num_token(%d) > _attr.prefill_max_token_num(%d)", n, rt->prefill_budget);
        return -1;
    }
    return 0;
}

/* ---- the stand-in model ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static bool sampler_is_greedy(const emu_sampler *s)
{
    /* top-k wins over top-p; neither enabled = argmax */
    if (s->top_k_on)
        return s->top_k == 1;
    return !s->top_p_on;
}

/* Where the last "<|im_start|>" ROLE "\n" header of ids ends (the index after it), or 0 if none. */
static size_t after_last_header(const idvec *ids, int32_t role)
{
    for (size_t end = ids->len; end >= 3; end--) {
        const int32_t *h = ids->v + end - 3;
        if (h[0] == QWEN_IM_START && h[1] == role && h[2] == QWEN_NEWLINE)
            return end;
    }
    return 0;
}

/* The length of the complete think block (<think> ... </think> "\n\n") ids start with, 0 if none. */
static size_t think_block_len(const int32_t *ids, size_t n)
{
    if (n == 0 || ids[0] != QWEN_THINK)
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (ids[i] == QWEN_THINK_END)
            return ids[i + 1] == QWEN_DOUBLE_NEWLINE ? i + 2 : 0;
    return 0;
}

/* The answer after the think block: the echo of the last user message's content (or of the diff
 * for a prompt without a template), cycled to reply_tokens if set, rotated by the generation with
 * --emu-unstable, shuffled (seeded) unless greedy. */
static void plan_answer(emu_runtime *rt, const idvec *ids, const idvec *diff, const emu_sampler *s, int generation,
                        idvec *out)
{
    const int32_t *from = diff->v;
    size_t n = diff->len;
    size_t user = after_last_header(ids, QWEN_USER);
    if (user) {
        from = ids->v + user;
        n = 0;
        while (user + n < ids->len && from[n] != QWEN_IM_END)
            n++;
    }
    idvec echo = {0};
    for (size_t i = 0; i < n; i++)
        if (from[i] != rt->eos_id)
            iv_push(&echo, from[i]);
    size_t body = rt->opt->reply_tokens > 0 ? (size_t)rt->opt->reply_tokens : echo.len;
    size_t shift = rt->opt->unstable && echo.len ? (size_t)generation % echo.len : 0;
    size_t start = out->len;
    for (size_t i = 0; echo.len && i < body; i++)
        iv_push(out, echo.v[(i + shift) % echo.len]);
    if (!sampler_is_greedy(s)) {
        uint64_t state = rt->opt->seed ^ ((uint64_t)generation << 32);
        for (size_t i = out->len - start; i > 1; i--) {
            size_t j = (size_t)(splitmix(&state) % i);
            int32_t t = out->v[start + i - 1];
            out->v[start + i - 1] = out->v[start + j];
            out->v[start + j] = t;
        }
    }
    iv_free(&echo);
}

/* The reply's token ids, EOS excluded, as a model that continues its context would give them. The
 * whole reply is a think block (empty, or holding --emu-think-text) and then the answer
 * (plan_answer). The context (ids: the whole conversation the /encode answered) may already hold
 * the start of the reply after its last "<|im_start|>assistant\n": a prompt with thinking off ends
 * with Qwen3's empty think block (the model then answers at once, it does not think again), and
 * axllama's restore prefills a reply up to its last token. The model generates the rest of the
 * reply from there; a context that does not follow the reply gets the answer alone. */
static void plan_reply(emu_runtime *rt, const idvec *ids, const idvec *diff, const emu_sampler *s, int generation,
                       idvec *plan)
{
    size_t user = after_last_header(ids, QWEN_USER), assistant = after_last_header(ids, QWEN_ASSISTANT);
    const int32_t *given = assistant > user ? ids->v + assistant : NULL;
    size_t n_given = given ? ids->len - assistant : 0;

    idvec whole = {0};
    size_t closed = think_block_len(given, n_given);
    if (closed) { /* the prompt closed the think block itself */
        iv_append(&whole, given, closed);
    } else if (rt->think_ids.len) { /* "<think>\n" TEXT "\n</think>\n\n" */
        iv_push(&whole, QWEN_THINK);
        iv_push(&whole, QWEN_NEWLINE);
        iv_append(&whole, rt->think_ids.v, rt->think_ids.len);
        iv_push(&whole, QWEN_NEWLINE);
        iv_push(&whole, QWEN_THINK_END);
        iv_push(&whole, QWEN_DOUBLE_NEWLINE);
    } else {
        static const int32_t think[] = {QWEN_THINK, QWEN_DOUBLE_NEWLINE, QWEN_THINK_END, QWEN_DOUBLE_NEWLINE};
        iv_append(&whole, think, 4);
    }
    size_t answer_at = whole.len;
    plan_answer(rt, ids, diff, s, generation, &whole);
    if (n_given <= whole.len && (n_given == 0 || !memcmp(given, whole.v, n_given * sizeof *given)))
        iv_append(plan, whole.v + n_given, whole.len - n_given);
    else
        iv_append(plan, whole.v + answer_at, whole.len - answer_at);
    iv_free(&whole);
}

/* One /decode with the vendor's error handling: log, sleep 1 s, retry once, then "". */
static void decode_piece(emu_runtime *rt, const int32_t *ids, size_t n, strbuf *out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t mark = out->len;
        if (emu_tokclient_decode(rt->tok, ids, n, out) == TOKC_OK)
            return;
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
        EMU_LOGE("Decode", 93, "decode failed%s", attempt ? ", giving up" : ", retry in 1s");
        if (!attempt)
            emu_sleep(scaled(rt, 1.0), NULL);
    }
}

static void stream_piece(emu_runtime *rt, const int32_t *ids, size_t n)
{
    strbuf piece = {0};
    decode_piece(rt, ids, n, &piece);
    fprintf(stdout, "%s", piece.data ? piece.data : "");
    fflush(stdout);
    push_text(rt, piece.data ? piece.data : "", piece.len);
    sb_free(&piece);
}

/* LLM::Run: prefill, token loop, final decode. Returns the reply (the final decode of all
 * generated ids); *generated = their number. */
static char *run_model(emu_runtime *rt, const idvec *ids, const idvec *diff, bool streaming, int generation,
                       int start_pos, const emu_sampler *s, int *generated)
{
    atomic_store(&rt->stop, false);
    int n = (int)diff->len;
    int chunks = (n + PREFILL_CHUNK - 1) / PREFILL_CHUNK;
    EMU_LOGI("Run", 347, "input token num : %d, prefill_split_num : %d", n, chunks);
    double t0 = clock_mono();
    bool stopped = emu_sleep(scaled(rt, chunks * rt->profile->prefill_chunk_s), &rt->stop);
    EMU_LOGI("Run", 382, "input_num_token:%d", n);
    EMU_LOGN("Run", 450, "ttft: %.2f ms", (clock_mono() - t0) * 1000.0);

    idvec plan = {0}, out = {0}, pending = {0};
    plan_reply(rt, ids, diff, s, generation, &plan);
    size_t next = 0;
    double per_token = scaled(rt, 1.0 / rt->profile->decode_tok_s);

    /* the first token comes out of the prefill and is never checked for EOS */
    int32_t first = next < plan.len ? plan.v[next++] : rt->eos_id;
    check_faults(rt, generation, 1);
    iv_push(&out, first);
    iv_push(&pending, first);
    double t_decode = clock_mono();
    while (!stopped) {
        if (atomic_load(&rt->stop))
            break;
        /* the vendor's loop feeds the previous token at position start_pos + out.len - 1 while
         * that is < max_token_len: the last sampled token is never fed. Context end: silent,
         * leftovers not streamed. */
        if (start_pos + (int)out.len > rt->opt->max_token_len)
            break;
        if (emu_sleep(per_token, &rt->stop))
            break;
        int32_t tok = next < plan.len ? plan.v[next++] : rt->eos_id;
        if (tok == rt->eos_id) {
            if (streaming && pending.len)
                stream_piece(rt, pending.v, pending.len);
            pending.len = 0;
            break;
        }
        check_faults(rt, generation, (int)out.len + 1);
        iv_push(&out, tok);
        iv_push(&pending, tok);
        if (pending.len == 3) {
            if (streaming)
                stream_piece(rt, pending.v, pending.len);
            pending.len = 0;
        }
    }
    double secs = clock_mono() - t_decode;
    if (streaming) {
        fprintf(stdout, "\n\n");
        fflush(stdout);
    }
    EMU_LOGN("Run", 611, "hit eos,avg %.2f token/s", secs > 0 ? (double)out.len / secs : 0.0);

    strbuf reply = {0};
    decode_piece(rt, out.v, out.len, &reply);
    *generated = (int)out.len;
    iv_free(&plan);
    iv_free(&out);
    iv_free(&pending);
    return sb_steal(&reply);
}

/* Worker::RunSync. */
static char *run_sync(emu_runtime *rt, const char *prompt, bool streaming)
{
    if (atomic_load(&rt->busy))
        return xstrdup("");
    atomic_store(&rt->busy, true);

    pthread_mutex_lock(&rt->state_lock);
    int generation = ++rt->generation;
    char *last_reply = xstrdup(rt->last_reply ? rt->last_reply : "");
    emu_sampler s = rt->sampler;
    pthread_mutex_unlock(&rt->state_lock);

    idvec ids = {0}, diff = {0};
    tokc_status st = emu_tokclient_encode(rt->tok, prompt, last_reply, &ids, &diff);
    free(last_reply);
    if (st == TOKC_BAD_ANSWER)
        die_on_bad_answer("/encode");
    pthread_mutex_lock(&rt->state_lock);
    if (st == TOKC_OK) {
        iv_clear(&rt->stale_ids);
        iv_append(&rt->stale_ids, ids.v, ids.len);
        iv_clear(&rt->stale_diff);
        iv_append(&rt->stale_diff, diff.v, diff.len);
    } else { /* the vendor does not check: it prefills what the last encode left behind */
        EMU_LOGE("Encode", 120, "encode failed");
        iv_clear(&ids);
        iv_append(&ids, rt->stale_ids.v, rt->stale_ids.len);
        iv_clear(&diff);
        iv_append(&diff, rt->stale_diff.v, rt->stale_diff.len);
    }
    int kv = set_kv_cache(rt, (int)diff.len);
    int start_pos = rt->precompute_len + (int)diff.len;
    pthread_mutex_unlock(&rt->state_lock);

    if (kv != 0) {
        iv_free(&ids);
        iv_free(&diff);
        if (rt->opt->context_full_wedge) /* U-API-old: busy stays set, nothing queued */
            return xstrdup(EMU_CONTEXT_FULL_TEXT);
        atomic_store(&rt->busy, false);
        push_text(rt, EMU_CONTEXT_FULL_TEXT, strlen(EMU_CONTEXT_FULL_TEXT));
        return xstrdup(EMU_CONTEXT_FULL_TEXT);
    }

    int generated = 0;
    char *reply = run_model(rt, &ids, &diff, streaming, generation, start_pos, &s, &generated);

    pthread_mutex_lock(&rt->state_lock);
    free(rt->last_reply);
    rt->last_reply = xstrdup(reply);
    /* positions fed: every generated token but one sampled at the context end */
    rt->precompute_len =
        start_pos + generated < rt->opt->max_token_len ? start_pos + generated : rt->opt->max_token_len;
    rt->prefill_budget = rt->opt->prefill_max;
    EMU_LOGI("GetKVCache", 480, "precompute_len:%d, remaining:%d", rt->precompute_len,
             rt->opt->prefill_max - rt->precompute_len);
    pthread_mutex_unlock(&rt->state_lock);

    iv_free(&ids);
    iv_free(&diff);
    atomic_store(&rt->busy, false);
    return reply;
}

/* Worker::ResetSync. */
static void reset_sync(emu_runtime *rt, const char *system_prompt)
{
    if (atomic_load(&rt->busy))
        return; /* silently dropped (only reachable while a chat runs) */
    atomic_store(&rt->busy, true);
    idvec ids = {0};
    tokc_status st = emu_tokclient_reset(rt->tok, system_prompt, &ids);
    if (st == TOKC_BAD_ANSWER)
        die_on_bad_answer("/reset");
    if (st != TOKC_OK)
        EMU_LOGE("Reset", 101, "reset failed");
    int n = (int)ids.len;
    int chunks = (n + PREFILL_CHUNK - 1) / PREFILL_CHUNK;
    int grpid = rt->n_groups; /* the smallest group that holds the block, else the last */
    for (int g = rt->n_groups - 1; g >= 0; g--)
        if (n <= rt->group_capacity[g])
            grpid = g + 1;
    EMU_LOGI("GenerateKVCachePrefill", 343, "input token num : %d, prefill_split_num : %d prefill_grpid : %d", n,
             chunks, grpid);
    for (int c = 0; c < chunks; c++) { /* reset ignores stop */
        EMU_LOGI("GenerateKVCachePrefill", 373, "input_num_token:%d",
                 c == chunks - 1 ? n - c * PREFILL_CHUNK : PREFILL_CHUNK);
        emu_sleep(scaled(rt, rt->profile->prefill_chunk_s), NULL);
    }
    pthread_mutex_lock(&rt->state_lock);
    rt->prefill_budget = rt->opt->prefill_max; /* SetSystemPrompt restores it */
    if (st == TOKC_OK)
        rt->precompute_len = n;
    EMU_LOGI("GenerateKVCachePrefill", 395, "precompute_len: %d", rt->precompute_len);
    pthread_mutex_unlock(&rt->state_lock);
    iv_free(&ids);
    atomic_store(&rt->busy, false);
}

/* ---- worker ---- */

static void *emu_worker_main(void *arg)
{
    emu_runtime *rt = arg;
    for (;;) {
        pthread_mutex_lock(&rt->queue_lock);
        while (!rt->head && !rt->finishing)
            pthread_cond_wait(&rt->queue_cond, &rt->queue_lock);
        task *t = rt->head;
        if (t) {
            rt->head = t->next;
            if (!rt->head)
                rt->tail = NULL;
        }
        pthread_mutex_unlock(&rt->queue_lock);
        if (!t)
            break; /* finishing and nothing left */
        if (rt->opt->dispatch_delay > 0)
            emu_sleep(rt->opt->dispatch_delay, NULL);
        if (t->kind == TASK_RESET) {
            reset_sync(rt, t->text);
        } else {
            char *reply = run_sync(rt, t->text, true);
            free(reply);
        }
        free(t->text);
        free(t);
    }
    return NULL;
}

static void enqueue(emu_runtime *rt, task_kind kind, const char *text)
{
    task *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->text = xstrdup(text ? text : "");
    pthread_mutex_lock(&rt->queue_lock);
    if (rt->tail)
        rt->tail->next = t;
    else
        rt->head = t;
    rt->tail = t;
    pthread_cond_signal(&rt->queue_cond);
    pthread_mutex_unlock(&rt->queue_lock);
}

/* ---- public ---- */

emu_runtime *emu_runtime_new(const emu_options *opt, const emu_profile *profile, emu_tokclient *tok,
                             const emu_sampler *initial, int eos_id)
{
    emu_runtime *rt = xcalloc(1, sizeof *rt);
    rt->opt = opt;
    rt->profile = profile;
    rt->tok = tok;
    rt->eos_id = eos_id;
    rt->sampler = *initial;
    rt->group = -1;
    rt->prefill_budget = opt->prefill_max;
    atomic_init(&rt->busy, false);
    atomic_init(&rt->stop, false);
    atomic_init(&rt->hung, false);
    pthread_mutex_init(&rt->queue_lock, NULL);
    pthread_cond_init(&rt->queue_cond, NULL);
    pthread_mutex_init(&rt->text_lock, NULL);
    pthread_mutex_init(&rt->state_lock, NULL);
    build_groups(rt);
    return rt;
}

void emu_runtime_set_think_ids(emu_runtime *rt, const int32_t *ids, size_t n)
{
    iv_clear(&rt->think_ids);
    iv_append(&rt->think_ids, ids, n);
}

tokc_status emu_runtime_tokenize_think_text(emu_tokclient *tok, const char *text, idvec *ids)
{
    size_t len = strlen(text), lead = 0, trail = 0;
    while (lead < len && text[lead] == '\n')
        lead++;
    while (trail < len - lead && text[len - 1 - trail] == '\n')
        trail++;
    for (size_t i = 0; i < lead; i++)
        iv_push(ids, QWEN_NEWLINE);
    tokc_status st = TOKC_OK;
    if (lead + trail < len) {
        idvec full = {0}, diff = {0};
        st = emu_tokclient_encode(tok, "", text, &full, &diff);
        size_t from = 0;
        for (size_t i = 0; st == TOKC_OK && i + 3 <= full.len && !from; i++)
            if (full.v[i] == QWEN_IM_START && full.v[i + 1] == QWEN_ASSISTANT && full.v[i + 2] == QWEN_NEWLINE)
                from = i + 3;
        size_t to = from;
        while (from && to < full.len && full.v[to] != QWEN_IM_END)
            to++;
        if (st == TOKC_OK && (!from || to == full.len || to == from))
            st = TOKC_BAD_ANSWER;
        if (st == TOKC_OK)
            iv_append(ids, full.v + from, to - from);
        iv_free(&full);
        iv_free(&diff);
    }
    for (size_t i = 0; i < trail; i++)
        iv_push(ids, QWEN_NEWLINE);
    return st;
}

void emu_runtime_start(emu_runtime *rt)
{
    if (pthread_create(&rt->worker, NULL, emu_worker_main, rt) == 0)
        rt->worker_started = true;
}

void emu_runtime_finish(emu_runtime *rt)
{
    pthread_mutex_lock(&rt->queue_lock);
    rt->finishing = true;
    pthread_cond_broadcast(&rt->queue_cond);
    pthread_mutex_unlock(&rt->queue_lock);
    if (rt->worker_started)
        pthread_join(rt->worker, NULL);
    rt->worker_started = false;
}

void emu_runtime_free(emu_runtime *rt)
{
    if (!rt)
        return;
    emu_runtime_finish(rt);
    for (task *t = rt->head; t;) {
        task *next = t->next;
        free(t->text);
        free(t);
        t = next;
    }
    pthread_mutex_destroy(&rt->queue_lock);
    pthread_cond_destroy(&rt->queue_cond);
    pthread_mutex_destroy(&rt->text_lock);
    pthread_mutex_destroy(&rt->state_lock);
    sb_free(&rt->text);
    free(rt->last_reply);
    free(rt->group_capacity);
    iv_free(&rt->stale_ids);
    iv_free(&rt->stale_diff);
    iv_free(&rt->think_ids);
    free(rt);
}

bool emu_runtime_busy(emu_runtime *rt)
{
    return atomic_load(&rt->busy);
}

bool emu_runtime_hung(emu_runtime *rt)
{
    return atomic_load(&rt->hung);
}

void emu_runtime_block_if_hung(emu_runtime *rt)
{
    while (atomic_load(&rt->hung))
        pause();
}

void emu_runtime_queue_reset(emu_runtime *rt, const char *system_prompt)
{
    enqueue(rt, TASK_RESET, system_prompt);
}

void emu_runtime_queue_generate(emu_runtime *rt, const char *prompt)
{
    enqueue(rt, TASK_GENERATE, prompt);
}

char *emu_runtime_drain(emu_runtime *rt, bool *done)
{
    pthread_mutex_lock(&rt->text_lock);
    char *text = sb_steal(&rt->text);
    *done = !atomic_load(&rt->busy);
    pthread_mutex_unlock(&rt->text_lock);
    return text;
}

char *emu_runtime_chat(emu_runtime *rt, const char *prompt)
{
    return run_sync(rt, prompt, false);
}

void emu_runtime_stop_generation(emu_runtime *rt)
{
    atomic_store(&rt->stop, true);
}

void emu_runtime_set_sampling(emu_runtime *rt, const char *key, double value)
{
    pthread_mutex_lock(&rt->state_lock);
    emu_sampler *s = &rt->sampler;
    float f = (float)value;
    if (!strcmp(key, "temperature")) {
        EMU_LOGI("set_llm_config", 283, "temperature: %f", f);
        if (f > 0) {
            s->temperature_on = true;
        } else {
            EMU_LOGE("set_llm_config", 290, "temperature: %f is invalid", f);
            s->temperature_on = false;
        }
        s->temperature = f;
    } else if (!strcmp(key, "repetition_penalty")) {
        EMU_LOGI("set_llm_config", 297, "repetition_penalty: %f", f);
        if (f - 1 < 0.0001f) {
            EMU_LOGI("set_llm_config", 300, "repetition_penalty: %f is skip", f);
        } else {
            s->repetition_on = true;
            s->repetition_penalty = f;
        }
    } else if (!strcmp(key, "top-p")) {
        EMU_LOGI("set_llm_config", 310, "top-p: %f", f);
        if (f > 0 && f < 1) {
            s->top_p_on = true;
            s->top_k_on = false;
        } else {
            EMU_LOGE("set_llm_config", 316, "top-p: %f is invalid", f);
            s->top_p_on = false;
            s->top_k_on = false;
        }
        s->top_p = f;
    } else if (!strcmp(key, "top-k")) {
        /* static_cast<int> of the vendor's arm64 build saturates (NaN: 0); a plain C
         * conversion of an out-of-range value would be undefined */
        int k = value != value ? 0 : value >= 2147483647.0 ? INT_MAX : value <= -2147483648.0 ? INT_MIN : (int)value;
        EMU_LOGI("set_llm_config", 324, "top-k: %d", k);
        if (k > 0) {
            s->top_k_on = true;
            s->top_p_on = false;
        } else {
            EMU_LOGE("set_llm_config", 330, "top-k: %d is invalid", k);
            s->top_k_on = false;
            s->top_p_on = false;
        }
        s->top_k = k;
    }
    pthread_mutex_unlock(&rt->state_lock);
}

emu_sampler emu_runtime_sampler(emu_runtime *rt)
{
    pthread_mutex_lock(&rt->state_lock);
    emu_sampler s = rt->sampler;
    pthread_mutex_unlock(&rt->state_lock);
    return s;
}

void emu_runtime_count_call(emu_runtime *rt, emu_call call)
{
    atomic_fetch_add(&rt->calls[call], 1);
}

void emu_runtime_log_calls(emu_runtime *rt)
{
    EMU_LOGI("emulator", 0, "emulator calls: reset %lu, generate %lu, generate_provider %lu, stop %lu, chat %lu",
             atomic_load(&rt->calls[EMU_CALL_RESET]), atomic_load(&rt->calls[EMU_CALL_GENERATE]),
             atomic_load(&rt->calls[EMU_CALL_PROVIDER]), atomic_load(&rt->calls[EMU_CALL_STOP]),
             atomic_load(&rt->calls[EMU_CALL_CHAT]));
}
