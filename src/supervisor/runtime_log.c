/* runtime_log: turns a child's raw output into log lines: ANSI escape sequences and control
 * characters removed, \r progress redraws made lines of their own, invalid UTF-8 repaired, long lines
 * split; and reads the load progress "k / N" and error-looking lines out of them. See runtime_log.h. */
#include "supervisor/runtime_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/utf8.h"
#include "supervisor/supervisor.h"

#define LINE_MAX_BYTES 4096 /* longer output lines are split */

bool runtime_log_progress(const char *line, bool complete, int *step, int *total)
{
    for (const char *p = strstr(line, " / "); p; p = strstr(p + 1, " / ")) {
        const char *k_start = p;
        while (k_start > line && isdigit((unsigned char)k_start[-1]))
            k_start--;
        const char *n_start = p + 3;
        while (*n_start == ' ')
            n_start++;
        const char *n_end = n_start;
        while (isdigit((unsigned char)*n_end))
            n_end++;
        if (k_start == p || n_end == n_start || p - k_start > 6 || n_end - n_start > 6)
            continue;
        if (!*n_end && !complete)
            return false;
        int k = atoi(k_start), n = atoi(n_start);
        if (n > 0 && k <= n) {
            *step = k;
            *total = n;
            return true;
        }
    }
    return false;
}

bool runtime_log_is_error(const char *line)
{
    static const char *const words[] = {"error", "fail", "terminate called", "what():", "abort", "segmentation fault",
                                        "dead"};
    if (strstr(line, RUNTIME_BUSY_LINE)) /* the answer to a generate retried while busy: expected */
        return false;
    if (!strncmp(line, "[E]", 3))
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(line, words[i]))
            return true;
    return false;
}

/* Passes the first len bytes of o->line on as one line (if not blank) and keeps the rest. */
static void pass_line(output_stream *o, const output_sink *k, size_t len)
{
    if (!o->line.data)
        return;
    size_t end = len;
    while (end > 0 && isspace((unsigned char)o->line.data[end - 1]))
        end--;
    if (end > 0) {
        strbuf clean = {0};
        utf8_append_lossy(&clean, o->line.data, end);
        k->on_line(k->user, clean.data);
        sb_free(&clean);
    }
    size_t rest = o->line.len - len;
    memmove(o->line.data, o->line.data + len, rest);
    o->line.len = rest;
    o->line.data[rest] = '\0';
}

/* Feeds raw output bytes: strips ANSI escape sequences (CSI "ESC [ ... final" and OSC "ESC ] ...
 * BEL|ESC \", other "ESC x" pairs), drops control characters except tab, and ends a line at \n or
 * \r (a \r progress redraw becomes a line of its own). */
void output_feed(output_stream *o, const output_sink *k, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        switch (o->esc) {
        case ESC_START: o->esc = c == '[' ? ESC_CSI : c == ']' ? ESC_OSC : ESC_NONE; continue;
        case ESC_CSI:
            if (c >= 0x40 && c <= 0x7e)
                o->esc = ESC_NONE;
            continue;
        case ESC_OSC:
            if (c == 0x07)
                o->esc = ESC_NONE;
            else if (c == 0x1b)
                o->esc = ESC_OSC_ESC;
            continue;
        case ESC_OSC_ESC: o->esc = ESC_NONE; continue;
        case ESC_NONE: break;
        }
        if (c == 0x1b) {
            o->esc = ESC_START;
        } else if (c == '\n' || c == '\r') {
            pass_line(o, k, o->line.len);
        } else if ((c >= 0x20 && c != 0x7f) || c == '\t') {
            sb_putc(&o->line, (char)c);
            if (o->line.len >= LINE_MAX_BYTES) {
                size_t cut = utf8_complete_prefix(o->line.data, o->line.len);
                pass_line(o, k, cut ? cut : o->line.len);
            }
        }
    }
    if (o->line.data)
        k->on_partial(k->user, o->line.data); /* a redraw that waits for its \r */
}

void output_read(output_stream *o, const output_sink *k)
{
    char buf[4096];
    for (int i = 0; i < 16 && o->fd >= 0; i++) {
        ssize_t n = read(o->fd, buf, sizeof buf);
        if (n > 0) {
            output_feed(o, k, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) { /* EOF; EIO from a pty: same */
            close(o->fd);
            o->fd = -1;
            if (o->line.len)
                pass_line(o, k, o->line.len);
        }
        break;
    }
}
