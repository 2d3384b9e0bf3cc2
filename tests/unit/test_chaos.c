/* Chaos test of `axllama serve` on axllama-emu (issue 9): the runtime is killed mid-stream over and over
 * (SIGKILL; every fifth round it is stopped with SIGSTOP instead, which the liveness probe must notice)
 * and after each round: the client got an error line (or a proper end) within seconds, never a hang; the
 * next request succeeds (the recovery time is measured); at the end the server holds no more file
 * descriptors or threads than after the first round, its memory stayed bounded, and it left no zombie.
 * CHAOS_ITERATIONS rounds (default 20; `make chaos` runs 100). */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>
#include <stdatomic.h>

/* the harness first: the others use it */
/* clang-format off */
#include "serve_harness.h"
#include "server_fixture.h"
#include "proc_watch.h"
/* clang-format on */

#define DEFAULT_ITERATIONS 20
#define STOP_EVERY 5          /* every fifth round stops the runtime instead of killing it */
#define STREAM_END_MAX_S 10.0 /* after the fault, the stream must end within this */
/* AddressSanitizer keeps freed memory in quarantine (up to 256 MiB): a server built with it (make
 * test-sanitize builds both) grows without leaking. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif
#ifdef ASAN_BUILD
#define RSS_GROWTH_MAX_KB (256 * 1024)
#else
#define RSS_GROWTH_MAX_KB (32 * 1024)
#endif
#define SPARE_FDS 4 /* connections of the test still closing */
#define SPARE_THREADS 4

static int iterations(void)
{
    const char *v = getenv("CHAOS_ITERATIONS");
    int n = v ? atoi(v) : DEFAULT_ITERATIONS;
    return n > 0 ? n : DEFAULT_ITERATIONS;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A short chat, retried while the runtime comes back (a 503 while it restarts); returns true when
 * it succeeded within timeout_s. */
static bool chat_until_ok(h_server *s, double timeout_s)
{
    for (double end = h_now() + timeout_s; h_now() < end;) {
        h_http r = h_srv(s, "POST", "/api/chat",
                         "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":8},\"messages\":[{\"role\":"
                         "\"user\",\"content\":\"are you back?\"}]}");
        bool ok = r.status == 200 && strstr(r.body.data, "\"done\":true");
        h_http_free(&r);
        if (ok)
            return true;
        h_sleep(0.1);
    }
    return false;
}

/* Waits until the server's threads are down to at most want (connection threads end a moment after
 * their connection); returns the count seen last. */
static size_t settled_threads(pid_t pid, size_t want)
{
    size_t n = pw_threads(pid);
    for (double end = h_now() + 5; n > want && h_now() < end; h_sleep(0.05))
        n = pw_threads(pid);
    return n;
}

static size_t settled_fds(pid_t pid, size_t want)
{
    size_t n = pw_fds(pid);
    for (double end = h_now() + 5; n > want && h_now() < end; h_sleep(0.05))
        n = pw_fds(pid);
    return n;
}

static void test_the_runtime_killed_mid_stream_again_and_again(void **state)
{
    (void)state;
    int rounds = iterations();
    h_server s;
    h_server_dir(&s);
    const char *args[] = {"--emu-reply-tokens", "3000", NULL}; /* ~6 s of reply: killed long before its end */
    h_write_manifest(s.dir, "m", args, NULL);
    const char *env[] = {"AXLLAMA_RUNTIME_PROBE=0.2s", NULL};
    bool started = h_server_start(&s, env);
    current = s;
    assert_true(started);
    assert_true(chat_until_ok(&s, 30)); /* loaded and warm */

    size_t fds0 = pw_fds(s.pid), threads0 = settled_threads(s.pid, 0);
    long rss0 = pw_status_kb(s.pid, "VmRSS");
    double *recovery = xcalloc((size_t)rounds, sizeof *recovery);
    double *stream_end = xcalloc((size_t)rounds, sizeof *stream_end);
    int error_lines = 0, proper_ends = 0;
    for (int i = 0; i < rounds; i++) {
        bool stop = (i + 1) % STOP_EVERY == 0;
        pid_t rt = h_runtime_pid(&s);
        assert_true(rt > 0);
        pw_stream st;
        pw_stream_start(&st, s.port, "/api/chat",
                        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"tell me a long story\"}]}",
                        60);
        if (!pw_stream_wait_first(&st, 20)) {
            pw_stream_join(&st);
            fail_msg("round %d: no first bytes (status %ld: %s)", i, st.status, st.got.data);
        }
        kill(rt, stop ? SIGSTOP : SIGKILL);
        double fault = h_now();
        pw_stream_join(&st);
        if (stop)
            kill(rt, SIGCONT); /* if the supervisor has not killed it yet; it was reaped otherwise */
        stream_end[i] = st.t_end - fault;
        json_t *last = pw_last_line(&st.got);
        bool error_line = last && json_object_get(last, "error");
        bool proper_end = last && json_is_true(json_object_get(last, "done"));
        json_decref(last);
        if (st.status != 200 || !(error_line || proper_end) || stream_end[i] > STREAM_END_MAX_S)
            fail_msg("round %d (%s): status %ld, ended %.1f s after the fault, last bytes: %s", i,
                     stop ? "SIGSTOP" : "SIGKILL", st.status, stream_end[i],
                     st.got.len > 200 ? st.got.data + st.got.len - 200 : st.got.data);
        error_lines += error_line;
        proper_ends += proper_end;
        pw_stream_free(&st);
        if (!chat_until_ok(&s, 30))
            fail_msg("round %d: the server did not serve again within 30 s", i);
        recovery[i] = h_now() - fault;
    }

    size_t threads1 = settled_threads(s.pid, threads0), fds1 = settled_fds(s.pid, fds0);
    long rss1 = pw_status_kb(s.pid, "VmRSS"), hwm = pw_status_kb(s.pid, "VmHWM");
    size_t zombies = pw_zombies(s.pid), runtimes = h_children_named(s.pid, "axllama-emu", NULL);
    qsort(recovery, (size_t)rounds, sizeof *recovery, cmp_double);
    qsort(stream_end, (size_t)rounds, sizeof *stream_end, cmp_double);
    printf("chaos: %d rounds (%d SIGSTOP), %d error lines, %d proper ends\n", rounds, rounds / STOP_EVERY, error_lines,
           proper_ends);
    printf("chaos: stream ended after the fault in %.2f s median, %.2f s max\n", stream_end[rounds / 2],
           stream_end[rounds - 1]);
    printf("chaos: served again after %.2f s min, %.2f s median, %.2f s max\n", recovery[0], recovery[rounds / 2],
           recovery[rounds - 1]);
    printf("chaos: fds %zu -> %zu, threads %zu -> %zu, RSS %ld -> %ld kB (peak %ld kB), zombies %zu, runtimes %zu\n",
           fds0, fds1, threads0, threads1, rss0, rss1, hwm, zombies, runtimes);
    assert_true(fds1 <= fds0 + SPARE_FDS);
    assert_true(threads1 <= threads0 + SPARE_THREADS);
    assert_true(rss1 <= rss0 + RSS_GROWTH_MAX_KB);
    assert_int_equal(zombies, 0);
    assert_int_equal(runtimes, 1);
    free(recovery);
    free(stream_end);
    h_server_stop(&s);
    memset(&current, 0, sizeof current);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_the_runtime_killed_mid_stream_again_and_again, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
