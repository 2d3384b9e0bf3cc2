/* emu_log: vendor-style log lines on stdout. */
#include "emu/emu_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void emu_log(char level, const char *function, int line, const char *fmt, ...)
{
    const char *colour = level == 'E' ? "31" : level == 'W' ? "33" : level == 'I' ? "32" : level == 'N' ? "35" : "34";
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    printf("\033[1;30;%sm[%c][%32s][%4d]: ", colour, level, function, line);
    vprintf(fmt, ap);
    printf("\033[0m\n");
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}
