/* openai_models: GET /v1/models (the registry newest first, as /api/tags, in OpenAI's list shape)
 * and GET /v1/models/{model} (one model, or a 404 error object). */
#include <string.h>

#include "api/api_common.h"
#include "api/openai_internal.h"

/* The namespace of a display name ("ns/model:tag" -> "ns"), "library" without one. */
static json_t *openai_owner_of(const char *name)
{
    const char *last = strrchr(name, '/');
    if (!last)
        return json_string("library");
    const char *start = last;
    while (start > name && start[-1] != '/')
        start--;
    return json_stringn(start, (size_t)(last - start));
}

static json_t *openai_model_object(const char *id, const model_manifest *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", http_json_string(id));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer((json_int_t)m->modified));
    json_object_set_new(o, "owned_by", openai_owner_of(m->name));
    return o;
}

static json_t *openai_listed_model(const model_manifest *m)
{
    return openai_model_object(m->name, m);
}

http_response *openai_handle_models(const http_request *req, void *user)
{
    (void)req;
    const openai_api *api = user;
    json_t *root = json_object();
    json_object_set_new(root, "object", json_string("list"));
    json_object_set_new(root, "data", api_model_list(api->models, openai_listed_model));
    http_response *resp = http_response_json(OPENAI_STATUS_OK, root);
    json_decref(root);
    return resp;
}

/* id is the path parameter exactly as given. */
http_response *openai_handle_model(const http_request *req, void *user)
{
    const openai_api *api = user;
    const char *name = req->path + strlen("/v1/models/");
    const model_manifest *m = model_registry_find(api->models, name);
    if (!m)
        return openai_error(OPENAI_STATUS_NOT_FOUND, "model '%s' not found", name);
    json_t *o = openai_model_object(name, m);
    http_response *resp = http_response_json(OPENAI_STATUS_OK, o);
    json_decref(o);
    return resp;
}
