/* runtime_log: a child's output (stdout through a pty, stderr through a pipe) turned into log lines
 * for the supervisor (runtime_log.c): escape sequences and control characters removed, a \r
 * redraw a line of its own, invalid UTF-8 repaired, lines over 4 KiB split; and what the supervisor
 * reads out of the lines (the load progress, error-looking lines). Internal to src/supervisor/. */
#ifndef AXLLAMA_SUPERVISOR_RUNTIME_LOG_H
#define AXLLAMA_SUPERVISOR_RUNTIME_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum { ESC_NONE, ESC_START, ESC_CSI, ESC_OSC, ESC_OSC_ESC } esc_state;

/* One output stream of the child. */
typedef struct {
    int fd;        /* read end of the child's stdout or stderr; -1 when closed */
    strbuf line;   /* the current line, escape sequences and control characters removed */
    esc_state esc; /* escape-sequence parser state across reads */
} output_stream;

/* Where the lines go. */
typedef struct {
    void (*on_line)(void *user, const char *line);       /* a whole line: not blank, valid UTF-8 */
    void (*on_partial)(void *user, const char *partial); /* the unfinished line after a read (a progress
                                                            redraw waiting for its \r) */
    void *user;
} output_sink;

/* Feeds raw output bytes: strips ANSI escape sequences (CSI "ESC [ ... final" and OSC "ESC ] ...
 * BEL|ESC \\", other "ESC x" pairs), drops control characters except tab, and ends a line at \n or
 * \r (a \r progress redraw becomes a line of its own). */
void output_feed(output_stream *o, const output_sink *k, const char *data, size_t n);
/* Reads what is available on o->fd (bounded, so one stream cannot starve the caller's loop); at EOF
 * closes it (fd -1) and passes the partial line on. */
void output_read(output_stream *o, const output_sink *k);

/* Finds a progress counter "k / N" (digits, " / ", spaces, digits) in line. complete: the line is
 * whole, so N may end it; in a partial line N must be followed by something (it may be cut). */
bool runtime_log_progress(const char *line, bool complete, int *step, int *total);
/* An error-looking line ([E], "error", "fail", "abort"...), but not the runtime's expected busy
 * answer (RUNTIME_BUSY_LINE). */
bool runtime_log_is_error(const char *line);

#endif
