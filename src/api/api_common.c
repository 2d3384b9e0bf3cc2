/* api_common: pieces shared by the Ollama and OpenAI APIs (see api_common.h). */
#include "api/api_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "models/manifest.h"

bool api_wait_event(const http_request *req, job *j, job_event *ev)
{
    for (;;) {
        if (job_next(j, ev, HTTP_STREAM_POLL_S)) {
            if (http_request_abandoned(req)) {
                job_event_free(ev);
                job_cancel(j);
                return false;
            }
            return true;
        }
        if (http_request_abandoned(req)) {
            job_cancel(j);
            return false;
        }
    }
}

void api_gen_options_free(gen_options *o)
{
    for (size_t i = 0; i < o->n_stop; i++)
        free(o->stop[i]);
    free(o->stop);
    o->stop = NULL;
    o->n_stop = 0;
}

json_t *api_load_body(const char *body, size_t len, size_t flags, json_error_t *err)
{
    if (utf8_is_valid(body, len))
        return json_loadb(body, len, flags, err);
    strbuf clean = {0};
    utf8_append_lossy(&clean, body, len);
    json_t *v = json_loadb(clean.data ? clean.data : "", clean.len, flags, err);
    sb_free(&clean);
    return v;
}

json_t *api_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

int api_by_modified_desc(const void *a, const void *b)
{
    const model_manifest *x = *(const model_manifest *const *)a, *y = *(const model_manifest *const *)b;
    return (x->modified < y->modified) - (x->modified > y->modified);
}

void api_logf(void (*log)(void *user, const char *line), void *user, const char *fmt, ...)
{
    if (!log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(user, line);
}
