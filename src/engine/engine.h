/* engine: turns stateless Ollama/OpenAI requests into the runtime's stateful protocol. One worker
 * takes jobs in FIFO order from a bounded queue (OLLAMA_MAX_QUEUE, 503 past it); one model is loaded
 * at a time (a request for another model unloads the current one, as Ollama does when memory is
 * short); per job: load the model if needed (supervisor + in-process tokenizer service), make the
 * runtime's KV cache right (continue or reset, see session.h), stage exactly the tokens to prefill,
 * generate, stream text as the runtime's /decode calls produce it, enforce num_predict and stop
 * sequences with /api/stop, split <think> blocks from content, parse <tool_call> blocks into tool
 * calls when the request has tools (engine/toolcall.h), count tokens exactly. Idle models are
 * unloaded when their keep_alive expires.
 *
 * The API layer builds a job_request, submits it, then reads events until DONE or ERROR. */
#ifndef AXLLAMA_ENGINE_ENGINE_H
#define AXLLAMA_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "models/manifest.h"
#include "supervisor/supervisor.h"
#include "tokenizer/chat_template.h"

typedef struct {
    bool has_temperature, has_top_k, has_top_p, has_repeat_penalty, has_num_predict;
    double temperature;
    int top_k;
    double top_p;
    double repeat_penalty;
    int num_predict; /* < 0: no limit */
    char **stop;     /* stop sequences */
    size_t n_stop;
} gen_options;

typedef enum {
    JOB_CHAT, /* messages rendered with the model's chat template */
    JOB_RAW,  /* /api/generate raw: the prompt as is, no template */
    JOB_LOAD, /* empty prompt / no messages: load the model only (done_reason "load") */
} job_kind;

typedef struct {
    job_kind kind;
    const char *model; /* the name as the request sent it */
    /* JOB_CHAT: the whole conversation (copied by submit, tool_calls included: an assistant
     * message's calls are rendered with arguments_json as given, which must be the arguments
     * object serialised by tojson_dumps(); role "tool" messages carry the tool's result as
     * content, rendered as <tool_response> blocks (the Qwen templates do not show a tool name)) */
    const chat_message *messages;
    size_t n_messages;
    const char *raw_prompt; /* JOB_RAW */
    int think;              /* -1: the model's default, 0: off, 1: on */
    /* Tool definitions (JOB_CHAT), each one already serialised as the chat template's
     * `tool | tojson` prints it (tojson_dumps() in api/tojson.h: json.dumps(ensure_ascii=False),
     * ", " and ": " separators, keys in the order given). Copied by submit. n_tools > 0 renders
     * them into the prompt AND turns on the tool-call parser: each well-formed
     * `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block of the answer becomes a
     * JOB_EV_TOOL_CALL event instead of content (a malformed block stays content, verbatim).
     * Without tools, <tool_call> text is plain content. */
    const char *const *tools_json;
    size_t n_tools;
    /* Text appended to the system prompt (JOB_CHAT): to the request's first message if it is a
     * system message ("<system>\n\n<suffix>"), else to the model's default system prompt, else it
     * becomes the system message. Used for `format` (format_instruction() in api/format.h).
     * NULL / "" = none. Ignored for JOB_RAW. Copied by submit. */
    const char *system_suffix;
    gen_options options; /* copied by submit */
    bool no_truncate;    /* the request's truncate: false: a prompt too long for the context is
                               refused (400) instead of cut in the middle (Ollama's default) */
    bool has_keep_alive;
    double keep_alive_s; /* < 0: forever; 0: unload when done */
} job_request;

typedef enum {
    JOB_EV_THINKING, /* a piece of reasoning text */
    JOB_EV_CONTENT,  /* a piece of answer text */
    /* One complete tool call parsed from the answer (only when the request had tools), in order
     * with the content pieces: text before a <tool_call> block comes as CONTENT before it, text
     * after it as CONTENT after it. tool_name (non-empty) and tool_arguments (a JSON object as
     * compact text, keys in the order the model wrote them; "{}" when the model gave none) are
     * set; text is NULL. The turn still ends with DONE, done_reason "stop" (as Ollama reports it;
     * the OpenAI layer turns that into finish_reason "tool_calls" when it saw a TOOL_CALL). */
    JOB_EV_TOOL_CALL,
    JOB_EV_DONE,  /* the end: done_reason + metrics */
    JOB_EV_ERROR, /* the end: message (+ http_status, meaningful if nothing was streamed yet) */
} job_event_kind;

typedef struct {
    uint64_t total_ns, load_ns, prompt_eval_ns, eval_ns;
    /* prompt_eval_count: the tokens the NPU evaluated for this request (after a reset the system
     * block, tools and history too; on a continued conversation only the new part: the rest was in
     * the KV cache). prompt_tokens: the whole prompt the model saw (cache included), >= the former;
     * their difference is what the cache supplied. eval_count: the tokens generated. */
    int prompt_eval_count, prompt_tokens, eval_count;
} job_metrics;

typedef struct {
    job_event_kind kind;
    char *text;           /* THINKING / CONTENT piece (valid UTF-8, never empty), ERROR message */
    char *tool_name;      /* TOOL_CALL */
    char *tool_arguments; /* TOOL_CALL: compact JSON object text */
    int http_status;
    const char *done_reason; /* DONE: "stop", "length", "load" */
    job_metrics metrics;
} job_event;

typedef struct engine engine;
typedef struct job job;

typedef struct {
    const model_registry *models; /* borrowed */
    size_t max_queue;             /* OLLAMA_MAX_QUEUE, default 512 */
    size_t max_queued_bytes;      /* AXLLAMA_MAX_QUEUED_BYTES: the requests the engine holds (queued or
                                     running) take at most this many bytes of text; 0: no such limit */
    double default_keep_alive_s;  /* OLLAMA_KEEP_ALIVE, default 300; < 0 forever */
    double load_timeout_s;        /* OLLAMA_LOAD_TIMEOUT, default 300 (a manifest's value wins) */
    double stall_timeout_s;       /* AXLLAMA_STALL_TIMEOUT: a running turn with no progress this long
                                     means a hung runtime; <= 0: 120 (the server's default is 60) */
    bool reset_every_turn;        /* AXLLAMA_RESET_EVERY_TURN=1: reset and re-prefill every turn (the
                                     seeds' design, for make bench) */
    bool no_restore;              /* AXLLAMA_RESTORE=0: never put a displaced conversation back into the
                                     runtime in the background (restore.c) */
    double runtime_probe_s;       /* AXLLAMA_RUNTIME_PROBE: a ready runtime's liveness probe interval; 0: 5 */
    double context_retain;        /* AXLLAMA_CONTEXT_RETAIN: when history must be dropped, keep this
                                     share of the window; 0: 0.5 (session.h) */
    void (*log)(void *user, const char *line); /* server log (runtime output included) */
    void *log_user;
} engine_config;

engine *engine_new(const engine_config *cfg);
/* Unloads everything (stops the runtime, never leaves a child behind) and frees. Jobs still held
 * by the API get an ERROR event. */
void engine_free(engine *e);

/* Queues a job. Returns 200 and *out, or an HTTP status with a message: 404 unknown model
 * ("model 'x' not found"), 400 (e.g. think on a model without thinking), 503 queue full
 * ("server busy, please try again.  maximum pending requests exceeded"), 503 when the request's text
 * would take the requests held past max_queued_bytes (checked before the request is copied; a request
 * that finds nothing held is always taken). */
int engine_submit(engine *e, const job_request *req, job **out, char *err, size_t errlen);
/* Next event, waiting up to timeout_s; false if none came in time. After DONE or ERROR there are
 * no more events. */
bool job_next(job *j, job_event *ev, double timeout_s);
void job_event_free(job_event *ev);
/* The client went away: a queued job is dropped, a running one is stopped (/api/stop). */
void job_cancel(job *j);
/* The API is done with the job (call once; cancels it if it has not ended). */
void job_release(job *j);

/* The copy of a conversation a job holds (what engine_submit does with job_request.messages):
 * owned strings and tool calls, with suffix (NULL/"" = none) appended to the system prompt: to
 * msgs[0] when it is a system message ("<content>\n\n<suffix>", or just suffix when empty), else
 * a system message "<default_system>\n\n<suffix>" (just suffix without a default) is put first.
 * *n_out = the message count. Free with engine_messages_free. */
chat_message *engine_copy_messages(const chat_message *msgs, size_t n, const char *suffix, const char *default_system,
                                   size_t *n_out);
void engine_messages_free(chat_message *msgs, size_t n);

/* keep_alive 0 with nothing to run: unload now if idle (else when the running job ends). False
 * if the model is unknown. Never loads. */
bool engine_unload(engine *e, const char *model);

typedef struct {
    char name[128];
    rt_state state;
    int load_step, load_total;
    bool forever;      /* keep_alive < 0 */
    time_t expires_at; /* wall clock; while a job runs: now + keep_alive */
    uint64_t size;
    int context_length;
    const model_manifest *manifest;
    bool running;  /* a request runs on it now */
    size_t queued; /* requests waiting in the queue (for any model) */
} engine_loaded_model;

/* Whether the engine's worker still turns: it notes the time at least every few seconds while it
 * waits for work, loads a model or runs a turn (a single call to the runtime can hold it up to its
 * 5 s timeout, a busy runtime's back-off up to a minute). For the systemd watchdog: a worker that
 * has not been seen for max_age_s is wedged. */
bool engine_responsive(engine *e, double max_age_s);

/* What is loaded (at most max entries); for /api/ps. */
size_t engine_ps(engine *e, engine_loaded_model *out, size_t max);

/* The engine's counters, for /health and /metrics (api/health.c). */
typedef struct {
    size_t queued;                   /* jobs waiting for the worker */
    bool running;                    /* the worker runs a job */
    char loading[128];               /* the model being loaded before its runtime starts (tokenizer, service), or "" */
    uint64_t loads_ok, loads_failed; /* model loads (a runtime started and became ready, or not) */
    double load_seconds;             /* their total duration */
    double last_load_seconds;
    uint64_t restarts;     /* runtime restarts after a death or a hang, every load together */
    bool last_load_failed; /* the last load failed and none succeeded since */
    char last_load_model[128];
    char last_load_error[256];
} engine_stats;

void engine_get_stats(engine *e, engine_stats *out);

#endif
