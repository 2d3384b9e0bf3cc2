/* options: getopt_long set-up and its rejected argument. See options.h. */
#include "cli/options.h"

#include <stdio.h>

void options_begin(void)
{
    opterr = 0;
    optind = 0; /* glibc and musl: a full restart, from argv[1] */
}

const char *options_rejected(char **argv, char *buf, size_t buflen)
{
    /* a long option (unknown: optopt 0; a bad or missing value: its val) has always been consumed,
     * so it is the previous element; a short one is named by optopt alone */
    if (optopt == 0 || optopt >= OPTION_LONG_BASE)
        return argv[optind - 1];
    snprintf(buf, buflen, "-%c", optopt);
    return buf;
}
