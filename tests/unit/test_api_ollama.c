/* test_api_ollama: the native Ollama API (src/api/ollama*.c and the shared pipeline) over the real
 * HTTP server with libcurl, against the fake engine (fake_engine.h: scripted events, the requests
 * recorded). Covers every route, statuses and exact error texts, body shapes, NDJSON framing,
 * errors before/after streaming, load/unload, keep_alive, think and options validation, tools
 * (tojson, tool_calls streamed and not), format (instruction, validation, errors), truncate, and
 * the embedding and model-management routes (JSON errors, pull of an installed model). The HTTP
 * server's own behaviours are in test_http_server.c. The last test runs `axllama serve` itself
 * (needs AXLLAMA_BUILD; skipped without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/ollama.h"
#include "common/buf.h"
#include "common/clock.h"
#include "engine/engine.h"
#include "fake_engine.h"
#include "http_probe.h"
#include "models/manifest.h"
#include "net/http_server.h"
#include "net/socket.h"

/* ================================================================== the server under test */

static model_manifest g_models[2];
static model_registry g_registry = {.models = g_models, .n = 2};
static engine *g_engine;
static ollama_api g_api;
static http_route g_routes[OLLAMA_API_MAX_ROUTES];
static size_t g_n_routes;
static http_server *g_srv;
static char g_base[64];

static void quiet_log(void *user, const char *line)
{
    (void)user;
    (void)line;
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
    g_srv = probe_start_server(g_routes, g_n_routes, "127.0.0.1", NULL, 0);
    probe_base_url(g_srv, g_base, sizeof g_base);
    probe_set_base(g_base);
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

/* The server releases a job after the last byte went out: let the previous test's jobs go first,
 * or their late release would count in this test. */
static int before_each(void **state)
{
    (void)state;
    fake_wait_idle();
    fake_reset();
    return 0;
}

/* ================================================================== answers */

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
    {.kind = JOB_EV_THINKING, .text = "Hm"},      {.kind = JOB_EV_THINKING, .text = "m."},
    {.kind = JOB_EV_CONTENT, .text = "Hel"},      {.kind = JOB_EV_CONTENT, .text = "lo"},
    {.kind = JOB_EV_DONE, .done_reason = "stop"},
};

/* ================================================================== plain routes */

static void test_root_get_and_head(void **state)
{
    (void)state;
    probe_result r = probe_get("/");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "Ollama is running");
    probe_assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
    probe_result_free(&r);
    r = probe_must(&(probe_request){.method = "HEAD", .path = "/"});
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "");
    probe_assert_header(&r, "Content-Length", "17");
    probe_result_free(&r);
}

static void test_version_is_numeric_and_at_least_0_6_4(void **state)
{
    (void)state;
    probe_result r = probe_get("/api/version");
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    const char *v = probe_str(r.json, "version");
    assert_non_null(v);
    assert_string_equal(v, OLLAMA_API_VERSION);
    int a, b, c;
    char tail;
    assert_int_equal(sscanf(v, "%d.%d.%d%c", &a, &b, &c, &tail), 3);
    assert_true(a > 0 || b > 6 || (b == 6 && c >= 4));
    probe_result_free(&r);
    r = probe_must(&(probe_request){.method = "HEAD", .path = "/api/version"});
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "");
    probe_result_free(&r);
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
    probe_result r = probe_get("/api/tags");
    assert_int_equal(r.status, 200);
    json_t *models = json_object_get(r.json, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *first = json_array_get(models, 0), *second = json_array_get(models, 1);
    assert_string_equal(probe_str(first, "name"), "plain:latest"); /* modified later */
    assert_string_equal(probe_str(first, "model"), "plain:latest");
    assert_string_equal(probe_str(second, "name"), "qwen3-test:latest");
    assert_string_equal(probe_str(second, "model"), "qwen3-test:latest");
    assert_int_equal(strlen(probe_str(second, "digest")), 64);
    assert_true(strncmp(probe_str(second, "digest"), "aaaa", 4) == 0);
    assert_true(is_rfc3339(probe_str(second, "modified_at")));
    assert_int_equal(json_integer_value(json_object_get(second, "size")), 5000000000LL);
    assert_details(json_object_get(second, "details"), "qwen3");
    assert_details(json_object_get(first, "details"), "qwen2");
    assert_string_equal(probe_str(second, "details.parameter_size"), "4.0B");
    assert_string_equal(probe_str(second, "details.format"), "axmodel");
    probe_result_free(&r);
    r = probe_must(&(probe_request){.method = "HEAD", .path = "/api/tags"});
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
}

static void test_show_reports_model_info_and_capabilities(void **state)
{
    (void)state;
    probe_result r = probe_post("/api/show", "{\"model\":\"qwen3-test\"}");
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
    assert_string_equal(probe_str(r.json, "system"), "You are a test.");
    const char *params = probe_str(r.json, "parameters");
    assert_non_null(params);
    assert_non_null(strstr(params, "temperature                    0.7"));
    assert_non_null(strstr(params, "top_k                          20"));
    assert_non_null(probe_str(r.json, "template"));
    assert_non_null(probe_str(r.json, "modelfile"));
    assert_details(json_object_get(r.json, "details"), "qwen3");
    assert_true(is_rfc3339(probe_str(r.json, "modified_at")));

    /* every spelling of the name gives the same answer */
    const char *same[] = {"{\"model\":\"qwen3-test:latest\"}", "{\"name\":\"qwen3-test\"}",
                          "{\"model\":\"registry.ollama.ai/library/QWEN3-TEST:latest\"}"};
    for (size_t i = 0; i < 3; i++) {
        probe_result r2 = probe_post("/api/show", same[i]);
        assert_int_equal(r2.status, 200);
        assert_true(json_equal(r.json, r2.json));
        probe_result_free(&r2);
    }
    probe_result_free(&r);

    r = probe_post("/api/show", "{\"model\":\"plain\"}");
    assert_int_equal(r.status, 200);
    caps = json_object_get(r.json, "capabilities");
    assert_int_equal(json_array_size(caps), 1);
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "completion");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "model_info"), "qwen2.context_length")),
                     1280);
    assert_null(json_object_get(r.json, "system"));
    probe_result_free(&r);
}

static void test_show_errors(void **state)
{
    (void)state;
    probe_expect_error("/api/show", "{}", 400, "model is required");
    probe_expect_error("/api/show", "{\"model\":\"\"}", 400, "model is required");
    probe_expect_error("/api/show", "{\"model\":\"nope\"}", 404, "model 'nope:latest' not found");
    probe_expect_error("/api/show", "{\"model\":\"nope:7b\"}", 404, "model 'nope:7b' not found");
    probe_expect_error("/api/show", "", 400, "missing request body");
    probe_expect_error("/api/show", "{\"model\":\"bad name!\"}", 400, "invalid model name");
}

static void test_ps_lists_loaded_models_with_state(void **state)
{
    (void)state;
    probe_result r = probe_get("/api/ps");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "models")), 0); /* [] not null */
    probe_result_free(&r);

    time_t now = time(NULL);
    pthread_mutex_lock(&fake.lock);
    fake.ps[0] = (engine_loaded_model){.state = RT_LOADING,
                                       .load_step = 12,
                                       .load_total = 39,
                                       .expires_at = now + 300,
                                       .size = 1000,
                                       .context_length = 1280,
                                       .manifest = &g_models[1]};
    snprintf(fake.ps[0].name, sizeof fake.ps[0].name, "plain:latest");
    fake.ps[1] = (engine_loaded_model){
        .state = RT_READY, .forever = true, .size = 5000000000ULL, .context_length = 2559, .manifest = &g_models[0]};
    snprintf(fake.ps[1].name, sizeof fake.ps[1].name, "qwen3-test:latest");
    fake.n_ps = 2;
    pthread_mutex_unlock(&fake.lock);

    r = probe_get("/api/ps");
    assert_int_equal(r.status, 200);
    json_t *models = json_object_get(r.json, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *forever = json_array_get(models, 0), *loading = json_array_get(models, 1);
    assert_string_equal(probe_str(forever, "name"), "qwen3-test:latest"); /* most time left first */
    assert_string_equal(probe_str(forever, "model"), "qwen3-test:latest");
    assert_true(atoi(probe_str(forever, "expires_at")) >= 2300);
    assert_true(is_rfc3339(probe_str(forever, "expires_at")));
    assert_int_equal(json_integer_value(json_object_get(forever, "size_vram")), 5000000000LL);
    assert_int_equal(json_integer_value(json_object_get(forever, "size")), 5000000000LL);
    assert_int_equal(json_integer_value(json_object_get(forever, "context_length")), 2559);
    assert_string_equal(probe_str(forever, "axllama.state"), "ready");
    assert_null(json_object_get(json_object_get(forever, "axllama"), "progress"));
    assert_int_equal(strlen(probe_str(forever, "digest")), 64);
    assert_details(json_object_get(forever, "details"), "qwen3");

    assert_string_equal(probe_str(loading, "name"), "plain:latest");
    assert_string_equal(probe_str(loading, "axllama.state"), "loading");
    assert_string_equal(probe_str(loading, "axllama.progress"), "12/39");
    assert_int_equal(json_integer_value(json_object_get(loading, "context_length")), 1280);
    int year = atoi(probe_str(loading, "expires_at"));
    struct tm tm;
    localtime_r(&now, &tm);
    assert_true(year == tm.tm_year + 1900 || year == tm.tm_year + 1901);
    probe_result_free(&r);
}

/* ================================================================== generate */

static void assert_metrics(const json_t *last)
{
    const char *keys[] = {"total_duration",       "load_duration", "prompt_eval_count",
                          "prompt_eval_duration", "eval_count",    "eval_duration"};
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
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}");
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/x-ndjson");
    probe_assert_header(&r, "Transfer-Encoding", "chunked");
    json_t *lines[8];
    size_t n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 3);
    strbuf text = {0};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(probe_str(lines[i], "model"), "qwen3-test"); /* echoed as sent */
        const char *created = probe_str(lines[i], "created_at");
        assert_true(is_rfc3339(created));
        assert_int_equal(created[strlen(created) - 1], 'Z');
        assert_non_null(strchr(created, '.'));
        assert_non_null(probe_str(lines[i], "response"));
        assert_null(json_object_get(lines[i], "context"));
        assert_null(json_object_get(lines[i], "thinking"));
        sb_puts(&text, probe_str(lines[i], "response"));
        bool last = i == n - 1;
        assert_true(json_is_boolean(json_object_get(lines[i], "done")));
        assert_int_equal(json_is_true(json_object_get(lines[i], "done")), last);
        if (!last)
            assert_null(json_object_get(lines[i], "done_reason"));
    }
    assert_string_equal(text.data, "Hello");
    assert_string_equal(probe_str(lines[n - 1], "response"), "");
    assert_string_equal(probe_str(lines[n - 1], "done_reason"), "stop");
    assert_metrics(lines[n - 1]);
    sb_free(&text);
    probe_free_lines(lines, n);
    probe_result_free(&r);

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
    assert_int_equal(fake_wait_count(&fake.releases, 1), 1);
}

static void test_generate_system_and_raw(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r =
        probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"system\":\"Be brief.\"}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    {
        fake_state f = fake_snapshot();
        assert_int_equal(f.n_msgs, 2);
        assert_string_equal(f.msgs[0].role, "system");
        assert_string_equal(f.msgs[0].content, "Be brief.");
        assert_string_equal(f.msgs[1].role, "user");
    }

    r = probe_post("/api/generate",
                   "{\"model\":\"qwen3-test\",\"prompt\":\"<|im_start|>raw\",\"raw\":true,\"stream\":false}");
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "response"), "Hello");
    assert_null(json_object_get(r.json, "context"));
    probe_result_free(&r);
    {
        fake_state f = fake_snapshot();
        assert_int_equal(f.kind, JOB_RAW);
        assert_string_equal(f.raw_prompt, "<|im_start|>raw");
    }

    const char *conflicts[] = {"{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"raw\":true,\"system\":\"s\"}",
                               "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"raw\":true,\"template\":\"t\"}",
                               "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"raw\":true,\"context\":[1,2]}"};
    for (size_t i = 0; i < 3; i++)
        probe_expect_error("/api/generate", conflicts[i], 400,
                           "raw mode does not support template, system, or context");
    /* context alone is accepted (deprecated, ignored) */
    r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"context\":[1,2,3],\"stream\":false}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
}

static void test_generate_non_stream_concatenates(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_THINK_HELLO);
    probe_result r =
        probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"stream\":false,\"think\":true}");
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    assert_non_null(r.json);
    assert_string_equal(probe_str(r.json, "response"), "Hello");
    assert_string_equal(probe_str(r.json, "thinking"), "Hmm.");
    assert_true(json_is_true(json_object_get(r.json, "done")));
    assert_string_equal(probe_str(r.json, "done_reason"), "stop");
    assert_metrics(r.json);
    assert_null(strchr(r.body.data, '\n'));
    probe_result_free(&r);
    assert_int_equal(fake_snapshot().think, 1);
}

static void test_generate_streams_thinking_separately(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_THINK_HELLO);
    probe_result r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"think\":\"high\"}");
    json_t *lines[8];
    size_t n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 5);
    assert_string_equal(probe_str(lines[0], "thinking"), "Hm");
    assert_string_equal(probe_str(lines[0], "response"), "");
    assert_null(json_object_get(lines[2], "thinking"));
    assert_string_equal(probe_str(lines[2], "response"), "Hel");
    probe_free_lines(lines, n);
    probe_result_free(&r);
    assert_int_equal(fake_snapshot().think, 1);
}

/* ================================================================== chat */

static void test_chat_chunks_always_carry_role(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_THINK_HELLO);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/x-ndjson");
    json_t *lines[8];
    size_t n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(probe_str(lines[i], "message.role"), "assistant");
        assert_non_null(probe_str(lines[i], "message.content"));
        assert_null(json_object_get(lines[i], "response"));
    }
    assert_string_equal(probe_str(lines[0], "message.thinking"), "Hm");
    assert_string_equal(probe_str(lines[0], "message.content"), "");
    assert_string_equal(probe_str(lines[3], "message.content"), "lo");
    assert_true(json_is_true(json_object_get(lines[4], "done")));
    assert_string_equal(probe_str(lines[4], "done_reason"), "stop");
    assert_string_equal(probe_str(lines[4], "message.content"), "");
    assert_metrics(lines[4]);
    probe_free_lines(lines, n);
    probe_result_free(&r);
}

static void test_chat_non_stream_and_messages(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_THINK_HELLO);
    probe_result r = probe_post(
        "/api/chat",
        "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[],\"messages\":["
        "{\"role\":\"SYSTEM\",\"content\":\"sys\"},"
        "{\"role\":\"user\",\"content\":\"q1\"},"
        "{\"role\":\"Assistant\",\"content\":\"a1\",\"thinking\":\"t1\","
        "\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":2}}}]},"
        "{\"role\":\"tool\",\"content\":\"sunny\",\"tool_name\":\"get_weather\"},"
        "{\"role\":\"user\",\"content\":null}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "message.role"), "assistant");
    assert_string_equal(probe_str(r.json, "message.content"), "Hello");
    assert_string_equal(probe_str(r.json, "message.thinking"), "Hmm.");
    assert_true(json_is_true(json_object_get(r.json, "done")));
    probe_result_free(&r);
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

    probe_expect_error("/api/chat",
                       "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}]}", 400,
                       "invalid role \"developer\" in message 0: must be one of system, user, assistant, tool");
    probe_expect_error(
        "/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400,
        "json: cannot unmarshal number into Go struct field ChatRequest.messages.content of type string");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":{}}", 400,
                       "json: cannot unmarshal object into Go struct field ChatRequest.messages of type []api.Message");
}

/* ================================================================== errors */

static void test_error_before_streaming_is_status_and_json(void **state)
{
    (void)state;
    static const fake_step fail[] = {{.kind = JOB_EV_ERROR, .text = "failed to load model: boom", .http_status = 500}};
    FAKE_SCRIPT(fail);
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}", 500,
                       "failed to load model: boom");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                       500, "failed to load model: boom");
    static const fake_step bad[] = {{.kind = JOB_EV_ERROR, .text = "prompt too long", .http_status = 400}};
    FAKE_SCRIPT(bad);
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\",\"stream\":false}", 400,
                       "prompt too long");
    static const fake_step no_status[] = {{.kind = JOB_EV_ERROR, .text = "odd"}};
    FAKE_SCRIPT(no_status);
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}", 500, "odd");
    /* non-stream: an error after some pieces is still a status + JSON */
    static const fake_step late[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                     {.kind = JOB_EV_ERROR, .text = "runtime died", .http_status = 500}};
    FAKE_SCRIPT(late);
    probe_expect_error(
        "/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        500, "runtime died");
    assert_int_equal(fake_wait_count(&fake.releases, 5), 5);
}

static void test_error_mid_stream_is_one_error_line(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_ERROR, .text = "runtime died", .http_status = 500}};
    FAKE_SCRIPT(steps);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    json_t *lines[4];
    size_t n = probe_ndjson_lines(&r, lines, 4);
    assert_int_equal(n, 2);
    assert_false(json_is_true(json_object_get(lines[0], "done")));
    assert_string_equal(probe_str(lines[1], "error"), "runtime died");
    assert_int_equal(json_object_size(lines[1]), 1);
    probe_free_lines(lines, n);
    probe_result_free(&r);
}

static void test_queue_full_is_503(void **state)
{
    (void)state;
    pthread_mutex_lock(&fake.lock);
    fake.submit_status = 503;
    snprintf(fake.submit_err, sizeof fake.submit_err,
             "server busy, please try again.  maximum pending requests exceeded");
    pthread_mutex_unlock(&fake.lock);
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"hi\"}", 503,
                       "server busy, please try again.  maximum pending requests exceeded");
    assert_int_equal(fake_count(&fake.releases), 0);
}

static void test_unknown_model_and_missing_model(void **state)
{
    (void)state;
    probe_expect_error("/api/generate", "{\"model\":\"nope\",\"prompt\":\"x\"}", 404, "model 'nope' not found");
    probe_expect_error("/api/generate", "{\"prompt\":\"x\"}", 404, "model '' not found");
    probe_expect_error("/api/generate", "{\"model\":\"bad name!\",\"prompt\":\"x\"}", 404,
                       "model 'bad name!' not found");
    probe_expect_error("/api/chat", "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404,
                       "model 'nope' not found");
    probe_expect_error("/api/chat", "{\"messages\":[]}", 400, "model is required");
    assert_int_equal(fake_count(&fake.submits), 0);
}

static void test_request_body_errors(void **state)
{
    (void)state;
    probe_expect_error("/api/generate", "", 400, "missing request body");
    probe_expect_error("/api/chat", "  \n ", 400, "missing request body");
    probe_expect_error("/api/generate", "{\"model\":", 400, "unexpected EOF");
    probe_expect_error("/api/generate", "[1,2]", 400,
                       "json: cannot unmarshal array into Go value of type api.GenerateRequest");
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":1}", 400,
                       "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string");
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":\"yes\"}", 400,
                       "json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool");
    probe_expect_error(
        "/api/chat", "{\"model\":\"qwen3-test\",\"options\":[1]}", 400,
        "json: cannot unmarshal array into Go struct field ChatRequest.options of type map[string]interface {}");
    probe_result r = probe_post("/api/generate", "{oops}");
    assert_int_equal(r.status, 400);
    assert_non_null(probe_str(r.json, "error"));
    probe_result_free(&r);
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"top_logprobs\":21}", 400,
                       "top_logprobs must be between 0 and 20");
    /* unknown top-level keys are ignored */
    FAKE_SCRIPT(STEPS_HELLO);
    r = probe_post("/api/generate",
                   "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"whatever\":{\"a\":1},\"stream\":false}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
}

/* ================================================================== load / unload / keep_alive */

static void test_load_and_unload(void **state)
{
    (void)state;
    static const fake_step load[] = {{.kind = JOB_EV_DONE, .done_reason = "load"}};
    FAKE_SCRIPT(load);
    probe_result r = probe_post("/api/generate", "{\"model\":\"qwen3-test\"}"); /* streaming requested, one object */
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    assert_string_equal(probe_str(r.json, "done_reason"), "load");
    assert_string_equal(probe_str(r.json, "response"), "");
    assert_true(json_is_true(json_object_get(r.json, "done")));
    assert_string_equal(probe_str(r.json, "model"), "qwen3-test");
    probe_result_free(&r);
    assert_int_equal(fake_snapshot().kind, JOB_LOAD);

    r = probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "done_reason"), "load");
    assert_string_equal(probe_str(r.json, "message.role"), "assistant");
    assert_string_equal(probe_str(r.json, "message.content"), "");
    probe_result_free(&r);
    r = probe_post("/api/chat", "{\"model\":\"qwen3-test\"}");
    assert_string_equal(probe_str(r.json, "done_reason"), "load");
    probe_result_free(&r);
    assert_int_equal(fake_count(&fake.submits), 3);

    const char *unloads[] = {"{\"model\":\"qwen3-test\",\"keep_alive\":0}",
                             "{\"model\":\"qwen3-test\",\"prompt\":\"\",\"keep_alive\":\"0s\"}",
                             "{\"model\":\"qwen3-test:latest\",\"keep_alive\":\"0\"}"};
    for (size_t i = 0; i < 3; i++) {
        r = probe_post("/api/generate", unloads[i]);
        assert_int_equal(r.status, 200);
        assert_string_equal(probe_str(r.json, "done_reason"), "unload");
        assert_true(json_is_true(json_object_get(r.json, "done")));
        probe_result_free(&r);
    }
    r = probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[],\"keep_alive\":0}");
    assert_string_equal(probe_str(r.json, "done_reason"), "unload");
    assert_string_equal(probe_str(r.json, "message.role"), "assistant");
    probe_result_free(&r);
    assert_int_equal(fake_count(&fake.unloads), 4);
    assert_int_equal(fake_count(&fake.submits), 3); /* never loads to unload */
    assert_string_equal(fake_snapshot().unloaded, "qwen3-test");
    probe_expect_error("/api/generate", "{\"model\":\"nope\",\"keep_alive\":0}", 404, "model 'nope' not found");
    assert_int_equal(fake_count(&fake.unloads), 4);
}

static void expect_keep_alive(const char *value, bool forever, double seconds)
{
    FAKE_SCRIPT(STEPS_HELLO);
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"keep_alive\":%s}",
             value);
    probe_result r = probe_post("/api/generate", body);
    if (r.status != 200)
        fail_msg("keep_alive %s: %ld %s", value, r.status, r.body.data);
    probe_result_free(&r);
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
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"keep_alive\":\"-1\"}", 400,
                       "time: missing unit in duration \"-1\"");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"keep_alive\":true}", 400, "Unsupported type: 'bool'");
    /* null = absent */
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"keep_alive\":null}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    assert_false(fake_snapshot().has_keep_alive);
}

/* truncate (default true) reaches the engine as job_request.no_truncate, for both endpoints. */
static void test_truncate_is_passed_to_the_engine(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}",
        "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"truncate\":true}",
        "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"truncate\":null}",
        "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"truncate\":false}",
        "{\"model\":\"qwen3-test\",\"raw\":true,\"prompt\":\"x\",\"stream\":false,\"truncate\":false}",
    };
    const bool refused[] = {false, false, false, true, true};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        FAKE_SCRIPT(STEPS_HELLO);
        probe_result r = probe_post("/api/generate", bodies[i]);
        assert_int_equal(r.status, 200);
        probe_result_free(&r);
        if (fake_snapshot().no_truncate != refused[i])
            fail_msg("%s: no_truncate should be %d", bodies[i], refused[i]);
    }
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r = probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"truncate\":false,"
                                             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    assert_true(fake_snapshot().no_truncate);
    FAKE_SCRIPT(STEPS_HELLO);
    r = probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,"
                                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    assert_false(fake_snapshot().no_truncate);
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"truncate\":\"no\",\"messages\":[]}", 400,
                       "json: cannot unmarshal string into Go struct field ChatRequest.truncate of type bool");
    /* the engine's refusal of a prompt too long for the context is a 400 before any byte */
    const fake_step too_long[] = {{.kind = JOB_EV_ERROR,
                                   .text = "the prompt is too long: 5000 tokens (this model takes at most 2048)",
                                   .http_status = 400}};
    FAKE_SCRIPT(too_long);
    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"truncate\":false}", 400,
                       "the prompt is too long: 5000 tokens (this model takes at most 2048)");
}

/* ================================================================== think, options, unsupported */

static void test_think_validation(void **state)
{
    (void)state;
    probe_expect_error(
        "/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"think\":\"bogus\"}", 400,
        "invalid think value: \"bogus\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"think\":5}", 400,
                       "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)");
    probe_expect_error("/api/generate", "{\"model\":\"plain\",\"prompt\":\"x\",\"think\":true}", 400,
                       "\"plain\" does not support thinking");
    probe_expect_error("/api/chat", "{\"model\":\"plain:latest\",\"think\":\"low\",\"messages\":[]}", 400,
                       "\"plain:latest\" does not support thinking");
    const struct {
        const char *model, *think;
        int expect;
    } ok[] = {{"plain", "false", 0},
              {"qwen3-test", "false", 0},
              {"qwen3-test", "\"medium\"", 1},
              {"qwen3-test", "\"max\"", 1},
              {"qwen3-test", "null", -1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        FAKE_SCRIPT(STEPS_HELLO);
        char body[256];
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"prompt\":\"x\",\"stream\":false,\"think\":%s}", ok[i].model,
                 ok[i].think);
        probe_result r = probe_post("/api/generate", body);
        assert_int_equal(r.status, 200);
        probe_result_free(&r);
        assert_int_equal(fake_snapshot().think, ok[i].expect);
    }
}

static void test_options_known_applied_unknown_ignored(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r = probe_post(
        "/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false,\"options\":{"
                         "\"temperature\":0.5,\"top_k\":7.9,\"top_p\":0.25,\"repeat_penalty\":1.1,\"num_predict\":3,"
                         "\"stop\":[\"x\",\"y\"],\"num_ctx\":8192,\"seed\":null,\"use_mmap\":true,"
                         "\"numa\":true,\"mirostat\":1,\"tfs_z\":\"odd\",\"penalize_newline\":[1]}}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
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

    FAKE_SCRIPT(STEPS_HELLO);
    r = probe_post("/api/chat",
                   "{\"model\":\"qwen3-test\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    assert_false(fake_snapshot().options.has_temperature);
    assert_int_equal(fake_snapshot().options.n_stop, 0);

    probe_expect_error("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"options\":{\"top_k\":\"a\"}}",
                       400, "option \"top_k\" must be of type integer");
    probe_expect_error("/api/generate",
                       "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"options\":{\"temperature\":true}}", 400,
                       "option \"temperature\" must be of type float32");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":{\"stop\":\"x\"}}", 400,
                       "option \"stop\" must be of type array");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":{\"stop\":[1]}}", 400,
                       "option \"stop\" must be of an array of strings");
    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"options\":{\"use_mmap\":1}}", 400,
                       "option \"use_mmap\" must be of type boolean");
}

static void test_unsupported_features_are_refused(void **state)
{
    (void)state;
    const char *m = "{\"model\":\"qwen3-test\",\"prompt\":\"x\",";
    char body[256];
    snprintf(body, sizeof body, "%s\"format\":123}", m);
    probe_expect_error("/api/generate", body, 400,
                       "invalid format: \"123\"; expected \"json\" or a valid JSON Schema object");
    snprintf(body, sizeof body, "%s\"format\":\"xml\"}", m);
    probe_expect_error("/api/generate", body, 400,
                       "invalid format: \"\\\"xml\\\"\"; expected \"json\" or a valid JSON Schema object");
    snprintf(body, sizeof body, "%s\"images\":[\"aGVsbG8=\"]}", m);
    probe_expect_error("/api/generate", body, 400,
                       "registry.ollama.ai/library/qwen3-test:latest does not support vision");
    snprintf(body, sizeof body, "%s\"suffix\":\"end\"}", m);
    probe_expect_error("/api/generate", body, 400,
                       "registry.ollama.ai/library/qwen3-test:latest does not support insert");
    probe_expect_error("/api/chat",
                       "{\"model\":\"plain\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                       400, "registry.ollama.ai/library/plain:latest does not support tools");
    probe_expect_error(
        "/api/chat", "{\"model\":\"plain\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}",
        400, "registry.ollama.ai/library/plain:latest does not support vision");
    snprintf(body, sizeof body, "%s\"template\":\"{{ .Prompt }}\"}", m);
    probe_expect_error("/api/generate", body, 400,
                       "template overrides are not supported: axllama renders the model's own chat template");
    snprintf(body, sizeof body, "%s\"logprobs\":true}", m);
    probe_expect_error("/api/generate", body, 400, "logprobs are not supported");
    assert_int_equal(fake_count(&fake.submits), 0);

    /* empty values mean "not set" */
    const char *accepted[] = {"\"format\":\"\"", "\"format\":null",    "\"images\":[]",
                              "\"suffix\":\"\"", "\"logprobs\":false", "\"template\":\"\""};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        FAKE_SCRIPT(STEPS_HELLO);
        snprintf(body, sizeof body, "%s\"stream\":false,%s}", m, accepted[i]);
        probe_result r = probe_post("/api/generate", body);
        if (r.status != 200)
            fail_msg("%s: %ld %s", accepted[i], r.status, r.body.data);
        probe_result_free(&r);
    }
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r = probe_post("/api/chat", "{\"model\":\"plain\",\"tools\":[],\"stream\":false,"
                                             "\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[]}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
}

/* ================================================================== tools */

static void test_tools_are_serialised_as_tojson_for_the_template(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r = probe_post(
        "/api/chat",
        "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":["
        "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Wetter f\\u00fcr \\\"x\\\"\","
        "\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{\"city\":{\"type\":\"string\"},"
        "\"scale\":{\"type\":\"number\",\"default\":1.0}}}}},"
        "{\"function\":{\"name\":\"noop\"},\"type\":\"function\"}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    fake_state f = fake_snapshot();
    assert_int_equal(f.n_tools, 2);
    /* json.dumps(tool, ensure_ascii=False): ", " and ": ", keys as given, raw UTF-8, 1.0 stays 1.0 */
    assert_string_equal(f.tools[0],
                        "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
                        "\"Wetter für \\\"x\\\"\", \"parameters\": {\"type\": \"object\", \"required\": "
                        "[\"city\"], \"properties\": {\"city\": {\"type\": \"string\"}, \"scale\": "
                        "{\"type\": \"number\", \"default\": 1.0}}}}}");
    assert_string_equal(f.tools[1], "{\"function\": {\"name\": \"noop\"}, \"type\": \"function\"}");

    /* generate has no tools; an empty list is no tools */
    FAKE_SCRIPT(STEPS_HELLO);
    r = probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[],\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    assert_int_equal(fake_snapshot().n_tools, 0);

    probe_expect_error("/api/chat", "{\"model\":\"qwen3-test\",\"tools\":[\"f\"],\"messages\":[]}", 400,
                       "json: cannot unmarshal string into Go struct field ChatRequest.tools of type api.Tool");
    probe_expect_error(
        "/api/chat", "{\"model\":\"qwen3-test\",\"tools\":[{\"function\":[]}],\"messages\":[]}", 400,
        "json: cannot unmarshal array into Go struct field ChatRequest.tools.function of type api.ToolFunction");
    probe_expect_error(
        "/api/chat",
        "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
        "[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}]}",
        400,
        "json: cannot unmarshal string into Go struct field ChatRequest.messages.tool_calls.function.arguments of "
        "type api.ToolCallFunctionArguments");

    /* the capability follows the template: the Qwen2.5 "plain" model has none */
    r = probe_post("/api/show", "{\"model\":\"plain\"}");
    json_t *caps = json_object_get(r.json, "capabilities");
    assert_int_equal(json_array_size(caps), 1);
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "completion");
    probe_result_free(&r);
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
    FAKE_SCRIPT(STEPS_TOOL_CALLS);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                                "\"get_weather\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    json_t *lines[8];
    size_t n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 5);
    assert_string_equal(probe_str(lines[0], "message.content"), "Let me check. ");
    assert_null(json_object_get(json_object_get(lines[0], "message"), "tool_calls"));
    for (size_t i = 1; i <= 2; i++) {
        assert_false(json_is_true(json_object_get(lines[i], "done")));
        assert_string_equal(probe_str(lines[i], "message.role"), "assistant");
        assert_string_equal(probe_str(lines[i], "message.content"), "");
        json_t *calls = json_object_get(json_object_get(lines[i], "message"), "tool_calls");
        assert_int_equal(json_array_size(calls), 1);
        if (i == 1)
            assert_tool_call(json_array_get(calls, 0), 0, "get_weather", "{\"city\":\"Paris\",\"days\":2}");
        else
            assert_tool_call(json_array_get(calls, 0), 1, "get_time", "{}");
    }
    assert_string_equal(probe_str(lines[3], "message.content"), "Done.");
    assert_true(json_is_true(json_object_get(lines[4], "done")));
    assert_string_equal(probe_str(lines[4], "done_reason"), "stop"); /* Ollama says stop with tool calls */
    probe_free_lines(lines, n);
    probe_result_free(&r);
}

static void test_tool_calls_non_stream_are_collected_in_the_message(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_TOOL_CALLS);
    probe_result r = probe_post(
        "/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[{\"type\":\"function\","
                     "\"function\":{\"name\":\"get_weather\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "message.content"), "Let me check. Done.");
    assert_string_equal(probe_str(r.json, "done_reason"), "stop");
    json_t *calls = json_object_get(json_object_get(r.json, "message"), "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    assert_tool_call(json_array_get(calls, 0), 0, "get_weather", "{\"city\":\"Paris\",\"days\":2}");
    assert_tool_call(json_array_get(calls, 1), 1, "get_time", "{}");
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(calls, 0), "id")),
                            json_string_value(json_object_get(json_array_get(calls, 1), "id")));
    probe_result_free(&r);
    /* without calls there is no tool_calls member */
    FAKE_SCRIPT(STEPS_HELLO);
    r = probe_post("/api/chat",
                   "{\"model\":\"qwen3-test\",\"stream\":false,\"tools\":[{\"type\":\"function\","
                   "\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_null(json_object_get(json_object_get(r.json, "message"), "tool_calls"));
    probe_result_free(&r);
}

/* ================================================================== format */

#define INSTRUCTION "Respond with valid JSON only: a single JSON value, no other text, no code fences."

static void test_format_instruction_goes_to_the_system_prompt(void **state)
{
    (void)state;
    FAKE_SCRIPT(STEPS_HELLO);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    probe_result_free(&r);
    assert_false(fake_snapshot().has_system_suffix);

    const fake_step json_reply[] = {{.kind = JOB_EV_CONTENT, .text = "{}"},
                                    {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(json_reply);
    r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":\"json\",\"stream\":false}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    fake_state f = fake_snapshot();
    assert_true(f.has_system_suffix);
    assert_string_equal(f.system_suffix, INSTRUCTION);

    FAKE_SCRIPT(json_reply);
    r = probe_post("/api/chat",
                   "{\"model\":\"qwen3-test\",\"stream\":false,\"format\":{\"type\":\"object\",\"properties\":"
                   "{\"a\":{\"type\":\"integer\"}}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    f = fake_snapshot();
    assert_string_equal(f.system_suffix,
                        INSTRUCTION " The JSON must conform to this JSON schema: "
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
    FAKE_SCRIPT(fenced);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"stream\":false,\"format\":{\"type\":\"object\","
                                "\"required\":[\"a\"]},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "message.content"), "{\"a\": 1}"); /* fence and whitespace removed */
    assert_string_equal(probe_str(r.json, "message.thinking"), "think");     /* thinking is not validated */
    probe_result_free(&r);
}

static void test_format_nonconforming_reply_non_stream_is_an_error(void **state)
{
    (void)state;
    const fake_step prose[] = {{.kind = JOB_EV_CONTENT, .text = "Sure, here"},
                               {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(prose);
    probe_expect_error("/api/generate",
                       "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":\"json\",\"stream\":false}", 400,
                       "the model's reply is not valid JSON: invalid token near 'Sure' (line 1, column 4)");
    const fake_step wrong[] = {{.kind = JOB_EV_CONTENT, .text = "{\"a\": \"1\"}"},
                               {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(wrong);
    probe_expect_error(
        "/api/chat",
        "{\"model\":\"qwen3-test\",\"stream\":false,\"format\":{\"type\":\"object\",\"properties\":{\"a\":"
        "{\"type\":\"integer\"}}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        400, "the model's reply does not match the format schema: $.a: expected integer, got string");
    /* a reply cut by num_predict is checked too */
    const fake_step cut[] = {{.kind = JOB_EV_CONTENT, .text = "{\"a\": "},
                             {.kind = JOB_EV_DONE, .done_reason = "length"}};
    FAKE_SCRIPT(cut);
    probe_result r =
        probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":\"json\",\"stream\":false}");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(probe_str(r.json, "error"), "the model's reply is not valid JSON: "));
    probe_result_free(&r);
}

static void test_format_streams_then_ends_with_done_or_an_error_line(void **state)
{
    (void)state;
    const fake_step ok[] = {{.kind = JOB_EV_CONTENT, .text = "[1, "},
                            {.kind = JOB_EV_CONTENT, .text = "2]"},
                            {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(ok);
    probe_result r =
        probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"format\":{\"type\":\"array\","
                                    "\"items\":{\"type\":\"integer\"}}}");
    assert_int_equal(r.status, 200);
    json_t *lines[8];
    size_t n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 3);
    assert_string_equal(probe_str(lines[0], "response"), "[1, ");
    assert_true(json_is_true(json_object_get(lines[2], "done")));
    probe_free_lines(lines, n);
    probe_result_free(&r);

    const fake_step bad[] = {{.kind = JOB_EV_CONTENT, .text = "[1, "},
                             {.kind = JOB_EV_CONTENT, .text = "\"two\"]"},
                             {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(bad);
    r = probe_post("/api/chat",
                   "{\"model\":\"qwen3-test\",\"format\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},"
                   "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200); /* the text went out before the end */
    n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 3);
    assert_string_equal(probe_str(lines[1], "message.content"), "\"two\"]");
    assert_int_equal(json_object_size(lines[2]), 1); /* {"error"} instead of done */
    assert_string_equal(probe_str(lines[2], "error"),
                        "the model's reply does not match the format schema: $[1]: expected integer, got string");
    for (size_t i = 0; i < n; i++)
        assert_null(json_object_get(lines[i], "done_reason"));
    probe_free_lines(lines, n);
    probe_result_free(&r);
}

static void test_format_values_and_schema_errors(void **state)
{
    (void)state;
    const char *m = "{\"model\":\"qwen3-test\",\"prompt\":\"x\",";
    char body[256];
    snprintf(body, sizeof body, "%s\"format\":{\"type\":\"float\"}}", m);
    probe_expect_error(
        "/api/generate", body, 400,
        "invalid format schema: $: \"type\" must be one of object, array, string, number, integer, boolean, "
        "null, or an array of them");
    probe_expect_error(
        "/api/chat",
        "{\"model\":\"qwen3-test\",\"format\":{\"properties\":{\"a\":{\"required\":\"a\"}}},\"messages\":[]}", 400,
        "invalid format schema: $.properties.a: \"required\" must be an array of strings");
    snprintf(body, sizeof body, "%s\"format\":true}", m);
    probe_expect_error("/api/generate", body, 400,
                       "invalid format: \"true\"; expected \"json\" or a valid JSON Schema object");
    assert_int_equal(fake_count(&fake.submits), 0);
}

/* ================================================================== embeddings, model management */

/* No model here can embed: Ollama's checks in its order, then its capability error, as JSON. */
static void test_embed_routes_answer_ollamas_errors_as_json(void **state)
{
    (void)state;
    probe_expect_error("/api/embed", "{\"model\":\"qwen3-test\",\"input\":\"hi\"}", 400,
                       "\"qwen3-test\" does not support embeddings");
    probe_expect_error("/api/embed", "{\"model\":\"qwen3-test:latest\",\"input\":[\"a\",\"b\"]}", 400,
                       "\"qwen3-test:latest\" does not support embeddings");
    probe_expect_error("/api/embed", "{\"model\":\"nope\",\"input\":\"hi\"}", 404,
                       "model \"nope\" not found, try pulling it first");
    probe_expect_error("/api/embed", "{\"input\":\"hi\"}", 404, "model '' not found");
    probe_expect_error("/api/embed", "{\"model\":\"qwen3-test\",\"input\":[1]}", 400, "invalid input type");
    probe_expect_error("/api/embed", "{\"model\":\"qwen3-test\",\"input\":{}}", 400, "invalid input type");
    probe_expect_error("/api/embed", "", 400, "missing request body");
    probe_expect_error("/api/embed", "{\"model\":7}", 400,
                       "json: cannot unmarshal number into Go struct field EmbedRequest.model of type string");
    probe_expect_error("/api/embeddings", "{\"model\":\"plain\",\"prompt\":\"hi\"}", 400,
                       "\"plain\" does not support embeddings");
    probe_expect_error("/api/embeddings", "{\"prompt\":\"hi\"}", 400, "model is required");
    probe_expect_error("/api/embeddings", "{\"model\":\"nope\"}", 404,
                       "model \"nope\" not found, try pulling it first");
    assert_int_equal(fake_count(&fake.submits), 0);
}

/* /api/pull of an installed model: Ollama's stream for an up-to-date model (or one object);
 * anything else is a JSON error before any byte. */
static void test_pull_of_an_installed_model_succeeds_without_downloading(void **state)
{
    (void)state;
    probe_result r = probe_post("/api/pull", "{\"name\":\"qwen3-test\",\"stream\":true,\"insecure\":false}");
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/x-ndjson");
    json_t *lines[8];
    size_t n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 4);
    assert_string_equal(probe_str(lines[0], "status"), "pulling manifest");
    assert_string_equal(probe_str(lines[3], "status"), "success");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_object_size(lines[i]), 1);
    probe_free_lines(lines, n);
    probe_result_free(&r);

    r = probe_post("/api/pull", "{\"model\":\"QWEN3-TEST:latest\"}"); /* stream by default, any spelling */
    assert_int_equal(r.status, 200);
    n = probe_ndjson_lines(&r, lines, 8);
    assert_int_equal(n, 4);
    probe_free_lines(lines, n);
    probe_result_free(&r);

    r = probe_post("/api/pull", "{\"model\":\"plain\",\"stream\":false}");
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    assert_string_equal(r.body.data, "{\"status\":\"success\"}");
    probe_result_free(&r);

    probe_expect_error("/api/pull", "{\"model\":\"llama3.2\"}", 404,
                       "model \"llama3.2\" is not installed, and axllama cannot pull models: install the vendor's "
                       "model package and its manifest (docs/models.md)");
    probe_expect_error("/api/pull", "{}", 400, "invalid model name");
    probe_expect_error("/api/pull", "{\"model\":\"bad name!\"}", 400, "invalid model name");
    probe_expect_error("/api/pull", "{\"model\":\"plain\",\"stream\":\"no\"}", 400,
                       "json: cannot unmarshal string into Go struct field PullRequest.stream of type bool");
    assert_int_equal(fake_count(&fake.submits), 0);
}

static void expect_method_error(const char *method, const char *path, const char *body, long status,
                                const char *message)
{
    probe_result r = probe_must(&(probe_request){.method = method, .path = path, .body = body});
    probe_assert_error(&r, status, message);
    probe_result_free(&r);
}

/* push, create, copy, delete, blobs: Ollama's name checks and statuses, then what to do instead. */
static void test_management_routes_say_what_is_not_supported(void **state)
{
    (void)state;
    probe_expect_error("/api/push", "{\"name\":\"qwen3-test\"}", 400,
                       "pushing models is not supported: axllama serves installed vendor model packages and has no "
                       "registry to push to (docs/models.md)");
    probe_expect_error("/api/push", "{}", 400, "model is required");
    probe_expect_error("/api/push", "{\"model\":\"nope\"}", 404, "model 'nope' not found");
    probe_expect_error("/api/create", "{\"model\":\"mine\",\"from\":\"qwen3-test\",\"system\":\"Be brief.\"}", 400,
                       "creating models is not supported: axllama runs models compiled for the NPU, each installed "
                       "from its vendor package with a manifest (docs/models.md)");
    probe_expect_error("/api/create", "{\"from\":\"qwen3-test\"}", 400, "invalid model name");
    probe_expect_error("/api/copy", "{\"source\":\"qwen3-test\",\"destination\":\"mine\"}", 400,
                       "copying models is not supported: a model is its manifest file; copy the manifest and give "
                       "the copy another \"name\" (docs/models.md)");
    probe_expect_error("/api/copy", "{\"source\":\"nope\",\"destination\":\"mine\"}", 404, "model \"nope\" not found");
    probe_expect_error("/api/copy", "{\"source\":\"\",\"destination\":\"mine\"}", 400, "source \"\" is invalid");
    probe_expect_error("/api/copy", "{\"source\":\"qwen3-test\",\"destination\":\"a b\"}", 400,
                       "destination \"a b\" is invalid");
    expect_method_error("DELETE", "/api/delete", "{\"name\":\"qwen3-test\"}", 400,
                        "deleting models is not supported: remove the manifest of \"qwen3-test\" from the models "
                        "directory, or uninstall its vendor package (docs/models.md)");
    expect_method_error("DELETE", "/api/delete", "{\"model\":\"nope\"}", 404, "model 'nope' not found");
    expect_method_error("DELETE", "/api/delete", "{}", 400, "name \"\" is invalid");
    probe_expect_error("/api/blobs/sha256:0123", "some bytes", 400,
                       "uploading blobs is not supported: axllama cannot create models, it runs the vendor's model "
                       "packages (docs/models.md)");
    probe_result r = probe_must(&(probe_request){.method = "HEAD", .path = "/api/blobs/sha256:0123"});
    assert_int_equal(r.status, 404);
    probe_result_free(&r);
    /* the other methods of these paths are gin's 405 */
    r = probe_get("/api/pull");
    assert_int_equal(r.status, 405);
    probe_result_free(&r);
    assert_int_equal(fake_count(&fake.submits), 0);
    assert_int_equal(fake_count(&fake.unloads), 0);
}

/* ================================================================== `axllama serve` end to end */

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

/* The log of `axllama serve` says it listened on host, and that it stopped. */
static void assert_serve_log_listened_and_stopped(const char *log_path, const char *host)
{
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
    int port = net_free_port();
    assert_true(port > 0);
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
    probe_result r = {0};
    double t0 = clock_mono();
    do {
        clock_sleep(0.05);
        probe_result_free(&r);
        r = probe_perform(&(probe_request){.method = "GET", .path = "/api/version", .base = base, .timeout_ms = 1000});
    } while (r.rc != CURLE_OK && clock_mono() - t0 < 10);
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "version"), OLLAMA_API_VERSION);
    probe_result_free(&r);
    r = probe_must(&(probe_request){.method = "GET", .path = "/api/tags", .base = base});
    assert_string_equal(probe_str(json_array_get(json_object_get(r.json, "models"), 0), "name"), "qwen3-emu:latest");
    probe_result_free(&r);
    r = probe_must(&(probe_request){.method = "POST",
                                    .path = "/api/generate",
                                    .base = base,
                                    .timeout_ms = 30000,
                                    .body = "{\"model\":\"qwen3-emu\",\"prompt\":\"Hello there\",\"stream\":false}"});
    assert_int_equal(r.status, 200);
    assert_string_equal(probe_str(r.json, "done_reason"), "stop");
    assert_non_null(strstr(probe_str(r.json, "response"), "Hello there"));
    probe_result_free(&r);
    r = probe_must(&(probe_request){.method = "GET", .path = "/api/ps", .base = base});
    assert_int_equal(json_array_size(json_object_get(r.json, "models")), 1);
    probe_result_free(&r);

    kill(pid, SIGTERM);
    int status = 0;
    t0 = clock_mono();
    pid_t done;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && clock_mono() - t0 < 15)
        clock_sleep(0.05);
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("axllama serve did not exit within 15 s of SIGTERM");
    }
    g_serve_pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_serve_log_listened_and_stopped(log_path, host);
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
        cmocka_unit_test_setup(test_load_and_unload, before_each),
        cmocka_unit_test_setup(test_keep_alive_values, before_each),
        cmocka_unit_test_setup(test_truncate_is_passed_to_the_engine, before_each),
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
        cmocka_unit_test_setup(test_embed_routes_answer_ollamas_errors_as_json, before_each),
        cmocka_unit_test_setup(test_pull_of_an_installed_model_succeeds_without_downloading, before_each),
        cmocka_unit_test_setup(test_management_routes_say_what_is_not_supported, before_each),
        cmocka_unit_test_setup_teardown(test_axllama_serve_end_to_end, before_each, kill_serve),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
