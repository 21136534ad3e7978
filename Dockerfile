# keytrail in a container:
#   docker build -t keytrail .
#   docker run --rm -v "$PWD:/scan" keytrail scan .
# The build stage compiles the CLI (default features: git history with the
# https clone client, container images); the runtime stage holds only the
# binary and CA certificates (registries and https clones verify TLS).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p keytrail-cli \
 && install -m 0755 target/release/keytrail /usr/local/bin/keytrail

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 keytrail
COPY --from=build /usr/local/bin/keytrail /usr/local/bin/keytrail
USER keytrail
WORKDIR /scan
ENTRYPOINT ["keytrail"]
CMD ["--help"]
