/* clock: monotonic time, deadlines and timed waits. Every timed wait in axllama goes through here
 * and runs on CLOCK_MONOTONIC, so a wall-clock step (NTP syncing the clock of a Pi without an RTC
 * at boot) neither stretches nor cuts a wait. Wall-clock time (clock_wall) is only for timestamps
 * shown to people and clients, never for measuring or waiting. */
#ifndef AXLLAMA_COMMON_CLOCK_H
#define AXLLAMA_COMMON_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: compare, never show). */
double clock_mono(void);
/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t clock_mono_ns(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME), for timestamps only. */
double clock_wall(void);

/* A deadline: an absolute CLOCK_MONOTONIC time in seconds. deadline_in(s) is now + s (s <= 0:
 * now); deadline_left is what remains (never negative); deadline_passed says whether it is over. */
double deadline_in(double seconds);
double deadline_left(double deadline);
bool deadline_passed(double deadline);

/* An absolute CLOCK_MONOTONIC time in seconds as a timespec (for pthread_cond_timedwait on a
 * condition variable made by clock_cond_init). */
struct timespec clock_timespec(double mono_seconds);

/* Initialises a condition variable whose timed waits run on CLOCK_MONOTONIC. */
void clock_cond_init(pthread_cond_t *cond);
/* Waits on cond (made by clock_cond_init, mutex held) until signalled or until the deadline.
 * Returns false when the deadline passed (spurious wake-ups return true: callers re-check their
 * predicate, as with any condition variable). */
bool clock_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, double deadline);

/* Sleeps for seconds on CLOCK_MONOTONIC (through EINTR); <= 0 returns at once. */
void clock_sleep(double seconds);

#endif
