/* fuzz_tokenizer: the Qwen3 tokenizer (src/tokenizer/tokenizer.c) on arbitrary bytes. The input is
 * the text. Properties:
 *   - every id encode gives is in the vocabulary;
 *   - decode(encode(x)) is x made valid UTF-8 the way HF does (U+FFFD per invalid subpart), when
 *     NFC leaves that text alone (utf8proc's NFC: Qwen's normalizer), and in every case a fixed
 *     point: decode(encode(y)) == y for y = decode(encode(x));
 *   - decode == the raw bytes of decode_bytes made valid UTF-8;
 *   - a decode_stream fed the ids in arbitrary chunks (some empty) gives exactly the whole decode,
 *     and each push appends valid UTF-8 only. */
#include <utf8proc.h>

#include "fuzz_common.h"

static tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_tok = fuzz_load_tokenizer();
    return 0;
}

/* utf8proc's NFC of valid UTF-8 (caller frees), or NULL if it refuses the text. */
static char *nfc_of(const char *s, size_t n, size_t *len)
{
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t m =
        utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0)
        return NULL;
    *len = (size_t)m;
    return (char *)out;
}

/* The whole decode of ids (which must be in range). */
static void decode_all(const idvec *ids, strbuf *out)
{
    sb_append(out, "", 0);
    FUZZ_CHECK(tokenizer_decode(g_tok, ids->v, ids->len, out), "decode refused ids that encode gave");
}

static void check_stream(const idvec *ids, const strbuf *whole, fuzz_rng *rng)
{
    decode_stream ds;
    decode_stream_init(&ds);
    strbuf streamed = {0};
    sb_append(&streamed, "", 0);
    size_t i = 0;
    while (i < ids->len) {
        size_t k = fuzz_rng_below(rng, 8) == 0 ? 0 : fuzz_rng_chunk(rng, ids->len - i);
        size_t before = streamed.len;
        FUZZ_CHECK(decode_stream_push(&ds, g_tok, ids->v + i, k, &streamed), "stream push refused ids");
        FUZZ_CHECK(utf8_is_valid(streamed.data + before, streamed.len - before), "a push appended invalid UTF-8: %s",
                   fuzz_show(streamed.data + before, streamed.len - before));
        FUZZ_CHECK(ds.nheld <= 3, "the stream holds %zu bytes", ds.nheld);
        i += k;
    }
    decode_stream_finish(&ds, &streamed);
    FUZZ_CHECK(ds.nheld == 0, "finish left bytes held");
    FUZZ_CHECK(streamed.len == whole->len && !memcmp(streamed.data, whole->data, whole->len),
               "streamed decode differs from the whole decode:\n  streamed %s\n  whole    %s",
               fuzz_show(streamed.data, streamed.len), fuzz_show(whole->data, whole->len));
    sb_free(&streamed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t vocab = tokenizer_vocab_size(g_tok);
    idvec ids = {0};
    tokenizer_encode(g_tok, text, size, &ids);
    for (size_t i = 0; i < ids.len; i++)
        FUZZ_CHECK(ids.v[i] >= 0 && (size_t)ids.v[i] < vocab, "encode gave id %d", (int)ids.v[i]);
    FUZZ_CHECK(size == 0 || ids.len > 0, "encode gave no ids for %zu bytes", size);

    strbuf dec = {0}, raw = {0}, redec = {0};
    decode_all(&ids, &dec);
    sb_append(&raw, "", 0);
    FUZZ_CHECK(tokenizer_decode_bytes(g_tok, ids.v, ids.len, &raw), "decode_bytes refused ids that encode gave");
    size_t lossy_raw_len;
    char *lossy_raw = fuzz_lossy(raw.data, raw.len, &lossy_raw_len);
    FUZZ_CHECK(lossy_raw_len == dec.len && !memcmp(lossy_raw, dec.data, dec.len),
               "decode is not decode_bytes made valid UTF-8");
    free(lossy_raw);
    FUZZ_CHECK(utf8_is_valid(dec.data, dec.len), "decode gave invalid UTF-8");

    /* round trip */
    size_t repaired_len, nfc_len = 0;
    char *repaired = fuzz_lossy(text, size, &repaired_len);
    char *nfc = nfc_of(repaired, repaired_len, &nfc_len);
    bool nfc_stable = nfc && nfc_len == repaired_len && !memcmp(nfc, repaired, repaired_len);
    if (nfc_stable)
        FUZZ_CHECK(dec.len == repaired_len && !memcmp(dec.data, repaired, repaired_len),
                   "decode(encode(x)) != x:\n  x   %s\n  got %s", fuzz_show(repaired, repaired_len),
                   fuzz_show(dec.data, dec.len));
    free(nfc);
    free(repaired);

    idvec ids2 = {0};
    tokenizer_encode(g_tok, dec.data, dec.len, &ids2);
    decode_all(&ids2, &redec);
    FUZZ_CHECK(redec.len == dec.len && !memcmp(redec.data, dec.data, dec.len),
               "decode(encode(y)) != y for y = decode(encode(x)):\n  y   %s\n  got %s", fuzz_show(dec.data, dec.len),
               fuzz_show(redec.data, redec.len));

    fuzz_rng rng = fuzz_rng_of(data, size);
    check_stream(&ids, &dec, &rng);

    iv_free(&ids2);
    iv_free(&ids);
    sb_free(&redec);
    sb_free(&raw);
    sb_free(&dec);
    return 0;
}
