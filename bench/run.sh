#!/usr/bin/env bash
# bench/run.sh BUILD: `make bench`. First the tokenizer benchmark: Generates ~10 MB of mixed text
# (bench/make_text.mjs, deterministic) into BUILD/bench/, then runs BUILD/tools/tokenizer_bench
# (axllama's C tokenizer) and bench/hf_tokenizer_bench.mjs (Hugging Face tokenizers) alternately
# for BENCH_ROUNDS rounds (default 3) on the same chunks, and prints the medians side by side with
# the goals (bench/report.mjs). Fails if the two total token counts differ.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=$(cd "${1:-build}" && pwd)
tokenizer_dir=${AXLLAMA_TOKENIZER_DIR:-$(scripts/fetch-tokenizer.sh)}
rounds=${BENCH_ROUNDS:-3}
out=$build/bench
chunks=$out/chunks.jsonl
results=$out/results.jsonl
mkdir -p "$out"

if [ ! -d node_modules/@anush008/tokenizers ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -s "$chunks" ] || [ bench/make_text.mjs -nt "$chunks" ] || [ tests/equiv/corpus.mjs -nt "$chunks" ]; then
    timeout 120 node bench/make_text.mjs "$chunks.tmp" 10
    mv "$chunks.tmp" "$chunks"
fi

: >"$results"
for round in $(seq 1 "$rounds"); do
    echo "bench: round $round/$rounds" >&2
    timeout 300 "$build/tools/tokenizer_bench" --tokenizer "$tokenizer_dir" --chunks "$chunks" >>"$results"
    timeout 300 node bench/hf_tokenizer_bench.mjs --tokenizer "$tokenizer_dir" --chunks "$chunks" >>"$results"
done
node bench/report.mjs "$results"

# The server: KV reuse vs reset-every-turn, added latency vs the emulator driven directly, wrk.
echo "bench: server (axllama serve on axllama-emu)" >&2
timeout 900 node bench/serve_bench.mjs "$build" "$tokenizer_dir"
# At the NPU's pace: CPU per token, calls per reset, a 40-turn chat, the restore after a side request.
echo "bench: pace (axllama serve on axllama-emu, Pi 5 profile)" >&2
timeout 900 node bench/pace_bench.mjs "$build" "$tokenizer_dir"
