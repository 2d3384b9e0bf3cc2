/* toolcall: streamed <tool_call> block parsing. See toolcall.h. */
#include "engine/toolcall.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct toolcall_parser {
    toolcall_text_fn on_text;
    toolcall_call_fn on_call;
    void *user;
    bool in_block; /* after an opening tag */
    strbuf held;   /* text: a possible partial opening tag; in a block: the block's inner text */
    strbuf space;  /* the text since the last call (or the start) while it is only whitespace */
    bool texted;   /* that text has more than whitespace: it is passed on as it comes */
    bool called;   /* a call was passed on */
};

toolcall_parser *toolcall_new(toolcall_text_fn on_text, toolcall_call_fn on_call, void *user)
{
    toolcall_parser *p = xcalloc(1, sizeof *p);
    p->on_text = on_text;
    p->on_call = on_call;
    p->user = user;
    return p;
}

void toolcall_free(toolcall_parser *p)
{
    if (!p)
        return;
    sb_free(&p->held);
    sb_free(&p->space);
    free(p);
}

static bool is_space_char(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Passes text on, except text that is only whitespace next to a call: Qwen writes "\n" between
 * parallel calls and around them, which is no content. The text since the last call is held while
 * it is only whitespace: passed on once something else follows in it, dropped when a call follows,
 * passed on at the end only if there was no call at all. */
static void text_out(toolcall_parser *p, const char *s, size_t n)
{
    if (!n)
        return;
    if (!p->texted) {
        size_t lead = 0;
        while (lead < n && is_space_char(s[lead]))
            lead++;
        if (lead == n) {
            sb_append(&p->space, s, n);
            return;
        }
        p->texted = true;
        if (p->space.len)
            p->on_text(p->user, p->space.data, p->space.len);
        sb_clear(&p->space);
    }
    p->on_text(p->user, s, n);
}

static void call_out(toolcall_parser *p, const char *name, const char *arguments)
{
    sb_clear(&p->space);
    p->texted = false;
    p->called = true;
    p->on_call(p->user, name, arguments);
}

bool toolcall_parse_block(const char *text, size_t len, char **name, char **arguments)
{
    *name = *arguments = NULL;
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) {
        json_decref(v);
        return false;
    }
    json_t *n = json_object_get(v, "name");
    json_t *a = json_object_get(v, "arguments");
    json_t *args = NULL;
    if (json_is_string(n) && json_string_length(n) > 0) {
        if (!a || json_is_null(a))
            args = json_object();
        else if (json_is_object(a))
            args = json_incref(a);
        else if (json_is_string(a)) {
            json_t *inner = json_loadb(json_string_value(a), json_string_length(a), JSON_REJECT_DUPLICATES, &jerr);
            if (json_is_object(inner))
                args = inner;
            else
                json_decref(inner);
        }
    }
    if (args) {
        *name = xstrdup(json_string_value(n));
        *arguments = json_dumps(args, JSON_COMPACT);
        json_decref(args);
    }
    json_decref(v);
    if (*name && !*arguments) { /* cannot happen: jansson only fails on out of memory */
        free(*name);
        *name = NULL;
    }
    return *name != NULL;
}

/* A closed block: a call, or its text verbatim. */
static void block_out(toolcall_parser *p, const char *inner, size_t n, bool closed)
{
    char *name, *arguments;
    if (toolcall_parse_block(inner, n, &name, &arguments)) {
        call_out(p, name, arguments);
        free(name);
        free(arguments);
        return;
    }
    text_out(p, TOOLCALL_OPEN, strlen(TOOLCALL_OPEN));
    text_out(p, inner, n);
    if (closed)
        text_out(p, TOOLCALL_CLOSE, strlen(TOOLCALL_CLOSE));
}

/* Length of the longest suffix of s that is a proper prefix of tag. */
static size_t partial_tag(const char *s, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t k = (n < tl - 1 ? n : tl - 1); k > 0; k--)
        if (!memcmp(s + n - k, tag, k))
            return k;
    return 0;
}

static void drop_front(strbuf *b, size_t n)
{
    if (!n)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void toolcall_push(toolcall_parser *p, const char *text, size_t len)
{
    sb_append(&p->held, text, len);
    for (;;) {
        const char *s = p->held.data ? p->held.data : "";
        size_t n = p->held.len;
        if (!p->in_block) {
            const char *open = memmem(s, n, TOOLCALL_OPEN, strlen(TOOLCALL_OPEN));
            if (open) {
                text_out(p, s, (size_t)(open - s));
                drop_front(&p->held, (size_t)(open - s) + strlen(TOOLCALL_OPEN));
                p->in_block = true;
                continue;
            }
            size_t keep = partial_tag(s, n, TOOLCALL_OPEN);
            text_out(p, s, n - keep);
            drop_front(&p->held, n - keep);
            return;
        }
        const char *close = memmem(s, n, TOOLCALL_CLOSE, strlen(TOOLCALL_CLOSE));
        if (!close)
            return; /* the whole block is held until it closes */
        size_t inner = (size_t)(close - s);
        block_out(p, s, inner, true);
        drop_front(&p->held, inner + strlen(TOOLCALL_CLOSE));
        p->in_block = false;
    }
}

void toolcall_finish(toolcall_parser *p)
{
    if (p->in_block)
        block_out(p, p->held.data ? p->held.data : "", p->held.len, false);
    else
        text_out(p, p->held.data ? p->held.data : "", p->held.len);
    if (p->space.len && !p->called)
        p->on_text(p->user, p->space.data, p->space.len);
    sb_clear(&p->space);
    sb_clear(&p->held);
    p->in_block = false;
}
