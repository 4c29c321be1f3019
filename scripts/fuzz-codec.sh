#!/usr/bin/env bash
# Builds the codec fuzz target with clang (libFuzzer + ASan + UBSan) and runs
# it for SECONDS (default 600) on the seed corpus (generated, plus the
# regression inputs in tests/fuzz/corpus/codec/). Crash inputs land in the
# build directory, not the working directory.
# Usage: scripts/fuzz-codec.sh [SECONDS]
set -euo pipefail
secs="${1:-600}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${FUZZ_BUILD:-$root/build-fuzz}"
scripts/deps.sh fuzz 2>/dev/null || "$root/scripts/deps.sh" fuzz
mkdir -p "$out/corpus-codec"
CC="${CC:-clang}"
command -v "$CC" >/dev/null || CC=clang-14
flags="-std=c17 -g -O1 -D_GNU_SOURCE -I$root/include -I$root/src/codec $(pkg-config --cflags libzstd libxxhash)"
libs="$(pkg-config --libs libzstd libxxhash) -lm"
srcs="$root/src/codec/codec_*.c $root/src/util/util_*.c"
# shellcheck disable=SC2086
"$CC" $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$out/fuzz_codec" "$root/tests/fuzz/fuzz_codec.c" $srcs $libs
# shellcheck disable=SC2086
"$CC" $flags -O2 -o "$out/gen_codec_corpus" "$root/tests/fuzz/gen_codec_corpus.c" $srcs $libs
"$out/gen_codec_corpus" "$out/corpus-codec"
cp -n "$root"/tests/fuzz/corpus/codec/* "$out/corpus-codec/" 2>/dev/null || true
echo "fuzz-codec: running for ${secs}s (corpus $out/corpus-codec)"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$out/fuzz_codec" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus-codec"
