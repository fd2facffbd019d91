# syntax=docker/dockerfile:1
# Build with the official Rust image, run on distroless (glibc, CA certificates, non-root user).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The allocator settings the binary is built with (see .cargo/config.toml).
COPY .cargo ./.cargo
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin udts-exporter

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="udts-exporter" \
      org.opencontainers.image.description="Prometheus exporter for UCloud UDTS tasks" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/release/udts-exporter /usr/local/bin/udts-exporter
USER 65532:65532
EXPOSE 9741
# Mount the config at /etc/udts-exporter/config.toml and the key file wherever
# api.private_key_file points (e.g. /run/secrets/udts_private_key), or pass UDTS_API__* variables.
ENTRYPOINT ["/usr/local/bin/udts-exporter"]
CMD ["--config", "/etc/udts-exporter/config.toml"]
