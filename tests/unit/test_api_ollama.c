/* test_api_ollama: the native Ollama API (src/api/ollama.c) over the real HTTP server
 * (src/api/http_server.c) with libcurl, against a FAKE engine defined in this file (every engine_*
 * and job_* function of engine/engine.h, with scripted events), so the linker never pulls the real
 * engine from the archive. Covers every route, statuses and exact error texts, body shapes,
 * NDJSON framing, errors before/after streaming, U+2028/2029/0085 escaping, 404/405 texts, CORS,
 * the Host guard, load/unload, keep_alive, think and options validation, tools (tojson, tool_calls
 * streamed and not), format (instruction, validation, errors), body limits, keep-alive
 * connections, and cancellation when a client disconnects or the server stops. The last test runs
 * `axllama serve` itself (needs AXLLAMA_BUILD; skipped without it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "net/http_server.h"
#include "api/ollama.h"
#include "common/buf.h"
#include "engine/engine.h"
#include "models/manifest.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ================================================================== the fake engine */

typedef struct {
    job_event_kind kind;
    const char *text;
    int http_status;
    const char *done_reason;
    double delay_s; /* after the previous event (or the submit) */
    const char *tool_name, *tool_arguments; /* JOB_EV_TOOL_CALL */
} fake_step;

#define MAX_STEPS 16

typedef struct {
    fake_step steps[MAX_STEPS];
    size_t n;
} fake_script;

struct engine {
    int unused;
};

struct job {
    fake_script script;
    size_t pos;
    double last; /* when the previous event was handed out */
};

typedef struct {
    char role[16];
    char content[256];
    char reasoning[64];
    bool has_reasoning;
    size_t n_tool_calls;
    char tool_name[32];
    char tool_args[128];
} recorded_message;

typedef struct {
    pthread_mutex_t lock;
    fake_script script;   /* for every following submit */
    int submit_status;    /* 200, or the status engine_submit answers */
    char submit_err[256];
    /* what the API did */
    int submits, cancels, releases, unloads;
    int live_jobs; /* submitted and not yet released (never reset: before_each waits for 0) */
    double last_cancel_at;
    char unloaded[128];
    job_kind kind;
    char model[128];
    char raw_prompt[256];
    int think;
    gen_options options;
    char stop[4][32];
    bool has_keep_alive;
    double keep_alive_s;
    recorded_message msgs[8];
    size_t n_msgs;
    char tools[4][512];
    size_t n_tools;
    char system_suffix[1024];
    bool has_system_suffix;
    /* /api/ps */
    engine_loaded_model ps[4];
    size_t n_ps;
} fake_state;

static fake_state fake = {.lock = PTHREAD_MUTEX_INITIALIZER, .submit_status = 200};

static void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    memset(&fake.script, 0, sizeof fake.script);
    fake.submit_status = 200;
    fake.submit_err[0] = '\0';
    fake.submits = fake.cancels = fake.releases = fake.unloads = 0;
    fake.last_cancel_at = 0;
    fake.unloaded[0] = fake.model[0] = fake.raw_prompt[0] = '\0';
    fake.n_msgs = 0;
    fake.n_ps = 0;
    fake.n_tools = 0;
    fake.system_suffix[0] = '\0';
    fake.has_system_suffix = false;
    pthread_mutex_unlock(&fake.lock);
}

static void fake_script_set(const fake_step *steps, size_t n)
{
    pthread_mutex_lock(&fake.lock);
    memset(&fake.script, 0, sizeof fake.script);
    for (size_t i = 0; i < n && i < MAX_STEPS; i++)
        fake.script.steps[i] = steps[i];
    fake.script.n = n;
    pthread_mutex_unlock(&fake.lock);
}

/* A copy of what the fake recorded (assert on the copy: an assertion must never fire while the
 * lock is held, or every later test would block on it). */
static fake_state fake_snapshot(void)
{
    fake_state copy;
    pthread_mutex_lock(&fake.lock);
    memcpy(&copy, &fake, sizeof copy);
    pthread_mutex_unlock(&fake.lock);
    return copy;
}

/* Waits (up to 2 s) until *counter reaches want; returns its value. The server releases a job
 * after the last byte went out, so the client may see the end first. */
static int wait_count(const int *counter, int want);

static int fake_count(const int *counter)
{
    pthread_mutex_lock(&fake.lock);
    int v = *counter;
    pthread_mutex_unlock(&fake.lock);
    return v;
}

static int wait_count(const int *counter, int want)
{
    double t0 = now_s();
    while (fake_count(counter) < want && now_s() - t0 < 2)
        sleep_s(0.002);
    return fake_count(counter);
}

engine *engine_new(const engine_config *cfg)
{
    (void)cfg;
    return calloc(1, sizeof(engine));
}

void engine_free(engine *e)
{
    free(e);
}

int engine_submit(engine *e, const job_request *req, job **out, char *err, size_t errlen)
{
    (void)e;
    pthread_mutex_lock(&fake.lock);
    fake.submits++;
    fake.kind = req->kind;
    snprintf(fake.model, sizeof fake.model, "%s", req->model);
    snprintf(fake.raw_prompt, sizeof fake.raw_prompt, "%s", req->raw_prompt ? req->raw_prompt : "");
    fake.think = req->think;
    fake.options = req->options;
    fake.options.stop = NULL;
    for (size_t i = 0; i < req->options.n_stop && i < 4; i++)
        snprintf(fake.stop[i], sizeof fake.stop[i], "%s", req->options.stop[i]);
    fake.has_keep_alive = req->has_keep_alive;
    fake.keep_alive_s = req->keep_alive_s;
    fake.n_tools = 0;
    for (size_t i = 0; i < req->n_tools && i < 4; i++)
        snprintf(fake.tools[fake.n_tools++], sizeof fake.tools[0], "%s", req->tools_json[i]);
    fake.has_system_suffix = req->system_suffix != NULL;
    snprintf(fake.system_suffix, sizeof fake.system_suffix, "%s", req->system_suffix ? req->system_suffix : "");
    fake.n_msgs = 0;
    for (size_t i = 0; i < req->n_messages && i < 8; i++) {
        recorded_message *m = &fake.msgs[fake.n_msgs++];
        memset(m, 0, sizeof *m);
        snprintf(m->role, sizeof m->role, "%s", req->messages[i].role);
        snprintf(m->content, sizeof m->content, "%s", req->messages[i].content ? req->messages[i].content : "");
        m->has_reasoning = req->messages[i].reasoning_content != NULL;
        snprintf(m->reasoning, sizeof m->reasoning, "%s",
                 m->has_reasoning ? req->messages[i].reasoning_content : "");
        m->n_tool_calls = req->messages[i].n_tool_calls;
        if (m->n_tool_calls) {
            snprintf(m->tool_name, sizeof m->tool_name, "%s", req->messages[i].tool_calls[0].name);
            snprintf(m->tool_args, sizeof m->tool_args, "%s", req->messages[i].tool_calls[0].arguments_json);
        }
    }
    int status = fake.submit_status;
    if (status != 200) {
        snprintf(err, errlen, "%s", fake.submit_err);
        pthread_mutex_unlock(&fake.lock);
        return status;
    }
    job *j = calloc(1, sizeof *j);
    fake.live_jobs++;
    j->script = fake.script;
    j->last = now_s();
    pthread_mutex_unlock(&fake.lock);
    *out = j;
    return 200;
}

bool job_next(job *j, job_event *ev, double timeout_s)
{
    if (j->pos >= j->script.n) {
        sleep_s(timeout_s);
        return false;
    }
    const fake_step *s = &j->script.steps[j->pos];
    double wait = j->last + s->delay_s - now_s();
    if (wait > 0) {
        sleep_s(wait < timeout_s ? wait : timeout_s);
        if (wait > timeout_s)
            return false;
    }
    memset(ev, 0, sizeof *ev);
    ev->kind = s->kind;
    ev->text = s->text ? strdup(s->text) : NULL;
    ev->http_status = s->http_status;
    ev->done_reason = s->done_reason;
    ev->tool_name = s->tool_name ? strdup(s->tool_name) : NULL;
    ev->tool_arguments = s->tool_arguments ? strdup(s->tool_arguments) : NULL;
    if (s->kind == JOB_EV_DONE)
        ev->metrics = (job_metrics){.total_ns = 5000000, .load_ns = 1000, .prompt_eval_ns = 2000000,
                                    .eval_ns = 3000000, .prompt_eval_count = 7, .eval_count = 3};
    j->pos++;
    j->last = now_s();
    return true;
}

void job_event_free(job_event *ev)
{
    free(ev->text);
    free(ev->tool_name);
    free(ev->tool_arguments);
    ev->text = ev->tool_name = ev->tool_arguments = NULL;
}

void job_cancel(job *j)
{
    (void)j;
    pthread_mutex_lock(&fake.lock);
    fake.cancels++;
    fake.last_cancel_at = now_s();
    pthread_mutex_unlock(&fake.lock);
}

void job_release(job *j)
{
    pthread_mutex_lock(&fake.lock);
    fake.releases++;
    fake.live_jobs--;
    pthread_mutex_unlock(&fake.lock);
    free(j);
}

bool engine_unload(engine *e, const char *model)
{
    (void)e;
    pthread_mutex_lock(&fake.lock);
    fake.unloads++;
    snprintf(fake.unloaded, sizeof fake.unloaded, "%s", model);
    pthread_mutex_unlock(&fake.lock);
    return true;
}

size_t engine_ps(engine *e, engine_loaded_model *out, size_t max)
{
    (void)e;
    pthread_mutex_lock(&fake.lock);
    size_t n = fake.n_ps < max ? fake.n_ps : max;
    memcpy(out, fake.ps, n * sizeof *out);
    pthread_mutex_unlock(&fake.lock);
    return n;
}

/* ================================================================== the server under test */

static model_manifest g_models[2];
static model_registry g_registry = {g_models, 2};
static engine *g_engine;
static ollama_api g_api;
static http_route g_routes[OLLAMA_API_MAX_ROUTES];
static size_t g_n_routes;
static http_server *g_srv;
static char g_base[64];

static const char *const g_origins[] = {"http://localhost", "http://localhost:*", "app://*",
                                        "chrome-extension://abcdef", NULL};

static void quiet_log(void *user, const char *line)
{
    (void)user;
    (void)line;
}

static http_server *start_server(const char *host, const char *const *origins, size_t max_body)
{
    http_server_config cfg = {
        .host = host,
        .port = 0,
        .routes = g_routes,
        .n_routes = g_n_routes,
        .origins = origins,
        .max_body_bytes = max_body,
        .log = quiet_log,
    };
    char err[256];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    if (!srv)
        fail_msg("http_server_start: %s", err);
    return srv;
}

static void base_url(const http_server *srv, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%u", (unsigned)http_server_port(srv));
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static char *empty_list[] = {NULL};
    g_models[0] = (model_manifest){
        .name = "qwen3-test:latest",
        .modified = 1000000000,
        .runtime_args = empty_list,
        .env = empty_list,
        .template_family = CHAT_TEMPLATE_QWEN3,
        .max_prefill = 2048,
        .max_positions = 2559,
        .system_prompt = "You are a test.",
        .thinking = true,
        .has_temperature = true,
        .temperature = 0.7,
        .has_top_k = true,
        .top_k = 20,
        .family = "qwen3",
        .parameter_size = "4.0B",
        .quantization_level = "W8A16",
        .format = "axmodel",
        .size = 5000000000ULL,
    };
    memset(g_models[0].digest, 'a', 64);
    g_models[1] = (model_manifest){
        .name = "plain:latest",
        .modified = 1100000000,
        .runtime_args = empty_list,
        .env = empty_list,
        .template_family = CHAT_TEMPLATE_QWEN25,
        .max_prefill = 1024,
        .max_positions = 1280,
        .size = 1000,
    };
    memset(g_models[1].digest, 'b', 64);
    engine_config ecfg = {.models = &g_registry};
    g_engine = engine_new(&ecfg);
    g_api = (ollama_api){.engine = g_engine, .models = &g_registry, .log = quiet_log};
    g_n_routes = ollama_api_routes(&g_api, g_routes, OLLAMA_API_MAX_ROUTES);
    g_srv = start_server("127.0.0.1", g_origins, 0);
    base_url(g_srv, g_base, sizeof g_base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_server_stop(g_srv);
    engine_free(g_engine);
    curl_global_cleanup();
    return 0;
}

static int before_each(void **state)
{
    (void)state;
    /* the server releases a job after the last byte went out: let the previous test's jobs go
     * first, or their late release would count in this test */
    for (double t0 = now_s(); fake_count(&fake.live_jobs) > 0 && now_s() - t0 < 5;)
        sleep_s(0.002);
    fake_reset();
    return 0;
}

/* ================================================================== HTTP client helpers */

typedef struct {
    long status;
    strbuf body;
    strbuf headers;
    long connects;
    CURLcode rc;
    json_t *json; /* the body parsed, when it is JSON */
} http_result;

static size_t collect(char *data, size_t size, size_t n, void *sb)
{
    sb_append(sb, data, size * n);
    return size * n;
}

typedef struct {
    const char *method;
    const char *path;
    const char *body;     /* NULL: none */
    const char *headers[6];
    const char *base;     /* NULL: g_base */
    long timeout_ms;      /* 0: 10 s */
    CURL *curl;           /* NULL: a fresh handle */
} request_spec;

static http_result perform(const request_spec *rq)
{
    http_result r = {.rc = CURLE_FAILED_INIT};
    sb_append(&r.body, "", 0);
    sb_append(&r.headers, "", 0);
    CURL *curl = rq->curl ? rq->curl : curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", rq->base ? rq->base : g_base, rq->path);
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; i < 6 && rq->headers[i]; i++)
        hdrs = curl_slist_append(hdrs, rq->headers[i]);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, rq->timeout_ms ? rq->timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (rq->body) { /* like `curl -d`: application/x-www-form-urlencoded */
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(rq->body));
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    r.rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.connects);
    curl_slist_free_all(hdrs);
    if (!rq->curl)
        curl_easy_cleanup(curl);
    sb_append(&r.body, "", 0);
    r.json = json_loads(r.body.data, 0, NULL);
    return r;
}

static http_result must(const request_spec *rq)
{
    http_result r = perform(rq);
    if (r.rc != CURLE_OK)
        fail_msg("%s %s: %s", rq->method, rq->path, curl_easy_strerror(r.rc));
    return r;
}

static http_result get(const char *path)
{
    return must(&(request_spec){.method = "GET", .path = path});
}

static http_result post(const char *path, const char *body)
{
    return must(&(request_spec){.method = "POST", .path = path, .body = body});
}

static void result_free(http_result *r)
{
    sb_free(&r->body);
    sb_free(&r->headers);
    json_decref(r->json);
}

/* The last value of a response header, "" when absent. */
static const char *header(const http_result *r, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t len = strlen(name);
    for (const char *line = r->headers.data; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        if (line_len > len && strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(line + line_len - v), v);
        }
        line = end ? end + 2 : NULL;
    }
    return out;
}

static void assert_header(const http_result *r, const char *name, const char *expected)
{
    char v[512];
    header(r, name, v, sizeof v);
    if (strcmp(v, expected) != 0)
        fail_msg("header %s: expected '%s', got '%s'", name, expected, v);
}

/* Status and {"error": message} with a JSON content type. */
static void assert_error(http_result *r, long status, const char *message)
{
    if (r->status != status || !r->json || !json_is_string(json_object_get(r->json, "error")) ||
        strcmp(json_string_value(json_object_get(r->json, "error")), message) != 0)
        fail_msg("expected %ld {\"error\":\"%s\"}\n     got %ld %s", status, message, r->status, r->body.data);
    assert_int_equal(json_object_size(r->json), 1);
    assert_header(r, "Content-Type", "application/json; charset=utf-8");
}

static void expect_error(const char *path, const char *body, long status, const char *message)
{
    http_result r = post(path, body);
    assert_error(&r, status, message);
    result_free(&r);
}

/* Splits an NDJSON body: every line must be non-empty and parse; the body ends with "\n". */
static size_t ndjson_lines(const http_result *r, json_t **lines, size_t max)
{
    const char *p = r->body.data;
    size_t n = 0;
    if (r->body.len == 0 || p[r->body.len - 1] != '\n')
        fail_msg("NDJSON body does not end with a newline: %s", p);
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (nl == p)
            fail_msg("blank line in NDJSON body: %s", r->body.data);
        json_error_t jerr;
        json_t *v = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        if (!v)
            fail_msg("line %zu is not JSON (%s): %.*s", n, jerr.text, (int)(nl - p), p);
        if (n < max)
            lines[n] = v;
        else
            json_decref(v);
        n++;
        p = nl + 1;
    }
    return n;
}

static void free_lines(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
}

static const char *jget_str(const json_t *o, const char *path)
{
    char key[64];
    const json_t *cur = o;
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        cur = json_object_get(cur, key);
        path += n + (dot ? 1 : 0);
    }
    return json_is_string(cur) ? json_string_value(cur) : NULL;
}

static bool is_rfc3339(const char *s)
{
    if (!s)
        return false;
    int y, mo, d, h, mi, sec;
    char rest[32] = "";
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%31s", &y, &mo, &d, &h, &mi, &sec, rest) != 7)
        return false;
    return rest[0] == 'Z' || rest[0] == '+' || rest[0] == '-' || rest[0] == '.';
}

static const fake_step STEPS_HELLO[] = {
    {.kind = JOB_EV_CONTENT, .text = "Hel"},
    {.kind = JOB_EV_CONTENT, .text = "lo"},
    {.kind = JOB_EV_DONE, .done_reason = "stop"},
};

static const fake_step STEPS_THINK_HELLO[] = {
    {.kind = JOB_EV_THINKING, .text = "Hm"},
    {.kind = JOB_EV_THINKING, .text = "m."},
    {.kind = JOB_EV_CONTENT, .text = "Hel"},
    {.kind = JOB_EV_CONTENT, .text = "lo"},
    {.kind = JOB_EV_DONE, .done_reason = "stop"},
};

#define SET_SCRIPT(steps) fake_script_set(steps, sizeof steps / sizeof steps[0])

/* ================================================================== plain routes */

static void test_root_get_and_head(void **state)
{
    (void)state;
    http_result r = get("/");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "Ollama is running");
    assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
    result_free(&r);
    r = must(&(request_spec){.method = "HEAD", .path = "/"});
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "");
    assert_header(&r, "Content-Length", "17");
    result_free(&r);
}

static void test_version_is_numeric_and_at_least_0_6_4(void **state)
{
    (void)state;
    http_result r = get("/api/version");
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    const char *v = jget_str(r.json, "version");
    assert_non_null(v);
    assert_string_equal(v, OLLAMA_API_VERSION);
    int a, b, c;
    char tail;
    assert_int_equal(sscanf(v, "%d.%d.%d%c", &a, &b, &c, &tail), 3);
    assert_true(a > 0 || b > 6 || (b == 6 && c >= 4));
    result_free(&r);
    r = must(&(request_spec){.method = "HEAD", .path = "/api/version"});
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "");
    result_free(&r);
}

static void test_unknown_path_is_404_text(void **state)
{
    (void)state;
    const char *paths[] = {"/nope", "/api", "/api/version/", "/api/pull"};
    for (size_t i = 0; i < 4; i++) {
        http_result r = get(paths[i]);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.body.data, "404 page not found");
        assert_header(&r, "Content-Type", "text/plain");
        result_free(&r);
    }
}

static void test_wrong_method_is_405_text(void **state)
{
    (void)state;
    const char *cases[][2] = {{"GET", "/api/chat"}, {"DELETE", "/api/tags"}, {"POST", "/api/ps"},
                              {"HEAD", "/api/ps"}, {"PUT", "/"}};
    for (size_t i = 0; i < 5; i++) {
        http_result r = must(&(request_spec){.method = cases[i][0], .path = cases[i][1]});
        assert_int_equal(r.status, 405);
        if (strcmp(cases[i][0], "HEAD") != 0)
            assert_string_equal(r.body.data, "405 method not allowed");
        assert_header(&r, "Content-Type", "text/plain");
        result_free(&r);
    }
}

static void test_keep_alive_connection_is_reused(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    long total = 0;
    for (int i = 0; i < 5; i++) {
        http_result r = must(&(request_spec){.method = i % 2 ? "GET" : "POST", .path = i % 2 ? "/api/version" : "/api/show",
                                             .body = i % 2 ? NULL : "{\"model\":\"plain\"}", .curl = curl});
        assert_int_equal(r.status, 200);
        total += r.connects;
        result_free(&r);
    }
    curl_easy_cleanup(curl);
    assert_int_equal(total, 1);
}

/* ================================================================== tags, show, ps */

static void assert_details(const json_t *d, const char *family)
{
    assert_non_null(d);
    const char *keys[] = {"parent_model", "format", "family", "families", "parameter_size", "quantization_level"};
    for (size_t i = 0; i < 6; i++)
        if (!json_object_get(d, keys[i]))
            fail_msg("details lacks %s", keys[i]);
    assert_string_equal(json_string_value(json_object_get(d, "family")), family);
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "families"), 0)), family);
}

static void test_tags_lists_models_newest_first(void **state)
{
    (void)state;
    http_result r = get("/api/tags");
    assert_int_equal(r.status, 200);
    json_t *models = json_object_get(r.json, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *first = json_array_get(models, 0), *second = json_array_get(models, 1);
    assert_string_equal(jget_str(first, "name"), "plain:latest"); /* modified later */
    assert_string_equal(jget_str(first, "model"), "plain:latest");
    assert_string_equal(jget_str(second, "name"), "qwen3-test:latest");
    assert_string_equal(jget_str(second, "model"), "qwen3-test:latest");
    assert_int_equal(strlen(jget_str(second, "digest")), 64);
    assert_true(strncmp(jget_str(second, "digest"), "aaaa", 4) == 0);
    assert_true(is_rfc3339(jget_str(second, "modified_at")));
    assert_int_equal(json_integer_value(json_object_get(second, "size")), 5000000000LL);
    assert_details(json_object_get(second, "details"), "qwen3");
    assert_details(json_object_get(first, "details"), "qwen2");
    assert_string_equal(jget_str(second, "details.parameter_size"), "4.0B");
    assert_string_equal(jget_str(second, "details.format"), "axmodel");
    result_free(&r);
    r = must(&(request_spec){.method = "HEAD", .path = "/api/tags"});
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_show_reports_model_info_and_capabilities(void **state)
{
    (void)state;
    http_result r = post("/api/show", "{\"model\":\"qwen3-test\"}");
    assert_int_equal(r.status, 200);
    json_t *info = json_object_get(r.json, "model_info");
    assert_non_null(info);
    assert_string_equal(json_string_value(json_object_get(info, "general.architecture")), "qwen3");
    assert_string_equal(json_string_value(json_object_get(info, "general.basename")), "qwen3-test");
    assert_int_equal(json_integer_value(json_object_get(info, "qwen3.context_length")), 2559);
    assert_int_equal(json_integer_value(json_object_get(info, "general.parameter_count")), 4000000000LL);
    json_t *caps = json_object_get(r.json, "capabilities");
    assert_int_equal(json_array_size(caps), 3); /* Ollama's order: completion, tools, ..., thinking */
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "completion");
    assert_string_equal(json_string_value(json_array_get(caps, 1)), "tools"); /* a Qwen3 template */
    assert_string_equal(json_string_value(json_array_get(caps, 2)), "thinking");
    assert_string_equal(jget_str(r.json, "system"), "You are a test.");
    const char *params = jget_str(r.json, "parameters");
    assert_non_null(params);
    assert_non_null(strstr(params, "temperature                    0.7"));
    assert_non_null(strstr(params, "top_k                          20"));
    assert_non_null(jget_str(r.json, "template"));
    assert_non_null(jget_str(r.json, "modelfile"));
    assert_details(json_object_get(r.json, "details"), "qwen3");
    assert_true(is_rfc3339(jget_str(r.json, "modified_at")));

    /* every spelling of the name gives the same answer */
    const char *same[] = {"{\"model\":\"qwen3-test:latest\"}", "{\"name\":\"qwen3-test\"}",
                          "{\"model\":\"registry.ollama.ai/library/QWEN3-TEST:latest\"}"};
    for (size_t i = 0; i < 3; i++) {
        http_result r2 = post("/api/show", same[i]);
        assert_int_equal(r2.status, 200);
        assert_true(json_equal(r.json, r2.json));
        result_free(&r2);
    }
    result_free(&r);

    r = post("/api/show", "{\"model\":\"plain\"}");
    assert_int_equal(r.status, 200);
    caps = json_object_get(r.json, "capabilities");
    assert_int_equal(json_array_size(caps), 1);
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "completion");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "model_info"), "qwen2.context_length")),
                     1280);
    assert_null(json_object_get(r.json, "system"));
    result_free(&r);
}

static void test_show_errors(void **state)
{
    (void)state;
    expect_error("/api/show", "{}", 400, "model is required");
    expect_error("/api/show", "{\"model\":\"\"}", 400, "model is required");
    expect_error("/api/show", "{\"model\":\"nope\"}", 404, "model 'nope:latest' not found");
    expect_error("/api/show", "{\"model\":\"nope:7b\"}", 404, "model 'nope:7b' not found");
    expect_error("/api/show", "", 400, "missing request body");
    expect_error("/api/show", "{\"model\":\"bad name!\"}", 400, "invalid model name");
}

static void test_ps_lists_loaded_models_with_state(void **state)
{
    (void)state;
    http_result r = get("/api/ps");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "models")), 0); /* [] not null */
    result_free(&r);

    time_t now = time(NULL);
    pthread_mutex_lock(&fake.lock);
    fake.ps[0] = (engine_loaded_model){.state = RT_LOADING, .load_step = 12, .load_total = 39,
                                       .expires_at = now + 300, .size = 1000, .context_length = 1280,
                                       .manifest = &g_models[1]};
    snprintf(fake.ps[0].name, sizeof fake.ps[0].name, "plain:latest");
    fake.ps[1] = (engine_loaded_model){.state = RT_READY, .forever = true, .size = 5000000000ULL,
                                       .context_length = 2559, .manifest = &g_models[0]};
    snprintf(fake.ps[1].name, sizeof fake.ps[1].name, "qwen3-test:latest");
    fake.n_ps = 2;
    pthread_mutex_unlock(&fake.lock);

    r = get("/api/ps");
    assert_int_equal(r.status, 200);
    json_t *models = json_object_get(r.json, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *forever = json_array_get(models, 0), *loading = json_array_get(models, 1);
    assert_string_equal(jget_str(forever, "name"), "qwen3-test:latest"); /* most time left first */
    assert_string_equal(jget_str(forever, "model"), "qwen3-test:latest");
    assert_true(atoi(jget_str(forever, "expires_at")) >= 2300);
    assert_true(is_rfc3339(jget_str(forever, "expires_at")));
    assert_int_equal(json_integer_value(json_object_get(forever, "size_vram")), 5000000000LL);
    assert_int_equal(json_integer_value(json_object_get(forever, "size")), 5000000000LL);
    assert_int_equal(json_integer_value(json_object_get(forever, "context_length")), 2559);
    assert_string_equal(jget_str(forever, "axllama.state"), "ready");
    assert_null(json_object_get(json_object_get(forever, "axllama"), "progress"));
    assert_int_equal(strlen(jget_str(forever, "digest")), 64);
    assert_details(json_object_get(forever, "details"), "qwen3");

    assert_string_equal(jget_str(loading, "name"), "plain:latest");
    assert_string_equal(jget_str(loading, "axllama.state"), "loading");
    assert_string_equal(jget_str(loading, "axllama.progress"), "12/39");
    assert_int_equal(json_integer_value(json_object_get(loading, "context_length")), 1280);
    int year = atoi(jget_str(loading, "expires_at"));
    struct tm tm;
    localtime_r(&now, &tm);
    assert_true(year == tm.tm_year + 1900 || year == tm.tm_year + 1901);
    result_free(&r);
}

/* ================================================================== generate */

static void assert_metrics(const json_t *last)
{
    const char *keys[] = {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                          "eval_count", "eval_duration"};
    for (size_t i = 0; i < 6; i++)
        if (!json_is_integer(json_object_get(last, keys[i])))
            fail_msg("final chunk lacks integer %s", keys[i]);
    assert_int_equal(json_integer_value(json_object_get(last, "total_duration")), 5000000);
    assert_int_equal(json_integer_value(json_object_get(last, "eval_count")), 3);
    assert_int_equal(json_integer_value(json_object_get(last, "prompt_eval_count")), 7);
}

static void test_generate_streams_ndjson_by_default(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}");
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/x-ndjson");
    assert_header(&r, "Transfer-Encoding", "chunked");
    json_t *lines[8];
    size_t n = ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 3);
    strbuf text = {0};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(jget_str(lines[i], "model"), "qwen3-test"); /* echoed as sent */
        const char *created = jget_str(lines[i], "created_at");
        assert_true(is_rfc3339(created));
        assert_int_equal(created[strlen(created) - 1], 'Z');
        assert_non_null(strchr(created, '.'));
        assert_non_null(jget_str(lines[i], "response"));
        assert_null(json_object_get(lines[i], "context"));
        assert_null(json_object_get(lines[i], "thinking"));
        sb_puts(&text, jget_str(lines[i], "response"));
        bool last = i == n - 1;
        assert_true(json_is_boolean(json_object_get(lines[i], "done")));
        assert_int_equal(json_is_true(json_object_get(lines[i], "done")), last);
        if (!last)
            assert_null(json_object_get(lines[i], "done_reason"));
    }
    assert_string_equal(text.data, "Hello");
    assert_string_equal(jget_str(lines[n - 1], "response"), "");
    assert_string_equal(jget_str(lines[n - 1], "done_reason"), "stop");
    assert_metrics(lines[n - 1]);
    sb_free(&text);
    free_lines(lines, n);
    result_free(&r);

    {
        fake_state f = fake_snapshot();
        assert_int_equal(f.kind, JOB_CHAT);
        assert_string_equal(f.model, "qwen3-test");
        assert_int_equal(f.n_msgs, 1); /* the engine adds the model's default system prompt */
        assert_string_equal(f.msgs[0].role, "user");
        assert_string_equal(f.msgs[0].content, "hi");
        assert_int_equal(f.think, -1);
        assert_false(f.has_keep_alive);
    }
    assert_int_equal(wait_count(&fake.releases, 1), 1);
}

static void test_generate_system_and_raw(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"system\":\"Be brief.\"}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    {
        fake_state f = fake_snapshot();
        assert_int_equal(f.n_msgs, 2);
        assert_string_equal(f.msgs[0].role, "system");
        assert_string_equal(f.msgs[0].content, "Be brief.");
        assert_string_equal(f.msgs[1].role, "user");
    }

    r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"<|im_start|>raw\",\"raw\":true,\"stream\":false}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "response"), "Hello");
    assert_null(json_object_get(r.json, "context"));
    result_free(&r);
    {
        fake_state f = fake_snapshot();
        assert_int_equal(f.kind, JOB_RAW);
        assert_string_equal(f.raw_prompt, "<|im_start|>raw");
    }

    const char *conflicts[] = {"{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"raw\":true,\"system\":\"s\"}",
                               "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"raw\":true,\"template\":\"t\"}",
                               "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"raw\":true,\"context\":[1,2]}"};
    for (size_t i = 0; i < 3; i++)
        expect_error("/api/generate", conflicts[i], 400, "raw mode does not support template, system, or context");
    /* context alone is accepted (deprecated, ignored) */
    r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"context\":[1,2,3],\"stream\":false}");
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_generate_non_stream_concatenates(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_THINK_HELLO);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"stream\":false,\"think\":true}");
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    assert_non_null(r.json);
    assert_string_equal(jget_str(r.json, "response"), "Hello");
    assert_string_equal(jget_str(r.json, "thinking"), "Hmm.");
    assert_true(json_is_true(json_object_get(r.json, "done")));
    assert_string_equal(jget_str(r.json, "done_reason"), "stop");
    assert_metrics(r.json);
    assert_null(strchr(r.body.data, '\n'));
    result_free(&r);
    assert_int_equal(fake_snapshot().think, 1);
}

static void test_generate_streams_thinking_separately(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_THINK_HELLO);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"think\":\"high\"}");
    json_t *lines[8];
    size_t n = ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 5);
    assert_string_equal(jget_str(lines[0], "thinking"), "Hm");
    assert_string_equal(jget_str(lines[0], "response"), "");
    assert_null(json_object_get(lines[2], "thinking"));
    assert_string_equal(jget_str(lines[2], "response"), "Hel");
    free_lines(lines, n);
    result_free(&r);
    assert_int_equal(fake_snapshot().think, 1);
}

/* ================================================================== chat */

static void test_chat_chunks_always_carry_role(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_THINK_HELLO);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/x-ndjson");
    json_t *lines[8];
    size_t n = ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(jget_str(lines[i], "message.role"), "assistant");
        assert_non_null(jget_str(lines[i], "message.content"));
        assert_null(json_object_get(lines[i], "response"));
    }
    assert_string_equal(jget_str(lines[0], "message.thinking"), "Hm");
    assert_string_equal(jget_str(lines[0], "message.content"), "");
    assert_string_equal(jget_str(lines[3], "message.content"), "lo");
    assert_true(json_is_true(json_object_get(lines[4], "done")));
    assert_string_equal(jget_str(lines[4], "done_reason"), "stop");
    assert_string_equal(jget_str(lines[4], "message.content"), "");
    assert_metrics(lines[4]);
    free_lines(lines, n);
    result_free(&r);
}

static void test_chat_non_stream_and_messages(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_THINK_HELLO);
    http_result r = post("/api/chat",
                         "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[],\"messages\":["
                         "{\"role\":\"SYSTEM\",\"content\":\"sys\"},"
                         "{\"role\":\"user\",\"content\":\"q1\"},"
                         "{\"role\":\"Assistant\",\"content\":\"a1\",\"thinking\":\"t1\","
                         "\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":2}}}]},"
                         "{\"role\":\"tool\",\"content\":\"sunny\",\"tool_name\":\"get_weather\"},"
                         "{\"role\":\"user\",\"content\":null}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "message.role"), "assistant");
    assert_string_equal(jget_str(r.json, "message.content"), "Hello");
    assert_string_equal(jget_str(r.json, "message.thinking"), "Hmm.");
    assert_true(json_is_true(json_object_get(r.json, "done")));
    result_free(&r);
    {
        fake_state f = fake_snapshot();
        assert_int_equal(f.kind, JOB_CHAT);
        assert_int_equal(f.n_msgs, 5);
        assert_string_equal(f.msgs[0].role, "system"); /* lower-cased */
        assert_string_equal(f.msgs[2].role, "assistant");
        assert_string_equal(f.msgs[2].reasoning, "t1");
        assert_int_equal(f.msgs[2].n_tool_calls, 1);
        assert_string_equal(f.msgs[2].tool_name, "get_weather");
        assert_string_equal(f.msgs[2].tool_args, "{\"city\": \"Paris\", \"days\": 2}");
        assert_string_equal(f.msgs[3].role, "tool");
        assert_false(f.msgs[1].has_reasoning);
        assert_string_equal(f.msgs[4].content, "");
    }

    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}]}",
                 400, "invalid role \"developer\" in message 0: must be one of system, user, assistant, tool");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400,
                 "json: cannot unmarshal number into Go struct field ChatRequest.messages.content of type string");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":{}}", 400,
                 "json: cannot unmarshal object into Go struct field ChatRequest.messages of type []api.Message");
}

/* ================================================================== errors */

static void test_error_before_streaming_is_status_and_json(void **state)
{
    (void)state;
    static const fake_step fail[] = {{.kind = JOB_EV_ERROR, .text = "failed to load model: boom", .http_status = 500}};
    SET_SCRIPT(fail);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}", 500, "failed to load model: boom");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 500,
                 "failed to load model: boom");
    static const fake_step bad[] = {{.kind = JOB_EV_ERROR, .text = "prompt too long", .http_status = 400}};
    SET_SCRIPT(bad);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"stream\":false}", 400, "prompt too long");
    static const fake_step no_status[] = {{.kind = JOB_EV_ERROR, .text = "odd"}};
    SET_SCRIPT(no_status);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}", 500, "odd");
    /* non-stream: an error after some pieces is still a status + JSON */
    static const fake_step late[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                     {.kind = JOB_EV_ERROR, .text = "runtime died", .http_status = 500}};
    SET_SCRIPT(late);
    expect_error("/api/chat",
                 "{\"model\":\"qwen3-test\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 500,
                 "runtime died");
    assert_int_equal(wait_count(&fake.releases, 5), 5);
}

static void test_error_mid_stream_is_one_error_line(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_ERROR, .text = "runtime died", .http_status = 500}};
    SET_SCRIPT(steps);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    json_t *lines[4];
    size_t n = ndjson_lines(&r, lines, 4);
    assert_int_equal(n, 2);
    assert_false(json_is_true(json_object_get(lines[0], "done")));
    assert_string_equal(jget_str(lines[1], "error"), "runtime died");
    assert_int_equal(json_object_size(lines[1]), 1);
    free_lines(lines, n);
    result_free(&r);
}

static void test_queue_full_is_503(void **state)
{
    (void)state;
    pthread_mutex_lock(&fake.lock);
    fake.submit_status = 503;
    snprintf(fake.submit_err, sizeof fake.submit_err, "server busy, please try again.  maximum pending requests exceeded");
    pthread_mutex_unlock(&fake.lock);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}", 503,
                 "server busy, please try again.  maximum pending requests exceeded");
    assert_int_equal(fake_count(&fake.releases), 0);
}

static void test_unknown_model_and_missing_model(void **state)
{
    (void)state;
    expect_error("/api/generate", "{\"model\":\"nope\",\"prompt\":\"x\"}", 404, "model 'nope' not found");
    expect_error("/api/generate", "{\"prompt\":\"x\"}", 404, "model '' not found");
    expect_error("/api/generate", "{\"model\":\"bad name!\",\"prompt\":\"x\"}", 404, "model 'bad name!' not found");
    expect_error("/api/chat", "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404,
                 "model 'nope' not found");
    expect_error("/api/chat", "{\"messages\":[]}", 400, "model is required");
    assert_int_equal(fake_count(&fake.submits), 0);
}

static void test_request_body_errors(void **state)
{
    (void)state;
    expect_error("/api/generate", "", 400, "missing request body");
    expect_error("/api/chat", "  \n ", 400, "missing request body");
    expect_error("/api/generate", "{\"model\":", 400, "unexpected EOF");
    expect_error("/api/generate", "[1,2]", 400, "json: cannot unmarshal array into Go value of type api.GenerateRequest");
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":1}", 400,
                 "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string");
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":\"yes\"}", 400,
                 "json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":[1]}", 400,
                 "json: cannot unmarshal array into Go struct field ChatRequest.options of type map[string]interface {}");
    http_result r = post("/api/generate", "{oops}");
    assert_int_equal(r.status, 400);
    assert_non_null(jget_str(r.json, "error"));
    result_free(&r);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"top_logprobs\":21}", 400,
                 "top_logprobs must be between 0 and 20");
    /* unknown top-level keys are ignored */
    SET_SCRIPT(STEPS_HELLO);
    r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"whatever\":{\"a\":1},\"stream\":false}");
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_body_limit_is_413(void **state)
{
    (void)state;
    http_server *small = start_server("127.0.0.1", NULL, 1024);
    char base[64];
    base_url(small, base, sizeof base);
    char *big = malloc(4096);
    memset(big, ' ', 4095);
    big[4095] = '\0';
    big[0] = '{';
    big[4094] = '}';
    http_result r = must(&(request_spec){.method = "POST", .path = "/api/show", .body = big, .base = base});
    assert_error(&r, 413, "request body too large (limit 1024 bytes)");
    result_free(&r);
    /* chunked: no Content-Length, the limit is enforced as the body arrives */
    r = must(&(request_spec){.method = "POST", .path = "/api/show", .body = big, .base = base,
                             .headers = {"Transfer-Encoding: chunked"}});
    assert_error(&r, 413, "request body too large (limit 1024 bytes)");
    result_free(&r);
    r = must(&(request_spec){.method = "POST", .path = "/api/show", .body = "{\"model\":\"plain\"}", .base = base});
    assert_int_equal(r.status, 200);
    result_free(&r);
    free(big);
    http_server_stop(small);
}

/* ================================================================== load / unload / keep_alive */

static void test_load_and_unload(void **state)
{
    (void)state;
    static const fake_step load[] = {{.kind = JOB_EV_DONE, .done_reason = "load"}};
    SET_SCRIPT(load);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\"}"); /* streaming requested, one object */
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    assert_string_equal(jget_str(r.json, "done_reason"), "load");
    assert_string_equal(jget_str(r.json, "response"), "");
    assert_true(json_is_true(json_object_get(r.json, "done")));
    assert_string_equal(jget_str(r.json, "model"), "qwen3-test");
    result_free(&r);
    assert_int_equal(fake_snapshot().kind, JOB_LOAD);

    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "done_reason"), "load");
    assert_string_equal(jget_str(r.json, "message.role"), "assistant");
    assert_string_equal(jget_str(r.json, "message.content"), "");
    result_free(&r);
    r = post("/api/chat", "{\"model\":\"qwen3-test\"}");
    assert_string_equal(jget_str(r.json, "done_reason"), "load");
    result_free(&r);
    assert_int_equal(fake_count(&fake.submits), 3);

    const char *unloads[] = {"{\"model\":\"qwen3-test\",\"keep_alive\":0}",
                             "{\"model\":\"qwen3-test\",\"prompt\":\"\",\"keep_alive\":\"0s\"}",
                             "{\"model\":\"qwen3-test:latest\",\"keep_alive\":\"0\"}"};
    for (size_t i = 0; i < 3; i++) {
        r = post("/api/generate", unloads[i]);
        assert_int_equal(r.status, 200);
        assert_string_equal(jget_str(r.json, "done_reason"), "unload");
        assert_true(json_is_true(json_object_get(r.json, "done")));
        result_free(&r);
    }
    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[],\"keep_alive\":0}");
    assert_string_equal(jget_str(r.json, "done_reason"), "unload");
    assert_string_equal(jget_str(r.json, "message.role"), "assistant");
    result_free(&r);
    assert_int_equal(fake_count(&fake.unloads), 4);
    assert_int_equal(fake_count(&fake.submits), 3); /* never loads to unload */
    assert_string_equal(fake_snapshot().unloaded, "qwen3-test");
    expect_error("/api/generate", "{\"model\":\"nope\",\"keep_alive\":0}", 404, "model 'nope' not found");
    assert_int_equal(fake_count(&fake.unloads), 4);
}

static void expect_keep_alive(const char *value, bool forever, double seconds)
{
    SET_SCRIPT(STEPS_HELLO);
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"keep_alive\":%s}", value);
    http_result r = post("/api/generate", body);
    if (r.status != 200)
        fail_msg("keep_alive %s: %ld %s", value, r.status, r.body.data);
    result_free(&r);
    {
        fake_state f = fake_snapshot();
        assert_true(f.has_keep_alive);
        if (forever)
            assert_true(f.keep_alive_s < 0);
        else
            assert_true(f.keep_alive_s > seconds - 1e-6 && f.keep_alive_s < seconds + 1e-6);
    }
}

static void test_keep_alive_values(void **state)
{
    (void)state;
    expect_keep_alive("\"10m\"", false, 600);
    expect_keep_alive("600", false, 600);
    expect_keep_alive("1.5", false, 1.5);
    expect_keep_alive("\"300ms\"", false, 0.3);
    expect_keep_alive("-1", true, 0);
    expect_keep_alive("\"-1m\"", true, 0);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"keep_alive\":\"-1\"}", 400,
                 "time: missing unit in duration \"-1\"");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"keep_alive\":true}", 400, "Unsupported type: 'bool'");
    /* null = absent */
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"keep_alive\":null}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    assert_false(fake_snapshot().has_keep_alive);
}

/* ================================================================== think, options, unsupported */

static void test_think_validation(void **state)
{
    (void)state;
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"think\":\"bogus\"}", 400,
                 "invalid think value: \"bogus\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"think\":5}", 400,
                 "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)");
    expect_error("/api/generate", "{\"model\":\"plain\",\"prompt\":\"x\",\"think\":true}", 400,
                 "\"plain\" does not support thinking");
    expect_error("/api/chat", "{\"model\":\"plain:latest\",\"think\":\"low\",\"messages\":[]}", 400,
                 "\"plain:latest\" does not support thinking");
    const struct {
        const char *model, *think;
        int expect;
    } ok[] = {{"plain", "false", 0}, {"qwen3-test", "false", 0}, {"qwen3-test", "\"medium\"", 1},
              {"qwen3-test", "\"max\"", 1}, {"qwen3-test", "null", -1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        SET_SCRIPT(STEPS_HELLO);
        char body[256];
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"prompt\":\"x\",\"stream\":false,\"think\":%s}", ok[i].model,
                 ok[i].think);
        http_result r = post("/api/generate", body);
        assert_int_equal(r.status, 200);
        result_free(&r);
        assert_int_equal(fake_snapshot().think, ok[i].expect);
    }
}

static void test_options_known_applied_unknown_ignored(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/generate",
                         "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"options\":{"
                         "\"temperature\":0.5,\"top_k\":7.9,\"top_p\":0.25,\"repeat_penalty\":1.1,\"num_predict\":3,"
                         "\"stop\":[\"x\",\"y\"],\"num_ctx\":8192,\"seed\":null,\"use_mmap\":true,"
                         "\"numa\":true,\"mirostat\":1,\"tfs_z\":\"odd\",\"penalize_newline\":[1]}}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    {
        fake_state f = fake_snapshot();
        gen_options o = f.options;
        assert_true(o.has_temperature && o.temperature == 0.5);
        assert_true(o.has_top_k);
        assert_int_equal(o.top_k, 7); /* truncated, like Go */
        assert_true(o.has_top_p && o.top_p == 0.25);
        assert_true(o.has_repeat_penalty && o.repeat_penalty == 1.1);
        assert_true(o.has_num_predict);
        assert_int_equal(o.num_predict, 3);
        assert_int_equal(o.n_stop, 2);
        assert_string_equal(f.stop[0], "x");
        assert_string_equal(f.stop[1], "y");
    }

    SET_SCRIPT(STEPS_HELLO);
    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    assert_false(fake_snapshot().options.has_temperature);
    assert_int_equal(fake_snapshot().options.n_stop, 0);

    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"options\":{\"top_k\":\"a\"}}", 400,
                 "option \"top_k\" must be of type integer");
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"options\":{\"temperature\":true}}", 400,
                 "option \"temperature\" must be of type float32");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":{\"stop\":\"x\"}}", 400,
                 "option \"stop\" must be of type array");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":{\"stop\":[1]}}", 400,
                 "option \"stop\" must be of an array of strings");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":{\"use_mmap\":1}}", 400,
                 "option \"use_mmap\" must be of type boolean");
}

static void test_unsupported_features_are_refused(void **state)
{
    (void)state;
    const char *m = "{\"model\":\"qwen3-test\",\"prompt\":\"x\",";
    char body[256];
    snprintf(body, sizeof body, "%s\"format\":123}", m);
    expect_error("/api/generate", body, 400, "invalid format: \"123\"; expected \"json\" or a valid JSON Schema object");
    snprintf(body, sizeof body, "%s\"format\":\"xml\"}", m);
    expect_error("/api/generate", body, 400,
                 "invalid format: \"\\\"xml\\\"\"; expected \"json\" or a valid JSON Schema object");
    snprintf(body, sizeof body, "%s\"images\":[\"aGVsbG8=\"]}", m);
    expect_error("/api/generate", body, 400, "registry.ollama.ai/library/qwen3-test:latest does not support vision");
    snprintf(body, sizeof body, "%s\"suffix\":\"end\"}", m);
    expect_error("/api/generate", body, 400, "registry.ollama.ai/library/qwen3-test:latest does not support insert");
    expect_error("/api/chat",
                 "{\"model\":\"plain\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 400, "registry.ollama.ai/library/plain:latest does not support tools");
    expect_error("/api/chat",
                 "{\"model\":\"plain\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}", 400,
                 "registry.ollama.ai/library/plain:latest does not support vision");
    snprintf(body, sizeof body, "%s\"template\":\"{{ .Prompt }}\"}", m);
    expect_error("/api/generate", body, 400,
                 "template overrides are not supported: axllama renders the model's own chat template");
    snprintf(body, sizeof body, "%s\"logprobs\":true}", m);
    expect_error("/api/generate", body, 400, "logprobs are not supported");
    assert_int_equal(fake_count(&fake.submits), 0);

    /* empty values mean "not set" */
    const char *accepted[] = {"\"format\":\"\"", "\"format\":null", "\"images\":[]", "\"suffix\":\"\"",
                              "\"logprobs\":false", "\"template\":\"\""};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        SET_SCRIPT(STEPS_HELLO);
        snprintf(body, sizeof body, "%s\"stream\":false,%s}", m, accepted[i]);
        http_result r = post("/api/generate", body);
        if (r.status != 200)
            fail_msg("%s: %ld %s", accepted[i], r.status, r.body.data);
        result_free(&r);
    }
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/chat", "{\"model\":\"plain\",\"tools\":[],\"stream\":false,"
                                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[]}]}");
    assert_int_equal(r.status, 200);
    result_free(&r);
}

/* ================================================================== tools */

static void test_tools_are_serialised_as_tojson_for_the_template(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/chat",
                         "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":["
                         "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Wetter f\\u00fcr \\\"x\\\"\","
                         "\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{\"city\":{\"type\":\"string\"},"
                         "\"scale\":{\"type\":\"number\",\"default\":1.0}}}}},"
                         "{\"function\":{\"name\":\"noop\"},\"type\":\"function\"}],"
                         "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    fake_state f = fake_snapshot();
    assert_int_equal(f.n_tools, 2);
    /* json.dumps(tool, ensure_ascii=False): ", " and ": ", keys as given, raw UTF-8, 1.0 stays 1.0 */
    assert_string_equal(f.tools[0], "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
                                    "\"Wetter für \\\"x\\\"\", \"parameters\": {\"type\": \"object\", \"required\": "
                                    "[\"city\"], \"properties\": {\"city\": {\"type\": \"string\"}, \"scale\": "
                                    "{\"type\": \"number\", \"default\": 1.0}}}}}");
    assert_string_equal(f.tools[1], "{\"function\": {\"name\": \"noop\"}, \"type\": \"function\"}");

    /* generate has no tools; an empty list is no tools */
    SET_SCRIPT(STEPS_HELLO);
    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    assert_int_equal(fake_snapshot().n_tools, 0);

    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"tools\":[\"f\"],\"messages\":[]}", 400,
                 "json: cannot unmarshal string into Go struct field ChatRequest.tools of type api.Tool");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"tools\":[{\"function\":[]}],\"messages\":[]}", 400,
                 "json: cannot unmarshal array into Go struct field ChatRequest.tools.function of type api.ToolFunction");
    expect_error("/api/chat",
                 "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
                 "[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}]}",
                 400,
                 "json: cannot unmarshal string into Go struct field ChatRequest.messages.tool_calls.function.arguments of "
                 "type api.ToolCallFunctionArguments");

    /* the capability follows the template: the Qwen2.5 "plain" model has none */
    r = post("/api/show", "{\"model\":\"plain\"}");
    json_t *caps = json_object_get(r.json, "capabilities");
    assert_int_equal(json_array_size(caps), 1);
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "completion");
    result_free(&r);
}

static const fake_step STEPS_TOOL_CALLS[] = {
    {.kind = JOB_EV_CONTENT, .text = "Let me check. "},
    {.kind = JOB_EV_TOOL_CALL, .tool_name = "get_weather", .tool_arguments = "{\"city\":\"Paris\",\"days\":2}"},
    {.kind = JOB_EV_TOOL_CALL, .tool_name = "get_time", .tool_arguments = "{}"},
    {.kind = JOB_EV_CONTENT, .text = "Done."},
    {.kind = JOB_EV_DONE, .done_reason = "stop"},
};

static bool is_call_id(const char *id)
{
    if (!id || strlen(id) != 13 || strncmp(id, "call_", 5))
        return false;
    for (const char *p = id + 5; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* One Ollama tool call: id, function.index, function.name, function.arguments (an object). */
static void assert_tool_call(const json_t *call, int index, const char *name, const char *arguments)
{
    assert_true(is_call_id(json_string_value(json_object_get(call, "id"))));
    json_t *fn = json_object_get(call, "function");
    assert_int_equal(json_integer_value(json_object_get(fn, "index")), index);
    assert_string_equal(json_string_value(json_object_get(fn, "name")), name);
    json_t *args = json_object_get(fn, "arguments");
    assert_true(json_is_object(args));
    char *text = json_dumps(args, JSON_COMPACT);
    assert_string_equal(text, arguments); /* key order kept */
    free(text);
}

static void test_tool_calls_stream_each_call_whole_in_its_own_chunk(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_TOOL_CALLS);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                                      "\"get_weather\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    json_t *lines[8];
    size_t n = ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 5);
    assert_string_equal(jget_str(lines[0], "message.content"), "Let me check. ");
    assert_null(json_object_get(json_object_get(lines[0], "message"), "tool_calls"));
    for (size_t i = 1; i <= 2; i++) {
        assert_false(json_is_true(json_object_get(lines[i], "done")));
        assert_string_equal(jget_str(lines[i], "message.role"), "assistant");
        assert_string_equal(jget_str(lines[i], "message.content"), "");
        json_t *calls = json_object_get(json_object_get(lines[i], "message"), "tool_calls");
        assert_int_equal(json_array_size(calls), 1);
        if (i == 1)
            assert_tool_call(json_array_get(calls, 0), 0, "get_weather", "{\"city\":\"Paris\",\"days\":2}");
        else
            assert_tool_call(json_array_get(calls, 0), 1, "get_time", "{}");
    }
    assert_string_equal(jget_str(lines[3], "message.content"), "Done.");
    assert_true(json_is_true(json_object_get(lines[4], "done")));
    assert_string_equal(jget_str(lines[4], "done_reason"), "stop"); /* Ollama says stop with tool calls */
    free_lines(lines, n);
    result_free(&r);
}

static void test_tool_calls_non_stream_are_collected_in_the_message(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_TOOL_CALLS);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[{\"type\":\"function\","
                                      "\"function\":{\"name\":\"get_weather\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "message.content"), "Let me check. Done.");
    assert_string_equal(jget_str(r.json, "done_reason"), "stop");
    json_t *calls = json_object_get(json_object_get(r.json, "message"), "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    assert_tool_call(json_array_get(calls, 0), 0, "get_weather", "{\"city\":\"Paris\",\"days\":2}");
    assert_tool_call(json_array_get(calls, 1), 1, "get_time", "{}");
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(calls, 0), "id")),
                            json_string_value(json_object_get(json_array_get(calls, 1), "id")));
    result_free(&r);
    /* without calls there is no tool_calls member */
    SET_SCRIPT(STEPS_HELLO);
    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[{\"type\":\"function\","
                          "\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_null(json_object_get(json_object_get(r.json, "message"), "tool_calls"));
    result_free(&r);
}

/* ================================================================== format */

#define INSTRUCTION "Respond with valid JSON only: a single JSON value, no other text, no code fences."

static void test_format_instruction_goes_to_the_system_prompt(void **state)
{
    (void)state;
    SET_SCRIPT(STEPS_HELLO);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    result_free(&r);
    assert_false(fake_snapshot().has_system_suffix);

    const fake_step json_reply[] = {{.kind = JOB_EV_CONTENT, .text = "{}"}, {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(json_reply);
    r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":\"json\",\"stream\":false}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    fake_state f = fake_snapshot();
    assert_true(f.has_system_suffix);
    assert_string_equal(f.system_suffix, INSTRUCTION);

    SET_SCRIPT(json_reply);
    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"format\":{\"type\":\"object\",\"properties\":"
                          "{\"a\":{\"type\":\"integer\"}}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    result_free(&r);
    f = fake_snapshot();
    assert_string_equal(f.system_suffix, INSTRUCTION " The JSON must conform to this JSON schema: "
                                                     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}");
    assert_string_equal(f.msgs[0].role, "user"); /* the messages themselves are untouched */
    assert_string_equal(f.msgs[0].content, "x");
}

static void test_format_conforming_reply_non_stream_is_the_json_itself(void **state)
{
    (void)state;
    const fake_step fenced[] = {{.kind = JOB_EV_THINKING, .text = "think"},
                                {.kind = JOB_EV_CONTENT, .text = "```json\n{\"a\": "},
                                {.kind = JOB_EV_CONTENT, .text = "1}\n```\n"},
                                {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(fenced);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"format\":{\"type\":\"object\","
                                      "\"required\":[\"a\"]},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "message.content"), "{\"a\": 1}"); /* fence and whitespace removed */
    assert_string_equal(jget_str(r.json, "message.thinking"), "think");     /* thinking is not validated */
    result_free(&r);
}

static void test_format_nonconforming_reply_non_stream_is_an_error(void **state)
{
    (void)state;
    const fake_step prose[] = {{.kind = JOB_EV_CONTENT, .text = "Sure, here"}, {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(prose);
    expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":\"json\",\"stream\":false}", 500,
                 "the model's reply is not valid JSON: invalid token near 'Sure' (line 1, column 4)");
    const fake_step wrong[] = {{.kind = JOB_EV_CONTENT, .text = "{\"a\": \"1\"}"}, {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(wrong);
    expect_error("/api/chat",
                 "{\"model\":\"qwen3-test\",\"stream\":false,\"format\":{\"type\":\"object\",\"properties\":{\"a\":"
                 "{\"type\":\"integer\"}}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 500, "the model's reply does not match the format schema: $.a: expected integer, got string");
    /* a reply cut by num_predict is checked too */
    const fake_step cut[] = {{.kind = JOB_EV_CONTENT, .text = "{\"a\": "}, {.kind = JOB_EV_DONE, .done_reason = "length"}};
    SET_SCRIPT(cut);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":\"json\",\"stream\":false}");
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(jget_str(r.json, "error"), "the model's reply is not valid JSON: "));
    result_free(&r);
}

static void test_format_streams_then_ends_with_done_or_an_error_line(void **state)
{
    (void)state;
    const fake_step ok[] = {{.kind = JOB_EV_CONTENT, .text = "[1, "},
                            {.kind = JOB_EV_CONTENT, .text = "2]"},
                            {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(ok);
    http_result r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":{\"type\":\"array\","
                                          "\"items\":{\"type\":\"integer\"}}}");
    assert_int_equal(r.status, 200);
    json_t *lines[8];
    size_t n = ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 3);
    assert_string_equal(jget_str(lines[0], "response"), "[1, ");
    assert_true(json_is_true(json_object_get(lines[2], "done")));
    free_lines(lines, n);
    result_free(&r);

    const fake_step bad[] = {{.kind = JOB_EV_CONTENT, .text = "[1, "},
                             {.kind = JOB_EV_CONTENT, .text = "\"two\"]"},
                             {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(bad);
    r = post("/api/chat", "{\"model\":\"qwen3-test\",\"format\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},"
                          "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200); /* the text went out before the end */
    n = ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 3);
    assert_string_equal(jget_str(lines[1], "message.content"), "\"two\"]");
    assert_int_equal(json_object_size(lines[2]), 1); /* {"error"} instead of done */
    assert_string_equal(jget_str(lines[2], "error"),
                        "the model's reply does not match the format schema: $[1]: expected integer, got string");
    for (size_t i = 0; i < n; i++)
        assert_null(json_object_get(lines[i], "done_reason"));
    free_lines(lines, n);
    result_free(&r);
}

static void test_format_values_and_schema_errors(void **state)
{
    (void)state;
    const char *m = "{\"model\":\"qwen3-test\",\"prompt\":\"x\",";
    char body[256];
    snprintf(body, sizeof body, "%s\"format\":{\"type\":\"float\"}}", m);
    expect_error("/api/generate", body, 400,
                 "invalid format schema: $: \"type\" must be one of object, array, string, number, integer, boolean, "
                 "null, or an array of them");
    expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"format\":{\"properties\":{\"a\":{\"required\":\"a\"}}},\"messages\":[]}",
                 400, "invalid format schema: $.properties.a: \"required\" must be an array of strings");
    snprintf(body, sizeof body, "%s\"format\":true}", m);
    expect_error("/api/generate", body, 400, "invalid format: \"true\"; expected \"json\" or a valid JSON Schema object");
    assert_int_equal(fake_count(&fake.submits), 0);
}

/* ================================================================== JSON line safety */

static bool contains_bytes(const strbuf *b, const char *needle)
{
    return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static void test_line_separators_are_escaped(void **state)
{
    (void)state;
    static const char tricky[] = "a\xE2\x80\xA8" "b\xE2\x80\xA9" "c\xC2\x85" "d\n\xE2\x82\xAC";
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = tricky},
                                      {.kind = JOB_EV_THINKING, .text = tricky},
                                      {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(steps);
    http_result r = post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA8"));
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA9"));
    assert_false(contains_bytes(&r.body, "\xC2\x85"));
    assert_true(contains_bytes(&r.body, "\\u2028"));
    assert_true(contains_bytes(&r.body, "\\u2029"));
    assert_true(contains_bytes(&r.body, "\\u0085"));
    assert_true(contains_bytes(&r.body, "\xE2\x82\xAC")); /* other characters stay raw UTF-8 */
    json_t *lines[4];
    size_t n = ndjson_lines(&r, lines, 4);
    assert_int_equal(n, 3);
    assert_string_equal(jget_str(lines[0], "message.content"), tricky);
    assert_string_equal(jget_str(lines[1], "message.thinking"), tricky);
    free_lines(lines, n);
    result_free(&r);

    SET_SCRIPT(steps);
    r = post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}");
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA8"));
    assert_string_equal(jget_str(r.json, "response"), tricky);
    result_free(&r);
}

static void test_json_encode_escapes_only_separators(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "k", "\xE2\x80\xA8\xE2\x80\xA9\xC2\x85\xC2\xA9\xE2\x80\xA7");
    size_t len;
    char *s = http_json_encode(v, &len);
    assert_string_equal(s, "{\"k\":\"\\u2028\\u2029\\u0085\xC2\xA9\xE2\x80\xA7\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(v);
    json_t *bad = http_json_string("ok\xFF");
    assert_string_equal(json_string_value(bad), "ok\xEF\xBF\xBD");
    json_decref(bad);
}

/* ================================================================== CORS and the Host guard */

static void test_cors(void **state)
{
    (void)state;
    http_result r = must(&(request_spec){.method = "GET", .path = "/api/version",
                                         .headers = {"Origin: http://localhost:3000"}});
    assert_int_equal(r.status, 200);
    assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:3000");
    assert_header(&r, "Vary", "Origin");
    result_free(&r);

    const char *refused[] = {"Origin: https://evil.example", "Origin: null", "Origin: http://localhost.evil.example",
                             "Origin: chrome-extension://other"};
    for (size_t i = 0; i < 4; i++) {
        r = must(&(request_spec){.method = "POST", .path = "/api/show", .body = "{\"model\":\"plain\"}",
                                 .headers = {refused[i]}});
        if (r.status != 403 || r.body.len != 0)
            fail_msg("%s: expected 403 with no body, got %ld '%s'", refused[i], r.status, r.body.data);
        result_free(&r);
    }
    /* refused before routing: even an unknown path */
    r = must(&(request_spec){.method = "GET", .path = "/nope", .headers = {"Origin: https://evil.example"}});
    assert_int_equal(r.status, 403);
    result_free(&r);

    const char *allowed[] = {"Origin: http://localhost", "Origin: app://obsidian.md", "Origin: chrome-extension://abcdef"};
    for (size_t i = 0; i < 3; i++) {
        r = must(&(request_spec){.method = "GET", .path = "/api/tags", .headers = {allowed[i]}});
        assert_int_equal(r.status, 200);
        assert_header(&r, "Access-Control-Allow-Origin", allowed[i] + 8);
        result_free(&r);
    }

    r = must(&(request_spec){.method = "OPTIONS", .path = "/api/chat",
                             .headers = {"Origin: http://localhost:5173", "Access-Control-Request-Method: POST",
                                         "Access-Control-Request-Headers: content-type"}});
    assert_int_equal(r.status, 204);
    assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:5173");
    assert_header(&r, "Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD");
    assert_header(&r, "Access-Control-Max-Age", "43200");
    char v[1024];
    header(&r, "Access-Control-Allow-Headers", v, sizeof v);
    assert_non_null(strstr(v, "Authorization,Content-Type,User-Agent,Accept"));
    assert_non_null(strstr(v, "X-Stainless-Timeout"));
    result_free(&r);

    /* same origin (Origin = http://<Host>): no CORS at all */
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: %s", g_base);
    r = must(&(request_spec){.method = "GET", .path = "/api/version", .headers = {origin}});
    assert_int_equal(r.status, 200);
    assert_header(&r, "Access-Control-Allow-Origin", "");
    result_free(&r);

    /* OLLAMA_ORIGINS=*: everything, answered with "*" */
    static const char *const all[] = {"*", NULL};
    http_server *open = start_server("127.0.0.1", all, 0);
    char base[64];
    base_url(open, base, sizeof base);
    r = must(&(request_spec){.method = "GET", .path = "/api/version", .base = base,
                             .headers = {"Origin: https://evil.example"}});
    assert_int_equal(r.status, 200);
    assert_header(&r, "Access-Control-Allow-Origin", "*");
    result_free(&r);
    http_server_stop(open);
}

static void test_host_guard_on_loopback(void **state)
{
    (void)state;
    assert_true(http_server_is_loopback(g_srv));
    const char *refused[] = {"Host: evil.example", "Host: evil.example:11434", "Host: 8.8.8.8", "Host: localhost.evil.com"};
    for (size_t i = 0; i < 4; i++) {
        http_result r = must(&(request_spec){.method = "GET", .path = "/api/version", .headers = {refused[i]}});
        if (r.status != 403 || r.body.len != 0)
            fail_msg("%s: expected 403 with no body, got %ld '%s'", refused[i], r.status, r.body.data);
        result_free(&r);
    }
    const char *allowed[] = {"Host: localhost:11434", "Host: LOCALHOST", "Host: 127.0.0.1:8080", "Host: 192.168.1.5",
                             "Host: 10.1.2.3:11434", "Host: [::1]:11434", "Host: my-box.local", "Host: x.internal",
                             "Host: app.localhost", "Host: 0.0.0.0"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        http_result r = must(&(request_spec){.method = "GET", .path = "/api/version", .headers = {allowed[i]}});
        if (r.status != 200)
            fail_msg("%s: expected 200, got %ld", allowed[i], r.status);
        result_free(&r);
    }
    char hostname[256], hdr[300];
    if (gethostname(hostname, sizeof hostname) == 0) {
        snprintf(hdr, sizeof hdr, "Host: %s:11434", hostname);
        http_result r = must(&(request_spec){.method = "GET", .path = "/api/version", .headers = {hdr}});
        assert_int_equal(r.status, 200);
        result_free(&r);
    }
    /* an allowed host *name* answers OPTIONS itself, as Ollama does */
    http_result r = must(&(request_spec){.method = "OPTIONS", .path = "/api/chat", .headers = {"Host: localhost"}});
    assert_int_equal(r.status, 204);
    result_free(&r);

    /* not on loopback: every Host passes */
    http_server *lan = start_server("", NULL, 0);
    assert_false(http_server_is_loopback(lan));
    char base[64];
    base_url(lan, base, sizeof base);
    r = must(&(request_spec){.method = "GET", .path = "/api/version", .base = base, .headers = {"Host: evil.example"}});
    assert_int_equal(r.status, 200);
    result_free(&r);
    http_server_stop(lan);
}

/* ================================================================== cancellation */

typedef struct {
    strbuf got;
    double aborted_at;
} abort_ctx;

/* Takes the first NDJSON line, then makes curl abort the transfer. */
static size_t abort_after_first_line(char *data, size_t size, size_t n, void *user)
{
    abort_ctx *a = user;
    sb_append(&a->got, data, size * n);
    if (memchr(a->got.data, '\n', a->got.len)) {
        a->aborted_at = now_s();
        return 0;
    }
    return size * n;
}

static double wait_for_cancel(int before)
{
    double t0 = now_s();
    while (now_s() - t0 < 3) {
        pthread_mutex_lock(&fake.lock);
        bool done = fake.cancels > before;
        double at = fake.last_cancel_at;
        pthread_mutex_unlock(&fake.lock);
        if (done)
            return at;
        sleep_s(0.005);
    }
    return -1;
}

static void test_client_disconnect_mid_stream_cancels_job(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_CONTENT, .text = "b", .delay_s = 30},
                                      {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    SET_SCRIPT(steps);
    abort_ctx a = {0};
    CURL *curl = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/api/chat", g_base);
    const char *body = "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, abort_after_first_line);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl); /* closes the socket */
    double closed_at = now_s();
    assert_int_equal(rc, CURLE_WRITE_ERROR);
    assert_true(a.aborted_at > 0);
    double cancelled_at = wait_for_cancel(0);
    assert_true(cancelled_at > 0);
    double delay = cancelled_at - closed_at;
    if (delay > 0.2)
        fail_msg("job_cancel came %.0f ms after the client left", delay * 1e3);
    /* and the job is released */
    double t0 = now_s();
    while (fake_count(&fake.releases) < 1 && now_s() - t0 < 2)
        sleep_s(0.005);
    assert_int_equal(fake_count(&fake.releases), 1);
    sb_free(&a.got);
}

static void test_client_gone_before_first_event_cancels_job(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "late", .delay_s = 30}};
    SET_SCRIPT(steps);
    for (int stream = 0; stream < 2; stream++) {
        int before = fake_count(&fake.cancels);
        http_result r = perform(&(request_spec){
            .method = "POST", .path = "/api/generate", .timeout_ms = 300,
            .body = stream ? "{\"model\":\"qwen3-test\",\"prompt\":\"x\"}"
                           : "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}"});
        double closed_at = now_s();
        assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
        result_free(&r);
        double cancelled_at = wait_for_cancel(before);
        assert_true(cancelled_at > 0);
        if (cancelled_at - closed_at > 0.2)
            fail_msg("job_cancel came %.0f ms after the client left", (cancelled_at - closed_at) * 1e3);
    }
}

typedef struct {
    const char *base;
    http_result result;
} bg_request;

static void *run_bg_request(void *arg)
{
    bg_request *b = arg;
    b->result = perform(&(request_spec){.method = "POST", .path = "/api/generate", .base = b->base,
                                        .body = "{\"model\":\"qwen3-test\",\"prompt\":\"x\"}"});
    return NULL;
}

static void test_server_stop_ends_streams(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_CONTENT, .text = "b", .delay_s = 30}};
    SET_SCRIPT(steps);
    http_server *srv = start_server("127.0.0.1", NULL, 0);
    char base[64];
    base_url(srv, base, sizeof base);
    bg_request b = {.base = base};
    pthread_t t;
    pthread_create(&t, NULL, run_bg_request, &b);
    double t0 = now_s();
    while (fake_count(&fake.submits) < 1 && now_s() - t0 < 3)
        sleep_s(0.01);
    sleep_s(0.1); /* the first line is out */
    double stop_at = now_s();
    http_server_stop(srv);
    double stop_took = now_s() - stop_at;
    pthread_join(t, NULL);
    assert_true(stop_took < 1.0);
    assert_int_equal(fake_count(&fake.cancels), 1);
    assert_int_equal(fake_count(&fake.releases), 1);
    assert_int_equal(b.result.status, 200);
    assert_non_null(strstr(b.result.body.data, "\"response\":\"a\""));
    result_free(&b.result);
}

/* ================================================================== `axllama serve` end to end */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    bind(fd, (struct sockaddr *)&sin, sizeof sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

static pid_t g_serve_pid; /* the `axllama serve` under test, until it has been reaped */

/* A failed assertion must not leave the server running. */
static int kill_serve(void **state)
{
    (void)state;
    if (g_serve_pid > 0) {
        kill(g_serve_pid, SIGKILL);
        waitpid(g_serve_pid, NULL, 0);
        g_serve_pid = 0;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    return 0;
}

/* Processes whose parent is this test process (scanning /proc). */
static int count_children(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close_paren = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
        char st;
        int ppid;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &st, &ppid) == 2 && ppid == getpid()) {
            fprintf(stderr, "left behind: %s", buf);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void test_axllama_serve_end_to_end(void **state)
{
    (void)state;
    const char *build = getenv("AXLLAMA_BUILD");
    const char *tok = getenv("AXLLAMA_TOKENIZER_DIR");
    if (!build || !tok) {
        printf("skipped: needs AXLLAMA_BUILD and AXLLAMA_TOKENIZER_DIR\n");
        skip();
    }
    char exe[512], log_path[] = "/tmp/axllama-serve-test-XXXXXX", models[] = "/tmp/axllama-models-XXXXXX";
    snprintf(exe, sizeof exe, "%s/axllama", build);
    int log_fd = mkstemp(log_path);
    assert_true(log_fd >= 0);
    assert_non_null(mkdtemp(models)); /* empty: the built-in emulated model is served */
    int port = free_port();
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* orphans of `axllama serve` become ours */
    char host[64], base[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    pid_t pid = fork();
    g_serve_pid = pid;
    if (pid == 0) {
        dup2(log_fd, STDERR_FILENO);
        setenv("OLLAMA_HOST", host, 1);
        setenv("AXLLAMA_MODELS", models, 1);
        execl(exe, exe, "serve", (char *)NULL);
        _exit(127);
    }
    close(log_fd);
    http_result r = {0};
    double t0 = now_s();
    do {
        sleep_s(0.05);
        result_free(&r);
        r = perform(&(request_spec){.method = "GET", .path = "/api/version", .base = base, .timeout_ms = 1000});
    } while (r.rc != CURLE_OK && now_s() - t0 < 10);
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "version"), OLLAMA_API_VERSION);
    result_free(&r);
    r = must(&(request_spec){.method = "GET", .path = "/api/tags", .base = base});
    assert_string_equal(jget_str(json_array_get(json_object_get(r.json, "models"), 0), "name"), "qwen3-emu:latest");
    result_free(&r);
    r = must(&(request_spec){.method = "POST", .path = "/api/generate", .base = base, .timeout_ms = 30000,
                             .body = "{\"model\":\"qwen3-emu\",\"prompt\":\"Hello there\",\"stream\":false}"});
    assert_int_equal(r.status, 200);
    assert_string_equal(jget_str(r.json, "done_reason"), "stop");
    assert_non_null(strstr(jget_str(r.json, "response"), "Hello there"));
    result_free(&r);
    r = must(&(request_spec){.method = "GET", .path = "/api/ps", .base = base});
    assert_int_equal(json_array_size(json_object_get(r.json, "models")), 1);
    result_free(&r);

    kill(pid, SIGTERM);
    int status = 0;
    t0 = now_s();
    pid_t done;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_s() - t0 < 15)
        sleep_s(0.05);
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("axllama serve did not exit within 15 s of SIGTERM");
    }
    g_serve_pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[1024];
    bool listening = false, stopped = false;
    char want[128];
    snprintf(want, sizeof want, "Listening on %s (version ", host);
    while (fgets(line, sizeof line, f)) {
        listening |= strstr(line, want) != NULL;
        stopped |= strstr(line, " stopped") != NULL;
    }
    fclose(f);
    assert_true(listening);
    assert_true(stopped);
    /* no runtime left behind: as the subreaper we would inherit an orphaned axllama-emu */
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    assert_int_equal(count_children(), 0);
    unlink(log_path);
    rmdir(models);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_root_get_and_head, before_each),
        cmocka_unit_test_setup(test_version_is_numeric_and_at_least_0_6_4, before_each),
        cmocka_unit_test_setup(test_unknown_path_is_404_text, before_each),
        cmocka_unit_test_setup(test_wrong_method_is_405_text, before_each),
        cmocka_unit_test_setup(test_keep_alive_connection_is_reused, before_each),
        cmocka_unit_test_setup(test_tags_lists_models_newest_first, before_each),
        cmocka_unit_test_setup(test_show_reports_model_info_and_capabilities, before_each),
        cmocka_unit_test_setup(test_show_errors, before_each),
        cmocka_unit_test_setup(test_ps_lists_loaded_models_with_state, before_each),
        cmocka_unit_test_setup(test_generate_streams_ndjson_by_default, before_each),
        cmocka_unit_test_setup(test_generate_system_and_raw, before_each),
        cmocka_unit_test_setup(test_generate_non_stream_concatenates, before_each),
        cmocka_unit_test_setup(test_generate_streams_thinking_separately, before_each),
        cmocka_unit_test_setup(test_chat_chunks_always_carry_role, before_each),
        cmocka_unit_test_setup(test_chat_non_stream_and_messages, before_each),
        cmocka_unit_test_setup(test_error_before_streaming_is_status_and_json, before_each),
        cmocka_unit_test_setup(test_error_mid_stream_is_one_error_line, before_each),
        cmocka_unit_test_setup(test_queue_full_is_503, before_each),
        cmocka_unit_test_setup(test_unknown_model_and_missing_model, before_each),
        cmocka_unit_test_setup(test_request_body_errors, before_each),
        cmocka_unit_test_setup(test_body_limit_is_413, before_each),
        cmocka_unit_test_setup(test_load_and_unload, before_each),
        cmocka_unit_test_setup(test_keep_alive_values, before_each),
        cmocka_unit_test_setup(test_think_validation, before_each),
        cmocka_unit_test_setup(test_options_known_applied_unknown_ignored, before_each),
        cmocka_unit_test_setup(test_unsupported_features_are_refused, before_each),
        cmocka_unit_test_setup(test_tools_are_serialised_as_tojson_for_the_template, before_each),
        cmocka_unit_test_setup(test_tool_calls_stream_each_call_whole_in_its_own_chunk, before_each),
        cmocka_unit_test_setup(test_tool_calls_non_stream_are_collected_in_the_message, before_each),
        cmocka_unit_test_setup(test_format_instruction_goes_to_the_system_prompt, before_each),
        cmocka_unit_test_setup(test_format_conforming_reply_non_stream_is_the_json_itself, before_each),
        cmocka_unit_test_setup(test_format_nonconforming_reply_non_stream_is_an_error, before_each),
        cmocka_unit_test_setup(test_format_streams_then_ends_with_done_or_an_error_line, before_each),
        cmocka_unit_test_setup(test_format_values_and_schema_errors, before_each),
        cmocka_unit_test_setup(test_line_separators_are_escaped, before_each),
        cmocka_unit_test_setup(test_json_encode_escapes_only_separators, before_each),
        cmocka_unit_test_setup(test_cors, before_each),
        cmocka_unit_test_setup(test_host_guard_on_loopback, before_each),
        cmocka_unit_test_setup(test_client_disconnect_mid_stream_cancels_job, before_each),
        cmocka_unit_test_setup(test_client_gone_before_first_event_cancels_job, before_each),
        cmocka_unit_test_setup(test_server_stop_ends_streams, before_each),
        cmocka_unit_test_setup_teardown(test_axllama_serve_end_to_end, before_each, kill_serve),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
