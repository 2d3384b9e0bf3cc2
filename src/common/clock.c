/* clock: monotonic time, deadlines and timed waits. See clock.h. */
#include "common/clock.h"

#include <errno.h>

double clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double clock_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double deadline_in(double seconds)
{
    return clock_mono() + (seconds > 0 ? seconds : 0);
}

double deadline_left(double deadline)
{
    double left = deadline - clock_mono();
    return left > 0 ? left : 0;
}

bool deadline_passed(double deadline)
{
    return clock_mono() >= deadline;
}

struct timespec clock_timespec(double mono_seconds)
{
    if (mono_seconds < 0)
        mono_seconds = 0;
    struct timespec ts;
    ts.tv_sec = (time_t)mono_seconds;
    ts.tv_nsec = (long)((mono_seconds - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    } else if (ts.tv_nsec < 0) {
        ts.tv_nsec = 0;
    }
    return ts;
}

void clock_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

bool clock_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, double deadline)
{
    struct timespec ts = clock_timespec(deadline);
    return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT;
}

void clock_sleep(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec until = clock_timespec(clock_mono() + seconds);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
}
