/* api_common: the small pieces the Ollama API (ollama.c) and the OpenAI API (openai.c) share:
 * waiting for a job's next event while watching the client, freeing decoded options, JSON member
 * lookup with null meaning absent, body parsing that repairs UTF-8 like Go, the newest-first order of model listings, and printf-style logging through an API's log
 * callback. */
#ifndef AXLLAMA_API_API_COMMON_H
#define AXLLAMA_API_API_COMMON_H

#include <stdbool.h>

#include <jansson.h>

#include "net/http_server.h"
#include "engine/engine.h"

/* The next event of j, in waits of HTTP_STREAM_POLL_S; false (and j cancelled) when the client
 * left or the server stops. */
bool api_wait_event(const http_request *req, job *j, job_event *ev);

/* json_loadb of a request body with flags, after replacing invalid UTF-8 by U+FFFD as Go's
 * decoder does (jansson refuses such bytes; Ollama accepts them). */
json_t *api_load_body(const char *body, size_t len, size_t flags, json_error_t *err);

/* obj[key], or NULL when it is absent or JSON null (Go's decoder treats both alike). */
json_t *api_field(json_t *obj, const char *key);

/* qsort comparator for an array of const model_manifest *: newest modified first. */
int api_by_modified_desc(const void *a, const void *b);

/* Frees the stop sequences a request decoder put into o and leaves it without any. */
void api_gen_options_free(gen_options *o);

/* Formats one line and hands it to log (no-op when log is NULL). */
void api_logf(void (*log)(void *user, const char *line), void *user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
