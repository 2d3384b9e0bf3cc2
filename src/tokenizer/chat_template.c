/* chat_template: renders a conversation byte-identically to the Qwen3 and Qwen2.5 Jinja chat templates
 * (as Hugging Face transformers renders them), by following each template's control flow in C.
 * Python string semantics the templates rely on (split, strip('\n'), `in`, empty-string falsiness)
 * are reproduced on byte spans. */
#include "tokenizer/chat_template.h"

#include <string.h>

/* A view of part of a NUL-terminated string: no copies are made while rendering. */
typedef struct {
    const char *ptr;
    size_t len;
} text_span;

static const char QWEN_TOOLS_PREAMBLE[] =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";

static const char QWEN3_TOOLS_EPILOGUE[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";
/* The Qwen2.5 template writes `{{` and `}}` inside a Jinja string literal, so they are printed as is. */
static const char QWEN25_TOOLS_EPILOGUE[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}}\n</tool_call><|im_end|>\n";

static text_span span_of(const char *s)
{
    text_span span = {s ? s : "", s ? strlen(s) : 0};
    return span;
}

static void sb_put_span(strbuf *out, text_span span)
{
    sb_append(out, span.ptr, span.len);
}

static bool role_is(const chat_message *msg, const char *role)
{
    return strcmp(msg->role, role) == 0;
}

static bool role_is_known(const char *role)
{
    return strcmp(role, "system") == 0 || strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0 ||
           strcmp(role, "tool") == 0;
}

/* Python's s.lstrip('\n'). */
static text_span lstrip_newlines(text_span s)
{
    while (s.len > 0 && s.ptr[0] == '\n') {
        s.ptr++;
        s.len--;
    }
    return s;
}

/* Python's s.rstrip('\n'). */
static text_span rstrip_newlines(text_span s)
{
    while (s.len > 0 && s.ptr[s.len - 1] == '\n')
        s.len--;
    return s;
}

/* Python's s.strip('\n'). */
static text_span strip_newlines(text_span s)
{
    return rstrip_newlines(lstrip_newlines(s));
}

static bool starts_with(text_span s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

static bool ends_with(text_span s, const char *suffix)
{
    size_t n = strlen(suffix);
    return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

/* Offset of the first occurrence of needle in s, or s.len + 1 if absent. */
static size_t find_first(text_span s, const char *needle)
{
    const char *hit = memmem(s.ptr, s.len, needle, strlen(needle));
    return hit ? (size_t)(hit - s.ptr) : s.len + 1;
}

/* s.split(sep)[-1]: the text after the last occurrence of sep (all of s if sep is absent).
 * The separators used here ("<think>", "</think>") cannot overlap themselves, so the last
 * occurrence is where Python's left-to-right split makes its last cut. */
static text_span after_last(text_span s, const char *sep)
{
    size_t sep_len = strlen(sep);
    text_span rest = s;
    for (;;) {
        size_t at = find_first(rest, sep);
        if (at > rest.len)
            return rest;
        rest.ptr += at + sep_len;
        rest.len -= at + sep_len;
    }
}

/* s.split(sep)[0]: the text before the first occurrence of sep (all of s if sep is absent). */
static text_span before_first(text_span s, const char *sep)
{
    size_t at = find_first(s, sep);
    if (at <= s.len)
        s.len = at;
    return s;
}

/* Everything chat_template_render refuses, checked before anything is written. */
static bool input_is_renderable(const chat_message *msgs, size_t n, const chat_template_options *opt)
{
    if (opt->n_tools > 0 && !opt->tools_json)
        return false;
    for (size_t t = 0; t < opt->n_tools; t++)
        if (!opt->tools_json[t])
            return false;
    if (!msgs || n == 0)
        return false; /* both templates read messages[0] and raise on an empty list */
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !role_is_known(msgs[i].role))
            return false;
        if (msgs[i].n_tool_calls > 0 && !msgs[i].tool_calls)
            return false;
        for (size_t k = 0; k < msgs[i].n_tool_calls; k++)
            if (!msgs[i].tool_calls[k].name || !msgs[i].tool_calls[k].arguments_json)
                return false;
    }
    return true;
}

/* The `for tool in tools: "\n" + tool | tojson` part shared by both templates. */
static void render_tool_list(const chat_template_options *opt, strbuf *out)
{
    for (size_t i = 0; i < opt->n_tools; i++) {
        sb_putc(out, '\n');
        sb_puts(out, opt->tools_json[i]);
    }
}

/* One tool message: consecutive tool messages share one user block (identical in both templates). */
static void render_tool_message(const chat_message *msgs, size_t n, size_t i, strbuf *out)
{
    if (i == 0 || !role_is(&msgs[i - 1], "tool"))
        sb_puts(out, "<|im_start|>user");
    sb_puts(out, "\n<tool_response>\n");
    sb_put_span(out, span_of(msgs[i].content));
    sb_puts(out, "\n</tool_response>");
    if (i + 1 == n || !role_is(&msgs[i + 1], "tool"))
        sb_puts(out, "<|im_end|>\n");
}

static void render_plain_block(const chat_message *msg, strbuf *out)
{
    sb_puts(out, "<|im_start|>");
    sb_puts(out, msg->role);
    sb_putc(out, '\n');
    sb_put_span(out, span_of(msg->content));
    sb_puts(out, "<|im_end|>\n");
}

/* `<tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>` */
static void render_tool_call(const chat_tool_call *call, strbuf *out)
{
    sb_puts(out, "<tool_call>\n{\"name\": \"");
    sb_puts(out, call->name);
    sb_puts(out, "\", \"arguments\": ");
    sb_puts(out, call->arguments_json);
    sb_puts(out, "}\n</tool_call>");
}

/* ---- Qwen3 ---- */

/* The template's reverse scan: index of the last user message that is not a wrapped tool response
 * (`<tool_response>...</tool_response>`); n - 1 if there is none. */
static size_t qwen3_last_query_index(const chat_message *msgs, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        if (!role_is(&msgs[i], "user"))
            continue;
        text_span content = span_of(msgs[i].content);
        if (!(starts_with(content, "<tool_response>") && ends_with(content, "</tool_response>")))
            return i;
    }
    return n - 1;
}

static void qwen3_render_assistant(const chat_message *msgs, size_t n, size_t i, size_t last_query_index, strbuf *out)
{
    const chat_message *msg = &msgs[i];
    text_span content = span_of(msg->content);
    text_span reasoning = {"", 0};
    if (msg->reasoning_content) {
        reasoning = span_of(msg->reasoning_content);
    } else if (find_first(content, "</think>") <= content.len) {
        text_span original = content;
        content = lstrip_newlines(after_last(original, "</think>"));
        reasoning = lstrip_newlines(after_last(rstrip_newlines(before_first(original, "</think>")), "<think>"));
    }

    bool is_last = i + 1 == n;
    sb_puts(out, "<|im_start|>assistant\n");
    if (i > last_query_index && (is_last || reasoning.len > 0)) {
        sb_puts(out, "<think>\n");
        sb_put_span(out, strip_newlines(reasoning));
        sb_puts(out, "\n</think>\n\n");
        sb_put_span(out, lstrip_newlines(content));
    } else {
        sb_put_span(out, content);
    }

    for (size_t k = 0; k < msg->n_tool_calls; k++) {
        /* `(loop.first and content) or (not loop.first)`: tests the content before lstrip. */
        if (k > 0 || content.len > 0)
            sb_putc(out, '\n');
        render_tool_call(&msg->tool_calls[k], out);
    }
    sb_puts(out, "<|im_end|>\n");
}

static void render_qwen3(const chat_message *msgs, size_t n, const chat_template_options *opt, strbuf *out)
{
    bool first_is_system = role_is(&msgs[0], "system");
    if (opt->first_message > 0) {
        /* the preamble is already in the cache */
    } else if (opt->n_tools > 0) {
        sb_puts(out, "<|im_start|>system\n");
        if (first_is_system) {
            sb_put_span(out, span_of(msgs[0].content));
            sb_puts(out, "\n\n");
        }
        sb_puts(out, QWEN_TOOLS_PREAMBLE);
        render_tool_list(opt, out);
        sb_puts(out, QWEN3_TOOLS_EPILOGUE);
    } else if (first_is_system) {
        render_plain_block(&msgs[0], out);
    }

    size_t last_query_index = qwen3_last_query_index(msgs, n);
    for (size_t i = opt->first_message; i < n; i++) {
        const chat_message *msg = &msgs[i];
        if (role_is(msg, "user") || (role_is(msg, "system") && i > 0))
            render_plain_block(msg, out);
        else if (role_is(msg, "assistant"))
            qwen3_render_assistant(msgs, n, i, last_query_index, out);
        else if (role_is(msg, "tool"))
            render_tool_message(msgs, n, i, out);
    }

    if (opt->add_generation_prompt) {
        sb_puts(out, "<|im_start|>assistant\n");
        if (opt->enable_thinking == 0)
            sb_puts(out, "<think>\n\n</think>\n\n");
    }
}

/* ---- Qwen2.5 ---- */

static void render_qwen25(const chat_message *msgs, size_t n, const chat_template_options *opt, strbuf *out)
{
    bool first_is_system = role_is(&msgs[0], "system");
    if (opt->first_message > 0) {
        /* the preamble is already in the cache */
    } else if (opt->n_tools > 0) {
        sb_puts(out, "<|im_start|>system\n");
        sb_put_span(out, first_is_system ? span_of(msgs[0].content) : span_of(CHAT_DEFAULT_SYSTEM_PROMPT));
        sb_puts(out, "\n\n");
        sb_puts(out, QWEN_TOOLS_PREAMBLE);
        render_tool_list(opt, out);
        sb_puts(out, QWEN25_TOOLS_EPILOGUE);
    } else if (first_is_system) {
        render_plain_block(&msgs[0], out);
    } else {
        sb_puts(out, "<|im_start|>system\n" CHAT_DEFAULT_SYSTEM_PROMPT "<|im_end|>\n");
    }

    for (size_t i = opt->first_message; i < n; i++) {
        const chat_message *msg = &msgs[i];
        bool is_assistant = role_is(msg, "assistant");
        if (role_is(msg, "user") || (role_is(msg, "system") && i > 0) || (is_assistant && msg->n_tool_calls == 0)) {
            render_plain_block(msg, out);
        } else if (is_assistant) {
            sb_puts(out, "<|im_start|>assistant");
            text_span content = span_of(msg->content);
            if (content.len > 0) {
                sb_putc(out, '\n');
                sb_put_span(out, content);
            }
            for (size_t k = 0; k < msg->n_tool_calls; k++) {
                sb_putc(out, '\n');
                render_tool_call(&msg->tool_calls[k], out);
            }
            sb_puts(out, "<|im_end|>\n");
        } else if (role_is(msg, "tool")) {
            render_tool_message(msgs, n, i, out);
        }
    }

    if (opt->add_generation_prompt)
        sb_puts(out, "<|im_start|>assistant\n");
}

bool chat_template_render(chat_template_family family, const chat_message *msgs, size_t n,
                          const chat_template_options *opt, strbuf *out)
{
    static const chat_template_options defaults = {.add_generation_prompt = false, .enable_thinking = -1};
    if (!opt)
        opt = &defaults;
    if (!input_is_renderable(msgs, n, opt))
        return false;
    switch (family) {
    case CHAT_TEMPLATE_QWEN3: render_qwen3(msgs, n, opt, out); return true;
    case CHAT_TEMPLATE_QWEN25: render_qwen25(msgs, n, opt, out); return true;
    }
    return false;
}
