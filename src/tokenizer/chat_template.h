/* chat_template: renders a conversation the way the Qwen (ChatML) family's Jinja chat templates do,
 * byte for byte, without a Jinja engine:
 *   - CHAT_TEMPLATE_QWEN3: the `chat_template` of Qwen3's tokenizer_config.json (enable_thinking,
 *     <think> stripping in earlier assistant turns, tool messages, tool calls);
 *   - CHAT_TEMPLATE_QWEN25: the Qwen2.5 template the vendor's tokenizer service renders with
 *     (a default system block when the first message is not a system message; enable_thinking and
 *     reasoning_content are ignored, assistant content is printed as given).
 * tests/template/chat_template_test.py checks byte identity with both Jinja templates. */
#ifndef AXLLAMA_TOKENIZER_CHAT_TEMPLATE_H
#define AXLLAMA_TOKENIZER_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum {
    CHAT_TEMPLATE_QWEN3,
    CHAT_TEMPLATE_QWEN25,
} chat_template_family;

/* Qwen2.5's default system prompt, also the vendor tokenizer service's default. */
#define CHAT_DEFAULT_SYSTEM_PROMPT "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

typedef struct {
    const char *name;
    /* The arguments as JSON text, rendered verbatim. Qwen3: the template's `arguments is string`
     * branch. Qwen2.5 always prints `arguments | tojson`, so there this must already be the object
     * serialised as that `tojson` does (json.dumps(x, ensure_ascii=False)): the APIs build it with
     * tojson_dumps() (api/tojson.h) for both families. */
    const char *arguments_json;
} chat_tool_call;

typedef struct {
    const char *role;              /* "system", "user", "assistant", "tool" */
    const char *content;           /* NULL renders as "" */
    const char *reasoning_content; /* assistant only; NULL = not given (then taken from <think>) */
    const chat_tool_call *tool_calls;
    size_t n_tool_calls;
} chat_message;

typedef struct {
    bool add_generation_prompt;
    /* -1: enable_thinking not given; 0: false (adds the empty think block to the generation
     * prompt); 1: true. */
    int enable_thinking;
    /* Seam for tool definitions: each entry is one tool already serialised as the template's
     * `tool | tojson` would print it (tojson_dumps() in api/tojson.h). NULL / 0 = no tools. */
    const char *const *tools_json;
    size_t n_tools;
    /* Render only the messages from this index on (and the generation prompt), each exactly as it
     * renders inside the whole conversation: the part to append to a KV cache that already holds
     * the earlier messages. 0 = everything, including the system / tools preamble. */
    size_t first_message;
} chat_template_options;

/* Appends the rendered conversation to out (opt NULL = no generation prompt, enable_thinking not
 * given, no tools). Returns false, with out unchanged, when:
 *   - n is 0 (both templates read messages[0] and raise);
 *   - a message has no role, or a role other than system/user/assistant/tool. The Jinja templates
 *     silently render nothing for an unknown role; we reject it instead, so that a client's typo
 *     (e.g. "developer") is reported rather than dropped from the prompt without a trace;
 *   - a tool call has a NULL name or arguments_json, or n_tool_calls > 0 with tool_calls NULL;
 *   - n_tools > 0 with tools_json NULL, or a NULL tools_json entry. */
bool chat_template_render(chat_template_family family, const chat_message *msgs, size_t n,
                          const chat_template_options *opt, strbuf *out);

#endif
