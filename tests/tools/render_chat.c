/* render_chat: test driver for chat_template. Reads a JSON array of cases on stdin, each
 *   {"family": "qwen3" | "qwen2.5",
 *    "messages": [{"role", "content" (string or null), "reasoning_content"?,
 *                  "tool_calls"?: [{"name", "arguments_json"}]}],
 *    "add_generation_prompt": bool, "enable_thinking"?: bool, "tools_json"?: [string]}
 * and prints a JSON array with one entry per case: the rendered string, or null when
 * chat_template_render refuses the case. Exit code 2 on malformed input. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "tokenizer/chat_template.h"

/* Returns the string member key of obj, NULL if it is absent or null; *ok = false if it has
 * another type. */
static const char *optional_string(const json_t *obj, const char *key, bool *ok)
{
    const json_t *value = json_object_get(obj, key);
    if (!value || json_is_null(value))
        return NULL;
    if (!json_is_string(value)) {
        *ok = false;
        return NULL;
    }
    return json_string_value(value);
}

/* Renders one case into out; returns false on malformed input, sets *rendered to the result. */
static bool render_case(const json_t *test_case, strbuf *out, bool *rendered)
{
    bool ok = true;
    const char *family_name = optional_string(test_case, "family", &ok);
    const json_t *messages = json_object_get(test_case, "messages");
    if (!ok || !family_name || !json_is_array(messages))
        return false;
    chat_template_family family;
    if (strcmp(family_name, "qwen3") == 0)
        family = CHAT_TEMPLATE_QWEN3;
    else if (strcmp(family_name, "qwen2.5") == 0)
        family = CHAT_TEMPLATE_QWEN25;
    else
        return false;

    size_t n = json_array_size(messages);
    chat_message *msgs = xcalloc(n ? n : 1, sizeof *msgs);
    chat_tool_call **calls = xcalloc(n ? n : 1, sizeof *calls);
    for (size_t i = 0; i < n && ok; i++) {
        const json_t *msg = json_array_get(messages, i);
        if (!json_is_object(msg)) {
            ok = false;
            break;
        }
        msgs[i].role = optional_string(msg, "role", &ok);
        msgs[i].content = optional_string(msg, "content", &ok);
        msgs[i].reasoning_content = optional_string(msg, "reasoning_content", &ok);
        const json_t *tool_calls = json_object_get(msg, "tool_calls");
        if (json_is_array(tool_calls) && json_array_size(tool_calls) > 0) {
            size_t n_calls = json_array_size(tool_calls);
            calls[i] = xcalloc(n_calls, sizeof *calls[i]);
            for (size_t k = 0; k < n_calls; k++) {
                const json_t *call = json_array_get(tool_calls, k);
                calls[i][k].name = optional_string(call, "name", &ok);
                calls[i][k].arguments_json = optional_string(call, "arguments_json", &ok);
            }
            msgs[i].tool_calls = calls[i];
            msgs[i].n_tool_calls = n_calls;
        }
    }

    const json_t *tools = json_object_get(test_case, "tools_json");
    size_t n_tools = json_is_array(tools) ? json_array_size(tools) : 0;
    const char **tools_json = xcalloc(n_tools ? n_tools : 1, sizeof *tools_json);
    for (size_t t = 0; t < n_tools && ok; t++) {
        tools_json[t] = json_string_value(json_array_get(tools, t));
        ok = tools_json[t] != NULL;
    }

    const json_t *thinking = json_object_get(test_case, "enable_thinking");
    chat_template_options opt = {
        .add_generation_prompt = json_is_true(json_object_get(test_case, "add_generation_prompt")),
        .enable_thinking = !thinking || json_is_null(thinking) ? -1
                           : json_is_true(thinking)            ? 1
                                                               : 0,
        .tools_json = tools_json,
        .n_tools = n_tools,
    };
    if (ok)
        *rendered = chat_template_render(family, msgs, n, &opt, out);

    for (size_t i = 0; i < n; i++)
        free(calls[i]);
    free(calls);
    free(msgs);
    free(tools_json);
    return ok;
}

int main(void)
{
    json_error_t error;
    json_t *cases = json_loadf(stdin, 0, &error);
    if (!json_is_array(cases)) {
        fprintf(stderr, "render_chat: expected a JSON array on stdin (%s)\n", error.text);
        json_decref(cases);
        return 2;
    }
    json_t *results = json_array();
    strbuf out = {0};
    for (size_t i = 0; i < json_array_size(cases); i++) {
        bool rendered = false;
        sb_clear(&out);
        if (!render_case(json_array_get(cases, i), &out, &rendered)) {
            fprintf(stderr, "render_chat: case %zu is malformed\n", i);
            json_decref(results);
            json_decref(cases);
            sb_free(&out);
            return 2;
        }
        json_array_append_new(results, rendered ? json_stringn(out.data ? out.data : "", out.len) : json_null());
    }
    char *text = json_dumps(results, 0);
    bool printed = text != NULL;
    if (printed) {
        fputs(text, stdout);
        fputc('\n', stdout);
    }
    free(text);
    json_decref(results);
    json_decref(cases);
    sb_free(&out);
    return printed ? 0 : 2;
}
