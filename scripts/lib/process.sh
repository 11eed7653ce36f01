# Shared by scripts/kafka-broker.sh and scripts/schema-registry.sh (sourced; they define say
# and die, STOP_TIMEOUT for stop_service, stop and start_once for stop_leftover and
# start_retrying, fetch for start_begin, and CACHE and MARKER for make_locked).

# True if process $1 exists and is not a zombie.
is_alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# terminate WHAT PID CHECK DIR TIMEOUT: sends PID a TERM and waits up to TIMEOUT seconds
# while `CHECK PID DIR` still says it is the service of DIR; then a KILL and 10 seconds
# more; dies if it survives that. Polls every 0.1 s.
terminate() {
  local what=$1 pid=$2 check=$3 dir=$4 timeout=$5 deadline
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(( $(date +%s) + timeout ))
  while "$check" "$pid" "$dir" && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.1  # poll interval
  done
  if "$check" "$pid" "$dir"; then
    say "$what $pid ignored TERM for ${timeout}s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$(( $(date +%s) + 10 ))
    while "$check" "$pid" "$dir" && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 0.1  # poll interval
    done
    "$check" "$pid" "$dir" && die "$what $pid survived KILL"
  fi
  say "stopped $what $pid"
}

# The script's usage: its header comment, on stderr; exit status 2.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

need_dir() { if [ $# -lt 1 ] || [ -z "$1" ]; then usage; fi; }

# need_commands CMD...: dies naming the first CMD that is not on PATH (scripts/deps.sh
# installs them all).
need_commands() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || die "$c not found (run scripts/deps.sh)"
  done
}

# wait_ready PID TIMEOUT CHECK...: polls every 0.25 s until `CHECK...` succeeds (0), process
# PID, our child, is gone (1; reaped), or TIMEOUT seconds have passed (2).
wait_ready() {
  local pid=$1 deadline=$(( $(date +%s) + $2 ))
  shift 2
  while :; do
    # $pid is our child: it is java, or for an instant the shell about to exec it.
    if ! is_alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    if "$@"; then
      return 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      return 2
    fi
    sleep 0.25  # poll interval
  done
}

# stop_service WHAT DIR CHECK: stops the WHAT whose pid DIR/WHAT.pid holds, when `CHECK PID
# DIR` says it is DIR's (terminate, the caller's STOP_TIMEOUT), and removes the pid file.
# Returns 1 when there was no pid file (nothing to stop).
stop_service() {
  local what=$1 dir=$2 check=$3 pid
  if [ ! -f "$dir/$what.pid" ]; then
    say "no $what.pid in $dir: nothing to stop"
    return 1
  fi
  pid=$(cat "$dir/$what.pid")
  if "$check" "$pid" "$dir"; then
    terminate "$what" "$pid" "$check" "$dir" "$STOP_TIMEOUT"
  else
    say "$what $pid in $dir is not running"
  fi
  rm -f "$dir/$what.pid"
}

# stop_leftover WHAT DIR CHECK: a WHAT left over from an earlier run in the same DIR (e.g. an
# interrupted ctest), when `CHECK PID DIR` says DIR/WHAT.pid holds one, is stopped with the
# caller's stop.
stop_leftover() {
  local what=$1 dir=$2 check=$3
  if [ -f "$dir/$what.pid" ] && "$check" "$(cat "$dir/$what.pid")" "$dir"; then
    say "stopping the $what left running in $dir"
    stop "$dir"
  fi
}

# start_begin WHAT DIR CHECK CMD...: the steps every start takes first: the commands CMD... on
# PATH (need_commands), the caller's fetch, DIR made, and a WHAT left over in it stopped
# (stop_leftover).
start_begin() {
  local what=$1 dir=$2 check=$3
  shift 3
  need_commands "$@"
  fetch
  mkdir -p "$dir"
  stop_leftover "$what" "$(cd "$dir" && pwd -P)" "$check"
}

# start_retrying WHAT DIR RETRY: the caller's start_once DIR, at most three times while it
# returns 3 (a port taken meanwhile: "retrying with RETRY"); dies unless it ends with 0.
start_retrying() {
  local what=$1 dir=$2 retry=$3 rc attempt
  for attempt in 1 2 3; do
    rc=0
    start_once "$dir" || rc=$?
    [ "$rc" -eq 3 ] || break
    say "port taken (attempt $attempt), retrying with $retry"
  done
  [ "$rc" -eq 0 ] || die "could not start the $what (log: $dir/$what.log)"
}

# status WHAT DIR CHECK FILE: "running at ADDRESS pid PID" (ADDRESS from DIR/FILE) when
# DIR/WHAT.pid holds a WHAT that `CHECK PID DIR` says is DIR's; else "not running", exit 1.
status() {
  local what=$1 dir=$2 check=$3 file=$4
  if [ -f "$dir/$what.pid" ] && "$check" "$(cat "$dir/$what.pid")" "$(cd "$dir" && pwd -P)"; then
    echo "running at $(cat "$dir/$file" 2>/dev/null || echo '(starting)') pid $(cat "$dir/$what.pid")"
  else
    echo "not running"; exit 1
  fi
}

# make_locked WANT HAVE MAKE [CMD...]: nothing when `HAVE WANT` says WANT is made (without
# taking the lock). Else, with the commands CMD... on PATH (need_commands), runs MAKE with the
# lock $CACHE/.lock held (one fetch or build at a time per cache dir), unless `HAVE WANT` says
# a caller that held the lock before made it meanwhile; then records WANT in $MARKER, so that
# `HAVE WANT` holds from then on.
make_locked() {
  local want=$1 have=$2 make=$3
  shift 3
  "$have" "$want" && return 0
  need_commands "$@"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if ! "$have" "$want"; then
    "$make"
    echo "$want" >"$MARKER.tmp" && mv "$MARKER.tmp" "$MARKER"
  fi
  exec 9>&-
}

# mvn_logged DIR LOG WHAT CLEAN ARGS...: `mvn ARGS...` in DIR, with its output in LOG; when it
# fails, the last 40 lines of LOG on stderr, CLEAN removed, and death with "WHAT failed (full
# log: LOG)".
mvn_logged() {
  local dir=$1 log=$2 what=$3 clean=$4
  shift 4
  if ! (cd "$dir" && mvn "$@") </dev/null >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -rf "$clean"
    die "$what failed (full log: $log)"
  fi
}
