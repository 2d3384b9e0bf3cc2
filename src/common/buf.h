/* buf: growable byte strings (strbuf) and token-id vectors (idvec) shared by every module.
 * Allocation failure aborts the process: there is no sane recovery inside a server thread. */
#ifndef AXLLAMA_COMMON_BUF_H
#define AXLLAMA_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} strbuf;

typedef struct {
    int32_t *v;
    size_t len;
    size_t cap;
} idvec;

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

void sb_reserve(strbuf *sb, size_t extra);
void sb_append(strbuf *sb, const void *data, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_putc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
void sb_clear(strbuf *sb);
void sb_free(strbuf *sb);
/* Gives the buffer to the caller (NUL-terminated, never NULL) and empties sb. */
char *sb_steal(strbuf *sb);

void iv_reserve(idvec *iv, size_t extra);
void iv_push(idvec *iv, int32_t id);
void iv_append(idvec *iv, const int32_t *ids, size_t n);
void iv_clear(idvec *iv);
void iv_free(idvec *iv);

#endif
