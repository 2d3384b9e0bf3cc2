/* End-to-end tests of tools, format and thinking through `axllama serve` on axllama-emu (fast
 * profile): what the prompt holds (exact prefill counts and the runtime's precompute_len after a
 * reset), <tool_call> output parsed into tool_calls streamed and not, tool results fed back with
 * KV reuse (and a reset when the history's calls differ), malformed tool text kept as content,
 * format validated on real replies, think true / false / levels / the manifest default, earlier
 * think blocks stripped; with a reasoning emulator (--emu-think-text): thinking / reasoning streamed
 * before the content on both APIs, hidden when off, and a thinking turn continued in the cache.
 * The emulator echoes the last user block, so the last user message (or
 * tool result) is what the "model" answers. One server with four models for the whole group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "serve_harness.h"
#include "tokenizer/chat_template.h"

static tokenizer *tok;
static h_server srv;

/* what model r's emulator puts into its think block (JSON-escaped in JR) */
#define REASONING "The user wrote a word.\n\nI will repeat it, \"exactly\"."
#define JR "The user wrote a word.\\n\\nI will repeat it, \\\"exactly\\\"."

static int setup(void **state)
{
    (void)state;
    char err[256];
    tok = tokenizer_load(getenv("AXLLAMA_TOKENIZER_DIR"), err, sizeof err);
    if (!tok)
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h_server_dir(&srv);
    /* m: think off unless asked, no default system prompt; t: think on unless told, the default
     * system prompt (Qwen's); p: a Qwen2.5 template, no thinking, no tools */
    h_write_manifest(srv.dir, "m", NULL, "\"thinking\": true, \"system_prompt\": \"\"");
    h_write_manifest(srv.dir, "t", NULL, "\"thinking\": true, \"think_default\": true");
    h_write_manifest(srv.dir, "p", NULL, "\"template\": \"qwen2.5\", \"thinking\": false");
    /* r: like m, but the emulated model reasons (its think block holds REASONING) */
    h_write_manifest(srv.dir, "r", (const char *const[]){"--emu-think-text", REASONING, NULL},
                     "\"thinking\": true, \"system_prompt\": \"\"");
    if (!h_server_start(&srv, NULL)) {
        char *log = h_server_log(&srv);
        fprintf(stderr, "server did not start:\n%s\n", log);
        free(log);
        h_server_stop(&srv);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_server_stop(&srv);
    tokenizer_free(tok);
    return 0;
}

typedef struct {
    h_http http;
    json_t **lines;
    size_t n;
    json_t *last;
} result;

static result post(const char *path, const char *body)
{
    result r = {0};
    r.http = h_srv(&srv, "POST", path, body);
    r.lines = h_ndjson(r.http.body.data ? r.http.body.data : "", &r.n);
    r.last = r.n ? r.lines[r.n - 1] : NULL;
    return r;
}

static void result_free(result *r)
{
    h_ndjson_free(r->lines, r->n);
    h_http_free(&r->http);
}

static const char *str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

static long num(json_t *obj, const char *key)
{
    return (long)json_integer_value(json_object_get(obj, key));
}

static json_t *msg(json_t *line)
{
    return json_object_get(line, "message");
}

static void assert_status(const result *r, long status)
{
    if (r->http.status != status) {
        if (r->http.status == 0) { /* no answer: the server's log tells why */
            char *log = h_server_log(&srv);
            size_t len = log ? strlen(log) : 0;
            fprintf(stderr, "server log (end):\n%s\n", log ? log + (len > 6000 ? len - 6000 : 0) : "");
            free(log);
        }
        fail_msg("status %ld (want %ld): %s", r->http.status, status, r->http.body.data);
    }
}

/* Waits for the runtime's log line after a reset that staged a system block of n ids. */
static bool reset_with_system_block_of(size_t n)
{
    char needle[96];
    snprintf(needle, sizeof needle, "precompute_len:%zu input_num_token:", n);
    return h_server_wait_log(&srv, needle, 10.0);
}

#define TOOLS_JSON                                                                                               \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Wetter für eine Stadt\"," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]"
/* the same, as the template's `tool | tojson` prints it */
#define TOOL_TOJSON                                                                                                    \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Wetter für eine Stadt\", " \
    "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "        \
    "[\"city\"]}}}"
#define TOOLS_SYSTEM_BLOCK                                                                                     \
    "<|im_start|>system\nUse tools.\n\n# Tools\n\nYou may call one or more functions to assist with the user " \
    "query.\n\nYou are "                                                                                       \
    "provided with function signatures within <tools></tools> XML tags:\n<tools>\n" TOOL_TOJSON                \
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "      \
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "              \
    "<args-json-object>}\n</tool_call><|im_end|>\n"
/* JSON-escaped model output: a call between two bits of text */
#define CALL_TEXT                                                                          \
    "<tool_call>\\n{\\\"name\\\": \\\"get_weather\\\", \\\"arguments\\\": {\\\"city\\\": " \
    "\\\"Paris\\\"}}\\n</tool_call>"
#define USER_CALL "{\"role\":\"user\",\"content\":\"" CALL_TEXT "\"}"
#define SYSTEM "{\"role\":\"system\",\"content\":\"Use tools.\"}"

static void test_tools_are_rendered_and_a_streamed_call_comes_whole(void **state)
{
    (void)state;
    result r = post("/api/chat",
                    "{\"model\":\"m\",\"tools\":" TOOLS_JSON ",\"messages\":[" SYSTEM ",{\"role\":\"user\",\"content\":"
                    "\"Checking. " CALL_TEXT " Back soon.\"}]}");
    assert_status(&r, 200);
    assert_true(reset_with_system_block_of(h_n_ids(tok, TOOLS_SYSTEM_BLOCK)));
    strbuf content = {0};
    sb_puts(&content, "");
    size_t calls = 0;
    for (size_t i = 0; i < r.n; i++) {
        json_t *tc = json_object_get(msg(r.lines[i]), "tool_calls");
        sb_puts(&content, str(msg(r.lines[i]), "content"));
        if (!tc)
            continue;
        calls++;
        assert_false(json_is_true(json_object_get(r.lines[i], "done")));
        assert_string_equal(str(msg(r.lines[i]), "content"), "");
        assert_int_equal(json_array_size(tc), 1);
        json_t *fn = json_object_get(json_array_get(tc, 0), "function");
        assert_string_equal(str(fn, "name"), "get_weather");
        assert_string_equal(str(json_object_get(fn, "arguments"), "city"), "Paris");
        assert_int_equal(num(fn, "index"), 0);
        assert_int_equal(strlen(str(json_array_get(tc, 0), "id")), 13);
    }
    assert_int_equal(calls, 1);
    assert_string_equal(content.data, "Checking.  Back soon."); /* the text around the block stays content */
    assert_true(json_is_true(json_object_get(r.last, "done")));
    assert_string_equal(str(r.last, "done_reason"), "stop");
    sb_free(&content);
    result_free(&r);
}

static void test_a_tool_result_continues_the_cached_conversation(void **state)
{
    (void)state;
    /* turn 1: the model calls the tool */
    result r = post("/api/chat", "{\"model\":\"m\",\"stream\":false,\"tools\":" TOOLS_JSON ",\"messages\":[" SYSTEM
                                 "," USER_CALL "]}");
    assert_status(&r, 200);
    json_t *reply = json_deep_copy(msg(r.last));
    assert_string_equal(str(reply, "content"), "");
    assert_int_equal(json_array_size(json_object_get(reply, "tool_calls")), 1);
    result_free(&r);

    /* turn 2: the result goes back; only the new turn is prefilled (the cache holds the call) */
    json_t *body = json_pack(
        "{s:s, s:b, s:o, s:[{s:s, s:s}, {s:s, s:s}, o, {s:s, s:s, s:s}]}", "model", "m", "stream", 0, "tools",
        json_loads(TOOLS_JSON, 0, NULL), "messages", "role", "system", "content", "Use tools.", "role", "user",
        "content", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        reply, "role", "tool", "tool_name", "get_weather", "content", "sunny, 21 C");
    char *text = json_dumps(body, 0);
    r = post("/api/chat", text);
    free(text);
    assert_status(&r, 200);
    /* the emulator echoes the last user block: the tool result as the template wraps it */
    assert_string_equal(str(msg(r.last), "content"), "<tool_response>\nsunny, 21 C\n</tool_response>");
    assert_null(json_object_get(msg(r.last), "tool_calls"));
    assert_int_equal(num(r.last, "prompt_eval_count"),
                     h_n_ids(tok,
                             "<|im_end|>\n<|im_start|>user\n<tool_response>\nsunny, 21 C\n</tool_response><|im_end|>\n"
                             "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    result_free(&r);

    /* the same history with other arguments: not what the cache holds, so a reset renders it */
    json_t *args = json_object_get(json_object_get(json_array_get(json_object_get(reply, "tool_calls"), 0), "function"),
                                   "arguments");
    json_object_set_new(args, "city", json_string("Rome"));
    text = json_dumps(body, 0);
    r = post("/api/chat", text);
    free(text);
    assert_status(&r, 200);
    assert_true(reset_with_system_block_of(h_n_ids(tok, TOOLS_SYSTEM_BLOCK)));
    assert_int_equal(num(r.last, "prompt_eval_count"),
                     h_n_ids(tok, TOOLS_SYSTEM_BLOCK
                             "<|im_start|>user\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                             "\"Paris\"}}\n</tool_call><|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": "
                             "\"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call><|im_end|>\n"
                             "<|im_start|>user\n<tool_response>\nsunny, 21 C\n</tool_response><|im_end|>\n"
                             "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    result_free(&r);
    json_decref(body);
}

static void test_malformed_tool_call_text_is_returned_as_content(void **state)
{
    (void)state;
    result r =
        post("/api/chat", "{\"model\":\"m\",\"stream\":false,\"tools\":" TOOLS_JSON ",\"messages\":[{\"role\":"
                          "\"user\",\"content\":\"a <tool_call>{\\\"name\\\": \\\"get_weather\\\", \\\"arguments\\\": "
                          "[1]}</tool_call> b <tool_call>{oops\"}]}");
    assert_status(&r, 200);
    assert_string_equal(str(msg(r.last), "content"),
                        "a <tool_call>{\"name\": \"get_weather\", \"arguments\": [1]}</tool_call> b <tool_call>{oops");
    assert_null(json_object_get(msg(r.last), "tool_calls"));
    assert_string_equal(str(r.last, "done_reason"), "stop");
    result_free(&r);
    /* without tools, tool-call text is plain content */
    r = post("/api/chat", "{\"model\":\"m\",\"stream\":false,\"messages\":[" USER_CALL "]}");
    assert_status(&r, 200);
    assert_string_equal(str(msg(r.last), "content"),
                        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
    assert_null(json_object_get(msg(r.last), "tool_calls"));
    result_free(&r);
    /* a model without the capability */
    r = post("/api/chat", "{\"model\":\"p\",\"tools\":" TOOLS_JSON ",\"messages\":[" USER_CALL "]}");
    assert_status(&r, 400);
    assert_string_equal(str(r.last, "error"), "registry.ollama.ai/library/p:latest does not support tools");
    result_free(&r);
}

#define INSTRUCTION "Respond with valid JSON only: a single JSON value, no other text, no code fences."

/* A reply that calls tools answers with the calls even under a format (the format is for prose
 * answers; LangChain binds tools and a schema together), streamed and not. */
static void test_tool_calls_under_a_format_are_the_answer(void **state)
{
    (void)state;
    result r = post("/api/chat", "{\"model\":\"m\",\"stream\":false,\"format\":\"json\",\"tools\":" TOOLS_JSON
                                 ",\"messages\":[" USER_CALL "]}");
    assert_status(&r, 200);
    json_t *tc = json_object_get(msg(r.last), "tool_calls");
    assert_int_equal(json_array_size(tc), 1);
    assert_string_equal(str(json_object_get(json_array_get(tc, 0), "function"), "name"), "get_weather");
    assert_string_equal(str(r.last, "done_reason"), "stop");
    result_free(&r);
    r = post("/api/chat",
             "{\"model\":\"m\",\"format\":\"json\",\"tools\":" TOOLS_JSON ",\"messages\":[" USER_CALL "]}");
    assert_status(&r, 200);
    assert_null(json_object_get(r.last, "error"));
    assert_true(json_is_true(json_object_get(r.last, "done")));
    result_free(&r);
}

static void test_format_json_instructs_and_validates(void **state)
{
    (void)state;
    result r =
        post("/api/chat", "{\"model\":\"m\",\"stream\":false,\"format\":\"json\",\"messages\":[{\"role\":\"user\","
                          "\"content\":\"{\\\"answer\\\": [1, 2]}\"}]}");
    assert_status(&r, 200);
    assert_string_equal(str(msg(r.last), "content"), "{\"answer\": [1, 2]}");
    /* the instruction became the system block (the manifest has no system prompt) */
    assert_true(reset_with_system_block_of(h_n_ids(tok, "<|im_start|>system\n" INSTRUCTION "<|im_end|>\n")));
    result_free(&r);

    /* after the model's default system prompt */
    r = post("/api/generate", "{\"model\":\"t\",\"stream\":false,\"format\":\"json\",\"prompt\":\"[true]\"}");
    assert_status(&r, 200);
    assert_string_equal(str(r.last, "response"), "[true]");
    assert_true(reset_with_system_block_of(
        h_n_ids(tok, "<|im_start|>system\n" CHAT_DEFAULT_SYSTEM_PROMPT "\n\n" INSTRUCTION "<|im_end|>\n")));
    result_free(&r);

    r = post("/api/generate", "{\"model\":\"m\",\"stream\":false,\"format\":\"json\",\"prompt\":\"Sure: it is 4\"}");
    assert_status(&r, 400);
    assert_string_equal(str(r.last, "error"),
                        "the model's reply is not valid JSON: invalid token near 'Sure' (line 1, column 4)");
    result_free(&r);

    /* streamed: the pieces, then an error line instead of done */
    r = post("/api/generate", "{\"model\":\"m\",\"format\":\"json\",\"prompt\":\"Sure: it is 4\"}");
    assert_status(&r, 200);
    assert_true(r.n >= 2);
    assert_string_equal(str(r.last, "error"),
                        "the model's reply is not valid JSON: invalid token near 'Sure' (line 1, column 4)");
    for (size_t i = 0; i < r.n; i++)
        assert_false(json_is_true(json_object_get(r.lines[i], "done")));
    char *text = h_join(r.lines, r.n, NULL, "response");
    assert_string_equal(text, "Sure: it is 4");
    free(text);
    result_free(&r);
}

static void test_format_schema_passes_and_fails(void **state)
{
    (void)state;
    const char *schema =
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"temp\":{\"type\":\"integer\"}},"
        "\"required\":[\"city\",\"temp\"]}";
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"format\":%s,\"messages\":[{\"role\":\"system\",\"content\":\"Be exact.\"},"
             "{\"role\":\"user\",\"content\":\"{\\\"city\\\": \\\"Paris\\\", \\\"temp\\\": 21}\"}]}",
             schema);
    result r = post("/api/chat", body);
    assert_status(&r, 200);
    assert_true(json_is_true(json_object_get(r.last, "done")));
    char *content = h_join(r.lines, r.n, "message", "content");
    assert_string_equal(content, "{\"city\": \"Paris\", \"temp\": 21}");
    free(content);
    /* the request's system prompt, then the instruction with the compact schema */
    assert_true(
        reset_with_system_block_of(h_n_ids(tok, "<|im_start|>system\nBe exact.\n\n" INSTRUCTION
                                                " The JSON must conform to this JSON schema: {\"type\":\"object\","
                                                "\"properties\":{\"city\":{\"type\":\"string\"},\"temp\":{\"type\":"
                                                "\"integer\"}},\"required\":[\"city\",\"temp\"]}<|im_end|>\n")));
    result_free(&r);

    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"stream\":false,\"format\":%s,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"{\\\"city\\\": \\\"Paris\\\", \\\"temp\\\": \\\"warm\\\"}\"}]}",
             schema);
    r = post("/api/chat", body);
    assert_status(&r, 400);
    assert_string_equal(str(r.last, "error"),
                        "the model's reply does not match the format schema: $.temp: expected integer, got string");
    result_free(&r);
}

/* prompt_eval_count of a one-message chat (always a reset: the held conversation is longer). */
static long prefill_of(const char *model, const char *think)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"stream\":false%s%s,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", model,
             think ? ",\"think\":" : "", think ? think : "");
    result r = post("/api/chat", body);
    assert_status(&r, 200);
    assert_string_equal(str(msg(r.last), "content"), "Hi");
    assert_null(json_object_get(msg(r.last), "thinking")); /* the emulator's think block is empty */
    long n = num(r.last, "prompt_eval_count");
    result_free(&r);
    return n;
}

static void test_think_values_and_the_manifest_default(void **state)
{
    (void)state;
    long on = (long)h_n_ids(tok, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    long off = (long)h_n_ids(tok, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    assert_int_equal(prefill_of("m", NULL), off); /* think_default false */
    assert_int_equal(prefill_of("m", "true"), on);
    assert_int_equal(prefill_of("m", "\"low\""), on); /* levels mean on for Qwen3 */
    assert_int_equal(prefill_of("m", "\"max\""), on);
    assert_int_equal(prefill_of("m", "false"), off);
    long sys = (long)h_n_ids(tok, H_QWEN_SYSTEM_BLOCK); /* t has the default system prompt: a reset evaluates it */
    assert_int_equal(prefill_of("t", NULL), sys + on);  /* think_default true */
    assert_int_equal(prefill_of("t", "false"), sys + off);
    assert_int_equal(prefill_of("t", "\"medium\""), sys + on);

    /* a model without thinking: 400 for true and levels, false is fine */
    result r =
        post("/api/chat", "{\"model\":\"p\",\"think\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_status(&r, 400);
    assert_string_equal(str(r.last, "error"), "\"p\" does not support thinking");
    result_free(&r);
    r = post("/api/generate", "{\"model\":\"p\",\"think\":\"high\",\"prompt\":\"Hi\"}");
    assert_status(&r, 400);
    assert_string_equal(str(r.last, "error"), "\"p\" does not support thinking");
    result_free(&r);
    r = post("/api/generate", "{\"model\":\"p\",\"think\":false,\"stream\":false,\"prompt\":\"Hi\"}");
    assert_status(&r, 200);
    assert_string_equal(str(r.last, "response"), "Hi");
    result_free(&r);
}

static void test_earlier_think_blocks_are_stripped_from_the_history(void **state)
{
    (void)state;
    result r =
        post("/api/chat", "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"q1\"},"
                          "{\"role\":\"assistant\",\"content\":\"<think>\\nsecret plan\\n</think>\\n\\nanswer\"},"
                          "{\"role\":\"user\",\"content\":\"q2\"}]}");
    assert_status(&r, 200);
    assert_string_equal(str(msg(r.last), "content"), "q2");
    assert_int_equal(num(r.last, "prompt_eval_count"),
                     h_n_ids(tok, "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\nanswer<|im_end|>\n"
                                  "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    result_free(&r);
}

/* ---- a model that reasons (--emu-think-text) ---- */

/* Streamed chat lines: thinking pieces joined into *thinking, content into *content; true when
 * every thinking piece came before the first content piece. */
static bool split_stream(const result *r, const char *outer, const char *think_key, const char *content_key,
                         char **thinking, char **content)
{
    strbuf t = {0}, c = {0};
    sb_puts(&t, "");
    sb_puts(&c, "");
    bool ordered = true;
    for (size_t i = 0; i < r->n; i++) {
        json_t *obj = outer ? json_object_get(r->lines[i], outer) : r->lines[i];
        const char *th = json_string_value(json_object_get(obj, think_key));
        const char *co = json_string_value(json_object_get(obj, content_key));
        if (th && *th) {
            if (c.len)
                ordered = false;
            sb_puts(&t, th);
        }
        if (co)
            sb_puts(&c, co);
    }
    *thinking = sb_steal(&t);
    *content = sb_steal(&c);
    return ordered;
}

static bool any_line_has(const result *r, const char *outer, const char *key)
{
    for (size_t i = 0; i < r->n; i++) {
        json_t *obj = outer ? json_object_get(r->lines[i], outer) : r->lines[i];
        if (json_object_get(obj, key))
            return true;
    }
    return false;
}

static void test_chat_streams_the_reasoning_as_thinking_before_the_content(void **state)
{
    (void)state;
    result r =
        post("/api/chat", "{\"model\":\"r\",\"think\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_status(&r, 200);
    assert_true(r.n >= 3);
    char *thinking, *content;
    assert_true(split_stream(&r, "message", "thinking", "content", &thinking, &content));
    assert_string_equal(thinking, REASONING);
    assert_string_equal(content, "Hi");
    assert_true(json_is_true(json_object_get(r.last, "done")));
    assert_string_equal(str(r.last, "done_reason"), "stop");
    free(thinking);
    free(content);
    result_free(&r);

    /* one object */
    r = post("/api/chat",
             "{\"model\":\"r\",\"think\":true,\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_status(&r, 200);
    assert_int_equal(r.n, 1);
    assert_string_equal(str(msg(r.last), "thinking"), REASONING);
    assert_string_equal(str(msg(r.last), "content"), "Hi");
    result_free(&r);
}

static void test_think_false_hides_the_reasoning_block(void **state)
{
    (void)state;
    /* think false, and think absent on a model whose default is off */
    const char *bodies[] = {
        "{\"model\":\"r\",\"think\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
        "{\"model\":\"r\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
    };
    for (size_t i = 0; i < 2; i++) {
        result r = post("/api/chat", bodies[i]);
        assert_status(&r, 200);
        assert_false(any_line_has(&r, "message", "thinking"));
        char *content = h_join(r.lines, r.n, "message", "content");
        assert_string_equal(content, "Hi");
        free(content);
        result_free(&r);
    }
    result r = post(
        "/api/chat",
        "{\"model\":\"r\",\"think\":false,\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_status(&r, 200);
    assert_null(json_object_get(msg(r.last), "thinking"));
    assert_string_equal(str(msg(r.last), "content"), "Hi");
    result_free(&r);
}

static void test_generate_returns_the_reasoning_as_thinking(void **state)
{
    (void)state;
    result r = post("/api/generate", "{\"model\":\"r\",\"think\":true,\"prompt\":\"Hi\"}");
    assert_status(&r, 200);
    char *thinking, *response;
    assert_true(split_stream(&r, NULL, "thinking", "response", &thinking, &response));
    assert_string_equal(thinking, REASONING);
    assert_string_equal(response, "Hi");
    free(thinking);
    free(response);
    result_free(&r);

    r = post("/api/generate", "{\"model\":\"r\",\"think\":true,\"stream\":false,\"prompt\":\"Hi\"}");
    assert_status(&r, 200);
    assert_string_equal(str(r.last, "thinking"), REASONING);
    assert_string_equal(str(r.last, "response"), "Hi");
    result_free(&r);

    r = post("/api/generate", "{\"model\":\"r\",\"think\":false,\"prompt\":\"Hi\"}");
    assert_status(&r, 200);
    assert_false(any_line_has(&r, NULL, "thinking"));
    char *text = h_join(r.lines, r.n, NULL, "response");
    assert_string_equal(text, "Hi");
    free(text);
    result_free(&r);
}

/* Qwen3's template drops the reasoning of turns before the last user message, but the runtime's
 * cache holds turn 1 as generated, think block included. The engine continues that cache (design:
 * earlier replies stay in the cache as generated; the comparison ignores think blocks), so turn 2
 * prefills only its own part, whether the client sends the reasoning back as `thinking`, inline
 * in the content, or not at all. */
static void test_a_turn_after_a_thinking_turn_continues_the_cache(void **state)
{
    (void)state;
    const char *second[] = {
        "{\"role\":\"assistant\",\"content\":\"q1\",\"thinking\":\"" JR "\"}",
        "{\"role\":\"assistant\",\"content\":\"<think>\\n" JR "\\n</think>\\n\\nq1\"}",
        "{\"role\":\"assistant\",\"content\":\"q1\"}",
    };
    for (size_t i = 0; i < 3; i++) {
        result r =
            post("/api/chat", "{\"model\":\"r\",\"think\":true,\"stream\":false,\"messages\":[{\"role\":\"user\","
                              "\"content\":\"q1\"}]}");
        assert_status(&r, 200);
        assert_string_equal(str(msg(r.last), "thinking"), REASONING);
        assert_string_equal(str(msg(r.last), "content"), "q1");
        /* a one-message conversation never continues the previous one: a reset, all prefilled */
        assert_int_equal(num(r.last, "prompt_eval_count"),
                         h_n_ids(tok, "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n"));
        result_free(&r);

        char body[1024];
        snprintf(
            body, sizeof body,
            "{\"model\":\"r\",\"think\":true,\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"q1\"},"
            "%s,{\"role\":\"user\",\"content\":\"q2\"}]}",
            second[i]);
        r = post("/api/chat", body);
        assert_status(&r, 200);
        assert_string_equal(str(msg(r.last), "thinking"), REASONING);
        assert_string_equal(str(msg(r.last), "content"), "q2");
        assert_int_equal(num(r.last, "prompt_eval_count"),
                         h_n_ids(tok, "<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n"));
        result_free(&r);
    }
}

/* SSE body -> the parsed chunks (without [DONE]); *done = it ended with data: [DONE]. */
static result sse(const h_http *http, bool *done)
{
    result r = {0};
    size_t cap = 16;
    r.lines = xcalloc(cap, sizeof *r.lines);
    *done = false;
    const char *p = http->body.data ? http->body.data : "";
    while ((p = strstr(p, "data: "))) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 6 && !memcmp(p, "[DONE]", 6)) {
            *done = true;
        } else {
            json_t *v = json_loadb(p, len, 0, NULL);
            assert_non_null(v);
            if (r.n == cap)
                r.lines = xrealloc(r.lines, (cap *= 2) * sizeof *r.lines);
            r.lines[r.n++] = v;
        }
        p += len;
    }
    r.last = r.n ? r.lines[r.n - 1] : NULL;
    return r;
}

static json_t *choice0(json_t *chunk, const char *member)
{
    return json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), member);
}

static void test_openai_chat_returns_the_reasoning(void **state)
{
    (void)state;
    result r = post("/v1/chat/completions", "{\"model\":\"r\",\"reasoning_effort\":\"high\",\"messages\":[{\"role\":"
                                            "\"user\",\"content\":\"Hi\"}]}");
    assert_status(&r, 200);
    json_t *m = choice0(r.last, "message");
    assert_string_equal(str(m, "reasoning"), REASONING);
    assert_string_equal(str(m, "content"), "Hi");
    assert_null(json_object_get(m, "reasoning_content"));
    result_free(&r);

    /* absent: the model's default; "none": off */
    const char *off[] = {"\"reasoning_effort\":\"none\",", "\"reasoning\":{\"effort\":\"none\"},"};
    for (size_t i = 0; i < 2; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"model\":\"r\",%s\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                 off[i]);
        r = post("/v1/chat/completions", body);
        assert_status(&r, 200);
        m = choice0(r.last, "message");
        assert_null(json_object_get(m, "reasoning"));
        assert_string_equal(str(m, "content"), "Hi");
        result_free(&r);
    }

    /* streamed: reasoning deltas, then content deltas */
    h_http http = h_srv(&srv, "POST", "/v1/chat/completions",
                        "{\"model\":\"r\",\"stream\":true,\"reasoning_effort\":\"low\",\"messages\":[{\"role\":"
                        "\"user\",\"content\":\"Hi\"}]}");
    assert_int_equal(http.status, 200);
    bool done;
    r = sse(&http, &done);
    assert_true(done);
    assert_true(r.n >= 3);
    json_t **deltas = xcalloc(r.n, sizeof *deltas);
    for (size_t i = 0; i < r.n; i++)
        deltas[i] = choice0(r.lines[i], "delta");
    result view = {.lines = deltas, .n = r.n};
    char *reasoning, *content;
    assert_true(split_stream(&view, NULL, "reasoning", "content", &reasoning, &content));
    assert_string_equal(reasoning, REASONING);
    assert_string_equal(content, "Hi");
    const char *finish = json_string_value(choice0(r.last, "finish_reason"));
    assert_non_null(finish);
    assert_string_equal(finish, "stop");
    free(reasoning);
    free(content);
    free(deltas);
    h_ndjson_free(r.lines, r.n);
    h_http_free(&http);

    http = h_srv(&srv, "POST", "/v1/chat/completions",
                 "{\"model\":\"r\",\"stream\":true,\"reasoning_effort\":\"none\",\"messages\":[{\"role\":\"user\","
                 "\"content\":\"Hi\"}]}");
    assert_int_equal(http.status, 200);
    assert_null(strstr(http.body.data, "\"reasoning\""));
    r = sse(&http, &done);
    assert_true(done);
    strbuf joined = {0};
    sb_puts(&joined, "");
    for (size_t i = 0; i < r.n; i++)
        sb_puts(&joined, str(choice0(r.lines[i], "delta"), "content"));
    assert_string_equal(joined.data, "Hi");
    sb_free(&joined);
    h_ndjson_free(r.lines, r.n);
    h_http_free(&http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tools_are_rendered_and_a_streamed_call_comes_whole),
        cmocka_unit_test(test_a_tool_result_continues_the_cached_conversation),
        cmocka_unit_test(test_malformed_tool_call_text_is_returned_as_content),
        cmocka_unit_test(test_tool_calls_under_a_format_are_the_answer),
        cmocka_unit_test(test_format_json_instructs_and_validates),
        cmocka_unit_test(test_format_schema_passes_and_fails),
        cmocka_unit_test(test_think_values_and_the_manifest_default),
        cmocka_unit_test(test_earlier_think_blocks_are_stripped_from_the_history),
        cmocka_unit_test(test_chat_streams_the_reasoning_as_thinking_before_the_content),
        cmocka_unit_test(test_think_false_hides_the_reasoning_block),
        cmocka_unit_test(test_generate_returns_the_reasoning_as_thinking),
        cmocka_unit_test(test_a_turn_after_a_thinking_turn_continues_the_cache),
        cmocka_unit_test(test_openai_chat_returns_the_reasoning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
