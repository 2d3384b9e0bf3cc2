#!/usr/bin/env bash
# Runs every test of the suite against the binaries in BUILD (default build/) and ends with one
# summary line CI reads: "tests: N passed, N failed".
#   - C unit tests (cmocka): BUILD/tests/test_*
#   - Node tests (node --test): tests/**/*.test.mjs, after `npm ci` when node_modules is stale
#   - Python tests: tests/**/*_test.py, each printing "N passed, N failed" as its last line
#   - the fuzz replay (tests/fuzz, `make fuzz-replay`): each libFuzzer harness over its committed
#     corpus, then FUZZ_REPLAY_SECONDS (5) of fuzzing; one entry per harness. Skipped with
#     AXLLAMA_FUZZ_REPLAY=0 (`make test-sanitize` sets it: the harnesses are sanitizer builds already).
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

if [ "${AXLLAMA_FUZZ_REPLAY:-1}" != 0 ]; then
    # built here (clang, its own build-fuzz/): `make test` builds only BUILD
    if make --no-print-directory -j2 fuzz-build >"$log/fuzz-build.log" 2>&1; then
        make --no-print-directory fuzz-replay >"$log/fuzz-replay.log" 2>&1
        rc=$?
        fuzz_f=0
        while read -r name p f; do
            printf '%-40s %4d passed %4d failed\n' "$name" "$p" "$f"
            count "$name" "$p" "$f"
            fuzz_f=$((fuzz_f + f))
        done < <(sed -n 's/^\(fuzz_[a-z_]*\) *\([0-9]*\) passed *\([0-9]*\) failed$/\1 \2 \3/p' "$log/fuzz-replay.log")
        if [ "$rc" -ne 0 ] && [ "$fuzz_f" -eq 0 ]; then count fuzz-replay 0 1; fi
        [ "$rc" -eq 0 ] || grep -v '^ *#[0-9]' "$log/fuzz-replay.log" | tail -40 | sed 's/^/    /'
    else
        printf '%-40s %4d passed %4d failed\n' fuzz-build 0 1
        count fuzz-build 0 1
        tail -20 "$log/fuzz-build.log" | sed 's/^/    /'
    fi
fi

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
