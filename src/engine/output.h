/* output: turns the ids a runtime generates into what the client sees: decoded without ever
 * splitting a UTF-8 character, a leading <think>...</think> block separated as thinking (shown or
 * dropped), the newlines around it trimmed as Qwen3's template trims them, stop sequences cut
 * (text held back while it could still become one), and num_predict counted in ids. */
#ifndef AXLLAMA_ENGINE_OUTPUT_H
#define AXLLAMA_ENGINE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

typedef enum {
    OUTPUT_MORE,  /* keep generating */
    OUTPUT_LIMIT, /* num_predict ids taken: stop the runtime ("length") */
    OUTPUT_STOP,  /* a stop sequence matched: stop the runtime ("stop") */
} output_status;

/* A piece of text for the client (len > 0). */
typedef void (*output_emit_fn)(void *user, bool thinking, const char *text, size_t len);

typedef struct output_filter output_filter;

/* stop: the stop sequences (copied); num_predict < 0: no limit. */
output_filter *output_new(const tokenizer *tok, bool show_thinking, const char *const *stop, size_t n_stop,
                          int num_predict, output_emit_fn emit, void *user);
void output_free(output_filter *o);
/* Feeds generated ids (ids past a limit or a stop are ignored). */
output_status output_push(output_filter *o, const int32_t *ids, size_t n);
/* The generation ended: emits what is still held (an unfinished think block, text that might
 * have become a stop sequence). */
void output_finish(output_filter *o);
/* Ids taken so far (at most num_predict). */
size_t output_ids_taken(const output_filter *o);
/* The answer text emitted so far (NUL-terminated, owned by o). */
const char *output_content(const output_filter *o);

#endif
