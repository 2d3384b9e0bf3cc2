/* session: what the runtime's KV cache holds, and the plan for the next turn (docs/design.md, "The key
 * decision"). The runtime keeps the conversation in its KV cache and prefills only what our
 * tokenizer service hands it, so for each request the session decides:
 *   - continue: the request extends the conversation the cache holds (same system prompt, same
 *     earlier messages, the assistant reply we produced last, a turn that ended normally): stage
 *     only the new tokens: "<|im_end|>\n" (the runtime never feeds the end of its own reply) + the
 *     new messages rendered as the chat template renders them inside the whole conversation + the
 *     generation prompt;
 *   - reset: otherwise: reset the runtime with the system block, stage the rest of the rendered
 *     conversation;
 * and fits the turn into the runtime's budget (§2.8: history + turn <= max prefill, turn <= the
 * 128-aligned remainder) by dropping the oldest turns (the system prompt is kept), as Ollama
 * truncates. When turns must be dropped, or the held conversation has no room left for the next
 * turn, it keeps at most retain_ratio of the window, so a long chat resets once every several
 * turns instead of on every turn. A newest turn that is too long alone is cut in the middle (its
 * start and its end kept) when truncate is on, as Ollama's runner does. Earlier replies stay in
 * the cache exactly as generated (with their think block) while the conversation continues; after
 * a reset they are rendered as the template does. Pure logic: no I/O, no threads.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#ifndef AXLLAMA_ENGINE_SESSION_H
#define AXLLAMA_ENGINE_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    char *role;
    char *content;              /* assistant: the reply as returned (think block stripped) */
    chat_tool_call *tool_calls; /* assistant: owned copies (name, arguments_json) */
    size_t n_tool_calls;
} held_message;

typedef struct {
    bool valid;         /* false: what the runtime holds is unknown (new runtime, failure) */
    bool continuable;   /* the last turn ended with EOS: the cache holds exactly that reply */
    idvec kv_ids;       /* every id in the cache, in order */
    char *system;       /* system prompt of the held conversation (NULL: none) */
    char *tools;        /* the tool definitions it was rendered with, joined by "\n" (NULL: none) */
    held_message *msgs; /* the conversation after the system message, reply included */
    size_t n_msgs;
    size_t skipped;        /* the client's messages (after the system message) that precede msgs: dropped
                         by the last reset to fit; a request continues when msgs follow them */
    size_t system_len;     /* kv_ids starts with this many ids of the reset's system block */
    size_t last_generated; /* ids the last turn generated (the end of kv_ids) */
    bool last_greedy;      /* the last turn was decoded greedily (set by the engine): it can be replayed */
} session;

typedef struct {
    const tokenizer *tok;
    chat_template_family family;
    int max_prefill;            /* 2048 for Qwen3-4B */
    int max_positions;          /* 2559 */
    const char *default_system; /* prepended when the first message is not a system message; NULL/"" = none */
    /* When history must be dropped (or a continuation found no room), keep at most this share of
     * max_prefill, so that the next turns continue instead of each resetting a full window (the
     * context cliff). 0: SESSION_DEFAULT_RETAIN; >= 1: refill the whole window. */
    double retain_ratio;
    /* The newest turn alone does not fit: cut its middle (true, Ollama's truncate) or refuse it. */
    bool truncate;
} session_model;

#define SESSION_DEFAULT_RETAIN 0.5
/* A truncated turn keeps this many of its first tokens (the message header and the first words),
 * then its end: Ollama's runner keeps num_keep tokens and the end of the prompt. */
#define SESSION_TRUNCATE_KEEP_START 8

typedef struct {
    bool reset;
    idvec reset_ids;         /* reset: the system block to stage for /api/reset (may be empty) */
    idvec diff;              /* the ids to stage for /api/generate (the prompt to prefill) */
    size_t dropped;          /* messages dropped from the front to fit */
    size_t truncated;        /* tokens cut from the middle of the newest turn to fit (model.truncate) */
    bool truncated_at_least; /* the turn was too long to count (encoding stopped at the window's size):
                                truncated is a lower bound */
    size_t skipped;          /* the request's messages (after the system message) not rendered: see session */
    /* the conversation this plan renders (owned copies), to commit after the turn */
    char *system;
    char *tools;
    held_message *msgs;
    size_t n_msgs;
} session_plan;

void session_init(session *s);
void session_free(session *s);
/* Forget what the runtime holds: the next plan resets. */
void session_invalidate(session *s);

typedef enum {
    PLAN_ANY,            /* continue when possible, else reset */
    PLAN_RESET,          /* reset (fitting as usual) */
    PLAN_RESET_LAST_TURN /* reset with only the last turn after the system message (the fallback
                            when the runtime still reports a full context) */
} plan_mode;

/* Plans a chat turn for msgs (the whole conversation of the request; think -1/0/1 =
 * enable_thinking not given / false / true). false with a message when it cannot fit even with
 * one turn, or when the conversation cannot be rendered. */
bool session_plan_chat(const session *s, const session_model *m, const chat_message *msgs, size_t n, int think,
                       plan_mode mode, session_plan *plan, char *err, size_t errlen);
/* The same with tool definitions (each serialised as the template's `tool | tojson`; see
 * chat_template_options.tools_json), rendered into the system block. Tools and tool calls take
 * part in the comparison: the conversation continues only with the same tool list (else the
 * system block differs: reset), and a held assistant message matches the request's only when its
 * tool calls are the same (same names, arguments equal as JSON values, in order); tool messages
 * compare by content (the templates render nothing else of them). */
bool session_plan_chat_tools(const session *s, const session_model *m, const chat_message *msgs, size_t n,
                             const char *const *tools_json, size_t n_tools, int think, plan_mode mode,
                             session_plan *plan, char *err, size_t errlen);
/* Plans a raw prompt (no template): always a reset with an empty system block. */
bool session_plan_raw(const session_model *m, const char *prompt, session_plan *plan, char *err, size_t errlen);
void session_plan_free(session_plan *plan);

/* The turn ran: the cache now holds the plan's ids + generated (EOS excluded); reply = the
 * answer as returned to the client; continuable = ended with EOS. raw plans leave the session
 * invalid for continuation. */
void session_commit(session *s, session_plan *plan, const int32_t *generated, size_t n_generated, const char *reply,
                    bool continuable);
/* The same, with the tool calls parsed from the reply (reply = the content without the
 * <tool_call> blocks, as the client got it). */
void session_commit_calls(session *s, session_plan *plan, const int32_t *generated, size_t n_generated,
                          const char *reply, const chat_tool_call *calls, size_t n_calls, bool continuable);

/* The user messages the held conversation holds (1 for a one-off request such as a title). */
size_t session_user_turns(const session *s);
/* Whether plan's conversation is the held one taken back to an earlier point (its messages are the
 * held messages' start: the client went back, or started over with the same first message). */
bool session_plan_rewinds(const session *s, const session_plan *plan);

/* What it takes to put the held conversation back into a runtime that lost it (the engine's
 * restore, engine.c): reset with the system block (reset_ids), then prefill everything after it but
 * the last generated id (full = kv_ids without that id; its last n_diff ids are the prefill), and
 * let greedy decoding generate *last_id again and end the turn. False when the conversation cannot
 * be restored that way (not continuable, nothing generated, or the prefill would not fit). */
bool session_restore_ids(const session *s, const session_model *m, idvec *reset_ids, idvec *full, size_t *n_diff,
                         int32_t *last_id);

/* The assistant text as compared between turns: <think>...</think> removed, then surrounding
 * whitespace trimmed. Caller frees. */
char *session_normalize_reply(const char *content);

#endif
