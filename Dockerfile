# syntax=docker/dockerfile:1
# Build: docker build -t trusec .
# Run:   docker run -p 8080:8080 -e TRUSEC_ISSUER=http://localhost:8080 trusec

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libpq-dev libssl-dev libxmlsec1-dev libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin trusec

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libpq5 libssl3 libxmlsec1 libxmlsec1-openssl curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/trusec --create-home trusec
COPY --from=build /src/target/release/trusec /usr/local/bin/trusec
USER 10001:10001
WORKDIR /var/lib/trusec
ENV TRUSEC_BIND=0.0.0.0:8080 \
    TRUSEC_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/trusec"]
CMD ["serve"]
