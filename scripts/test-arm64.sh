#!/usr/bin/env bash
# `make test-arm64`: the whole suite (C, node, python) on an arm64 build, under qemu-user. Installs
# the cross toolchain, the -dev:arm64 libraries and qemu-user + qemu-user-binfmt (scripts/deps.sh
# arm64), makes sure the kernel runs aarch64 binaries through qemu (mounts binfmt_misc and
# registers qemu-aarch64 where systemd does not run, as in CI's containers), cross-builds into
# build-arm64/ and runs scripts/run-tests.sh on it: it ends with "tests: N passed, N failed". Node
# and python stay the machine's own; they start the arm64 binaries, which binfmt hands to qemu.
# Where aarch64 binaries cannot be run (no binfmt_misc, no permission to register), it says so
# loudly and exits 0 without running anything.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${BUILD_ARM64:-build-arm64}
triplet=aarch64-linux-gnu

skip() {
    echo "" >&2
    echo "########################################################################" >&2
    echo "## make test-arm64: SKIPPED: $*" >&2
    echo "## (the arm64 suite did not run: nothing was tested under qemu)" >&2
    echo "########################################################################" >&2
    exit 0
}

scripts/deps.sh arm64 || exit 1
scripts/deps.sh || exit 1
export AXLLAMA_TOKENIZER_DIR=${AXLLAMA_TOKENIZER_DIR:-$(scripts/fetch-tokenizer.sh)} || exit 1

# --- binfmt: aarch64 ELF files run through qemu-aarch64 ---
binfmt=/proc/sys/fs/binfmt_misc
registration=/usr/lib/binfmt.d/qemu-aarch64.conf
binfmt_ready() { [ -f "$binfmt/qemu-aarch64" ] && grep -qx enabled "$binfmt/qemu-aarch64"; }
if ! binfmt_ready; then
    if [ ! -f "$binfmt/register" ]; then
        mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null ||
            skip "binfmt_misc is not mounted on $binfmt and cannot be (mount -t binfmt_misc: no permission?)"
    fi
    if ! binfmt_ready && command -v update-binfmts >/dev/null; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1
    fi
    if ! binfmt_ready && [ -f "$registration" ]; then
        # the systemd-binfmt form: one ":name:type:offset:magic:mask:interpreter:flags" line
        grep -v '^#' "$registration" | head -1 >"$binfmt/register" 2>/dev/null
    fi
    binfmt_ready || skip "cannot register qemu-aarch64 with binfmt_misc ($binfmt/register refused it)"
fi

# --- the cross build ---
echo "axllama: cross-building for arm64 into $build/" >&2
mkdir -p "$build"
make --no-print-directory -j2 BUILD="$build" CC=$triplet-gcc AR=$triplet-ar PKG_CONFIG=$triplet-pkg-config \
    test-binaries >"$build/cross-build.log" 2>&1 || {
    tail -40 "$build/cross-build.log" >&2
    echo "axllama: make test-arm64: the cross build failed (log: $build/cross-build.log)" >&2
    exit 1
}
machine=$(LC_ALL=C readelf -h "$build/axllama" 2>/dev/null | sed -n 's/^ *Machine: *//p')
if [ "$machine" != "AArch64" ]; then
    echo "axllama: make test-arm64: $build/axllama is not an AArch64 binary ($machine)" >&2
    exit 1
fi
version=$("$build/axllama" --version 2>&1) || skip "aarch64 binaries do not run here even with qemu-aarch64 registered: $version"
echo "axllama: $build/axllama runs under qemu: $version" >&2

# --- the suite ---
# Each crashing child (the crash faults the tests inject) would leave a ~160 MB qemu core file.
ulimit -c 0
start=$(date +%s)
# the fuzz replay is host code (libFuzzer has no cross build here); `make test` runs it
AXLLAMA_FUZZ_REPLAY=0 scripts/run-tests.sh "$build"
rc=$?
echo "axllama: the arm64 suite under qemu took $(($(date +%s) - start)) s" >&2
exit $rc
