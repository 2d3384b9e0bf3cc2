#!/usr/bin/env bash
# Runs every test of the suite against the binaries in BUILD (default build/) and ends with one
# summary line CI reads: "tests: N passed, N failed".
#   - C unit tests (cmocka): BUILD/tests/test_*
#   - Node tests (node --test): tests/**/*.test.mjs, after `npm ci` when node_modules is stale
#   - Python tests: tests/**/*_test.py, each printing "N passed, N failed" as its last line
# Environment handed to the tests: AXLLAMA_BUILD (absolute), AXLLAMA_TOKENIZER_DIR (Qwen3 data).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=$(cd "${1:-build}" && pwd)
export AXLLAMA_BUILD=$build
export AXLLAMA_TOKENIZER_DIR=${AXLLAMA_TOKENIZER_DIR:-$(scripts/fetch-tokenizer.sh)}
log=$build/test-logs
rm -rf "$log"
mkdir -p "$log"

passed=0
failed=0
failures=()

count() { # name pass fail
    passed=$((passed + $2))
    failed=$((failed + $3))
    [ "$3" -eq 0 ] || failures+=("$1")
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    timeout 300 "$t" >"$log/$name.log" 2>&1
    rc=$?
    # a binary may run several groups: add up every group's summary
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log/$name.log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log/$name.log" | awk '{s+=$1} END {print s+0}')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or timed out
    printf '%-40s %4d passed %4d failed\n' "$name" "$p" "$f"
    count "$name" "$p" "$f"
    [ "$f" -eq 0 ] || sed 's/^/    /' "$log/$name.log" | tail -40
done

mapfile -t node_tests < <(find tests -name '*.test.mjs' | sort)
if [ ${#node_tests[@]} -gt 0 ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error >"$log/npm-ci.log" 2>&1 || { cat "$log/npm-ci.log"; count npm-ci 0 1; }
    fi
    for t in "${node_tests[@]}"; do
        name=$(basename "$t")
        timeout 600 node --test --test-reporter=tap "$t" >"$log/$name.log" 2>&1
        rc=$?
        p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$log/$name.log" | tail -1)
        f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$log/$name.log" | tail -1)
        p=${p:-0}
        f=${f:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        printf '%-40s %4d passed %4d failed\n' "$name" "$p" "$f"
        count "$name" "$p" "$f"
        [ "$f" -eq 0 ] || grep -v '^ *#\|^ok' "$log/$name.log" | tail -40 | sed 's/^/    /'
    done
fi

mapfile -t py_tests < <(find tests -name '*_test.py' | sort)
for t in "${py_tests[@]}"; do
    name=$(basename "$t")
    timeout 300 python3 "$t" >"$log/$name.log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log/$name.log" | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    printf '%-40s %4d passed %4d failed\n' "$name" "$p" "$f"
    count "$name" "$p" "$f"
    [ "$f" -eq 0 ] || tail -40 "$log/$name.log" | sed 's/^/    /'
done

[ ${#failures[@]} -eq 0 ] || echo "failing: ${failures[*]} (logs in $log)"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
