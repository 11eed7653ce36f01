# tally as a container image.
#
# The build stage builds with scripts/build.sh, the same script as a developer machine
# (it runs scripts/deps.sh for the Debian packages, then CMake). The runtime stage has only
# the shared libraries tally links against, curl for the health check, and runs as the
# non-root user tally (uid 10001) with its state under /var/lib/tally. See docs/deploy.md.
#
#   docker build -t tally .
#   docker run --rm -p 9464:9464 -e TALLY_KAFKA_BOOTSTRAP_SERVERS=broker:9092 tally
#   docker run --rm tally config list

# Base images pinned by version and digest (the multi-platform index digests docker-library
# publishes in its repo-info repository for these tags): a rebuild gets the same bytes.
FROM debian:bookworm-20260918@sha256:f37a335e82bca302e955fa39f9dfe28f1be618f016f8a2b56318e5a5111afc26 AS build
WORKDIR /src
COPY . .
# Build packages only (TALLY_DEPS_BUILD_ONLY, scripts/build.sh's default); installed under
# /opt/tally with the layout of /usr/local, which the runtime stage copies there: the binary
# finds its schemas in ../share/tally/schemas.
RUN scripts/build.sh build -DTALLY_TESTS=OFF -DTALLY_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --install build --prefix /opt/tally --strip

FROM debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libavro23 librocksdb7.8 libopenblas0-pthread liblapacke libcurl4 libmicrohttpd12 \
      libjemalloc2 \
      libsasl2-modules \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tally \
 && useradd --system --uid 10001 --gid tally --home-dir /var/lib/tally --no-create-home \
      --shell /usr/sbin/nologin tally \
 && install -d -o tally -g tally -m 0750 /var/lib/tally
COPY --from=build /opt/tally/ /usr/local/

# Defaults for a container; every one can be overridden with -e (docs/configuration.md).
ENV TALLY_STATE_DIR=/var/lib/tally \
    TALLY_HTTP_LISTEN=0.0.0.0:9464

USER tally
WORKDIR /var/lib/tally
VOLUME ["/var/lib/tally"]
# /metrics, /healthz, /readyz, /v1/users/{id}
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:9464/healthz || exit 1
# SIGTERM finishes and commits the current batch; give it shutdown.timeout.ms (30 s) and
# a margin: docker stop -t 45, or stop_grace_period: 45s in compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tally"]
CMD ["run"]
