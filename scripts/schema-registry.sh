#!/usr/bin/env bash
# Apicurio Registry (in-memory H2 storage) as a Confluent-API schema registry for tally's
# integration tests. Built once from Maven Central artifacts only: a pom.xml written by this
# script (below) unpacks io.apicurio:apicurio-registry-app and runs the Quarkus build on it.
#
#   scripts/schema-registry.sh fetch        build the registry into the cache (idempotent; no
#                                           network once built). Needs mvn and Maven Central
#   scripts/schema-registry.sh start DIR    start a fresh, empty registry on a free 127.0.0.1
#                                           port; waits until its Confluent API answers
#   scripts/schema-registry.sh stop DIR     stop the registry started in DIR (by its pid)
#   scripts/schema-registry.sh env DIR      print TALLY_TEST_SCHEMA_REGISTRY_URL=URL
#   scripts/schema-registry.sh status DIR   exit 0 if the registry in DIR is running
#   scripts/schema-registry.sh version      print the Apicurio Registry version
#
# Files in DIR: url (the Confluent-compatible base URL, http://127.0.0.1:PORT/apis/ccompat/v7;
# written last, once the API answers), registry.pid, registry.log.
# The registry keeps everything in memory: every start begins empty (first schema id is 1), and
# stop loses it all. No authentication. The same API is also served under /apis/ccompat/v6.
# Apicurio quirks a test may meet: a JSON schema is only recognised with a "$schema" keyword;
# an incompatible schema is refused with HTTP 409 (body error_code 0, not 409).
#
# Environment:
#   TALLY_CACHE                   cache root (default ~/.cache/tally)
#   TALLY_REGISTRY_CACHE          cache dir of this build (default $TALLY_CACHE/apicurio-VERSION)
#   TALLY_REGISTRY_HEAP           JVM heap (default 256m)
#   TALLY_REGISTRY_LOG_LEVEL      log level (default INFO: one audit line per API call)
#   TALLY_REGISTRY_START_TIMEOUT  seconds to wait for the API to answer (default 120)
#   TALLY_REGISTRY_STOP_TIMEOUT   seconds between TERM and KILL (default 30)
#   TALLY_REGISTRY_JAVA_OPTS      extra JVM options / -D settings (space-separated), e.g.
#                                 -Dregistry.ccompat.legacy-id-mode.enabled=true
set -euo pipefail

REGISTRY_VERSION=2.4.2.Final
QUARKUS_VERSION=2.16.4.Final  # what Apicurio 2.4.2.Final was built with (its parent POM)
CACHE=${TALLY_REGISTRY_CACHE:-${TALLY_CACHE:-${HOME:-/tmp}/.cache/tally}/apicurio-$REGISTRY_VERSION}
APP="$CACHE/app"
MARKER="$CACHE/fetched"
HEAP=${TALLY_REGISTRY_HEAP:-256m}
LOG_LEVEL=${TALLY_REGISTRY_LOG_LEVEL:-INFO}
START_TIMEOUT=${TALLY_REGISTRY_START_TIMEOUT:-120}
STOP_TIMEOUT=${TALLY_REGISTRY_STOP_TIMEOUT:-30}
EXTRA_OPTS=${TALLY_REGISTRY_JAVA_OPTS:-}

die() { echo "schema-registry: $*" >&2; exit 1; }
say() { echo "schema-registry: $*" >&2; }
# shellcheck source=lib/process.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/process.sh"

# The Maven project that builds the registry: no sources. The released application jar is
# unpacked into target/classes, so that it is the Quarkus application itself (indexed, with its
# application.properties and web.xml), as in Apicurio's own build; its dependencies come from
# its POM. Two artifacts of that POM are not on Maven Central, and are replaced:
#  - com.github.everit-org.json-schema:org.everit.json.schema (JitPack) by the same library
#    (package org.everit.json.schema) as com.github.erosb:everit-json-schema;
#  - apicurio-common-app-components-config-index 0.1.18.Final, whose Quarkus deployment
#    artifact is missing, by 0.1.10.Final.
write_pom() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/schema-registry.sh: builds Apicurio Registry $REGISTRY_VERSION with
     Quarkus $QUARKUS_VERSION into target/quarkus-app. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tally.test</groupId>
  <artifactId>tally-schema-registry</artifactId>
  <version>1</version>
  <packaging>jar</packaging>

  <properties>
    <apicurio.version>$REGISTRY_VERSION</apicurio.version>
    <quarkus.version>$QUARKUS_VERSION</quarkus.version>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <!-- Its classes are in target/classes: keep the jar out of lib/. -->
    <quarkus.class-loading.removed-artifacts>io.apicurio:apicurio-registry-app</quarkus.class-loading.removed-artifacts>
  </properties>

  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>io.apicurio</groupId>
        <artifactId>apicurio-registry</artifactId>
        <version>\${apicurio.version}</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
      <dependency>
        <groupId>io.apicurio</groupId>
        <artifactId>apicurio-common-app-components-config-index</artifactId>
        <version>0.1.10.Final</version>
      </dependency>
      <dependency>
        <groupId>io.apicurio</groupId>
        <artifactId>apicurio-common-app-components-config-index-deployment</artifactId>
        <version>0.1.10.Final</version>
      </dependency>
    </dependencies>
  </dependencyManagement>

  <dependencies>
    <dependency>
      <groupId>io.apicurio</groupId>
      <artifactId>apicurio-registry-app</artifactId>
      <version>\${apicurio.version}</version>
      <exclusions>
        <exclusion>
          <groupId>com.github.everit-org.json-schema</groupId>
          <artifactId>org.everit.json.schema</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>com.github.erosb</groupId>
      <artifactId>everit-json-schema</artifactId>
      <version>1.14.2</version>
    </dependency>
  </dependencies>

  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.5.0</version>
        <executions>
          <execution>
            <id>unpack-app</id>
            <phase>generate-resources</phase>
            <goals><goal>unpack</goal></goals>
            <configuration>
              <artifactItems>
                <artifactItem>
                  <groupId>io.apicurio</groupId>
                  <artifactId>apicurio-registry-app</artifactId>
                  <version>\${apicurio.version}</version>
                  <type>jar</type>
                </artifactItem>
              </artifactItems>
              <outputDirectory>\${project.build.outputDirectory}</outputDirectory>
            </configuration>
          </execution>
        </executions>
      </plugin>
      <plugin>
        <groupId>io.quarkus</groupId>
        <artifactId>quarkus-maven-plugin</artifactId>
        <version>\${quarkus.version}</version>
        <executions>
          <execution>
            <goals><goal>build</goal></goals>
          </execution>
        </executions>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

# The mvn command line of the build: fast-jar must be asked for on the command line, as the
# application's own application.properties asks for legacy-jar (and outranks pom properties).
MVN_ARGS=(-B -q -Dstyle.color=never -DskipTests -Dquarkus.package.type=fast-jar package)

# Content of the marker: what was built, so that a changed pom or build triggers a new build.
build_digest() { { write_pom; echo "${MVN_ARGS[*]}"; } | sha256sum | cut -d' ' -f1; }

built() { [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$1" ] && [ -f "$APP/quarkus-run.jar" ]; }

# The application into $APP (make_locked holds the lock and writes the marker).
build_app() {
  local t0 build="$CACHE/build"
  t0=$(date +%s)
  say "building Apicurio Registry $REGISTRY_VERSION (Quarkus $QUARKUS_VERSION) into $APP"
  rm -rf "$build" "$MARKER"
  mkdir -p "$build"
  write_pom >"$build/pom.xml"
  mvn_logged "$build" "$CACHE/fetch.log" build "$build/target" "${MVN_ARGS[@]}"
  [ -f "$build/target/quarkus-app/quarkus-run.jar" ] || die "build produced no quarkus-run.jar"
  rm -rf "$APP"
  mv "$build/target/quarkus-app" "$APP"
  rm -rf "$build/target"
  say "built in $(( $(date +%s) - t0 ))s ($(du -sh "$APP" | cut -f1))"
}

fetch() {
  local want; want=$(build_digest)
  make_locked "$want" built build_app mvn java
}

# True if $1 is a live registry started for DIR $2 (guards against a recycled pid): its command
# line carries -Dtally.registry.dir=DIR.
is_our_registry() {
  local pid=$1 dir=$2
  is_alive "$pid" || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "-Dtally.registry.dir=$dir"
}

# A free loopback port (bound then released: another process may take it before the registry
# does; start retries then).
pick_port() {
  python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Ready = GET URL/subjects answers 200 with a JSON array (the API is up and its storage too).
probe() {
  python3 - "$1/subjects" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        ok = r.status == 200 and r.read().lstrip().startswith(b"[")
except Exception:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

# Starts a registry for DIR and waits until its API answers, then writes DIR/url. Returns 3
# when the registry lost a race for its port (the caller may retry); dies on other failures.
start_once() {
  local dir=$1 port url pid from rc=0
  port=$(pick_port) || true
  [ -n "$port" ] || die "could not pick a free port (python3 missing?)"
  url="http://127.0.0.1:$port/apis/ccompat/v7"
  local -a jopts=(
    "-Dtally.registry.dir=$dir" "-Xmx$HEAP" "-Xms$HEAP"
    # Quicker start on a small, busy machine; a test registry needs no peak throughput.
    -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true
    "-Djava.io.tmpdir=$dir/tmp"
    "-Dquarkus.http.host=127.0.0.1" "-Dquarkus.http.port=$port"
    "-Dquarkus.log.level=$LOG_LEVEL" "-Dquarkus.log.category.\"io.apicurio\".level=$LOG_LEVEL"
  )
  # shellcheck disable=SC2206  # word splitting of the user's options is wanted
  [ -z "$EXTRA_OPTS" ] || jopts+=($EXTRA_OPTS)
  rm -rf "$dir/tmp" && mkdir -p "$dir/tmp"
  echo "=== $(date -u +%FT%TZ) apicurio-registry $REGISTRY_VERSION: start on 127.0.0.1:$port" \
    >>"$dir/registry.log"
  from=$(wc -l <"$dir/registry.log")  # this attempt's lines follow
  # stdin/stdout/stderr all redirected, so that callers that read our output (ctest) do not
  # wait for the registry.
  java "${jopts[@]}" -jar "$APP/quarkus-run.jar" </dev/null >>"$dir/registry.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/registry.pid"
  wait_ready "$pid" "$START_TIMEOUT" probe "$url" || rc=$?
  if [ "$rc" -eq 1 ]; then
    rm -f "$dir/registry.pid"
    if tail -n +"$from" "$dir/registry.log" \
        | grep -q "Port $port seems to be in use\|Address already in use"; then
      return 3
    fi
    tail -n 40 "$dir/registry.log" >&2
    die "registry exited during start-up (log: $dir/registry.log)"
  elif [ "$rc" -eq 2 ]; then
    tail -n 40 "$dir/registry.log" >&2
    stop "$dir" || true
    die "registry did not answer within ${START_TIMEOUT}s (log: $dir/registry.log)"
  fi
  echo "$url" >"$dir/url.tmp" && mv "$dir/url.tmp" "$dir/url"
}

start() {
  local dir=$1 t0
  t0=$(date +%s)
  start_begin registry "$dir" is_our_registry java python3
  dir=$(cd "$dir" && pwd -P)
  rm -f "$dir/url" "$dir/registry.pid"
  : >"$dir/registry.log"
  start_retrying registry "$dir" "another port"
  say "Apicurio Registry $REGISTRY_VERSION up at $(cat "$dir/url") (pid $(cat "$dir/registry.pid"), $(( $(date +%s) - t0 ))s)"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || { say "no $dir: nothing to stop"; return 0; }
  dir=$(cd "$dir" && pwd -P)
  stop_service registry "$dir" is_our_registry && rm -rf "$dir/tmp"
  rm -f "$dir/url"
}

cmd=${1:-}
shift || true
case "$cmd" in
  fetch) fetch ;;
  start) need_dir "$@"; start "$1" ;;
  stop) need_dir "$@"; stop "$1" ;;
  env)
    need_dir "$@"
    [ -s "$1/url" ] || die "no registry running in $1"
    echo "TALLY_TEST_SCHEMA_REGISTRY_URL=$(cat "$1/url")"
    ;;
  status) need_dir "$@"; status registry "$1" is_our_registry url ;;
  version) echo "$REGISTRY_VERSION" ;;
  *) usage ;;
esac
