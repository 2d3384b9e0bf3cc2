/* openai_embeddings: POST /v1/embeddings. The NPU models axllama runs cannot embed, so after the
 * checks Ollama's layer makes (model, input, encoding_format) an installed model gets the
 * capability error as an OpenAI error object: 400 invalid_request_error, param "model",
 * "\"<model>\" does not support embeddings"; an unknown model 404 "model '<x>' not found". */
#include <string.h>

#include "api/api_common.h"
#include "api/openai_internal.h"
#include "common/json_type.h"

http_response *openai_handle_embeddings(const http_request *req, void *user)
{
    const openai_api *api = user;
    json_t *body;
    http_response *resp = openai_decode_body(req, &body);
    if (resp)
        return resp;
    json_t *model = api_field(body, "model"), *input = api_field(body, "input"),
           *encoding = api_field(body, "encoding_format");
    bool input_ok = json_is_string(input) || (json_is_array(input) && json_array_size(input) > 0);
    if (!model || (json_is_string(model) && !json_string_length(model)))
        resp = openai_bad_param("model", "model is required");
    else if (!json_is_string(model))
        resp = openai_bad_param("model", "invalid type for 'model': expected a string, got %s",
                                json_type_name(model, false));
    else if (!input_ok)
        resp = openai_bad_param("input", "invalid input");
    else if (encoding && !(json_is_string(encoding) && (!strcmp(json_string_value(encoding), "float") ||
                                                        !strcmp(json_string_value(encoding), "base64"))))
        resp = openai_bad_param(
            "encoding_format", "Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].",
            json_is_string(encoding) ? json_string_value(encoding) : json_type_name(encoding, false));
    else if (!model_registry_find(api->models, json_string_value(model)))
        resp = openai_error(OPENAI_STATUS_NOT_FOUND, "model '%s' not found", json_string_value(model));
    else
        resp = openai_bad_param("model", "\"%s\" does not support embeddings", json_string_value(model));
    json_decref(body);
    return resp;
}
