/* fuzz_output: the output filter (src/engine/output.c): ids -> text, the leading think block,
 * stop sequences and num_predict. The input:
 *   byte 0   flags: bit 0 show_thinking; bits 1-2 num_predict kind (0 and 3: none, 1: byte 1,
 *            2: byte 1 % 16); bits 3-4 the number of stop sequences (0..3)
 *   byte 1   num_predict
 *   then     each stop sequence followed by 0xFF (made valid UTF-8: the APIs give strings)
 *   the rest the generated text, encoded with the Qwen3 tokenizer into the ids pushed
 * The ids are pushed whole and in a few arbitrary splits. Properties:
 *   - never more ids taken than num_predict, nor than pushed; OUTPUT_LIMIT once num_predict ids
 *     were taken; OUTPUT_STOP from the push where a stop sequence matched on, and nothing emitted
 *     after it (not even by output_finish);
 *   - every piece is non-empty valid UTF-8; the content pieces concatenated are output_content();
 *   - the thinking is exactly what a reference computes from the whole decode of the ids taken (a
 *     leading "<think>...</think>", newlines around it trimmed), in every split;
 *   - the content is the rest of that text: all of it when it holds no stop sequence, else cut
 *     at the start of a match, no earlier than the leftmost match and no later than the match that
 *     completes first (see check_content): never a stop sequence in the content. */
#include <stdint.h>

#include "engine/output.h"
#include "fuzz_common.h"

#define MAX_STOPS 3
#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"

static tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_tok = fuzz_load_tokenizer();
    return 0;
}

typedef struct {
    strbuf content, thinking;
    size_t pieces_after_stop;
    bool stopped;
} emitted;

static void on_emit(void *user, bool thinking, const char *text, size_t len)
{
    emitted *e = user;
    FUZZ_CHECK(len > 0, "an empty piece");
    FUZZ_CHECK(utf8_is_valid(text, len), "a piece is not valid UTF-8: %s", fuzz_show(text, len));
    if (e->stopped)
        e->pieces_after_stop++;
    sb_append(thinking ? &e->thinking : &e->content, text, len);
}

typedef struct {
    bool show_thinking;
    int num_predict;
    const char *stop[MAX_STOPS];
    size_t n_stop;
} filter_params;

/* Runs the filter over ids in chunks (whole: one push); returns what it emitted and how many ids it
 * took; checks the statuses on the way. */
static void run_filter(const filter_params *fp, const idvec *ids, fuzz_rng *rng, bool whole, emitted *e, size_t *taken)
{
    memset(e, 0, sizeof *e);
    sb_append(&e->content, "", 0);
    sb_append(&e->thinking, "", 0);
    output_filter *o = output_new(g_tok, fp->show_thinking, fp->stop, fp->n_stop, fp->num_predict, on_emit, e);
    size_t i = 0;
    bool limited = false;
    do {
        size_t k = whole ? ids->len : fuzz_rng_chunk(rng, ids->len - i);
        output_status st = output_push(o, ids->v + i, k);
        i += k;
        size_t t = output_ids_taken(o);
        FUZZ_CHECK(t <= i, "took %zu ids of %zu pushed", t, i);
        FUZZ_CHECK(fp->num_predict < 0 || t <= (size_t)fp->num_predict, "took %zu ids, num_predict %d", t,
                   fp->num_predict);
        if (e->stopped)
            FUZZ_CHECK(st == OUTPUT_STOP, "a push after the stop answered %d", (int)st);
        if (st == OUTPUT_STOP)
            e->stopped = true;
        else if (fp->num_predict >= 0 && t == (size_t)fp->num_predict)
            FUZZ_CHECK(st == OUTPUT_LIMIT, "num_predict ids taken, status %d", (int)st);
        else
            FUZZ_CHECK(st == OUTPUT_MORE && !limited, "status %d with %zu ids taken", (int)st, t);
        limited = limited || st == OUTPUT_LIMIT;
    } while (i < ids->len);
    output_finish(o);
    FUZZ_CHECK(e->pieces_after_stop == 0, "%zu pieces emitted after the stop", e->pieces_after_stop);
    const char *content = output_content(o);
    /* the content may hold NUL bytes (the model can generate byte 0): compare the bytes */
    FUZZ_CHECK(!memcmp(content, e->content.data, e->content.len) && content[e->content.len] == '\0',
               "output_content differs from the content emitted");
    *taken = output_ids_taken(o);
    output_free(o);
}

static size_t lstrip_nl(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && s[k] == '\n')
        k++;
    return k;
}

/* What the filter should give for the text t of the ids taken: the thinking, and the content before
 * stop sequences are applied (uncut). */
static void reference(const filter_params *fp, const char *t, size_t n, strbuf *uncut, strbuf *thinking)
{
    sb_append(uncut, "", 0);
    sb_append(thinking, "", 0);
    const char *c = t;
    size_t cn = n;
    size_t open = strlen(THINK_OPEN), close_len = strlen(THINK_CLOSE);
    if (n >= open && !memcmp(t, THINK_OPEN, open)) {
        const char *rest = t + open;
        size_t rn = n - open;
        const char *close = memmem(rest, rn, THINK_CLOSE, close_len);
        size_t tn = close ? (size_t)(close - rest) : rn;
        size_t lead = lstrip_nl(rest, tn);
        if (close)
            while (tn > lead && rest[tn - 1] == '\n')
                tn--;
        if (fp->show_thinking)
            sb_append(thinking, rest + lead, tn - lead);
        if (close) {
            c = close + close_len;
            cn = n - (size_t)(c - t);
            size_t k = lstrip_nl(c, cn);
            c += k;
            cn -= k;
        } else {
            cn = 0;
        }
    }
    sb_append(uncut, c, cn);
}

/* The content against the uncut content u. Without a stop sequence in u it is all of u. Otherwise
 * the filter stops as soon as a stop sequence is complete, and cuts at the leftmost match it has
 * seen by then: the content is u up to the start of a match, no earlier than the leftmost match
 * and no later than the start of the match that ends first. So the content never holds a stop
 * sequence, and nothing after the stop is emitted. */
static void check_content(const filter_params *fp, const strbuf *got, const strbuf *u)
{
    size_t leftmost = SIZE_MAX, first_end = SIZE_MAX, first_end_start = SIZE_MAX;
    bool got_is_match = false;
    for (size_t i = 0; i < fp->n_stop; i++) {
        size_t len = strlen(fp->stop[i]);
        for (const char *p = u->data; (p = memmem(p, u->len - (size_t)(p - u->data), fp->stop[i], len)); p++) {
            size_t start = (size_t)(p - u->data), end = start + len;
            leftmost = start < leftmost ? start : leftmost;
            if (end < first_end || (end == first_end && start < first_end_start)) {
                first_end = end;
                first_end_start = start;
            }
            got_is_match = got_is_match || start == got->len;
        }
    }
    if (leftmost == SIZE_MAX) {
        FUZZ_CHECK(got->len == u->len && !memcmp(got->data, u->data, u->len),
                   "content without a stop sequence:\n  got  %s\n  want %s", fuzz_show(got->data, got->len),
                   fuzz_show(u->data, u->len));
        return;
    }
    FUZZ_CHECK(got->len <= u->len && !memcmp(got->data, u->data, got->len) && got_is_match && got->len >= leftmost &&
                   got->len <= first_end_start,
               "content cut at %zu (leftmost match at %zu, first complete match at %zu):\n  got   %s\n  uncut %s",
               got->len, leftmost, first_end_start, fuzz_show(got->data, got->len), fuzz_show(u->data, u->len));
}

static void check_same(const char *what, const strbuf *got, const strbuf *want)
{
    FUZZ_CHECK(got->len == want->len && !memcmp(got->data, want->data, want->len), "%s:\n  got  %s\n  want %s", what,
               fuzz_show(got->data, got->len), fuzz_show(want->data, want->len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader in = {data, size};
    uint8_t flags = fuzz_byte(&in), np = fuzz_byte(&in);
    filter_params fp = {.show_thinking = flags & 1};
    switch ((flags >> 1) & 3) {
    case 1: fp.num_predict = np; break;
    case 2: fp.num_predict = np % 16; break;
    default: fp.num_predict = -1; break;
    }
    char *stops[MAX_STOPS] = {0};
    size_t n_stop = (flags >> 3) & 3;
    for (size_t i = 0; i < n_stop; i++) {
        size_t len, fixed_len;
        const char *s = fuzz_field(&in, 0xFF, &len);
        stops[i] = fuzz_lossy(s, len, &fixed_len);
        if (fuzz_has_nul(stops[i], fixed_len) || fixed_len == 0)
            continue; /* C strings: the filter ignores an empty one */
        fp.stop[fp.n_stop++] = stops[i];
    }
    idvec ids = {0};
    iv_reserve(&ids, 1); /* never a NULL array, even for no ids */
    tokenizer_encode(g_tok, (const char *)in.p, in.n, &ids);

    fuzz_rng rng = fuzz_rng_of(data, size);
    emitted whole;
    size_t taken;
    run_filter(&fp, &ids, &rng, true, &whole, &taken);
    size_t want_taken = fp.num_predict >= 0 && (size_t)fp.num_predict < ids.len ? (size_t)fp.num_predict : ids.len;
    FUZZ_CHECK(taken == want_taken, "one push took %zu ids, want %zu", taken, want_taken);

    strbuf text = {0}, uncut = {0}, want_thinking = {0};
    sb_append(&text, "", 0);
    FUZZ_CHECK(tokenizer_decode(g_tok, ids.v, taken, &text), "decode refused encode's ids");
    reference(&fp, text.data, text.len, &uncut, &want_thinking);
    check_content(&fp, &whole.content, &uncut);
    check_same("thinking", &whole.thinking, &want_thinking);

    for (int round = 0; round < 3; round++) {
        emitted split;
        size_t split_taken;
        run_filter(&fp, &ids, &rng, false, &split, &split_taken);
        check_content(&fp, &split.content, &uncut);
        check_same("thinking of a split", &split.thinking, &whole.thinking);
        FUZZ_CHECK(split.stopped ? split_taken <= taken : split_taken == taken, "a split took %zu ids, whole %zu",
                   split_taken, taken);
        sb_free(&split.content);
        sb_free(&split.thinking);
    }

    sb_free(&text);
    sb_free(&uncut);
    sb_free(&want_thinking);
    sb_free(&whole.content);
    sb_free(&whole.thinking);
    iv_free(&ids);
    for (size_t i = 0; i < n_stop; i++)
        free(stops[i]);
    return 0;
}
