/* line_editor: the prompt of `axllama run`'s interactive session, on libedit: lines of any length
 * (the terminal is in raw mode while a line is edited, so its 4,095-byte canonical-mode limit does
 * not apply), emacs editing keys (arrows, Home/End, Ctrl-A/E/K/U/W/L, Alt-B/F), history with the
 * arrow keys and Ctrl-R search, kept across sessions in ~/.axllama/history (as ollama keeps
 * ~/.ollama/history), and Ctrl-C ending the read with LINE_INTERRUPT. Input is UTF-8 (invalid
 * bytes become U+FFFD). Only for a terminal: piped input never comes here. */
#ifndef AXLLAMA_CLI_LINE_EDITOR_H
#define AXLLAMA_CLI_LINE_EDITOR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* History entries kept, in memory and in the file. */
#define LINE_HISTORY_MAX 1000

typedef enum { LINE_OK, LINE_EOF, LINE_INTERRUPT } line_result;

typedef struct line_editor line_editor;

/* An editor on the terminal of stdin/stdout. history_path: the history file to load and append
 * to (NULL: history for this session only). interrupted: the flag the caller's SIGINT handler
 * raises (installed without SA_RESTART); it ends a read, which clears it. NULL when libedit
 * cannot start. */
line_editor *line_editor_new(const char *history_path, volatile sig_atomic_t *interrupted);
void line_editor_free(line_editor *le);

/* Reads one line after prompt into line (without its newline). LINE_EOF: Ctrl-D on an empty line
 * or the terminal closed; LINE_INTERRUPT: Ctrl-C (the line being typed, and anything typed
 * ahead, is discarded). */
line_result line_editor_read(line_editor *le, const char *prompt, strbuf *line);

/* Adds a line to the history (an empty one, or the same as the last entry, is not added) and
 * appends it to the history file. */
void line_editor_remember(line_editor *le, const char *line);

/* ~/.axllama/history ($HOME, else the password database), creating ~/.axllama (0700) when it
 * is missing. Malloc'ed; NULL when there is no home directory or it cannot be created. */
char *line_history_path(void);

/* Loads the entries of a history file (one per line, empty lines skipped) into entries (each
 * malloc'ed, *n of them, the last LINE_HISTORY_MAX at most) and rewrites the file with those when
 * it held more. A missing file is no entries. Free with line_history_free. */
void line_history_load(const char *path, char ***entries, size_t *n);
void line_history_free(char **entries, size_t n);

/* Appends one entry to the history file (created 0600). False on an I/O error. */
bool line_history_append(const char *path, const char *entry);

#endif
