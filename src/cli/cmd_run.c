/* cmd_run: `axllama run MODEL [PROMPT]`, the ollama CLI's run command as a client of a running
 * `axllama serve`: loads the model with a progress indicator (polling /api/ps for the runtime's
 * load progress), then answers once (PROMPT on the command line and/or piped stdin) or runs an
 * interactive session on a terminal: streamed /api/chat replies, the whole conversation sent each
 * turn (so the server reuses its KV cache), """ multi-line input, /set /show /load /clear /bye /?,
 * Ctrl-C cancelling the reply in progress, thinking shown apart, --verbose statistics. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "common/buf.h"
#include "common/utf8.h"

#define STREAM_IDLE_TIMEOUT_S 900.0 /* no byte for 15 min: beyond any load timeout of the server */
#define PS_POLL_INTERVAL_S 0.25

/* readline's colours, as the ollama CLI uses them for thinking */
#define COLOR_GREY "\033[38;5;245m"
#define COLOR_BOLD "\033[1m"
#define COLOR_DEFAULT "\033[0m"

static volatile sig_atomic_t g_interrupt;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupt = 1;
}

typedef struct {
    client c;
    char *model;
    json_t *history; /* user and assistant messages */
    char *system;    /* /set system, sent first when set */
    json_t *options; /* /set parameter */
    json_t *think;   /* NULL = not sent (the model's default), else true/false/"high"... */
    char *keep_alive;
    char *format;
    bool verbose, hide_thinking, wordwrap;
    bool color;    /* stdout is a terminal */
    bool progress; /* stderr is a terminal */
} run_state;

static const char run_usage[] =
    "Usage: axllama run MODEL [PROMPT] [flags]\n"
    "\n"
    "Runs a model of a running `axllama serve` (OLLAMA_HOST, default 127.0.0.1:11434): an interactive\n"
    "chat on a terminal, or one answer to PROMPT and/or the text piped on stdin.\n"
    "\n"
    "Flags:\n"
    "  --verbose            show timings (and the time to first token) after each reply\n"
    "  --think[=VALUE]      thinking on (true, high, medium, low) or off (false); default: the model's\n"
    "  --hidethinking       do not show the thinking text\n"
    "  --keepalive DURATION how long the model stays loaded after the request (e.g. 10m, -1)\n"
    "  --format FORMAT      response format (passed to the server)\n"
    "  --nowordwrap         accepted (axllama never wraps words itself)\n"
    "  --insecure           accepted and ignored\n"
    "\n"
    "In a session: \"\"\" starts and ends a multi-line message; /? lists the commands; Ctrl-C stops the\n"
    "reply in progress; Ctrl-D or /bye exits.\n";

/* ------------------------------------------------------------------------------------------ */
/* loading, with a progress indicator */

typedef struct {
    run_state *rs;
    double last_poll;
    unsigned spin;
    char progress[64]; /* "12/39" from /api/ps, "" if none yet */
    bool drawn;
} load_view;

/* The /api/ps entry of the model (by name with or without ":latest"), else the only entry. */
static json_t *ps_entry(json_t *ps, const char *model)
{
    json_t *models = json_object_get(ps, "models");
    char with_tag[512];
    snprintf(with_tag, sizeof with_tag, "%s%s", model, strchr(model, ':') ? "" : ":latest");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (name && (!strcasecmp(name, model) || !strcasecmp(name, with_tag)))
            return m;
    }
    return json_array_size(models) == 1 ? json_array_get(models, 0) : NULL;
}

static void load_tick(void *user)
{
    load_view *v = user;
    double now = client_now();
    if (now - v->last_poll < PS_POLL_INTERVAL_S)
        return;
    v->last_poll = now;
    client_req req = {.method = "GET", .path = "/api/ps", .timeout_s = 2.0, .abort = &g_interrupt};
    client_resp r;
    if (client_do(&v->rs->c, &req, &r) == CLIENT_OK) {
        json_t *ax = json_object_get(ps_entry(r.json, v->rs->model), "axllama");
        const char *p = json_string_value(json_object_get(ax, "progress"));
        const char *state = json_string_value(json_object_get(ax, "state"));
        if (p)
            snprintf(v->progress, sizeof v->progress, "%s", p);
        else if (state && strcmp(state, "loading"))
            v->progress[0] = '\0';
    }
    client_resp_free(&r);
    static const char *const frames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    strbuf line = {0};
    sb_printf(&line, "\r\033[K%s loading %s", frames[v->spin++ % 10], v->rs->model);
    unsigned k = 0, n = 0;
    if (sscanf(v->progress, "%u/%u", &k, &n) == 2 && n > 0 && k <= n) {
        const unsigned width = 24;
        unsigned fill = k * width / n;
        sb_puts(&line, "  [");
        for (unsigned i = 0; i < width; i++)
            sb_puts(&line, i < fill ? "█" : "░");
        sb_printf(&line, "] %u/%u", k, n);
    }
    fputs(line.data, stderr);
    fflush(stderr);
    sb_free(&line);
    v->drawn = true;
}

static void add_common(run_state *rs, json_t *body)
{
    if (rs->keep_alive) {
        char *end;
        double secs = strtod(rs->keep_alive, &end);
        if (*rs->keep_alive && !*end)
            json_object_set_new(body, "keep_alive", json_real(secs));
        else
            json_object_set_new(body, "keep_alive", json_string(rs->keep_alive));
    }
}

/* Loads the model (a chat request without messages) while showing progress. 0, or the exit
 * status after an error message. */
static int load_model(run_state *rs)
{
    json_t *body = json_pack("{ss s[] sb}", "model", rs->model, "messages", "stream", 0);
    add_common(rs, body);
    load_view view = {.rs = rs, .last_poll = client_now()};
    client_req req = {.method = "POST",
                      .path = "/api/chat",
                      .body = body,
                      .on_tick = rs->progress ? load_tick : NULL,
                      .user = &view,
                      .abort = &g_interrupt,
                      .idle_timeout_s = STREAM_IDLE_TIMEOUT_S};
    client_resp r;
    client_result res = client_do(&rs->c, &req, &r);
    json_decref(body);
    if (view.drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    if (res == CLIENT_ABORTED) {
        client_resp_free(&r);
        fputc('\n', stderr);
        return 130;
    }
    if (res != CLIENT_OK)
        return client_fail(&rs->c, &r);
    client_resp_free(&r);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* one reply */

typedef struct {
    run_state *rs;
    strbuf content, thinking;
    bool think_open, think_closed;
    bool printed;      /* anything written to stdout */
    bool ends_newline; /* the last byte written was '\n' */
    json_t *final;     /* the done:true object */
    double t_start, t_first;
} reply;

static void out(reply *rp, const char *s)
{
    size_t len = strlen(s);
    if (!len)
        return;
    fwrite(s, 1, len, stdout);
    rp->printed = true;
    rp->ends_newline = s[len - 1] == '\n';
}

static bool on_chunk(void *user, json_t *line)
{
    reply *rp = user;
    run_state *rs = rp->rs;
    json_t *msg = json_object_get(line, "message");
    const char *thinking = json_string_value(json_object_get(msg, "thinking"));
    const char *content = json_string_value(json_object_get(msg, "content"));
    if ((thinking && *thinking) || (content && *content)) {
        if (rp->t_first == 0)
            rp->t_first = client_now();
    }
    if (thinking && *thinking) {
        sb_puts(&rp->thinking, thinking);
        if (!rs->hide_thinking) {
            if (!rp->think_open) {
                out(rp, rs->color ? COLOR_GREY COLOR_BOLD "Thinking...\n" COLOR_DEFAULT COLOR_GREY : "Thinking...\n");
                rp->think_open = true;
            }
            out(rp, thinking);
        }
    }
    if (content && *content) {
        if (rp->think_open && !rp->think_closed) {
            if (!rp->ends_newline)
                out(rp, "\n");
            out(rp, rs->color ? COLOR_GREY COLOR_BOLD "...done thinking.\n\n" COLOR_DEFAULT : "...done thinking.\n\n");
            rp->think_closed = true;
        }
        sb_puts(&rp->content, content);
        out(rp, content);
    }
    if (json_is_true(json_object_get(line, "done"))) {
        json_decref(rp->final);
        rp->final = json_incref(line);
    }
    fflush(stdout);
    return true;
}

static uint64_t metric(json_t *final, const char *key)
{
    json_t *v = json_object_get(final, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* ollama's Metrics.Summary() on stderr, plus the time to first token. */
static void print_stats(const reply *rp)
{
    char d[64];
    uint64_t total = metric(rp->final, "total_duration"), load = metric(rp->final, "load_duration");
    uint64_t pcount = metric(rp->final, "prompt_eval_count"), pdur = metric(rp->final, "prompt_eval_duration");
    uint64_t count = metric(rp->final, "eval_count"), dur = metric(rp->final, "eval_duration");
    if (total) {
        fmt_go_duration(total, d, sizeof d);
        fprintf(stderr, "total duration:       %s\n", d);
    }
    if (load) {
        fmt_go_duration(load, d, sizeof d);
        fprintf(stderr, "load duration:        %s\n", d);
    }
    if (pcount)
        fprintf(stderr, "prompt eval count:    %llu token(s)\n", (unsigned long long)pcount);
    if (pdur) {
        fmt_go_duration(pdur, d, sizeof d);
        fprintf(stderr, "prompt eval duration: %s\n", d);
        fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", (double)pcount / ((double)pdur / 1e9));
    }
    if (count)
        fprintf(stderr, "eval count:           %llu token(s)\n", (unsigned long long)count);
    if (dur) {
        fmt_go_duration(dur, d, sizeof d);
        fprintf(stderr, "eval duration:        %s\n", d);
        fprintf(stderr, "eval rate:            %.2f tokens/s\n", (double)count / ((double)dur / 1e9));
    }
    if (rp->t_first > 0) {
        fmt_go_duration((uint64_t)((rp->t_first - rp->t_start) * 1e9), d, sizeof d);
        fprintf(stderr, "time to first token:  %s\n", d);
    }
    fflush(stderr);
}

/* {"role": role, "content": text}, invalid UTF-8 in text replaced by U+FFFD (as Go's JSON
 * encoder does in ollama), so that no typed byte makes the message vanish. */
static json_t *chat_message_json(const char *role, const char *text)
{
    strbuf clean = {0};
    utf8_append_lossy(&clean, text, strlen(text));
    json_t *m = json_pack("{ss s:s%}", "role", role, "content", clean.data ? clean.data : "", clean.len);
    sb_free(&clean);
    return m;
}

static json_t *chat_messages(run_state *rs)
{
    json_t *msgs = json_array();
    if (rs->system)
        json_array_append_new(msgs, chat_message_json("system", rs->system));
    json_array_extend(msgs, rs->history);
    return msgs;
}

typedef enum { TURN_OK, TURN_CANCELLED, TURN_ERROR } turn_result;

/* Sends the conversation (rs->history ends with the new user message) and streams the reply.
 * On success the assistant message is appended to the history; otherwise the unanswered user
 * message is removed again. interactive: a blank line after the reply (ollama's layout). */
static turn_result chat_turn(run_state *rs, bool interactive)
{
    json_t *body = json_pack("{ss so sb}", "model", rs->model, "messages", chat_messages(rs), "stream", 1);
    if (rs->think)
        json_object_set(body, "think", rs->think);
    if (json_object_size(rs->options))
        json_object_set(body, "options", rs->options);
    if (rs->format)
        json_object_set_new(body, "format", json_string(rs->format));
    add_common(rs, body);

    reply rp = {.rs = rs, .ends_newline = true, .t_start = client_now()};
    g_interrupt = 0;
    client_req req = {.method = "POST",
                      .path = "/api/chat",
                      .body = body,
                      .on_line = on_chunk,
                      .user = &rp,
                      .abort = &g_interrupt,
                      .idle_timeout_s = STREAM_IDLE_TIMEOUT_S};
    client_resp r;
    client_result res = client_do(&rs->c, &req, &r);
    json_decref(body);
    if (rs->color && rp.think_open && !rp.think_closed)
        out(&rp, COLOR_DEFAULT);
    turn_result tr = TURN_OK;
    if (res == CLIENT_OK && !rp.final) {
        res = CLIENT_TRANSPORT;
        snprintf(r.error, sizeof r.error, "the answer ended before it was complete");
        r.result = res;
    }
    if (res == CLIENT_OK) {
        json_t *m = chat_message_json("assistant", rp.content.data ? rp.content.data : "");
        if (rp.thinking.len)
            json_object_set_new(m, "thinking", json_string(rp.thinking.data));
        json_array_append_new(rs->history, m);
        out(&rp, interactive ? "\n\n" : "\n");
        fflush(stdout);
        if (rs->verbose)
            print_stats(&rp);
        client_resp_free(&r);
    } else {
        json_array_remove(rs->history, json_array_size(rs->history) - 1);
        if (rp.printed && !rp.ends_newline)
            out(&rp, "\n");
        fflush(stdout);
        if (res == CLIENT_ABORTED) {
            tr = TURN_CANCELLED;
            client_resp_free(&r);
        } else {
            tr = TURN_ERROR;
            client_fail(&rs->c, &r);
        }
    }
    g_interrupt = 0;
    json_decref(rp.final);
    sb_free(&rp.content);
    sb_free(&rp.thinking);
    return tr;
}

static turn_result send_user(run_state *rs, const char *text, bool interactive)
{
    json_array_append_new(rs->history, chat_message_json("user", text));
    return chat_turn(rs, interactive);
}

/* ------------------------------------------------------------------------------------------ */
/* the interactive session */

typedef enum { LINE_OK, LINE_EOF, LINE_INTERRUPT } line_result;

/* One line from the terminal (cooked mode: the terminal does the editing). */
static line_result read_line(strbuf *pending, strbuf *line)
{
    sb_clear(line);
    for (;;) {
        char *nl = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - pending->data);
            sb_append(line, pending->data, n);
            if (!line->data)
                sb_puts(line, "");
            memmove(pending->data, nl + 1, pending->len - n - 1);
            pending->len -= n + 1;
            pending->data[pending->len] = '\0';
            if (line->len && line->data[line->len - 1] == '\r')
                line->data[--line->len] = '\0';
            return LINE_OK;
        }
        if (g_interrupt) {
            g_interrupt = 0;
            sb_clear(pending);
            return LINE_INTERRUPT;
        }
        char buf[4096];
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return LINE_EOF;
        if (n == 0) {
            if (pending->len == 0)
                return LINE_EOF;
            continue; /* Ctrl-D in the middle of a line: the terminal sent what was typed */
        }
        sb_append(pending, buf, (size_t)n);
    }
}

static void print_help(void)
{
    fputs("Available Commands:\n"
          "  /set            Set session variables\n"
          "  /show           Show model information\n"
          "  /load <model>   Load a session or model\n"
          "  /clear          Clear session context\n"
          "  /bye            Exit\n"
          "  /?, /help       Help for a command\n"
          "  /? shortcuts    Help for keyboard shortcuts\n"
          "\n"
          "Use \"\"\" to begin a multi-line message.\n"
          "\n",
          stderr);
}

static void print_set_help(void)
{
    fputs("Available Commands:\n"
          "  /set parameter ...     Set a parameter\n"
          "  /set system <string>   Set system message\n"
          "  /set wordwrap          Enable wordwrap\n"
          "  /set nowordwrap        Disable wordwrap\n"
          "  /set verbose           Show LLM stats\n"
          "  /set quiet             Disable LLM stats\n"
          "  /set think             Enable thinking\n"
          "  /set nothink           Disable thinking\n"
          "\n",
          stderr);
}

static void print_shortcuts(void)
{
    fputs("Available keyboard shortcuts:\n"
          "  Ctrl + d            Exit (at an empty prompt)\n"
          "  Ctrl + c            Stop the reply in progress, or discard the line being typed\n"
          "  Ctrl + u            Delete the line being typed (terminal)\n"
          "  Ctrl + w            Delete the word before the cursor (terminal)\n"
          "\n",
          stderr);
}

static void print_show_help(void)
{
    fputs("Available Commands:\n"
          "  /show info         Show details for this model\n"
          "  /show modelfile    Show Modelfile for this model\n"
          "  /show parameters   Show parameters for this model\n"
          "  /show system       Show system message\n"
          "  /show template     Show prompt template\n"
          "\n",
          stderr);
}

/* A /set parameter value: an integer, a number, or the text. */
static json_t *param_value(const char *v)
{
    char *end;
    long long i = strtoll(v, &end, 10);
    if (*v && !*end)
        return json_integer(i);
    double d = strtod(v, &end);
    if (*v && !*end)
        return json_real(d);
    if (!strcasecmp(v, "true") || !strcasecmp(v, "false"))
        return json_boolean(!strcasecmp(v, "true"));
    return json_string(v);
}

static void cmd_set(run_state *rs, char *args)
{
    char *save = NULL;
    char *what = strtok_r(args, " \t", &save);
    if (!what) {
        print_set_help();
        return;
    }
    char *rest = save ? save + strspn(save, " \t") : NULL;
    if (!strcmp(what, "think")) {
        json_decref(rs->think);
        rs->think = rest && *rest && strcmp(rest, "true") ? json_string(rest) : json_true();
        if (rest && !strcmp(rest, "false")) {
            json_decref(rs->think);
            rs->think = json_false();
        }
        printf("Set 'think' mode.\n");
    } else if (!strcmp(what, "nothink")) {
        json_decref(rs->think);
        rs->think = json_false();
        printf("Set 'nothink' mode.\n");
    } else if (!strcmp(what, "verbose")) {
        rs->verbose = true;
        printf("Set 'verbose' mode.\n");
    } else if (!strcmp(what, "quiet")) {
        rs->verbose = false;
        printf("Set 'quiet' mode.\n");
    } else if (!strcmp(what, "wordwrap")) {
        rs->wordwrap = true;
        printf("Set 'word wrap' mode.\n");
    } else if (!strcmp(what, "nowordwrap")) {
        rs->wordwrap = false;
        printf("Set 'nowordwrap' mode.\n");
    } else if (!strcmp(what, "system")) {
        free(rs->system);
        rs->system = rest && *rest ? xstrdup(rest) : NULL;
        printf(rs->system ? "Set system message.\n" : "Cleared system message.\n");
    } else if (!strcmp(what, "parameter")) {
        char *name = rest ? strtok_r(rest, " \t", &save) : NULL;
        char *value = name && save ? save + strspn(save, " \t") : NULL;
        if (!name || !value || !*value) {
            fputs("Usage: /set parameter <name> <value>   e.g. temperature 0.6, top_k 20, num_predict 256,\n"
                  "       stop <string> (repeat for more stop sequences)\n\n",
                  stderr);
            return;
        }
        if (!strcmp(name, "stop")) {
            json_t *stops = json_object_get(rs->options, "stop");
            if (!json_is_array(stops)) {
                stops = json_array();
                json_object_set_new(rs->options, "stop", stops);
            }
            json_array_append_new(stops, json_string(value));
        } else {
            json_object_set_new(rs->options, name, param_value(value));
        }
        printf("Set parameter '%s' to '%s'\n", name, value);
    } else {
        printf("Unknown command '/set %s'. Type /? for help\n", what);
    }
}

/* Returns false to end the session. */
static bool slash_command(run_state *rs, char *line)
{
    char *args = line + strcspn(line, " \t");
    if (*args)
        *args++ = '\0';
    args += strspn(args, " \t");
    if (!strcmp(line, "/bye") || !strcmp(line, "/exit"))
        return false;
    if (!strcmp(line, "/clear")) {
        json_array_clear(rs->history);
        printf("Cleared session context\n");
    } else if (!strcmp(line, "/set")) {
        cmd_set(rs, args);
    } else if (!strcmp(line, "/show")) {
        if (!*args)
            print_show_help();
        else if (!strcmp(args, "info"))
            show_model_info(rs->model, NULL);
        else if (!strcmp(args, "modelfile") || !strcmp(args, "parameters") || !strcmp(args, "template"))
            show_model_info(rs->model, args);
        else if (!strcmp(args, "system")) {
            if (rs->system)
                printf("%s\n", rs->system);
            else
                show_model_info(rs->model, "system");
        } else
            printf("Unknown command '/show %s'. Type /? for help\n", args);
    } else if (!strcmp(line, "/load")) {
        if (!*args) {
            fputs("Usage:\n  /load <modelname>\n", stderr);
        } else {
            char *old = rs->model;
            rs->model = xstrdup(args);
            printf("Loading model '%s'\n", rs->model);
            if (load_model(rs) == 0) {
                free(old);
                json_array_clear(rs->history);
            } else {
                free(rs->model);
                rs->model = old;
            }
        }
    } else if (!strcmp(line, "/?") || !strcmp(line, "/help")) {
        if (!strcmp(args, "shortcuts") || !strcmp(args, "shortcut"))
            print_shortcuts();
        else if (!strcmp(args, "set") || !strcmp(args, "/set"))
            print_set_help();
        else if (!strcmp(args, "show") || !strcmp(args, "/show"))
            print_show_help();
        else
            print_help();
    } else {
        printf("Unknown command '%s'. Type /? for help\n", line);
    }
    return true;
}

static bool ends_with_quotes(const char *s, size_t len)
{
    return len >= 3 && !memcmp(s + len - 3, "\"\"\"", 3);
}

static int interactive(run_state *rs)
{
    strbuf pending = {0}, line = {0}, multi = {0};
    bool in_multi = false;
    int status = 0;
    for (;;) {
        fputs(in_multi ? "... " : ">>> ", stdout);
        fflush(stdout);
        line_result lr = read_line(&pending, &line);
        if (lr == LINE_EOF) {
            fputc('\n', stdout);
            break;
        }
        if (lr == LINE_INTERRUPT) {
            in_multi = false;
            sb_clear(&multi);
            fputs("\nUse Ctrl + d or /bye to exit.\n", stdout);
            continue;
        }
        const char *text = line.data ? line.data : "";
        size_t len = line.len;
        if (in_multi) {
            /* a line ending in """ ends the message */
            if (ends_with_quotes(text, len)) {
                sb_append(&multi, text, len - 3);
                in_multi = false;
            } else {
                sb_append(&multi, text, len);
                sb_putc(&multi, '\n');
                continue;
            }
        } else {
            while (len && (*text == ' ' || *text == '\t'))
                text++, len--;
            while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
                len--;
            if (len >= 3 && !memcmp(text, "\"\"\"", 3)) {
                sb_clear(&multi);
                const char *rest = text + 3;
                size_t rlen = len - 3;
                if (ends_with_quotes(rest, rlen)) {
                    sb_append(&multi, rest, rlen - 3);
                } else {
                    /* unlike ollama, a """ alone on its line adds no leading newline */
                    if (rlen) {
                        sb_append(&multi, rest, rlen);
                        sb_putc(&multi, '\n');
                    }
                    in_multi = true;
                    continue;
                }
            } else if (len && text[0] == '/') {
                char *cmd = xstrndup(text, len);
                bool go_on = slash_command(rs, cmd);
                free(cmd);
                fflush(stdout);
                if (!go_on)
                    break;
                continue;
            } else {
                sb_clear(&multi);
                sb_append(&multi, text, len);
            }
        }
        if (!multi.len)
            continue;
        send_user(rs, multi.data, true);
        sb_clear(&multi);
    }
    sb_free(&pending);
    sb_free(&line);
    sb_free(&multi);
    return status;
}

/* ------------------------------------------------------------------------------------------ */

static char *read_all_stdin(void)
{
    strbuf sb = {0};
    char buf[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sb_append(&sb, buf, (size_t)n);
    }
    if (!sb.data)
        sb_puts(&sb, "");
    return sb_steal(&sb);
}

static bool take_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return true;
    }
    if (!strcmp(argv[*i], name)) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "Error: flag needs an argument: %s\n", name);
            *value = NULL;
            return true;
        }
        *value = argv[++*i];
        return true;
    }
    return false;
}

int cmd_run(int argc, char **argv)
{
    run_state rs = {.wordwrap = true};
    strbuf prompt = {0};
    size_t n_words = 0;
    const char *think_arg = NULL;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(run_usage, stdout);
            sb_free(&prompt);
            free(rs.model);
            return 0;
        } else if (!strcmp(a, "--verbose")) {
            rs.verbose = true;
        } else if (!strcmp(a, "--nowordwrap")) {
            rs.wordwrap = false;
        } else if (!strcmp(a, "--hidethinking")) {
            rs.hide_thinking = true;
        } else if (!strcmp(a, "--insecure")) {
        } else if (!strcmp(a, "--think")) {
            think_arg = "true";
        } else if (!strncmp(a, "--think=", 8)) {
            think_arg = a + 8;
        } else if (take_value(argc, argv, &i, "--keepalive", &v)) {
            if (!v) {
                status = 2;
                break;
            }
            free(rs.keep_alive);
            rs.keep_alive = xstrdup(v);
        } else if (take_value(argc, argv, &i, "--format", &v)) {
            if (!v) {
                status = 2;
                break;
            }
            free(rs.format);
            rs.format = xstrdup(v);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "Error: unknown flag: %s\n", a);
            status = 2;
            break;
        } else if (!rs.model) {
            rs.model = xstrdup(a);
        } else {
            if (n_words++)
                sb_putc(&prompt, ' ');
            sb_puts(&prompt, a);
        }
    }
    if (!status && !rs.model) {
        fprintf(stderr, "Error: requires at least 1 arg(s), only received 0\n\n%s", run_usage);
        status = 2;
    }
    if (!status && think_arg) {
        if (!strcasecmp(think_arg, "true"))
            rs.think = json_true();
        else if (!strcasecmp(think_arg, "false"))
            rs.think = json_false();
        else if (!strcmp(think_arg, "high") || !strcmp(think_arg, "medium") || !strcmp(think_arg, "low"))
            rs.think = json_string(think_arg);
        else {
            fprintf(stderr, "Error: invalid value for --think: %s (true, false, high, medium or low)\n", think_arg);
            status = 2;
        }
    }
    if (status) {
        sb_free(&prompt);
        free(rs.model);
        free(rs.keep_alive);
        free(rs.format);
        json_decref(rs.think);
        return status;
    }

    bool is_interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && n_words == 0;
    if (!isatty(STDIN_FILENO)) {
        /* ollama: the piped text comes first, then the words of the command line */
        char *in = read_all_stdin();
        strbuf full = {0};
        sb_puts(&full, in);
        if (n_words) {
            if (full.len)
                sb_putc(&full, ' ');
            sb_puts(&full, prompt.data);
        }
        sb_free(&prompt);
        prompt = full;
        if (!prompt.data)
            sb_puts(&prompt, "");
        free(in);
        is_interactive = false;
    }
    rs.color = isatty(STDOUT_FILENO);
    rs.progress = isatty(STDERR_FILENO);
    rs.history = json_array();
    rs.options = json_object();
    client_init(&rs.c);

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    status = load_model(&rs);
    if (status == 0) {
        if (is_interactive) {
            status = interactive(&rs);
        } else if (prompt.len) {
            turn_result tr = send_user(&rs, prompt.data, false);
            status = tr == TURN_OK ? 0 : tr == TURN_CANCELLED ? 130 : 1;
        }
    }

    client_free(&rs.c);
    sb_free(&prompt);
    free(rs.model);
    free(rs.system);
    free(rs.keep_alive);
    free(rs.format);
    json_decref(rs.history);
    json_decref(rs.options);
    json_decref(rs.think);
    return status;
}
