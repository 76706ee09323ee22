# syntax=docker/dockerfile:1
# Build stage: turn the project into wheels, so the runtime image carries no build tools.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/monitor-*.whl

# Runtime stage: tini, the wheels (templates ship inside the monitor wheel as package data), the
# default config and watchlists, a non-root user.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/app/config.toml
# tini runs as PID 1 and passes SIGTERM on to monitor, however the container is started (docker
# run without --init, Kubernetes, compose): as PID 1 itself, Python would drop a SIGTERM that
# arrives before its handler is installed, and the stop would wait for SIGKILL. Not pinned: the
# Debian suite of the base image ships tini's security fixes, and a pinned version disappears
# from the archive when it is replaced.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin monitor
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY config.toml ./config.toml
COPY watchlists ./watchlists
RUN mkdir -p state && chown 10001:10001 state
USER 10001:10001
# The database (and its -wal, -shm and .lock files); config.toml and watchlists/ are baked-in
# defaults, which docker-compose.yml replaces with read-only bind mounts.
VOLUME ["/app/state"]
# The timeout leaves room for SQLite's 10 s busy wait: the check writes beside the daemon.
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 CMD ["monitor", "health"]
# monitor stops cleanly on SIGTERM: running work gets 8 s, then it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "monitor"]
CMD ["run"]
