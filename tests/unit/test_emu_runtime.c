/* Tests of axllama-emu's state machine as an HTTP client and the tokenizer service see it
 * (docs/spec/runtime-protocol.md §2, §3, §6; docs/spec/tokenizer-protocol.md §5.5): the worker queue and the busy
 * flag, the never-cleared text queue, stop, the tokenizer traffic, precompute_len bookkeeping, the
 * context budget, sticky sampling, the deterministic reply and the timing profiles.
 *
 * Driver checklist (docs/spec/runtime-protocol.md §7) -> tests that pin the behaviour each item relies on:
 *  1. tokenizer first, CWD, no unknown flags, --devices: command line and start-up, not API
 *     behaviour (test_emu_options.c, test_emu_main.c); here every test starts the tokenizer
 *     service first and the emulator with --devices.
 *  2. ready = an HTTP answer (exit 0 on a port clash: test_emu_main.c); the probes GET /api/stop
 *     and /api/generate_provider always answer: test_emu_http.c test_stop_always_answers_status_ok,
 *     test_provider_when_idle_answers_*.
 *  3. reset with a non-empty system_prompt; an empty one silently becomes the default prompt; no
 *     reset = the system prompt never prefilled: test_reset_omits_empty_system_prompt_*,
 *     test_reset_sets_precompute_len_to_system_block_length,
 *     test_first_generate_without_reset_logs_first_run_and_counts_from_zero.
 *  4. after reset wait until idle, retry 400 "llm is running": test_emu_http.c
 *     test_requests_during_reset_prefill_answer_llm_is_running (and ..._during_generation_...);
 *     test_reset_queued_behind_running_chat_is_dropped, test_generate_queued_behind_running_chat_*.
 *  5. drain stale text before each generate: test_abandoned_text_is_prepended_to_next_generation,
 *     test_text_queue_is_not_cleared_by_reset.
 *  6. ignore done:true until done:false or text was seen: test_poll_right_after_generate_*,
 *     test_tasks_queued_back_to_back_*.
 *  7. strip the think block; "error: SetKVCache failed" = context full -> reset and retry:
 *     test_reply_is_*, test_reply_tokens_*, test_turn_longer_than_aligned_remainder_*,
 *     test_history_plus_turn_* (reset recovers), test_failed_turns_shrink_the_budget_until_reset
 *     (why the retry needs the reset).
 *  8. max_tokens via /api/stop, then poll until done:true: test_stop_mid_generation_*,
 *     test_stop_while_idle_is_lost, test_stop_while_task_only_queued_is_lost.
 *  9. sampling keys are sticky, top-k beats top-p, repetition_penalty cannot be switched off:
 *     test_top_k_*, test_top_p_*, test_invalid_*, test_same_seed_*; test_repetition_penalty_*
 *     (the stand-in model has no repetition to penalise: only the log shows "is skip").
 * 10. context budget (history + turn <= max, turn <= aligned remainder, history grows by diff +
 *     generated): test_precompute_len_*, test_turn_longer_than_aligned_remainder_*,
 *     test_history_plus_turn_beyond_max_*, test_failed_turns_shrink_the_budget_until_reset,
 *     test_chat_in_full_context_*, test_generation_ends_silently_at_max_token_len,
 *     test_context_full_wedge_* (the old build).
 * 11. /api/chat: one message, long blocking: test_emu_http.c test_chat_runs_only_first_element_*,
 *     test_chat_answers_only_after_whole_generation; here test_chat_makes_one_encode_*.
 * 12. shutdown: stop, then SIGINT (running and queued tasks finish first):
 *     test_sigint_finishes_running_and_queued_tasks (+ the stop tests of item 8).
 * Timing (§2.3, §2.6, §6.1): test_first_text_*, test_decoding_n_tokens_*,
 * test_emulator_sleeps_instead_of_computing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_harness.h"

#define STATUS_OK "{\"status\": \"ok\"}"
#define LLM_RUNNING "{\"error\": \"llm is running\"}"
#define IDLE "{\"done\":true,\"response\":\"\"}"
#define THINK_TEXT "<think>\n\n</think>\n\n"
#define CONTEXT_FULL "error: SetKVCache failed: %d,the context may be full,please reset"

static const int32_t think_ids[4] = {151667, 271, 151668, 271};

static h_tokenizer g_tok;
static h_emu g_emu;  /* the current test's emulator; killed by the teardown even after a failure */
static h_emu g_emu2; /* a second one for tests that compare runs */

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return h_tokenizer_start(&g_tok) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    h_tokenizer_stop(&g_tok);
    curl_global_cleanup();
    return 0;
}

static int emu_teardown(void **state)
{
    (void)state;
    h_emu_kill(&g_emu);
    h_emu_kill(&g_emu2);
    memset(&g_emu, 0, sizeof g_emu);
    memset(&g_emu2, 0, sizeof g_emu2);
    return 0;
}

/* Starts a fast emulator with extra arguments into e and forgets its start-up traffic. */
static h_emu *start_into(h_emu *e, const char *const *extra)
{
    assert_true(h_emu_start_fast(e, &g_tok, extra));
    h_tokenizer_forget(&g_tok);
    return e;
}
#define START(...) start_into(&g_emu, (const char *const[]){__VA_ARGS__, NULL})
#define START_PLAIN() start_into(&g_emu, NULL)
/* The measured Qwen3-4B AX650 profile, 20 times faster. */
#define START_AX650(...)                                                                                    \
    start_into(&g_emu, (const char *const[]){"--emu-profile", "qwen3-4b-ax650", "--emu-time-scale", "0.05", \
                                             "--emu-init-seconds", "0", __VA_ARGS__, NULL})

/* ---- expected values from the tokenizer itself ---- */

static void encode_text(const char *text, idvec *out)
{
    tokenizer_encode(g_tok.tok, text, strlen(text), out);
}

/* The stand-in model's echo: the ids of the user message as the service stores it. */
static void echo_ids(const char *prompt, idvec *out)
{
    strbuf sb = {0};
    sb_printf(&sb, "%s/no_think", prompt);
    encode_text(sb.data, out);
    sb_free(&sb);
}

/* think block + echo: the greedy reply's ids. */
static void greedy_ids(const char *prompt, idvec *out)
{
    iv_append(out, think_ids, 4);
    echo_ids(prompt, out);
}

/* The diff of a normal turn: user block + assistant header. */
static int diff_len(const char *prompt)
{
    strbuf sb = {0};
    sb_printf(&sb, "<|im_start|>user\n%s/no_think<|im_end|>\n<|im_start|>assistant\n", prompt);
    idvec ids = {0};
    encode_text(sb.data, &ids);
    int n = (int)ids.len;
    iv_free(&ids);
    sb_free(&sb);
    return n;
}

static int system_block_len(const char *system_prompt)
{
    strbuf sb = {0};
    sb_printf(&sb, "<|im_start|>system\n%s<|im_end|>\n", system_prompt);
    idvec ids = {0};
    encode_text(sb.data, &ids);
    int n = (int)ids.len;
    iv_free(&ids);
    sb_free(&sb);
    return n;
}

static char *decode_ids(const int32_t *ids, size_t n)
{
    strbuf sb = {0};
    sb_puts(&sb, "");
    assert_true(tokenizer_decode(g_tok.tok, ids, n, &sb));
    return sb_steal(&sb);
}

/* "a a a ... a" with n words: n tokens. */
static char *repeated_words(int n)
{
    strbuf sb = {0};
    sb_puts(&sb, "a");
    for (int i = 1; i < n; i++)
        sb_puts(&sb, " a");
    return sb_steal(&sb);
}

static void assert_ids_equal(const idvec *got, const int32_t *want, size_t n)
{
    assert_int_equal(got->len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got->v[i], want[i]);
}

static int cmp_id(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* got = think block + a reordering of want's body (want = greedy ids) that differs from it. */
static void assert_shuffled(const idvec *got, const idvec *want)
{
    assert_int_equal(got->len, want->len);
    assert_memory_equal(got->v, think_ids, sizeof think_ids);
    assert_memory_not_equal(got->v, want->v, want->len * sizeof *want->v);
    idvec a = {0}, b = {0};
    iv_append(&a, got->v + 4, got->len - 4);
    iv_append(&b, want->v + 4, want->len - 4);
    qsort(a.v, a.len, sizeof *a.v, cmp_id);
    qsort(b.v, b.len, sizeof *b.v, cmp_id);
    assert_memory_equal(a.v, b.v, a.len * sizeof *a.v);
    iv_free(&a);
    iv_free(&b);
}

/* ---- driving the emulator ---- */

static void post_expect(h_emu *e, const char *path, const char *body, long status, const char *answer)
{
    h_http r = h_post(e, path, body);
    assert_int_equal(r.status, status);
    assert_string_equal(r.body.data, answer);
    h_http_free(&r);
}

/* POST /api/generate {"prompt": prompt} plus the JSON members in extra (e.g. "\"top-k\": 5" or ""). */
static void generate(h_emu *e, const char *prompt, const char *extra)
{
    json_t *p = json_string(prompt);
    char *quoted = json_dumps(p, JSON_ENCODE_ANY);
    strbuf body = {0};
    sb_printf(&body, "{\"prompt\": %s%s%s}", quoted, *extra ? ", " : "", extra);
    post_expect(e, "/api/generate", body.data, 200, STATUS_OK);
    sb_free(&body);
    free(quoted);
    json_decref(p);
}

/* Waits for the end of the n-th generation since start (its GetKVCache line). */
static void wait_generations(h_emu *e, size_t n)
{
    assert_true(h_emu_wait_log_count(e, "remaining:", n, 20.0));
}

/* Waits until the runtime is idle: a gated request no longer gets 400 "llm is running" (the probe
 * itself then fails with 500 before doing anything). */
static void wait_idle(h_emu *e)
{
    for (double end = h_now() + 10.0; h_now() < end; h_sleep(0.002)) {
        h_http r = h_post(e, "/api/chat", "{\"messages\": 0}");
        long status = r.status;
        h_http_free(&r);
        if (status == 500)
            return;
        assert_int_equal(status, 400);
    }
    fail_msg("the runtime stayed busy");
}

/* The vendor's first line of a reset prefill (GenerateKVCachePrefill). */
#define RESET_LINE "prefill_grpid : "

/* Waits until the n-th reset has started prefilling and the runtime is idle again. */
static void wait_resets(h_emu *e, size_t n)
{
    assert_true(h_emu_wait_log_count(e, RESET_LINE, n, 10.0));
    wait_idle(e);
}

/* Token counts of the reset prefills ("input token num : N, prefill_split_num : C prefill_grpid :
 * G"), in order; returns how many. */
static size_t logged_resets(const h_emu *e, int *tokens, size_t max)
{
    char *log = h_emu_log(e);
    size_t n = 0;
    for (const char *p = strstr(log, "input token num : "); p && n < max; p = strstr(p + 1, "input token num : ")) {
        const char *eol = strchr(p, '\n');
        const char *grp = strstr(p, RESET_LINE);
        if (grp && (!eol || grp < eol))
            sscanf(p, "input token num : %d", &tokens[n++]);
    }
    free(log);
    return n;
}

/* The text the provider holds once the runtime is idle (polls until done:true). */
static char *drain(h_emu *e)
{
    char *text = h_poll_until_done(e, 10.0);
    assert_non_null(text);
    return text;
}

/* Ids of the most recent /decode (after a finished generation: its final decode of all ids). */
static void last_decode_ids(idvec *out)
{
    size_t n = h_count(&g_tok, "/decode");
    assert_true(n > 0);
    assert_true(h_body_ids(&g_tok, "/decode", n - 1, out));
}

/* One generate turn (the k-th generation), waited for and drained; out = its reply's ids. */
static void turn(h_emu *e, const char *prompt, const char *extra, size_t k, idvec *out)
{
    generate(e, prompt, extra);
    wait_generations(e, k);
    free(drain(e));
    iv_clear(out);
    last_decode_ids(out);
}

/* The logged "precompute_len:%d, remaining:%d" pairs, in order; returns how many. */
static size_t logged_turns(const h_emu *e, int *pre, int *remaining, size_t max)
{
    char *log = h_emu_log(e);
    size_t n = 0;
    for (const char *p = strstr(log, "precompute_len:"); p && n < max; p = strstr(p + 1, "precompute_len:")) {
        int a, b;
        if (sscanf(p, "precompute_len:%d, remaining:%d", &a, &b) == 2) {
            pre[n] = a;
            remaining[n] = b;
            n++;
        }
    }
    free(log);
    return n;
}

/* The value of the last "needle%d" in the log; -1 if none. */
static int last_logged_int(const h_emu *e, const char *needle)
{
    char *log = h_emu_log(e);
    int value = -1;
    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle))
        sscanf(p + strlen(needle), "%d", &value);
    free(log);
    return value;
}

static const char *current_uid(void)
{
    static char uid[TOK_SERVICE_UID_LEN + 1];
    assert_true(tok_service_last_uid(g_tok.svc, uid));
    return uid;
}

/* ---- 2.5: done before start, the text queue ---- */

static void test_poll_right_after_generate_says_done_before_the_task_starts(void **state)
{
    (void)state;
    h_emu *e = START("--emu-dispatch-delay", "0.3");
    double t0 = h_now();
    generate(e, "hello", "");
    h_http r = h_get(e, "/api/generate_provider");
    double elapsed = h_now() - t0;
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, IDLE);
    h_http_free(&r);
    assert_true(elapsed < 0.3);                      /* the task was still only queued... */
    assert_int_equal(h_count(&g_tok, "/encode"), 0); /* ...it had not started */
    wait_generations(e, 1);
    r = h_get(e, "/api/generate_provider"); /* the text waited for the next poller */
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"done\":true,\"response\":\"<think>\\n\\n</think>\\n\\nhello/no_think\"}");
    h_http_free(&r);
}

/* Two generates sent while idle are both accepted; the provider says done:true between them and
 * gets both replies. */
static void test_tasks_queued_back_to_back_both_run_and_both_texts_arrive(void **state)
{
    (void)state;
    h_emu *e = START("--emu-dispatch-delay", "0.2");
    generate(e, "one", "");
    generate(e, "two", ""); /* accepted: queued tasks do not set busy */
    wait_generations(e, 2);
    char *text = drain(e);
    assert_string_equal(text, THINK_TEXT "one/no_think" THINK_TEXT "two/no_think");
    free(text);
    assert_int_equal(h_count(&g_tok, "/encode"), 2);
}

static void test_abandoned_text_is_prepended_to_next_generation(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    generate(e, "first", "");
    wait_generations(e, 1); /* nobody polls */
    generate(e, "second", "");
    wait_generations(e, 2);
    char *text = drain(e);
    assert_string_equal(text, THINK_TEXT "first/no_think" THINK_TEXT "second/no_think");
    free(text);
}

static void test_text_queue_is_not_cleared_by_reset(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    generate(e, "before", "");
    wait_generations(e, 1);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    generate(e, "after", "");
    wait_generations(e, 2);
    char *text = drain(e);
    assert_string_equal(text, THINK_TEXT "before/no_think" THINK_TEXT "after/no_think");
    free(text);
}

/* ---- 2.7: stop ---- */

/* Asserts that the recorded /decode calls are those of one uninterrupted generation of want. */
static void assert_full_decode_traffic(const idvec *want)
{
    size_t pieces = want->len / 3, leftover = want->len % 3;
    assert_int_equal(h_count(&g_tok, "/decode"), pieces + (leftover ? 1 : 0) + 1);
    idvec got = {0};
    for (size_t i = 0; i < pieces; i++) {
        iv_clear(&got);
        assert_true(h_body_ids(&g_tok, "/decode", i, &got));
        assert_ids_equal(&got, want->v + 3 * i, 3);
    }
    if (leftover) {
        iv_clear(&got);
        assert_true(h_body_ids(&g_tok, "/decode", pieces, &got));
        assert_ids_equal(&got, want->v + 3 * pieces, leftover);
    }
    iv_clear(&got);
    last_decode_ids(&got);
    assert_ids_equal(&got, want->v, want->len);
    iv_free(&got);
}

/* The cycled echo of prompt, n ids, after the think block. */
static void cycled_ids(const char *prompt, size_t n, idvec *out)
{
    idvec echo = {0};
    echo_ids(prompt, &echo);
    iv_append(out, think_ids, 4);
    for (size_t i = 0; i < n; i++)
        iv_push(out, echo.v[i % echo.len]);
    iv_free(&echo);
}

static void test_stop_while_idle_is_lost(void **state)
{
    (void)state;
    h_emu *e = START("--emu-reply-tokens", "30");
    h_http r = h_get(e, "/api/stop");
    assert_int_equal(r.status, 200);
    h_http_free(&r);
    generate(e, "x y z", "");
    wait_generations(e, 1);
    char *text = drain(e);
    idvec want = {0};
    cycled_ids("x y z", 30, &want);
    char *full = decode_ids(want.v, want.len);
    assert_string_equal(text, full); /* everything streamed, nothing cut */
    assert_full_decode_traffic(&want);
    free(full);
    free(text);
    iv_free(&want);
}

static void test_stop_while_task_only_queued_is_lost(void **state)
{
    (void)state;
    h_emu *e = START("--emu-reply-tokens", "30", "--emu-dispatch-delay", "1.0");
    double t0 = h_now();
    generate(e, "x y z", "");
    h_http r = h_get(e, "/api/stop");
    assert_int_equal(r.status, 200);
    h_http_free(&r);
    assert_true(h_now() - t0 < 1.0);                 /* the scenario's precondition, with room for a loaded machine */
    assert_int_equal(h_count(&g_tok, "/encode"), 0); /* the stop came before the task started */
    wait_generations(e, 1);
    idvec want = {0};
    cycled_ids("x y z", 30, &want);
    assert_full_decode_traffic(&want);
    iv_free(&want);
}

/* fast x100: 0.2 s per token. The first piece (3 ids) is streamed right after the 3rd token; the
 * stop lands 0.3 s later, in the middle of the 5th token's step, so 4 ids exist: the 4th is a
 * leftover that is in the final decode but never streamed. */
static void test_stop_mid_generation_ends_stream_without_leftover_ids(void **state)
{
    (void)state;
    h_emu *e = START("--emu-reply-tokens", "40", "--emu-time-scale", "100", "--emu-init-seconds", "0");
    generate(e, "x y z", "");
    strbuf streamed = {0};
    sb_puts(&streamed, "");
    double end = h_now() + 10.0;
    while (!streamed.len && h_now() < end) {
        bool done;
        char *text = h_poll(e, &done);
        assert_non_null(text);
        sb_puts(&streamed, text);
        free(text);
        h_sleep(0.002);
    }
    assert_true(streamed.len > 0);
    h_sleep(0.3);
    h_http r = h_get(e, "/api/stop");
    assert_int_equal(r.status, 200);
    h_http_free(&r);
    char *rest = drain(e); /* after a stop: poll until done:true */
    sb_puts(&streamed, rest);
    free(rest);
    assert_true(h_emu_log_has(e, "hit eos,avg")); /* printed even after a stop */

    idvec final = {0}, piece = {0}, pieces = {0};
    last_decode_ids(&final);
    assert_true(final.len < 44); /* stopped early */
    size_t n_decodes = h_count(&g_tok, "/decode");
    for (size_t i = 0; i + 1 < n_decodes; i++) { /* every streamed piece has 3 ids */
        iv_clear(&piece);
        assert_true(h_body_ids(&g_tok, "/decode", i, &piece));
        assert_int_equal(piece.len, 3);
        iv_append(&pieces, piece.v, piece.len);
    }
    size_t leftover = final.len - pieces.len;
    assert_true(leftover == 1 || leftover == 2);
    assert_memory_equal(pieces.v, final.v, pieces.len * sizeof *pieces.v); /* pieces = prefix */
    char *streamed_want = decode_ids(pieces.v, pieces.len), *final_text = decode_ids(final.v, final.len);
    assert_string_equal(streamed.data, streamed_want);
    assert_true(strlen(streamed.data) < strlen(final_text));
    assert_memory_equal(final_text, streamed.data, streamed.len);
    free(streamed_want);
    free(final_text);
    sb_free(&streamed);
    iv_free(&final);
    iv_free(&piece);
    iv_free(&pieces);
}

/* ---- §5.5: tokenizer traffic ---- */

/* Replies of 9, 10 and 8 ids (n mod 3 = 0, 1, 2): 3-id pieces, the leftover at EOS, then all ids. */
static void test_decode_traffic_is_pieces_of_three_leftover_then_all_ids(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    static const char *prompts[] = {"hello world", "x y z", "a"};
    bool seen_mod[3] = {false, false, false};
    for (size_t k = 0; k < 3; k++) {
        h_tokenizer_forget(&g_tok);
        generate(e, prompts[k], "");
        wait_generations(e, k + 1);
        free(drain(e));
        idvec want = {0};
        greedy_ids(prompts[k], &want);
        seen_mod[want.len % 3] = true;
        assert_full_decode_traffic(&want);
        iv_free(&want);
    }
    assert_true(seen_mod[0] && seen_mod[1] && seen_mod[2]);
    /* the body: compact, keys sorted */
    char *body = h_body(&g_tok, "/decode", 0);
    strbuf want = {0};
    sb_printf(&want, "{\"token_ids\":[151667,271,151668],\"uid\":\"%s\"}", current_uid());
    assert_string_equal(body, want.data);
    sb_free(&want);
    free(body);
}

/* One /encode per generate: text = the prompt, last_reply = the previous final decode (absent on
 * the first turn, kept across /api/reset, shared with /api/chat), img_prompt false, keys sorted. */
static void test_encode_sends_prompt_and_previous_reply(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    const char *uid = current_uid();
    idvec ids = {0};
    turn(e, "hello", "", 1, &ids);
    turn(e, "again", "", 2, &ids);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"chat\"}]}", 200,
                "{\"done\":true,\"message\":\"<think>\\n\\n</think>\\n\\nchat/no_think\"}");
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    turn(e, "after reset", "", 4, &ids);
    iv_free(&ids);

    assert_int_equal(h_count(&g_tok, "/encode"), 4);
    static const char *const want_fmt[] = {
        "{\"img_prompt\":false,\"text\":\"hello\",\"uid\":\"%s\"}",
        "{\"img_prompt\":false,\"last_reply\":\"<think>\\n\\n</think>\\n\\nhello/no_think\",\"text\":\"again\","
        "\"uid\":\"%s\"}",
        "{\"img_prompt\":false,\"last_reply\":\"<think>\\n\\n</think>\\n\\nagain/no_think\",\"text\":\"chat\","
        "\"uid\":\"%s\"}",
        "{\"img_prompt\":false,\"last_reply\":\"<think>\\n\\n</think>\\n\\nchat/no_think\",\"text\":\"after reset\","
        "\"uid\":\"%s\"}",
    };
    for (size_t i = 0; i < 4; i++) {
        strbuf want = {0};
        sb_printf(&want, want_fmt[i], uid);
        char *body = h_body(&g_tok, "/encode", i);
        assert_string_equal(body, want.data);
        free(body);
        sb_free(&want);
    }
}

static void test_chat_makes_one_encode_one_decode_and_queues_nothing(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hello world\"}]}", 200,
                "{\"done\":true,\"message\":\"<think>\\n\\n</think>\\n\\nhello world/no_think\"}");
    assert_int_equal(h_count(&g_tok, "/encode"), 1);
    assert_int_equal(h_count(&g_tok, "/decode"), 1);
    idvec got = {0}, want = {0};
    last_decode_ids(&got);
    greedy_ids("hello world", &want);
    assert_ids_equal(&got, want.v, want.len);
    iv_free(&got);
    iv_free(&want);
    h_http r = h_get(e, "/api/generate_provider");
    assert_string_equal(r.body.data, IDLE);
    h_http_free(&r);
}

/* ---- precompute_len bookkeeping (§2.3, §2.4, §2.8) ---- */

static void test_first_generate_without_reset_logs_first_run_and_counts_from_zero(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec ids = {0};
    turn(e, "hello", "", 1, &ids);
    assert_true(h_emu_log_has(e, "first run"));
    assert_true(h_emu_log_has(e, "current prefill_max_token_num:2048"));
    int pre[4], rem[4];
    assert_int_equal(logged_turns(e, pre, rem, 4), 1);
    int want = diff_len("hello") + (int)ids.len; /* positions from 0: no system block */
    assert_int_equal(pre[0], want);
    assert_int_equal(rem[0], 2048 - want);
    iv_free(&ids);
}

/* After a reset: reset tokens + diff + generated, turn after turn, generate and chat alike. */
static void test_precompute_len_adds_diff_and_generated_tokens_each_turn(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    idvec ids = {0};
    int expected[3];
    turn(e, "hello world", "", 1, &ids);
    expected[0] = 21 + diff_len("hello world") + (int)ids.len;
    assert_int_equal(last_logged_int(e, "current prefill_max_token_num:"), (2048 - 21) / 128 * 128);
    turn(e, "x y z", "", 2, &ids);
    expected[1] = expected[0] + diff_len("x y z") + (int)ids.len;
    assert_int_equal(last_logged_int(e, "input token num : "), diff_len("x y z"));
    assert_int_equal(last_logged_int(e, "current prefill_max_token_num:"), (2048 - expected[0]) / 128 * 128);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}", 200,
                "{\"done\":true,\"message\":\"<think>\\n\\n</think>\\n\\na/no_think\"}");
    iv_clear(&ids);
    last_decode_ids(&ids);
    expected[2] = expected[1] + diff_len("a") + (int)ids.len;
    iv_free(&ids);
    int pre[8], rem[8];
    assert_int_equal(logged_turns(e, pre, rem, 8), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pre[i], expected[i]);
        assert_int_equal(rem[i], 2048 - expected[i]);
    }
    assert_false(h_emu_log_has(e, "first run"));
}

static void test_reset_sets_precompute_len_to_system_block_length(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec ids = {0};
    turn(e, "hello", "", 1, &ids);
    post_expect(e, "/api/reset", "{\"system_prompt\": \"You are a pirate.\"}", 200, STATUS_OK);
    wait_resets(e, 1);
    int pirate = system_block_len("You are a pirate.");
    int resets[4];
    assert_int_equal(logged_resets(e, resets, 4), 1);
    assert_int_equal(resets[0], pirate);
    turn(e, "x y z", "", 2, &ids);
    int pre[4], rem[4];
    assert_int_equal(logged_turns(e, pre, rem, 4), 2);
    assert_int_equal(pre[1], pirate + diff_len("x y z") + (int)ids.len);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 2);
    assert_int_equal(logged_resets(e, resets, 4), 2);
    assert_int_equal(resets[1], 21); /* the default Qwen block */
    iv_free(&ids);
}

/* An empty or missing system_prompt is left out of /reset, so the service uses its default. */
static void test_reset_omits_empty_system_prompt_and_uses_default_block(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    post_expect(e, "/api/reset", "{\"system_prompt\": \"\"}", 200, STATUS_OK);
    wait_resets(e, 2);
    post_expect(e, "/api/reset", "{\"system_prompt\": \"Be brief.\", \"other\": 1}", 200, STATUS_OK);
    wait_resets(e, 3);
    assert_int_equal(h_count(&g_tok, "/reset"), 3);
    const char *uid = current_uid();
    strbuf want = {0};
    sb_printf(&want, "{\"uid\":\"%s\"}", uid);
    for (size_t i = 0; i < 2; i++) {
        char *body = h_body(&g_tok, "/reset", i);
        assert_string_equal(body, want.data);
        free(body);
    }
    sb_clear(&want);
    sb_printf(&want, "{\"system_prompt\":\"Be brief.\",\"uid\":\"%s\"}", uid);
    char *body = h_body(&g_tok, "/reset", 2);
    assert_string_equal(body, want.data);
    free(body);
    sb_free(&want);
    int resets[4];
    assert_int_equal(logged_resets(e, resets, 4), 3);
    assert_int_equal(resets[0], 21); /* both defaults: the 21-token Qwen block */
    assert_int_equal(resets[1], 21);
    assert_int_equal(resets[2], system_block_len("Be brief."));
}

/* ---- context budget (§2.8) ---- */

#define SMALL_CONTEXT "--emu-prefill-max", "512", "--emu-max-token-len", "767", "--emu-time-scale", "0.1"

/* Waits for the context-full text and checks the provider's exact answer. */
static void expect_context_full_answer(h_emu *e)
{
    char *text = drain(e);
    assert_string_equal(text, CONTEXT_FULL);
    free(text);
    h_http r = h_get(e, "/api/generate_provider"); /* drained: nothing more */
    assert_string_equal(r.body.data, IDLE);
    h_http_free(&r);
}

/* Rule 2: turn <= ALIGN_DOWN(max - history, 128). History 21 + turn D <= 512 but D > 384. */
static void test_turn_longer_than_aligned_remainder_gets_context_full_text(void **state)
{
    (void)state;
    h_emu *e = START(SMALL_CONTEXT);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    char *prompt = repeated_words(420);
    int d = diff_len(prompt);
    assert_true(d > 384 && 21 + d <= 512); /* only the aligned-remainder rule is broken */
    generate(e, prompt, "");
    strbuf line = {0};
    sb_printf(&line, "input_num_token(%d) > _attr.prefill_max_token_num(384)", d);
    assert_true(h_emu_wait_log(e, line.data, 5.0));
    sb_free(&line);
    assert_false(h_emu_log_has(e, "prefill_max_kv_cache_num_grp"));
    expect_context_full_answer(e);
    /* still usable; the failed turn left the KV bookkeeping alone */
    idvec ids = {0};
    turn(e, "hi", "", 1, &ids);
    char *text = decode_ids(ids.v, ids.len);
    assert_string_equal(text, THINK_TEXT "hi/no_think");
    free(text);
    int pre[2], rem[2];
    assert_int_equal(logged_turns(e, pre, rem, 2), 1);
    /* (the service appended the failed turn, so its length-sliced diff of this one differs from
     * a normal turn's: take the diff size the runtime logged) */
    assert_int_equal(pre[0], 21 + last_logged_int(e, "input token num : ") + (int)ids.len);
    iv_clear(&ids);
    greedy_ids("hi", &ids);
    assert_full_decode_traffic(&ids); /* the failed turn decoded nothing */
    iv_free(&ids);
    free(prompt);
}

/* Rule 1: history + turn <= max. A long reply takes the history past 512 (generation may run
 * past the prefill maximum); the next turn fails; /api/reset recovers. */
static void test_history_plus_turn_beyond_max_gets_context_full_text(void **state)
{
    (void)state;
    h_emu *e = START(SMALL_CONTEXT);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    char *prompt = repeated_words(288);
    idvec ids = {0};
    turn(e, prompt, "", 1, &ids);
    int history = 21 + diff_len(prompt) + (int)ids.len;
    assert_true(history > 512);
    int pre[4], rem[4];
    assert_int_equal(logged_turns(e, pre, rem, 4), 1);
    assert_int_equal(pre[0], history);
    generate(e, "hi", "");
    strbuf line = {0};
    /* groups 1, 256, 512: the last one chosen, printed as its index */
    sb_printf(&line, "precompute_len(%d) + input_num_token(%d) > _attr.prefill_max_kv_cache_num_grp[2]", history,
              diff_len("hi"));
    assert_true(h_emu_wait_log(e, line.data, 5.0));
    sb_free(&line);
    expect_context_full_answer(e);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1 + 1);
    turn(e, "hi", "", 2, &ids);
    char *text = decode_ids(ids.v, ids.len);
    assert_string_equal(text, THINK_TEXT "hi/no_think");
    free(text);
    assert_int_equal(logged_turns(e, pre, rem, 4), 2);
    assert_int_equal(pre[1], 21 + diff_len("hi") + (int)ids.len);
    iv_free(&ids);
    free(prompt);
}

/* The budget is computed from the previous budget (G-LLM keeps it in _attr), so each failed turn
 * shrinks it further; a reset (or a finished run) restores it. After the 432-token turn failed
 * against 384, a turn that would fit in 384 fails against ALIGN_DOWN(384 - 21, 128) = 256. */
static void test_failed_turns_shrink_the_budget_until_reset(void **state)
{
    (void)state;
    h_emu *e = START(SMALL_CONTEXT);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    char *too_long = repeated_words(420), *medium = repeated_words(290);
    generate(e, too_long, "");
    assert_true(h_emu_wait_log(e, "_attr.prefill_max_token_num(384)", 5.0));
    expect_context_full_answer(e);
    generate(e, medium, "");
    assert_true(h_emu_wait_log(e, "_attr.prefill_max_token_num(256)", 5.0));
    expect_context_full_answer(e);
    int d = last_logged_int(e, "input_num_token(");
    assert_true(d > 256 && d <= 384 && 21 + d <= 512); /* it failed only for the shrunk budget */
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 2);
    idvec ids = {0};
    turn(e, medium, "", 1, &ids);
    assert_int_equal(last_logged_int(e, "current prefill_max_token_num:"), 384);
    int pre[2], rem[2];
    assert_int_equal(logged_turns(e, pre, rem, 2), 1);
    assert_int_equal(pre[0], 21 + diff_len(medium) + (int)ids.len);
    iv_free(&ids);
    free(too_long);
    free(medium);
}

/* Chat answers the context-full text as its message with 200, and leaves it in the queue too. */
static void test_chat_in_full_context_answers_context_full_message(void **state)
{
    (void)state;
    h_emu *e = START(SMALL_CONTEXT);
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    char *prompt = repeated_words(288);
    idvec ids = {0};
    turn(e, prompt, "", 1, &ids);
    iv_free(&ids);
    free(prompt);
    size_t decodes = h_count(&g_tok, "/decode");
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 200,
                "{\"done\":true,\"message\":\"" CONTEXT_FULL "\"}");
    assert_int_equal(h_count(&g_tok, "/decode"), decodes);
    h_http r = h_get(e, "/api/generate_provider");
    assert_string_equal(r.body.data, "{\"done\":true,\"response\":\"" CONTEXT_FULL "\"}");
    h_http_free(&r);
}

/* Generation runs past the prefill maximum up to max_token_len and ends there silently: no EOS,
 * the 1-2 leftover ids not streamed, precompute_len = max_token_len. The vendor's loop feeds
 * positions start .. max_token_len - 1 and samples after each, so one more token than positions
 * exists (the last one is never fed). */
static void test_generation_ends_silently_at_max_token_len(void **state)
{
    (void)state;
    h_emu *e = START("--emu-prefill-max", "512", "--emu-max-token-len", "768", "--emu-time-scale", "0.1",
                     "--emu-reply-tokens", "1000");
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    generate(e, "hi", "");
    wait_generations(e, 1);
    char *text = drain(e);
    int start = 21 + diff_len("hi");
    size_t n = (size_t)(768 - start + 1);
    idvec want = {0};
    cycled_ids("hi", n - 4, &want);
    idvec got = {0};
    last_decode_ids(&got);
    assert_ids_equal(&got, want.v, want.len);
    size_t pieces = n / 3;
    assert_int_equal(h_count(&g_tok, "/decode"), pieces + 1); /* no leftover decode */
    assert_true(n % 3 != 0);
    char *streamed = decode_ids(want.v, 3 * pieces);
    assert_string_equal(text, streamed);
    int pre[2], rem[2];
    assert_int_equal(logged_turns(e, pre, rem, 2), 1);
    assert_int_equal(pre[0], 768);
    assert_int_equal(rem[0], 512 - 768);
    free(streamed);
    free(text);
    iv_free(&want);
    iv_free(&got);
}

/* The old build (U-API-old): after a context-full failure busy is never cleared, nothing is
 * queued; every gated request gets 400 and the provider says done:false for good. */
static void test_context_full_wedge_keeps_runtime_busy_forever(void **state)
{
    (void)state;
    h_emu *e = START(SMALL_CONTEXT, "--emu-context-full-wedge", "1");
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    wait_resets(e, 1);
    char *prompt = repeated_words(420);
    generate(e, prompt, "");
    free(prompt);
    assert_true(h_emu_wait_log(e, "_attr.prefill_max_token_num(384)", 5.0));
    for (double end = h_now() + 0.3; h_now() < end;) {
        h_http r = h_get(e, "/api/generate_provider");
        assert_string_equal(r.body.data, "{\"done\":false,\"response\":\"\"}");
        h_http_free(&r);
        h_sleep(0.01);
    }
    post_expect(e, "/api/generate", "{\"prompt\": \"hi\"}", 400, LLM_RUNNING);
    post_expect(e, "/api/reset", "{}", 400, LLM_RUNNING);
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 400, LLM_RUNNING);
    h_http r = h_get(e, "/api/generate_provider");
    assert_string_equal(r.body.data, "{\"done\":false,\"response\":\"\"}");
    h_http_free(&r);
}

/* ---- §3: sticky sampling ---- */

#define SAMPLING_PROMPT "one two three four five six seven eight nine ten"

static void test_top_k_above_one_shuffles_and_stays_for_later_requests(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec greedy = {0}, got = {0};
    greedy_ids(SAMPLING_PROMPT, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 5", 1, &got);
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "", 2, &got); /* no keys: still top-k 5 */
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "\"temperature\": 0.7", 3, &got);
    assert_shuffled(&got, &greedy);
    iv_free(&greedy);
    iv_free(&got);
}

static void test_top_k_one_restores_greedy(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec greedy = {0}, got = {0};
    greedy_ids(SAMPLING_PROMPT, &greedy);
    turn(e, SAMPLING_PROMPT, "", 1, &got); /* no post_config.json: everything off = greedy */
    assert_ids_equal(&got, greedy.v, greedy.len);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 5", 2, &got);
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 1", 3, &got);
    assert_ids_equal(&got, greedy.v, greedy.len);
    turn(e, SAMPLING_PROMPT, "", 4, &got);
    assert_ids_equal(&got, greedy.v, greedy.len);
    iv_free(&greedy);
    iv_free(&got);
}

static void test_top_p_alone_shuffles(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec greedy = {0}, got = {0};
    greedy_ids(SAMPLING_PROMPT, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 1", 1, &got);
    assert_ids_equal(&got, greedy.v, greedy.len);
    turn(e, SAMPLING_PROMPT, "\"top-p\": 0.5", 2, &got); /* enables top-p, disables top-k */
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "", 3, &got);
    assert_shuffled(&got, &greedy);
    iv_free(&greedy);
    iv_free(&got);
}

/* top-k is applied after top-p, so sending both with top-k 1 is greedy. */
static void test_top_k_wins_over_top_p_in_one_request(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec greedy = {0}, got = {0};
    greedy_ids(SAMPLING_PROMPT, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-p\": 0.5", 1, &got);
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 1, \"top-p\": 0.5", 2, &got);
    assert_ids_equal(&got, greedy.v, greedy.len);
    iv_free(&greedy);
    iv_free(&got);
}

static void test_invalid_top_k_or_top_p_disables_sampling(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec greedy = {0}, got = {0};
    greedy_ids(SAMPLING_PROMPT, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 5", 1, &got);
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-k\": 0", 2, &got);
    assert_ids_equal(&got, greedy.v, greedy.len);
    assert_true(h_emu_log_has(e, "top-k: 0 is invalid"));
    turn(e, SAMPLING_PROMPT, "\"top-p\": 0.5", 3, &got);
    assert_shuffled(&got, &greedy);
    turn(e, SAMPLING_PROMPT, "\"top-p\": 1.5", 4, &got);
    assert_ids_equal(&got, greedy.v, greedy.len);
    assert_true(h_emu_log_has(e, "top-p: 1.500000 is invalid"));
    iv_free(&greedy);
    iv_free(&got);
}

static void test_repetition_penalty_at_most_one_is_skip(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec greedy = {0}, got = {0};
    greedy_ids(SAMPLING_PROMPT, &greedy);
    turn(e, SAMPLING_PROMPT, "\"repetition_penalty\": 1.2", 1, &got);
    assert_true(h_emu_log_has(e, "repetition_penalty: 1.200000"));
    assert_false(h_emu_log_has(e, "is skip"));
    turn(e, SAMPLING_PROMPT, "\"repetition_penalty\": 1.0", 2, &got);
    assert_true(h_emu_log_has(e, "repetition_penalty: 1.000000 is skip"));
    turn(e, SAMPLING_PROMPT, "\"repetition_penalty\": 0.5, \"temperature\": 0", 3, &got);
    assert_true(h_emu_log_has(e, "repetition_penalty: 0.500000 is skip"));
    assert_true(h_emu_log_has(e, "temperature: 0.000000 is invalid"));
    assert_ids_equal(&got, greedy.v, greedy.len); /* neither key changes a greedy reply */
    iv_free(&greedy);
    iv_free(&got);
}

/* ---- the deterministic reply ---- */

static void test_reply_is_empty_think_block_then_echo_of_last_user_message(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    generate(e, "hello world", "");
    wait_generations(e, 1);
    char *text = drain(e);
    assert_string_equal(text, THINK_TEXT "hello world/no_think");
    free(text);
    generate(e, "ends with /no_think", "");
    wait_generations(e, 2);
    text = drain(e);
    assert_string_equal(text, THINK_TEXT "ends with /no_think"); /* the service adds no second suffix */
    free(text);
    idvec got = {0}, want = {0};
    last_decode_ids(&got);
    iv_append(&want, think_ids, 4);
    encode_text("ends with /no_think", &want);
    assert_ids_equal(&got, want.v, want.len);
    iv_free(&got);
    iv_free(&want);
}

static void test_reply_tokens_fixes_reply_length_after_think_block(void **state)
{
    (void)state;
    h_emu *e = START("--emu-reply-tokens", "7");
    idvec got = {0}, want = {0};
    turn(e, "hello world", "", 1, &got); /* echo: 5 ids, cycled to 7 */
    cycled_ids("hello world", 7, &want);
    assert_ids_equal(&got, want.v, want.len);
    char *text = decode_ids(got.v, got.len);
    assert_string_equal(text, THINK_TEXT "hello world/no_thinkhello world");
    free(text);
    turn(e, "x", "", 2, &got); /* echo: 4 ids, cycled to 7 */
    assert_int_equal(got.len, 4 + 7);
    iv_free(&got);
    iv_free(&want);
}

/* ---- the model continues its context ---- */

/* Stages the next /encode with the ids of text (the whole conversation, all of it the prefill). */
static void stage_context(const char *text)
{
    idvec ids = {0};
    encode_text(text, &ids);
    assert_true(tok_service_stage_encode(g_tok.svc, current_uid(), ids.v, ids.len, ids.len));
    iv_free(&ids);
}

#define HELLO_TURN "<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n"

/* Qwen3 with thinking off: the prompt ends with the empty think block, and the model answers at
 * once (no think block of its own: TTFT as on the real model). */
static void test_a_prompt_that_closed_the_think_block_gets_the_answer_at_once(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    stage_context(HELLO_TURN THINK_TEXT);
    idvec got = {0}, want = {0};
    turn(e, "ignored: the staged ids are prefilled", "", 1, &got);
    encode_text("hello world", &want);
    assert_ids_equal(&got, want.v, want.len);
    /* a prompt that leaves thinking open gets the think block first */
    stage_context(HELLO_TURN);
    turn(e, "ignored", "", 2, &got);
    iv_clear(&want);
    iv_append(&want, think_ids, 4);
    encode_text("hello world", &want);
    assert_ids_equal(&got, want.v, want.len);
    iv_free(&got);
    iv_free(&want);
}

/* A context that already holds the start of the reply (axllama's restore prefills a reply up to its
 * last id) gets the rest of it: here only the last id, then EOS. */
static void test_a_context_holding_the_start_of_the_reply_gets_the_rest(void **state)
{
    (void)state;
    h_emu *e = START_PLAIN();
    idvec reply = {0}, context = {0}, got = {0};
    encode_text("hello world", &reply);
    encode_text(HELLO_TURN THINK_TEXT, &context);
    iv_append(&context, reply.v, reply.len - 1);
    assert_true(tok_service_stage_encode(g_tok.svc, current_uid(), context.v, context.len, context.len));
    turn(e, "ignored", "", 1, &got);
    assert_ids_equal(&got, reply.v + reply.len - 1, 1);
    /* a context that does not follow the reply gets the answer alone */
    stage_context(HELLO_TURN THINK_TEXT "something else");
    turn(e, "ignored", "", 2, &got);
    assert_ids_equal(&got, reply.v, reply.len);
    iv_free(&reply);
    iv_free(&context);
    iv_free(&got);
}

/* --emu-unstable: the same greedy context gives another reply at each generation (the echo rotated
 * by the generation number), as a device whose results vary would. */
static void test_unstable_greedy_replies_differ_between_generations(void **state)
{
    (void)state;
    h_emu *e = START("--emu-unstable", "1");
    idvec first = {0}, second = {0}, echo = {0};
    stage_context(HELLO_TURN THINK_TEXT);
    turn(e, "ignored", "", 1, &first);
    stage_context(HELLO_TURN THINK_TEXT);
    turn(e, "ignored", "", 2, &second);
    encode_text("hello world", &echo);
    assert_int_equal(first.len, echo.len);
    assert_int_equal(second.len, echo.len);
    assert_memory_not_equal(first.v, second.v, first.len * sizeof *first.v);
    for (size_t i = 0; i < echo.len; i++) /* generation 2: rotated by 2 */
        assert_int_equal(second.v[i], echo.v[(i + 2) % echo.len]);
    iv_free(&first);
    iv_free(&second);
    iv_free(&echo);
}

/* ---- --emu-think-text ---- */

#define REASONING "Okay, the user says hi.\n\nI should greet them back, in 3 words. "

/* "<think>\n" TEXT "\n</think>\n\n" as ids: TEXT as the tokenizer encodes it on its own. */
static void think_block_ids(const char *text, idvec *out)
{
    iv_push(out, 151667);
    iv_push(out, 198);
    encode_text(text, out);
    iv_push(out, 198);
    iv_push(out, 151668);
    iv_push(out, 271);
}

static void test_think_text_fills_the_think_block_before_the_echo(void **state)
{
    (void)state;
    h_emu *e = START("--emu-think-text", REASONING);
    generate(e, "Say hi", "");
    wait_generations(e, 1);
    char *text = drain(e);
    assert_string_equal(text, "<think>\n" REASONING "\n</think>\n\nSay hi/no_think");
    free(text);
    idvec got = {0}, want = {0};
    last_decode_ids(&got); /* the final decode: every generated id */
    think_block_ids(REASONING, &want);
    echo_ids("Say hi", &want);
    assert_ids_equal(&got, want.v, want.len);
    /* /api/chat answers the same reply in one piece */
    post_expect(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"again\"}]}", 200,
                "{\"done\":true,\"message\":\"<think>\\n"
                "Okay, the user says hi.\\n\\nI should greet them back, "
                "in 3 words. \\n</think>\\n\\nagain/no_think\"}");
    iv_free(&got);
    iv_free(&want);
}

static void test_think_text_keeps_its_leading_and_trailing_newlines(void **state)
{
    (void)state;
    h_emu *e = START("--emu-think-text", "\n\nstep 1\n");
    generate(e, "go", "");
    wait_generations(e, 1);
    char *text = drain(e);
    assert_string_equal(text, "<think>\n\n\nstep 1\n\n</think>\n\ngo/no_think");
    free(text);
}

static void test_think_text_is_tokenized_by_one_encode_before_the_startup_reset(void **state)
{
    (void)state;
    h_tokenizer_forget(&g_tok);
    assert_true(h_emu_start_fast(&g_emu, &g_tok, (const char *const[]){"--emu-think-text", "Hmm.", NULL}));
    assert_int_equal(h_count(&g_tok, "/encode"), 1);
    char *body = h_body(&g_tok, "/encode", 0);
    strbuf want = {0};
    sb_printf(&want, "{\"img_prompt\":false,\"last_reply\":\"Hmm.\",\"text\":\"\",\"uid\":\"%s\"}", current_uid());
    assert_string_equal(body, want.data);
    free(body);
    sb_free(&want);
    /* the encode comes right before the reset, which clears what it left in the conversation */
    pthread_mutex_lock(&g_tok.lock);
    size_t enc = SIZE_MAX, reset = SIZE_MAX;
    for (size_t i = 0; i < g_tok.n_reqs; i++) {
        if (!strcmp(g_tok.reqs[i].path, "/encode"))
            enc = i;
        else if (!strcmp(g_tok.reqs[i].path, "/reset"))
            reset = i;
    }
    pthread_mutex_unlock(&g_tok.lock);
    assert_true(enc != SIZE_MAX && reset == enc + 1);
    /* the first turn's diff is only its own user block */
    h_tokenizer_forget(&g_tok);
    generate(&g_emu, "q", "");
    wait_generations(&g_emu, 1);
    char *text = drain(&g_emu);
    assert_string_equal(text, "<think>\nHmm.\n</think>\n\nq/no_think");
    free(text);
    assert_int_equal(last_logged_int(&g_emu, "input token num : "), diff_len("q"));
}

static void test_reply_tokens_count_after_the_think_text_block(void **state)
{
    (void)state;
    h_emu *e = START("--emu-think-text", REASONING, "--emu-reply-tokens", "7");
    idvec got = {0}, want = {0};
    turn(e, "hello world", "", 1, &got); /* echo: 5 ids, cycled to 7 */
    think_block_ids(REASONING, &want);
    size_t block = want.len;
    idvec cycled = {0};
    cycled_ids("hello world", 7, &cycled);
    iv_append(&want, cycled.v + 4, cycled.len - 4);
    assert_ids_equal(&got, want.v, want.len);
    assert_int_equal(got.len, block + 7);
    iv_free(&cycled);
    iv_free(&got);
    iv_free(&want);
}

/* Token 1 is still the <think>: a crash at the first echo token comes after the whole block. */
static void test_fault_token_numbers_count_the_think_text(void **state)
{
    (void)state;
    idvec block = {0};
    think_block_ids("Hmm, ok.", &block);
    char at[16];
    snprintf(at, sizeof at, "%zu", block.len + 1);
    h_emu *e = START("--emu-think-text", "Hmm, ok.", "--emu-crash-at", at);
    generate(e, "hello", "");
    assert_true(h_emu_wait(e, 10.0));
    assert_true(WIFSIGNALED(e->status) && WTERMSIG(e->status) == SIGABRT);
    char want[96];
    snprintf(want, sizeof want, "fault: crash at token %zu of generation 1", block.len + 1);
    assert_true(h_emu_log_has(e, want));
    /* every piece of 3 ids before the crash was streamed: the block's text up to there */
    size_t streamed = block.len / 3 * 3;
    size_t n = h_count(&g_tok, "/decode");
    assert_int_equal(n, streamed / 3);
    iv_free(&block);
}

/* The sampled reply depends only on --emu-seed and the generation number. */
static void test_same_seed_gives_same_sampled_reply_across_runs(void **state)
{
    (void)state;
    idvec first = {0}, second = {0}, other = {0};
    h_emu *e = START("--emu-seed", "7");
    turn(e, SAMPLING_PROMPT, "\"top-k\": 5", 1, &first);
    h_emu_kill(e);
    memset(e, 0, sizeof *e);
    e = START("--emu-seed", "7");
    turn(e, SAMPLING_PROMPT, "\"top-k\": 5", 1, &second);
    assert_ids_equal(&second, first.v, first.len);
    h_emu *e2 = start_into(&g_emu2, (const char *const[]){"--emu-seed", "8", NULL});
    turn(e2, SAMPLING_PROMPT, "\"top-k\": 5", 1, &other);
    assert_int_equal(other.len, first.len);
    assert_memory_not_equal(other.v, first.v, first.len * sizeof *first.v);
    iv_free(&first);
    iv_free(&second);
    iv_free(&other);
}

/* ---- chat racing the worker (§2.3 step 1, §2.4 step 1, §2.11) ---- */

/* A reset still queued when a chat starts is dropped silently when its turn comes. */
static void test_reset_queued_behind_running_chat_is_dropped(void **state)
{
    (void)state;
    h_emu *e = START("--emu-dispatch-delay", "0.2", "--emu-reply-tokens", "300");
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK);
    double t0 = h_now();
    h_http r = h_post(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}");
    assert_int_equal(r.status, 200);
    h_http_free(&r);
    assert_true(h_now() - t0 > 0.3);                    /* the chat outlived the reset's dispatch */
    post_expect(e, "/api/reset", "{}", 200, STATUS_OK); /* idle again: a new reset runs */
    wait_resets(e, 1);
    /* the worker's FIFO ran the dropped reset before this one: only this one reached the tokenizer */
    assert_int_equal(h_count(&g_tok, "/reset"), 1);
    assert_false(h_emu_wait_log_count(e, RESET_LINE, 2, 0.2));
}

/* A generate task picked up while a chat runs returns at once: no encode, no text. */
static void test_generate_queued_behind_running_chat_produces_nothing(void **state)
{
    (void)state;
    h_emu *e = START("--emu-dispatch-delay", "0.2", "--emu-reply-tokens", "300");
    generate(e, "queued", "");
    h_http r = h_post(e, "/api/chat", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}");
    assert_int_equal(r.status, 200);
    h_http_free(&r);
    r = h_get(e, "/api/generate_provider");
    assert_string_equal(r.body.data, IDLE);
    h_http_free(&r);
    /* a generate queued now runs after the dropped one (FIFO): the tokenizer saw the chat's encode,
     * then this one's, and nothing in between */
    generate(e, "barrier", "");
    wait_generations(e, 2);
    assert_int_equal(h_count(&g_tok, "/encode"), 2);
    char *body = h_body(&g_tok, "/encode", 0);
    assert_non_null(strstr(body, "\"text\":\"hi\""));
    free(body);
    body = h_body(&g_tok, "/encode", 1);
    assert_non_null(strstr(body, "barrier"));
    free(body);
}

/* ---- SIGINT (§4.4) ---- */

static void test_sigint_finishes_running_and_queued_tasks(void **state)
{
    (void)state;
    h_emu *e = START("--emu-dispatch-delay", "0.2", "--emu-reply-tokens", "20");
    generate(e, "one", "");
    generate(e, "two", "");
    assert_int_equal(kill(e->pid, SIGINT), 0);
    assert_true(h_emu_wait(e, 10.0));
    assert_true(WIFEXITED(e->status));
    assert_int_equal(WEXITSTATUS(e->status), 0);
    assert_int_equal(h_count(&g_tok, "/encode"), 2);
    assert_int_equal(h_emu_log_count(e, "remaining:"), 2);
}

/* ---- timing (qwen3-4b-ax650 at 1/20: chunk 58.45 ms, 11.85 ms per token) ---- */

#define AX650_CHUNK (1.169 * 0.05)
#define AX650_STEP (0.05 / 4.22)

/* Seconds from the generate answer to the first non-empty provider text; drains the rest. */
static double time_to_first_text(h_emu *e, const char *prompt, size_t k)
{
    generate(e, prompt, "");
    double t0 = h_now(), t = -1;
    for (double end = t0 + 10.0; t < 0 && h_now() < end;) {
        bool done;
        char *text = h_poll(e, &done);
        assert_non_null(text);
        if (*text)
            t = h_now() - t0;
        free(text);
    }
    assert_true(t >= 0);
    wait_generations(e, k);
    free(drain(e));
    return t;
}

/* TTFT = one prefill chunk + 2 decode steps (+ a tokenizer round trip); a turn of more than 128
 * tokens needs a second chunk. Best of three of each, so a loaded machine only adds margin. */
static void test_first_text_comes_after_one_chunk_and_two_decode_steps(void **state)
{
    (void)state;
    h_emu *e = START_AX650("--emu-reply-tokens", "6");
    char *long_prompt = repeated_words(150);
    assert_true(diff_len(long_prompt) > 128 && diff_len(long_prompt) <= 256);
    assert_true(diff_len("hello") <= 128);
    double best_short = 1e9, best_long = 1e9;
    size_t k = 0;
    for (int round = 0; round < 3; round++) {
        double s = time_to_first_text(e, "hello", ++k);
        double l = time_to_first_text(e, long_prompt, ++k);
        best_short = s < best_short ? s : best_short;
        best_long = l < best_long ? l : best_long;
    }
    free(long_prompt);
    /* The emulator sleeps, so the lower bounds are exact; the upper ones only catch a gross error
     * (a loaded machine adds to every run; the figures themselves are make bench's business). */
    double expected = AX650_CHUNK + 2 * AX650_STEP;
    assert_true(best_short >= expected - 0.001);
    assert_true(best_short < expected * 3 + 0.5);
    double extra = best_long - best_short;
    assert_true(extra > 0.5 * AX650_CHUNK);
    assert_true(extra < 3 * AX650_CHUNK + 0.5);
}

/* 4 + 60 ids: the whole run takes one chunk + 64 decode steps (63 tokens and the EOS step). */
static void test_decoding_n_tokens_takes_n_over_rate(void **state)
{
    (void)state;
    h_emu *e = START_AX650("--emu-reply-tokens", "60");
    double t0 = h_now();
    generate(e, "hello", "");
    assert_true(h_emu_wait_log_count(e, "remaining:", 1, 10.0));
    double elapsed = h_now() - t0;
    double expected = AX650_CHUNK + 64 * AX650_STEP;
    assert_true(elapsed >= expected - 0.002);
    assert_true(elapsed < expected * 1.3 + 0.1);
    idvec got = {0};
    last_decode_ids(&got);
    assert_int_equal(got.len, 64);
    iv_free(&got);
}

/* Sleep-based: a one-second generation costs the emulator little CPU time. */
static void test_emulator_sleeps_instead_of_computing(void **state)
{
    (void)state;
    h_emu *e = START_AX650("--emu-reply-tokens", "80");
    double cpu0 = h_cpu_seconds(e->pid), t0 = h_now();
    assert_true(cpu0 >= 0);
    generate(e, "hello", "");
    wait_generations(e, 1); /* watch the log, not the HTTP API, so only the run itself costs CPU */
    double cpu = h_cpu_seconds(e->pid) - cpu0, wall = h_now() - t0;
    assert_true(wall > 0.9);
    assert_true(cpu < 0.25 * wall);
}

#define T(name) cmocka_unit_test_teardown(name, emu_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_poll_right_after_generate_says_done_before_the_task_starts),
        T(test_tasks_queued_back_to_back_both_run_and_both_texts_arrive),
        T(test_abandoned_text_is_prepended_to_next_generation),
        T(test_text_queue_is_not_cleared_by_reset),
        T(test_stop_while_idle_is_lost),
        T(test_stop_while_task_only_queued_is_lost),
        T(test_stop_mid_generation_ends_stream_without_leftover_ids),
        T(test_decode_traffic_is_pieces_of_three_leftover_then_all_ids),
        T(test_encode_sends_prompt_and_previous_reply),
        T(test_chat_makes_one_encode_one_decode_and_queues_nothing),
        T(test_first_generate_without_reset_logs_first_run_and_counts_from_zero),
        T(test_precompute_len_adds_diff_and_generated_tokens_each_turn),
        T(test_reset_sets_precompute_len_to_system_block_length),
        T(test_reset_omits_empty_system_prompt_and_uses_default_block),
        T(test_turn_longer_than_aligned_remainder_gets_context_full_text),
        T(test_history_plus_turn_beyond_max_gets_context_full_text),
        T(test_failed_turns_shrink_the_budget_until_reset),
        T(test_chat_in_full_context_answers_context_full_message),
        T(test_generation_ends_silently_at_max_token_len),
        T(test_context_full_wedge_keeps_runtime_busy_forever),
        T(test_top_k_above_one_shuffles_and_stays_for_later_requests),
        T(test_top_k_one_restores_greedy),
        T(test_top_p_alone_shuffles),
        T(test_top_k_wins_over_top_p_in_one_request),
        T(test_invalid_top_k_or_top_p_disables_sampling),
        T(test_repetition_penalty_at_most_one_is_skip),
        T(test_reply_is_empty_think_block_then_echo_of_last_user_message),
        T(test_reply_tokens_fixes_reply_length_after_think_block),
        T(test_a_prompt_that_closed_the_think_block_gets_the_answer_at_once),
        T(test_a_context_holding_the_start_of_the_reply_gets_the_rest),
        T(test_unstable_greedy_replies_differ_between_generations),
        T(test_think_text_fills_the_think_block_before_the_echo),
        T(test_think_text_keeps_its_leading_and_trailing_newlines),
        T(test_think_text_is_tokenized_by_one_encode_before_the_startup_reset),
        T(test_reply_tokens_count_after_the_think_text_block),
        T(test_fault_token_numbers_count_the_think_text),
        T(test_same_seed_gives_same_sampled_reply_across_runs),
        T(test_reset_queued_behind_running_chat_is_dropped),
        T(test_generate_queued_behind_running_chat_produces_nothing),
        T(test_sigint_finishes_running_and_queued_tasks),
        T(test_first_text_comes_after_one_chunk_and_two_decode_steps),
        T(test_decoding_n_tokens_takes_n_over_rate),
        T(test_emulator_sleeps_instead_of_computing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
