/* emu_profile: axllama-emu's timing model. A profile gives the model's init (load) time, the time
 * of one 128-token prefill chunk (the first token comes out at the end of the prefill, so one chunk
 * is also the TTFT of a short turn) and the decode rate. Every duration is multiplied by the
 * --emu-time-scale factor. Waiting is sleeping: the emulator uses no CPU while "computing". */
#ifndef AXLLAMA_EMU_PROFILE_H
#define AXLLAMA_EMU_PROFILE_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
    const char *name;
    double init_s;          /* model load, spread over axmodel_num + 3 progress steps */
    double prefill_chunk_s; /* one 128-token prefill chunk */
    double decode_tok_s;    /* tokens per second after the first */
} emu_profile;

/* NULL if the name is unknown. Names: fast, qwen3-4b-pi5, qwen3-4b-ax650. */
const emu_profile *emu_profile_find(const char *name);

/* Sleeps seconds (already scaled), in slices, returning early (true) as soon as *stop becomes true
 * (stop may be NULL). */
bool emu_sleep(double seconds, const atomic_bool *stop);

#endif
