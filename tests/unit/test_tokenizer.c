/* Tests for tokenizer/tokenizer (and its tokenizer_json reader): loading, encode, decode and the
 * streaming decoder, on the real Qwen3 data (AXLLAMA_TOKENIZER_DIR) and on tiny synthetic files.
 * Equivalence with Hugging Face on a large corpus is tests/equiv/tokenizer_equiv.test.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tokenizer/tokenizer.h"

static tokenizer *qwen;

static int load_qwen(void **state)
{
    (void)state;
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    if (!dir) {
        fprintf(stderr, "AXLLAMA_TOKENIZER_DIR is not set\n");
        return -1;
    }
    char err[512];
    qwen = tokenizer_load(dir, err, sizeof err);
    if (!qwen)
        fprintf(stderr, "%s\n", err);
    return qwen ? 0 : -1;
}

static int free_qwen(void **state)
{
    (void)state;
    tokenizer_free(qwen);
    return 0;
}

static void assert_ids(const char *text, size_t n, const int32_t *want, size_t nwant)
{
    idvec ids = {0};
    tokenizer_encode(qwen, text, n, &ids);
    if (ids.len != nwant || memcmp(ids.v, want, nwant * sizeof *want)) {
        fprintf(stderr, "ids of \"%s\":", text);
        for (size_t i = 0; i < ids.len; i++)
            fprintf(stderr, " %d", ids.v[i]);
        fprintf(stderr, "\n");
        fail_msg("ids differ");
    }
    iv_free(&ids);
}

#define ASSERT_IDS(text, ...)                                                      \
    do {                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                     \
        assert_ids(text, sizeof(text) - 1, want_, sizeof want_ / sizeof want_[0]); \
    } while (0)

static void assert_same_ids(const char *a, size_t na, const char *b, size_t nb)
{
    idvec x = {0}, y = {0};
    tokenizer_encode(qwen, a, na, &x);
    tokenizer_encode(qwen, b, nb, &y);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.v, y.v, x.len * sizeof *x.v);
    iv_free(&x);
    iv_free(&y);
}

/* ---- real Qwen3 data ---- */

static void test_qwen3_loads_with_its_special_ids(void **state)
{
    (void)state;
    assert_int_equal(tokenizer_vocab_size(qwen), 151669);
    assert_int_equal(tokenizer_eos_id(qwen), 151645); /* <|im_end|> */
    assert_int_equal(tokenizer_bos_id(qwen), -1);     /* Qwen has none */
    assert_int_equal(tokenizer_pad_id(qwen), 151643); /* <|endoftext|> */
    assert_true(tokenizer_is_special(qwen, 151644));
    assert_false(tokenizer_is_special(qwen, 151667)); /* <think> is added but not special */
    assert_false(tokenizer_is_special(qwen, 9707));
}

/* Reference ids below were produced by Hugging Face tokenizers for the same strings. */
static void test_encode_gives_hf_ids_for_mixed_text(void **state)
{
    (void)state;
    ASSERT_IDS("Hello, world! <|im_start|>user\n\xE4\xBD\xA0\xE5\xA5\xBD 123456 don't   stop\r\n", 9707, 11, 1879, 0,
               220, 151644, 872, 198, 108386, 220, 16, 17, 18, 19, 20, 21, 1513, 944, 256, 2936, 319);
}

static void test_encode_splits_digits_one_by_one(void **state)
{
    (void)state;
    ASSERT_IDS("2024", 17, 15, 17, 19);
}

static void test_encode_finds_added_tokens_special_or_not_inside_words(void **state)
{
    (void)state;
    ASSERT_IDS("a<think>b</think>", 64, 151667, 65, 151668);
    ASSERT_IDS("<|im_end|><|im_end|>", 151645, 151645);
}

static void test_encode_treats_partial_added_token_text_as_plain_text(void **state)
{
    (void)state;
    idvec ids = {0};
    tokenizer_encode(qwen, "<|im_sta", 8, &ids);
    for (size_t i = 0; i < ids.len; i++)
        assert_true(ids.v[i] < 151643);
    iv_free(&ids);
}

static void test_encode_of_empty_text_is_empty(void **state)
{
    (void)state;
    idvec ids = {0};
    tokenizer_encode(qwen, "", 0, &ids);
    assert_int_equal(ids.len, 0);
    iv_free(&ids);
}

static void test_encode_replaces_invalid_utf8_like_a_repaired_string(void **state)
{
    (void)state;
    /* HF only sees strings: the bytes are repaired first, one U+FFFD per maximal invalid subpart */
    assert_same_ids("a\xFF"
                    "b",
                    3,
                    "a\xEF\xBF\xBD"
                    "b",
                    5);
    assert_same_ids("x\xE4\xBD y", 5, "x\xEF\xBF\xBD y", 6);
    assert_same_ids("\xF0\x80z", 3, "\xEF\xBF\xBD\xEF\xBF\xBDz", 7);
    assert_same_ids("end\xE4\xBD", 5, "end\xEF\xBF\xBD", 6);
}

static void test_encode_normalizes_to_nfc(void **state)
{
    (void)state;
    assert_same_ids("cafe\xCC\x81", 6, "caf\xC3\xA9", 5); /* e + combining acute == é */
    assert_same_ids("\xE2\x84\xAB", 3, "\xC3\x85", 2);    /* ANGSTROM SIGN == Å */
}

static void test_encode_does_not_treat_mongolian_vowel_separator_as_space(void **state)
{
    (void)state;
    /* HF (Oniguruma) \s is White_Space, which U+180E left in Unicode 6.3; PCRE2's \s keeps it */
    ASSERT_IDS("a \xE1\xA0\x8E"
               "b",
               64, 86089, 254, 236, 65);
}

static void test_encode_normalizes_with_unicode_9_like_hf(void **state)
{
    (void)state;
    /* U+11D42 (ccc 7, Unicode 10) is unknown to HF's tables: no reordering before U+0301 */
    idvec ids = {0};
    strbuf back = {0};
    const char *text = "x\xCC\x81\xF0\x91\xB5\x82";
    tokenizer_encode(qwen, text, strlen(text), &ids);
    assert_true(tokenizer_decode(qwen, ids.v, ids.len, &back));
    assert_string_equal(back.data, text);
    /* U+1E94A (ccc 7, Unicode 9) is known: reordered before U+0301 */
    iv_clear(&ids);
    sb_clear(&back);
    tokenizer_encode(qwen, "x\xCC\x81\xF0\x9E\xA5\x8A", 7, &ids);
    assert_true(tokenizer_decode(qwen, ids.v, ids.len, &back));
    assert_string_equal(back.data, "x\xF0\x9E\xA5\x8A\xCC\x81");
    iv_free(&ids);
    sb_free(&back);
}

static void test_decode_round_trips_text_and_keeps_special_tokens(void **state)
{
    (void)state;
    const char *text = "<|im_start|>system\nHi \xF0\x9F\x98\x80 \xE4\xBD\xA0\xE5\xA5\xBD<|im_end|>\n";
    idvec ids = {0};
    strbuf out = {0};
    tokenizer_encode(qwen, text, strlen(text), &ids);
    assert_true(tokenizer_decode(qwen, ids.v, ids.len, &out));
    assert_string_equal(out.data, text);
    iv_free(&ids);
    sb_free(&out);
}

static void test_decode_rejects_out_of_range_ids(void **state)
{
    (void)state;
    strbuf out = {0};
    int32_t bad[] = {9707, 151669};
    assert_false(tokenizer_decode(qwen, bad, 2, &out));
    int32_t negative[] = {-1};
    assert_false(tokenizer_decode(qwen, negative, 1, &out));
    assert_int_equal(out.len, 0);
    sb_free(&out);
}

/* The ids of one emoji (4 bytes) come as more than one token: find them. */
static idvec emoji_ids(void)
{
    idvec ids = {0};
    tokenizer_encode(qwen, "\xF0\x9F\xAB\xA8", 4, &ids); /* U+1FAE8: three byte-level tokens */
    assert_true(ids.len >= 2);
    return ids;
}

static void test_decode_of_part_of_a_character_gives_replacement(void **state)
{
    (void)state;
    idvec ids = emoji_ids();
    strbuf out = {0};
    assert_true(tokenizer_decode(qwen, ids.v, 1, &out));
    assert_non_null(strstr(out.data, "\xEF\xBF\xBD"));
    iv_free(&ids);
    sb_free(&out);
}

static void test_decode_stream_holds_a_split_character_until_complete(void **state)
{
    (void)state;
    idvec ids = emoji_ids();
    decode_stream ds;
    decode_stream_init(&ds);
    strbuf out = {0};
    int32_t hello = 9707;
    assert_true(decode_stream_push(&ds, qwen, &hello, 1, &out));
    assert_true(decode_stream_push(&ds, qwen, ids.v, 1, &out));
    assert_string_equal(out.data, "Hello"); /* the partial emoji is held, not emitted, not dropped */
    assert_true(decode_stream_push(&ds, qwen, ids.v + 1, ids.len - 1, &out));
    assert_string_equal(out.data, "Hello\xF0\x9F\xAB\xA8");
    assert_int_equal(ds.nheld, 0);
    iv_free(&ids);
    sb_free(&out);
}

static void test_decode_stream_finish_flushes_a_held_tail_as_replacement(void **state)
{
    (void)state;
    idvec ids = emoji_ids();
    decode_stream ds;
    decode_stream_init(&ds);
    strbuf out = {0};
    assert_true(decode_stream_push(&ds, qwen, ids.v, 1, &out));
    assert_int_equal(out.len, 0);
    decode_stream_finish(&ds, &out);
    assert_string_equal(out.data, "\xEF\xBF\xBD");
    assert_int_equal(ds.nheld, 0);
    iv_free(&ids);
    sb_free(&out);
}

static void test_decode_stream_rejects_out_of_range_ids_and_keeps_state(void **state)
{
    (void)state;
    idvec ids = emoji_ids();
    decode_stream ds;
    decode_stream_init(&ds);
    strbuf out = {0};
    assert_true(decode_stream_push(&ds, qwen, ids.v, 1, &out));
    size_t held = ds.nheld;
    int32_t bad = 999999;
    assert_false(decode_stream_push(&ds, qwen, &bad, 1, &out));
    assert_int_equal(ds.nheld, held);
    iv_free(&ids);
    sb_free(&out);
}

static void test_token_id_finds_added_and_vocab_tokens(void **state)
{
    (void)state;
    assert_int_equal(tokenizer_token_id(qwen, "<|im_end|>"), 151645);
    assert_int_equal(tokenizer_token_id(qwen, "<think>"), 151667);
    assert_int_equal(tokenizer_token_id(qwen, "Hello"), 9707);
    assert_int_equal(tokenizer_token_id(qwen, "\n"), 198);
    assert_int_equal(tokenizer_token_id(qwen, "no such token here"), -1);
}

/* ---- synthetic files ---- */

static char tmpdir[64];

static const char *write_tokenizer(const char *json, const char *config)
{
    strcpy(tmpdir, "/tmp/axllama-tok-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    if (config) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", tmpdir);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(config, f);
        fclose(f);
    }
    return tmpdir;
}

static void remove_tokenizer(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

#define TINY_HEAD                                                                                                \
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":5,\"content\":\"<e>\",\"special\":true}],"                   \
    "\"normalizer\":null,"                                                                                       \
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["                                               \
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|\\\\S+\"},\"behavior\":\"Isolated\",\"invert\":false}," \
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]},"          \
    "\"decoder\":{\"type\":\"ByteLevel\"},"

static tokenizer *load_tiny(const char *model_json)
{
    strbuf json = {0};
    sb_printf(&json, TINY_HEAD "\"model\":%s}", model_json);
    char err[512];
    tokenizer *t = tokenizer_load(write_tokenizer(json.data, "{\"eos_token\":{\"content\":\"<e>\"}}"), err, sizeof err);
    if (!t)
        fprintf(stderr, "%s\n", err);
    remove_tokenizer();
    sb_free(&json);
    return t;
}

static void assert_tiny_ids(tokenizer *t, const char *text, const int32_t *want, size_t nwant)
{
    idvec ids = {0};
    tokenizer_encode(t, text, strlen(text), &ids);
    assert_int_equal(ids.len, nwant);
    assert_memory_equal(ids.v, want, nwant * sizeof *want);
    iv_free(&ids);
}

static void test_merges_in_string_and_pair_form_load_the_same(void **state)
{
    (void)state;
    tokenizer *a = load_tiny("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4},"
                             "\"merges\":[\"a b\",\"ab c\"]}");
    tokenizer *b = load_tiny("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4},"
                             "\"merges\":[[\"a\",\"b\"],[\"ab\",\"c\"]]}");
    assert_non_null(a);
    assert_non_null(b);
    const int32_t abc[] = {4}, cab[] = {2, 3};
    assert_tiny_ids(a, "abc", abc, 1);
    assert_tiny_ids(b, "abc", abc, 1);
    assert_tiny_ids(a, "cab", cab, 2);
    assert_int_equal(tokenizer_eos_id(a), 5);
    assert_int_equal(tokenizer_vocab_size(a), 6);
    tokenizer_free(a);
    tokenizer_free(b);
}

static void test_bpe_applies_merges_by_rank_not_by_position(void **state)
{
    (void)state;
    /* "b c" has rank 0: in "abc" it wins over the leftmost pair "a b" */
    tokenizer *t = load_tiny("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"bc\":3,\"ab\":4},"
                             "\"merges\":[\"b c\",\"a b\"]}");
    assert_non_null(t);
    const int32_t want[] = {0, 3};
    assert_tiny_ids(t, "abc", want, 2);
    const int32_t aab[] = {0, 4};
    assert_tiny_ids(t, "aab", aab, 2);
    tokenizer_free(t);
}

static void test_vocab_escapes_are_decoded(void **state)
{
    (void)state;
    tokenizer *t = load_tiny("{\"type\":\"BPE\",\"vocab\":{\"\\u0061\":0,\"\\\"\":1,\"\\u00e9\":2,\"x\":3,\"y\":4},"
                             "\"merges\":[]}");
    assert_non_null(t);
    assert_int_equal(tokenizer_token_id(t, "a"), 0);
    assert_int_equal(tokenizer_token_id(t, "\""), 1);
    assert_int_equal(tokenizer_token_id(t, "\xE9"), 2); /* byte-level 'é' stands for byte 0xE9 */
    tokenizer_free(t);
}

static void assert_load_fails(const char *json, const char *config, const char *expected_part)
{
    char err[512] = "";
    tokenizer *t = tokenizer_load(write_tokenizer(json, config), err, sizeof err);
    remove_tokenizer();
    assert_null(t);
    if (!strstr(err, expected_part)) {
        fprintf(stderr, "error was: %s\n", err);
        fail_msg("error does not mention '%s'", expected_part);
    }
}

static void test_load_reports_a_missing_directory(void **state)
{
    (void)state;
    char err[512] = "";
    assert_null(tokenizer_load("/nonexistent/axllama", err, sizeof err));
    assert_non_null(strstr(err, "cannot open /nonexistent/axllama/tokenizer.json"));
}

static void test_load_reports_malformed_files(void **state)
{
    (void)state;
    assert_load_fails("{\"model\": {\"vocab\": {\"a\": 0}", NULL, "tokenizer.json");
    assert_load_fails("[1,2]", NULL, "expected '{'");
    assert_load_fails("{\"model\":{\"type\":\"BPE\",\"merges\":[]}}", NULL, "no model.vocab");
    assert_load_fails(TINY_HEAD "\"model\":{\"type\":\"WordPiece\",\"vocab\":{},\"merges\":[]}}", NULL, "WordPiece");
    assert_load_fails(TINY_HEAD "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a q\"]}}", NULL,
                      "missing from the vocab");
    assert_load_fails(TINY_HEAD "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":2},\"merges\":[]}}", NULL,
                      "contiguous");
    assert_load_fails(TINY_HEAD "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"d\":3,\"f\":4},"
                                "\"merges\":[]}}",
                      "{not json", "tokenizer_config.json");
}

int main(void)
{
    const struct CMUnitTest qwen_tests[] = {
        cmocka_unit_test(test_qwen3_loads_with_its_special_ids),
        cmocka_unit_test(test_encode_gives_hf_ids_for_mixed_text),
        cmocka_unit_test(test_encode_splits_digits_one_by_one),
        cmocka_unit_test(test_encode_finds_added_tokens_special_or_not_inside_words),
        cmocka_unit_test(test_encode_treats_partial_added_token_text_as_plain_text),
        cmocka_unit_test(test_encode_of_empty_text_is_empty),
        cmocka_unit_test(test_encode_replaces_invalid_utf8_like_a_repaired_string),
        cmocka_unit_test(test_encode_normalizes_to_nfc),
        cmocka_unit_test(test_encode_does_not_treat_mongolian_vowel_separator_as_space),
        cmocka_unit_test(test_encode_normalizes_with_unicode_9_like_hf),
        cmocka_unit_test(test_decode_round_trips_text_and_keeps_special_tokens),
        cmocka_unit_test(test_decode_rejects_out_of_range_ids),
        cmocka_unit_test(test_decode_of_part_of_a_character_gives_replacement),
        cmocka_unit_test(test_decode_stream_holds_a_split_character_until_complete),
        cmocka_unit_test(test_decode_stream_finish_flushes_a_held_tail_as_replacement),
        cmocka_unit_test(test_decode_stream_rejects_out_of_range_ids_and_keeps_state),
        cmocka_unit_test(test_token_id_finds_added_and_vocab_tokens),
    };
    const struct CMUnitTest file_tests[] = {
        cmocka_unit_test(test_merges_in_string_and_pair_form_load_the_same),
        cmocka_unit_test(test_bpe_applies_merges_by_rank_not_by_position),
        cmocka_unit_test(test_vocab_escapes_are_decoded),
        cmocka_unit_test(test_load_reports_a_missing_directory),
        cmocka_unit_test(test_load_reports_malformed_files),
    };
    int failed = cmocka_run_group_tests_name("qwen3", qwen_tests, load_qwen, free_qwen);
    failed += cmocka_run_group_tests_name("synthetic", file_tests, NULL, NULL);
    return failed;
}
