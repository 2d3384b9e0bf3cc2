/* emu_log: the vendor runtime's log line format (sample_log.h style):
 *   ESC[1;30;3Xm[L][<function, right-aligned in 32>][<line, 4>]: message ESC[0m
 * L is E, W, I, N or D. Written with printf to stdout, as the vendor does. */
#ifndef AXLLAMA_EMU_LOG_H
#define AXLLAMA_EMU_LOG_H

void emu_log(char level, const char *function, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The function names and line numbers are the vendor's where they are known (they show up in
 * field logs); elsewhere they are the emulator's own. */
#define EMU_LOGE(fn, line, ...) emu_log('E', fn, line, __VA_ARGS__)
#define EMU_LOGW(fn, line, ...) emu_log('W', fn, line, __VA_ARGS__)
#define EMU_LOGI(fn, line, ...) emu_log('I', fn, line, __VA_ARGS__)
#define EMU_LOGN(fn, line, ...) emu_log('N', fn, line, __VA_ARGS__)

#endif
