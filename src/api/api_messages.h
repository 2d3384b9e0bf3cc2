/* api_messages: the conversation of a request as the engine takes it (chat_message list), built
 * the same way for /api/chat and /v1/chat/completions: room for every message and tool call of the
 * JSON array, role names made canonical, tool-call arguments serialised as the chat template's
 * `arguments | tojson` prints them, and one free for everything. What a message may contain and
 * the error texts stay with each API's decoder (ollama_decode.c, openai_decode.c). */
#ifndef AXLLAMA_API_API_MESSAGES_H
#define AXLLAMA_API_API_MESSAGES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "tokenizer/chat_template.h"

/* Strings stay owned by the request's JSON body, except those the list keeps (joined content
 * parts, serialised tool-call arguments), freed with the list. */
typedef struct {
    chat_message *msgs;
    size_t n;
    chat_tool_call *calls;
    size_t n_calls;
    char **owned;
    size_t n_owned;
} api_message_list;

/* An empty list with room for the messages of the JSON array messages and every tool call they
 * carry (each message's "tool_calls" array). */
void api_message_list_init(api_message_list *l, json_t *messages);

/* An empty list with room for max_messages messages, max_calls tool calls and max_owned kept
 * strings (for requests whose messages are not one JSON array of chat messages). */
void api_message_list_init_sized(api_message_list *l, size_t max_messages, size_t max_calls, size_t max_owned);

/* Appends a message with this role (the other fields zero) and returns it. */
chat_message *api_message_list_add(api_message_list *l, const char *role);

/* Takes over s (freed with the list) and returns it. */
const char *api_message_list_keep(api_message_list *l, char *s);

/* Appends a tool call to cm, the list's last message: name (borrowed) and arguments (NULL: {}),
 * serialised by tojson_dumps. */
void api_message_add_tool_call(api_message_list *l, chat_message *cm, const char *name, const json_t *arguments);

void api_message_list_free(api_message_list *l);

/* system, user, assistant or tool for any capitalisation of them (Ollama lower-cases roles);
 * with developer_is_system, "developer" (OpenAI's newer name for system instructions) is system.
 * NULL for anything else, and for NULL. */
const char *api_canonical_role(const char *role, bool developer_is_system);

#endif
