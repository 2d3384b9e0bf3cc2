/* emu_profile: timing profiles (measured Qwen3-4B figures, docs/spec/runtime-protocol.md §6.1) and an
 * interruptible sleep. */
#include "emu/emu_profile.h"

#include <string.h>

#include "common/clock.h"

/* How often a stoppable sleep looks at its stop flag. */
#define EMU_STOP_SLICE_S 0.002

static const emu_profile profiles[] = {
    /* tests and demos: everything in milliseconds */
    {.name = "fast", .init_s = 0.02, .prefill_chunk_s = 0.005, .decode_tok_s = 500.0},
    /* Raspberry Pi 5 + M.2 card (AXCL): init 133.16 s, TTFT 1339 ms for one chunk, 3.65 tok/s */
    {.name = "qwen3-4b-pi5", .init_s = 133.16, .prefill_chunk_s = 1.339, .decode_tok_s = 3.65},
    /* AX650N board: init 48.03 s, TTFT 1169 ms for one chunk, 4.22 tok/s */
    {.name = "qwen3-4b-ax650", .init_s = 48.03, .prefill_chunk_s = 1.169, .decode_tok_s = 4.22},
};

const emu_profile *emu_profile_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof profiles / sizeof profiles[0]; i++)
        if (!strcmp(profiles[i].name, name))
            return &profiles[i];
    return NULL;
}

bool emu_sleep(double seconds, const atomic_bool *stop)
{
    double deadline = deadline_in(seconds);
    for (;;) {
        if (stop && atomic_load(stop))
            return true;
        double left = deadline_left(deadline);
        if (left <= 0)
            return false;
        clock_sleep(stop && left > EMU_STOP_SLICE_S ? EMU_STOP_SLICE_S : left);
    }
}
