# syntax=docker/dockerfile:1
# Build stage: turn the project into a wheel, so the runtime image carries no build tools.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/monitor-*.whl

# Runtime stage: the wheels, the default config and watchlists, a non-root user.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/app/config.toml
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin monitor
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY config.toml ./config.toml
COPY watchlists ./watchlists
RUN mkdir -p state && chown 10001:10001 state
USER 10001:10001
VOLUME ["/app/state"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 CMD ["monitor", "health"]
# Exec form: monitor is PID 1's only child under `init: true` (or PID 1 itself) and gets SIGTERM.
ENTRYPOINT ["monitor"]
CMD ["run"]
