/* cmd_tokenizer: `axllama tokenizer serve --tokenizer DIR [--host H] [--port P]`: runs the tokenizer
 * service (src/tokensvc/tokensvc.h) standalone, a drop-in for the vendor's qwen3_tokenizer_uid.py,
 * until SIGINT or SIGTERM. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/stop_signals.h"
#include "tokenizer/tokenizer.h"
#include "tokensvc/tokensvc.h"

static void tokenizer_usage(FILE *f)
{
    fprintf(f,
            "Usage: axllama tokenizer serve --tokenizer DIR [--host HOST] [--port PORT]\n"
            "\n"
            "Serves the tokenizer-service protocol the AXERA runtime calls (get_uid, bos_id, eos_id,\n"
            "reset, encode, decode).\n"
            "\n"
            "  --tokenizer DIR  directory with tokenizer.json and tokenizer_config.json (required)\n"
            "  --host HOST      address to bind (default %s)\n"
            "  --port PORT      port to bind, 0 for an ephemeral one (default %d)\n",
            TOK_SERVICE_DEFAULT_HOST, TOK_SERVICE_DEFAULT_PORT);
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

typedef struct {
    const char *dir, *host, *port_text;
} tokenizer_flags;

/* `--name VALUE` or `--name=VALUE` for --tokenizer, --host, --port; -h/--help. -1 to go on, else
 * the exit status. */
static int parse_tokenizer_flags(int argc, char **argv, tokenizer_flags *flags)
{
    enum { OPT_HELP = OPTION_LONG_BASE, OPT_TOKENIZER, OPT_HOST, OPT_PORT };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, OPT_HELP},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {0},
    };
    options_begin();
    int opt;
    char buf[8];
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: tokenizer_usage(stdout); return 0;
        case OPT_TOKENIZER: flags->dir = optarg; break;
        case OPT_HOST: flags->host = optarg; break;
        case OPT_PORT: flags->port_text = optarg; break;
        case ':':
            fprintf(stderr, "axllama tokenizer serve: %s needs a value\n", options_rejected(argv, buf, sizeof buf));
            return 1;
        default:
            fprintf(stderr, "axllama tokenizer serve: unknown argument '%s'\n",
                    options_rejected(argv, buf, sizeof buf));
            tokenizer_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axllama tokenizer serve: unknown argument '%s'\n", argv[optind]);
        tokenizer_usage(stderr);
        return 1;
    }
    return -1;
}

static int tokenizer_serve(int argc, char **argv)
{
    tokenizer_flags flags = {.host = TOK_SERVICE_DEFAULT_HOST};
    int st = parse_tokenizer_flags(argc, argv, &flags);
    if (st >= 0)
        return st;
    const char *dir = flags.dir, *host = flags.host, *port_text = flags.port_text;
    if (!dir) {
        fprintf(stderr, "axllama tokenizer serve: --tokenizer DIR is required\n");
        tokenizer_usage(stderr);
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
    stop_signals_block(&stop_signals); /* before the service's threads start: they inherit the mask */

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

    stop_signals_wait(&stop_signals);

    tok_service_stop(svc);
    tokenizer_free(tok);
    return 0;
}

int cmd_tokenizer(int argc, char **argv)
{
    if (argc < 2) {
        tokenizer_usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        tokenizer_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "axllama tokenizer: unknown sub-command '%s'\n", argv[1]);
        tokenizer_usage(stderr);
        return 1;
    }
    return tokenizer_serve(argc - 1, argv + 1);
}
