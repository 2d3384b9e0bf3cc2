/* api_common: the small pieces the Ollama API (ollama*.c) and the OpenAI API (openai*.c) share:
 * waiting for a job's next event while watching the client, reading a request body (leading
 * whitespace skipped, invalid UTF-8 repaired as Go's decoder does), JSON member lookup with null
 * meaning absent, freeing decoded options, and the model listing both APIs answer (/api/tags,
 * /v1/models: the registry newest first), and the copy of a route table. */
#ifndef AXLLAMA_API_API_COMMON_H
#define AXLLAMA_API_API_COMMON_H

#include <stdbool.h>

#include <jansson.h>

#include "common/buf.h"
#include "engine/engine.h"
#include "models/manifest.h"
#include "net/http_server.h"

/* The next event of j, in waits of HTTP_STREAM_POLL_S; false (and j cancelled) when the client
 * left or the server stops. */
bool api_wait_event(const http_request *req, job *j, job_event *ev);

/* What reading a request body found. */
typedef enum {
    API_BODY_OK,        /* a JSON value (returned) */
    API_BODY_BLANK,     /* nothing but whitespace: "missing request body" in both APIs */
    API_BODY_TRUNCATED, /* the text ended inside the value (Go's "unexpected EOF") */
    API_BODY_INVALID,   /* not JSON: see err */
} api_body_status;

/* The request body as one JSON value (json_loadb flags), parsed after its leading whitespace as
 * api_load_json_text parses. NULL unless *status is API_BODY_OK. */
json_t *api_read_body(const http_request *req, size_t flags, api_body_status *status, json_error_t *err);

/* JSON text that Go's decoder accepts and jansson refuses, made acceptable first (Ollama takes all of
 * it): invalid UTF-8 bytes become U+FFFD (as Go reads them); an escaped surrogate that is not half of a
 * pair (\ud800 alone: what a JavaScript client sends when it cuts a string inside an emoji) becomes
 * \uFFFD (as Go reads it); an escaped U+0000 becomes \uFFFD too (Go keeps it, but every string goes on
 * as a C string here, which would end at it: the replacement keeps the rest of the text). Then parsed
 * with json_loadb and flags. Error positions are those of the original text (an escape keeps its
 * length). */
json_t *api_load_json_text(const char *text, size_t len, size_t flags, json_error_t *err);
/* The escape repair above: when text has an escape to replace, out gets the repaired text and true is
 * returned; else false and out is untouched. */
bool api_json_repair_escapes(const char *text, size_t len, strbuf *out);

/* The per-request limits the decoders enforce with a 400 (AXLLAMA_MAX_STOP, AXLLAMA_MAX_TOOLS;
 * docs/api.md, "Limits"). Process-wide: set once before serving (0 keeps a default); read by the
 * decoders on any thread. */
typedef struct {
    size_t max_stop;  /* stop sequences of a request; default CONFIG_DEFAULT_MAX_STOP */
    size_t max_tools; /* tool definitions of a request; default CONFIG_DEFAULT_MAX_TOOLS */
} api_limits;

void api_set_limits(const api_limits *limits);
api_limits api_get_limits(void);

/* obj[key], or NULL when it is absent or JSON null (Go's decoder treats both alike). */
json_t *api_field(json_t *obj, const char *key);

/* Frees the stop sequences a request decoder put into o and leaves it without any. */
void api_gen_options_free(gen_options *o);

/* The registry's models as a JSON array, newest modified first (the order of /api/tags and
 * /v1/models), each entry made by entry(m). models may be NULL (an empty array). */
json_t *api_model_list(const model_registry *models, json_t *(*entry)(const model_manifest *m));

/* Copies table (n routes) into routes, at most max of them; returns how many were copied. */
size_t api_copy_routes(const http_route *table, size_t n, http_route *routes, size_t max);

#endif
