/* run_script: the vendor's run scripts (run_*_ax650.sh, run_*_axcl_aarch64.sh, ...), read the way
 * the shell would read them, for `axllama import` (models/vendor_package.h): the command that
 * starts the runtime (an interactive main_* binary, whose flags the API server main_api_* shares
 * but --live_print), and its flags sorted into the ones main_api_* takes and the ones left out.
 * Pure: strings in, strings out. The flags are spec/runtime-protocol.md §4.1's. */
#ifndef AXLLAMA_MODELS_RUN_SCRIPT_H
#define AXLLAMA_MODELS_RUN_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct {
    char **v; /* NULL-terminated */
    size_t n;
} rs_words;

void rs_words_free(rs_words *w);

/* The arguments (after the program) of the script's first command whose program is a main_*
 * binary, read with the shell's rules: quotes, backslashes, line continuations, comments, commands
 * ended by newlines, ';', '&' and '|', redirections (2>&1, > log) left out, leading VAR=value
 * assignments and `exec` skipped. *program gets the program word. False with a message (naming the
 * line) for an unterminated quote, no such command, or a shell expansion ($VAR, $(...), `...`) in
 * that command. */
bool rs_command(const char *text, rs_words *args, char **program, char *err, size_t errlen);

/* The runtime's flags from a run script's arguments. */
typedef struct {
    rs_words args;           /* what the manifest's runtime.args gets, in the script's order */
    rs_words dropped;        /* the flags left out, as "--name" */
    char *system_prompt;     /* --system_prompt's value, or NULL */
    char *template_filename; /* --template_filename_axmodel, or NULL */
    char *post_filename;     /* --filename_post_axmodel, or NULL */
    char *embed_filename;    /* --filename_tokens_embed, or NULL */
    int axmodel_num;         /* --axmodel_num, 0 if absent */
} rs_flags;

/* Sorts args into flags ("--name value" or "--name=value"): keeps main_api_*'s own flags, drops
 * --url_tokenizer_model and --devices (axllama adds them) and every other one (main_api_* would exit
 * with "undefined option"); checks the values (integers, 0/1 for --use_mmap_load_embed, one %d in
 * --template_filename_axmodel) and that the four model flags are there. False with a message. */
bool rs_flags_parse(const rs_words *args, rs_flags *out, char *err, size_t errlen);
void rs_flags_free(rs_flags *f);

/* The layer file of a --template_filename_axmodel pattern (one %d, as rs_flags_parse checks) for
 * layer ("m/l%d.axmodel", 3 -> "m/l3.axmodel"). */
char *rs_layer_file(const char *pattern, int layer);

#endif
