#!/usr/bin/env bash
# The demo command: installs what is missing (no Kafka broker is needed: the demo runs
# an in-process one), builds tally, and runs `tally demo` (arguments are passed on).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TALLY_DEPS_SKIP_KAFKA=1 TALLY_DEPS_SKIP_PYTHON=1 scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target tally
exec build/tally demo "$@"
