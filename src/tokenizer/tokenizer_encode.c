/* tokenizer_encode: encoding text to ids, as HF `tokenizers` runs this kind of file:
 *   1. invalid UTF-8 in the input is replaced by U+FFFD (one per maximal invalid subpart): HF only
 *      ever receives strings, and every binding (Python, Node) repairs bytes that way;
 *   2. added tokens (special or not) are found leftmost-longest in the raw text; the text between
 *      them is processed alone (tokens flagged `normalized` are matched after step 3 instead);
 *   3. NFC (utf8proc) as of Unicode 9.0, the version of HF's tables (see nfc_as_hf);
 *   4. the Split pre-tokenizer: the file's regex, compiled with PCRE2 (UTF + UCP; \s spelled as
 *      Oniguruma means it, see spell_spaces_as_white_space in tokenizer_load.c), "Isolated":
 *      every match and every gap between matches is a piece;
 *   5. ByteLevel: a piece's bytes are its initial symbols; BPE merges the adjacent pair of lowest
 *      rank (ties: leftmost) until no pair has a merge, exactly HF's merge order.
 * Also the budgeted forms: tokenizer_encode_limit, tokenizer_encode_tail. */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <utf8proc.h>

#include "common/utf8.h"
#include "tokenizer/tokenizer_internal.h"

/* NFC makes a text at most this many times shorter (Hangul jamo L+V+T, 9 bytes, compose into one
 * 3-byte syllable; every other composition shrinks less): a bound for tokenizer_encode_limit. */
#define TOKENIZER_NFC_SHRINK 4u

/* ---- byte-level BPE ---- */

typedef struct {
    int32_t id;
    int32_t prev, next; /* symbol indices, -1 at the ends */
    uint32_t len;       /* 0 once merged into its left neighbour */
} symbol;

typedef struct {
    int32_t rank;
    int32_t pos;    /* left symbol */
    int32_t merged; /* expected result, to detect stale entries */
} candidate;

static bool cand_less(const candidate *a, const candidate *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(candidate *h, size_t *n, candidate c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static candidate heap_pop(candidate *h, size_t *n)
{
    candidate top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const candidate *best = &last;
        if (l < *n && cand_less(&h[l], best))
            m = l, best = &h[l];
        if (r < *n && cand_less(&h[r], best))
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (*n)
        h[i] = last;
    return top;
}

static void push_pair(const tokenizer *t, const symbol *sym, int32_t pos, candidate *heap, size_t *nheap)
{
    if (pos < 0 || sym[pos].next < 0)
        return;
    int32_t next = sym[pos].next;
    const merge_slot *m = tokenizer_merge_find(t, sym[pos].id, sym[next].id);
    if (m)
        heap_push(heap, nheap, (candidate){.rank = m->rank, .pos = pos, .merged = m->merged});
}

enum { SMALL_PIECE = 64 };

static void bpe_piece(const tokenizer *t, const char *s, size_t n, idvec *out)
{
    if (t->ignore_merges) {
        int32_t whole = tokenizer_vocab_find(t, s, n);
        if (whole >= 0) {
            iv_push(out, whole);
            return;
        }
    }
    if (n == 1) {
        int32_t id = t->byte_id[(unsigned char)s[0]];
        if (id >= 0)
            iv_push(out, id);
        return;
    }
    symbol small_sym[SMALL_PIECE];
    candidate small_heap[SMALL_PIECE * 2];
    symbol *sym = n <= SMALL_PIECE ? small_sym : xmalloc(n * sizeof *sym);
    /* every merge pushes at most two candidates: n initial + 2n later */
    candidate *heap = n <= SMALL_PIECE / 2 ? small_heap : xmalloc(3 * n * sizeof *heap);
    size_t nsym = 0, nheap = 0;

    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(unsigned char)s[i]];
        if (id < 0)
            continue; /* a byte missing from the vocab (no unk token): dropped, as HF does */
        sym[nsym] = (symbol){.id = id, .prev = (int32_t)nsym - 1, .next = -1, .len = 1};
        if (nsym)
            sym[nsym - 1].next = (int32_t)nsym;
        nsym++;
    }
    for (size_t i = 0; i + 1 < nsym; i++)
        push_pair(t, sym, (int32_t)i, heap, &nheap);

    while (nheap) {
        candidate c = heap_pop(heap, &nheap);
        symbol *left = &sym[c.pos];
        if (left->len == 0 || left->next < 0)
            continue;
        symbol *right = &sym[left->next];
        const merge_slot *m = tokenizer_merge_find(t, left->id, right->id);
        if (!m || m->merged != c.merged)
            continue; /* stale: one side changed since this candidate was pushed */
        left->id = m->merged;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (left->next >= 0)
            sym[left->next].prev = c.pos;
        push_pair(t, sym, left->prev, heap, &nheap);
        push_pair(t, sym, c.pos, heap, &nheap);
    }
    for (int32_t i = nsym ? 0 : -1; i >= 0; i = sym[i].next)
        iv_push(out, sym[i].id);
    if (sym != small_sym)
        free(sym);
    if (heap != small_heap)
        free(heap);
}

/* Split regex + BPE over one normalized segment (valid UTF-8). Stops once out holds stop_at ids (after
 * the piece that reached it); false then. */
static bool encode_pretokenized(const tokenizer *t, const char *s, size_t n, pcre2_match_data *md, idvec *out,
                                size_t stop_at)
{
    size_t pos = 0;
    while (pos < n) {
        if (out->len >= stop_at)
            return false;
        int rc = pcre2_match(t->split_re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(t->split_re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc < 0) { /* no further match: the rest is one gap piece */
            bpe_piece(t, s + pos, n - pos, out);
            return true;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (start > pos)
            bpe_piece(t, s + pos, start - pos, out);
        if (end > start) {
            bpe_piece(t, s + start, end - start, out);
            pos = end;
        } else { /* an empty match: step over one character into the next gap */
            size_t len = 1;
            if (start < n && (unsigned char)s[start] >= 0x80)
                utf8_next(s + start, n - start, &len);
            if (start + len > n)
                len = n - start;
            bpe_piece(t, s + start, len, out);
            pos = start + len;
        }
    }
    return true;
}

/* Finds the leftmost-longest added token (of the given normalized class) in s[from..n). */
static const added_token *find_added(const tokenizer *t, bool normalized, const char *s, size_t n, size_t from,
                                     size_t *at)
{
    const bool *first = t->added_first_byte[normalized];
    for (size_t i = from; i < n; i++) {
        if (!first[(unsigned char)s[i]])
            continue;
        for (size_t k = 0; k < t->n_added; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized == normalized && a->len <= n - i && a->text[0] == s[i] &&
                !memcmp(a->text, s + i, a->len)) {
                *at = i;
                return a;
            }
        }
    }
    return NULL;
}

/* HF's NFC uses Unicode 9.0 tables: a character assigned later (or unknown) is left alone there,
 * and acts as a starter that nothing reorders across or composes with. utf8proc knows newer
 * Unicode, so such characters are kept verbatim and the text between them is normalised alone,
 * which gives exactly the Unicode 9.0 result. The character's age comes from ICU. */
static bool newer_than_hf_unicode(int32_t cp)
{
    UVersionInfo age;
    u_charAge(cp, age);
    return age[0] > 9 || (age[0] == 0 && age[1] == 0);
}

static void nfc_run(const char *s, size_t n, strbuf *out)
{
    if (!n)
        return;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m =
        utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m >= 0)
        sb_append(out, nfc, (size_t)m);
    else
        sb_append(out, s, n);
    free(nfc);
}

static void nfc_as_hf(const char *s, size_t n, strbuf *out)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (len <= 0)
            len = 1;
        if (len > 0 && cp >= 0 && newer_than_hf_unicode(cp)) {
            nfc_run(s + run, i - run, out);
            sb_append(out, s + i, (size_t)len);
            run = i + (size_t)len;
        }
        i += (size_t)len;
    }
    nfc_run(s + run, n - run, out);
}

static bool has_non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* One segment between non-normalized added tokens: NFC, then normalized added tokens, then BPE. Stops
 * once out holds stop_at ids; false then. */
static bool encode_segment(const tokenizer *t, const char *s, size_t n, pcre2_match_data *md, idvec *out,
                           size_t stop_at)
{
    strbuf nfc = {0};
    if (t->nfc && has_non_ascii(s, n)) {
        nfc_as_hf(s, n, &nfc);
        s = nfc.data;
        n = nfc.len;
    }
    size_t pos = 0, at;
    const added_token *a;
    bool complete = true;
    while (complete && (a = find_added(t, true, s, n, pos, &at)) != NULL) {
        complete = encode_pretokenized(t, s + pos, at - pos, md, out, stop_at);
        if (complete)
            iv_push(out, a->id);
        pos = at + a->len;
    }
    if (complete)
        complete = encode_pretokenized(t, s + pos, n - pos, md, out, stop_at);
    sb_free(&nfc);
    return complete;
}

/* tokenizer_encode until out holds stop_at ids (SIZE_MAX: the whole text); false when it stopped
 * before the end of the text. */
static bool encode_upto(const tokenizer *t, const char *text, size_t n, idvec *out, size_t stop_at)
{
    strbuf repaired = {0};
    if (!utf8_is_valid(text, n)) {
        utf8_append_lossy(&repaired, text, n);
        text = repaired.data;
        n = repaired.len;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->split_re, NULL);
    size_t pos = 0, at;
    const added_token *a;
    bool complete = true;
    while (complete && (a = find_added(t, false, text, n, pos, &at)) != NULL) {
        if (at > pos)
            complete = encode_segment(t, text + pos, at - pos, md, out, stop_at);
        if (complete && out->len >= stop_at && at < n)
            complete = false;
        if (complete)
            iv_push(out, a->id);
        pos = at + a->len;
    }
    if (complete && pos < n)
        complete = out->len < stop_at && encode_segment(t, text + pos, n - pos, md, out, stop_at);
    pcre2_match_data_free(md);
    sb_free(&repaired);
    return complete;
}

void tokenizer_encode(const tokenizer *t, const char *text, size_t n, idvec *out)
{
    encode_upto(t, text, n, out, SIZE_MAX);
}

size_t tokenizer_max_token_bytes(const tokenizer *t)
{
    return t->max_token_len;
}

/* The most bytes of text that can encode to at most n_ids ids: every id stands for at most
 * max_token_len bytes of the normalized text, and NFC shrinks a text at most TOKENIZER_NFC_SHRINK-fold. */
static size_t bytes_for_ids(const tokenizer *t, size_t n_ids)
{
    size_t per_id = (size_t)t->max_token_len * TOKENIZER_NFC_SHRINK;
    return n_ids > SIZE_MAX / per_id ? SIZE_MAX : n_ids * per_id;
}

/* The length of the longest prefix of s[0..n) that is at most max bytes and ends at a character
 * boundary (a UTF-8 lead byte or ASCII follows it). */
static size_t prefix_at_char(const char *s, size_t n, size_t max)
{
    if (max >= n)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

bool tokenizer_encode_limit(const tokenizer *t, const char *text, size_t n, size_t max_ids, idvec *out)
{
    size_t start = out->len;
    size_t stop_at = max_ids >= SIZE_MAX - start ? SIZE_MAX : start + max_ids + 1;
    /* a prefix this long holds more than max_ids ids: the rest of the text is never looked at */
    size_t cap = bytes_for_ids(t, max_ids + 1);
    size_t looked = prefix_at_char(text, n, cap);
    bool complete = encode_upto(t, text, looked, out, stop_at);
    if (complete && looked < n && out->len <= start + max_ids) { /* not reached: never, by the bound */
        out->len = start;
        complete = encode_upto(t, text, n, out, stop_at);
        looked = n;
    }
    if (out->len > start + max_ids) {
        out->len = start + max_ids + 1; /* exactly one past the limit */
        return false;
    }
    return complete && looked == n;
}

void tokenizer_encode_tail(const tokenizer *t, const char *text, size_t n, size_t n_ids, idvec *out)
{
    /* typical text takes 3-5 bytes per id: start with a window of 16 per id, and widen it until the
     * ids kept are far from its start (or it is the whole text) */
    size_t window = n_ids > SIZE_MAX / 32 ? SIZE_MAX : (n_ids + 1) * 16;
    size_t widest = bytes_for_ids(t, 2 * (n_ids + 1));
    idvec ids = {0};
    for (;;) {
        size_t from = window >= n ? 0 : n - window;
        while (from > 0 && from < n && ((unsigned char)text[from] & 0xC0) == 0x80)
            from++; /* a character boundary */
        /* start after a line break when there is one near: a piece never starts in the middle there */
        const char *nl = from > 0 ? memchr(text + from, '\n', n - from < 256 ? n - from : 256) : NULL;
        if (nl)
            from = (size_t)(nl - text) + 1;
        iv_clear(&ids);
        encode_upto(t, text + from, n - from, &ids, SIZE_MAX);
        if (from == 0 || ids.len >= 2 * n_ids + 2 || window >= widest)
            break;
        window = window > SIZE_MAX / 2 ? SIZE_MAX : window * 2;
    }
    size_t keep = ids.len < n_ids ? ids.len : n_ids;
    iv_append(out, ids.v + ids.len - keep, keep);
    iv_free(&ids);
}
