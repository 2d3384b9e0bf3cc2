/* devices: `--devices auto`: the card indices `axcl-smi` lists, as the runtime's --devices takes them.
 * See supervisor.h (supervisor_detect_devices). */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "supervisor/process.h"
#include "supervisor/supervisor.h"

#define DETECT_TIMEOUT_S 5.0
#define DETECT_OUTPUT_MAX (64 * 1024)

/* True if line has a PCI address token like "0001:01:00.0" (hex digits, two ':' then one '.'). */
static bool has_pci_address(const char *line)
{
    for (const char *p = line; *p; p++) {
        if (!isxdigit((unsigned char)*p) || (p > line && isxdigit((unsigned char)p[-1])))
            continue;
        int colons = 0, dots = 0, digits = 0;
        const char *q = p;
        for (; isxdigit((unsigned char)*q) || *q == ':' || *q == '.'; q++) {
            if (*q == ':')
                colons += dots == 0;
            else if (*q == '.')
                dots++;
            else
                digits++;
        }
        if (colons == 2 && dots == 1 && digits >= 4 && isxdigit((unsigned char)q[-1]))
            return true;
        p = q - 1;
    }
    return false;
}

/* Parses the card indices out of plain `axcl-smi` output into a sorted, comma-separated list ("" if
 * none). The heuristic: the device table is the one whose header row has both "Card" and
 * "Bus-Id"; its body starts after the "|===" rule and runs over "+---" borders (one per card, as
 * nvidia-smi-style tools print) until a blank line, a line that is not part of a table, or the
 * "Processes" table. A card row starts with "| <index>  <name>" and carries the card's PCI address
 * ("0001:01:00.0") in its Bus-Id cell; its second row ("|   --   41C ...") and the rows of the
 * Processes table (card index, then a PID, no PCI address) never match. Example (V3.10.2):
 *   | Card  Name                     Firmware | Bus-Id       |                          Memory-Usage |
 *   | Fan   Temp                Pwr:Usage/Cap | CPU      NPU |                             CMM-Usage |
 *   |=========================================+==============+=======================================|
 *   |    0  AX8850                    V3.10.2 | 0001:01:00.0 |                148 MiB /      945 MiB |
 *   |   --   41C                      -- / -- | 2%        0% |                 18 MiB /     7040 MiB |
 *   +-----------------------------------------+--------------+---------------------------------------+
 * These indices are what --devices takes (docs/spec/runtime-protocol.md §4.1). Not used: the "Device
 * ID : N" of `axcl-smi info --cmm` minus one (what one field tool did): N is a PCIe-style number
 * (driver logs say "device 1: dead" for card 0) and the minus one is a guess. */
static char *parse_card_indices(const char *text)
{
    bool seen_header = false, in_table = false;
    bool present[256] = {false};
    char *copy = xstrdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!in_table) {
            if (strstr(p, "Card") && strstr(p, "Bus-Id"))
                seen_header = true;
            else if (seen_header && !strncmp(p, "|=", 2))
                in_table = true;
            continue;
        }
        if ((*p != '|' && *p != '+') || strstr(p, "Processes") || strstr(p, "PID"))
            break; /* the device table ended */
        if (*p != '|')
            continue;
        p++;
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            continue;
        char *end;
        long card = strtol(p, &end, 10);
        if ((*end == ' ' || *end == '\t') && has_pci_address(end) && card >= 0 && card < 256)
            present[card] = true;
    }
    free(copy);
    strbuf out = {0};
    sb_puts(&out, "");
    for (int i = 0; i < 256; i++)
        if (present[i])
            sb_printf(&out, "%s%d", out.len ? "," : "", i);
    return sb_steal(&out);
}

char *supervisor_detect_devices(void)
{
    char *argv[] = {(char *)"axcl-smi", NULL};
    char *output = process_run_and_capture(argv, DETECT_TIMEOUT_S, DETECT_OUTPUT_MAX);
    char *devices = output ? parse_card_indices(output) : NULL;
    free(output);
    if (!devices || !*devices) {
        free(devices);
        devices = xstrdup("0");
    }
    return devices;
}
