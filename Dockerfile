# syntax=docker/dockerfile:1
# Portcullis in a container (README "Containers"): built with the
# dependency and build caches kept between builds (BuildKit cache mounts),
# run as an unprivileged user, healthy when /readyz answers.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directories are cache mounts: a rebuild after a
# source change recompiles Portcullis, not its few hundred dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/portcullis /usr/local/bin/portcullis

FROM debian:bookworm-slim
# curl only for the HEALTHCHECK below. Versions come from the pinned
# bookworm base image's archive, not pinned one by one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portcullis \
    && useradd --system --uid 10001 --gid portcullis --home-dir /var/lib/portcullis --shell /usr/sbin/nologin portcullis \
    && mkdir -p /var/lib/portcullis/data /var/lib/portcullis/keys \
    && chown -R portcullis:portcullis /var/lib/portcullis \
    && chmod 0700 /var/lib/portcullis/data /var/lib/portcullis/keys
COPY --from=build /usr/local/bin/portcullis /usr/local/bin/portcullis
WORKDIR /var/lib/portcullis
ENV PORTCULLIS_LISTEN=0.0.0.0:8080 \
    PORTCULLIS_DATABASE_URL=sqlite:///var/lib/portcullis/data/portcullis.db \
    PORTCULLIS_KEYS_DIR=/var/lib/portcullis/keys
# The SQLite database (unless PORTCULLIS_DATABASE_URL names PostgreSQL) and
# the signing keys outlive the container.
VOLUME ["/var/lib/portcullis/data", "/var/lib/portcullis/keys"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["portcullis"]
CMD ["serve"]
