/* emu_runtime: the vendor runtime's state machine (docs/spec/runtime-protocol.md §2, G-API + G-LLM),
 * reproduced with its quirks: one worker thread runs reset and generate tasks from a FIFO queue;
 * the busy flag is set only while a task (or a synchronous chat) runs; a text queue that nothing
 * ever clears; /api/stop only sets a flag that the next run clears; KV-cache bookkeeping
 * (precompute_len, prefill groups, the SetKVCache budget rules and the context-full text); sticky
 * sampling settings; the tokenizer-service traffic of §5.5. The model is replaced by a
 * deterministic reply (Qwen3's think block, empty or holding --emu-think-text, then an echo of the
 * last user message's ids, then EOS) produced at the speed of a timing profile. Thread-safe: the
 * HTTP layer calls it from any thread. */
#ifndef AXLLAMA_EMU_RUNTIME_H
#define AXLLAMA_EMU_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/emu_options.h"
#include "emu/emu_profile.h"
#include "emu/emu_tokclient.h"

/* The context-full text, literally (the %d is never formatted by the vendor). */
#define EMU_CONTEXT_FULL_TEXT "error: SetKVCache failed: %d,the context may be full,please reset"

typedef struct emu_runtime emu_runtime;

typedef struct {
    bool temperature_on;
    float temperature;
    bool repetition_on;
    float repetition_penalty;
    int penalty_window;
    bool top_p_on;
    float top_p;
    bool top_k_on;
    int top_k;
} emu_sampler;

/* opt, profile and tok are borrowed and must outlive the runtime. initial: the sampler settings
 * from post_config.json (or all disabled). eos_id from the tokenizer service. */
emu_runtime *emu_runtime_new(const emu_options *opt, const emu_profile *profile, emu_tokclient *tok,
                             const emu_sampler *initial, int eos_id);
/* The reasoning of --emu-think-text as ids: what goes between "<think>\n" and "\n</think>" of every
 * reply (the ids are copied; none = Qwen3's empty think block). Call before emu_runtime_start. */
void emu_runtime_set_think_ids(emu_runtime *rt, const int32_t *ids, size_t n);
/* Tokenizes text (--emu-think-text) with the tokenizer service: one /encode with text as
 * last_reply, whose ids are read between "<|im_start|>assistant\n" and "<|im_end|>" of token_ids
 * (between special tokens, so nothing merges across the edges). The service strips leading and
 * trailing newlines from a last_reply: they come back as one "\n" id each. This changes the uid's
 * conversation on the service, so the emulator calls it at start-up right before its /reset.
 * TOKC_BAD_ANSWER also when the assistant message cannot be found in the answer. */
tokc_status emu_runtime_tokenize_think_text(emu_tokclient *tok, const char *text, idvec *ids);
/* Starts the worker thread. */
void emu_runtime_start(emu_runtime *rt);
/* The SIGINT path: lets the running task and every queued one finish, then joins the worker. */
void emu_runtime_finish(emu_runtime *rt);
void emu_runtime_free(emu_runtime *rt);

bool emu_runtime_busy(emu_runtime *rt);
/* True once a hang fault fired: nothing answers any more. */
bool emu_runtime_hung(emu_runtime *rt);
/* Blocks the calling thread for good when the runtime is hung (the hang fault). */
void emu_runtime_block_if_hung(emu_runtime *rt);

void emu_runtime_queue_reset(emu_runtime *rt, const char *system_prompt);
void emu_runtime_queue_generate(emu_runtime *rt, const char *prompt);
/* generate_provider: takes everything queued; *done = not busy at that moment. Caller frees. */
char *emu_runtime_drain(emu_runtime *rt, bool *done);

/* The runtime's HTTP endpoints, counted as requests arrive (the emulator's own bookkeeping, not a
 * vendor behaviour): tests and make bench read the totals from the log line at a clean exit. */
typedef enum { EMU_CALL_RESET, EMU_CALL_GENERATE, EMU_CALL_PROVIDER, EMU_CALL_STOP, EMU_CALL_CHAT, EMU_CALLS } emu_call;
void emu_runtime_count_call(emu_runtime *rt, emu_call call);
/* Logs "emulator calls: reset N, generate N, generate_provider N, stop N, chat N". */
void emu_runtime_log_calls(emu_runtime *rt);
/* /api/chat: runs the generation on the calling thread, no streaming; returns the reply (or the
 * context-full text, or "" when the runtime was busy). Caller frees. */
char *emu_runtime_chat(emu_runtime *rt, const char *prompt);
/* /api/stop: sets the stop flag (lost if nothing runs: the next run clears it). */
void emu_runtime_stop_generation(emu_runtime *rt);

/* set_llm_config's rules, one key at a time (keys: temperature, repetition_penalty, top-p,
 * top-k), with the vendor's log lines. */
void emu_runtime_set_sampling(emu_runtime *rt, const char *key, double value);
emu_sampler emu_runtime_sampler(emu_runtime *rt);

#endif
