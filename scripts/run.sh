#!/usr/bin/env bash
# `make run`: starts `axllama serve` from BUILD (Ollama + OpenAI API on OLLAMA_HOST, default
# 127.0.0.1:11434). With no model manifest (docs/models.md) it serves the built-in model
# `qwen3-emu` on the emulator, using the Qwen3 tokenizer data from the cache (fetched if missing).
# Extra arguments go to `axllama serve` (e.g. `make run ARGS="--models ./models"`).
set -euo pipefail
build=${1:-build}
shift || true
export AXLLAMA_TOKENIZER_DIR=${AXLLAMA_TOKENIZER_DIR:-$(scripts/fetch-tokenizer.sh)}
exec "$build/axllama" serve "$@"
