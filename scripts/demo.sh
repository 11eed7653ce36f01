#!/usr/bin/env bash
# The demo command: installs what is missing and builds tally (scripts/build.sh, the same
# script the container image uses; no Kafka broker is needed: the demo runs an in-process
# one), then runs `tally demo` (arguments are passed on).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/build.sh build
exec build/tally demo "$@"
