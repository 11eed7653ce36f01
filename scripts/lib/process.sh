# Shared by scripts/kafka-broker.sh and scripts/schema-registry.sh (sourced; they define say
# and die).

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
