#!/usr/bin/env bash
# `make deb [DEB_ARCH=arm64]`: builds build-deb/axllama_<version>_<arch>.deb with debhelper, native or
# cross (dpkg-buildpackage -a ARCH). The version is AXLLAMA_VERSION (src/cli/commands.h): the sources
# are staged into build-deb/ARCH/axllama-<version>/ with a debian/changelog written for it, so the
# work tree stays clean. Installs what the build needs first (scripts/deps.sh deb | arm64).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
native=$(dpkg --print-architecture)
arch=${1:-$native}
version=$(sed -n 's/^#define AXLLAMA_VERSION "\(.*\)"$/\1/p' src/cli/commands.h)
if [ -z "$version" ]; then
    echo "axllama: make deb: no AXLLAMA_VERSION in src/cli/commands.h" >&2
    exit 1
fi
if [ "$arch" = "$native" ]; then
    scripts/deps.sh deb
elif [ "$arch" = arm64 ]; then
    scripts/deps.sh arm64
else
    echo "axllama: make deb: cross-building for '$arch' is not set up (DEB_ARCH=arm64 is)" >&2
    exit 2
fi

out=$root/build-deb
work=$out/$arch
stage=$work/axllama-$version
rm -rf "$work"
mkdir -p "$stage"
cp -a Makefile LICENSE README.md src docs packaging debian "$stage/"

# debian/changelog: one entry for this version, dated by the last commit (reproducible builds).
when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
rev=$(git describe --always --dirty 2>/dev/null || echo "a source tree")
cat >"$stage/debian/changelog" <<EOF
axllama ($version) unstable; urgency=medium

  * axllama $version, built from $rev.

 -- axllama maintainers <maintainers@axllama.invalid>  $(date -R -u -d "@$when")
EOF

jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2 # the machines this runs on are shared
options="parallel=$jobs ${DEB_BUILD_OPTIONS:-}"
cross=()
if [ "$arch" != "$native" ]; then
    # the cross profile; the binaries built cannot be run here (debian/rules skips that check)
    cross=(--host-arch "$arch" "-Pcross,nocheck") # one option: the profiles, comma-separated
    options="$options nocheck"
    export CC=aarch64-linux-gnu-gcc
fi
echo "axllama: building axllama_${version}_${arch}.deb" >&2
(cd "$stage" && SOURCE_DATE_EPOCH=$when DEB_BUILD_OPTIONS="$options" dpkg-buildpackage -b -us -uc "${cross[@]}") \
    >"$work/build.log" 2>&1 || {
    tail -60 "$work/build.log" >&2
    echo "axllama: make deb failed (log: $work/build.log)" >&2
    exit 1
}
deb=axllama_${version}_${arch}.deb
mv "$work/$deb" "$out/$deb"
echo "$out/$deb: $(stat -c %s "$out/$deb") bytes" >&2
dpkg-deb --contents "$out/$deb" | awk '{print "  " $1, $3, $6}' | sed 's| \./| /|' >&2
echo "$out/$deb"
