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
#
# Targets:
#   runtime (default)  compiles the workspace in the `builder` stage, then packages it
#   prebuilt           packages a binary built outside, for a machine without registries (CI):
#                        podman build --target prebuilt --build-arg BASE_IMAGE=localhost/debian-base:bookworm \
#                          -f Dockerfile <dir with bin/connector and deploy/docker/{entrypoint.sh,binaries}>
#                      (scripts/image-test builds it that way from `cargo build --release -p connector`)
#
# The image holds one binary, `connector` (crates/connector): every program of the workspace,
# picked by the name it is called by; each program in deploy/docker/binaries is a link to it.
# BASE_IMAGE: the runtime base; any Debian of the builder's release (glibc must match). When it
# already has ca-certificates and tini (an mmdebstrap base does), nothing is installed.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm
ARG BASE_IMAGE=debian:${DEBIAN_RELEASE}-slim

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
    cargo build --release --locked -p connector; \
    mkdir -p /out; \
    install -s -m 0755 target/release/connector /out/; \
    ls -l /out

########################################################################################
# base: small Debian base (same release as the builder, so glibc matches), non-root user
########################################################################################
FROM ${BASE_IMAGE} AS base

# ca-certificates: TLS to Amazon, LWA, PostgreSQL and RabbitMQ; tini: PID 1 that forwards SIGTERM
# to the program and reaps zombies (a Rust binary as PID 1 would not get default signal actions).
# The user is written into /etc/passwd directly: a minimal base has no useradd.
RUN set -eux; \
    if [ ! -x /usr/bin/tini ] || [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini; \
    fi; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /usr/share/doc/* /usr/share/man/* /usr/share/info/*; \
    echo 'connector:x:10001:' >> /etc/group; \
    echo 'connector:x:10001:10001:connector:/nonexistent:/usr/sbin/nologin' >> /etc/passwd

COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/entrypoint
COPY deploy/docker/binaries /usr/local/share/connector/programs
RUN set -eux; \
    for p in $(grep -v '^#' /usr/local/share/connector/programs); do ln -s connector "/usr/local/bin/$p"; done

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

########################################################################################
# prebuilt: the binary from the build context's bin/ (built outside, e.g. by CI)
########################################################################################
FROM base AS prebuilt
COPY --chmod=0755 bin/connector /usr/local/bin/connector

########################################################################################
# runtime (default): the binary the builder stage compiled
########################################################################################
FROM base AS runtime
COPY --from=builder /out/ /usr/local/bin/
