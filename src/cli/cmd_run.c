/* cmd_run: `axllama run MODEL [PROMPT]`, the ollama CLI's run command as a client of a running
 * `axllama serve`: loads the model with a progress indicator (polling /api/ps for the runtime's
 * load progress), then answers once (PROMPT on the command line and/or piped stdin) or runs an
 * interactive session on a terminal (run_session.c): streamed /api/chat replies, the whole
 * conversation sent each turn (so the server reuses its KV cache), Ctrl-C cancelling the reply in
 * progress, thinking shown apart, --verbose statistics. */
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
#include "cli/options.h"
#include "cli/run.h"
#include "common/buf.h"
#include "common/utf8.h"

#define STREAM_IDLE_TIMEOUT_S 900.0 /* no byte for 15 min: beyond any load timeout of the server */
#define PS_POLL_INTERVAL_S 0.25

/* readline's colours, as the ollama CLI uses them for thinking */
#define COLOR_GREY "\033[38;5;245m"
#define COLOR_BOLD "\033[1m"
#define COLOR_DEFAULT "\033[0m"

volatile sig_atomic_t run_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

static const char run_usage[] =
    "Usage: axllama run MODEL [PROMPT] [flags]\n"
    "\n"
    "Runs a model of a running `axllama serve` (OLLAMA_HOST, default 127.0.0.1:11434): an interactive\n"
    "chat on a terminal, or one answer to PROMPT and/or the text piped on stdin.\n"
    "\n"
    "Flags:\n"
    "  --verbose            show ollama's statistics and the time to first token after each reply (the\n"
    "                       prompt eval count is what the NPU evaluated: the whole conversation after a\n"
    "                       reset, only the new part when the conversation continued in its KV cache)\n"
    "  --think[=VALUE]      thinking on (true, high, medium, low) or off (false); default: the model's\n"
    "  --hidethinking       do not show the thinking text\n"
    "  --keepalive DURATION how long the model stays loaded after the request (e.g. 10m, -1)\n"
    "  --format FORMAT      the reply must be JSON: \"json\", or a JSON schema it must match (the server\n"
    "                       checks the reply and answers an error when it does not conform)\n"
    "  --nowordwrap         accepted (axllama never wraps words itself)\n"
    "  --insecure           accepted and ignored\n"
    "\n"
    "In a session: \"\"\" starts and ends a multi-line message; /? lists the commands; the arrow keys\n"
    "and Ctrl-R recall earlier lines (kept in ~/.axllama/history); Ctrl-C stops the reply in progress;\n"
    "Ctrl-D or /bye exits.\n";

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
    client_req req = {.method = "GET", .path = "/api/ps", .timeout_s = 2.0, .abort = &run_interrupted};
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

int run_load_model(run_state *rs)
{
    json_t *body = json_pack("{ss s[] sb}", "model", rs->model, "messages", "stream", 0);
    add_common(rs, body);
    load_view view = {.rs = rs, .last_poll = client_now()};
    client_req req = {.method = "POST",
                      .path = "/api/chat",
                      .body = body,
                      .on_tick = rs->progress ? load_tick : NULL,
                      .user = &view,
                      .abort = &run_interrupted,
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
        json_object_set(body, "format", rs->format);
    add_common(rs, body);

    reply rp = {.rs = rs, .ends_newline = true, .t_start = client_now()};
    run_interrupted = 0;
    client_req req = {.method = "POST",
                      .path = "/api/chat",
                      .body = body,
                      .on_line = on_chunk,
                      .user = &rp,
                      .abort = &run_interrupted,
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
    run_interrupted = 0;
    json_decref(rp.final);
    sb_free(&rp.content);
    sb_free(&rp.thinking);
    return tr;
}

turn_result run_send_user(run_state *rs, const char *text, bool interactive)
{
    json_array_append_new(rs->history, chat_message_json("user", text));
    return chat_turn(rs, interactive);
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

bool run_format_value(const char *text, json_t **out)
{
    *out = NULL;
    if (!*text)
        return true;
    if (!strcmp(text, "json")) {
        *out = json_string("json");
        return true;
    }
    json_t *schema = json_loads(text, 0, NULL);
    if (json_is_object(schema)) {
        *out = schema;
        return true;
    }
    json_decref(schema);
    return false;
}

/* The value of --think: true, false, high, medium or low; NULL for any other value. */
static json_t *think_value(const char *text)
{
    if (!strcasecmp(text, "true"))
        return json_true();
    if (!strcasecmp(text, "false"))
        return json_false();
    if (!strcmp(text, "high") || !strcmp(text, "medium") || !strcmp(text, "low"))
        return json_string(text);
    return NULL;
}

/* The flags into rs, MODEL into rs->model and the words after it, space-separated, into *prompt
 * (*n_words of them); flags may come anywhere (`run MODEL PROMPT --verbose`). -1 to go on, else
 * the exit status (usage errors: 2). */
static int parse_run_flags(int argc, char **argv, run_state *rs, strbuf *prompt, size_t *n_words)
{
    enum {
        OPT_HELP = OPTION_LONG_BASE,
        OPT_VERBOSE,
        OPT_NOWORDWRAP,
        OPT_HIDETHINKING,
        OPT_INSECURE,
        OPT_THINK,
        OPT_KEEPALIVE,
        OPT_FORMAT,
    };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, OPT_HELP},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"nowordwrap", no_argument, NULL, OPT_NOWORDWRAP},
        {"hidethinking", no_argument, NULL, OPT_HIDETHINKING},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"think", optional_argument, NULL, OPT_THINK},
        {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {0},
    };
    const char *think_arg = NULL;
    char buf[8];
    options_begin();
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(run_usage, stdout); return 0;
        case OPT_VERBOSE: rs->verbose = true; break;
        case OPT_NOWORDWRAP: rs->wordwrap = false; break;
        case OPT_HIDETHINKING: rs->hide_thinking = true; break;
        case OPT_INSECURE: break;
        case OPT_THINK: think_arg = optarg ? optarg : "true"; break;
        case OPT_KEEPALIVE:
            free(rs->keep_alive);
            rs->keep_alive = xstrdup(optarg);
            break;
        case OPT_FORMAT:
            json_decref(rs->format);
            if (!run_format_value(optarg, &rs->format)) {
                fprintf(stderr, "Error: invalid value for --format: %s (\"json\" or a JSON schema object)\n", optarg);
                return 2;
            }
            break;
        case ':':
            fprintf(stderr, "Error: flag needs an argument: %s\n", options_rejected(argv, buf, sizeof buf));
            return 2;
        default: fprintf(stderr, "Error: unknown flag: %s\n", options_rejected(argv, buf, sizeof buf)); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "Error: requires at least 1 arg(s), only received 0\n\n%s", run_usage);
        return 2;
    }
    rs->model = xstrdup(argv[optind]);
    for (int i = optind + 1; i < argc; i++) {
        if ((*n_words)++)
            sb_putc(prompt, ' ');
        sb_puts(prompt, argv[i]);
    }
    if (think_arg && !(rs->think = think_value(think_arg))) {
        fprintf(stderr, "Error: invalid value for --think: %s (true, false, high, medium or low)\n", think_arg);
        return 2;
    }
    return -1;
}

static void run_state_free(run_state *rs)
{
    free(rs->model);
    free(rs->system);
    free(rs->keep_alive);
    json_decref(rs->format);
    json_decref(rs->history);
    json_decref(rs->options);
    json_decref(rs->think);
}

int cmd_run(int argc, char **argv)
{
    run_state rs = {.wordwrap = true};
    strbuf prompt = {0};
    size_t n_words = 0;
    int status = parse_run_flags(argc, argv, &rs, &prompt, &n_words);
    if (status >= 0) {
        sb_free(&prompt);
        run_state_free(&rs);
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

    status = run_load_model(&rs);
    if (status == 0) {
        if (is_interactive) {
            status = run_session(&rs);
        } else if (prompt.len) {
            turn_result tr = run_send_user(&rs, prompt.data, false);
            status = tr == TURN_OK ? 0 : tr == TURN_CANCELLED ? 130 : 1;
        }
    }

    client_free(&rs.c);
    sb_free(&prompt);
    run_state_free(&rs);
    return status;
}
