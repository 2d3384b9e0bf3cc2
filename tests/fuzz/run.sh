#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz (built by `make fuzz-build` into BUILD, default
# build-fuzz/), one after another. Usage: tests/fuzz/run.sh fuzz|replay [BUILD] [TARGET...]
#   fuzz    each harness fuzzes for FUZZ_SECONDS (default 180) from its committed seeds
#           (tests/fuzz/corpus/<target>) and its working corpus (BUILD/corpus/<target>, kept between
#           runs); prints per harness the executions (libFuzzer's stat::number_of_executed_units) and
#           the total.
#   replay  each harness runs every committed input once (-runs=0), then fuzzes FUZZ_SECONDS (default
#           10) from them into a scratch corpus; one line per harness in the test suite's format
#           ("fuzz_<target>   1 passed   0 failed"), then "fuzz: N passed, N failed".
# A crash, leak, sanitizer report or violated property fails the harness; its input is saved as
# BUILD/artifacts/<target>-crash-<sha1> (minimise it with `BUILD/fuzz_<target> -minimize_crash=1
# -runs=100000 FILE`, then commit the result to tests/fuzz/corpus/<target>/). The exit status is
# non-zero when a harness failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mode=${1:-}
build=${2:-build-fuzz}
shift 2 2>/dev/null || shift $#
case "$mode" in
fuzz) seconds=${FUZZ_SECONDS:-180} ;;
replay) seconds=${FUZZ_SECONDS:-10} ;;
*)
    echo "usage: $0 fuzz|replay [BUILD] [TARGET...]" >&2
    exit 2
    ;;
esac
export AXLLAMA_TOKENIZER_DIR=${AXLLAMA_TOKENIZER_DIR:-$(scripts/fetch-tokenizer.sh)}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets+=("${t#fuzz_}")
    done
fi

# The longest input each harness is given (-max_len): enough for a real request or conversation,
# small enough to keep the executions fast.
max_len_of() {
    case "$1" in
    tokenizer | output) echo 1024 ;;
    toolcall | chat_template | format) echo 2048 ;;
    *) echo 4096 ;;
    esac
}

logs=$build/fuzz-logs
mkdir -p "$logs" "$build/artifacts"
passed=0
failed=0
total_execs=0
failures=()
start_all=$SECONDS

for t in "${targets[@]}"; do
    bin=$build/fuzz_$t
    seeds=tests/fuzz/corpus/$t
    log=$logs/$t.log
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "fuzz: $bin or $seeds is missing (make fuzz-build)" >&2
        failed=$((failed + 1))
        failures+=("fuzz_$t")
        continue
    fi
    opts=(-max_len="$(max_len_of "$t")" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
          -artifact_prefix="$build/artifacts/$t-")
    [ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
    ok=1
    : >"$log"
    if [ "$mode" = replay ]; then
        # every committed input once, whatever its length (no -max_len)
        timeout 600 "$bin" -runs=0 -timeout=20 -rss_limit_mb=4096 -artifact_prefix="$build/artifacts/$t-" \
            "$seeds" >>"$log" 2>&1 || ok=0
        work=$build/replay-corpus/$t
        rm -rf "$work"
    else
        work=$build/corpus/$t
    fi
    mkdir -p "$work"
    if [ "$ok" -eq 1 ] && [ "$seconds" -gt 0 ]; then
        timeout $((seconds + 300)) "$bin" "${opts[@]}" -max_total_time="$seconds" "$work" "$seeds" >>"$log" 2>&1 || ok=0
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    total_execs=$((total_execs + execs))
    if [ "$mode" = replay ]; then
        printf '%-40s %4d passed %4d failed\n' "fuzz_$t" "$ok" $((1 - ok))
    else
        printf '%-40s %12d executions %s\n' "fuzz_$t" "$execs" "$([ "$ok" -eq 1 ] && echo ok || echo FAILED)"
    fi
    if [ "$ok" -eq 1 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("fuzz_$t")
        grep -v '^#\|^ *"\|^INFO: \|^\(NEW\|REDUCE\|pulse\|RELOAD\|INITED\)' "$log" | tail -40 | sed 's/^/    /'
    fi
done

[ ${#failures[@]} -eq 0 ] || echo "fuzz failing: ${failures[*]} (logs in $logs, inputs in $build/artifacts)"
if [ "$mode" = fuzz ]; then
    echo "fuzz: $total_execs executions in $((SECONDS - start_all)) s, $passed passed, $failed failed"
else
    echo "fuzz: $passed passed, $failed failed ($total_execs executions in $((SECONDS - start_all)) s)"
fi
[ "$failed" -eq 0 ]
