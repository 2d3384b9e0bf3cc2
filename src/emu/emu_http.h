/* emu_http: the vendor runtime's HTTP API (docs/spec/runtime-protocol.md §1, G-API) over libmicrohttpd,
 * byte for byte: POST /api/reset, POST /api/generate, GET /api/generate_provider, POST /api/chat,
 * GET /api/stop; hand-written bodies with a space after the colon, compact sorted bodies for the
 * built ones; 400 / 404 empty / 500 with an EXCEPTION_WHAT header as cpp-httplib and nlohmann
 * produce them; the CORS header on every answer and the OPTIONS answer. One thread per connection,
 * so /api/chat can block its own connection for minutes, as on the vendor's thread pool. */
#ifndef AXLLAMA_EMU_HTTP_H
#define AXLLAMA_EMU_HTTP_H

#include <stddef.h>

#include "emu/emu_runtime.h"

typedef struct emu_http emu_http;

/* Binds host:port (port 0 = any free port) and serves. NULL and a message in err if it cannot. */
emu_http *emu_http_start(emu_runtime *rt, const char *host, int port, char *err, size_t errlen);
int emu_http_port(const emu_http *h);
/* Stops accepting, waits for the connections' threads (a running chat finishes first). */
void emu_http_stop(emu_http *h);

#endif
