# pvewatch as a container: `docker build -t pvewatch:local .`, then see deploy/compose.yaml
# (a try-out stack with a simulated cluster) and deploy/compose.real.yaml (a real cluster).
# `make image-test` builds it and checks what a user relies on (tests/image/).

# The base of both stages. `make image-test` passes a stand-in (a test device, never
# published) only where this one cannot be pulled.
ARG BASE=python:3.11-slim-bookworm

# Stage 1: a virtualenv holding pvewatch and its dependencies at the versions pinned in
# deploy/docker/constraints.txt (`make constraints` renews them). Only the virtualenv goes
# on: no wheel, no pip cache and no source reaches the runtime image.
FROM ${BASE} AS build
# The version the label says; the build fails when it is not the package's.
ARG VERSION=0.1.0
WORKDIR /src
# The pinned dependencies first, in a layer of their own: a change to pvewatch's code
# rebuilds only the step below.
COPY deploy/docker/constraints.txt ./
RUN python -m venv /opt/pvewatch \
    && /opt/pvewatch/bin/pip install --no-cache-dir --disable-pip-version-check \
        --requirement constraints.txt
COPY pyproject.toml README.md ./
COPY pvewatch ./pvewatch
# With the postgres extra (psycopg), so that replicas can share a PostgreSQL store.
# PIP_CONSTRAINT also pins setuptools in pip's isolated build of pvewatch itself; pip and
# setuptools then leave the virtualenv (25 MB that pvewatch never runs).
RUN PIP_CONSTRAINT=/src/constraints.txt /opt/pvewatch/bin/pip install \
        --no-cache-dir --disable-pip-version-check ".[postgres]" \
    && test "$(/opt/pvewatch/bin/pvewatch --version)" = "pvewatch ${VERSION}" \
    && /opt/pvewatch/bin/pip uninstall --yes --quiet pip setuptools

# Stage 2: the runtime, with no compiler and no build files.
FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="pvewatch" \
      org.opencontainers.image.description="Watches Proxmox VE clusters and reports every change to webhooks, logs and Prometheus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="https://github.com/pvewatch/pvewatch/blob/main/docs/install.md" \
      org.opencontainers.image.source="https://github.com/pvewatch/pvewatch"

# User and group 10001 (not system ids: 10001 is above SYS_UID_MAX), so that files in
# the volume and bind mounts are 10001:10001 with a name in /etc/group.
RUN groupadd --gid 10001 pvewatch \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home \
        --home-dir /var/lib/pvewatch --shell /usr/sbin/nologin pvewatch \
    && mkdir -p /var/lib/pvewatch /etc/pvewatch \
    && chown 10001:10001 /var/lib/pvewatch \
    && chmod 0700 /var/lib/pvewatch

COPY --from=build /opt/pvewatch /opt/pvewatch

# The default config reads everything from the environment (see the file); mount your own
# over it, or point PVEWATCH_CONFIG elsewhere.
COPY deploy/docker/watch.yaml /etc/pvewatch/watch.yaml
# The listener binds loopback unless told otherwise: to publish /metrics, set
# PVEWATCH_LISTEN=0.0.0.0:9886 with basic auth and TLS in a config of yours, or publish the
# port on the host's 127.0.0.1 only (docs/install.md, "Docker").
ENV PATH=/opt/pvewatch/bin:$PATH \
    PVEWATCH_CONFIG=/etc/pvewatch/watch.yaml \
    PVEWATCH_LISTEN=127.0.0.1:9886 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
WORKDIR /var/lib/pvewatch
# The state store (snapshots, events, the outbox): keep it across container restarts.
VOLUME ["/var/lib/pvewatch"]
# /metrics, /healthz, /readyz
EXPOSE 9886
# pvewatch finishes the poll in flight, flushes deliveries and exits 0 on SIGTERM, also as
# PID 1 (it installs its own handler); give it `docker stop -t 30`.
STOPSIGNAL SIGTERM
# GET /healthz the way the config says: its listen address, TLS and basic auth
# (http.health_check); one line in `docker inspect`, exit 0 or 1.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["pvewatch", "health"]
ENTRYPOINT ["pvewatch"]
CMD ["run"]
