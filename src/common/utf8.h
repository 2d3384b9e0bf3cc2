/* utf8: UTF-8 structure only (no Unicode tables): scanning one sequence, lossy repair with U+FFFD
 * (one replacement per maximal invalid subpart, the rule Python, Rust's from_utf8_lossy and the
 * WHATWG decoder share), and finding an incomplete multibyte tail for streaming. */
#ifndef AXLLAMA_COMMON_UTF8_H
#define AXLLAMA_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum {
    UTF8_OK,         /* a whole valid character of *len bytes */
    UTF8_INVALID,    /* a maximal invalid subpart of *len bytes: one U+FFFD */
    UTF8_INCOMPLETE, /* the input ends inside a character that could still be valid (*len bytes) */
} utf8_status;

#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Classifies the bytes at s (n > 0). */
utf8_status utf8_next(const char *s, size_t n, size_t *len);

bool utf8_is_valid(const char *s, size_t n);

/* Appends s to out with every invalid subpart, and an incomplete tail, replaced by U+FFFD. */
void utf8_append_lossy(strbuf *out, const char *s, size_t n);

/* Length of the longest prefix of s that does not end inside an incomplete character; the
 * bytes after it (at most 3) could still become a character when more bytes arrive. */
size_t utf8_complete_prefix(const char *s, size_t n);

#endif
