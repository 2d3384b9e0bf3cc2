#!/usr/bin/env bash
# Installs the Debian packages axllama's build, tests and benchmarks need, only if some are missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -euo pipefail

# libclang-rt-dev: clang's runtimes, libFuzzer among them (the fuzz harnesses of tests/fuzz).
packages=(gcc clang libclang-rt-dev make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
          libpcre2-dev libutf8proc-dev libicu-dev libssl-dev libedit-dev libcmocka-dev python3 python3-jinja2 curl wrk)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the reference tokenizer and the official client libraries in the tests;
# a machine that already has them (from Debian or elsewhere) keeps its own.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "axllama: missing packages: ${missing[*]}" >&2
    echo "axllama: run as root:  $cmd" >&2
    exit 1
fi
echo "axllama: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
