/* tokenizer_json: a streaming reader for the two huge members of a Hugging Face tokenizer.json
 * (model.vocab: ~150k entries, model.merges: ~150k pairs). A jansson DOM of the whole file costs
 * ~0.3 s and ~64 MB; this reader walks the file once, hands vocab and merges entries to callbacks,
 * and gives every other member to jansson as a small value. Only JSON syntax is handled here. */
#ifndef AXLLAMA_TOKENIZER_TOKENIZER_JSON_H
#define AXLLAMA_TOKENIZER_TOKENIZER_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    void *ctx;
    /* model.vocab entry: token text (UTF-8, n bytes) and its id. Return false to abort. */
    bool (*vocab)(void *ctx, const char *token, size_t n, long long id);
    /* model.merges entry (either "a b" or ["a", "b"] form), in file order. */
    bool (*merge)(void *ctx, const char *a, size_t na, const char *b, size_t nb);
} tokenizer_json_handlers;

/* Parses the tokenizer.json text (n bytes). Returns a jansson object holding every top-level
 * member except "model", plus "model" with every member except vocab and merges; NULL and a
 * message in err on a syntax error, a missing member or a callback failure. */
json_t *tokenizer_json_read(const char *text, size_t n, const tokenizer_json_handlers *h, char *err, size_t errlen);

#endif
