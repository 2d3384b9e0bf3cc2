/* emu_tokclient: the vendor runtime's client of the tokenizer service (docs/spec/tokenizer-protocol.md
 * §5.5): the raw TCP connect probe, GET /get_uid, /bos_id, /eos_id, POST /reset, /encode, /decode.
 * Requests are compact JSON with sorted keys (as nlohmann writes them), 10 s timeouts. The URL must
 * name an explicit port; "localhost" means 127.0.0.1 (IPv4 only), as in the vendor client.
 * Safe to use from several threads (one net/http_client per call, a new connection each time). */
#ifndef AXLLAMA_EMU_TOKCLIENT_H
#define AXLLAMA_EMU_TOKCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum {
    TOKC_OK,
    TOKC_FAILED,     /* no answer, or a status other than 200 */
    TOKC_BAD_ANSWER, /* 200, but {"error": ...} or the expected member missing / mistyped */
} tokc_status;

typedef struct emu_tokclient emu_tokclient;

/* NULL (and a message in err) if the URL is not http://HOST:PORT[/...]. */
emu_tokclient *emu_tokclient_new(const char *url, double timeout_s, char *err, size_t errlen);
void emu_tokclient_free(emu_tokclient *tc);
/* "http://127.0.0.1:12345" as the vendor logs it. */
const char *emu_tokclient_url(const emu_tokclient *tc);

/* One raw TCP connect, closed without sending anything. */
bool emu_tokclient_probe(emu_tokclient *tc);
/* GET /get_uid; the uid is kept in tc for every later call. */
tokc_status emu_tokclient_get_uid(emu_tokclient *tc);
const char *emu_tokclient_uid(const emu_tokclient *tc);
/* GET /bos_id?uid= or /eos_id?uid= (which = "bos_id" or "eos_id"). */
tokc_status emu_tokclient_get_id(emu_tokclient *tc, const char *which, int *id);
/* POST /reset; system_prompt NULL or "" is left out of the request. */
tokc_status emu_tokclient_reset(emu_tokclient *tc, const char *system_prompt, idvec *ids);
/* POST /encode with img_prompt false; last_reply NULL or "" is left out. */
tokc_status emu_tokclient_encode(emu_tokclient *tc, const char *text, const char *last_reply, idvec *ids, idvec *diff);
/* POST /decode. */
tokc_status emu_tokclient_decode(emu_tokclient *tc, const int32_t *ids, size_t n, strbuf *text);

#endif
