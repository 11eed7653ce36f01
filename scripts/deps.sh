#!/usr/bin/env bash
# Installs everything tally's build and tests need: Debian packages, the Python packages of
# tests/integration/requirements.txt (into the python3 on PATH) and the Kafka broker's jars
# (scripts/kafka-broker.sh fetch). Idempotent: when everything is present it changes nothing
# and touches no network. Non-interactive (works with CI=true and no stdin).
#
# Environment:
#   TALLY_DEPS_SKIP_KAFKA=1   do not fetch the Kafka broker's jars nor build the schema
#                             registry (scripts/schema-registry.sh) the tests start
#   TALLY_DEPS_SKIP_PYTHON=1  do not install the test tools from PyPI
#   TALLY_DEPS_BUILD_ONLY=1   only the Debian packages the build needs (no JRE, Maven, kcat,
#                             pip, promtool or clang; implies both skips above)
#   PYTHON=...                Python interpreter to install into (default python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libavro-dev librocksdb-dev libopenblas-dev liblapacke-dev libcmocka-dev
  libcurl4-openssl-dev libmicrohttpd-dev libjemalloc-dev openssl
)
TEST_APT_PACKAGES=(
  kcat default-jre-headless maven python3-pip
  prometheus   # promtool: integration.http checks a live /metrics with it
  strace       # deploy.install lists what tally run opens
  clang-format-19   # style.format: the C sources as .clang-format lays them out
  chromium     # integration.report renders the HTML report and reads its screenshot
)
BUILD_ONLY=${TALLY_DEPS_BUILD_ONLY:-0}
if [ "$BUILD_ONLY" = 1 ]; then
  TALLY_DEPS_SKIP_KAFKA=1
  TALLY_DEPS_SKIP_PYTHON=1
else
  APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")
fi

say() { echo "deps: $*" >&2; }

# The fuzzing stage (tests/fuzz, docs/fuzzing.md) builds with clang and links libFuzzer,
# whose runtime (libclang_rt.fuzzer*.a) is not in the clang package but in
# libclang-rt-<major>-dev (14 on Debian bookworm), <major> being clang's.
clang_major() {
  local v=""
  if command -v clang >/dev/null; then
    v=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
  else
    v=$(apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1)
  fi
  echo "${v:-14}"
}
[ "$BUILD_ONLY" = 1 ] || APT_PACKAGES+=(clang "libclang-rt-$(clang_major)-dev")

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo -n); else
    say "not root and no sudo: cannot install Debian packages"; fi
fi

# --- Debian packages --------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q </dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
  say "Debian packages: all present"
fi

# --- Python packages --------------------------------------------------------------------
REQ="$ROOT/tests/integration/requirements.txt"
# Exit 0 when every "name==version" line of $REQ is installed at that version.
py_satisfied() {
  "$PYTHON" - "$REQ" <<'EOF'
import re, sys
from importlib import metadata
ok = True
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
    if not m:
        ok = False  # not a plain pin: let pip decide
        continue
    try:
        if metadata.version(m.group(1)) != m.group(2):
            ok = False
    except metadata.PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
EOF
}

if [ "${TALLY_DEPS_SKIP_PYTHON:-0}" = 1 ]; then
  say "Python packages: skipped (TALLY_DEPS_SKIP_PYTHON=1)"
elif py_satisfied; then
  say "Python packages: all present ($("$PYTHON" -c 'import sys; print(sys.executable)'))"
else
  say "installing Python packages from ${REQ#"$ROOT"/} into $("$PYTHON" -c 'import sys; print(sys.executable)')"
  export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  pip_log=$(mktemp)
  trap 'rm -f "$pip_log"' EXIT
  if ! "$PYTHON" -m pip install -q -r "$REQ" </dev/null >"$pip_log" 2>&1; then
    if grep -q externally-managed-environment "$pip_log"; then
      "$PYTHON" -m pip install -q --break-system-packages -r "$REQ" </dev/null
    else
      cat "$pip_log" >&2
      exit 1
    fi
  else
    cat "$pip_log" >&2
  fi
  py_satisfied || { say "Python packages still not as pinned in $REQ"; exit 1; }
fi

# --- Kafka broker jars, and the schema registry the tests run ------------------------------
if [ "${TALLY_DEPS_SKIP_KAFKA:-0}" != 1 ]; then
  "$ROOT/scripts/kafka-broker.sh" fetch
  say "Kafka $("$ROOT/scripts/kafka-broker.sh" version) jars: present"
  "$ROOT/scripts/schema-registry.sh" fetch
  say "Apicurio Registry $("$ROOT/scripts/schema-registry.sh" version): built"
fi
