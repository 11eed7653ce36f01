#!/usr/bin/env bash
# Writes docs/configuration.md from the configuration tables (app/config.c and the components that declare their keys), via
# `tally config list --markdown`. The test docs.configuration fails when the committed
# file differs from what this prints.
#
#   scripts/gen-config-doc.sh [TALLY_BIN] [OUTPUT]   (defaults: build/tally, docs/configuration.md)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/build/tally}
OUT=${2:-$ROOT/docs/configuration.md}
{
  cat <<'HEAD'
# Configuration

Generated from the configuration tables by `scripts/gen-config-doc.sh`; do not edit by hand.

Sources, later ones winning: defaults, a properties file (`-c FILE`, `key=value` lines, `#`
comments), `TALLY_*` environment variables (the key upper-cased with `.` as `_`, e.g.
`TALLY_FEATURES_HALF_LIFE_MS`), and `-X key=value` on the command line. An unknown key or a
bad value stops tally with an error naming the key and where it was set (`file:line`).

Keys starting with `kafka.` are not listed: they go to librdkafka as they are
(`kafka.bootstrap.servers`, `kafka.security.protocol`, ...); `kafka.consumer.X` and
`kafka.producer.X` set X for one side only. The settings tally makes for librdkafka,
its defaults (which such keys change) and what its clients need (which they cannot), are
in the last table, "librdkafka".
HEAD
  "$BIN" config list --markdown
} > "$OUT"
