/* run_session: the interactive session of `axllama run` on a terminal: the ">>> " prompt (a libedit
 * line editor, line_editor.h: any length, history, arrows, Ctrl-R), """ multi-line input, the slash
 * commands /set /show /load /clear /bye /? and their help texts, Ctrl-C discarding the line being
 * typed and Ctrl-D ending the session. Each message goes through run_send_user (cmd_run.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "cli/line_editor.h"
#include "cli/run.h"
#include "common/buf.h"

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
          "  /set format json       Enable JSON mode (or a JSON schema the reply must match)\n"
          "  /set noformat          Disable formatting\n"
          "\n",
          stderr);
}

static void print_shortcuts(void)
{
    fputs("Available keyboard shortcuts:\n"
          "  Ctrl + a            Move to the beginning of the line (Home)\n"
          "  Ctrl + e            Move to the end of the line (End)\n"
          "   Alt + b            Move back (left) one word\n"
          "   Alt + f            Move forward (right) one word\n"
          "  Ctrl + k            Delete the sentence after the cursor\n"
          "  Ctrl + u            Delete the sentence before the cursor\n"
          "  Ctrl + w            Delete the word before the cursor\n"
          "  Up, Down            Earlier and later messages (kept in ~/.axllama/history)\n"
          "  Ctrl + r            Search the history\n"
          "\n"
          "  Ctrl + l            Clear the screen\n"
          "  Ctrl + c            Stop the reply in progress, or discard the line being typed\n"
          "  Ctrl + d            Exit (at an empty prompt)\n"
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
    } else if (!strcmp(what, "format")) {
        json_t *format = NULL;
        if (!rest || !*rest || !run_format_value(rest, &format) || !format) {
            fputs("Usage: /set format json, or /set format <a JSON schema object>\n\n", stderr);
            return;
        }
        json_decref(rs->format);
        rs->format = format;
        printf("Set format to '%s' mode.\n", json_is_string(format) ? "json" : "schema");
    } else if (!strcmp(what, "noformat")) {
        json_decref(rs->format);
        rs->format = NULL;
        printf("Disabled format.\n");
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
            if (run_load_model(rs) == 0) {
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

/* One loop on purpose (81 lines): the read, the """ multi-line state and the slash commands share
 * `line`, `multi` and `in_multi`; split into helpers they would pass all three back and forth. */
int run_session(run_state *rs)
{
    char *history = line_history_path();
    line_editor *le = line_editor_new(history, &run_interrupted);
    free(history);
    if (!le) {
        fputs("Error: cannot start the line editor on this terminal\n", stderr);
        return 1;
    }
    strbuf line = {0}, multi = {0};
    bool in_multi = false;
    int status = 0;
    for (;;) {
        line_result lr = line_editor_read(le, in_multi ? "... " : ">>> ", &line);
        if (lr == LINE_OK && !in_multi)
            line_editor_remember(le, line.data);
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
        run_send_user(rs, multi.data, true);
        sb_clear(&multi);
    }
    sb_free(&line);
    sb_free(&multi);
    line_editor_free(le);
    return status;
}
