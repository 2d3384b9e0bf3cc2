/* log: the one logging sink of axllama. Every module that logs takes a log_sink (a function and its
 * user pointer) and writes whole lines through log_printf; the server's sink (log_stderr) stamps
 * each line with the UTC time and writes it with one write(2), so lines of different threads never
 * interleave. A zeroed sink discards. */
#ifndef AXLLAMA_COMMON_LOG_H
#define AXLLAMA_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef void (*log_fn)(void *user, const char *line);

typedef struct {
    log_fn fn; /* NULL: discard */
    void *user;
} log_sink;

/* Formats one line (no trailing newline needed) and hands it to the sink. */
void log_printf(const log_sink *sink, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vprintf(const log_sink *sink, const char *fmt, va_list ap);

/* A log_fn: "2026-01-02T03:04:05.678Z <line>\n" on stderr, one write(2) per line. user unused. */
void log_stderr(void *user, const char *line);

/* Whether OLLAMA_DEBUG asked for more log (set once at start by the server). */
void log_set_debug(bool on);
bool log_debug_enabled(void);

#endif
