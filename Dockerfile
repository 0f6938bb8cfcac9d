# syntax=docker/dockerfile:1.7
#
# One image for every binary of the connector; the first argument picks the program
# (deploy/docker/entrypoint.sh):
#
#   docker build -t connector:dev .
#   docker run --rm connector:dev ctl --help
#   docker run --rm -e DATABASE_URL=... connector:dev migrate
#   docker run --rm -e DATABASE_URL=... -e AMQP_URL=... -e CONNECTOR_ENCRYPTION_KEYS=... connector:dev order-ingest
#
# The build is offline with respect to the database: sqlx's query macros read the committed
# query data (.sqlx/ directories, SQLX_OFFLINE=true), so no PostgreSQL is needed to build.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

########################################################################################
# builder: compiles every binary of the workspace in release mode
########################################################################################
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
ARG RUST_VERSION
WORKDIR /src

# rust-toolchain.toml pins the same version and asks for rustfmt and clippy; naming the toolchain
# here makes rustup use the image's toolchain as is instead of fetching components a build
# does not need.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# The whole workspace (minus what .dockerignore leaves out): sources, Cargo.lock, migrations
# (embedded by sqlx::migrate!), spapi-models (embedded by the simulator) and every .sqlx/ dir.
COPY . .

# The registry and target caches persist between builds on the same builder (BuildKit); the
# binaries are copied out of the cached target dir because cache mounts are not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eux; \
    cargo build --release --locked --workspace --bins; \
    mkdir -p /out; \
    for bin in ctl order-ingest status-sync shipment-feedback inventory-sync feed-poller spapi-sim console demo; do \
        install -m 0755 "target/release/$bin" /out/; \
    done; \
    ls -l /out

########################################################################################
# runtime: small Debian base (same release as the builder, so glibc matches), non-root
########################################################################################
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to Amazon, LWA, PostgreSQL and RabbitMQ; tini: PID 1 that forwards SIGTERM
# to the program and reaps zombies (a Rust binary as PID 1 would not get default signal actions).
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 connector; \
    useradd --system --uid 10001 --gid connector --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin connector

COPY --from=builder /out/ /usr/local/bin/
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/entrypoint

# Services listen for /livez, /readyz and /metrics on ADMIN_ADDR; JSON logs by default in a container.
ENV ADMIN_ADDR=0.0.0.0:9000 \
    LOG_FORMAT=json \
    RUST_LOG=info

# Numeric user, so Kubernetes' runAsNonRoot can verify it without a runAsUser.
USER 10001:10001
WORKDIR /tmp
EXPOSE 9000

# Services stop on SIGTERM (finish or hand back in-flight messages); tini passes it on.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/entrypoint"]
CMD ["help"]
