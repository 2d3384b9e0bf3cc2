/* ollama_manage: Ollama's model-management routes, which axllama answers without ever changing a
 * model (its models are vendor packages described by manifests, docs/models.md):
 *   POST   /api/pull         an installed model: the success stream Ollama gives for an up-to-date
 *                            model (so "check or pull" clients go on); any other: 404 saying that
 *                            models are installed, not pulled
 *   POST   /api/push, /api/create, /api/copy, DELETE /api/delete, POST /api/blobs/{digest}:
 *                            Ollama's name checks and statuses (400 invalid name, 404 unknown
 *                            model), then 400 saying what is not supported and what to do instead
 *   HEAD   /api/blobs/{digest}  404: there is no blob store
 * Every error is {"error": message} (JSON), never gin's text 404. */
#include <stdlib.h>
#include <string.h>

#include "api/api_common.h"
#include "api/ollama_internal.h"
#include "common/buf.h"
#include "common/json_type.h"

#define MANAGE_DOCS "(docs/models.md)"

/* ------------------------------------------------------------------------------------ decoding */

/* A request body's fields: the first error is kept; every reader returns false once there is one. */
typedef struct {
    const char *go_struct; /* "PullRequest" ... for Go's type errors */
    json_t *body;
    http_response *error;
} manage_request;

/* Reads the body as Ollama's handlers do; false with the error in m->error. */
static bool manage_decode(const http_request *req, const char *go_struct, manage_request *m)
{
    m->go_struct = go_struct;
    m->error = ollama_decode_body(req, go_struct, &m->body);
    return !m->error;
}

static void manage_free(manage_request *m)
{
    json_decref(m->body);
}

/* A string field (absent or null: ""), with Go's message for another type. */
static bool manage_string(manage_request *m, const char *key, const char **out)
{
    *out = "";
    if (m->error)
        return false;
    json_t *v = api_field(m->body, key);
    if (v && !json_is_string(v)) {
        m->error = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                       "json: cannot unmarshal %s into Go struct field %s.%s of type string",
                                       json_is_boolean(v) ? "bool" : json_type_name(v, false), m->go_struct, key);
        return false;
    }
    if (v)
        *out = json_string_value(v);
    return true;
}

/* A bool field (absent or null: dflt). */
static bool manage_bool(manage_request *m, const char *key, bool dflt, bool *out)
{
    *out = dflt;
    if (m->error)
        return false;
    json_t *v = api_field(m->body, key);
    if (v && !json_is_boolean(v)) {
        m->error = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                       "json: cannot unmarshal %s into Go struct field %s.%s of type bool",
                                       json_type_name(v, false), m->go_struct, key);
        return false;
    }
    if (v)
        *out = json_is_true(v);
    return true;
}

/* `model`, or the deprecated `name` when model is empty (ollama-js still sends name). */
static bool manage_model_name(manage_request *m, const char **out)
{
    const char *model, *name;
    if (!manage_string(m, "model", &model) || !manage_string(m, "name", &name))
        return false;
    *out = model[0] ? model : name;
    return true;
}

static bool manage_name_valid(const char *name)
{
    char display[MODEL_NAME_DISPLAY_MAX];
    return name[0] && model_name_normalize(name, display, sizeof display);
}

/* ------------------------------------------------------------------------------------ pull */

/* What Ollama streams for a model that is already up to date, minus the per-layer lines: nothing
 * is downloaded or written here, the statuses only let clients that "pull to make sure" go on. */
static const char *const manage_pull_statuses[] = {"pulling manifest", "verifying sha256 digest", "writing manifest",
                                                   "success"};

/* POST /api/pull {"model"|"name", "insecure", "stream"} */
static http_response *ollama_handle_pull(const http_request *req, void *user)
{
    const ollama_api *api = user;
    manage_request m = {0};
    const char *name = "";
    bool stream = true, insecure = false;
    if (manage_decode(req, "PullRequest", &m) && manage_model_name(&m, &name) &&
        manage_bool(&m, "stream", true, &stream))
        manage_bool(&m, "insecure", false, &insecure);
    http_response *resp = m.error;
    if (!resp && !manage_name_valid(name)) {
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "invalid model name");
    } else if (!resp && !model_registry_find(api->models, name)) {
        resp = ollama_quoted_error(OLLAMA_STATUS_NOT_FOUND, "model ", name,
                                   " is not installed, and axllama cannot pull models: install the vendor's model "
                                   "package and its manifest " MANAGE_DOCS);
    } else if (!resp && !stream) {
        resp = http_response_static(OLLAMA_STATUS_OK, HTTP_CONTENT_TYPE_JSON, "{\"status\":\"success\"}");
    } else if (!resp) {
        strbuf out = {0};
        for (size_t i = 0; i < sizeof manage_pull_statuses / sizeof manage_pull_statuses[0]; i++)
            sb_printf(&out, "{\"status\":\"%s\"}\n", manage_pull_statuses[i]);
        size_t len = out.len;
        resp = http_response_take(OLLAMA_STATUS_OK, HTTP_CONTENT_TYPE_NDJSON, sb_steal(&out), len);
    }
    manage_free(&m);
    return resp;
}

/* ------------------------------------------------------------------------------------ push, create */

/* POST /api/push {"model"|"name", "insecure", "stream"} */
static http_response *ollama_handle_push(const http_request *req, void *user)
{
    const ollama_api *api = user;
    manage_request m = {0};
    const char *name = "";
    if (manage_decode(req, "PushRequest", &m))
        manage_model_name(&m, &name);
    http_response *resp = m.error;
    if (!resp && !name[0])
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "model is required");
    else if (!resp && !model_registry_find(api->models, name))
        resp = http_response_error(OLLAMA_STATUS_NOT_FOUND, "model '%s' not found", name);
    else if (!resp)
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                   "pushing models is not supported: axllama serves installed vendor model "
                                   "packages and has no registry to push to " MANAGE_DOCS);
    manage_free(&m);
    return resp;
}

/* POST /api/create {"model"|"name", "from", "files", "system", ...} */
static http_response *ollama_handle_create(const http_request *req, void *user)
{
    (void)user;
    manage_request m = {0};
    const char *name = "";
    if (manage_decode(req, "CreateRequest", &m))
        manage_model_name(&m, &name);
    http_response *resp = m.error;
    if (!resp && !manage_name_valid(name))
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "invalid model name");
    else if (!resp)
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                   "creating models is not supported: axllama runs models compiled for the NPU, "
                                   "each installed from its vendor package with a manifest " MANAGE_DOCS);
    manage_free(&m);
    return resp;
}

/* ------------------------------------------------------------------------------------ copy, delete */

/* POST /api/copy {"source", "destination"} */
static http_response *ollama_handle_copy(const http_request *req, void *user)
{
    const ollama_api *api = user;
    manage_request m = {0};
    const char *source = "", *destination = "";
    if (manage_decode(req, "CopyRequest", &m) && manage_string(&m, "source", &source))
        manage_string(&m, "destination", &destination);
    http_response *resp = m.error;
    if (!resp && !manage_name_valid(source))
        resp = ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "source ", source, " is invalid");
    else if (!resp && !manage_name_valid(destination))
        resp = ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "destination ", destination, " is invalid");
    else if (!resp && !model_registry_find(api->models, source))
        resp = ollama_quoted_error(OLLAMA_STATUS_NOT_FOUND, "model ", source, " not found");
    else if (!resp)
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                   "copying models is not supported: a model is its manifest file; copy the manifest "
                                   "and give the copy another \"name\" " MANAGE_DOCS);
    manage_free(&m);
    return resp;
}

/* DELETE /api/delete {"model"|"name"} */
static http_response *ollama_handle_delete(const http_request *req, void *user)
{
    const ollama_api *api = user;
    manage_request m = {0};
    const char *name = "";
    if (manage_decode(req, "DeleteRequest", &m))
        manage_model_name(&m, &name);
    http_response *resp = m.error;
    if (!resp && !manage_name_valid(name)) {
        resp = ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "name ", name, " is invalid");
    } else if (!resp && !model_registry_find(api->models, name)) {
        resp = http_response_error(OLLAMA_STATUS_NOT_FOUND, "model '%s' not found", name);
    } else if (!resp) {
        resp =
            ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "deleting models is not supported: remove the manifest of ",
                                name, " from the models directory, or uninstall its vendor package " MANAGE_DOCS);
    }
    manage_free(&m);
    return resp;
}

/* ------------------------------------------------------------------------------------ blobs */

/* The digest of /api/blobs/{digest}. */
static const char *manage_blob_digest(const http_request *req)
{
    static const char prefix[] = "/api/blobs/";
    return strncmp(req->path, prefix, sizeof prefix - 1) == 0 ? req->path + sizeof prefix - 1 : req->path;
}

/* HEAD /api/blobs/{digest}: no blob exists here. */
static http_response *ollama_handle_blob_head(const http_request *req, void *user)
{
    (void)user;
    return ollama_quoted_error(OLLAMA_STATUS_NOT_FOUND, "blob ", manage_blob_digest(req), " not found");
}

/* POST /api/blobs/{digest}: the first step of creating a model from files. */
static http_response *ollama_handle_blob_post(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                               "uploading blobs is not supported: axllama cannot create models, it runs the "
                               "vendor's model packages " MANAGE_DOCS);
}

/* ------------------------------------------------------------------------------------ routes */

size_t ollama_manage_routes(ollama_api *api, http_route *routes, size_t max)
{
    const http_route all[] = {
        {"POST", "/api/pull", ollama_handle_pull, api, false},
        {"POST", "/api/push", ollama_handle_push, api, false},
        {"POST", "/api/create", ollama_handle_create, api, false},
        {"POST", "/api/copy", ollama_handle_copy, api, false},
        {"DELETE", "/api/delete", ollama_handle_delete, api, false},
        {"HEAD", "/api/blobs/*", ollama_handle_blob_head, api, false},
        {"POST", "/api/blobs/*", ollama_handle_blob_post, api, false},
    };
    return api_copy_routes(all, sizeof all / sizeof all[0], routes, max);
}
