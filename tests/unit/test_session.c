/* Tests for engine/session: continue or reset, the staged ids, fitting the context; tools and tool
 * calls in the comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/session.h"

static tokenizer *tok;
static session_model model;

static int setup(void **state)
{
    (void)state;
    char err[256];
    tok = tokenizer_load(getenv("AXLLAMA_TOKENIZER_DIR"), err, sizeof err);
    model = (session_model){.tok = tok,
                            .family = CHAT_TEMPLATE_QWEN3,
                            .max_prefill = 2048,
                            .max_positions = 2559,
                            .default_system = "You are helpful."};
    return tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tokenizer_free(tok);
    return 0;
}

static void assert_ids_of(const idvec *ids, const char *text)
{
    idvec want = {0};
    tokenizer_encode(tok, text, strlen(text), &want);
    if (ids->len != want.len || memcmp(ids->v, want.v, want.len * sizeof *want.v)) {
        strbuf got = {0};
        tokenizer_decode(tok, ids->v, ids->len, &got);
        fail_msg("ids are \"%s\", expected \"%s\"", got.data ? got.data : "", text);
    }
    iv_free(&want);
}

#define MSG(r, c) ((chat_message){.role = (r), .content = (c)})

/* Runs turn 1 ("Hi" -> reply) and commits it; returns the session. */
static void first_turn(session *s, const char *reply, bool continuable)
{
    chat_message msgs[] = {MSG("user", "Hi")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(s, &model, msgs, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    idvec gen = {0};
    tokenizer_encode(tok, reply, strlen(reply), &gen);
    session_commit(s, &plan, gen.v, gen.len, reply, continuable);
    iv_free(&gen);
    session_plan_free(&plan);
}

static void test_first_turn_resets_with_the_default_system_block(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    chat_message msgs[] = {MSG("user", "Hi")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_ids_of(&plan.reset_ids, "<|im_start|>system\nYou are helpful.<|im_end|>\n");
    assert_ids_of(&plan.diff, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    session_plan_free(&plan);
    session_free(&s);
}

static void test_a_request_extending_the_conversation_continues_with_only_the_new_turn(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    first_turn(&s, "Hello! How can I help?", true);
    size_t held = s.kv_ids.len;
    chat_message msgs[] = {MSG("user", "Hi"), MSG("assistant", "Hello! How can I help?"), MSG("user", "Tell me more")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_false(plan.reset);
    assert_ids_of(
        &plan.diff,
        "<|im_end|>\n<|im_start|>user\nTell me more<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    session_commit(&s, &plan, NULL, 0, "", true);
    assert_int_equal(s.kv_ids.len, held + plan.diff.len);
    session_plan_free(&plan);
    session_free(&s);
}

static void test_a_client_copy_of_the_reply_with_its_think_block_still_matches(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    first_turn(&s, "Answer one", true);
    chat_message msgs[] = {MSG("user", "Hi"), MSG("assistant", "<think>\n\n</think>\n\nAnswer one\n"),
                           MSG("user", "Next")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_false(plan.reset);
    session_plan_free(&plan);
    session_free(&s);
}

static void test_an_edited_earlier_message_resets(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    first_turn(&s, "Answer one", true);
    chat_message msgs[] = {MSG("user", "Hi!"), MSG("assistant", "Answer one"), MSG("user", "Next")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    session_plan_free(&plan);
    session_free(&s);
}

static void test_another_system_prompt_resets(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    first_turn(&s, "Answer one", true);
    chat_message msgs[] = {MSG("system", "Be terse."), MSG("user", "Hi"), MSG("assistant", "Answer one"),
                           MSG("user", "Next")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 4, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_ids_of(&plan.reset_ids, "<|im_start|>system\nBe terse.<|im_end|>\n");
    session_plan_free(&plan);
    session_free(&s);
}

static void test_a_turn_that_did_not_end_with_eos_is_not_continued(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    first_turn(&s, "Answer cut by a stop", false);
    chat_message msgs[] = {MSG("user", "Hi"), MSG("assistant", "Answer cut by a stop"), MSG("user", "Next")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    session_plan_free(&plan);
    session_free(&s);
}

static void test_force_reset_never_continues(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    first_turn(&s, "Answer one", true);
    chat_message msgs[] = {MSG("user", "Hi"), MSG("assistant", "Answer one"), MSG("user", "Next")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_RESET, &plan, err, sizeof err));
    assert_true(plan.reset);
    session_plan_free(&plan);
    session_free(&s);
}

static char *words(int n)
{
    strbuf sb = {0};
    for (int i = 0; i < n; i++)
        sb_puts(&sb, " apple");
    return sb_steal(&sb);
}

static void test_a_long_history_drops_the_oldest_turns_to_fit(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    char *big = words(800); /* ~800 tokens per message: three do not fit */
    chat_message msgs[] = {MSG("user", big), MSG("assistant", big), MSG("user", big), MSG("assistant", "ok"),
                           MSG("user", "last question")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 5, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_int_equal(plan.dropped, 2); /* the first user message and its reply */
    size_t budget = (2048 - plan.reset_ids.len) / 128 * 128;
    assert_true(plan.diff.len <= budget);
    assert_string_equal(plan.msgs[plan.n_msgs - 1].content, "last question");
    session_plan_free(&plan);
    session_free(&s);
    free(big);
}

/* A long history keeps the newest turns that fit in the retained share of the window (half by
 * default): keeping one turn more would pass it. */
static void test_a_history_of_many_turns_keeps_the_most_that_fit_in_the_retained_share(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    enum { TURNS = 3000 };
    chat_message *msgs = calloc(2 * TURNS + 1, sizeof *msgs);
    char(*texts)[16] = calloc(TURNS, sizeof *texts);
    for (int i = 0; i < TURNS; i++) {
        snprintf(texts[i], sizeof texts[i], "question %d", i);
        msgs[2 * i] = MSG("user", texts[i]);
        msgs[2 * i + 1] = MSG("assistant", "an answer");
    }
    msgs[2 * TURNS] = MSG("user", "last question");
    size_t n = 2 * TURNS + 1;
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, n, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_true(plan.dropped > 0 && plan.dropped % 2 == 0); /* whole turns */
    assert_string_equal(plan.msgs[plan.n_msgs - 1].content, "last question");
    size_t kept = plan.reset_ids.len + plan.diff.len;
    assert_true(kept <= 2048 / 2);
    /* one more turn (the newest of the dropped ones) would pass the retained share: with the whole
     * window allowed it fits without dropping anything, and takes more than half of it */
    session_model whole = model;
    whole.retain_ratio = 1;
    session_plan more;
    size_t keep_from = plan.dropped - 2;
    assert_true(session_plan_chat(&s, &whole, msgs + keep_from, n - keep_from, 0, PLAN_ANY, &more, err, sizeof err));
    assert_int_equal(more.dropped, 0);
    assert_true(more.reset_ids.len + more.diff.len > 2048 / 2);
    session_plan_free(&more);
    session_plan_free(&plan);
    session_free(&s);
    free(msgs);
    free(texts);
}

/* With retain_ratio 1 the fitting refills the whole window: exactly the newest turns that fit. */
static void test_retain_ratio_one_keeps_the_most_that_fit_in_the_whole_window(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    session_model whole = model;
    whole.retain_ratio = 1;
    enum { TURNS = 400 };
    chat_message *msgs = calloc(2 * TURNS + 1, sizeof *msgs);
    char(*texts)[16] = calloc(TURNS, sizeof *texts);
    for (int i = 0; i < TURNS; i++) {
        snprintf(texts[i], sizeof texts[i], "question %d", i);
        msgs[2 * i] = MSG("user", texts[i]);
        msgs[2 * i + 1] = MSG("assistant", "an answer");
    }
    msgs[2 * TURNS] = MSG("user", "last question");
    size_t n = 2 * TURNS + 1;
    session_plan plan, more;
    char err[256];
    assert_true(session_plan_chat(&s, &whole, msgs, n, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.dropped > 0);
    assert_true(plan.reset_ids.len + plan.diff.len > 2048 / 2);
    size_t keep_from = plan.dropped - 2;
    assert_true(session_plan_chat(&s, &whole, msgs + keep_from, n - keep_from, 0, PLAN_ANY, &more, err, sizeof err));
    assert_int_equal(more.dropped, 2); /* one turn more does not fit */
    session_plan_free(&more);
    session_plan_free(&plan);
    session_free(&s);
    free(msgs);
    free(texts);
}

/* A long chat, turn after turn, each reply committed as the runtime would hold it: once the window
 * has filled, a reset leaves room for several turns (no reset on every turn: the context cliff). */
static void test_a_long_chat_resets_at_most_once_every_five_turns_once_the_window_is_full(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    enum { TURNS = 40 };
    char *question = words(60), *answer = words(90);
    chat_message msgs[2 * TURNS];
    int resets = 0, first_full = -1, resets_after_full = 0;
    for (int t = 0; t < TURNS; t++) {
        msgs[2 * t] = MSG("user", question);
        session_plan plan;
        char err[256];
        assert_true(session_plan_chat(&s, &model, msgs, (size_t)(2 * t + 1), 0, PLAN_ANY, &plan, err, sizeof err));
        if (getenv("SESSION_TRACE"))
            fprintf(stderr, "turn %d: %s held %zu diff %zu dropped %zu\n", t, plan.reset ? "reset" : "continue",
                    s.kv_ids.len, plan.diff.len, plan.dropped);
        if (plan.reset) {
            resets++;
            if (t > 0 && first_full < 0)
                first_full = t;
            else if (first_full >= 0)
                resets_after_full++;
        }
        idvec gen = {0};
        tokenizer_encode(tok, answer, strlen(answer), &gen);
        session_commit(&s, &plan, gen.v, gen.len, answer, true);
        iv_free(&gen);
        session_plan_free(&plan);
        msgs[2 * t + 1] = MSG("assistant", answer);
    }
    assert_true(first_full > 0); /* the window did fill */
    int turns_after = TURNS - first_full;
    assert_true(resets_after_full * 5 <= turns_after);
    session_free(&s);
    free(question);
    free(answer);
}

static void test_a_single_turn_too_long_for_the_context_is_an_error(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    char *huge = words(2100);
    chat_message msgs[] = {MSG("user", huge)};
    session_plan plan;
    char err[256] = "";
    assert_false(session_plan_chat(&s, &model, msgs, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_non_null(strstr(err, "too long"));
    session_free(&s);
    free(huge);
}

/* truncate (Ollama's default): a turn too long alone keeps its start and its end (where the
 * question and the generation prompt are) and fits the window. */
static void test_a_turn_too_long_alone_is_cut_in_the_middle_when_truncating(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    session_model cut = model;
    cut.truncate = true;
    char *huge = words(5000);
    strbuf text = {0};
    sb_printf(&text, "Summarise:%s. What is it about?", huge);
    chat_message msgs[] = {MSG("user", text.data)};
    session_plan plan;
    char err[256] = "";
    assert_true(session_plan_chat(&s, &cut, msgs, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.truncated > 2900);
    size_t budget = (2048 - plan.reset_ids.len) / 128 * 128;
    assert_true(plan.diff.len <= budget);
    strbuf got = {0};
    tokenizer_decode(tok, plan.diff.v, plan.diff.len, &got);
    assert_true(!strncmp(got.data, "<|im_start|>user\nSummarise:", 27));
    const char *tail = "What is it about?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_string_equal(got.data + got.len - strlen(tail), tail);
    sb_free(&got);
    sb_free(&text);
    session_plan_free(&plan);
    /* a raw prompt is cut the same way */
    assert_true(session_plan_raw(&cut, huge, &plan, err, sizeof err));
    assert_true(plan.truncated > 0 && plan.diff.len <= 2048);
    session_plan_free(&plan);
    session_free(&s);
    free(huge);
}

static void test_a_continuation_past_the_budget_resets_instead(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    char *long_reply = words(1100), *question = words(900);
    first_turn(&s, long_reply, true);
    /* ~1122 tokens held: the aligned remainder is 896 < 914, so the turn cannot be appended; after
     * a reset the whole conversation (~2030) is over 1920, so the first turn is dropped */
    assert_true(s.kv_ids.len > 1100 && s.kv_ids.len < 1200);
    chat_message msgs[] = {MSG("user", "Hi"), MSG("assistant", long_reply), MSG("user", question)};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_int_equal(plan.dropped, 2);
    session_plan_free(&plan);
    session_free(&s);
    free(long_reply);
    free(question);
}

static void test_raw_prompt_resets_with_an_empty_system_block(void **state)
{
    (void)state;
    session_plan plan;
    char err[256];
    assert_true(session_plan_raw(&model, "plain text", &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_int_equal(plan.reset_ids.len, 0);
    assert_ids_of(&plan.diff, "plain text");
    session s;
    session_init(&s);
    session_commit(&s, &plan, NULL, 0, "x", true);
    assert_false(s.continuable);
    session_plan_free(&plan);
    session_free(&s);
}

static void test_last_turn_only_keeps_the_system_prompt_and_the_last_question(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    chat_message msgs[] = {MSG("system", "Sys."), MSG("user", "one"),    MSG("assistant", "1"),
                           MSG("user", "two"),    MSG("assistant", "2"), MSG("user", "three")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat(&s, &model, msgs, 6, 0, PLAN_RESET_LAST_TURN, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_int_equal(plan.dropped, 4);
    assert_ids_of(&plan.reset_ids, "<|im_start|>system\nSys.<|im_end|>\n");
    assert_ids_of(&plan.diff, "<|im_start|>user\nthree<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    session_plan_free(&plan);
    session_free(&s);
}

static void test_normalize_reply_strips_think_blocks_and_whitespace(void **state)
{
    (void)state;
    char *n = session_normalize_reply("<think>\nabc\n</think>\n\n  Answer \n");
    assert_string_equal(n, "Answer");
    free(n);
}

/* ---- tools and tool calls */

static const char *const TOOLS[] = {"{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}"};
#define TOOL_REPLY "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"

/* Turn 1 with tools: the model answered with a tool call (content "", one parsed call). */
static void tool_turn(session *s)
{
    chat_message msgs[] = {MSG("user", "Weather?")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat_tools(s, &model, msgs, 1, TOOLS, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_ids_of(
        &plan.reset_ids,
        "<|im_start|>system\nYou are helpful.\n\n# Tools\n\nYou may call one or more functions to assist with "
        "the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}\n</tools>\n\nFor each "
        "function call, return a json object with function name and arguments within <tool_call></tool_call> "
        "XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call><|im_end|>\n");
    idvec gen = {0};
    const char *text = "<think>\n\n</think>\n\n" TOOL_REPLY;
    tokenizer_encode(tok, text, strlen(text), &gen);
    chat_tool_call call = {"get_weather", "{\"city\":\"Paris\"}"};
    session_commit_calls(s, &plan, gen.v, gen.len, "", &call, 1, true);
    iv_free(&gen);
    session_plan_free(&plan);
}

static void test_a_tool_result_continues_after_a_tool_call_reply(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    tool_turn(&s);
    size_t held = s.kv_ids.len;
    /* the client re-serialised the arguments with spaces: still the same call */
    chat_tool_call call = {"get_weather", "{\"city\": \"Paris\"}"};
    chat_message msgs[] = {MSG("user", "Weather?"),
                           {.role = "assistant", .content = "", .tool_calls = &call, .n_tool_calls = 1},
                           MSG("tool", "sunny, 21 C")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat_tools(&s, &model, msgs, 3, TOOLS, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_false(plan.reset);
    assert_ids_of(&plan.diff, "<|im_end|>\n<|im_start|>user\n<tool_response>\nsunny, 21 C\n</tool_response><|im_end|>\n"
                              "<|im_start|>assistant\n<think>\n\n</think>\n\n");
    session_commit(&s, &plan, NULL, 0, "It is sunny.", true);
    assert_int_equal(s.kv_ids.len, held + plan.diff.len);
    assert_int_equal(s.n_msgs, 4);
    assert_int_equal(s.msgs[0].n_tool_calls, 0);
    assert_int_equal(s.msgs[1].n_tool_calls, 1);
    session_plan_free(&plan);
    session_free(&s);
}

static void test_other_tool_calls_in_the_history_reset(void **state)
{
    (void)state;
    const chat_tool_call other_args = {"get_weather", "{\"city\": \"Rome\"}"},
                         other_name = {"get_time", "{\"city\": \"Paris\"}"};
    const chat_tool_call two[] = {{"get_weather", "{\"city\":\"Paris\"}"}, {"get_weather", "{}"}};
    struct {
        const chat_tool_call *calls;
        size_t n;
        const char *content;
    } variants[] = {{&other_args, 1, ""}, {&other_name, 1, ""}, {two, 2, ""}, {NULL, 0, ""}, {NULL, 0, TOOL_REPLY}};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        session s;
        session_init(&s);
        tool_turn(&s);
        chat_message msgs[] = {MSG("user", "Weather?"),
                               {.role = "assistant",
                                .content = variants[i].content,
                                .tool_calls = variants[i].calls,
                                .n_tool_calls = variants[i].n},
                               MSG("tool", "sunny")};
        session_plan plan;
        char err[256];
        assert_true(session_plan_chat_tools(&s, &model, msgs, 3, TOOLS, 1, 0, PLAN_ANY, &plan, err, sizeof err));
        if (!plan.reset)
            fail_msg("variant %zu continued", i);
        session_plan_free(&plan);
        session_free(&s);
    }
}

static void test_another_tool_list_resets(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    tool_turn(&s);
    chat_tool_call call = {"get_weather", "{\"city\":\"Paris\"}"};
    chat_message msgs[] = {MSG("user", "Weather?"),
                           {.role = "assistant", .content = "", .tool_calls = &call, .n_tool_calls = 1},
                           MSG("tool", "sunny")};
    const char *const other[] = {"{\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}"};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat_tools(&s, &model, msgs, 3, other, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    session_plan_free(&plan);
    /* no tools at all: reset too (the system block has no tool list) */
    assert_true(session_plan_chat(&s, &model, msgs, 3, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_ids_of(&plan.reset_ids, "<|im_start|>system\nYou are helpful.<|im_end|>\n");
    session_plan_free(&plan);
    session_free(&s);
}

static void test_a_reset_renders_tool_calls_and_results_of_the_history(void **state)
{
    (void)state;
    session s;
    session_init(&s);
    chat_tool_call call = {"get_weather", "{\"city\": \"Paris\"}"};
    chat_message msgs[] = {MSG("user", "Weather?"),
                           {.role = "assistant", .content = "Let me look.", .tool_calls = &call, .n_tool_calls = 1},
                           MSG("tool", "sunny")};
    session_plan plan;
    char err[256];
    assert_true(session_plan_chat_tools(&s, &model, msgs, 3, TOOLS, 1, 0, PLAN_ANY, &plan, err, sizeof err));
    assert_true(plan.reset);
    assert_ids_of(&plan.diff,
                  "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\nLet me look.\n<tool_call>\n"
                  "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
                  "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n"
                  "<|im_start|>assistant\n<think>\n\n</think>\n\n");
    assert_int_equal(plan.n_msgs, 3);
    assert_int_equal(plan.msgs[1].n_tool_calls, 1);
    assert_string_equal(plan.msgs[1].tool_calls[0].arguments_json, "{\"city\": \"Paris\"}");
    session_plan_free(&plan);
    session_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_turn_resets_with_the_default_system_block),
        cmocka_unit_test(test_a_request_extending_the_conversation_continues_with_only_the_new_turn),
        cmocka_unit_test(test_a_client_copy_of_the_reply_with_its_think_block_still_matches),
        cmocka_unit_test(test_an_edited_earlier_message_resets),
        cmocka_unit_test(test_another_system_prompt_resets),
        cmocka_unit_test(test_a_turn_that_did_not_end_with_eos_is_not_continued),
        cmocka_unit_test(test_force_reset_never_continues),
        cmocka_unit_test(test_a_long_history_drops_the_oldest_turns_to_fit),
        cmocka_unit_test(test_a_history_of_many_turns_keeps_the_most_that_fit_in_the_retained_share),
        cmocka_unit_test(test_retain_ratio_one_keeps_the_most_that_fit_in_the_whole_window),
        cmocka_unit_test(test_a_long_chat_resets_at_most_once_every_five_turns_once_the_window_is_full),
        cmocka_unit_test(test_a_turn_too_long_alone_is_cut_in_the_middle_when_truncating),
        cmocka_unit_test(test_a_single_turn_too_long_for_the_context_is_an_error),
        cmocka_unit_test(test_a_continuation_past_the_budget_resets_instead),
        cmocka_unit_test(test_raw_prompt_resets_with_an_empty_system_block),
        cmocka_unit_test(test_last_turn_only_keeps_the_system_prompt_and_the_last_question),
        cmocka_unit_test(test_normalize_reply_strips_think_blocks_and_whitespace),
        cmocka_unit_test(test_a_tool_result_continues_after_a_tool_call_reply),
        cmocka_unit_test(test_other_tool_calls_in_the_history_reset),
        cmocka_unit_test(test_another_tool_list_resets),
        cmocka_unit_test(test_a_reset_renders_tool_calls_and_results_of_the_history),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
