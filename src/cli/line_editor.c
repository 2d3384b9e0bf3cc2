/* line_editor: libedit under the interactive prompt, and the history file (see line_editor.h). */
#include "cli/line_editor.h"

#include <errno.h>
#include <fcntl.h>
#include <histedit.h>
#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/utf8.h"

#define LINE_CTRL_C 0x03

struct line_editor {
    EditLine *el;
    History *hist;
    char *history_path; /* NULL: no file */
    char *last;         /* the newest history entry */
    const char *prompt;
    volatile sig_atomic_t *interrupted;
    /* bytes read from the terminal and not yet handed to libedit */
    unsigned char in[4096];
    size_t in_len, in_pos;
};

/* ------------------------------------------------------------------------------------ the history file */

char *line_history_path(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        const struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home)
        return NULL;
    strbuf path = {0};
    sb_printf(&path, "%s/.axllama", home);
    if (mkdir(path.data, 0700) != 0 && errno != EEXIST) {
        sb_free(&path);
        return NULL;
    }
    sb_puts(&path, "/history");
    return sb_steal(&path);
}

void line_history_free(char **entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(entries[i]);
    free(entries);
}

/* Writes entries to path through a temporary file renamed over it. */
static void line_history_rewrite(const char *path, char *const *entries, size_t n)
{
    strbuf tmp = {0};
    sb_printf(&tmp, "%s.tmp", path);
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = fprintf(f, "%s\n", entries[i]) >= 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp.data, path) != 0)
        unlink(tmp.data);
    sb_free(&tmp);
}

void line_history_load(const char *path, char ***entries, size_t *n)
{
    *entries = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t cap = 0, total = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        total++;
        if (*n == LINE_HISTORY_MAX) { /* keep the newest: drop the oldest */
            free((*entries)[0]);
            memmove(*entries, *entries + 1, (*n - 1) * sizeof **entries);
            (*n)--;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *entries = xrealloc(*entries, cap * sizeof **entries);
        }
        (*entries)[(*n)++] = xstrdup(line);
    }
    free(line);
    fclose(f);
    if (total > *n)
        line_history_rewrite(path, *entries, *n);
}

bool line_history_append(const char *path, const char *entry)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0)
        return false;
    strbuf line = {0};
    sb_printf(&line, "%s\n", entry);
    bool ok = write(fd, line.data, line.len) == (ssize_t)line.len;
    sb_free(&line);
    return close(fd) == 0 && ok;
}

/* ------------------------------------------------------------------------------------ input */

static line_editor *le_of(EditLine *el)
{
    line_editor *le = NULL;
    el_get(el, EL_CLIENTDATA, &le);
    return le;
}

static char *le_prompt(EditLine *el)
{
    return (char *)le_of(el)->prompt;
}

/* Makes sure at least want bytes are buffered (fewer at end of input). 1: enough, 0: end of
 * input, -1: interrupted (errno EINTR) or a read error. */
static int le_fill(line_editor *le, size_t want)
{
    while (le->in_len - le->in_pos < want) {
        if (*le->interrupted) {
            errno = EINTR;
            return -1;
        }
        if (le->in_pos > 0) {
            memmove(le->in, le->in + le->in_pos, le->in_len - le->in_pos);
            le->in_len -= le->in_pos;
            le->in_pos = 0;
        }
        ssize_t n = read(STDIN_FILENO, le->in + le->in_len, sizeof le->in - le->in_len);
        if (n < 0 && errno == EINTR)
            continue; /* another signal (SIGWINCH...): read on, unless it was Ctrl-C */
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        le->in_len += (size_t)n;
    }
    return 1;
}

/* The code point of the valid UTF-8 sequence s (len bytes). */
static wchar_t le_decode(const unsigned char *s, size_t len)
{
    static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = s[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (s[i] & 0x3F);
    return (wchar_t)cp;
}

/* libedit's character source: one UTF-8 character from the terminal; Ctrl-C (the signal, or the
 * byte when the terminal does not turn it into one) ends the read with -1 and errno EINTR. */
static int le_getc(EditLine *el, wchar_t *out)
{
    line_editor *le = le_of(el);
    *out = 0;
    int r = le_fill(le, 1);
    if (r <= 0)
        return r;
    if (le->in[le->in_pos] == LINE_CTRL_C) {
        le->in_pos++;
        *le->interrupted = 1;
        errno = EINTR;
        return -1;
    }
    size_t len = 0;
    utf8_status st = utf8_next((const char *)le->in + le->in_pos, le->in_len - le->in_pos, &len);
    while (st == UTF8_INCOMPLETE) { /* the rest of the character is still on its way */
        r = le_fill(le, len + 1);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        st = utf8_next((const char *)le->in + le->in_pos, le->in_len - le->in_pos, &len);
    }
    *out = st == UTF8_OK ? le_decode(le->in + le->in_pos, len) : (wchar_t)0xFFFD;
    le->in_pos += len;
    return 1;
}

/* ------------------------------------------------------------------------------------ the editor */

/* libedit shows and measures characters through LC_CTYPE: make it UTF-8 (the environment's when it
 * is, else C.UTF-8), as the model's text is. */
static void le_utf8_ctype(void)
{
    const char *set = setlocale(LC_CTYPE, "");
    if (!set || strcasecmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");
}

line_editor *line_editor_new(const char *history_path, volatile sig_atomic_t *interrupted)
{
    le_utf8_ctype();
    line_editor *le = xcalloc(1, sizeof *le);
    le->interrupted = interrupted;
    le->prompt = "";
    le->el = el_init("axllama", stdin, stdout, stderr);
    le->hist = history_init();
    if (!le->el || !le->hist) {
        line_editor_free(le);
        return NULL;
    }
    HistEvent ev;
    history(le->hist, &ev, H_SETSIZE, LINE_HISTORY_MAX);
    history(le->hist, &ev, H_SETUNIQUE, 1);
    el_set(le->el, EL_CLIENTDATA, le);
    el_set(le->el, EL_EDITOR, "emacs");
    el_set(le->el, EL_PROMPT, le_prompt);
    el_set(le->el, EL_HIST, history, le->hist);
    el_set(le->el, EL_GETCFN, le_getc);
    /* ollama's keys where libedit's emacs map differs */
    el_set(le->el, EL_BIND, "^R", "em-inc-search-prev", NULL);
    el_set(le->el, EL_BIND, "^W", "ed-delete-prev-word", NULL);
    el_set(le->el, EL_BIND, "^U", "vi-kill-line-prev", NULL);
    if (history_path) {
        le->history_path = xstrdup(history_path);
        char **entries;
        size_t n;
        line_history_load(history_path, &entries, &n);
        for (size_t i = 0; i < n; i++)
            history(le->hist, &ev, H_ENTER, entries[i]);
        if (n)
            le->last = xstrdup(entries[n - 1]);
        line_history_free(entries, n);
    }
    return le;
}

void line_editor_free(line_editor *le)
{
    if (!le)
        return;
    if (le->el)
        el_end(le->el);
    if (le->hist)
        history_end(le->hist);
    free(le->history_path);
    free(le->last);
    free(le);
}

/* Appends code point cp as UTF-8 (invalid ones as U+FFFD). */
static void le_put_utf8(strbuf *out, uint32_t cp)
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        sb_puts(out, UTF8_REPLACEMENT);
    } else if (cp < 0x80) {
        sb_putc(out, (char)cp);
    } else if (cp < 0x800) {
        sb_putc(out, (char)(0xC0 | (cp >> 6)));
        sb_putc(out, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        sb_putc(out, (char)(0xE0 | (cp >> 12)));
        sb_putc(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sb_putc(out, (char)(0x80 | (cp & 0x3F)));
    } else {
        sb_putc(out, (char)(0xF0 | (cp >> 18)));
        sb_putc(out, (char)(0x80 | ((cp >> 12) & 0x3F)));
        sb_putc(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sb_putc(out, (char)(0x80 | (cp & 0x3F)));
    }
}

line_result line_editor_read(line_editor *le, const char *prompt, strbuf *line)
{
    sb_clear(line);
    sb_puts(line, "");
    le->prompt = prompt;
    fflush(stdout);
    /* the terminal in edit mode before the prompt shows: keys typed right after it (Ctrl-R, Ctrl-W,
     * Ctrl-U) must reach the editor, not the terminal's own line editing; el_wgets restores it */
    el_set(le->el, EL_PREP_TERM, 1);
    int count = 0;
    const wchar_t *text = el_wgets(le->el, &count);
    if (*le->interrupted) {
        *le->interrupted = 0;
        le->in_len = le->in_pos = 0; /* what was typed ahead goes with the line */
        return LINE_INTERRUPT;
    }
    if (!text || count <= 0)
        return LINE_EOF;
    for (int i = 0; i < count && text[i]; i++)
        le_put_utf8(line, (uint32_t)text[i]);
    while (line->len && (line->data[line->len - 1] == '\n' || line->data[line->len - 1] == '\r'))
        line->data[--line->len] = '\0';
    return LINE_OK;
}

void line_editor_remember(line_editor *le, const char *line)
{
    if (!*line || (le->last && !strcmp(le->last, line)))
        return;
    HistEvent ev;
    history(le->hist, &ev, H_ENTER, line);
    free(le->last);
    le->last = xstrdup(line);
    if (le->history_path)
        line_history_append(le->history_path, line);
}
