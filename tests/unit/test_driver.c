/* Tests for engine/driver against a scripted runtime (tiny_http) and scripted tokenizer traffic
 * (driver_saw_encode / driver_saw_decode, as the tokenizer service reports it): busy back-off, the
 * start race, how the end of a run is told from the decode calls, leftover ids, context full, stop
 * resends, stalls, failures, and one connection for a whole run.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/clock.h"
#include "engine/driver.h"
#include "net/http_client.h"
#include "tiny_http.h"

/* ---- the scripted runtime */

static atomic_int busy_left; /* "llm is running" answers still to give to reset/generate */
static atomic_bool always_busy;
static atomic_bool done;      /* what generate_provider says */
static atomic_bool full_text; /* generate_provider carries the context-full message */
static atomic_int n_generate, n_reset, n_provider, n_stop;
/* a reset prefill that takes prefill_ms: generates are refused until busy_until_ns (clock_mono_ns) */
static atomic_int prefill_ms;
static _Atomic uint64_t busy_until_ns;
static _Atomic uint64_t generate_at_ns[64]; /* when each generate came */

static size_t runtime_answer(tiny_http *t, const char *line, const char *body, char *out, size_t outlen)
{
    (void)t;
    (void)body;
    if (strstr(line, "/api/generate_provider")) {
        atomic_fetch_add(&n_provider, 1);
        char b[200];
        snprintf(b, sizeof b, "{\"done\":%s,\"response\":\"%s\"}", atomic_load(&done) ? "true" : "false",
                 atomic_load(&full_text) ? "error: SetKVCache failed: %d,the context may be full,please reset" : "");
        return tiny_answer(out, outlen, 200, b);
    }
    if (strstr(line, "/api/stop")) {
        atomic_fetch_add(&n_stop, 1);
        return tiny_answer(out, outlen, 200, "{\"status\": \"ok\"}");
    }
    bool gen = strstr(line, "/api/generate") != NULL;
    int k = atomic_fetch_add(gen ? &n_generate : &n_reset, 1);
    uint64_t now = clock_mono_ns();
    if (gen && k < 64)
        atomic_store(&generate_at_ns[k], now);
    if (atomic_load(&always_busy) || atomic_fetch_sub(&busy_left, 1) > 0 || (gen && now < atomic_load(&busy_until_ns)))
        return tiny_answer(out, outlen, 400, "{\"error\": \"llm is running\"}");
    if (!gen && atomic_load(&prefill_ms) > 0)
        atomic_store(&busy_until_ns, now + (uint64_t)atomic_load(&prefill_ms) * 1000000u);
    return tiny_answer(out, outlen, 200, "{\"status\": \"ok\"}");
}

static tiny_http rt;

static rt_driver *new_driver(double busy_timeout, double stall, double grace)
{
    rt_driver_config cfg = {.busy_timeout_s = busy_timeout, .stall_timeout_s = stall, .stop_grace_s = grace};
    rt_driver *d = driver_new(&cfg);
    driver_attach(d, rt.port);
    return d;
}

static int before_each(void **state)
{
    (void)state;
    atomic_store(&busy_left, 0);
    atomic_store(&always_busy, false);
    atomic_store(&done, false);
    atomic_store(&full_text, false);
    atomic_store(&n_generate, 0);
    atomic_store(&n_reset, 0);
    atomic_store(&n_provider, 0);
    atomic_store(&n_stop, 0);
    atomic_store(&prefill_ms, 0);
    atomic_store(&busy_until_ns, 0);
    tiny_start(&rt, runtime_answer);
    return 0;
}

static int after_each(void **state)
{
    (void)state;
    tiny_stop(&rt);
    return 0;
}

static void decode(rt_driver *d, const int32_t *ids, size_t n)
{
    driver_saw_decode(d, ids, n);
}

/* The next event within 5 s; its ids compared with want (n_want ids). */
static void expect_event(rt_driver *d, run_event_kind kind, const int32_t *want, size_t n_want)
{
    run_event ev;
    run_event_kind got = driver_next(d, &ev, deadline_in(5));
    assert_int_equal(got, kind);
    if (want) {
        assert_int_equal(ev.ids.len, n_want);
        assert_memory_equal(ev.ids.v, want, n_want * sizeof *want);
    }
    run_event_free(&ev);
}

static void test_a_busy_runtime_is_retried_with_back_off_until_it_accepts(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    atomic_store(&busy_left, 5);
    assert_int_equal(driver_reset(d, "sys", -1), DRV_OK);
    assert_int_equal(atomic_load(&n_reset), 6);
    atomic_store(&busy_left, 3);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    assert_int_equal(atomic_load(&n_generate), 4);
    driver_end_run(d);
    driver_free(d);
}

/* Generates that came between from_s and to_s after the reset (reset_ns), among the first n. */
static int generates_between(uint64_t reset_ns, int n, double from_s, double to_s)
{
    int count = 0;
    for (int i = 0; i < n && i < 64; i++) {
        double at = (double)(atomic_load(&generate_at_ns[i]) - reset_ns) / 1e9;
        count += at > from_s && at < to_s;
    }
    return count;
}

/* A reset prefilling 256 tokens (2 chunks) for 1 s: the first generate after it learns the pace with
 * the back-off (calls 5, 15, 35, 75, 155, 315, 565 ms ... after the reset); the next reset's generate
 * asks once, then waits out most of the prefill: no call between 50 ms and 0.8 s. */
static void test_the_generate_after_a_reset_waits_out_the_prefill_at_the_pace_seen(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    atomic_store(&prefill_ms, 1000);
    for (int round = 0; round < 2; round++) {
        atomic_store(&n_generate, 0);
        uint64_t reset_ns = clock_mono_ns();
        assert_int_equal(driver_reset(d, "sys", 256), DRV_OK);
        assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
        driver_saw_encode(d, -1);
        atomic_store(&done, true);
        const int32_t all[] = {1, 2, 3, 4};
        decode(d, all, 4); /* the final decode */
        expect_event(d, RUN_PIECE, all, 4);
        expect_event(d, RUN_END, all, 4);
        driver_end_run(d);
        atomic_store(&done, false);
        int n = atomic_load(&n_generate);
        int early = generates_between(reset_ns, n, 0.05, 0.8);
        if (round == 0)
            assert_true(early >= 3); /* the back-off, knowing nothing yet */
        else
            assert_int_equal(early, 0);                             /* the pace learnt: one wait */
        assert_true(generates_between(reset_ns, n, 0.95, 60) >= 1); /* accepted once the prefill was over */
    }
    driver_free(d);
}

/* 0.5 s of "llm is running": a 5 ms poller would have made ~100 calls; the back-off makes a handful. */
static void test_a_runtime_busy_past_the_timeout_is_reported_busy_after_few_calls(void **state)
{
    (void)state;
    rt_driver *d = new_driver(0.5, 0, 0);
    atomic_store(&always_busy, true);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_BUSY);
    assert_true(atomic_load(&n_generate) >= 3);
    assert_true(atomic_load(&n_generate) <= 12);
    driver_free(d);
}

static void test_pieces_then_the_final_decode_end_the_run_without_polling(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    const int32_t a[] = {1, 2, 3}, b[] = {4, 5, 6}, all[] = {1, 2, 3, 4, 5, 6, 7};
    decode(d, a, 3);
    decode(d, b, 3);
    expect_event(d, RUN_PIECE, a, 3);
    expect_event(d, RUN_PIECE, b, 3);
    atomic_store(&done, true);
    decode(d, all, 7);                      /* the final decode: every generated id */
    expect_event(d, RUN_PIECE, all + 6, 1); /* the id never streamed */
    expect_event(d, RUN_END, all, 7);
    assert_true(atomic_load(&n_provider) <= 3); /* confirmed, not polled for */
    driver_end_run(d);
    driver_free(d);
}

static void test_done_before_the_runtime_took_the_turn_is_ignored(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    atomic_store(&done, true); /* a queued task looks done (§2.5) */
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    run_event ev;
    assert_int_equal(driver_next(d, &ev, deadline_in(1.3)), RUN_NONE); /* one watchdog poll saw done:true */
    assert_true(atomic_load(&n_provider) >= 1);
    driver_saw_encode(d, -1);
    const int32_t a[] = {7, 8};
    decode(d, a, 2);
    decode(d, a, 2);
    expect_event(d, RUN_PIECE, a, 2);
    expect_event(d, RUN_END, a, 2);
    driver_end_run(d);
    driver_free(d);
}

static void test_a_run_without_a_decode_call_is_a_full_context(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    atomic_store(&full_text, true);
    atomic_store(&done, true);
    driver_saw_encode(d, 12);
    run_event ev;
    assert_int_equal(driver_next(d, &ev, deadline_in(5)), RUN_END);
    assert_true(ev.context_full);
    assert_int_equal(ev.ids.len, 0);
    assert_int_equal(ev.prefilled, 12);
    run_event_free(&ev);
    driver_end_run(d);
    driver_free(d);
}

static void test_a_repeated_piece_is_not_taken_for_the_end(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    const int32_t a[] = {1, 2, 3}, b[] = {4, 5, 6}, all[] = {1, 2, 3, 1, 2, 3, 4, 5, 6};
    decode(d, a, 3);
    expect_event(d, RUN_PIECE, a, 3);
    decode(d, a, 3); /* equal to everything streamed: maybe the final decode */
    run_event ev;
    assert_int_equal(driver_next(d, &ev, deadline_in(0.3)), RUN_NONE); /* done:false: not the end */
    decode(d, b, 3);
    expect_event(d, RUN_PIECE, a, 3); /* it was a piece */
    expect_event(d, RUN_PIECE, b, 3);
    atomic_store(&done, true);
    decode(d, all, 9);
    expect_event(d, RUN_END, all, 9);
    driver_end_run(d);
    driver_free(d);
}

static void test_a_stop_is_repeated_until_the_run_ends_and_the_leftover_ids_come_last(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    const int32_t a[] = {1, 2, 3}, all[] = {1, 2, 3, 4, 5};
    decode(d, a, 3);
    expect_event(d, RUN_PIECE, a, 3);
    driver_request_stop(d);
    run_event ev;
    assert_int_equal(driver_next(d, &ev, deadline_in(1.2)), RUN_NONE); /* the stop was lost (§2.7) */
    assert_true(atomic_load(&n_stop) >= 2);
    atomic_store(&done, true);
    decode(d, all, 5);
    expect_event(d, RUN_PIECE, all + 3, 2);
    expect_event(d, RUN_END, all, 5);
    driver_end_run(d);
    driver_free(d);
}

static void test_a_runtime_that_does_not_stop_fails_the_run(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0.3);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    driver_request_stop(d);
    run_event ev;
    assert_int_equal(driver_next(d, &ev, deadline_in(5)), RUN_FAILED);
    assert_int_equal(ev.failure, DRV_FAIL_STOP);
    assert_string_equal(ev.error, "the runtime did not stop");
    run_event_free(&ev);
    driver_end_run(d);
    driver_free(d);
}

static void test_no_progress_for_the_stall_timeout_is_a_hung_runtime(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0.3, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    run_event ev;
    assert_int_equal(driver_next(d, &ev, deadline_in(5)), RUN_FAILED);
    assert_int_equal(ev.failure, DRV_FAIL_HUNG);
    assert_non_null(strstr(ev.error, "stopped answering"));
    run_event_free(&ev);
    driver_end_run(d);
    driver_free(d);
}

typedef struct {
    rt_driver *d;
    bool interrupt;
} poke;

static void *poke_later(void *arg)
{
    poke *p = arg;
    clock_sleep(0.1);
    if (p->interrupt)
        driver_interrupt(p->d);
    else
        driver_fail_run(p->d, DRV_FAIL_DIED, "the runtime exited");
    return NULL;
}

static void test_a_failure_noted_by_another_thread_ends_the_run_at_once(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    poke p = {.d = d};
    pthread_t t;
    pthread_create(&t, NULL, poke_later, &p);
    run_event ev;
    double start = clock_mono();
    assert_int_equal(driver_next(d, &ev, deadline_in(30)), RUN_FAILED);
    assert_true(clock_mono() - start < 10); /* woken, not timed out */
    assert_int_equal(ev.failure, DRV_FAIL_DIED);
    assert_string_equal(ev.error, "the runtime exited");
    run_event_free(&ev);
    pthread_join(t, NULL);
    driver_end_run(d);
    driver_free(d);
}

static void test_an_interrupt_wakes_a_waiting_next(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    poke p = {.d = d, .interrupt = true};
    pthread_t t;
    pthread_create(&t, NULL, poke_later, &p);
    run_event ev;
    double start = clock_mono();
    assert_int_equal(driver_next(d, &ev, deadline_in(30)), RUN_NONE);
    assert_true(clock_mono() - start < 10);
    pthread_join(t, NULL);
    driver_end_run(d);
    driver_free(d);
}

static void test_tokenizer_traffic_outside_a_run_is_ignored(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    const int32_t stale[] = {9, 9, 9}, a[] = {1, 2};
    decode(d, stale, 3); /* before the run */
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    decode(d, a, 2);
    expect_event(d, RUN_PIECE, a, 2);
    atomic_store(&done, true);
    decode(d, a, 2);
    expect_event(d, RUN_END, a, 2);
    driver_end_run(d);
    driver_free(d);
}

static void test_a_whole_run_uses_one_connection(void **state)
{
    (void)state;
    rt_driver *d = new_driver(10, 0, 0);
    atomic_store(&busy_left, 3);
    assert_int_equal(driver_reset(d, "sys", -1), DRV_OK);
    assert_int_equal(driver_start(d, "hi", NULL), DRV_OK);
    driver_saw_encode(d, -1);
    int32_t ids[300];
    for (int i = 0; i < 300; i++)
        ids[i] = i;
    for (int i = 0; i < 300; i += 3) {
        decode(d, ids + i, 3);
        expect_event(d, RUN_PIECE, ids + i, 3);
    }
    driver_request_stop(d);
    atomic_store(&done, true);
    decode(d, ids, 300);
    expect_event(d, RUN_END, ids, 300);
    driver_end_run(d);
    assert_int_equal(atomic_load(&rt.accepts), 1);
    assert_int_equal(driver_connects(d), 1);
    assert_true(driver_calls(d) >= 6);
    driver_free(d);
}

int main(void)
{
    http_client_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_busy_runtime_is_retried_with_back_off_until_it_accepts, before_each,
                                        after_each),
        cmocka_unit_test_setup_teardown(test_the_generate_after_a_reset_waits_out_the_prefill_at_the_pace_seen,
                                        before_each, after_each),
        cmocka_unit_test_setup_teardown(test_a_runtime_busy_past_the_timeout_is_reported_busy_after_few_calls,
                                        before_each, after_each),
        cmocka_unit_test_setup_teardown(test_pieces_then_the_final_decode_end_the_run_without_polling, before_each,
                                        after_each),
        cmocka_unit_test_setup_teardown(test_done_before_the_runtime_took_the_turn_is_ignored, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_a_run_without_a_decode_call_is_a_full_context, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_a_repeated_piece_is_not_taken_for_the_end, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_a_stop_is_repeated_until_the_run_ends_and_the_leftover_ids_come_last,
                                        before_each, after_each),
        cmocka_unit_test_setup_teardown(test_a_runtime_that_does_not_stop_fails_the_run, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_no_progress_for_the_stall_timeout_is_a_hung_runtime, before_each,
                                        after_each),
        cmocka_unit_test_setup_teardown(test_a_failure_noted_by_another_thread_ends_the_run_at_once, before_each,
                                        after_each),
        cmocka_unit_test_setup_teardown(test_an_interrupt_wakes_a_waiting_next, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_tokenizer_traffic_outside_a_run_is_ignored, before_each, after_each),
        cmocka_unit_test_setup_teardown(test_a_whole_run_uses_one_connection, before_each, after_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
