#!/usr/bin/env bash
# CI: the Debian package end to end on this machine (as root). Builds it (make deb) unless given a
# .deb, installs it with dpkg -i, then checks what a Pi owner relies on: axllama on the PATH at its
# version; the user axllama in group axcl; the unit, the environment file, the udev rule; the unit
# passes `systemd-analyze verify` and is enabled (Debian's default for a daemon, docs/install.md);
# the installed `axllama serve`, run as the service's user with /etc/default/axllama, answers a
# chat on a manifest whose runtime is the installed emulator /usr/lib/axllama/axllama-emu, and the
# installed CLI talks to it; with no manifest it finds that emulator by itself for the built-in
# model. Then purges the package (and the user and group, when this run created them) and checks
# nothing is left. Ends with "deb-check: N passed, N failed".
#   scripts/ci-deb-check.sh [PATH.deb]
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
if [ "$(id -u)" -ne 0 ]; then
    echo "deb-check: needs root (dpkg -i)" >&2
    exit 2
fi
if dpkg-query -W -f='${Status}' axllama 2>/dev/null | grep -q "install ok installed"; then
    echo "deb-check: the package axllama is installed on this machine already; not touching it" >&2
    exit 2
fi

passed=0
failed=0
check() { # name command...
    local name=$1
    shift
    if "$@" >"$tmp/check.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok      $name"
    else
        failed=$((failed + 1))
        echo "FAILED  $name"
        sed 's/^/    /' "$tmp/check.log" | tail -30
    fi
}

tmp=$(mktemp -d /tmp/axllama-deb-check-XXXXXX)
chmod 755 "$tmp"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

deb=${1:-}
if [ -z "$deb" ]; then
    deb=$(make -s deb | tail -1) || {
        echo "deb-check: make deb failed"
        echo "deb-check: 0 passed, 1 failed"
        exit 1
    }
fi
version=$(sed -n 's/^#define AXLLAMA_VERSION "\(.*\)"$/\1/p' src/cli/commands.h)
echo "deb-check: $deb ($(stat -c %s "$deb") bytes)"

had_user=false
had_group=false
getent passwd axllama >/dev/null && had_user=true
getent group axcl >/dev/null && had_group=true

check "dpkg -i installs the package" dpkg -i "$deb"
check "axllama is on the PATH at /usr/bin" test "$(command -v axllama)" = /usr/bin/axllama
check "axllama --version is $version" test "$(axllama --version)" = "axllama version $version"
check "the emulator is in /usr/lib/axllama" test -x /usr/lib/axllama/axllama-emu
check "user axllama exists, in group axcl" sh -c 'id -nG axllama | tr " " "\n" | grep -qx axcl'
check "/etc/default/axllama, /etc/axllama/models, the udev rule" \
    test -f /etc/default/axllama -a -d /etc/axllama/models -a -f /lib/udev/rules.d/70-axllama-axcl.rules
verify_unit() {
    command -v systemd-analyze >/dev/null || { echo "systemd-analyze is missing"; return 1; }
    local out
    out=$(systemd-analyze verify /lib/systemd/system/axllama.service 2>&1) || { echo "$out"; return 1; }
    # warnings (an unknown key, a bad value) do not fail verify: any line about the unit does
    if echo "$out" | grep -q "axllama"; then
        echo "$out"
        return 1
    fi
}
check "systemd-analyze verify accepts the installed unit" verify_unit
check "the service is enabled (Debian's default for a daemon)" \
    test -L /etc/systemd/system/multi-user.target.wants/axllama.service

# --- the installed server, as the service runs it (user axllama, /etc/default/axllama) ---
tokenizer=$(scripts/fetch-tokenizer.sh)
mkdir -p "$tmp/tokenizer" "$tmp/models" "$tmp/empty"
cp "$tokenizer/tokenizer.json" "$tokenizer/tokenizer_config.json" "$tmp/tokenizer/"
cat >"$tmp/models/emu_1.json" <<EOF
{"name": "emu:1",
 "runtime": {"binary": "/usr/lib/axllama/axllama-emu", "args": ["--emu-profile", "fast", "--emu-port", "{port}"],
             "port": 0, "devices": "0"},
 "tokenizer": "$tmp/tokenizer", "tokenizer_port": 0}
EOF
chmod -R a+rX "$tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# start_server MODELS_DIR [ENV...]: the unit's ExecStart as user axllama (and its groups) with the
# environment file; setpriv execs, so the pid is the server's
start_server() {
    local models=$1
    shift
    : >"$tmp/serve.log"
    chmod 666 "$tmp/serve.log"
    # shellcheck disable=SC2046
    setpriv --reuid=axllama --regid=axllama --init-groups -- env -i PATH=/usr/bin:/bin HOME=/var/lib/axllama \
        $(grep -E '^[A-Z_]+=' /etc/default/axllama) OLLAMA_HOST="127.0.0.1:$port" AXLLAMA_MODELS="$models" "$@" \
        /usr/bin/axllama serve >>"$tmp/serve.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "Listening on" "$tmp/serve.log" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$tmp/serve.log"
    return 1
}
stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid"
    local rc=$?
    server_pid=
    if [ $rc -ne 0 ] || ! grep -q "stopped" "$tmp/serve.log"; then
        echo "exit status $rc"
        cat "$tmp/serve.log"
        return 1
    fi
}
chat() { # model: a non-streamed chat's reply must be a finished, non-empty answer
    local body
    body=$(curl -sS --max-time 60 "http://127.0.0.1:$port/api/chat" \
        -d "{\"model\":\"$1\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hello, who are you?\"}]}")
    echo "$body"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["done"] and r["message"]["content"].strip(), r' "$body"
}
cli_run() { # the installed client: `axllama run` prints the model's answer
    local out
    out=$(OLLAMA_HOST=127.0.0.1:$port timeout 60 axllama run emu:1 "Say hello" </dev/null)
    echo "$out"
    [ -n "$(echo "$out" | tr -d '[:space:]')" ]
}

check "the installed axllama serve starts as user axllama" start_server "$tmp/models"
if [ -n "$server_pid" ]; then
    check "it answers a chat on the installed emulator (emu:1)" chat emu:1
    check "axllama list shows emu:1" sh -c "OLLAMA_HOST=127.0.0.1:$port axllama list | grep -q '^emu:1 '"
    check "axllama run answers through it" cli_run
    check "SIGTERM stops it, exit 0" stop_server
fi
check "with no manifest it serves the built-in model on the installed emulator" \
    start_server "$tmp/empty" AXLLAMA_TOKENIZER_DIR="$tmp/tokenizer"
if [ -n "$server_pid" ]; then
    check "the built-in qwen3-emu answers a chat" chat qwen3-emu
    check "SIGTERM stops it, exit 0" stop_server
fi

# --- removal ---
check "dpkg --purge removes the package" dpkg --purge axllama
check "nothing of it is left" sh -c '! test -e /usr/bin/axllama -o -e /usr/lib/axllama -o -e /lib/systemd/system/axllama.service -o -e /var/lib/axllama -o -e /etc/default/axllama -o -e /etc/systemd/system/multi-user.target.wants/axllama.service'
$had_user || deluser --quiet --system axllama >/dev/null 2>&1 || true
$had_user || delgroup --quiet --system axllama >/dev/null 2>&1 || true
$had_group || delgroup --quiet --system axcl >/dev/null 2>&1 || true

echo "deb-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
