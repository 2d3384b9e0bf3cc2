/* fuzz_toolcall: the streamed tool-call parser (src/engine/toolcall.c). The input is the answer
 * text. It is parsed whole (one push) and then in a few arbitrary splits. Properties:
 *   - every split gives the same sequence of events (text runs merged, calls in place);
 *   - without a call, the text passed on is the input, byte for byte;
 *   - with calls, the text passed on is what is left of the input once the blocks and the
 *     whitespace-only runs next to them are taken out: it appears in the input in order
 *     (a subsequence of pieces), and every call's name is non-empty and its arguments are one
 *     compact JSON object that toolcall_parse_block gives back for "{"name": ..., "arguments": ...}";
 *   - text pieces are never empty, and are valid UTF-8 when the input is and every push ends on a
 *     character boundary (as the output filter's pieces do). */
#include <jansson.h>

#include "engine/toolcall.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* What one parse passed on: text runs merged; a call is "\x01name\x02arguments\x03" in the log. */
typedef struct {
    strbuf log;
    strbuf text; /* every text piece, concatenated */
    size_t n_calls;
    bool check_utf8; /* the pieces must be valid UTF-8 */
    bool last_was_text;
} parse_result;

static void on_text(void *user, const char *text, size_t len)
{
    parse_result *r = user;
    FUZZ_CHECK(len > 0, "an empty text piece");
    FUZZ_CHECK(!r->check_utf8 || utf8_is_valid(text, len), "a text piece splits a character: %s", fuzz_show(text, len));
    sb_append(&r->log, text, len);
    sb_append(&r->text, text, len);
    r->last_was_text = true;
}

static void on_call(void *user, const char *name, const char *arguments)
{
    parse_result *r = user;
    FUZZ_CHECK(name && name[0], "a call without a name");
    FUZZ_CHECK(arguments, "a call without arguments");
    json_error_t err;
    json_t *args = json_loads(arguments, JSON_REJECT_DUPLICATES, &err);
    FUZZ_CHECK(json_is_object(args), "arguments are not a JSON object: %s", arguments);
    char *compact = json_dumps(args, JSON_COMPACT);
    FUZZ_CHECK(compact && !strcmp(compact, arguments), "arguments are not compact JSON: %s", arguments);
    free(compact);

    /* the call as a block again parses to itself */
    json_t *block = json_pack("{s:s, s:O}", "name", name, "arguments", args);
    FUZZ_CHECK(block, "cannot rebuild the block of %s", name);
    char *text = json_dumps(block, 0);
    char *name2, *args2;
    FUZZ_CHECK(toolcall_parse_block(text, strlen(text), &name2, &args2), "the rebuilt block does not parse: %s", text);
    FUZZ_CHECK(!strcmp(name2, name) && !strcmp(args2, arguments), "the rebuilt block parses differently: %s", text);
    free(name2);
    free(args2);
    free(text);
    json_decref(block);
    json_decref(args);

    sb_printf(&r->log, "\x01%s\x02%s\x03", name, arguments);
    r->n_calls++;
    r->last_was_text = false;
}

/* Parses data in one push (whole) or in arbitrary chunks; chunks end on character boundaries when
 * char_splits (the engine pushes whole characters), and the text pieces are then checked to be
 * valid UTF-8 when the input is. */
static void parse(const uint8_t *data, size_t size, fuzz_rng *rng, bool whole, bool char_splits, parse_result *r)
{
    memset(r, 0, sizeof *r);
    sb_append(&r->log, "", 0);
    sb_append(&r->text, "", 0);
    r->check_utf8 = (whole || char_splits) && utf8_is_valid((const char *)data, size);
    toolcall_parser *p = toolcall_new(on_text, on_call, r);
    size_t i = 0;
    while (i < size) {
        size_t k = whole ? size : fuzz_rng_chunk(rng, size - i);
        while (char_splits && i + k < size && (data[i + k] & 0xC0) == 0x80)
            k++;
        toolcall_push(p, (const char *)data + i, k);
        if (!whole && fuzz_rng_below(rng, 16) == 0)
            toolcall_push(p, "", 0);
        i += k;
    }
    toolcall_finish(p);
    toolcall_free(p);
}

/* Whether text is the concatenation of pieces of data found in order (greedy: each byte of text
 * matched at the earliest place in data). */
static bool is_subsequence(const char *text, size_t n, const uint8_t *data, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < size && data[j] != (uint8_t)text[i])
            j++;
        if (j == size)
            return false;
        j++;
    }
    return true;
}

static void result_free(parse_result *r)
{
    sb_free(&r->log);
    sb_free(&r->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rng rng = fuzz_rng_of(data, size);
    parse_result whole;
    parse(data, size, &rng, true, false, &whole);
    if (whole.n_calls == 0)
        FUZZ_CHECK(whole.text.len == size && !memcmp(whole.text.data, data, size),
                   "without a call the text is not the input:\n  input %s\n  text  %s",
                   fuzz_show((const char *)data, size), fuzz_show(whole.text.data, whole.text.len));
    else
        FUZZ_CHECK(is_subsequence(whole.text.data, whole.text.len, data, size),
                   "the text is not part of the input:\n  input %s\n  text  %s", fuzz_show((const char *)data, size),
                   fuzz_show(whole.text.data, whole.text.len));

    for (int round = 0; round < 3; round++) {
        parse_result split;
        parse(data, size, &rng, false, round < 2, &split);
        FUZZ_CHECK(split.log.len == whole.log.len && !memcmp(split.log.data, whole.log.data, whole.log.len),
                   "a split parses differently:\n  whole %s\n  split %s", fuzz_show(whole.log.data, whole.log.len),
                   fuzz_show(split.log.data, split.log.len));
        result_free(&split);
    }
    result_free(&whole);
    return 0;
}
