#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, CMake with OUTPOST_FUZZ=ON and
# clang: ASan + UBSan) in build-fuzz/ and runs each for SECONDS (default
# 600), two at a time. Each target starts from its committed seeds
# (tests/fuzz/corpus/NAME/, plus the generated ones for codec) and grows its
# own corpus in build-fuzz/corpus/NAME/. Crash inputs land in
# build-fuzz/artifacts/NAME/, logs in build-fuzz/logs/NAME.log. Prints one
# line per target and exits non-zero if any target failed.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: every target)
# Environment: FUZZ_BUILD (build dir), FUZZ_JOBS (targets at once, 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-600}"
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number" >&2; exit 2 ;; esac
out="${FUZZ_BUILD:-$root/build-fuzz}"
jobs="${FUZZ_JOBS:-2}"

"$root/scripts/deps.sh" fuzz
cc=clang
command -v "$cc" >/dev/null || cc=clang-14
# -O2 without NDEBUG: fast, and asserts stay on.
cmake -S "$root" -B "$out" -DCMAKE_C_COMPILER="$cc" -DOUTPOST_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" >/dev/null
cmake --build "$out" -j"$(nproc 2>/dev/null || echo 2)" --target fuzzers >/dev/null

bindir="$out/tests/fuzz"
all=$(cd "$bindir" && for f in fuzz_*; do [ -x "$f" ] && echo "${f#fuzz_}"; done)
targets="${*:-$all}"
for t in $targets; do
    [ -x "$bindir/fuzz_$t" ] || { echo "fuzz.sh: no target '$t' (built: $(echo $all))" >&2; exit 2; }
done

# Seeds: the committed ones, and the codec's generated frames.
for t in $targets; do
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/logs"
    if [ -d "$root/tests/fuzz/corpus/$t" ]; then
        cp -n "$root/tests/fuzz/corpus/$t"/* "$out/corpus/$t/" 2>/dev/null || true
    fi
done
case " $targets " in *" codec "*) "$bindir/gen_codec_corpus" "$out/corpus/codec" ;; esac

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

run_one() {
    local t="$1" dict="" maxlen="" d="$1"
    case "$t" in readings | device | compat) d=json ;; esac
    [ -f "$root/tests/fuzz/$d.dict" ] && dict="-dict=$root/tests/fuzz/$d.dict"
    [ "$t" = codec ] && maxlen="-max_len=65536"
    # shellcheck disable=SC2086
    "$bindir/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" $dict $maxlen \
        "$out/corpus/$t" >"$out/logs/$t.log" 2>&1
}

# One line per target from its log: executions, speed, final coverage.
summary() {
    local t="$1" rc="$2" log="$out/logs/$1.log" execs speed cov ft verdict
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ]; then
        verdict=OK
    else
        verdict="CRASH (exit $rc): $(grep -o 'Test unit written to .*' "$log" | tail -1 |
            sed 's/Test unit written to //') log $log"
    fi
    printf 'fuzz %-9s %10s execs %7s/s  cov %5s  ft %6s  %s\n' "$t" "${execs:-?}" \
        "${speed:-?}" "${cov:-?}" "${ft:-?}" "$verdict"
    # The sanitizer's report, so that a CI log shows what failed.
    if [ "$rc" -ne 0 ]; then
        grep -m1 -A40 -E '^==[0-9]+==|runtime error|ERROR: libFuzzer' "$log" | sed 's/^/    /' || true
    fi
}

echo "fuzz.sh: $(echo $targets | wc -w) targets, ${secs}s each, $jobs at a time (logs in $out/logs)"
declare -A pid_of=()
failed=0
finish() { # waits for one running target and reports it
    local done_pid rc=0 t
    wait -n -p done_pid || rc=$?
    for t in "${!pid_of[@]}"; do
        if [ "${pid_of[$t]}" = "$done_pid" ]; then
            summary "$t" "$rc"
            unset "pid_of[$t]"
        fi
    done
    [ "$rc" -eq 0 ] || failed=1
}
for t in $targets; do
    while [ "${#pid_of[@]}" -ge "$jobs" ]; do finish; done
    run_one "$t" &
    pid_of[$t]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do finish; done
exit $failed
