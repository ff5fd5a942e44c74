# pvewatch as a container: `docker build -t pvewatch .`, then see deploy/compose.yaml
# (a try-out stack with a simulated cluster) and deploy/compose.real.yaml (a real cluster).

# Stage 1: build the wheels of pvewatch and of everything it depends on.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pvewatch ./pvewatch
# With the postgres extra (psycopg), so that replicas can share a PostgreSQL store.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

# Stage 2: the runtime, with no compiler and no build files.
FROM python:3.11-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="pvewatch" \
      org.opencontainers.image.description="Watches Proxmox VE clusters and reports every change to webhooks, logs and Prometheus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="https://github.com/pvewatch/pvewatch/blob/main/docs/install.md" \
      org.opencontainers.image.source="https://github.com/pvewatch/pvewatch"

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pvewatch \
        --shell /usr/sbin/nologin pvewatch \
    && mkdir -p /var/lib/pvewatch /etc/pvewatch \
    && chown pvewatch:pvewatch /var/lib/pvewatch \
    && chmod 0700 /var/lib/pvewatch

COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index /tmp/wheels/*.whl && rm -rf /tmp/wheels

# The default config reads everything from the environment (see the file); mount your own
# over it, or point PVEWATCH_CONFIG elsewhere.
COPY deploy/docker/watch.yaml /etc/pvewatch/watch.yaml
ENV PVEWATCH_CONFIG=/etc/pvewatch/watch.yaml \
    PVEWATCH_LISTEN=0.0.0.0:9886 \
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
# /healthz without curl: the port is the one of $PVEWATCH_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('PVEWATCH_LISTEN', '').rpartition(':')[2] or '9886'; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["pvewatch"]
CMD ["run"]
