/* random: kernel randomness. See random.h. */
#include "common/random.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

static bool read_urandom(unsigned char *b, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n;
}

void random_bytes(void *buf, size_t n)
{
    unsigned char *b = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < n && !read_urandom(b + got, n - got)) {
        fprintf(stderr, "axllama: no kernel randomness (getrandom and /dev/urandom failed)\n");
        abort();
    }
}

void random_alnum(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[64];
    size_t done = 0;
    while (done < n) {
        random_bytes(bytes, sizeof bytes);
        for (size_t i = 0; i < sizeof bytes && done < n; i++)
            if (bytes[i] < 248) /* 248 = 4 * 62: no bias */
                out[done++] = alphabet[bytes[i] % 62];
    }
    out[n] = '\0';
}
