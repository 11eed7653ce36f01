#!/usr/bin/env bash
# Builds the Kafka Streams peer (bench/run.py peer) into bench/streams-peer/target:
# streams-peer.jar and its dependencies in lib/, from Maven Central, with kafka-streams at
# the broker's version (<kafka.version> of scripts/kafka/pom.xml). Idempotent: when the jar
# was built from the same pom, sources and version it changes nothing and touches no network;
# once Maven's local repository (~/.m2) holds the artifacts, a rebuild works offline too.
# Installs a JDK and Maven with apt-get when javac or mvn is missing (as scripts/deps.sh).
# Prints the classpath to run it with:
#   java -cp "$(bench/streams-peer/build.sh)" tally.peer.StreamsPeer ...
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml" | head -n1)
[ -n "$KAFKA_VERSION" ] || { echo "streams-peer: no <kafka.version> in scripts/kafka/pom.xml" >&2; exit 2; }
TARGET="$HERE/target"
MARKER="$TARGET/built"
say() { echo "streams-peer: $*" >&2; }

digest() {
  { echo "$KAFKA_VERSION"; cat "$HERE/pom.xml"; find "$HERE/src" -type f | sort | xargs cat; } |
    sha256sum | cut -d' ' -f1
}

want=$(digest)
if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ] && [ -f "$TARGET/streams-peer.jar" ]; then
  echo "$TARGET/streams-peer.jar:$TARGET/lib/*"
  exit 0
fi

missing=()
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q </dev/null >&2
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
fi

say "building with kafka-streams $KAFKA_VERSION (log: $TARGET/build.log)"
mkdir -p "$TARGET"
rm -f "$MARKER"
if ! (cd "$HERE" && mvn -B -q -Dstyle.color=never "-Dkafka.version=$KAFKA_VERSION" clean package) \
    </dev/null >"$HERE/build.log.tmp" 2>&1; then
  tail -n 40 "$HERE/build.log.tmp" >&2
  mv "$HERE/build.log.tmp" "$TARGET/build.log" 2>/dev/null || true
  exit 1
fi
mv "$HERE/build.log.tmp" "$TARGET/build.log"
[ -f "$TARGET/lib/kafka-streams-$KAFKA_VERSION.jar" ] || { say "no kafka-streams $KAFKA_VERSION in $TARGET/lib"; exit 1; }
echo "$want" >"$MARKER"
echo "$TARGET/streams-peer.jar:$TARGET/lib/*"
