/* output: ids -> UTF-8 text -> thinking / content, stop sequences and num_predict. See output.h. */
#include "engine/output.h"

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"

typedef enum { ST_START, ST_THINK, ST_AFTER_THINK, ST_CONTENT, ST_DONE } parse_state;

struct output_filter {
    const tokenizer *tok;
    bool show_thinking;
    char **stop;
    size_t n_stop;
    long num_predict;
    output_emit_fn emit;
    void *user;

    decode_stream ds;
    parse_state state;
    strbuf pending;      /* text not yet emitted in the current state */
    bool thinking_begun; /* a thinking piece was emitted (leading newlines already dropped) */
    size_t taken;
    bool stopped;
    strbuf content; /* all content emitted */
};

output_filter *output_new(const tokenizer *tok, bool show_thinking, const char *const *stop, size_t n_stop,
                          int num_predict, output_emit_fn emit, void *user)
{
    output_filter *o = xcalloc(1, sizeof *o);
    o->tok = tok;
    o->show_thinking = show_thinking;
    o->num_predict = num_predict;
    o->emit = emit;
    o->user = user;
    o->stop = xcalloc(n_stop + 1, sizeof *o->stop);
    for (size_t i = 0; i < n_stop; i++)
        if (stop[i] && *stop[i])
            o->stop[o->n_stop++] = xstrdup(stop[i]);
    decode_stream_init(&o->ds);
    sb_puts(&o->content, "");
    return o;
}

void output_free(output_filter *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_stop; i++)
        free(o->stop[i]);
    free(o->stop);
    sb_free(&o->pending);
    sb_free(&o->content);
    free(o);
}

static void emit_thinking(output_filter *o, const char *s, size_t n)
{
    if (!o->thinking_begun) { /* the template strips newlines around the reasoning */
        while (n && *s == '\n')
            s++, n--;
    }
    if (!n)
        return;
    o->thinking_begun = true;
    if (o->show_thinking)
        o->emit(o->user, true, s, n);
}

static void emit_content(output_filter *o, const char *s, size_t n)
{
    if (!n)
        return;
    sb_append(&o->content, s, n);
    o->emit(o->user, false, s, n);
}

/* Length of the longest suffix of s that is a proper prefix of needle. */
static size_t partial_suffix(const char *s, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t k = nl - 1; k > 0; k--)
        if (k <= n && !memcmp(s + n - k, needle, k))
            return k;
    return 0;
}

/* Never cut inside a UTF-8 character when holding text back. */
static size_t char_boundary(const char *s, size_t at)
{
    while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80)
        at--;
    return at;
}

static void take_pending(output_filter *o, size_t n)
{
    if (!o->pending.data) /* nothing was ever pending (a turn that generated nothing) */
        return;
    memmove(o->pending.data, o->pending.data + n, o->pending.len - n);
    o->pending.len -= n;
    o->pending.data[o->pending.len] = '\0';
}

/* Content with stop sequences: emit what can no longer become a stop sequence. */
static void flush_content(output_filter *o, bool final)
{
    const char *s = o->pending.data ? o->pending.data : "";
    size_t n = o->pending.len;
    size_t cut = n;
    for (size_t i = 0; i < o->n_stop; i++) {
        const char *hit = memmem(s, n, o->stop[i], strlen(o->stop[i]));
        if (hit && (size_t)(hit - s) < cut) {
            cut = (size_t)(hit - s);
            o->stopped = true;
        }
    }
    if (o->stopped) {
        emit_content(o, s, cut);
        sb_clear(&o->pending);
        o->state = ST_DONE;
        return;
    }
    size_t hold = 0;
    for (size_t i = 0; !final && i < o->n_stop; i++) {
        size_t k = partial_suffix(s, n, o->stop[i]);
        if (k > hold)
            hold = k;
    }
    size_t emit = char_boundary(s, n - hold);
    emit_content(o, s, emit);
    take_pending(o, emit);
}

static void process(output_filter *o, bool final)
{
    for (;;) {
        const char *s = o->pending.data ? o->pending.data : "";
        size_t n = o->pending.len;
        switch (o->state) {
        case ST_START: {
            size_t m = n < strlen(THINK_OPEN) ? n : strlen(THINK_OPEN);
            if (memcmp(s, THINK_OPEN, m)) {
                o->state = ST_CONTENT;
                continue;
            }
            if (n < strlen(THINK_OPEN)) {
                if (final)
                    o->state = ST_CONTENT;
                else
                    return;
                continue;
            }
            take_pending(o, strlen(THINK_OPEN));
            o->state = ST_THINK;
            continue;
        }
        case ST_THINK: {
            const char *close = memmem(s, n, THINK_CLOSE, strlen(THINK_CLOSE));
            if (close) {
                size_t len = (size_t)(close - s);
                while (len && s[len - 1] == '\n')
                    len--;
                emit_thinking(o, s, len);
                take_pending(o, (size_t)(close - s) + strlen(THINK_CLOSE));
                o->state = ST_AFTER_THINK;
                continue;
            }
            /* hold a partial "</think>" and trailing newlines (they are trimmed before it) */
            size_t keep = final ? 0 : partial_suffix(s, n, THINK_CLOSE);
            size_t len = n - keep;
            if (!final)
                while (len && s[len - 1] == '\n')
                    len--;
            len = char_boundary(s, len);
            emit_thinking(o, s, len);
            take_pending(o, len);
            return;
        }
        case ST_AFTER_THINK: {
            size_t k = 0;
            while (k < n && s[k] == '\n')
                k++;
            take_pending(o, k);
            if (o->pending.len == 0 && !final)
                return;
            o->state = ST_CONTENT;
            continue;
        }
        case ST_CONTENT: flush_content(o, final); return;
        case ST_DONE: sb_clear(&o->pending); return;
        }
    }
}

output_status output_push(output_filter *o, const int32_t *ids, size_t n)
{
    if (o->stopped)
        return OUTPUT_STOP;
    size_t room = o->num_predict < 0 ? n : (size_t)o->num_predict - o->taken;
    size_t take = n < room ? n : room;
    strbuf text = {0};
    decode_stream_push(&o->ds, o->tok, ids, take, &text);
    o->taken += take;
    if (text.len)
        sb_append(&o->pending, text.data, text.len);
    sb_free(&text);
    bool limit = o->num_predict >= 0 && o->taken >= (size_t)o->num_predict;
    if (limit)
        decode_stream_finish(&o->ds, &o->pending); /* nothing more will come: flush a held tail */
    process(o, false);
    if (o->stopped)
        return OUTPUT_STOP;
    return limit ? OUTPUT_LIMIT : OUTPUT_MORE;
}

void output_finish(output_filter *o)
{
    decode_stream_finish(&o->ds, &o->pending);
    process(o, true);
}

size_t output_ids_taken(const output_filter *o)
{
    return o->taken;
}

const char *output_content(const output_filter *o)
{
    return o->content.data;
}
