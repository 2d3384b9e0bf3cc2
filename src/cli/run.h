/* run: what `axllama run` (cmd_run.c: flags, loading, one streamed reply) shares with its
 * interactive session (run_session.c: the prompt, """ input, slash commands). */
#ifndef AXLLAMA_CLI_RUN_H
#define AXLLAMA_CLI_RUN_H

#include <signal.h>
#include <stdbool.h>

#include <jansson.h>

#include "cli/client.h"

/* Raised by SIGINT (Ctrl-C): cancels the reply in progress, or the line being typed. */
extern volatile sig_atomic_t run_interrupted;

typedef struct {
    client c;
    char *model;
    json_t *history; /* user and assistant messages */
    char *system;    /* /set system, sent first when set */
    json_t *options; /* /set parameter */
    json_t *think;   /* NULL = not sent (the model's default), else true/false/"high"... */
    char *keep_alive;
    json_t *format; /* NULL = none, else "json" or a JSON schema object (sent as `format`) */
    bool verbose, hide_thinking, wordwrap;
    bool color;    /* stdout is a terminal */
    bool progress; /* stderr is a terminal */
} run_state;

typedef enum { TURN_OK, TURN_CANCELLED, TURN_ERROR } turn_result;

/* The value of --format or /set format into *out: "json", or a JSON schema (an object, as JSON
 * text), as the request's `format`; "" is none (*out NULL). False for anything else. */
bool run_format_value(const char *text, json_t **out);

/* Loads rs->model (a chat request without messages) while showing progress. 0, or the exit
 * status after an error message. */
int run_load_model(run_state *rs);

/* Appends text as the user's message and streams the reply (the whole conversation is sent).
 * interactive: a blank line after the reply (ollama's layout). */
turn_result run_send_user(run_state *rs, const char *text, bool interactive);

/* The interactive session on a terminal, until Ctrl-D or /bye. Returns the exit status. */
int run_session(run_state *rs);

#endif
