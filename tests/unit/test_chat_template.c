/* Unit tests of chat_template: one behaviour of the Qwen3 / Qwen2.5 Jinja templates per test, each
 * checked against a literal expected rendering. (Byte identity with the real templates over many
 * generated conversations is tests/template/chat_template_test.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/buf.h"
#include "tokenizer/chat_template.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const chat_template_options GEN_PROMPT = {.add_generation_prompt = true, .enable_thinking = -1};
static const chat_template_options NO_GEN_PROMPT = {.add_generation_prompt = false, .enable_thinking = -1};

static void assert_renders(chat_template_family family, const chat_message *msgs, size_t n,
                           const chat_template_options *opt, const char *expected)
{
    strbuf out = {0};
    assert_true(chat_template_render(family, msgs, n, opt, &out));
    char *text = sb_steal(&out);
    assert_string_equal(text, expected);
    free(text);
}

/* ---- Qwen3 ---- */

static void test_qwen3_system_and_user_with_generation_prompt(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = "Hi"}};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &GEN_PROMPT,
                   "<|im_start|>system\nBe brief.<|im_end|>\n"
                   "<|im_start|>user\nHi<|im_end|>\n"
                   "<|im_start|>assistant\n");
}

static void test_qwen3_no_generation_prompt_and_no_default_system(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "Hi"}};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT, "<|im_start|>user\nHi<|im_end|>\n");
}

static void test_qwen3_enable_thinking_false_adds_empty_think_block(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "Hi"}};
    const chat_template_options opt = {.add_generation_prompt = true, .enable_thinking = 0};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &opt,
                   "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

static void test_qwen3_enable_thinking_true_adds_nothing(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "Hi"}};
    const chat_template_options opt = {.add_generation_prompt = true, .enable_thinking = 1};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &opt,
                   "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

static void test_qwen3_enable_thinking_false_without_generation_prompt_adds_nothing(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "Hi"}};
    const chat_template_options opt = {.add_generation_prompt = false, .enable_thinking = 0};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &opt, "<|im_start|>user\nHi<|im_end|>\n");
}

static void test_qwen3_earlier_turns_drop_think_blocks(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q1"},
        {.role = "assistant", .content = "<think>\nr1\n</think>\n\na1"},
        {.role = "user", .content = "q2"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &GEN_PROMPT,
                   "<|im_start|>user\nq1<|im_end|>\n"
                   "<|im_start|>assistant\na1<|im_end|>\n"
                   "<|im_start|>user\nq2<|im_end|>\n"
                   "<|im_start|>assistant\n");
}

static void test_qwen3_last_assistant_gets_think_block_even_without_reasoning(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "q"}, {.role = "assistant", .content = "answer"}};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\n\n</think>\n\nanswer<|im_end|>\n");
}

static void test_qwen3_think_split_strips_only_newlines(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "\n<think>\n\n r \n\n</think>\n\n answer \n"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\n r \n</think>\n\n answer \n<|im_end|>\n");
}

static void test_qwen3_think_split_uses_first_close_and_last_open_tag(void **state)
{
    (void)state;
    /* content = split('</think>')[-1]; reasoning = split('</think>')[0].split('<think>')[-1] */
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "<think>x<think>y</think>mid</think>end"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\ny\n</think>\n\nend<|im_end|>\n");
}

static void test_qwen3_close_tag_without_open_tag_takes_text_before_as_reasoning(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "thought</think>answer"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\nthought\n</think>\n\nanswer<|im_end|>\n");
}

static void test_qwen3_open_tag_without_close_tag_is_plain_content(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "<think>unfinished"},
        {.role = "user", .content = "q2"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>unfinished<|im_end|>\n"
                   "<|im_start|>user\nq2<|im_end|>\n");
}

static void test_qwen3_explicit_reasoning_content_keeps_content_unsplit(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "\n<think>t</think>a", .reasoning_content = "\ngiven\n"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\ngiven\n</think>\n\n<think>t</think>a<|im_end|>\n");
}

static void test_qwen3_empty_reasoning_content_is_falsy_for_non_last_turn(void **state)
{
    (void)state;
    /* After the last query, a non-final assistant turn gets a think block only if its reasoning
     * is non-empty; "" given explicitly also bypasses the <think> split. */
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "<think>t</think>a", .reasoning_content = ""},
        {.role = "tool", .content = "r"},
        {.role = "assistant", .content = "b", .reasoning_content = "why"},
        {.role = "tool", .content = "r2"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>t</think>a<|im_end|>\n"
                   "<|im_start|>user\n<tool_response>\nr\n</tool_response><|im_end|>\n"
                   "<|im_start|>assistant\n<think>\nwhy\n</think>\n\nb<|im_end|>\n"
                   "<|im_start|>user\n<tool_response>\nr2\n</tool_response><|im_end|>\n");
}

static void test_qwen3_wrapped_tool_response_user_is_not_last_query(void **state)
{
    (void)state;
    /* The last query is "q", so the assistant turn after it keeps its reasoning although a
     * user message (a wrapped tool response) follows. */
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "<think>r</think>a"},
        {.role = "user", .content = "<tool_response>\nx\n</tool_response>"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"
                   "<|im_start|>user\n<tool_response>\nx\n</tool_response><|im_end|>\n");
}

static void test_qwen3_half_wrapped_user_is_a_query(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "<think>r</think>a"},
        {.role = "user", .content = "<tool_response>x"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\na<|im_end|>\n"
                   "<|im_start|>user\n<tool_response>x<|im_end|>\n");
}

static void test_qwen3_no_real_query_makes_last_index_the_last_message(void **state)
{
    (void)state;
    /* Only wrapped tool responses: last_query_index stays at n - 1, so no turn is "after" it. */
    const chat_message msgs[] = {
        {.role = "user", .content = "<tool_response>x</tool_response>"},
        {.role = "assistant", .content = "<think>r</think>a"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n"
                   "<|im_start|>assistant\na<|im_end|>\n");
}

static void test_qwen3_system_not_first_is_a_normal_block(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "system", .content = "late"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n<|im_start|>system\nlate<|im_end|>\n");
}

static void test_qwen3_consecutive_tool_messages_share_one_user_block(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "tool", .content = "r1"},
        {.role = "tool", .content = "r2"},
        {.role = "user", .content = "q"},
        {.role = "tool", .content = "r3"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response>"
                   "<|im_end|>\n"
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>user\n<tool_response>\nr3\n</tool_response><|im_end|>\n");
}

static void test_qwen3_tool_calls_render_arguments_verbatim(void **state)
{
    (void)state;
    const chat_tool_call calls[] = {{"get_weather", "{\"city\":\"Paris\"}"}, {"now", "{}"}};
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "Checking.", .tool_calls = calls, .n_tool_calls = 2},
        {.role = "user", .content = "q2"},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\nChecking.\n"
                   "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call>\n"
                   "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call><|im_end|>\n"
                   "<|im_start|>user\nq2<|im_end|>\n");
}

static void test_qwen3_tool_call_after_empty_content_has_no_leading_newline(void **state)
{
    (void)state;
    const chat_tool_call calls[] = {{"f", "{}"}};
    const chat_message msgs[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = NULL, .tool_calls = calls, .n_tool_calls = 1},
    };
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>\n\n</think>\n\n"
                   "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>\n");
}

static void test_qwen3_tools_preamble_includes_first_system_message(void **state)
{
    (void)state;
    const char *tools[] = {"{\"name\": \"f\"}", "{\"name\": \"g\"}"};
    const chat_message msgs[] = {{.role = "system", .content = "Sys."}, {.role = "user", .content = "q"}};
    const chat_template_options opt = {
        .add_generation_prompt = true, .enable_thinking = -1, .tools_json = tools, .n_tools = 2};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &opt,
                   "<|im_start|>system\nSys.\n\n# Tools\n\nYou may call one or more functions to assist with the "
                   "user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
                   "<tools>\n{\"name\": \"f\"}\n{\"name\": \"g\"}\n</tools>\n\nFor each function call, return a "
                   "json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
                   "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
                   "<|im_end|>\n"
                   "<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n");
}

static void test_qwen3_tools_preamble_without_system_message(void **state)
{
    (void)state;
    const char *tools[] = {"{}"};
    const chat_message msgs[] = {{.role = "user", .content = "q"}};
    const chat_template_options opt = {
        .add_generation_prompt = false, .enable_thinking = -1, .tools_json = tools, .n_tools = 1};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &opt,
                   "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user "
                   "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
                   "<tools>\n{}\n</tools>\n\nFor each function call, return a json object with function name and "
                   "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                   "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
                   "<|im_start|>user\nq<|im_end|>\n");
}

static void test_qwen3_null_content_renders_empty(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = NULL}, {.role = "tool", .content = NULL}};
    assert_renders(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>user\n<|im_end|>\n<|im_start|>user\n<tool_response>\n\n</tool_response><|im_end|>\n");
}

/* ---- Qwen2.5 ---- */

static void test_qwen25_inserts_default_system_block(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "Hi"}};
    assert_renders(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &GEN_PROMPT,
                   "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                   "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

static void test_qwen25_given_system_replaces_default(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "system", .content = "S"}, {.role = "user", .content = "Hi"}};
    assert_renders(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

static void test_qwen25_keeps_assistant_think_and_ignores_enable_thinking(void **state)
{
    (void)state;
    const chat_message msgs[] = {
        {.role = "system", .content = "S"},
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "<think>r</think>a", .reasoning_content = "ignored"},
        {.role = "system", .content = "late"},
    };
    const chat_template_options opt = {.add_generation_prompt = true, .enable_thinking = 0};
    assert_renders(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &opt,
                   "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
                   "<|im_start|>assistant\n<think>r</think>a<|im_end|>\n<|im_start|>system\nlate<|im_end|>\n"
                   "<|im_start|>assistant\n");
}

static void test_qwen25_tool_calls_and_grouped_tool_messages(void **state)
{
    (void)state;
    const chat_tool_call calls[] = {{"f", "{\"a\": 1}"}, {"g", "{}"}};
    const chat_message msgs[] = {
        {.role = "system", .content = "S"},
        {.role = "assistant", .content = "", .tool_calls = calls, .n_tool_calls = 2},
        {.role = "tool", .content = "r1"},
        {.role = "tool", .content = "r2"},
        {.role = "assistant", .content = "c", .tool_calls = calls, .n_tool_calls = 1},
    };
    assert_renders(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &NO_GEN_PROMPT,
                   "<|im_start|>system\nS<|im_end|>\n"
                   "<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n"
                   "<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool_call><|im_end|>\n"
                   "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response>"
                   "<|im_end|>\n"
                   "<|im_start|>assistant\nc\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n"
                   "</tool_call><|im_end|>\n");
}

static void test_qwen25_tools_preamble_uses_default_system_and_double_braces(void **state)
{
    (void)state;
    const char *tools[] = {"{\"name\": \"f\"}"};
    const chat_message msgs[] = {{.role = "user", .content = "q"}};
    const chat_template_options opt = {
        .add_generation_prompt = false, .enable_thinking = -1, .tools_json = tools, .n_tools = 1};
    assert_renders(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &opt,
                   "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n"
                   "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are "
                   "provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"name\": \"f\"}\n"
                   "</tools>\n\nFor each function call, return a json object with function name and arguments "
                   "within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, "
                   "\"arguments\": <args-json-object>}}\n</tool_call><|im_end|>\n"
                   "<|im_start|>user\nq<|im_end|>\n");
}

/* ---- refusals and buffer handling ---- */

static void assert_refused(chat_template_family family, const chat_message *msgs, size_t n,
                           const chat_template_options *opt)
{
    strbuf out = {0};
    sb_puts(&out, "before");
    assert_false(chat_template_render(family, msgs, n, opt, &out));
    assert_string_equal(out.data, "before");
    sb_free(&out);
}

static void test_unknown_role_is_refused_and_output_unchanged(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "q"}, {.role = "developer", .content = "x"}};
    assert_refused(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &GEN_PROMPT);
    assert_refused(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &GEN_PROMPT);
}

static void test_missing_role_is_refused(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "q"}, {.role = NULL, .content = "x"}};
    assert_refused(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &GEN_PROMPT);
    assert_refused(CHAT_TEMPLATE_QWEN25, msgs, N_ELEMS(msgs), &GEN_PROMPT);
}

static void test_empty_conversation_is_refused(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "q"}};
    assert_refused(CHAT_TEMPLATE_QWEN3, msgs, 0, &GEN_PROMPT);
    assert_refused(CHAT_TEMPLATE_QWEN25, msgs, 0, &GEN_PROMPT);
}

static void test_tool_call_without_name_is_refused(void **state)
{
    (void)state;
    const chat_tool_call calls[] = {{NULL, "{}"}};
    const chat_message msgs[] = {{.role = "assistant", .content = "a", .tool_calls = calls, .n_tool_calls = 1}};
    assert_refused(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &GEN_PROMPT);
}

static void test_null_tool_definition_is_refused(void **state)
{
    (void)state;
    const char *tools[] = {NULL};
    const chat_message msgs[] = {{.role = "user", .content = "q"}};
    const chat_template_options opt = {.enable_thinking = -1, .tools_json = tools, .n_tools = 1};
    assert_refused(CHAT_TEMPLATE_QWEN3, msgs, N_ELEMS(msgs), &opt);
}

static void test_render_appends_to_existing_output(void **state)
{
    (void)state;
    const chat_message msgs[] = {{.role = "user", .content = "q"}};
    strbuf out = {0};
    sb_puts(&out, "prefix|");
    assert_true(chat_template_render(CHAT_TEMPLATE_QWEN3, msgs, 1, NULL, &out));
    assert_string_equal(out.data, "prefix|<|im_start|>user\nq<|im_end|>\n");
    sb_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3_system_and_user_with_generation_prompt),
        cmocka_unit_test(test_qwen3_no_generation_prompt_and_no_default_system),
        cmocka_unit_test(test_qwen3_enable_thinking_false_adds_empty_think_block),
        cmocka_unit_test(test_qwen3_enable_thinking_true_adds_nothing),
        cmocka_unit_test(test_qwen3_enable_thinking_false_without_generation_prompt_adds_nothing),
        cmocka_unit_test(test_qwen3_earlier_turns_drop_think_blocks),
        cmocka_unit_test(test_qwen3_last_assistant_gets_think_block_even_without_reasoning),
        cmocka_unit_test(test_qwen3_think_split_strips_only_newlines),
        cmocka_unit_test(test_qwen3_think_split_uses_first_close_and_last_open_tag),
        cmocka_unit_test(test_qwen3_close_tag_without_open_tag_takes_text_before_as_reasoning),
        cmocka_unit_test(test_qwen3_open_tag_without_close_tag_is_plain_content),
        cmocka_unit_test(test_qwen3_explicit_reasoning_content_keeps_content_unsplit),
        cmocka_unit_test(test_qwen3_empty_reasoning_content_is_falsy_for_non_last_turn),
        cmocka_unit_test(test_qwen3_wrapped_tool_response_user_is_not_last_query),
        cmocka_unit_test(test_qwen3_half_wrapped_user_is_a_query),
        cmocka_unit_test(test_qwen3_no_real_query_makes_last_index_the_last_message),
        cmocka_unit_test(test_qwen3_system_not_first_is_a_normal_block),
        cmocka_unit_test(test_qwen3_consecutive_tool_messages_share_one_user_block),
        cmocka_unit_test(test_qwen3_tool_calls_render_arguments_verbatim),
        cmocka_unit_test(test_qwen3_tool_call_after_empty_content_has_no_leading_newline),
        cmocka_unit_test(test_qwen3_tools_preamble_includes_first_system_message),
        cmocka_unit_test(test_qwen3_tools_preamble_without_system_message),
        cmocka_unit_test(test_qwen3_null_content_renders_empty),
        cmocka_unit_test(test_qwen25_inserts_default_system_block),
        cmocka_unit_test(test_qwen25_given_system_replaces_default),
        cmocka_unit_test(test_qwen25_keeps_assistant_think_and_ignores_enable_thinking),
        cmocka_unit_test(test_qwen25_tool_calls_and_grouped_tool_messages),
        cmocka_unit_test(test_qwen25_tools_preamble_uses_default_system_and_double_braces),
        cmocka_unit_test(test_unknown_role_is_refused_and_output_unchanged),
        cmocka_unit_test(test_missing_role_is_refused),
        cmocka_unit_test(test_empty_conversation_is_refused),
        cmocka_unit_test(test_tool_call_without_name_is_refused),
        cmocka_unit_test(test_null_tool_definition_is_refused),
        cmocka_unit_test(test_render_appends_to_existing_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
