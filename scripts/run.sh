#!/usr/bin/env bash
# `make run`: starts axllama from BUILD with the Qwen3 tokenizer data from the cache.
# Until `axllama serve` lands, this serves the runtime's tokenizer protocol on 127.0.0.1:12345
# (AXLLAMA_TOKENIZER_PORT to change), the piece a vendor runtime or axllama-emu connects to.
set -euo pipefail
build=${1:-build}
dir=$(scripts/fetch-tokenizer.sh)
exec "$build/axllama" tokenizer serve --tokenizer "$dir" --port "${AXLLAMA_TOKENIZER_PORT:-12345}"
