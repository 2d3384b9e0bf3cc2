/* tojson: serialises a JSON value exactly as Python's json.dumps(value, ensure_ascii=False) does
 * with its default separators (", " between items, ": " after keys), which is what the Qwen chat
 * templates' `| tojson` prints under Hugging Face transformers: object keys in the order given
 * (jansson keeps insertion order), non-ASCII text as raw UTF-8, '"' '\\' and control characters
 * escaped as Python escapes them (\n \r \t \b \f, others \u00XX in lower-case hex; DEL and
 * U+2028/U+2029 unescaped), integers as decimal, reals as Python's repr(float) (shortest text
 * that reads back to the same double; "1.0", "1e-05", "1e+16"; non-finite as NaN / Infinity /
 * -Infinity, as Python writes them). Used for tool definitions (`tool | tojson`) and for tool-call
 * arguments fed back in the history. Pure function. */
#ifndef AXLLAMA_API_TOJSON_H
#define AXLLAMA_API_TOJSON_H

#include <jansson.h>

/* The text (caller frees), never NULL. */
char *tojson_dumps(const json_t *value);

#endif
