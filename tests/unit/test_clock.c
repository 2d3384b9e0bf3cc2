/* Tests for common/clock: deadlines and the monotonic condition-variable wait. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/clock.h"

static void test_deadline_in_counts_from_now_and_passes(void **state)
{
    (void)state;
    double d = deadline_in(0.05);
    assert_false(deadline_passed(d));
    assert_true(deadline_left(d) > 0.0 && deadline_left(d) <= 0.05);
    clock_sleep(0.06);
    assert_true(deadline_passed(d));
    assert_true(deadline_left(d) == 0.0);
    assert_true(deadline_passed(deadline_in(-1))); /* a negative span is now */
}

static void test_timespec_splits_seconds_and_nanoseconds(void **state)
{
    (void)state;
    struct timespec ts = clock_timespec(12.25);
    assert_int_equal(ts.tv_sec, 12);
    assert_true(ts.tv_nsec >= 249999000 && ts.tv_nsec <= 250001000);
    ts = clock_timespec(-3);
    assert_int_equal(ts.tv_sec, 0);
    assert_int_equal(ts.tv_nsec, 0);
}

/* The wait's deadline is a CLOCK_MONOTONIC time (seconds since boot: small). Were the condition
 * variable on CLOCK_REALTIME (seconds since 1970: ~1.7e9), that deadline would lie decades in the
 * past and the wait would return at once; on a monotonic condition variable it lasts its span. So
 * this test fails for any wait that is not monotonic, which is what makes it immune to a wall-clock
 * step: the deadline is never compared with wall time. */
static void test_cond_wait_runs_on_the_monotonic_clock(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    clock_cond_init(&c);
    pthread_mutex_lock(&m);
    double start = clock_mono();
    bool signalled = true;
    while (signalled && clock_mono() < start + 0.1)
        signalled = clock_cond_wait_until(&c, &m, start + 0.1);
    double waited = clock_mono() - start;
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
    assert_false(signalled);
    assert_true(waited >= 0.099);
}

typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool flag;
} shared;

static void *signaller(void *arg)
{
    shared *s = arg;
    clock_sleep(0.02);
    pthread_mutex_lock(&s->m);
    s->flag = true;
    pthread_cond_signal(&s->c);
    pthread_mutex_unlock(&s->m);
    return NULL;
}

static void test_cond_wait_returns_when_signalled(void **state)
{
    (void)state;
    shared s = {.m = PTHREAD_MUTEX_INITIALIZER};
    clock_cond_init(&s.c);
    pthread_t t;
    pthread_create(&t, NULL, signaller, &s);
    double end = deadline_in(30);
    pthread_mutex_lock(&s.m);
    while (!s.flag && clock_cond_wait_until(&s.c, &s.m, end))
        ;
    bool flag = s.flag;
    pthread_mutex_unlock(&s.m);
    pthread_join(t, NULL);
    pthread_cond_destroy(&s.c);
    assert_true(flag);
    assert_false(deadline_passed(end));
}

static void test_wall_clock_is_the_epoch(void **state)
{
    (void)state;
    assert_true(clock_wall() > 1.6e9); /* after 2020 */
    assert_true(clock_mono_ns() / 1000000000ull <= (uint64_t)clock_mono() + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_in_counts_from_now_and_passes),
        cmocka_unit_test(test_timespec_splits_seconds_and_nanoseconds),
        cmocka_unit_test(test_cond_wait_runs_on_the_monotonic_clock),
        cmocka_unit_test(test_cond_wait_returns_when_signalled),
        cmocka_unit_test(test_wall_clock_is_the_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
