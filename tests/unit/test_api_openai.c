/* End-to-end tests of the OpenAI-compatible API (src/api/openai*.c) on `axllama serve` with
 * axllama-emu (fast profile): every /v1 endpoint, the SSE framing byte by byte (data: lines,
 * blank-line separators, [DONE]), usage equal to the counts the native API reports, include_usage,
 * finish_reason stop/length/tool_calls, max_tokens, stop, content parts, reasoning_effort,
 * tools and response_format, and OpenAI error objects before and during a stream. Also the
 * prefix route of http_server (/v1/models/{model}). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "openai_harness.h"
#include "serve_harness.h"
#include "server_fixture.h"

#define USER_TURN(text) "<|im_start|>user\n" text "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

/* ---- SSE */

typedef struct {
    json_t **events; /* parsed data: payloads, [DONE] excluded */
    size_t n;
    bool done; /* the last event was data: [DONE] */
} sse;

/* Parses a text/event-stream body strictly: every event is exactly "data: <payload>\n\n", nothing
 * else (no comments, no event: lines); [DONE] only as the very last event. */
static sse sse_parse(const char *body)
{
    sse r = {0};
    r.events = xcalloc(256, sizeof *r.events);
    const char *p = body;
    while (*p) {
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("an event does not start with \"data: \" at byte %zu: %s", (size_t)(p - body), body);
        const char *end = strstr(p, "\n\n");
        if (!end)
            fail_msg("an event is not ended by a blank line: %s", p);
        const char *payload = p + 6;
        size_t len = (size_t)(end - payload);
        assert_null(memchr(payload, '\n', len)); /* one data line per event */
        assert_false(r.done);                    /* nothing after [DONE] */
        if (len == 6 && !memcmp(payload, "[DONE]", 6)) {
            r.done = true;
        } else {
            json_t *v = json_loadb(payload, len, 0, NULL);
            if (!v)
                fail_msg("an event is not JSON: %.*s", (int)len, payload);
            assert_true(r.n < 256);
            r.events[r.n++] = v;
        }
        p = end + 2;
    }
    return r;
}

static void sse_free(sse *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->events[i]);
    free(s->events);
}

/* The concatenation of choices[0].delta.<key> (chat) or choices[0].text (completion). */
static char *sse_join(const sse *s, const char *key)
{
    strbuf sb = {0};
    sb_puts(&sb, "");
    for (size_t i = 0; i < s->n; i++) {
        json_t *c = get(s->events[i], "choices.0");
        const char *v = json_string_value(key ? get(c, key) : json_object_get(c, "text"));
        if (v)
            sb_puts(&sb, v);
    }
    return sb_steal(&sb);
}

static const char *chat_body(char *buf, size_t n, const char *content, const char *extra)
{
    snprintf(buf, n, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]%s%s}", content,
             extra ? "," : "", extra ? extra : "");
    return buf;
}

/* Unloads m (the next request then prefills the whole prompt: comparable counts). */
static void unload(h_server *s)
{
    answer a = call(s, "POST", "/api/generate", "{\"model\":\"m\",\"keep_alive\":0}");
    assert_int_equal(a.http.status, 200);
    answer_free(&a);
}

/* ================================================================== models */

static void test_models_list_and_retrieve_through_the_prefix_route(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    answer a = call(&s, "GET", "/v1/models", NULL);
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "object"), "list");
    assert_int_equal(json_array_size(get(a.json, "data")), 1);
    assert_string_equal(gs(a.json, "data.0.id"), "m:latest");
    assert_string_equal(gs(a.json, "data.0.object"), "model");
    assert_string_equal(gs(a.json, "data.0.owned_by"), "library");
    assert_true(gi(a.json, "data.0.created") > 1600000000);
    long long created = gi(a.json, "data.0.created");
    answer_free(&a);

    a = call(&s, "GET", "/v1/models/m", NULL); /* the id is the parameter as given */
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "id"), "m");
    assert_string_equal(gs(a.json, "object"), "model");
    assert_int_equal(gi(a.json, "created"), created);
    assert_string_equal(gs(a.json, "owned_by"), "library");
    answer_free(&a);

    a = call(&s, "GET", "/v1/models/m%3Alatest", NULL); /* percent-decoded */
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "id"), "m:latest");
    answer_free(&a);

    a = call(&s, "GET", "/v1/models/library/nope:7b", NULL);
    assert_error(&a, 404, "not_found_error", "model 'library/nope:7b' not found");
    answer_free(&a);

    a = call(&s, "GET", "/v1/models/", NULL); /* a prefix route needs at least one more byte */
    assert_int_equal(a.http.status, 404);
    assert_string_equal(a.http.body.data, "404 page not found");
    answer_free(&a);

    a = call(&s, "POST", "/v1/models/m", "{}");
    assert_int_equal(a.http.status, 405);
    assert_non_null(strstr(a.http.headers.data, "Allow: GET"));
    answer_free(&a);
    stop(&s);
}

/* ================================================================== chat */

static void test_chat_answer_shape_and_usage_equal_the_native_counts(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[512];
    answer native = call(&s, "POST", "/api/chat", chat_body(body, sizeof body, "Hello world", "\"stream\":false"));
    assert_int_equal(native.http.status, 200);
    long long prompt = gi(native.json, "prompt_eval_count"), eval = gi(native.json, "eval_count");
    assert_int_equal(prompt, h_n_ids(tok, H_QWEN_SYSTEM_BLOCK USER_TURN("Hello world")));
    assert_int_equal(eval, h_n_ids(tok, "Hello world")); /* thinking off: the model answers at once */
    unload(&s);

    answer a = call(&s, "POST", "/v1/chat/completions", chat_body(body, sizeof body, "Hello world", NULL));
    assert_int_equal(a.http.status, 200);
    assert_non_null(strstr(a.http.headers.data, "application/json"));
    assert_int_equal(strncmp(gs(a.json, "id"), "chatcmpl-", 9), 0);
    assert_string_equal(gs(a.json, "object"), "chat.completion");
    assert_true(gi(a.json, "created") > 1600000000);
    assert_string_equal(gs(a.json, "model"), "m");
    assert_string_equal(gs(a.json, "system_fingerprint"), "fp_ollama");
    assert_int_equal(json_array_size(get(a.json, "choices")), 1);
    assert_int_equal(gi(a.json, "choices.0.index"), 0);
    assert_string_equal(gs(a.json, "choices.0.message.role"), "assistant");
    assert_string_equal(gs(a.json, "choices.0.message.content"), "Hello world");
    assert_null(get(a.json, "choices.0.message.reasoning")); /* the empty think block adds none */
    assert_null(get(a.json, "choices.0.message.tool_calls"));
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "stop");
    assert_int_equal(gi(a.json, "usage.prompt_tokens"), prompt);
    assert_int_equal(gi(a.json, "usage.completion_tokens"), eval);
    assert_int_equal(gi(a.json, "usage.total_tokens"), prompt + eval);
    assert_int_equal(gi(a.json, "usage.prompt_tokens_details.cached_tokens"), 0); /* a reset: nothing cached */
    answer_free(&a);
    answer_free(&native);
    stop(&s);
}

static void test_chat_stream_is_exact_sse_with_role_first_finish_chunk_and_done(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[512];
    answer a = call(&s, "POST", "/v1/chat/completions",
                    chat_body(body, sizeof body, "stream these words please", "\"stream\":true"));
    assert_int_equal(a.http.status, 200);
    assert_non_null(strstr(a.http.headers.data, "Content-Type: text/event-stream"));
    const char *b = a.http.body.data;
    size_t len = strlen(b);
    assert_true(len > 20);
    assert_string_equal(b + len - strlen("data: [DONE]\n\n"), "data: [DONE]\n\n");
    sse ev = sse_parse(b);
    assert_true(ev.done);
    assert_true(ev.n >= 3); /* at least one piece, the finish chunk... */
    const char *id = gs(ev.events[0], "id");
    long long created = gi(ev.events[0], "created");
    for (size_t i = 0; i < ev.n; i++) {
        json_t *e = ev.events[i];
        assert_string_equal(gs(e, "id"), id);
        assert_int_equal(gi(e, "created"), created);
        assert_string_equal(gs(e, "object"), "chat.completion.chunk");
        assert_string_equal(gs(e, "model"), "m");
        assert_string_equal(gs(e, "system_fingerprint"), "fp_ollama");
        assert_null(json_object_get(e, "usage")); /* no include_usage: no usage at all */
        assert_int_equal(json_array_size(get(e, "choices")), 1);
        assert_int_equal(gi(e, "choices.0.index"), 0);
        json_t *role = get(e, "choices.0.delta.role");
        if (i == 0)
            assert_string_equal(json_string_value(role), "assistant");
        else
            assert_null(role);
        if (i + 1 < ev.n)
            assert_true(json_is_null(get(e, "choices.0.finish_reason")));
    }
    json_t *fin = ev.events[ev.n - 1];
    assert_string_equal(gs(fin, "choices.0.finish_reason"), "stop");
    assert_int_equal(json_object_size(get(fin, "choices.0.delta")), 0); /* delta {} */
    char *text = sse_join(&ev, "delta.content");
    assert_string_equal(text, "stream these words please");
    free(text);
    sse_free(&ev);
    answer_free(&a);
    stop(&s);
}

static void test_stream_include_usage_ends_with_a_usage_chunk_of_the_real_counts(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[512];
    answer a =
        call(&s, "POST", "/v1/chat/completions",
             chat_body(body, sizeof body, "count me", "\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
    assert_int_equal(a.http.status, 200);
    sse ev = sse_parse(a.http.body.data);
    assert_true(ev.done && ev.n >= 3);
    json_t *u = ev.events[ev.n - 1], *fin = ev.events[ev.n - 2];
    assert_int_equal(json_array_size(get(u, "choices")), 0);
    assert_true(json_is_array(get(u, "choices")));
    long long prompt = (long long)h_n_ids(tok, H_QWEN_SYSTEM_BLOCK USER_TURN("count me")),
              eval = (long long)h_n_ids(tok, "count me");
    assert_int_equal(gi(u, "usage.prompt_tokens"), prompt);
    assert_int_equal(gi(u, "usage.completion_tokens"), eval);
    assert_int_equal(gi(u, "usage.total_tokens"), prompt + eval);
    assert_string_equal(gs(fin, "choices.0.finish_reason"), "stop");
    for (size_t i = 0; i + 1 < ev.n; i++) /* usage null on every other chunk, as OpenAI */
        assert_true(json_is_null(json_object_get(ev.events[i], "usage")));
    sse_free(&ev);
    answer_free(&a);

    /* the same request through the native API reports the same counts */
    unload(&s);
    answer native = call(&s, "POST", "/api/chat", chat_body(body, sizeof body, "count me", "\"stream\":false"));
    assert_int_equal(gi(native.json, "prompt_eval_count"), prompt);
    assert_int_equal(gi(native.json, "eval_count"), eval);
    answer_free(&native);
    stop(&s);
}

static void test_max_tokens_ends_with_finish_reason_length(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[512];
    answer a = call(&s, "POST", "/v1/chat/completions",
                    chat_body(body, sizeof body, "one two three four five six seven", "\"max_tokens\":2"));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "length");
    assert_string_equal(gs(a.json, "choices.0.message.content"), "one two");
    assert_int_equal(gi(a.json, "usage.completion_tokens"), 2);
    answer_free(&a);
    /* max_completion_tokens is the newer name; it wins over max_tokens */
    a = call(&s, "POST", "/v1/chat/completions",
             chat_body(body, sizeof body, "one two three four five six seven",
                       "\"max_tokens\":100,\"max_completion_tokens\":3,\"stream\":true"));
    assert_int_equal(a.http.status, 200);
    sse ev = sse_parse(a.http.body.data);
    assert_true(ev.done && ev.n >= 2);
    assert_string_equal(gs(ev.events[ev.n - 1], "choices.0.finish_reason"), "length");
    char *text = sse_join(&ev, "delta.content");
    assert_string_equal(text, "one two three");
    free(text);
    sse_free(&ev);
    answer_free(&a);
    stop(&s);
}

static void test_stop_as_string_and_as_array(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[512];
    answer a = call(&s, "POST", "/v1/chat/completions",
                    chat_body(body, sizeof body, "alpha beta gamma delta", "\"stop\":\"gamma\""));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "choices.0.message.content"), "alpha beta ");
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "stop");
    answer_free(&a);
    a = call(&s, "POST", "/v1/chat/completions",
             chat_body(body, sizeof body, "alpha beta gamma delta", "\"stop\":[\"zzz\",\"beta\"]"));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "choices.0.message.content"), "alpha ");
    answer_free(&a);
    stop(&s);
}

static void test_content_parts_history_roles_and_reasoning_effort(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    answer a = call(&s, "POST", "/v1/chat/completions",
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                    "{\"role\":\"user\",\"content\":\"earlier\"},"
                    "{\"role\":\"assistant\",\"content\":\"earlier\",\"reasoning\":\"thought\"},"
                    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},{\"type\":\"text\","
                    "\"text\":\"parts\"}]}],"
                    "\"reasoning_effort\":\"none\",\"temperature\":0.2,\"seed\":7,\"frequency_penalty\":0,"
                    "\"presence_penalty\":0.5,\"user\":\"u\",\"tool_choice\":\"auto\"}");
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_string_equal(gs(a.json, "choices.0.message.content"), "Hello\nparts"); /* text parts joined */
    answer_free(&a);
    a = call(
        &s, "POST", "/v1/chat/completions",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning\":{\"effort\":\"high\"}}");
    assert_int_equal(a.http.status, 200);
    answer_free(&a);
    stop(&s);
}

/* ================================================================== completions */

static void test_completions_answer_and_stream_with_usage(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    answer native = call(&s, "POST", "/api/generate", "{\"model\":\"m\",\"prompt\":\"Say this\",\"stream\":false}");
    assert_int_equal(native.http.status, 200);
    unload(&s);
    answer a = call(&s, "POST", "/v1/completions", "{\"model\":\"m\",\"prompt\":\"Say this\"}");
    assert_int_equal(a.http.status, 200);
    assert_int_equal(strncmp(gs(a.json, "id"), "cmpl-", 5), 0);
    assert_string_equal(gs(a.json, "object"), "text_completion");
    assert_string_equal(gs(a.json, "model"), "m");
    assert_string_equal(gs(a.json, "choices.0.text"), "Say this");
    assert_int_equal(gi(a.json, "choices.0.index"), 0);
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "stop");
    assert_int_equal(gi(a.json, "usage.prompt_tokens"), gi(native.json, "prompt_eval_count"));
    assert_int_equal(gi(a.json, "usage.completion_tokens"), gi(native.json, "eval_count"));
    assert_int_equal(gi(a.json, "usage.total_tokens"),
                     gi(native.json, "prompt_eval_count") + gi(native.json, "eval_count"));
    answer_free(&a);

    a = call(&s, "POST", "/v1/completions",
             "{\"model\":\"m\",\"prompt\":\"one two three four five\",\"max_tokens\":2,\"stream\":true,"
             "\"stream_options\":{\"include_usage\":true}}");
    assert_int_equal(a.http.status, 200);
    assert_non_null(strstr(a.http.headers.data, "text/event-stream"));
    sse ev = sse_parse(a.http.body.data);
    assert_true(ev.done && ev.n >= 3);
    for (size_t i = 0; i < ev.n; i++)
        assert_string_equal(gs(ev.events[i], "object"), "text_completion");
    json_t *u = ev.events[ev.n - 1], *fin = ev.events[ev.n - 2];
    assert_int_equal(json_array_size(get(u, "choices")), 0);
    assert_int_equal(gi(u, "usage.completion_tokens"), 2);
    assert_string_equal(gs(fin, "choices.0.finish_reason"), "length");
    char *text = sse_join(&ev, NULL);
    assert_string_equal(text, "one two");
    free(text);
    sse_free(&ev);
    answer_free(&a);

    a = call(&s, "POST", "/v1/completions", "{\"model\":\"m\",\"prompt\":[\"as array\"],\"stop\":[\"array\"]}");
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "choices.0.text"), "as ");
    answer_free(&a);
    answer_free(&native);
    stop(&s);
}

/* ================================================================== errors */

static void test_request_errors_are_openai_error_objects(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    static const struct {
        const char *path, *body;
        long status;
        const char *type, *message;
    } cases[] = {
        {"/v1/chat/completions", "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404,
         "not_found_error", "model 'nope' not found"},
        {"/v1/chat/completions",
         "{\"model\":\"nope\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404,
         "not_found_error", "model 'nope' not found"},
        {"/v1/completions", "{\"model\":\"nope\",\"prompt\":\"x\"}", 404, "not_found_error", "model 'nope' not found"},
        {"/v1/chat/completions", "", 400, "invalid_request_error", "missing request body"},
        {"/v1/chat/completions", "{\"model\":", 400, "invalid_request_error", "invalid JSON"},
        {"/v1/chat/completions", "[1]", 400, "invalid_request_error", "the request body must be a JSON object"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "invalid_request_error",
         "model is required"},
        {"/v1/chat/completions", "{\"model\":\"m\"}", 400, "invalid_request_error", "messages is required"},
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[]}", 400, "invalid_request_error",
         "[] is too short - 'messages'"},
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400,
         "invalid_request_error", "invalid role 'wizard'"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
         "\"url\":"
         "\"data:image/png;base64,AAAA\"}}]}]}",
         400, "invalid_request_error", "image input is not supported"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}", 400,
         "invalid_request_error", "unsupported content part type 'input_audio'"},
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}",
         400, "invalid_request_error", "invalid type for 'stop' field: number"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":\"9\"}", 400,
         "invalid_request_error", "invalid type for 'max_tokens'"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", 400,
         "invalid_request_error", "max_tokens must be at least 1"},
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", 400,
         "invalid_request_error", "n must be 1"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"huge\"}", 400,
         "invalid_request_error", "invalid reasoning value: 'huge'"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", 400,
         "invalid_request_error", "temperature must be between 0 and 2"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", 400,
         "invalid_request_error", "logprobs are not supported"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"xml\"}"
         "}",
         400, "invalid_request_error", "invalid response_format type"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"type\":"
         "\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]},{\"role\":\"user\",\"content\":\"x\"}]}",
         400, "invalid_request_error", "invalid tool call arguments"},
        {"/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
         400, "invalid_request_error", "invalid tool in 'tools[0]'"},
        {"/v1/completions", "{\"model\":\"m\"}", 400, "invalid_request_error", "prompt is required"},
        {"/v1/completions", "{\"model\":\"m\",\"prompt\":[1,2,3]}", 400, "invalid_request_error",
         "prompt must be a string"},
        {"/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":\"y\"}", 400, "invalid_request_error",
         "suffix is not supported"},
        {"/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}", 400, "invalid_request_error",
         "echo is not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer a = call(&s, "POST", cases[i].path, cases[i].body);
        if (a.http.status != cases[i].status)
            fprintf(stderr, "case %zu (%s): %ld %s\n", i, cases[i].body, a.http.status, a.http.body.data);
        assert_error(&a, cases[i].status, cases[i].type, cases[i].message);
        answer_free(&a);
    }
    /* the field at fault is named in param */
    answer a = call(&s, "POST", "/v1/chat/completions",
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":7}");
    assert_string_equal(gs(a.json, "error.param"), "stop");
    answer_free(&a);
    stop(&s);
}

/* A streamed POST /v1/chat/completions on its own thread; first_event is set once the first
 * whole SSE event arrived (the stream is running). */
typedef struct {
    h_server *s;
    const char *body;
    atomic_bool first_event;
    answer a;
} request_thread;

static size_t collect_events(char *data, size_t size, size_t n, void *user)
{
    request_thread *t = user;
    sb_append(&t->a.http.body, data, size * n);
    if (!atomic_load(&t->first_event) && strstr(t->a.http.body.data, "\n\n"))
        atomic_store(&t->first_event, true);
    return size * n;
}

static void *run_request(void *arg)
{
    request_thread *t = arg;
    CURL *c = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", t->s->port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_events);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t->a.http.headers);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t->a.http.status);
    curl_easy_cleanup(c);
    sb_puts(&t->a.http.body, "");
    sb_puts(&t->a.http.headers, "");
    return NULL;
}

static void test_an_error_mid_stream_is_one_sse_error_event_without_done(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "3000", NULL};
    start(&s, args);
    unload(&s);
    answer load = call(&s, "POST", "/api/generate", "{\"model\":\"m\"}");
    answer_free(&load);
    pid_t rt = h_runtime_pid(&s);
    assert_true(rt > 0);
    request_thread t = {
        .s = &s,
        .body = "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"doomed reply\"}]}"};
    pthread_t th;
    pthread_create(&th, NULL, run_request, &t);
    /* the stream is running (its first event arrived): the runtime dies mid-reply */
    for (double end = h_now() + 30; !atomic_load(&t.first_event) && h_now() < end;)
        h_sleep(0.002);
    kill(rt, SIGKILL);
    pthread_join(th, NULL);
    assert_true(atomic_load(&t.first_event));
    assert_int_equal(t.a.http.status, 200);
    sse ev = sse_parse(t.a.http.body.data);
    assert_false(ev.done);
    assert_true(ev.n >= 2);
    json_t *e = json_object_get(ev.events[ev.n - 1], "error");
    assert_true(json_is_object(e));
    assert_true(strlen(gs(e, "message")) > 0);
    assert_string_equal(gs(e, "type"), "api_error");
    assert_true(json_is_null(json_object_get(e, "code")));
    sse_free(&ev);
    answer_free(&t.a);
    stop(&s);
}

static size_t abort_after_first_event(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    int *events = user;
    (*events)++;
    return *events >= 2 ? 0 : size * n; /* returning less than given makes curl abort */
}

static void test_a_client_leaving_an_sse_stream_cancels_its_job(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "10000", NULL}; /* ~20 s if not stopped */
    start(&s, args);
    CURL *c = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", s.port);
    int events = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(
        c, CURLOPT_POSTFIELDS,
        "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"long long reply\"}]}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after_first_event);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &events);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    assert_true(events >= 2);
    double t0 = h_now();
    answer a = call(&s, "POST", "/v1/chat/completions",
                    "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"next\"}]}");
    double took = h_now() - t0;
    assert_int_equal(a.http.status, 200);
    assert_true(took < 10.0); /* the abandoned 20-second reply was stopped (not waited for) */
    assert_string_equal(gs(a.json, "choices.0.message.content"), "next");
    answer_free(&a);
    stop(&s);
}

/* ================================================================== tools and response_format */

#define WEATHER_TOOL                                                                                       \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a city\"," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}"
#define CALL_TEXT                                                                          \
    "<tool_call>\\n{\\\"name\\\": \\\"get_weather\\\", \\\"arguments\\\": {\\\"city\\\": " \
    "\\\"Paris\\\"}}\\n</tool_call>"

static void test_tool_calls_non_stream_and_stream(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    answer a = call(&s, "POST", "/v1/chat/completions",
                    "{\"model\":\"m\",\"tools\":[" WEATHER_TOOL
                    "],\"messages\":[{\"role\":\"user\",\"content\":\"" CALL_TEXT "\"}]}");
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "tool_calls");
    assert_true(json_is_null(get(a.json, "choices.0.message.content")));
    assert_int_equal(json_array_size(get(a.json, "choices.0.message.tool_calls")), 1);
    json_t *tc = get(a.json, "choices.0.message.tool_calls.0");
    assert_int_equal(strncmp(gs(tc, "id"), "call_", 5), 0);
    assert_true(strlen(gs(tc, "id")) > 10);
    assert_string_equal(gs(tc, "type"), "function");
    assert_string_equal(gs(tc, "function.name"), "get_weather");
    json_t *args = json_loads(gs(tc, "function.arguments"), 0, NULL); /* a JSON string */
    assert_non_null(args);
    assert_string_equal(gs(args, "city"), "Paris");
    json_decref(args);
    answer_free(&a);

    a = call(&s, "POST", "/v1/chat/completions",
             "{\"model\":\"m\",\"stream\":true,\"tools\":[" WEATHER_TOOL
             "],\"messages\":[{\"role\":\"user\",\"content\":\"" CALL_TEXT "\"}]}");
    assert_int_equal(a.http.status, 200);
    sse ev = sse_parse(a.http.body.data);
    assert_true(ev.done && ev.n >= 2);
    size_t calls = 0;
    for (size_t i = 0; i < ev.n; i++) {
        json_t *d = get(ev.events[i], "choices.0.delta.tool_calls");
        if (!d)
            continue;
        calls++;
        assert_int_equal(gi(d, "0.index"), 0);
        assert_int_equal(strncmp(gs(d, "0.id"), "call_", 5), 0);
        assert_string_equal(gs(d, "0.type"), "function");
        assert_string_equal(gs(d, "0.function.name"), "get_weather");
        assert_string_equal(gs(d, "0.function.arguments"), "{\"city\":\"Paris\"}");
    }
    assert_int_equal(calls, 1);
    assert_string_equal(gs(ev.events[ev.n - 1], "choices.0.finish_reason"), "tool_calls");
    sse_free(&ev);
    answer_free(&a);

    /* the result goes back as a tool message after the assistant's call */
    a = call(&s, "POST", "/v1/chat/completions",
             "{\"model\":\"m\",\"tools\":[" WEATHER_TOOL "],\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
             "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
             "{\"role\":\"user\",\"content\":\"thanks\"}]}");
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_string_equal(gs(a.json, "choices.0.message.content"), "thanks");
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "stop");
    answer_free(&a);

    /* without tools, the same text is plain content */
    char body[512];
    a = call(&s, "POST", "/v1/chat/completions", chat_body(body, sizeof body, CALL_TEXT, NULL));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "stop");
    assert_non_null(strstr(gs(a.json, "choices.0.message.content"), "<tool_call>"));
    answer_free(&a);
    stop(&s);
}

#define CALL_TEXT_ROME                                                                     \
    "<tool_call>\\n{\\\"name\\\": \\\"get_weather\\\", \\\"arguments\\\": {\\\"city\\\": " \
    "\\\"Rome\\\"}}\\n</tool_call>"

/* Qwen3's parallel calls are separated by "\n": a reply of calls only has content null, and its
 * stream has the two call chunks and no content chunk (not even an empty one) around them. */
static void test_parallel_tool_calls_leave_no_whitespace_content(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    const char *body = "{\"model\":\"m\",%s\"tools\":[" WEATHER_TOOL
                       "],\"messages\":[{\"role\":\"user\",\"content\":\"" CALL_TEXT "\\n" CALL_TEXT_ROME "\\n\"}]}";
    char buf[2048];
    snprintf(buf, sizeof buf, body, "");
    answer a = call(&s, "POST", "/v1/chat/completions", buf);
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_true(json_is_null(get(a.json, "choices.0.message.content")));
    assert_int_equal(json_array_size(get(a.json, "choices.0.message.tool_calls")), 2);
    assert_string_equal(gs(a.json, "choices.0.message.tool_calls.1.function.arguments"), "{\"city\":\"Rome\"}");
    assert_int_equal(gi(a.json, "choices.0.message.tool_calls.1.index"), 1);
    assert_string_equal(gs(a.json, "choices.0.finish_reason"), "tool_calls");
    answer_free(&a);

    snprintf(buf, sizeof buf, body, "\"stream\":true,");
    a = call(&s, "POST", "/v1/chat/completions", buf);
    assert_int_equal(a.http.status, 200);
    sse ev = sse_parse(a.http.body.data);
    assert_true(ev.done);
    size_t calls = 0, contents = 0;
    for (size_t i = 0; i < ev.n; i++) {
        calls += get(ev.events[i], "choices.0.delta.tool_calls") != NULL;
        contents += get(ev.events[i], "choices.0.delta.content") != NULL;
    }
    assert_int_equal(calls, 2);
    assert_int_equal(contents, 0);
    /* the role rides on the first call's delta; then the second call, the finish chunk, [DONE] */
    assert_int_equal(ev.n, 3);
    assert_string_equal(gs(ev.events[0], "choices.0.delta.role"), "assistant");
    assert_string_equal(gs(ev.events[1], "choices.0.delta.tool_calls.0.function.arguments"), "{\"city\":\"Rome\"}");
    assert_string_equal(gs(ev.events[2], "choices.0.finish_reason"), "tool_calls");
    sse_free(&ev);
    answer_free(&a);
    stop(&s);
}

static void test_response_format_validates_the_reply(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[1024];
    answer a = call(&s, "POST", "/v1/chat/completions",
                    chat_body(body, sizeof body, "{\\\"a\\\": 1}", "\"response_format\":{\"type\":\"json_object\"}"));
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    json_t *v = json_loads(gs(a.json, "choices.0.message.content"), 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    json_decref(v);
    answer_free(&a);

    a = call(&s, "POST", "/v1/chat/completions",
             chat_body(body, sizeof body, "not json at all", "\"response_format\":{\"type\":\"json_object\"}"));
    assert_error(&a, 400, "invalid_request_error", "the model's reply is not valid JSON");
    assert_non_null(strstr(a.http.headers.data, "x-should-retry: false"));
    answer_free(&a);

    const char *schema =
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":"
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}}}";
    a = call(&s, "POST", "/v1/chat/completions", chat_body(body, sizeof body, "{\\\"name\\\": \\\"Ada\\\"}", schema));
    assert_int_equal(a.http.status, 200);
    answer_free(&a);
    a = call(&s, "POST", "/v1/chat/completions", chat_body(body, sizeof body, "{\\\"age\\\": 3}", schema));
    assert_error(&a, 400, "invalid_request_error", "the model's reply does not match the format schema");
    assert_string_equal(gs(a.json, "error.param"), "response_format");
    answer_free(&a);

    /* streamed: the content is held until it was validated, then sent; a bad reply is an error event */
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"{\\\"name\\\": "
             "\\\"Ada\\\"}\"}],%s}",
             schema);
    a = call(&s, "POST", "/v1/chat/completions", body);
    sse ev = sse_parse(a.http.body.data);
    assert_true(ev.done);
    char *text = sse_join(&ev, "delta.content");
    assert_string_equal(text, "{\"name\": \"Ada\"}");
    free(text);
    sse_free(&ev);
    answer_free(&a);
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"plain words\"}],%s}",
             schema);
    a = call(&s, "POST", "/v1/chat/completions", body);
    ev = sse_parse(a.http.body.data);
    assert_false(ev.done);
    assert_true(ev.n >= 1);
    assert_string_equal(gs(ev.events[ev.n - 1], "error.param"), "response_format");
    text = sse_join(&ev, "delta.content");
    assert_string_equal(text, ""); /* nothing of the bad reply was sent */
    free(text);
    sse_free(&ev);
    answer_free(&a);
    stop(&s);
}

/* No model here can embed: OpenAI error objects with Ollama's statuses, never gin's text 404. */
static void test_embeddings_answer_the_capability_error(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    answer a = call(&s, "POST", "/v1/embeddings", "{\"model\":\"m\",\"input\":\"hello\"}");
    assert_error(&a, 400, "invalid_request_error", "\"m\" does not support embeddings");
    assert_string_equal(gs(a.json, "error.param"), "model");
    assert_non_null(strstr(a.http.headers.data, "x-should-retry: false"));
    answer_free(&a);
    a = call(&s, "POST", "/v1/embeddings", "{\"model\":\"nope\",\"input\":[\"a\"]}");
    assert_error(&a, 404, "not_found_error", "model 'nope' not found");
    answer_free(&a);
    a = call(&s, "POST", "/v1/embeddings", "{\"model\":\"m\"}");
    assert_error(&a, 400, "invalid_request_error", "invalid input");
    assert_string_equal(gs(a.json, "error.param"), "input");
    answer_free(&a);
    a = call(&s, "POST", "/v1/embeddings", "{\"model\":\"m\",\"input\":\"x\",\"encoding_format\":\"hex\"}");
    assert_error(&a, 400, "invalid_request_error",
                 "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64'].");
    answer_free(&a);
    a = call(&s, "POST", "/v1/embeddings", "{\"input\":\"x\"}");
    assert_error(&a, 400, "invalid_request_error", "model is required");
    answer_free(&a);
    stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_models_list_and_retrieve_through_the_prefix_route, stop_current),
        cmocka_unit_test_teardown(test_chat_answer_shape_and_usage_equal_the_native_counts, stop_current),
        cmocka_unit_test_teardown(test_chat_stream_is_exact_sse_with_role_first_finish_chunk_and_done, stop_current),
        cmocka_unit_test_teardown(test_stream_include_usage_ends_with_a_usage_chunk_of_the_real_counts, stop_current),
        cmocka_unit_test_teardown(test_max_tokens_ends_with_finish_reason_length, stop_current),
        cmocka_unit_test_teardown(test_stop_as_string_and_as_array, stop_current),
        cmocka_unit_test_teardown(test_content_parts_history_roles_and_reasoning_effort, stop_current),
        cmocka_unit_test_teardown(test_completions_answer_and_stream_with_usage, stop_current),
        cmocka_unit_test_teardown(test_request_errors_are_openai_error_objects, stop_current),
        cmocka_unit_test_teardown(test_an_error_mid_stream_is_one_sse_error_event_without_done, stop_current),
        cmocka_unit_test_teardown(test_a_client_leaving_an_sse_stream_cancels_its_job, stop_current),
        cmocka_unit_test_teardown(test_tool_calls_non_stream_and_stream, stop_current),
        cmocka_unit_test_teardown(test_response_format_validates_the_reply, stop_current),
        cmocka_unit_test_teardown(test_parallel_tool_calls_leave_no_whitespace_content, stop_current),
        cmocka_unit_test_teardown(test_embeddings_answer_the_capability_error, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
