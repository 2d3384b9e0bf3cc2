/* tokenizer: a Hugging Face byte-level BPE tokenizer (the Qwen2 / 2.5 / 3 kind) loaded from
 * tokenizer.json + tokenizer_config.json. encode() gives the ids HF `tokenizers` gives for the same
 * string; decode() gives the text HF gives (special tokens kept, invalid UTF-8 replaced by U+FFFD).
 * A loaded tokenizer is immutable: encode/decode may run on many threads at once. */
#ifndef AXLLAMA_TOKENIZER_TOKENIZER_H
#define AXLLAMA_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct tokenizer tokenizer;

/* Loads DIR/tokenizer.json and DIR/tokenizer_config.json (the config is optional: without it
 * there is no eos/bos/pad). Returns NULL and a message in err on failure. */
tokenizer *tokenizer_load(const char *dir, char *err, size_t errlen);
/* The same from two explicit paths (config_path may be NULL). */
tokenizer *tokenizer_load_files(const char *json_path, const char *config_path, char *err, size_t errlen);
void tokenizer_free(tokenizer *tok);

/* Appends the ids of text (n bytes, any bytes: invalid UTF-8 is first replaced by U+FFFD, as a
 * string handed to HF would be) to out. Added tokens in the text are recognised. */
void tokenizer_encode(const tokenizer *tok, const char *text, size_t n, idvec *out);

/* tokenizer_encode within a budget, for texts that may be far too long for a context window: appends
 * the ids of text, but stops as soon as more than max_ids were appended (the text's first max_ids + 1
 * ids are then in out, exactly those tokenizer_encode gives) and returns false; true when the whole
 * text took at most max_ids ids. Only a prefix of the text that surely holds more than max_ids ids is
 * ever looked at (max_ids + 1 times 4 x tokenizer_max_token_bytes() bytes), so the cost is bounded by
 * the budget, not by the text. */
bool tokenizer_encode_limit(const tokenizer *tok, const char *text, size_t n, size_t max_ids, idvec *out);

/* Appends the last n_ids ids of text's encoding (all of them if it has fewer), encoding only a window
 * at the end of the text, widened until it holds twice as many ids (or a window of 2 x n_ids + 2 times
 * the most bytes an id can take, or the whole text). Exactly tokenizer_encode's ids in practice; they
 * could differ only where one pre-token (a run of thousands of letters or spaces) crosses the window's
 * start, and then only in how that run is split. For the end of a text too long for the window. */
void tokenizer_encode_tail(const tokenizer *tok, const char *text, size_t n, size_t n_ids, idvec *out);

/* The most bytes one id stands for (the longest token). */
size_t tokenizer_max_token_bytes(const tokenizer *tok);

/* Appends the raw bytes of ids to out (no UTF-8 repair). Returns false, appending nothing, if an
 * id is out of range. */
bool tokenizer_decode_bytes(const tokenizer *tok, const int32_t *ids, size_t n, strbuf *out);
/* Appends the text of ids as HF decodes it: bytes made valid UTF-8 with U+FFFD. */
bool tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, strbuf *out);

/* Number of ids (vocab + added tokens): valid ids are 0 .. size-1. */
size_t tokenizer_vocab_size(const tokenizer *tok);
/* -1 when the tokenizer has none (Qwen has no BOS). */
int32_t tokenizer_bos_id(const tokenizer *tok);
int32_t tokenizer_eos_id(const tokenizer *tok);
int32_t tokenizer_pad_id(const tokenizer *tok);
/* Id of a token given its exact text (vocab entry in byte form, or added token); -1 if none. */
int32_t tokenizer_token_id(const tokenizer *tok, const char *text);
/* True if id is an added token flagged special. */
bool tokenizer_is_special(const tokenizer *tok, int32_t id);

/* Incremental decoder for streaming: push ids, get back only complete UTF-8 characters. An
 * incomplete multibyte tail (at most 3 bytes) is held until the next push; invalid bytes become
 * U+FFFD at once. Nothing is ever dropped: finish() flushes a held tail as U+FFFD. */
typedef struct {
    char held[4];
    size_t nheld;
} decode_stream;

void decode_stream_init(decode_stream *ds);
/* Appends the text that became complete to out. Returns false (nothing appended, state kept)
 * if an id is out of range. */
bool decode_stream_push(decode_stream *ds, const tokenizer *tok, const int32_t *ids, size_t n, strbuf *out);
/* Appends what is still held (as U+FFFD) and empties the stream. */
void decode_stream_finish(decode_stream *ds, strbuf *out);

#endif
