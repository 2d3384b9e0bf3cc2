/* fuzz_common: what the libFuzzer harnesses of tests/fuzz share: reporting a violated property
 * (a message, then abort(), which libFuzzer records as a crash with the input), the Qwen3 tokenizer
 * from $AXLLAMA_TOKENIZER_DIR, a reader that takes small parameters (flags, counts, fields) off the
 * front of an input, a deterministic pseudo-random source seeded by the input (for split points),
 * and a few checks on text. Header-only: each harness is one translation unit. */
#ifndef AXLLAMA_TESTS_FUZZ_COMMON_H
#define AXLLAMA_TESTS_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- violated properties */

__attribute__((noreturn, format(printf, 4, 5))) static inline void fuzz_fail(const char *file, int line,
                                                                             const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "\n==fuzz== property violated at %s:%d: %s\n==fuzz== ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Aborts with the condition and a printf message when cond is false. */
#define FUZZ_CHECK(cond, ...)                                  \
    do {                                                       \
        if (!(cond))                                           \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)

/* ---- the tokenizer */

/* The Qwen3 tokenizer of $AXLLAMA_TOKENIZER_DIR; exits with a message when it is unset or unreadable
 * (a harness that silently fuzzed nothing would be worse than none). */
static inline tokenizer *fuzz_load_tokenizer(void)
{
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    if (!dir || !dir[0]) {
        fprintf(stderr,
                "fuzz: AXLLAMA_TOKENIZER_DIR is not set: export AXLLAMA_TOKENIZER_DIR=$(scripts/fetch-tokenizer.sh)\n");
        exit(2);
    }
    char err[512];
    tokenizer *tok = tokenizer_load(dir, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "fuzz: cannot load the tokenizer of %s: %s\n", dir, err);
        exit(2);
    }
    return tok;
}

/* ---- reading an input */

typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_reader;

/* The next byte (0 once the input is used up). */
static inline uint8_t fuzz_byte(fuzz_reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* The bytes up to the next sep (or the end): *len bytes at the returned pointer; sep is consumed. */
static inline const char *fuzz_field(fuzz_reader *r, uint8_t sep, size_t *len)
{
    const uint8_t *start = r->p;
    const uint8_t *end = r->n ? memchr(r->p, sep, r->n) : NULL;
    size_t n = end ? (size_t)(end - start) : r->n;
    r->p += n;
    r->n -= n;
    if (end) {
        r->p++;
        r->n--;
    }
    *len = n;
    return (const char *)start;
}

/* The same as a NUL-terminated copy (caller frees). */
static inline char *fuzz_field_dup(fuzz_reader *r, uint8_t sep)
{
    size_t len;
    const char *s = fuzz_field(r, sep, &len);
    return xstrndup(s, len);
}

/* ---- deterministic randomness (libFuzzer wants an input to behave the same on every run) */

typedef struct {
    uint64_t s;
} fuzz_rng;

/* Seeded by the bytes (FNV-1a), never zero. */
static inline fuzz_rng fuzz_rng_of(const void *data, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)data)[i]) * 0x100000001b3ull;
    return (fuzz_rng){h ? h : 1};
}

/* xorshift64* */
static inline uint64_t fuzz_rng_next(fuzz_rng *g)
{
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * 0x2545F4914F6CDD1Dull;
}

/* A number in 0..bound-1 (bound > 0). */
static inline size_t fuzz_rng_below(fuzz_rng *g, size_t bound)
{
    return (size_t)(fuzz_rng_next(g) % bound);
}

/* A chunk length for splitting n remaining items: mostly small (1..4), sometimes anything. */
static inline size_t fuzz_rng_chunk(fuzz_rng *g, size_t n)
{
    if (n == 0)
        return 0;
    size_t k = fuzz_rng_below(g, 4) == 0 ? 1 + fuzz_rng_below(g, n) : 1 + fuzz_rng_below(g, 4);
    return k < n ? k : n;
}

/* ---- text */

/* The bytes made valid UTF-8 as Hugging Face (Python's errors="replace") does (caller frees). */
static inline char *fuzz_lossy(const char *s, size_t n, size_t *len)
{
    strbuf b = {0};
    sb_append(&b, "", 0);
    utf8_append_lossy(&b, s, n);
    *len = b.len;
    return sb_steal(&b);
}

static inline bool fuzz_has_nul(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

/* Prints a byte string for a failure message (escaped, at most 300 bytes) into a static buffer
 * (one of four, so a message can show a few). */
static inline const char *fuzz_show(const char *s, size_t n)
{
    static char bufs[4][1300];
    static int next;
    char *out = bufs[next++ % 4];
    size_t o = 0;
    for (size_t i = 0; i < n && i < 300; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
    }
    if (n > 300) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

#endif
