# syntax=docker/dockerfile:1
# The grid-gateway container image (the image deploy/gateway.yaml runs).
#   docker build -t grid-gateway .
# Not built in CI here: the CI machine has no Docker engine (see deploy/README.md).
#
# builder: the official Rust image plus the wasm32-wasip2 target. host/build.rs builds the
# reference policies for that target with a nested cargo and embeds them in the binary, so
# the whole workspace (wit/, guest-sdk/, policies/, contracts/out) is the build context.
# runtime: Debian slim with CA certificates (the chain RPC and manifest URLs are https),
# the binary, a non-root user. Slim rather than distroless: deploy/gateway.yaml's wallet-key
# init container runs `install` from this image (coreutils).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory (policies included, under
# target/guests) between builds; the binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked -p grid-gateway --bin grid-gateway \
 && install -D -m 0755 target/release/grid-gateway /out/grid-gateway

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# UID/GID 65532, as deploy/gateway.yaml's securityContext says.
RUN groupadd --system --gid 65532 grid-gateway \
 && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/grid-gateway \
      --no-create-home --shell /usr/sbin/nologin grid-gateway \
 && install -d -o 65532 -g 65532 -m 0700 /var/lib/grid-gateway
COPY --from=builder /out/grid-gateway /usr/local/bin/grid-gateway
USER 65532:65532
WORKDIR /var/lib/grid-gateway
# The store lives in data_dir: mount a volume there (deploy/gateway.yaml: a PVC).
VOLUME ["/var/lib/grid-gateway"]
EXPOSE 8080
ENTRYPOINT ["grid-gateway"]
# The config file is mounted (deploy/gateway.yaml: a ConfigMap); see
# deploy/gateway.example.toml for every key. Set listen = "0.0.0.0:8080" in it.
CMD ["serve", "--config", "/etc/grid-gateway/gateway.toml"]
