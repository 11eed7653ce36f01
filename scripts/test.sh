#!/usr/bin/env bash
# The test command: installs what is missing (scripts/deps.sh), builds tally with
# warnings as errors, runs every test (unit and integration, the latter on a real
# Kafka broker started by the tests), then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer (LeakSanitizer included) and runs the tests once more there
# (all but the broker's own round-trip check and the long exactly-once crash suite).
#
#   scripts/test.sh                    everything
#   scripts/test.sh -L unit            only tests with that ctest label (passed to ctest)
#   scripts/test.sh --repeat N [ARGS]  the selected tests (ctest ARGS, e.g. -R integration.http
#                                      or -L integration) N times in a row in build/, each time
#                                      with a fresh broker, stopping at the first failure; no
#                                      sanitizer build. For flushing out flaky tests.
#
# Then, in a full run (no ctest arguments, or arguments naming fuzz tests, e.g. -L fuzz),
# builds the libFuzzer harnesses with clang in build-fuzz/ and runs each for FUZZ_SECONDS
# (default 30) seconds, plus every committed crash input once (tests/fuzz,
# docs/fuzzing.md).
#
# Build trees: build/ (release with debug info), build-asan/ (sanitizers) and build-fuzz/
# (clang, libFuzzer, sanitizers).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc 2>/dev/null || echo 2)

REPEAT=0
if [ "${1:-}" = --repeat ]; then
  REPEAT=${2:-}
  case "$REPEAT" in ''|*[!0-9]*|0) echo "test.sh: --repeat needs a count of 1 or more" >&2; exit 2;; esac
  shift 2
fi

scripts/deps.sh

cmake -S . -B build -G Ninja -DTALLY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

if [ "$REPEAT" -gt 0 ]; then
  for i in $(seq 1 "$REPEAT"); do
    t0=$(date +%s)
    if ! ctest --test-dir build --output-on-failure -j 2 "$@"; then
      echo "test.sh: run $i of $REPEAT failed after $(($(date +%s) - t0)) s" >&2
      exit 1
    fi
    echo "test.sh: run $i of $REPEAT passed in $(($(date +%s) - t0)) s"
  done
  echo "test.sh: all $REPEAT runs passed"
  exit 0
fi

ctest --test-dir build --output-on-failure -j 2 "$@"

cmake -S . -B build-asan -G Ninja -DTALLY_WERROR=ON -DTALLY_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug -DTALLY_BENCH=OFF -DTALLY_KAFKA_TESTS=ON >/dev/null
cmake --build build-asan -j "$JOBS"
# integration.eos (24 SIGKILLs, several minutes) runs once, in the first build.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j 2 -E 'kafka_roundtrip|integration.eos' "$@"

# Fuzzing: only in a full run, or when the arguments select fuzz tests.
case " $* " in
  "  "|*fuzz*)
    CC=clang cmake -S . -B build-fuzz -G Ninja -DTALLY_WERROR=ON -DTALLY_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_BENCH=OFF >/dev/null
    cmake --build build-fuzz -j "$JOBS" --target tally_fuzz
    if [ $# -eq 0 ]; then set -- -L fuzz; fi
    ctest --test-dir build-fuzz --output-on-failure -j 2 "$@"
    ;;
esac
