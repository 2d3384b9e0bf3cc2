/* emu_options: axllama-emu's command line. The vendor runtime's flags (main_api_axcl_aarch64 /
 * main_api_ax650), parsed with the rules of the cmdline.hpp parser the vendor binary uses
 * (docs/spec/runtime-protocol.md §4.1), plus the emulator's own options, which all start with --emu-.
 * Emulator options may also come from the environment variable AXLLAMA_EMU_ARGS (a
 * whitespace-separated list, parsed after argv), so a supervisor that runs fixed vendor flags can
 * still inject timing or faults. */
#ifndef AXLLAMA_EMU_OPTIONS_H
#define AXLLAMA_EMU_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    EMU_MODE_AXCL,  /* main_api_axcl_aarch64: --devices exists and is required */
    EMU_MODE_AX650, /* main_api_ax650: no --devices flag at all */
} emu_mode;

/* "at token T of generation G" (1-based; G counts /api/generate and /api/chat runs since start).
 * token == 0: not set. */
typedef struct {
    int token;
    int generation;
} emu_fault_point;

typedef struct {
    /* ---- vendor flags (names, types and defaults of LLMAttrType) ---- */
    char *system_prompt;             /* "" */
    char *template_filename_axmodel; /* "tinyllama-int8/tinyllama_l%d.axmodel" */
    char *filename_post_axmodel;     /* "tinyllama-int8/tinyllama_post.axmodel" */
    char *url_tokenizer_model;       /* "http://127.0.0.1:12345" */
    char *filename_tokens_embed;     /* "tinyllama.model.embed_tokens.weight.bfloat16.bin" */
    int axmodel_num;                 /* 22 */
    int tokens_embed_num;            /* 32000 */
    int tokens_embed_size;           /* 2048 */
    bool use_mmap_load_embed;        /* 0 */
    char *devices;                   /* AXCL only, required; NULL in AX650 mode */

    /* ---- emulator options ---- */
    emu_mode mode;         /* --emu-mode axcl|ax650 (default axcl) */
    char *host;            /* --emu-host (default 127.0.0.1; the vendor's 0.0.0.0 is not copied) */
    int port;              /* --emu-port (default 8000; 0 = any free port, printed in the log) */
    char *profile;         /* --emu-profile fast|qwen3-4b-pi5|qwen3-4b-ax650 (default qwen3-4b-pi5
                               in AXCL mode, qwen3-4b-ax650 in AX650 mode) */
    double time_scale;     /* --emu-time-scale F: every duration is multiplied by F (default 1) */
    double init_seconds;   /* --emu-init-seconds S: init time instead of the profile's (slow
                               init fault); < 0 = not set */
    double dispatch_delay; /* --emu-dispatch-delay S: the worker picks a queued task up S seconds
                               after it was queued (widens the vendor's done-before-start window);
                               default 0 */
    int reply_tokens;      /* --emu-reply-tokens N: reply length in tokens after the think block,
                               cycling the echo; 0 = the echo once (default) */
    char *think_text;      /* --emu-think-text TEXT: the reasoning inside the reply's think block
                               (<think>\nTEXT\n</think>\n\n); "" = Qwen3's empty block (default).
                               Must not contain <think>, </think> or "<|" (special tokens) */
    uint64_t seed;         /* --emu-seed N: seed of the non-greedy variation (default 0) */
    bool unstable;         /* --emu-unstable 1: greedy replies differ from generation to generation
                               (the echo rotated by the generation number): a device whose results
                               vary run to run, so a replayed reply strays */
    int max_token_len;     /* --emu-max-token-len N (default 2559) */
    int prefill_max;       /* --emu-prefill-max N (default 2048): largest prefill group */

    /* faults */
    emu_fault_point crash_at;   /* --emu-crash-at T[@G]: abort() when producing token T of gen G */
    emu_fault_point hang_at;    /* --emu-hang-at T[@G]: stop answering (sockets stay open) */
    int exit_init_step;         /* --emu-exit-during-init K[:CODE]: exit at load step K (1-based) */
    int exit_init_code;         /*   with status CODE (default 255, like a failed init) */
    bool context_full_wedge;    /* --emu-context-full-wedge 1: the old build's context-full bug */
    bool tokenizer_unreachable; /* --emu-tokenizer-unreachable 1: every connect probe fails */
} emu_options;

/* Fills o from argv and AXLLAMA_EMU_ARGS. Returns -1 when the program should go on; otherwise
 * the exit status the vendor binary would have, after printing to err what it prints: --help (or
 * no argument at all while a required flag is missing) prints the usage and gives 0; any error
 * prints the first error, then the usage, and gives 1. argv[0] is the program name shown in the
 * usage. o's previous content is overwritten, not freed. On -1 the caller owns o's strings
 * (emu_options_free); on any other return o has already been freed (emu_options_free on it is
 * still harmless). */
int emu_options_parse(emu_options *o, int argc, char **argv, FILE *err);
/* Frees o's strings and sets them to NULL: safe on a zeroed, partly filled or freed struct. */
void emu_options_free(emu_options *o);

#endif
