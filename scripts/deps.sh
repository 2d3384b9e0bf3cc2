#!/usr/bin/env bash
# Installs the Debian packages axllama's build, tests and benchmarks need, only if some are missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
#   scripts/deps.sh          the build, the tests (systemd-analyze for the unit's check), make bench
#   scripts/deps.sh deb      + what `make deb` needs (debhelper)
#   scripts/deps.sh arm64    + what `make test-arm64` and `make deb DEB_ARCH=arm64` need: the arm64
#                            architecture in dpkg, the cross compiler, the -dev:arm64 libraries,
#                            qemu-user with its binfmt registrations
set -euo pipefail

# libclang-rt-dev: clang's runtimes, libFuzzer among them (the fuzz harnesses of tests/fuzz);
# clang-format: `make format-check` (the committed .clang-format).
packages=(gcc clang libclang-rt-dev clang-format make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
          libpcre2-dev libutf8proc-dev libicu-dev libssl-dev libsystemd-dev libedit-dev libcmocka-dev python3
          python3-jinja2 curl wrk systemd)
need_arm64=false
for group in "$@"; do
    case $group in
        deb) packages+=(debhelper dpkg-dev fakeroot) ;;
        arm64)
            need_arm64=true
            packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-binfmt binfmt-support
                       debhelper dpkg-dev fakeroot pkgconf:arm64 libmicrohttpd-dev:arm64
                       libcurl4-openssl-dev:arm64 libjansson-dev:arm64 libpcre2-dev:arm64 libutf8proc-dev:arm64
                       libicu-dev:arm64 libssl-dev:arm64 libsystemd-dev:arm64 libedit-dev:arm64 libcmocka-dev:arm64)
            ;;
        *) echo "axllama: scripts/deps.sh: unknown group '$group' (deb, arm64)" >&2; exit 2 ;;
    esac
done

missing=()
add_arch=false
if $need_arm64 && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    add_arch=true
fi
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the reference tokenizer and the official client libraries in the tests;
# a machine that already has them (from Debian or elsewhere) keeps its own.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
$add_arch && cmd="dpkg --add-architecture arm64 && $cmd"
if [ "$(id -u)" -ne 0 ]; then
    echo "axllama: missing packages: ${missing[*]}" >&2
    echo "axllama: run as root:  $cmd" >&2
    exit 1
fi
echo "axllama: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$add_arch && dpkg --add-architecture arm64
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
