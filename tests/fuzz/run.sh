#!/usr/bin/env bash
# run.sh -- runs the libFuzzer harnesses for ctest (tests/fuzz/fuzz.cmake); also usable
# by hand for a long run (docs/fuzzing.md).
#
#   run.sh fuzz NAME BINARY OUT SRC
#       Fuzzes for FUZZ_SECONDS (else TALLY_FUZZ_SECONDS, else 30) seconds, one process,
#       from the working corpus OUT/corpus/NAME/ (kept between runs; new inputs go there),
#       the generated seeds OUT/seeds/NAME/ and the committed SRC/regressions/NAME/, with
#       the dictionary OUT/seeds/NAME.dict. A crash, leak, timeout or failed check exits
#       non-zero and leaves the input in OUT/artifacts/NAME/. Extra libFuzzer options:
#       FUZZ_ARGS (e.g. FUZZ_ARGS=-jobs=2 for a long run on two cores).
#
#       Known crashes: when SRC/known-crashes/NAME/ has signatures (*.sig: lines of text
#       that all appear in a crash's report), the run goes on past crashes (libFuzzer's
#       -fork=1 -ignore_crashes=1), then replays every crash input it wrote: one that
#       matches a signature is reported as known and tolerated, any other fails the run.
#       So a known, not yet fixed bug keeps neither the suite red nor the harness from
#       finding new ones.
#   run.sh regressions OUT SRC NAME=BINARY...
#       Runs each harness once over every file of SRC/regressions/NAME/ (crashes found
#       before, fixed since: they must stay fixed). SRC/known-crashes/ is not run.
#
# Scratch files of the harnesses go to OUT/tmp/NAME/ (TMPDIR), removed afterwards.
set -uo pipefail

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Per-harness libFuzzer options: the Markov solve is cubic in the channels of a path file,
# so its inputs are kept short enough for a few hundred channels at most.
harness_args() {
  case "$1" in
    paths) echo "-max_len=2048" ;;
    *) echo "" ;;
  esac
}

# The signature file (of SRC/known-crashes/NAME) whose every line appears in the report
# file $3, or nothing.
known_signature() {
  local src=$1 name=$2 report=$3 sig line all
  for sig in "$src/known-crashes/$name"/*.sig; do
    [ -f "$sig" ] || continue
    all=1
    while IFS= read -r line; do
      case "$line" in ''|'#'*) continue ;; esac
      grep -a -q -F -- "$line" "$report" || { all=0; break; }
    done <"$sig"
    [ $all -eq 1 ] && { echo "$sig"; return; }
  done
}

# The first lines of a crash report in log $1.
show_report() {
  local first
  first=$(grep -a -n -m 1 -E 'FUZZ CHECK FAILED|ERROR: |runtime error|==[0-9]+==' "$1" | cut -d: -f1)
  if [ -n "$first" ]; then sed -n "${first},$((first + 40))p" "$1"; else tail -n 40 "$1"; fi
}

mode=${1:-}
case "$mode" in
fuzz)
  [ $# -eq 5 ] || { echo "usage: run.sh fuzz NAME BINARY OUT SRC" >&2; exit 2; }
  name=$2 bin=$3 out=$4 src=$5
  seconds=${FUZZ_SECONDS:-${TALLY_FUZZ_SECONDS:-30}}
  corpus=$out/corpus/$name artifacts=$out/artifacts/$name tmp=$out/tmp/$name
  mkdir -p "$corpus" "$artifacts"
  rm -rf "$tmp" && mkdir -p "$tmp"
  dirs=("$corpus" "$out/seeds/$name")
  [ -d "$src/regressions/$name" ] && dirs+=("$src/regressions/$name")
  opts=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [ -f "$out/seeds/$name.dict" ] && opts+=(-dict="$out/seeds/$name.dict")
  known=0
  compgen -G "$src/known-crashes/$name/*.sig" >/dev/null && known=1
  # (Fork mode also goes on past timeouts and running out of memory: their inputs are
  # replayed below like crashes, and match no signature.)
  [ $known -eq 1 ] && opts+=(-fork=1 -ignore_crashes=1)
  # shellcheck disable=SC2207
  extra=($(harness_args "$name") ${FUZZ_ARGS:-})
  log=$out/$name.log
  stamp=$out/$name.start
  touch "$stamp"
  echo "fuzz: $name for ${seconds} s: $bin ${opts[*]} ${extra[*]} ${dirs[*]}"
  TMPDIR=$tmp "$bin" "${opts[@]}" "${extra[@]}" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  # The last status line (cov:, corp:, exec/s) and the final statistics.
  grep -a -E '^#[0-9]+:?[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED|cov:)' "$log" | tail -n 1
  grep -a -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$log" | sort -u
  failed=0
  if [ $known -eq 1 ]; then
    # Every crash input of this run, replayed and matched against the known signatures.
    while IFS= read -r crash; do
      report=$tmp/replay.log
      # Full allocation stacks: libraries built without frame pointers (avro-c) cut the
      # fast ones short, and a signature may name a function deep in one.
      ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0:malloc_context_size=40" \
        TMPDIR=$tmp "$bin" -runs=1 -timeout=25 -rss_limit_mb=2048 "$crash" >"$report" 2>&1
      sig=$(known_signature "$src" "$name" "$report")
      if [ -n "$sig" ]; then
        echo "fuzz: $name: known crash (${sig#"$src"/}): $crash"
        rm -f "$crash"
      else
        show_report "$report"
        echo "fuzz: $name: NEW crash: $crash" >&2
        failed=1
      fi
    done < <(find "$artifacts" -type f -newer "$stamp" 2>/dev/null)
    # A failure that left no input (the fuzzer itself failed) also fails the run.
    [ $rc -ne 0 ] && ! grep -a -q 'crash: [0-9]' "$log" && failed=1
  elif [ $rc -ne 0 ]; then
    show_report "$log"
    failed=1
  fi
  rm -rf "$tmp" "$stamp"
  if [ $failed -ne 0 ]; then
    echo "(full log: $log)"
    echo "fuzz: $name FAILED (exit $rc); the input is in $artifacts/ -- reproduce with" >&2
    echo "  $bin $artifacts/<file>" >&2
    echo "and see docs/fuzzing.md (\"A crash\") for making it a regression input." >&2
    exit 1
  fi
  exit 0
  ;;
regressions)
  [ $# -ge 3 ] || { echo "usage: run.sh regressions OUT SRC NAME=BINARY..." >&2; exit 2; }
  out=$2 src=$3
  shift 3
  failed=0 ran=0
  for pair in "$@"; do
    name=${pair%%=*} bin=${pair#*=}
    dir=$src/regressions/$name
    [ -d "$dir" ] || continue
    files=()
    for f in "$dir"/*; do
      case "$f" in *.sig | *.md) continue ;; esac   # notes, not inputs
      [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || continue
    tmp=$out/tmp/regressions-$name
    rm -rf "$tmp" && mkdir -p "$tmp"
    if TMPDIR=$tmp "$bin" -runs=1 "${files[@]}" >"$out/regressions-$name.log" 2>&1; then
      echo "regressions: $name: ${#files[@]} input(s) pass"
    else
      show_report "$out/regressions-$name.log"
      echo "regressions: $name FAILED (log: $out/regressions-$name.log)" >&2
      failed=1
    fi
    rm -rf "$tmp"
    ran=$((ran + ${#files[@]}))
  done
  echo "regressions: $ran input(s) in all"
  exit $failed
  ;;
*)
  echo "usage: run.sh fuzz NAME BINARY OUT SRC | run.sh regressions OUT SRC NAME=BINARY..." >&2
  exit 2
  ;;
esac
