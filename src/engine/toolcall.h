/* toolcall: finds Qwen-style tool calls in streamed answer text. The Qwen3 / Qwen2.5 chat
 * templates ask the model to answer a call as
 *     <tool_call>\n{"name": "<function-name>", "arguments": <args-json-object>}\n</tool_call>
 * The parser takes the content text piece by piece (blocks may be split anywhere across pieces)
 * and passes on plain text as soon as it cannot be the start of a block, and each block as one
 * call once its </tool_call> arrived. A block is well-formed when its text (whitespace around
 * it ignored) is a JSON object with a non-empty string "name" and an "arguments" that is an
 * object, absent/null (= {}), or a string holding a JSON object (some models quote it). Anything
 * else (bad JSON, no name, arguments of another type, no closing tag at the end) is passed on as
 * text, verbatim, tags included: never lost, never a crash. Text that is only whitespace next to a
 * call (Qwen3 writes "\n" between parallel calls and after the last) is no content and is dropped;
 * text with words keeps its whitespace. Pure logic: no I/O, no threads. */
#ifndef AXLLAMA_ENGINE_TOOLCALL_H
#define AXLLAMA_ENGINE_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#define TOOLCALL_OPEN "<tool_call>"
#define TOOLCALL_CLOSE "</tool_call>"

/* Plain text (len > 0). */
typedef void (*toolcall_text_fn)(void *user, const char *text, size_t len);
/* A call: name non-empty; arguments = the arguments object as compact JSON, keys in the order
 * the model wrote them. Both valid only during the call. */
typedef void (*toolcall_call_fn)(void *user, const char *name, const char *arguments);

typedef struct toolcall_parser toolcall_parser;

toolcall_parser *toolcall_new(toolcall_text_fn on_text, toolcall_call_fn on_call, void *user);
void toolcall_free(toolcall_parser *p);
void toolcall_push(toolcall_parser *p, const char *text, size_t len);
/* The answer ended: passes on what is held (a partial tag, an unclosed block: as text, unless
 * the unclosed block's text is a complete well-formed call, which is then a call). */
void toolcall_finish(toolcall_parser *p);

/* One block's inner text (between the tags): true and *name / *arguments (caller frees) when it
 * is well-formed (see above). */
bool toolcall_parse_block(const char *text, size_t len, char **name, char **arguments);

#endif
