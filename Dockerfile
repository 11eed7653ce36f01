# tally: build on Debian with the same dependency script as a developer machine, run as a
# non-root user with only the runtime libraries.
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN TALLY_DEPS_SKIP_KAFKA=1 TALLY_DEPS_SKIP_PYTHON=1 scripts/deps.sh \
 && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_TESTS=OFF -DTALLY_BENCH=OFF \
 && cmake --build build --target tally

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      librdkafka1 libavro23 librocksdb7.8 libopenblas0 libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/tally --create-home tally
COPY --from=build /src/build/tally /usr/local/bin/tally
COPY --from=build /src/schemas /src/schemas
USER tally
WORKDIR /var/lib/tally
ENTRYPOINT ["/usr/local/bin/tally"]
CMD ["run", "-X", "state.dir=/var/lib/tally/state"]
