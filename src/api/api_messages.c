/* api_messages: a request's conversation for the engine (see api_messages.h). */
#include "api/api_messages.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_common.h"
#include "api/tojson.h"
#include "common/buf.h"

void api_message_list_init_sized(api_message_list *l, size_t max_messages, size_t max_calls, size_t max_owned)
{
    memset(l, 0, sizeof *l);
    l->msgs = xcalloc(max_messages ? max_messages : 1, sizeof *l->msgs);
    l->calls = xcalloc(max_calls ? max_calls : 1, sizeof *l->calls);
    l->owned = xcalloc(max_owned + 1, sizeof *l->owned);
}

void api_message_list_init(api_message_list *l, json_t *messages)
{
    size_t n = json_array_size(messages), total_calls = 0;
    for (size_t i = 0; i < n; i++)
        total_calls += json_array_size(api_field(json_array_get(messages, i), "tool_calls"));
    /* at most one kept string per message (its joined content) and per tool call */
    api_message_list_init_sized(l, n, total_calls, n + total_calls);
}

chat_message *api_message_list_add(api_message_list *l, const char *role)
{
    chat_message *cm = &l->msgs[l->n++];
    cm->role = role;
    return cm;
}

const char *api_message_list_keep(api_message_list *l, char *s)
{
    l->owned[l->n_owned++] = s;
    return s;
}

void api_message_add_tool_call(api_message_list *l, chat_message *cm, const char *name, const json_t *arguments)
{
    if (cm->n_tool_calls == 0)
        cm->tool_calls = &l->calls[l->n_calls];
    chat_tool_call *call = &l->calls[l->n_calls++];
    call->name = name;
    call->arguments_json = api_message_list_keep(l, arguments ? tojson_dumps(arguments) : xstrdup("{}"));
    cm->n_tool_calls++;
}

void api_message_list_free(api_message_list *l)
{
    for (size_t i = 0; i < l->n_owned; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->calls);
    free(l->msgs);
    memset(l, 0, sizeof *l);
}

const char *api_canonical_role(const char *role, bool developer_is_system)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    if (!role)
        return NULL;
    if (developer_is_system && !strcasecmp(role, "developer"))
        return "system";
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcasecmp(role, roles[i]))
            return roles[i];
    return NULL;
}
