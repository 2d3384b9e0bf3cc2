/* tokenizer_json: streaming reader for tokenizer.json's model.vocab and model.merges; every other
 * member is parsed by jansson. See tokenizer_json.h for why. */
#include "tokenizer/tokenizer_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

typedef struct {
    const char *p;
    const char *start;
    const char *end;
    char *err;
    size_t errlen;
    bool failed;
} cursor;

static bool fail(cursor *c, const char *what)
{
    if (!c->failed)
        snprintf(c->err, c->errlen, "tokenizer.json: %s at byte %zu", what, (size_t)(c->p - c->start));
    c->failed = true;
    return false;
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static bool expect(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", ch);
        return fail(c, msg);
    }
    c->p++;
    return true;
}

/* After a member: true if another follows (consumed ','), false at the closing bracket. */
static bool next_member(cursor *c, char close, bool *more)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        *more = true;
        return true;
    }
    if (c->p < c->end && *c->p == close) {
        c->p++;
        *more = false;
        return true;
    }
    return fail(c, "expected ',' or closing bracket");
}

/* Consumes the opening bracket; *empty tells whether the closing one followed at once (consumed). */
static bool open_container(cursor *c, char open, char close, bool *empty)
{
    if (!expect(c, open))
        return false;
    skip_ws(c);
    *empty = c->p < c->end && *c->p == close;
    if (*empty)
        c->p++;
    return true;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= h - '0';
        else if (h >= 'a' && h <= 'f')
            v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            v |= h - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static void put_utf8(strbuf *out, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sb_append(out, b, n);
}

/* Reads a JSON string into out (cleared first), escapes decoded. */
static bool read_string(cursor *c, strbuf *out)
{
    sb_clear(out);
    if (!expect(c, '"'))
        return false;
    for (;;) {
        const char *run = c->p;
        while (c->p < c->end && *c->p != '"' && *c->p != '\\' && (unsigned char)*c->p >= 0x20)
            c->p++;
        sb_append(out, run, (size_t)(c->p - run));
        if (c->p >= c->end)
            return fail(c, "unterminated string");
        char ch = *c->p++;
        if (ch == '"')
            return true;
        if (ch != '\\')
            return fail(c, "control character in string");
        if (c->p >= c->end)
            return fail(c, "unterminated string");
        char e = *c->p++;
        switch (e) {
        case '"': sb_putc(out, '"'); break;
        case '\\': sb_putc(out, '\\'); break;
        case '/': sb_putc(out, '/'); break;
        case 'b': sb_putc(out, '\b'); break;
        case 'f': sb_putc(out, '\f'); break;
        case 'n': sb_putc(out, '\n'); break;
        case 'r': sb_putc(out, '\r'); break;
        case 't': sb_putc(out, '\t'); break;
        case 'u': {
            if (c->end - c->p < 4)
                return fail(c, "bad \\u escape");
            int cp = hex4(c->p);
            if (cp < 0)
                return fail(c, "bad \\u escape");
            c->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = (c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') ? hex4(c->p + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(c, "unpaired surrogate in \\u escape");
                c->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(c, "unpaired surrogate in \\u escape");
            }
            put_utf8(out, (unsigned)cp);
            break;
        }
        default: return fail(c, "bad escape in string");
        }
    }
}

/* Skips one JSON value; [*from, c->p) is its text. Structure only: jansson validates the span. */
static bool skip_value(cursor *c, const char **from)
{
    skip_ws(c);
    *from = c->p;
    int depth = 0;
    do {
        if (c->p >= c->end)
            return fail(c, "unexpected end of file");
        char ch = *c->p;
        if (ch == '"') {
            c->p++;
            while (c->p < c->end && *c->p != '"')
                c->p += (*c->p == '\\') ? 2 : 1;
            if (c->p >= c->end)
                return fail(c, "unterminated string");
            c->p++;
        } else if (ch == '{' || ch == '[') {
            depth++;
            c->p++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return fail(c, "unexpected closing bracket");
            depth--;
            c->p++;
        } else if (depth > 0) {
            c->p++;
        } else { /* a scalar at depth 0: up to the next delimiter */
            while (c->p < c->end && !strchr(",}] \t\r\n", *c->p))
                c->p++;
        }
    } while (depth > 0);
    return true;
}

/* Parses the next value with jansson and stores it under key in obj. */
static bool copy_member(cursor *c, json_t *obj, const char *key)
{
    const char *from;
    if (!skip_value(c, &from))
        return false;
    json_error_t je;
    json_t *v = json_loadb(from, (size_t)(c->p - from), JSON_DECODE_ANY, &je);
    if (!v) {
        char msg[256];
        snprintf(msg, sizeof msg, "in member \"%s\": %s", key, je.text);
        c->p = from + (je.position > 0 ? (size_t)je.position : 0);
        return fail(c, msg);
    }
    json_object_set_new(obj, key, v);
    return true;
}

static bool read_vocab(cursor *c, const tokenizer_json_handlers *h, strbuf *tok)
{
    bool empty;
    if (!open_container(c, '{', '}', &empty))
        return false;
    for (bool more = !empty; more;) {
        if (!read_string(c, tok) || !expect(c, ':'))
            return false;
        skip_ws(c);
        char *endp;
        long long id = strtoll(c->p, &endp, 10);
        if (endp == c->p || endp > c->end || id < 0 || id > 0x7FFFFFFF)
            return fail(c, "vocab id is not a non-negative integer");
        c->p = endp;
        if (!h->vocab(h->ctx, tok->data, tok->len, id))
            return fail(c, "bad vocab entry");
        if (!next_member(c, '}', &more))
            return false;
    }
    return true;
}

static bool read_merges(cursor *c, const tokenizer_json_handlers *h, strbuf *a, strbuf *b)
{
    bool empty;
    if (!open_container(c, '[', ']', &empty))
        return false;
    for (bool more = !empty; more;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == '[') {
            c->p++;
            if (!read_string(c, a) || !expect(c, ',') || !read_string(c, b) || !expect(c, ']'))
                return false;
            if (!h->merge(h->ctx, a->data, a->len, b->data, b->len))
                return fail(c, "bad merge entry");
        } else {
            if (!read_string(c, a))
                return false;
            char *sp = memchr(a->data, ' ', a->len);
            if (!sp || memchr(sp + 1, ' ', a->len - (size_t)(sp + 1 - a->data)))
                return fail(c, "merge is not \"left right\"");
            size_t na = (size_t)(sp - a->data);
            if (!h->merge(h->ctx, a->data, na, sp + 1, a->len - na - 1))
                return fail(c, "bad merge entry");
        }
        if (!next_member(c, ']', &more))
            return false;
    }
    return true;
}

static bool read_model(cursor *c, const tokenizer_json_handlers *h, json_t *model, strbuf *k, strbuf *a, strbuf *b,
                       bool *seen_vocab, bool *seen_merges)
{
    bool empty;
    if (!open_container(c, '{', '}', &empty))
        return false;
    for (bool more = !empty; more;) {
        if (!read_string(c, k) || !expect(c, ':'))
            return false;
        bool ok;
        if (!strcmp(k->data, "vocab")) {
            ok = read_vocab(c, h, a);
            *seen_vocab = true;
        } else if (!strcmp(k->data, "merges")) {
            ok = read_merges(c, h, a, b);
            *seen_merges = true;
        } else {
            ok = copy_member(c, model, k->data);
        }
        if (!ok || !next_member(c, '}', &more))
            return false;
    }
    return true;
}

json_t *tokenizer_json_read(const char *text, size_t n, const tokenizer_json_handlers *h, char *err, size_t errlen)
{
    cursor c = {.p = text, .start = text, .end = text + n, .err = err, .errlen = errlen};
    strbuf k = {0}, a = {0}, b = {0};
    json_t *root = json_object();
    json_t *model = NULL;
    bool seen_vocab = false, seen_merges = false, empty = false;
    bool ok = open_container(&c, '{', '}', &empty);

    if (ok && !empty) {
        for (bool more = true; more;) {
            ok = read_string(&c, &k) && expect(&c, ':');
            if (ok && !strcmp(k.data, "model")) {
                if (model) {
                    ok = fail(&c, "duplicate member \"model\"");
                } else {
                    model = json_object();
                    ok = read_model(&c, h, model, &k, &a, &b, &seen_vocab, &seen_merges);
                }
            } else if (ok) {
                ok = copy_member(&c, root, k.data);
            }
            if (!ok || !next_member(&c, '}', &more)) {
                ok = false;
                break;
            }
        }
    }
    if (ok) {
        skip_ws(&c);
        if (c.p != c.end)
            ok = fail(&c, "trailing data after the top-level object");
        else if (!model || !seen_vocab)
            ok = fail(&c, "no model.vocab member");
        else if (!seen_merges)
            ok = fail(&c, "no model.merges member");
    }
    sb_free(&k);
    sb_free(&a);
    sb_free(&b);
    if (!ok) {
        json_decref(model);
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "model", model);
    return root;
}
