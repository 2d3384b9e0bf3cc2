/* log: the logging sink. See log.h. */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool debug_on;

void log_vprintf(const log_sink *sink, const char *fmt, va_list ap)
{
    if (!sink || !sink->fn)
        return;
    strbuf line = {0};
    sb_vprintf(&line, fmt, ap);
    sink->fn(sink->user, line.data ? line.data : "");
    sb_free(&line);
}

void log_printf(const log_sink *sink, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(sink, fmt, ap);
    va_end(ap);
}

void log_stderr(void *user, const char *line)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* a timestamp for people, not a measurement */
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t k = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + k, sizeof stamp - k, ".%03ldZ", ts.tv_nsec / 1000000);
    strbuf out = {0};
    sb_printf(&out, "%s %s\n", stamp, line);
    pthread_mutex_lock(&stderr_lock);
    size_t done = 0;
    while (done < out.len) {
        ssize_t n = write(STDERR_FILENO, out.data + done, out.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    pthread_mutex_unlock(&stderr_lock);
    sb_free(&out);
}

void log_set_debug(bool on)
{
    atomic_store(&debug_on, on);
}

bool log_debug_enabled(void)
{
    return atomic_load(&debug_on);
}
