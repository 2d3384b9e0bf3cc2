/* ollama_embed: POST /api/embed and the legacy POST /api/embeddings. The NPU models axllama runs are
 * chat models without an embedding output, so both answer Ollama's capability error for a model
 * that cannot embed, after Ollama's own checks in its order (body, input type, model):
 *   400 "\"<model>\" does not support embeddings"     an installed model (as the request sent it)
 *   404 "model \"<model>\" not found, try pulling it first"   an unknown model
 *   400 "invalid input type" (embed), "model is required" (embeddings with no model). */
#include <string.h>

#include "api/api_common.h"
#include "api/ollama_internal.h"
#include "common/buf.h"
#include "common/json_type.h"

/* The model field of an embedding request; NULL with *err set on a wrong type. */
static const char *embed_model(json_t *body, const char *go_struct, http_response **err)
{
    json_t *v = api_field(body, "model");
    if (v && !json_is_string(v)) {
        *err = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                   "json: cannot unmarshal %s into Go struct field %s.model of type string",
                                   json_is_boolean(v) ? "bool" : json_type_name(v, false), go_struct);
        return NULL;
    }
    return v ? json_string_value(v) : "";
}

/* An unknown model (Ollama's scheduler wording), or the capability error for an installed one. */
static http_response *embed_refusal(const ollama_api *api, const char *model)
{
    strbuf msg = {0};
    unsigned status;
    if (!model_registry_find(api->models, model)) {
        status = OLLAMA_STATUS_NOT_FOUND;
        sb_puts(&msg, "model ");
        ollama_go_quote(&msg, model);
        sb_puts(&msg, " not found, try pulling it first");
    } else {
        status = OLLAMA_STATUS_BAD_REQUEST;
        ollama_go_quote(&msg, model);
        sb_puts(&msg, " does not support embeddings");
    }
    http_response *r = http_response_error(status, "%s", msg.data);
    sb_free(&msg);
    return r;
}

/* POST /api/embed {"model", "input": string | [string], "truncate", "dimensions", ...} */
static http_response *ollama_handle_embed(const http_request *req, void *user)
{
    const ollama_api *api = user;
    json_t *body;
    http_response *resp = ollama_decode_body(req, "EmbedRequest", &body);
    if (resp)
        return resp;
    json_t *input = api_field(body, "input");
    bool input_ok = !input || json_is_string(input) || json_is_array(input);
    for (size_t i = 0; input_ok && json_is_array(input) && i < json_array_size(input); i++)
        input_ok = json_is_string(json_array_get(input, i));
    const char *model = embed_model(body, "EmbedRequest", &resp);
    if (!resp && !input_ok)
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "invalid input type");
    else if (!resp && !model[0])
        resp = http_response_error(OLLAMA_STATUS_NOT_FOUND, "model '' not found");
    else if (!resp)
        resp = embed_refusal(api, model);
    json_decref(body);
    return resp;
}

/* POST /api/embeddings {"model", "prompt", ...} (superseded by /api/embed) */
static http_response *ollama_handle_embeddings(const http_request *req, void *user)
{
    const ollama_api *api = user;
    json_t *body;
    http_response *resp = ollama_decode_body(req, "EmbeddingRequest", &body);
    if (resp)
        return resp;
    json_t *prompt = api_field(body, "prompt");
    const char *model = embed_model(body, "EmbeddingRequest", &resp);
    if (!resp && prompt && !json_is_string(prompt))
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                   "json: cannot unmarshal %s into Go struct field EmbeddingRequest.prompt of type "
                                   "string",
                                   json_is_boolean(prompt) ? "bool" : json_type_name(prompt, false));
    else if (!resp && !model[0])
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "model is required");
    else if (!resp)
        resp = embed_refusal(api, model);
    json_decref(body);
    return resp;
}

size_t ollama_embed_routes(ollama_api *api, http_route *routes, size_t max)
{
    const http_route all[] = {
        {"POST", "/api/embed", ollama_handle_embed, api, false},
        {"POST", "/api/embeddings", ollama_handle_embeddings, api, false},
    };
    return api_copy_routes(all, sizeof all / sizeof all[0], routes, max);
}
