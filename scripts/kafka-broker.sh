#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for tally's
# integration tests. The broker's jars come from Maven Central through scripts/kafka/pom.xml.
#
#   scripts/kafka-broker.sh fetch        gather the broker's jars into the cache (idempotent)
#   scripts/kafka-broker.sh start DIR [--secure]
#                                        start a fresh broker with its state under DIR; waits
#                                        until it answers a metadata request on every listener.
#                                        --secure (or TALLY_KAFKA_SECURE=1): besides PLAINTEXT,
#                                        an SSL and a SASL_SSL (SCRAM-SHA-256/512) listener
#   scripts/kafka-broker.sh stop DIR     stop the broker started in DIR (by its pid)
#   scripts/kafka-broker.sh restart DIR  stop the broker of DIR (if running) and start it again
#                                        on its data and ports (nothing wiped); waits until it
#                                        answers a metadata request
#   scripts/kafka-broker.sh env DIR      print TALLY_TEST_BOOTSTRAP=127.0.0.1:PORT (secure mode
#                                        also TALLY_TEST_BOOTSTRAP_SSL and _SASL_SSL)
#   scripts/kafka-broker.sh status DIR   exit 0 if the broker in DIR is running
#   scripts/kafka-broker.sh version      print the Kafka version
#
# Files in DIR: bootstrap (127.0.0.1:PORT), broker.pid, broker.log, server.properties,
# log4j.properties, data/ (wiped at every start, kept by restart).
# Secure mode adds: bootstrap_ssl and bootstrap_sasl_ssl (127.0.0.1:PORT); tls/ca.pem, the CA
# that signed the broker's certificate (for localhost and 127.0.0.1; tls/broker.pem is the
# broker's PEM keystore), made with openssl at every start, kept by restart;
# client_ssl.properties and client_sasl_ssl.properties, librdkafka properties for a client of
# each listener (the second with the SCRAM user's name and password; mode 600), e.g.
#   kcat -F DIR/client_sasl_ssl.properties -b "$(cat DIR/bootstrap_sasl_ssl)" -L
#
# Environment:
#   TALLY_CACHE              cache root (default ~/.cache/tally)
#   TALLY_KAFKA_CACHE        cache dir for this Kafka version (default $TALLY_CACHE/kafka-VERSION)
#   TALLY_KAFKA_HEAP         JVM heap (default 512m)
#   TALLY_KAFKA_LOG_LEVEL    broker log level (default WARN)
#   TALLY_KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90)
#   TALLY_KAFKA_STOP_TIMEOUT   seconds between TERM and KILL (default 30)
#   TALLY_KAFKA_PROPERTIES   extra lines appended to server.properties (newline-separated)
#   TALLY_KAFKA_SECURE       1: start in secure mode (as --secure)
#   TALLY_KAFKA_SCRAM_USER   secure mode: the SCRAM user (default tally)
#   TALLY_KAFKA_SCRAM_PASSWORD  secure mode: its password (default: random hex); the same for
#                            SCRAM-SHA-256 and SCRAM-SHA-512; no ',', ']', '"' or spaces
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
SECURE=${TALLY_KAFKA_SECURE:-0}
SCRAM_USER=${TALLY_KAFKA_SCRAM_USER:-tally}
SCRAM_PASSWORD=${TALLY_KAFKA_SCRAM_PASSWORD:-}

die() { echo "kafka-broker: $*" >&2; exit 1; }
say() { echo "kafka-broker: $*" >&2; }
# shellcheck source=lib/process.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/process.sh"

# Content of the marker: what was fetched, so that a changed pom triggers a new fetch.
pom_digest() { sha256sum "$POM" | cut -d' ' -f1; }

fetched() { [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$1" ] && [ -d "$LIB" ]; }

# The jars into $LIB (make_locked holds the lock and writes the marker).
fetch_jars() {
  say "fetching Kafka $KAFKA_VERSION into $LIB"
  rm -rf "$LIB.tmp" "$MARKER"
  mvn_logged "$HERE/kafka" "$CACHE/fetch.log" fetch "$LIB.tmp" -B -q -Dstyle.color=never \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB.tmp"
  [ -f "$LIB.tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "fetch produced no kafka jar"
  rm -rf "$LIB"
  mv "$LIB.tmp" "$LIB"
  say "fetched $(find "$LIB" -name '*.jar' | wc -l) jars"
}

fetch() {
  local want; want=$(pom_digest)
  make_locked "$want" fetched fetch_jars mvn
}

# True if $1 is a live process whose command line runs kafka.Kafka with DIR $2's config
# (guards against a recycled pid).
is_our_broker() {
  local pid=$1 dir=$2
  is_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $dir/server.properties"
}

# Prints "PORT CONTROLLER_PORT SSL_PORT SASL_SSL_PORT CLUSTER_ID": four distinct free
# loopback ports (the last two used in secure mode only), and a random Kafka cluster id
# (base64url of 16 random bytes, as StorageTool random-uuid prints).
pick_ports_and_id() {
  python3 - <<'EOF'
import base64, socket, uuid
socks = []
for _ in range(4):
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
print(*ports, cid)
EOF
}

write_config() {
  local dir=$1 port=$2 cport=$3 sport=$4 aport=$5
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ "$SECURE" = 1 ]; then
    listeners+=",SSL://127.0.0.1:$sport,SASL_SSL://127.0.0.1:$aport"
    advertised+=",SSL://127.0.0.1:$sport,SASL_SSL://127.0.0.1:$aport"
    protocols+=",SSL:SSL,SASL_SSL:SASL_SSL"
  fi
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka-broker.sh: single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
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
  if [ "$SECURE" = 1 ]; then
    local jaas="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat >>"$dir/server.properties" <<EOF
# Secure mode: TLS with the certificate of tls/ (no client certificates), SCRAM on SASL_SSL.
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/broker.pem
ssl.client.auth=none
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$jaas
EOF
  fi
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

# Secure mode: makes DIR/tls (a CA, and a certificate it signed for localhost and 127.0.0.1
# whose key and chain make the broker's PEM keystore broker.pem) and the client properties.
make_tls() {
  local dir=$1 tls=$1/tls
  command -v openssl >/dev/null || die "openssl not found (secure mode makes certificates with it)"
  rm -rf "$tls"
  mkdir -m 700 "$tls"
  [ -n "$SCRAM_PASSWORD" ] || SCRAM_PASSWORD=$(openssl rand -hex 16)
  {
    echo "=== $(date -u +%FT%TZ) certificates in $tls"
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tls/ca.key" &&
    openssl req -x509 -key "$tls/ca.key" -days 30 -subj "/CN=tally test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$tls/ca.pem" &&
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tls/broker.key" &&
    openssl req -new -key "$tls/broker.key" -subj "/CN=localhost" -out "$tls/broker.csr" &&
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      >"$tls/broker.ext" &&
    openssl x509 -req -days 30 -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -set_serial "0x$(openssl rand -hex 8)" -extfile "$tls/broker.ext" -out "$tls/broker.crt"
  } </dev/null >>"$dir/broker.log" 2>&1 || { tail -n 20 "$dir/broker.log" >&2; die "openssl failed"; }
  cat "$tls/broker.key" "$tls/broker.crt" "$tls/ca.pem" >"$tls/broker.pem"
  (
    umask 077
    printf '%s\n' "security.protocol=SSL" "ssl.ca.location=$tls/ca.pem" \
      >"$dir/client_ssl.properties"
    printf '%s\n' "security.protocol=SASL_SSL" "ssl.ca.location=$tls/ca.pem" \
      "sasl.mechanisms=SCRAM-SHA-512" "sasl.username=$SCRAM_USER" \
      "sasl.password=$SCRAM_PASSWORD" >"$dir/client_sasl_ssl.properties"
  )
}

# The advertised listeners of DIR's broker, one PROTOCOL://HOST:PORT a line.
advertised() {
  sed -n 's/^advertised\.listeners=//p' "$1/server.properties" | tail -n 1 | tr ',' '\n'
}

# Ready = a metadata request answers and lists broker 1, on every advertised listener of DIR
# (the secure ones with DIR's client properties).
probe() {
  local dir=$1 l out
  local -a opts
  for l in $(advertised "$dir"); do
    case ${l%%://*} in
      PLAINTEXT) opts=() ;;
      SSL) opts=(-F "$dir/client_ssl.properties") ;;
      SASL_SSL) opts=(-F "$dir/client_sasl_ssl.properties") ;;
      *) continue ;;
    esac
    out=$(timeout 15 kcat "${opts[@]}" -b "${l#*://}" -L -m 5 2>/dev/null) || return 1
    grep -q "broker 1 at" <<<"$out" || return 1
  done
}

# Writes DIR/bootstrap (last: it tells that the broker is up), and in secure mode
# DIR/bootstrap_ssl and DIR/bootstrap_sasl_ssl, from the advertised listeners.
publish() {
  local dir=$1 proto file addr
  for proto in SSL SASL_SSL PLAINTEXT; do
    case $proto in
      PLAINTEXT) file=bootstrap ;;
      SSL) file=bootstrap_ssl ;;
      SASL_SSL) file=bootstrap_sasl_ssl ;;
    esac
    addr=$(advertised "$dir" | sed -n "s|^$proto://||p")
    [ -n "$addr" ] || continue
    echo "$addr" >"$dir/$file.tmp" && mv "$dir/$file.tmp" "$dir/$file"
  done
}

# The files publish writes.
BOOTSTRAP_FILES=(bootstrap bootstrap_ssl bootstrap_sasl_ssl)

# Starts the broker configured in $1 and waits until it answers, then publishes its
# addresses; $2 names the step in messages. Returns 3 when the broker lost a race for a
# port (the caller may retry with new ports); dies on any other failure. Sets LAUNCHED_PID.
launch() {
  local dir=$1 what=$2 pid rc=0
  local -a jopts; mapfile -t jopts < <(java_opts "$dir")
  # stdin/stdout/stderr all redirected, so that callers that read our output (ctest) do not
  # wait for the broker.
  java "${jopts[@]}" -cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
      </dev/null >>"$dir/broker.log" 2>&1 &
  pid=$!
  LAUNCHED_PID=$pid
  echo "$pid" >"$dir/broker.pid"
  wait_ready "$pid" "$START_TIMEOUT" probe "$dir" || rc=$?
  if [ "$rc" -eq 1 ]; then
    if grep -q "Address already in use" "$dir/broker.log"; then
      return 3
    fi
    tail -n 40 "$dir/broker.log" >&2
    rm -f "$dir/broker.pid"
    die "broker exited during $what (log: $dir/broker.log)"
  elif [ "$rc" -eq 2 ]; then
    tail -n 40 "$dir/broker.log" >&2
    stop "$dir" || true
    die "broker did not answer within ${START_TIMEOUT}s of its $what (log: $dir/broker.log)"
  fi
  publish "$dir"
  return 0
}

start_once() {
  local dir=$1 port cport sport aport cid
  read -r port cport sport aport cid < <(pick_ports_and_id) || true
  [ -n "${cid:-}" ] || die "could not pick free ports (python3 missing?)"
  rm -rf "$dir/data" "$dir/broker.pid"
  (cd "$dir" && rm -f "${BOOTSTRAP_FILES[@]}")
  mkdir -p "$dir/data"
  write_config "$dir" "$port" "$cport" "$sport" "$aport"
  local -a scram=()
  if [ "$SECURE" = 1 ]; then
    scram=(--add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]"
           --add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]")
  fi
  local -a jopts; mapfile -t jopts < <(java_opts "$dir")
  {
    echo "=== $(date -u +%FT%TZ) kafka $KAFKA_VERSION: format (cluster $cid)"
  } >>"$dir/broker.log"
  java "${jopts[@]}" -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$dir/server.properties" "${scram[@]}" </dev/null >>"$dir/broker.log" 2>&1 \
    || { tail -n 30 "$dir/broker.log" >&2; die "storage format failed"; }
  echo "=== $(date -u +%FT%TZ) start on 127.0.0.1:$port (controller $cport)" >>"$dir/broker.log"
  launch "$dir" start-up
}

start() {
  local dir=$1 t0
  t0=$(date +%s)
  start_begin broker "$dir" is_our_broker java kcat
  dir=$(cd "$dir" && pwd -P)
  : >"$dir/broker.log"
  rm -rf "$dir/tls" "$dir"/client_*.properties
  if [ "$SECURE" = 1 ]; then
    make_tls "$dir"
  fi
  start_retrying broker "$dir" "new ports"
  say "Kafka $KAFKA_VERSION up at $(cat "$dir/bootstrap")$(secure_note "$dir") (pid $(cat "$dir/broker.pid"), $(( $(date +%s) - t0 ))s)"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || { say "no $dir: nothing to stop"; return 0; }
  dir=$(cd "$dir" && pwd -P)
  stop_service broker "$dir" is_our_broker || true
  (cd "$dir" && rm -f "${BOOTSTRAP_FILES[@]}")
}

# Stops the broker of DIR and starts it again with the same server.properties: same data
# (log.dirs, cluster id), same ports. The port is re-bound at once; it was ours until the
# broker stopped.
restart() {
  local dir=$1 port t0
  t0=$(date +%s)
  need_commands java kcat
  [ -d "$dir" ] || die "no $dir: start a broker there first"
  dir=$(cd "$dir" && pwd -P)
  [ -f "$dir/server.properties" ] && [ -f "$dir/data/meta.properties" ] \
    || die "no broker data in $dir (start a broker there first)"
  port=$(sed -n 's|^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*|\1|p' "$dir/server.properties")
  [ -n "$port" ] || die "no PLAINTEXT listener in $dir/server.properties"
  fetch
  stop "$dir"
  echo "=== $(date -u +%FT%TZ) restart on 127.0.0.1:$port (data kept)" >>"$dir/broker.log"
  launch "$dir" restart || die "the broker's ports are taken now (log: $dir/broker.log)"
  say "Kafka $KAFKA_VERSION restarted at 127.0.0.1:$port$(secure_note "$dir") (pid $LAUNCHED_PID, $(( $(date +%s) - t0 ))s)"
}

# ", SSL at ..., SASL_SSL at ..." when DIR's broker has those listeners.
secure_note() {
  [ -s "$1/bootstrap_ssl" ] || return 0
  printf ', SSL at %s, SASL_SSL at %s' "$(cat "$1/bootstrap_ssl")" "$(cat "$1/bootstrap_sasl_ssl")"
}

cmd=${1:-}
shift || true
case "$cmd" in
  fetch) fetch ;;
  start)
    dir=
    for arg in "$@"; do
      case $arg in
        --secure) SECURE=1 ;;
        -*) usage ;;
        *) [ -z "$dir" ] || usage; dir=$arg ;;
      esac
    done
    need_dir "$dir"; start "$dir"
    ;;
  stop) need_dir "$@"; stop "$1" ;;
  restart) need_dir "$@"; restart "$1" ;;
  env)
    need_dir "$@"
    [ -s "$1/bootstrap" ] || die "no broker running in $1"
    echo "TALLY_TEST_BOOTSTRAP=$(cat "$1/bootstrap")"
    if [ -s "$1/bootstrap_ssl" ]; then
      echo "TALLY_TEST_BOOTSTRAP_SSL=$(cat "$1/bootstrap_ssl")"
      echo "TALLY_TEST_BOOTSTRAP_SASL_SSL=$(cat "$1/bootstrap_sasl_ssl")"
    fi
    ;;
  status) need_dir "$@"; status broker "$1" is_our_broker bootstrap ;;
  version) echo "$KAFKA_VERSION" ;;
  *) usage ;;
esac
