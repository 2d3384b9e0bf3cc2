/* cmd_tokenizer: `axllama tokenizer serve --tokenizer DIR [--host H] [--port P]`: runs the tokenizer
 * service (src/tokensvc/tokensvc.h) standalone, a drop-in for the vendor's qwen3_tokenizer_uid.py,
 * until SIGINT or SIGTERM. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "tokensvc/tokensvc.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: axllama tokenizer serve --tokenizer DIR [--host HOST] [--port PORT]\n"
               "\n"
               "Serves the tokenizer-service protocol the AXERA runtime calls (get_uid, bos_id, eos_id,\n"
               "reset, encode, decode).\n"
               "\n"
               "  --tokenizer DIR  directory with tokenizer.json and tokenizer_config.json (required)\n"
               "  --host HOST      address to bind (default %s)\n"
               "  --port PORT      port to bind, 0 for an ephemeral one (default %d)\n",
            TOK_SERVICE_DEFAULT_HOST, TOK_SERVICE_DEFAULT_PORT);
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past a separate value. */
static int flag_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "axllama tokenizer serve: %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

static int parse_port(const char *text, uint16_t *port)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > 65535 || text[0] == '-' || text[0] == '+')
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Blocks SIGINT/SIGTERM in this thread (the service's threads inherit that) and waits for one. */
static void wait_for_stop_signal(const sigset_t *stop_signals)
{
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        int sig = sigtimedwait(stop_signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM)
            return;
    }
}

static int serve(int argc, char **argv)
{
    const char *dir = NULL, *host = TOK_SERVICE_DEFAULT_HOST, *port_text = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if ((r = flag_value(argc, argv, &i, "--tokenizer", &dir)) ||
            (r = flag_value(argc, argv, &i, "--host", &host)) ||
            (r = flag_value(argc, argv, &i, "--port", &port_text))) {
            if (r < 0)
                return 1;
            continue;
        }
        fprintf(stderr, "axllama tokenizer serve: unknown argument '%s'\n", argv[i]);
        usage(stderr);
        return 1;
    }
    if (!dir) {
        fprintf(stderr, "axllama tokenizer serve: --tokenizer DIR is required\n");
        usage(stderr);
        return 1;
    }
    if (!host[0]) {
        fprintf(stderr, "axllama tokenizer serve: --host must not be empty\n");
        return 1;
    }
    uint16_t port = TOK_SERVICE_DEFAULT_PORT;
    if (port_text && parse_port(port_text, &port) != 0) {
        fprintf(stderr, "axllama tokenizer serve: invalid --port '%s' (0..65535)\n", port_text);
        return 1;
    }

    char err[512];
    tokenizer *tok = tokenizer_load(dir, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "axllama tokenizer serve: cannot load the tokenizer from %s: %s\n", dir, err);
        return 1;
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    tok_service_config cfg = {.tok = tok, .host = host, .port = port};
    tok_service *svc = tok_service_start(&cfg, err, sizeof err);
    if (!svc) {
        fprintf(stderr, "axllama tokenizer serve: %s\n", err);
        tokenizer_free(tok);
        return 1;
    }
    bool ipv6 = strchr(host, ':') != NULL;
    printf("Server running at http://%s%s%s:%u\n", ipv6 ? "[" : "", host, ipv6 ? "]" : "",
           (unsigned)tok_service_port(svc));
    fflush(stdout);

    wait_for_stop_signal(&stop_signals);

    tok_service_stop(svc);
    tokenizer_free(tok);
    return 0;
}

int cmd_tokenizer(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "axllama tokenizer: unknown sub-command '%s'\n", argv[1]);
        usage(stderr);
        return 1;
    }
    return serve(argc - 1, argv + 1);
}
