/* options: what the sub-commands share around getopt_long (GNU permutation: flags and operands in
 * any order, `--name VALUE` or `--name=VALUE`, `--` ends the flags). Every command lists its long
 * options with a val of OPTION_LONG_BASE or more (their own codes, no short twin) and reports the
 * argument getopt_long rejected in its own words. */
#ifndef AXLLAMA_CLI_OPTIONS_H
#define AXLLAMA_CLI_OPTIONS_H

#include <getopt.h>
#include <stddef.h>

/* The first val of a long option (above every short option character). */
#define OPTION_LONG_BASE 256

/* Starts a parse: getopt_long prints nothing itself and scans from argv[1] again. */
void options_begin(void);

/* After getopt_long returned '?' or ':', the argument it rejected as the user typed it ("--bogus",
 * "--port" without its value, "--verbose=x"); "-x" (in buf) for an unknown short option. */
const char *options_rejected(char **argv, char *buf, size_t buflen);

#endif
