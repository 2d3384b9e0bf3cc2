/* fuzz_chat_template: chat template rendering (src/tokenizer/chat_template.c), both families. The
 * input:
 *   byte 0   bit 0 family (Qwen3 / Qwen2.5), bit 1 add_generation_prompt, bits 2-3 enable_thinking
 *            (0 and 3: not given, 1: false, 2: true), bits 4-5 the number of tools (0..3)
 *   byte 1   first_message (% 8) for the incremental render
 *   then     fields separated by NUL: each tool's JSON text; then per message a header field (byte
 *            0: role: 's' system, 'u' user, 'a' assistant, 't' tool, anything else: the field's
 *            text is the role, a wrong one; byte 1: bits 0-1 tool calls (0..3), bit 2 reasoning
 *            given), its content, its reasoning if given, and name + arguments per tool call.
 * Properties:
 *   - render succeeds exactly when there is a message and every role is one of the four;
 *   - the render from first_message k is a suffix of the whole render (what is appended to a KV
 *     cache holding the earlier messages renders as inside the whole conversation);
 *   - every user message's content and every tool definition appear in the whole render;
 *   - the render is valid UTF-8 when everything given is;
 *   - rendering is deterministic. */
#include "fuzz_common.h"
#include "tokenizer/chat_template.h"

#define MAX_MESSAGES 32
#define MAX_TOOLS 3
#define MAX_CALLS 3

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

typedef struct {
    chat_message msgs[MAX_MESSAGES];
    chat_tool_call calls[MAX_MESSAGES][MAX_CALLS];
    const char *tools[MAX_TOOLS];
    size_t n_msgs, n_tools;
    char *owned[MAX_MESSAGES * (4 + 2 * MAX_CALLS) + MAX_TOOLS];
    size_t n_owned;
    bool all_utf8, roles_known;
} conversation;

/* The next NUL-separated field as a string kept by c. */
static const char *take(conversation *c, fuzz_reader *r)
{
    size_t len;
    const char *s = fuzz_field(r, 0, &len);
    c->all_utf8 = c->all_utf8 && utf8_is_valid(s, len);
    return c->owned[c->n_owned++] = xstrndup(s, len);
}

static void read_conversation(conversation *c, fuzz_reader *r, size_t n_tools)
{
    memset(c, 0, sizeof *c);
    c->all_utf8 = c->roles_known = true;
    for (size_t t = 0; t < n_tools; t++)
        c->tools[c->n_tools++] = take(c, r);
    while (r->n > 0 && c->n_msgs < MAX_MESSAGES) {
        chat_message *m = &c->msgs[c->n_msgs];
        const char *head = take(c, r);
        uint8_t flags = head[0] ? (uint8_t)head[1] : 0;
        switch (head[0]) {
        case 's': m->role = "system"; break;
        case 'u': m->role = "user"; break;
        case 'a': m->role = "assistant"; break;
        case 't': m->role = "tool"; break;
        default:
            m->role = head;
            c->roles_known = false;
            break;
        }
        m->content = take(c, r);
        if (flags & 4)
            m->reasoning_content = take(c, r);
        m->n_tool_calls = flags & 3;
        for (size_t k = 0; k < m->n_tool_calls; k++) {
            c->calls[c->n_msgs][k].name = take(c, r);
            c->calls[c->n_msgs][k].arguments_json = take(c, r);
        }
        m->tool_calls = m->n_tool_calls ? c->calls[c->n_msgs] : NULL;
        c->n_msgs++;
    }
}

static void free_conversation(conversation *c)
{
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader in = {data, size};
    uint8_t flags = fuzz_byte(&in), first = fuzz_byte(&in);
    chat_template_family family = flags & 1 ? CHAT_TEMPLATE_QWEN25 : CHAT_TEMPLATE_QWEN3;
    int thinking = (flags >> 2) & 3;
    conversation *c = xmalloc(sizeof *c);
    read_conversation(c, &in, (flags >> 4) & 3);
    chat_template_options opt = {
        .add_generation_prompt = flags & 2,
        .enable_thinking = thinking == 1   ? 0
                           : thinking == 2 ? 1
                                           : -1,
        .tools_json = c->n_tools ? c->tools : NULL,
        .n_tools = c->n_tools,
    };

    strbuf whole = {0}, again = {0}, part = {0};
    sb_append(&whole, "", 0);
    bool ok = chat_template_render(family, c->msgs, c->n_msgs, &opt, &whole);
    bool want_ok = c->n_msgs > 0 && c->roles_known;
    FUZZ_CHECK(ok == want_ok, "render answered %d for %zu messages (roles known: %d)", ok, c->n_msgs, c->roles_known);
    if (!ok) {
        FUZZ_CHECK(whole.len == 0, "a refused render wrote %zu bytes", whole.len);
        goto done;
    }

    sb_append(&again, "", 0);
    FUZZ_CHECK(chat_template_render(family, c->msgs, c->n_msgs, &opt, &again), "the second render failed");
    FUZZ_CHECK(again.len == whole.len && !memcmp(again.data, whole.data, whole.len), "rendering is not deterministic");

    if (c->all_utf8)
        FUZZ_CHECK(utf8_is_valid(whole.data, whole.len), "the render is not valid UTF-8");
    for (size_t i = 0; i < c->n_msgs; i++)
        if (!strcmp(c->msgs[i].role, "user"))
            FUZZ_CHECK(memmem(whole.data, whole.len, c->msgs[i].content, strlen(c->msgs[i].content)),
                       "user message %zu is not in the render", i);
    for (size_t t = 0; t < c->n_tools; t++)
        FUZZ_CHECK(memmem(whole.data, whole.len, c->tools[t], strlen(c->tools[t])), "tool %zu is not in the render", t);

    opt.first_message = first % 8;
    sb_append(&part, "", 0);
    FUZZ_CHECK(chat_template_render(family, c->msgs, c->n_msgs, &opt, &part), "the incremental render failed");
    FUZZ_CHECK(part.len <= whole.len && !memcmp(whole.data + whole.len - part.len, part.data, part.len),
               "the render from message %zu is not a suffix of the whole:\n  whole %s\n  part  %s", opt.first_message,
               fuzz_show(whole.data, whole.len), fuzz_show(part.data, part.len));
done:
    sb_free(&whole);
    sb_free(&again);
    sb_free(&part);
    free_conversation(c);
    free(c);
    return 0;
}
