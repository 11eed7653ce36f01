#!/usr/bin/env bash
# The test command: installs what is missing (scripts/deps.sh), builds tally with
# warnings as errors, runs every test (unit and integration, the latter on a real
# Kafka broker started by the tests), then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer (LeakSanitizer included) and runs the tests once more there
# (all but the broker's own round-trip check and the long exactly-once crash suite).
#
#   scripts/test.sh              everything
#   scripts/test.sh -L unit      only tests with that ctest label (passed to ctest)
#
# Build trees: build/ (release with debug info) and build-asan/ (sanitizers).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc 2>/dev/null || echo 2)

scripts/deps.sh

cmake -S . -B build -G Ninja -DTALLY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j 2 "$@"

cmake -S . -B build-asan -G Ninja -DTALLY_WERROR=ON -DTALLY_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug -DTALLY_BENCH=OFF -DTALLY_KAFKA_TESTS=ON >/dev/null
cmake --build build-asan -j "$JOBS"
# integration.eos (24 SIGKILLs, several minutes) runs once, in the first build.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j 2 -E 'kafka_roundtrip|integration.eos' "$@"
