#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for tally's
# integration tests. The broker's jars come from Maven Central through scripts/kafka/pom.xml.
#
#   scripts/kafka-broker.sh fetch        gather the broker's jars into the cache (idempotent)
#   scripts/kafka-broker.sh start DIR    start a fresh broker with its state under DIR; waits
#                                        until it answers a metadata request
#   scripts/kafka-broker.sh stop DIR     stop the broker started in DIR (by its pid)
#   scripts/kafka-broker.sh restart DIR  stop the broker of DIR (if running) and start it again
#                                        on its data and ports (nothing wiped); waits until it
#                                        answers a metadata request
#   scripts/kafka-broker.sh env DIR      print TALLY_TEST_BOOTSTRAP=127.0.0.1:PORT
#   scripts/kafka-broker.sh status DIR   exit 0 if the broker in DIR is running
#   scripts/kafka-broker.sh version      print the Kafka version
#
# Files in DIR: bootstrap (127.0.0.1:PORT), broker.pid, broker.log, server.properties,
# log4j.properties, data/ (wiped at every start, kept by restart).
#
# Environment:
#   TALLY_CACHE              cache root (default ~/.cache/tally)
#   TALLY_KAFKA_CACHE        cache dir for this Kafka version (default $TALLY_CACHE/kafka-VERSION)
#   TALLY_KAFKA_HEAP         JVM heap (default 512m)
#   TALLY_KAFKA_LOG_LEVEL    broker log level (default WARN)
#   TALLY_KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90)
#   TALLY_KAFKA_STOP_TIMEOUT   seconds between TERM and KILL (default 30)
#   TALLY_KAFKA_PROPERTIES   extra lines appended to server.properties (newline-separated)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$HERE/kafka/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)
[ -n "$KAFKA_VERSION" ] || { echo "kafka-broker: no <kafka.version> in $POM" >&2; exit 2; }
CACHE=${TALLY_KAFKA_CACHE:-${TALLY_CACHE:-${HOME:-/tmp}/.cache/tally}/kafka-$KAFKA_VERSION}
LIB="$CACHE/lib"
MARKER="$CACHE/fetched"
HEAP=${TALLY_KAFKA_HEAP:-512m}
LOG_LEVEL=${TALLY_KAFKA_LOG_LEVEL:-WARN}
START_TIMEOUT=${TALLY_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${TALLY_KAFKA_STOP_TIMEOUT:-30}

die() { echo "kafka-broker: $*" >&2; exit 1; }
say() { echo "kafka-broker: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# Content of the marker: what was fetched, so that a changed pom triggers a new fetch.
pom_digest() { sha256sum "$POM" | cut -d' ' -f1; }

fetch() {
  local want; want=$(pom_digest)
  if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ] && [ -d "$LIB" ]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (run scripts/deps.sh)"
  mkdir -p "$CACHE"
  # One fetch at a time per cache dir; a second caller waits, then finds the marker.
  exec 9>"$CACHE/.lock"
  flock 9
  if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ] && [ -d "$LIB" ]; then
    exec 9>&-
    return 0
  fi
  say "fetching Kafka $KAFKA_VERSION into $LIB"
  rm -rf "$LIB.tmp" "$MARKER"
  local mvnlog="$CACHE/fetch.log"
  if ! (cd "$HERE/kafka" && mvn -B -q -Dstyle.color=never dependency:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$LIB.tmp") >"$mvnlog" 2>&1; then
    tail -n 40 "$mvnlog" >&2
    rm -rf "$LIB.tmp"
    die "fetch failed (full log: $mvnlog)"
  fi
  [ -f "$LIB.tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "fetch produced no kafka jar"
  rm -rf "$LIB"
  mv "$LIB.tmp" "$LIB"
  echo "$want" >"$MARKER.tmp" && mv "$MARKER.tmp" "$MARKER"
  exec 9>&-
  say "fetched $(find "$LIB" -name '*.jar' | wc -l) jars"
}

# True if process $1 exists and is not a zombie.
is_alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# True if $1 is a live process whose command line runs kafka.Kafka with DIR $2's config
# (guards against a recycled pid).
is_our_broker() {
  local pid=$1 dir=$2
  is_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $dir/server.properties"
}

# Prints "PORT CONTROLLER_PORT CLUSTER_ID": two distinct free loopback ports, and a random
# Kafka cluster id (base64url of 16 random bytes, as StorageTool random-uuid prints).
pick_ports_and_id() {
  python3 - <<'EOF'
import base64, socket, uuid
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
# An id starting with '-' would be read as an option by StorageTool's argument parser.
cid = "-"
while cid.startswith("-"):
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
print(ports[0], ports[1], cid)
EOF
}

write_config() {
  local dir=$1 port=$2 cport=$3
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka-broker.sh: single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF
  if [ -n "${TALLY_KAFKA_PROPERTIES:-}" ]; then
    printf '%s\n' "$TALLY_KAFKA_PROPERTIES" >>"$dir/server.properties"
  fi
  cat >"$dir/log4j.properties" <<EOF
# Written by scripts/kafka-broker.sh: everything at $LOG_LEVEL to stdout (DIR/broker.log).
log4j.rootLogger=$LOG_LEVEL, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

java_opts() {
  local dir=$1
  printf '%s\n' "-Xmx$HEAP" "-Xms$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true "-Dlog4j.configuration=file:$dir/log4j.properties"
}

# Ready = a metadata request over the PLAINTEXT listener answers and lists broker 1.
probe() {
  local out
  out=$(timeout 15 kcat -b "$1" -L -m 5 2>/dev/null) || return 1
  grep -q "broker 1 at" <<<"$out"
}

start_once() {
  local dir=$1 port cport cid pid deadline
  read -r port cport cid < <(pick_ports_and_id) || true
  [ -n "${cid:-}" ] || die "could not pick free ports (python3 missing?)"
  rm -rf "$dir/data" "$dir/bootstrap" "$dir/broker.pid"
  mkdir -p "$dir/data"
  write_config "$dir" "$port" "$cport"
  local -a jopts; mapfile -t jopts < <(java_opts "$dir")
  {
    echo "=== $(date -u +%FT%TZ) kafka $KAFKA_VERSION: format (cluster $cid)"
  } >>"$dir/broker.log"
  java "${jopts[@]}" -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$dir/server.properties" </dev/null >>"$dir/broker.log" 2>&1 \
    || { tail -n 30 "$dir/broker.log" >&2; die "storage format failed"; }
  echo "=== $(date -u +%FT%TZ) start on 127.0.0.1:$port (controller $cport)" >>"$dir/broker.log"
  # stdin/stdout/stderr all redirected, so that callers that read our output (ctest) do not
  # wait for the broker.
  java "${jopts[@]}" -cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
      </dev/null >>"$dir/broker.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/broker.pid"
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  while :; do
    # $pid is our child: it is java, or for an instant the shell about to exec it.
    if ! is_alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      if grep -q "Address already in use" "$dir/broker.log"; then
        return 3  # lost a race for the port: caller retries with new ports
      fi
      tail -n 40 "$dir/broker.log" >&2
      rm -f "$dir/broker.pid"
      die "broker exited during start-up (log: $dir/broker.log)"
    fi
    if probe "127.0.0.1:$port"; then
      break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 40 "$dir/broker.log" >&2
      stop "$dir" || true
      die "broker did not answer within ${START_TIMEOUT}s (log: $dir/broker.log)"
    fi
    sleep 0.25  # poll interval
  done
  echo "127.0.0.1:$port" >"$dir/bootstrap.tmp" && mv "$dir/bootstrap.tmp" "$dir/bootstrap"
  return 0
}

start() {
  local dir=$1 t0 rc attempt
  t0=$(date +%s)
  command -v java >/dev/null || die "java not found (run scripts/deps.sh)"
  command -v kcat >/dev/null || die "kcat not found (run scripts/deps.sh)"
  fetch
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  # A broker left over from an earlier run in the same DIR (e.g. an interrupted ctest).
  if [ -f "$dir/broker.pid" ] && is_our_broker "$(cat "$dir/broker.pid")" "$dir"; then
    say "stopping the broker left running in $dir"
    stop "$dir"
  fi
  : >"$dir/broker.log"
  for attempt in 1 2 3; do
    rc=0
    start_once "$dir" || rc=$?
    [ "$rc" -eq 3 ] || break
    say "port taken (attempt $attempt), retrying with new ports"
  done
  [ "$rc" -eq 0 ] || die "could not start the broker (log: $dir/broker.log)"
  say "Kafka $KAFKA_VERSION up at $(cat "$dir/bootstrap") (pid $(cat "$dir/broker.pid"), $(( $(date +%s) - t0 ))s)"
}

stop() {
  local dir=$1 pid deadline
  [ -d "$dir" ] || { say "no $dir: nothing to stop"; return 0; }
  dir=$(cd "$dir" && pwd -P)
  if [ ! -f "$dir/broker.pid" ]; then
    say "no broker.pid in $dir: nothing to stop"
    rm -f "$dir/bootstrap"
    return 0
  fi
  pid=$(cat "$dir/broker.pid")
  if is_our_broker "$pid" "$dir"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(date +%s) + STOP_TIMEOUT ))
    while is_our_broker "$pid" "$dir" && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 0.1  # poll interval
    done
    if is_our_broker "$pid" "$dir"; then
      say "broker $pid ignored TERM for ${STOP_TIMEOUT}s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(( $(date +%s) + 10 ))
      while is_our_broker "$pid" "$dir" && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.1  # poll interval
      done
      is_our_broker "$pid" "$dir" && die "broker $pid survived KILL"
    fi
    say "stopped broker $pid"
  else
    say "broker $pid in $dir is not running"
  fi
  rm -f "$dir/broker.pid" "$dir/bootstrap"
}

# Stops the broker of DIR and starts it again with the same server.properties: same data
# (log.dirs, cluster id), same ports. The port is re-bound at once; it was ours until the
# broker stopped.
restart() {
  local dir=$1 port pid deadline t0
  t0=$(date +%s)
  command -v java >/dev/null || die "java not found (run scripts/deps.sh)"
  command -v kcat >/dev/null || die "kcat not found (run scripts/deps.sh)"
  [ -d "$dir" ] || die "no $dir: start a broker there first"
  dir=$(cd "$dir" && pwd -P)
  [ -f "$dir/server.properties" ] && [ -f "$dir/data/meta.properties" ] \
    || die "no broker data in $dir (start a broker there first)"
  port=$(sed -n 's|^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*|\1|p' "$dir/server.properties")
  [ -n "$port" ] || die "no PLAINTEXT listener in $dir/server.properties"
  fetch
  stop "$dir"
  local -a jopts; mapfile -t jopts < <(java_opts "$dir")
  echo "=== $(date -u +%FT%TZ) restart on 127.0.0.1:$port (data kept)" >>"$dir/broker.log"
  java "${jopts[@]}" -cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
      </dev/null >>"$dir/broker.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/broker.pid"
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  while :; do
    if ! is_alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      tail -n 40 "$dir/broker.log" >&2
      rm -f "$dir/broker.pid"
      die "broker exited during restart (log: $dir/broker.log)"
    fi
    if probe "127.0.0.1:$port"; then
      break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 40 "$dir/broker.log" >&2
      stop "$dir" || true
      die "restarted broker did not answer within ${START_TIMEOUT}s (log: $dir/broker.log)"
    fi
    sleep 0.25  # poll interval
  done
  echo "127.0.0.1:$port" >"$dir/bootstrap.tmp" && mv "$dir/bootstrap.tmp" "$dir/bootstrap"
  say "Kafka $KAFKA_VERSION restarted at 127.0.0.1:$port (pid $pid, $(( $(date +%s) - t0 ))s)"
}

need_dir() { if [ $# -lt 1 ] || [ -z "$1" ]; then usage; fi; }

cmd=${1:-}
shift || true
case "$cmd" in
  fetch) fetch ;;
  start) need_dir "$@"; start "$1" ;;
  stop) need_dir "$@"; stop "$1" ;;
  restart) need_dir "$@"; restart "$1" ;;
  env)
    need_dir "$@"
    [ -s "$1/bootstrap" ] || die "no broker running in $1"
    echo "TALLY_TEST_BOOTSTRAP=$(cat "$1/bootstrap")"
    ;;
  status)
    need_dir "$@"
    if [ -f "$1/broker.pid" ] && is_our_broker "$(cat "$1/broker.pid")" "$(cd "$1" && pwd -P)"; then
      echo "running at $(cat "$1/bootstrap" 2>/dev/null || echo '(starting)') pid $(cat "$1/broker.pid")"
    else
      echo "not running"; exit 1
    fi
    ;;
  version) echo "$KAFKA_VERSION" ;;
  *) usage ;;
esac
