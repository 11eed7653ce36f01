#!/usr/bin/env bash
# Installs what the build needs (scripts/deps.sh) and builds tally with CMake and Ninja.
# The README's build, the demo and the container image (Dockerfile) use this one script.
#
#   scripts/build.sh                          build/tally, RelWithDebInfo
#   scripts/build.sh [DIR] [CMAKE_ARG...]     another build tree, more cmake options
#                                             (e.g. -DTALLY_TESTS=OFF -DTALLY_BENCH=OFF)
#
# Environment:
#   TALLY_BUILD_TARGET=...   what to build (default tally; "all" for tests and benchmarks too)
#   TALLY_DEPS_BUILD_ONLY    passed to scripts/deps.sh; 1 by default here: building needs
#                            neither the test broker, the test tools nor their packages
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD_DIR=$1; shift; fi
TARGET=${TALLY_BUILD_TARGET:-tally}
JOBS=$(nproc 2>/dev/null || echo 2)

TALLY_DEPS_BUILD_ONLY=${TALLY_DEPS_BUILD_ONLY:-1} scripts/deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target "$TARGET"
echo "build: $BUILD_DIR/tally" >&2
