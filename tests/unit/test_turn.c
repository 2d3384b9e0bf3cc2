/* Tests for engine/turn with a fake runtime (scripted run events) and a fake staging seam: what is
 * staged for a reset and for a continued turn, pieces to job events (content, thinking, tool calls),
 * num_predict and stop sequences ending the run with a stop, the counts and the done reason, refusals,
 * a full context, driver failures, a cancelled job, and compatibility mode (nothing staged). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/clock.h"
#include "engine/job.h"
#include "engine/turn.h"

static tokenizer *tok;

/* ---- the fake runtime: a script of events */

#define MAX_STEPS 32
typedef struct {
    drv_status reset_status, start_status;
    run_event script[MAX_STEPS];
    size_t n_script, next;
    int resets, starts, stops, ends;
    char reset_system[64], prompt[128];
    long reset_tokens; /* what the turn told the reset of its prefill */
    size_t stop_after; /* the script index at which the first stop was requested */
} fake_runtime;

static drv_status fake_reset(void *rt, const char *system_prompt, long prefill_tokens)
{
    fake_runtime *f = rt;
    f->resets++;
    f->reset_tokens = prefill_tokens;
    snprintf(f->reset_system, sizeof f->reset_system, "%s", system_prompt ? system_prompt : "");
    return f->reset_status;
}

static drv_status fake_start(void *rt, const char *prompt, const drv_sampling *s)
{
    (void)s;
    fake_runtime *f = rt;
    f->starts++;
    snprintf(f->prompt, sizeof f->prompt, "%s", prompt ? prompt : "");
    return f->start_status;
}

static run_event_kind fake_next(void *rt, run_event *ev, double deadline)
{
    (void)deadline;
    fake_runtime *f = rt;
    memset(ev, 0, sizeof *ev);
    if (f->next >= f->n_script)
        return RUN_NONE;
    const run_event *s = &f->script[f->next++];
    *ev = *s;
    ev->ids = (idvec){0};
    iv_append(&ev->ids, s->ids.v, s->ids.len);
    return ev->kind;
}

static void fake_request_stop(void *rt)
{
    fake_runtime *f = rt;
    if (!f->stops++)
        f->stop_after = f->next;
}

static void fake_end(void *rt)
{
    fake_runtime *f = rt;
    f->ends++;
}

static void script_piece(fake_runtime *f, const char *text)
{
    run_event *ev = &f->script[f->n_script++];
    *ev = (run_event){.kind = RUN_PIECE};
    tokenizer_encode(tok, text, strlen(text), &ev->ids);
}

/* END with every id of the pieces so far (plus extra text, never streamed) */
static void script_end(fake_runtime *f, const char *extra)
{
    run_event *ev = &f->script[f->n_script++];
    *ev = (run_event){.kind = RUN_END, .prefilled = -1};
    for (size_t i = 0; i + 1 < f->n_script; i++)
        if (f->script[i].kind == RUN_PIECE)
            iv_append(&ev->ids, f->script[i].ids.v, f->script[i].ids.len);
    if (extra)
        tokenizer_encode(tok, extra, strlen(extra), &ev->ids);
}

static void script_event(fake_runtime *f, run_event ev)
{
    f->script[f->n_script++] = ev;
}

static void fake_free(fake_runtime *f)
{
    for (size_t i = 0; i < f->n_script; i++)
        run_event_free(&f->script[i]);
}

/* ---- the fake staging seam */

typedef struct {
    bool refuse;
    int resets, encodes, clears;
    idvec reset_ids, full;
    size_t n_diff;
    char uid[48];
} fake_staging;

static bool fake_stage_reset(void *svc, const char *uid, const int32_t *ids, size_t n)
{
    fake_staging *s = svc;
    s->resets++;
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    iv_clear(&s->reset_ids);
    iv_append(&s->reset_ids, ids, n);
    return !s->refuse;
}

static bool fake_stage_encode(void *svc, const char *uid, const int32_t *full, size_t n_full, size_t n_diff)
{
    fake_staging *s = svc;
    s->encodes++;
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    iv_clear(&s->full);
    iv_append(&s->full, full, n_full);
    s->n_diff = n_diff;
    return !s->refuse;
}

static bool fake_clear_staged(void *svc, const char *uid)
{
    (void)uid;
    fake_staging *s = svc;
    s->clears++;
    return true;
}

/* ---- fixtures */

static model_manifest manifest;

typedef struct {
    fake_runtime rt;
    fake_staging st;
    turn_runtime rti;
    turn_staging sti;
    idvec reset_ids, held, diff;
    turn_plan plan;
    job *j;
    turn_outcome out;
} fixture;

static void fixture_init(fixture *x, const job_request *req)
{
    memset(x, 0, sizeof *x);
    x->rti = (turn_runtime){fake_reset, fake_start, fake_next, fake_request_stop, fake_end, &x->rt};
    x->sti = (turn_staging){fake_stage_reset, fake_stage_encode, fake_clear_staged, &x->st};
    const int32_t r[] = {10, 11}, h[] = {20, 21, 22}, d[] = {30, 31, 32};
    iv_append(&x->reset_ids, r, 2);
    iv_append(&x->held, h, 3);
    iv_append(&x->diff, d, 3);
    x->plan = (turn_plan){.reset = false,
                          .reset_system = "(staged)",
                          .prompt = "hello",
                          .staged = true,
                          .uid = "uid-1",
                          .reset_ids = &x->reset_ids,
                          .held_ids = &x->held,
                          .diff = &x->diff,
                          .max_positions = 2559};
    job_request plain = {.kind = JOB_CHAT, .model = "m"};
    x->j = job_new(req ? req : &plain, &manifest, req && req->think == 1 ? 1 : 0);
}

static void fixture_free(fixture *x)
{
    turn_outcome_free(&x->out);
    fake_free(&x->rt);
    iv_free(&x->st.reset_ids);
    iv_free(&x->st.full);
    iv_free(&x->reset_ids);
    iv_free(&x->held);
    iv_free(&x->diff);
    job_unref(x->j);
    job_unref(x->j);
}

static turn_result run(fixture *x)
{
    return turn_run(&x->plan, x->j, tok, &x->rti, &x->sti, &x->out);
}

/* The job's queued events of kind, concatenated (text, or tool names). */
static void collect_events(job *j, job_event_kind kind, strbuf *out, int *count)
{
    job_event ev;
    *count = 0;
    while (job_next(j, &ev, 0)) {
        if (ev.kind == kind) {
            (*count)++;
            sb_puts(out, kind == JOB_EV_TOOL_CALL ? ev.tool_name : ev.text);
        }
        job_event_free(&ev);
    }
}

/* ---- tests */

static void test_a_reset_turn_stages_the_system_block_and_the_whole_prompt(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    x.plan.reset = true;
    script_piece(&x.rt, "Hi");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    assert_int_equal(x.st.resets, 1);
    assert_int_equal(x.st.reset_ids.len, 2);
    assert_int_equal(x.st.encodes, 1);
    const int32_t want[] = {10, 11, 30, 31, 32};
    assert_int_equal(x.st.full.len, 5);
    assert_memory_equal(x.st.full.v, want, sizeof want);
    assert_int_equal(x.st.n_diff, 3);
    assert_string_equal(x.st.uid, "uid-1");
    assert_int_equal(x.out.metrics.prompt_eval_count, 5); /* the system block was prefilled too */
    assert_int_equal(x.out.metrics.prompt_tokens, 5);
    assert_int_equal(x.rt.resets, 1);
    assert_string_equal(x.rt.reset_system, "(staged)");
    assert_int_equal(x.rt.reset_tokens, 2); /* the driver paces its wait for the prefill by it */
    assert_string_equal(x.rt.prompt, "hello");
    assert_int_equal(x.rt.ends, 1);
    assert_int_equal(x.st.clears, 0);
    fixture_free(&x);
}

static void test_a_continued_turn_stages_the_held_ids_and_the_diff_without_a_reset(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    script_piece(&x.rt, "Hi");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    assert_int_equal(x.st.resets, 0);
    assert_int_equal(x.rt.resets, 0);
    const int32_t want[] = {20, 21, 22, 30, 31, 32};
    assert_int_equal(x.st.full.len, 6);
    assert_memory_equal(x.st.full.v, want, sizeof want);
    assert_int_equal(x.out.metrics.prompt_eval_count, 3); /* only the new part: the rest was cached */
    assert_int_equal(x.out.metrics.prompt_tokens, 6);
    fixture_free(&x);
}

static void test_pieces_reach_the_job_as_content_with_exact_counts(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    script_piece(&x.rt, "Hello");
    script_piece(&x.rt, " world");
    script_end(&x.rt, NULL);
    size_t n_ids = x.rt.script[0].ids.len + x.rt.script[1].ids.len;
    assert_int_equal(run(&x), TURN_OK);
    strbuf content = {0};
    int n;
    collect_events(x.j, JOB_EV_CONTENT, &content, &n);
    assert_string_equal(content.data, "Hello world");
    assert_string_equal(x.out.content, "Hello world");
    assert_string_equal(x.out.done_reason, "stop");
    assert_true(x.out.eos);
    assert_int_equal(x.out.metrics.eval_count, (int)n_ids);
    assert_int_equal(x.out.metrics.prompt_eval_count, 3);
    assert_int_equal(x.out.generated.len, n_ids);
    assert_int_equal(x.rt.stops, 0);
    sb_free(&content);
    fixture_free(&x);
}

static void test_num_predict_stops_the_runtime_and_reports_length(void **state)
{
    (void)state;
    job_request req = {.kind = JOB_CHAT, .model = "m", .options = {.has_num_predict = true, .num_predict = 1}};
    fixture x;
    fixture_init(&x, &req);
    script_piece(&x.rt, "one two three");
    script_end(&x.rt, " four");
    assert_int_equal(run(&x), TURN_OK);
    assert_int_equal(x.rt.stops, 1);
    assert_int_equal(x.rt.stop_after, 1); /* right after the piece that reached the limit */
    assert_string_equal(x.out.done_reason, "length");
    assert_false(x.out.eos);
    assert_int_equal(x.out.metrics.eval_count, 1);
    strbuf content = {0};
    int n;
    collect_events(x.j, JOB_EV_CONTENT, &content, &n);
    assert_string_equal(content.data, "one");
    sb_free(&content);
    fixture_free(&x);
}

static void test_a_stop_sequence_cuts_the_reply_and_stops_the_runtime(void **state)
{
    (void)state;
    char *stop[] = {"wor"};
    job_request req = {.kind = JOB_CHAT, .model = "m", .options = {.stop = stop, .n_stop = 1}};
    fixture x;
    fixture_init(&x, &req);
    script_piece(&x.rt, "Hello world");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    assert_int_equal(x.rt.stops, 1);
    assert_string_equal(x.out.done_reason, "stop");
    assert_false(x.out.eos);
    assert_string_equal(x.out.content, "Hello ");
    fixture_free(&x);
}

static void test_a_refused_reset_fails_the_turn_and_clears_the_stage(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    x.plan.reset = true;
    x.rt.reset_status = DRV_BUSY;
    assert_int_equal(run(&x), TURN_FAILED);
    assert_true(x.out.wedged);
    assert_string_equal(x.out.error, "the runtime refused the reset (it stays busy)");
    assert_int_equal(x.rt.starts, 0);
    assert_int_equal(x.rt.ends, 0);
    assert_int_equal(x.st.clears, 1);
    fixture_free(&x);
}

static void test_a_generation_refused_with_an_error_is_not_wedged_but_no_answer_is(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    x.rt.start_status = DRV_REJECTED;
    assert_int_equal(run(&x), TURN_FAILED);
    assert_false(x.out.wedged);
    assert_string_equal(x.out.error, "the runtime refused the generation (error)");
    fixture_free(&x);
    fixture_init(&x, NULL);
    x.rt.start_status = DRV_DOWN;
    assert_int_equal(run(&x), TURN_FAILED);
    assert_true(x.out.wedged);
    assert_string_equal(x.out.error, "the runtime refused the generation (no answer)");
    assert_int_equal(x.st.clears, 1);
    fixture_free(&x);
}

static void test_a_full_context_is_reported_and_clears_the_stage(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    script_event(&x.rt, (run_event){.kind = RUN_END, .context_full = true, .prefilled = -1});
    assert_int_equal(run(&x), TURN_CONTEXT_FULL);
    assert_int_equal(x.st.clears, 1);
    assert_int_equal(x.rt.ends, 1);
    fixture_free(&x);
}

static void test_driver_failures_fail_the_turn_and_a_hang_asks_for_a_restart(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    run_event died = {.kind = RUN_FAILED, .failure = DRV_FAIL_DIED};
    snprintf(died.error, sizeof died.error, "the runtime exited");
    script_event(&x.rt, died);
    assert_int_equal(run(&x), TURN_FAILED);
    assert_string_equal(x.out.error, "the runtime exited");
    assert_int_equal(x.out.failure, DRV_FAIL_DIED);
    assert_false(x.out.wedged);
    assert_int_equal(x.rt.ends, 1);
    fixture_free(&x);

    fixture_init(&x, NULL);
    run_event hung = {.kind = RUN_FAILED, .failure = DRV_FAIL_HUNG};
    script_event(&x.rt, hung);
    assert_int_equal(run(&x), TURN_FAILED);
    assert_true(x.out.wedged);
    fixture_free(&x);
}

static void test_a_cancelled_job_stops_the_runtime_at_once(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    job_cancel(x.j);
    script_piece(&x.rt, "Hi");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    assert_int_equal(x.rt.stops, 1);
    assert_int_equal(x.rt.stop_after, 0);
    assert_false(x.out.eos);
    fixture_free(&x);
}

static void test_a_shutting_down_server_stops_the_runtime(void **state)
{
    (void)state;
    atomic_bool down = true;
    fixture x;
    fixture_init(&x, NULL);
    x.plan.shutting_down = &down;
    script_end(&x.rt, "Hi");
    run(&x);
    assert_int_equal(x.rt.stops, 1);
    fixture_free(&x);
}

static void test_tool_calls_become_events_and_are_kept_for_the_session(void **state)
{
    (void)state;
    const char *tools[] = {"{\"type\": \"function\"}"};
    job_request req = {.kind = JOB_CHAT, .model = "m", .tools_json = tools, .n_tools = 1};
    fixture x;
    fixture_init(&x, &req);
    script_piece(&x.rt, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    strbuf names = {0};
    int n;
    collect_events(x.j, JOB_EV_TOOL_CALL, &names, &n);
    assert_int_equal(n, 1);
    assert_string_equal(names.data, "get_weather");
    assert_int_equal(x.out.n_calls, 1);
    assert_string_equal(x.out.calls[0].arguments_json, "{\"city\":\"Paris\"}");
    assert_string_equal(x.out.content, "");
    sb_free(&names);
    fixture_free(&x);
}

static void test_thinking_comes_as_thinking_events(void **state)
{
    (void)state;
    job_request req = {.kind = JOB_CHAT, .model = "m", .think = 1};
    fixture x;
    fixture_init(&x, &req);
    script_piece(&x.rt, "<think>\nLet me see.\n</think>\n\nFour.");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    strbuf thinking = {0};
    int n;
    collect_events(x.j, JOB_EV_THINKING, &thinking, &n);
    assert_string_equal(thinking.data, "Let me see.");
    assert_string_equal(x.out.content, "Four.");
    sb_free(&thinking);
    fixture_free(&x);
}

static void test_without_the_runtimes_uid_nothing_is_staged_or_run(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    x.plan.uid = "";
    assert_int_equal(run(&x), TURN_FAILED);
    assert_string_equal(x.out.error, "the runtime did not register with the tokenizer service");
    assert_int_equal(x.st.encodes, 0);
    assert_int_equal(x.rt.starts, 0);
    fixture_free(&x);
}

static void test_compatibility_mode_stages_nothing_and_counts_the_upstreams_diff(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    x.plan.staged = false;
    x.plan.reset = true;
    x.plan.reset_system = "You are helpful.";
    script_piece(&x.rt, "Hi");
    script_end(&x.rt, NULL);
    x.rt.script[1].prefilled = 17;
    assert_int_equal(run(&x), TURN_OK);
    assert_int_equal(x.st.resets + x.st.encodes + x.st.clears, 0);
    assert_string_equal(x.rt.reset_system, "You are helpful.");
    assert_int_equal(x.rt.reset_tokens, -1); /* the upstream's system block: its length is not known */
    assert_int_equal(x.out.metrics.prompt_eval_count, 17);
    fixture_free(&x);
}

static void test_a_reply_that_reaches_the_last_position_ends_with_length(void **state)
{
    (void)state;
    fixture x;
    fixture_init(&x, NULL);
    x.plan.max_positions = 8; /* held 3 + diff 3 + 2 generated = the end */
    script_piece(&x.rt, "Hello world");
    script_end(&x.rt, NULL);
    assert_int_equal(run(&x), TURN_OK);
    assert_string_equal(x.out.done_reason, "length");
    assert_false(x.out.eos);
    fixture_free(&x);
}

static int group_setup(void **state)
{
    (void)state;
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    char err[256];
    tok = dir ? tokenizer_load(dir, err, sizeof err) : NULL;
    if (!tok) {
        fprintf(stderr, "cannot load the tokenizer (AXLLAMA_TOKENIZER_DIR=%s)\n", dir ? dir : "(unset)");
        return -1;
    }
    manifest.name = "m";
    manifest.max_positions = 2559;
    manifest.max_prefill = 2048;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tokenizer_free(tok);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_reset_turn_stages_the_system_block_and_the_whole_prompt),
        cmocka_unit_test(test_a_continued_turn_stages_the_held_ids_and_the_diff_without_a_reset),
        cmocka_unit_test(test_pieces_reach_the_job_as_content_with_exact_counts),
        cmocka_unit_test(test_num_predict_stops_the_runtime_and_reports_length),
        cmocka_unit_test(test_a_stop_sequence_cuts_the_reply_and_stops_the_runtime),
        cmocka_unit_test(test_a_refused_reset_fails_the_turn_and_clears_the_stage),
        cmocka_unit_test(test_a_generation_refused_with_an_error_is_not_wedged_but_no_answer_is),
        cmocka_unit_test(test_a_full_context_is_reported_and_clears_the_stage),
        cmocka_unit_test(test_driver_failures_fail_the_turn_and_a_hang_asks_for_a_restart),
        cmocka_unit_test(test_a_cancelled_job_stops_the_runtime_at_once),
        cmocka_unit_test(test_a_shutting_down_server_stops_the_runtime),
        cmocka_unit_test(test_tool_calls_become_events_and_are_kept_for_the_session),
        cmocka_unit_test(test_thinking_comes_as_thinking_events),
        cmocka_unit_test(test_without_the_runtimes_uid_nothing_is_staged_or_run),
        cmocka_unit_test(test_compatibility_mode_stages_nothing_and_counts_the_upstreams_diff),
        cmocka_unit_test(test_a_reply_that_reaches_the_last_position_ends_with_length),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
