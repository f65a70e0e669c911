# syntax=docker/dockerfile:1
#
# points-app image: the server (`points-app`, the default command) and the WeChat stand-in
# (`sandbox`). Build: docker build -t points-app:latest .
#
# Stages: console (Node: the admin console's vite build) -> chef (toolchain + cargo-chef) ->
# planner (dependency recipe from Cargo.toml/lock) -> builder (dependencies compiled in their
# own layer, reused until Cargo.toml or Cargo.lock change; then the crate, whose build.rs
# embeds the console built in the first stage) -> runtime (Debian slim, non-root, no
# toolchain). The image serves the console at /admin/ from the binary.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG NODE_VERSION=20.19

FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS console
WORKDIR /admin
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_fund=false npm_config_audit=false
# The install layer is reused until the lock file changes.
COPY admin/package.json admin/package-lock.json ./
RUN npm ci --no-progress
COPY admin/ ./
RUN npx vite build

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
# cmake: aws-lc-sys (rustls' crypto provider) may build its C part with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/* \
    && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The dependency layer: only the recipe is an input, so source edits do not rebuild it.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# No npm in this stage: build.rs embeds the console the node stage built (admin/dist).
COPY --from=console /admin/dist admin/dist
RUN cargo build --release --locked --bin points-app --bin sandbox \
    && install -D -m 0755 target/release/points-app /out/points-app \
    && install -D -m 0755 target/release/sandbox /out/sandbox

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: TLS to WeChat (api.mch.weixin.qq.com, api.weixin.qq.com).
# curl: the HEALTHCHECK below. tzdata: CST day boundaries in reports use Asia/Shanghai.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 points \
    && useradd --system --uid 10001 --gid points --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin points \
    && mkdir -p /app/data /app/config \
    && chown points:points /app/data
WORKDIR /app
COPY --from=builder /out/points-app /out/sandbox /usr/local/bin/
# Migrations are embedded in the binary and applied at start-up under a database lock.
ENV APP_HOST=0.0.0.0 \
    APP_PORT=8080 \
    APP_DATA_DIR=/app/data \
    APP_LOG_FORMAT=json
# /app/data: the embedded SQLite file and sandbox keys when no database is configured;
# unused with MySQL. Mount a volume (or an emptyDir with a read-only root filesystem).
VOLUME ["/app/data"]
USER 10001:10001
EXPOSE 8080
# Liveness only (/healthz): a database outage must not make Docker restart the container.
# The sandbox container overrides this check with its own port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS --max-time 2 "http://127.0.0.1:${APP_PORT}/healthz" > /dev/null || exit 1
# SIGTERM (docker stop, Kubernetes) starts the server's graceful drain (30 s by default).
STOPSIGNAL SIGTERM
CMD ["points-app"]
