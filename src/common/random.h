/* random: unpredictable bytes from the kernel (getrandom), for uids, ids of replies and tool calls.
 * The only source in axllama: no fallback to rand() or the clock. */
#ifndef AXLLAMA_COMMON_RANDOM_H
#define AXLLAMA_COMMON_RANDOM_H

#include <stddef.h>

/* Fills buf with n random bytes. getrandom(2) (retried through EINTR and short reads), else
 * /dev/urandom; aborts the process when neither works (a kernel without either is not one axllama
 * can run on safely). */
void random_bytes(void *buf, size_t n);

/* n random characters from [A-Za-z0-9] into out, NUL-terminated (out holds n + 1 bytes). */
void random_alnum(char *out, size_t n);

#endif
