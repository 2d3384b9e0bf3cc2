/* End-to-end tests of POST /v1/responses (src/api/openai_responses*.c) on `axllama serve` with
 * axllama-emu (fast profile, which echoes the last user message): the response object and its
 * usage (instructions counted as the system prompt), the SSE event stream byte by byte (event:
 * lines, sequence numbers, the order of the item events), input items (messages, function_call,
 * function_call_output, reasoning) and function tools, max_output_tokens (incomplete), text.format
 * validated like response_format, reasoning items, truncation "disabled", and the request errors
 * (stateless refusals, unsupported items and tools). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "serve_harness.h"

#include "server_fixture.h"

#include "openai_harness.h"

/* ---- SSE with event: lines */

typedef struct {
    json_t **events; /* the data of each event */
    size_t n;
} resp_sse;

/* Parses a Responses stream strictly: every event is exactly "event: <type>\ndata: <json>\n\n",
 * the data's "type" is <type> and sequence_number counts from 0. */
static resp_sse resp_sse_parse(const char *body)
{
    resp_sse r = {.events = xcalloc(512, sizeof(json_t *))};
    const char *p = body;
    while (*p) {
        if (strncmp(p, "event: ", 7) != 0)
            fail_msg("an event does not start with \"event: \" at byte %zu: %s", (size_t)(p - body), p);
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char type[96];
        snprintf(type, sizeof type, "%.*s", (int)(nl - p - 7), p + 7);
        p = nl + 1;
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("no data line after event: %s", type);
        const char *end = strstr(p, "\n\n");
        if (!end)
            fail_msg("an event is not ended by a blank line: %s", p);
        json_t *v = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
        if (!v)
            fail_msg("an event is not JSON: %.*s", (int)(end - p), p);
        assert_string_equal(gs(v, "type"), type);
        assert_int_equal(gi(v, "sequence_number"), (long long)r.n);
        assert_true(r.n < 512);
        r.events[r.n++] = v;
        p = end + 2;
    }
    return r;
}

static void resp_sse_free(resp_sse *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->events[i]);
    free(s->events);
}

/* The event types, space-separated, without the "response." prefix. */
static char *resp_sse_types(const resp_sse *s)
{
    strbuf sb = {0};
    sb_puts(&sb, "");
    for (size_t i = 0; i < s->n; i++) {
        const char *t = gs(s->events[i], "type");
        if (!strncmp(t, "response.", 9))
            t += 9;
        sb_printf(&sb, "%s%s", i ? " " : "", t);
    }
    return sb_steal(&sb);
}

/* The concatenated "delta" of the events of this type. */
static char *resp_sse_deltas(const resp_sse *s, const char *type)
{
    strbuf sb = {0};
    sb_puts(&sb, "");
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(gs(s->events[i], "type"), type))
            sb_puts(&sb, gs(s->events[i], "delta"));
    return sb_steal(&sb);
}

static const char *resp_body(char *buf, size_t n, const char *input_json, const char *extra)
{
    snprintf(buf, n, "{\"model\":\"m\",\"input\":%s%s%s}", input_json, extra ? "," : "", extra ? extra : "");
    return buf;
}

#define WEATHER_TOOL                                                                                         \
    "{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"strict\":true," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}"
#define CALL_TEXT(city)                                                                             \
    "<tool_call>\\n{\\\"name\\\": \\\"get_weather\\\", \\\"arguments\\\": {\\\"city\\\": \\\"" city \
    "\\\"}}\\n</tool_call>"

/* ================================================================== answers */

static void test_response_object_usage_and_instructions(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[1024];
    answer a = call(
        &s, "POST", "/v1/responses",
        resp_body(body, sizeof body, "\"Hello world\"", "\"instructions\":\"Be brief.\",\"metadata\":{\"k\":\"v\"}"));
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_int_equal(strncmp(gs(a.json, "id"), "resp_", 5), 0);
    assert_string_equal(gs(a.json, "object"), "response");
    assert_string_equal(gs(a.json, "status"), "completed");
    assert_string_equal(gs(a.json, "model"), "m");
    assert_string_equal(gs(a.json, "instructions"), "Be brief.");
    assert_string_equal(gs(a.json, "metadata.k"), "v");
    assert_true(json_is_false(get(a.json, "store")));
    assert_true(json_is_null(get(a.json, "previous_response_id")));
    assert_true(json_is_null(get(a.json, "error")));
    assert_string_equal(gs(a.json, "truncation"), "auto");
    assert_string_equal(gs(a.json, "text.format.type"), "text");
    assert_true(gi(a.json, "created_at") > 1700000000);
    assert_int_equal(json_array_size(get(a.json, "output")), 1);
    assert_int_equal(strncmp(gs(a.json, "output.0.id"), "msg_", 4), 0);
    assert_string_equal(gs(a.json, "output.0.type"), "message");
    assert_string_equal(gs(a.json, "output.0.role"), "assistant");
    assert_string_equal(gs(a.json, "output.0.status"), "completed");
    assert_string_equal(gs(a.json, "output.0.content.0.type"), "output_text");
    assert_string_equal(gs(a.json, "output.0.content.0.text"), "Hello world");
    assert_int_equal(json_array_size(get(a.json, "output.0.content.0.annotations")), 0);
    long long in = gi(a.json, "usage.input_tokens"), out = gi(a.json, "usage.output_tokens");
    assert_int_equal(gi(a.json, "usage.total_tokens"), in + out);
    assert_int_equal(gi(a.json, "usage.output_tokens_details.reasoning_tokens"), 0);
    answer_free(&a);

    /* instructions are the system prompt: the same conversation through chat counts the same */
    a = call(&s, "POST", "/api/generate", "{\"model\":\"m\",\"keep_alive\":0}");
    answer_free(&a);
    a = call(&s, "POST", "/v1/chat/completions",
             "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
             "{\"role\":\"user\",\"content\":\"Hello world\"}]}");
    assert_int_equal(a.http.status, 200);
    assert_int_equal(gi(a.json, "usage.prompt_tokens"), in);
    assert_int_equal(gi(a.json, "usage.completion_tokens"), out);
    answer_free(&a);

    /* the same request again continues from the KV cache: cached_tokens says how much */
    a = call(
        &s, "POST", "/v1/responses",
        "{\"model\":\"m\",\"instructions\":\"Be brief.\",\"input\":[{\"role\":\"user\",\"content\":\"Hello world\"},"
        "{\"role\":\"assistant\",\"content\":\"Hello world\"},{\"role\":\"user\",\"content\":\"More\"}]}");
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "output.0.content.0.text"), "More");
    assert_true(gi(a.json, "usage.input_tokens_details.cached_tokens") > 0);
    assert_true(gi(a.json, "usage.input_tokens_details.cached_tokens") < gi(a.json, "usage.input_tokens"));
    answer_free(&a);
    stop(&s);
}

static void test_response_stream_events_in_order(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[1024];
    answer a = call(&s, "POST", "/v1/responses",
                    resp_body(body, sizeof body, "\"stream these words please\"", "\"stream\":true"));
    assert_int_equal(a.http.status, 200);
    assert_non_null(strstr(a.http.headers.data, "text/event-stream"));
    resp_sse ev = resp_sse_parse(a.http.body.data);
    char *types = resp_sse_types(&ev);
    const char *head = "created in_progress output_item.added content_part.added output_text.delta";
    const char *tail = "output_text.done content_part.done output_item.done completed";
    if (strncmp(types, head, strlen(head)) != 0 || strcmp(types + strlen(types) - strlen(tail), tail) != 0)
        fail_msg("events: %s", types);
    free(types);
    char *text = resp_sse_deltas(&ev, "response.output_text.delta");
    assert_string_equal(text, "stream these words please");
    free(text);
    json_t *created = ev.events[0], *done = ev.events[ev.n - 1];
    assert_string_equal(gs(created, "response.status"), "in_progress");
    assert_int_equal(json_array_size(get(created, "response.output")), 0);
    assert_true(json_is_null(get(created, "response.usage")));
    assert_string_equal(gs(done, "response.id"), gs(created, "response.id"));
    assert_string_equal(gs(done, "response.status"), "completed");
    assert_string_equal(gs(done, "response.output.0.content.0.text"), "stream these words please");
    assert_true(gi(done, "response.usage.output_tokens") > 0);
    /* every item event names the message's id and index 0 */
    const char *item = gs(ev.events[2], "item.id");
    assert_string_equal(gs(ev.events[2], "item.status"), "in_progress");
    for (size_t i = 3; i + 1 < ev.n; i++) {
        json_t *id = get(ev.events[i], "item_id");
        assert_string_equal(id ? json_string_value(id) : gs(ev.events[i], "item.id"), item);
        assert_int_equal(gi(ev.events[i], "output_index"), 0);
    }
    assert_string_equal(gs(ev.events[ev.n - 2], "item.status"), "completed");
    resp_sse_free(&ev);
    answer_free(&a);
    stop(&s);
}

/* ================================================================== input items and tools */

static void test_function_tools_calls_and_outputs(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[2048];
    answer a = call(&s, "POST", "/v1/responses",
                    resp_body(body, sizeof body, "\"" CALL_TEXT("Paris") "\\n" CALL_TEXT("Rome") "\"",
                              "\"tools\":[" WEATHER_TOOL "]"));
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    /* two calls, no message: the whitespace between them is not content */
    assert_int_equal(json_array_size(get(a.json, "output")), 2);
    assert_string_equal(gs(a.json, "output.0.type"), "function_call");
    assert_string_equal(gs(a.json, "output.0.status"), "completed");
    assert_string_equal(gs(a.json, "output.0.name"), "get_weather");
    assert_string_equal(gs(a.json, "output.0.arguments"), "{\"city\":\"Paris\"}");
    assert_string_equal(gs(a.json, "output.1.arguments"), "{\"city\":\"Rome\"}");
    assert_int_equal(strncmp(gs(a.json, "output.0.call_id"), "call_", 5), 0);
    assert_int_equal(strncmp(gs(a.json, "output.0.id"), "fc_", 3), 0);
    assert_string_equal(gs(a.json, "tools.0.name"), "get_weather"); /* echoed as sent */
    answer_free(&a);

    a = call(
        &s, "POST", "/v1/responses",
        resp_body(body, sizeof body, "\"" CALL_TEXT("Paris") "\"", "\"stream\":true,\"tools\":[" WEATHER_TOOL "]"));
    resp_sse ev = resp_sse_parse(a.http.body.data);
    char *types = resp_sse_types(&ev);
    assert_string_equal(types, "created in_progress output_item.added function_call_arguments.delta "
                               "function_call_arguments.done output_item.done completed");
    free(types);
    assert_string_equal(gs(ev.events[2], "item.type"), "function_call");
    assert_string_equal(gs(ev.events[2], "item.arguments"), "");
    assert_string_equal(gs(ev.events[3], "delta"), "{\"city\":\"Paris\"}");
    assert_string_equal(gs(ev.events[4], "arguments"), "{\"city\":\"Paris\"}");
    assert_string_equal(gs(ev.events[5], "item.arguments"), "{\"city\":\"Paris\"}");
    assert_string_equal(gs(ev.events[6], "response.output.0.call_id"), gs(ev.events[2], "item.call_id"));
    resp_sse_free(&ev);
    answer_free(&a);

    /* the loop: the call (with a reasoning item before it) and its output go back as input */
    a = call(
        &s, "POST", "/v1/responses",
        "{\"model\":\"m\",\"tools\":[" WEATHER_TOOL "],\"input\":["
        "{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"Look it up.\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_2\",\"name\":\"get_weather\",\"arguments\":\"\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"sunny\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":[{\"type\":\"input_text\","
        "\"text\":\"rain\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"thanks\"}]}]}");
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_string_equal(gs(a.json, "output.0.content.0.text"), "thanks");
    answer_free(&a);

    /* the call's arguments must be JSON text */
    a = call(&s, "POST", "/v1/responses",
             "{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
             "\"arguments\":\"{oops\"}]}");
    assert_error(&a, 400, "invalid_request_error", "invalid function_call arguments in 'input[0]': not valid JSON");
    answer_free(&a);
    stop(&s);
}

static void test_max_output_tokens_make_an_incomplete_response(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[1024];
    answer a = call(&s, "POST", "/v1/responses",
                    resp_body(body, sizeof body, "\"one two three four five six seven\"", "\"max_output_tokens\":3"));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "status"), "incomplete");
    assert_string_equal(gs(a.json, "incomplete_details.reason"), "max_output_tokens");
    assert_string_equal(gs(a.json, "output.0.status"), "incomplete");
    assert_int_equal(gi(a.json, "usage.output_tokens"), 3);
    assert_int_equal(gi(a.json, "max_output_tokens"), 3);
    answer_free(&a);
    a = call(&s, "POST", "/v1/responses",
             resp_body(body, sizeof body, "\"one two three four five six seven\"",
                       "\"max_output_tokens\":3,\"stream\":true"));
    resp_sse ev = resp_sse_parse(a.http.body.data);
    assert_string_equal(gs(ev.events[ev.n - 1], "type"), "response.incomplete");
    assert_string_equal(gs(ev.events[ev.n - 1], "response.incomplete_details.reason"), "max_output_tokens");
    assert_string_equal(gs(ev.events[ev.n - 2], "item.status"), "incomplete");
    resp_sse_free(&ev);
    answer_free(&a);
    stop(&s);
}

/* ================================================================== text.format */

static void test_text_format_is_validated_like_response_format(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    char body[4096];
    const char *schema =
        "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"p\",\"strict\":true,\"schema\":{"
        "\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}}}";
    answer a =
        call(&s, "POST", "/v1/responses", resp_body(body, sizeof body, "\"{\\\"name\\\": \\\"Ada\\\"}\"", schema));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "output.0.content.0.text"), "{\"name\": \"Ada\"}");
    assert_string_equal(gs(a.json, "text.format.name"), "p"); /* echoed */
    answer_free(&a);
    a = call(&s, "POST", "/v1/responses", resp_body(body, sizeof body, "\"{\\\"age\\\": 3}\"", schema));
    assert_error(&a, 400, "invalid_request_error", "the model's reply does not match the format schema");
    assert_string_equal(gs(a.json, "error.param"), "text.format");
    assert_non_null(strstr(a.http.headers.data, "x-should-retry: false"));
    answer_free(&a);
    a = call(&s, "POST", "/v1/responses",
             resp_body(body, sizeof body, "\"[1, 2]\"", "\"text\":{\"format\":{\"type\":\"json_object\"}}"));
    assert_int_equal(a.http.status, 200);
    assert_string_equal(gs(a.json, "output.0.content.0.text"), "[1, 2]");
    answer_free(&a);

    /* streamed: the text is held until it was validated; a bad reply is one error event */
    char extra[1024];
    snprintf(extra, sizeof extra, "%s,\"stream\":true", schema);
    a = call(&s, "POST", "/v1/responses", resp_body(body, sizeof body, "\"{\\\"name\\\": \\\"Ada\\\"}\"", extra));
    resp_sse ev = resp_sse_parse(a.http.body.data);
    char *text = resp_sse_deltas(&ev, "response.output_text.delta");
    assert_string_equal(text, "{\"name\": \"Ada\"}");
    free(text);
    assert_string_equal(gs(ev.events[ev.n - 1], "type"), "response.completed");
    resp_sse_free(&ev);
    answer_free(&a);
    a = call(&s, "POST", "/v1/responses", resp_body(body, sizeof body, "\"plain words\"", extra));
    ev = resp_sse_parse(a.http.body.data);
    char *types = resp_sse_types(&ev);
    assert_string_equal(types, "created in_progress error");
    free(types);
    json_t *err = ev.events[ev.n - 1];
    assert_string_equal(gs(err, "param"), "text.format");
    assert_non_null(strstr(gs(err, "message"), "the model's reply is not valid JSON"));
    assert_string_equal(gs(err, "error.type"), "invalid_request_error"); /* the openai SDKs raise this */
    resp_sse_free(&ev);
    answer_free(&a);

    a = call(&s, "POST", "/v1/responses",
             resp_body(body, sizeof body, "\"x\"", "\"text\":{\"format\":{\"type\":\"xml\"}}"));
    assert_error(&a, 400, "invalid_request_error", "invalid text.format type: \"xml\"");
    answer_free(&a);
    a = call(&s, "POST", "/v1/responses",
             resp_body(body, sizeof body, "\"x\"", "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}"));
    assert_error(&a, 400, "invalid_request_error", "text.format json_schema must have a \"schema\" object");
    answer_free(&a);
    stop(&s);
}

/* ================================================================== reasoning */

static void test_reasoning_is_a_reasoning_item(void **state)
{
    (void)state;
    h_server s;
    h_server_dir(&s);
    const char *think[] = {"--emu-think-text", "Let me see.", NULL};
    h_write_manifest(s.dir, "m", think, "\"thinking\": true, \"think_default\": true");
    assert_true(h_server_start(&s, NULL));
    current = s;
    char body[1024];
    answer a = call(&s, "POST", "/v1/responses", resp_body(body, sizeof body, "\"Hi\"", NULL));
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_int_equal(json_array_size(get(a.json, "output")), 2);
    assert_string_equal(gs(a.json, "output.0.type"), "reasoning");
    assert_int_equal(strncmp(gs(a.json, "output.0.id"), "rs_", 3), 0);
    assert_string_equal(gs(a.json, "output.0.summary.0.type"), "summary_text");
    assert_string_equal(gs(a.json, "output.0.summary.0.text"), "Let me see.");
    assert_string_equal(gs(a.json, "output.1.content.0.text"), "Hi");
    answer_free(&a);

    a = call(&s, "POST", "/v1/responses", resp_body(body, sizeof body, "\"Hi\"", "\"stream\":true"));
    resp_sse ev = resp_sse_parse(a.http.body.data);
    char *types = resp_sse_types(&ev);
    const char *head =
        "created in_progress output_item.added reasoning_summary_part.added reasoning_summary_text.delta";
    if (strncmp(types, head, strlen(head)) != 0 ||
        !strstr(types, "reasoning_summary_text.done reasoning_summary_part.done output_item.done output_item.added "
                       "content_part.added output_text.delta"))
        fail_msg("events: %s", types);
    free(types);
    char *text = resp_sse_deltas(&ev, "response.reasoning_summary_text.delta");
    assert_string_equal(text, "Let me see.");
    free(text);
    json_t *done = ev.events[ev.n - 1];
    assert_string_equal(gs(done, "response.output.0.type"), "reasoning");
    assert_string_equal(gs(done, "response.output.1.type"), "message");
    assert_int_equal(gi(ev.events[ev.n - 2], "output_index"), 1);
    resp_sse_free(&ev);
    answer_free(&a);

    a = call(&s, "POST", "/v1/responses",
             resp_body(body, sizeof body, "\"Hi\"", "\"reasoning\":{\"effort\":\"none\"}"));
    assert_int_equal(json_array_size(get(a.json, "output")), 1);
    assert_string_equal(gs(a.json, "output.0.type"), "message");
    assert_true(json_is_string(get(a.json, "reasoning.effort")));
    answer_free(&a);
    a = call(&s, "POST", "/v1/responses",
             resp_body(body, sizeof body, "\"Hi\"", "\"reasoning\":{\"effort\":\"huge\"}"));
    assert_error(&a, 400, "invalid_request_error", "invalid reasoning value: 'huge'");
    answer_free(&a);
    stop(&s);
}

/* ================================================================== truncation, errors */

static void test_truncation_disabled_refuses_a_prompt_too_long(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    strbuf input = {0};
    sb_puts(&input, "\"");
    for (int i = 0; i < 3000; i++) /* about 3000 tokens, the model takes 2048 at most */
        sb_puts(&input, "word ");
    sb_puts(&input, "end\"");
    strbuf body = {0};
    sb_printf(&body, "{\"model\":\"m\",\"max_output_tokens\":2,\"truncation\":\"disabled\",\"input\":%s}", input.data);
    answer a = call(&s, "POST", "/v1/responses", body.data);
    assert_error(&a, 400, "invalid_request_error", "the prompt is too long");
    answer_free(&a);
    sb_clear(&body);
    sb_printf(&body, "{\"model\":\"m\",\"max_output_tokens\":2,\"input\":%s}", input.data);
    a = call(&s, "POST", "/v1/responses", body.data);
    if (a.http.status != 200)
        fail_msg("%ld %s", a.http.status, a.http.body.data);
    assert_string_equal(gs(a.json, "truncation"), "auto");
    answer_free(&a);
    sb_free(&body);
    sb_free(&input);
    stop(&s);
}

static void test_request_errors_name_the_field(void **state)
{
    (void)state;
    h_server s;
    h_server_dir(&s);
    h_write_manifest(s.dir, "m", NULL, NULL);
    h_write_manifest(s.dir, "plain", NULL, "\"thinking\": false");
    assert_true(h_server_start(&s, NULL));
    current = s;
    static const struct {
        const char *body, *param, *message;
        long status;
    } cases[] = {
        {"{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}", "previous_response_id",
         "previous_response_id is not supported: axllama stores no responses (store is always false): send the whole "
         "conversation as input",
         400},
        {"{\"model\":\"m\",\"input\":\"x\",\"conversation\":\"conv_1\"}", "conversation",
         "conversation is not supported", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"background\":true}", "background",
         "background responses are not supported", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"prompt\":{\"id\":\"p\"}}", "prompt", "prompt templates are not supported",
         400},
        {"{\"model\":\"m\"}", "input", "input is required", 400},
        {"{\"model\":\"m\",\"input\":\"\"}", "input", "input must not be empty", 400},
        {"{\"model\":\"m\",\"input\":[]}", "input", "input must not be empty", 400},
        {"{\"model\":\"m\",\"input\":7}", "input", "invalid type for 'input'", 400},
        {"{\"input\":\"x\"}", "model", "model is required", 400},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}", "input[0]",
         "item_reference is not supported", 400},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"web_search_call\"}]}", "input[0]",
         "unsupported input item type 'web_search_call'", 400},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "input[0].role", "invalid role", 400},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"image_url\":\"data:"
         "image/png;base64,AA\"}]}]}",
         "input[0].content[0]", "image input is not supported", 400},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\",\"file_id\":\"f\"}]}]}",
         "input[0].content[0]", "input_file parts are not supported", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools[0]",
         "unsupported tool in 'tools[0]': only function tools", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}", "tools[0]",
         "invalid tool in 'tools[0]'", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"truncation\":\"sometimes\"}", "truncation", "invalid truncation", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens",
         "max_output_tokens must be at least 1", 400},
        {"{\"model\":\"m\",\"input\":\"x\",\"temperature\":\"hot\"}", "temperature", "invalid type for 'temperature'",
         400},
        {"{\"model\":\"m\",\"input\":\"x\",\"instructions\":5}", "instructions", "invalid type for 'instructions'",
         400},
        {"{\"model\":\"nope\",\"input\":\"x\"}", NULL, "model 'nope' not found", 404},
        {"{\"model\":\"plain\",\"input\":\"x\",\"reasoning\":{\"effort\":\"high\"}}", "reasoning.effort",
         "\"plain\" does not support thinking", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer a = call(&s, "POST", "/v1/responses", cases[i].body);
        assert_error(&a, cases[i].status, cases[i].status == 404 ? "not_found_error" : "invalid_request_error",
                     cases[i].message);
        json_t *param = get(a.json, "error.param");
        if (cases[i].param ? !json_is_string(param) || strcmp(json_string_value(param), cases[i].param)
                           : !json_is_null(param))
            fail_msg("%s: param %s", cases[i].body, a.http.body.data);
        answer_free(&a);
    }
    /* store is accepted (nothing is kept either way); the answer says false */
    answer a = call(&s, "POST", "/v1/responses", "{\"model\":\"m\",\"input\":\"x\",\"store\":true}");
    assert_int_equal(a.http.status, 200);
    assert_true(json_is_false(get(a.json, "store")));
    answer_free(&a);
    stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_response_object_usage_and_instructions, stop_current),
        cmocka_unit_test_teardown(test_response_stream_events_in_order, stop_current),
        cmocka_unit_test_teardown(test_function_tools_calls_and_outputs, stop_current),
        cmocka_unit_test_teardown(test_max_output_tokens_make_an_incomplete_response, stop_current),
        cmocka_unit_test_teardown(test_text_format_is_validated_like_response_format, stop_current),
        cmocka_unit_test_teardown(test_reasoning_is_a_reasoning_item, stop_current),
        cmocka_unit_test_teardown(test_truncation_disabled_refuses_a_prompt_too_long, stop_current),
        cmocka_unit_test_teardown(test_request_errors_name_the_field, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
