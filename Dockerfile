# syntax=docker/dockerfile:1
# One image for every AqStream process: `aqstream migrate | api | relay | worker | dashboards`.
# Build: docker build -t aqstream:local .        Run: docker run --env-file ... aqstream:local

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: resolve the locked environment into /app/.venv ------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself. It stays an editable install rooted at /app on purpose: migrations
# are read from /app/sql (core.settings.PROJECT_ROOT), not from site-packages.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# --- runtime: no uv, no build cache, non-root ------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="aqstream" \
      org.opencontainers.image.description="AqStream API, outbox relay, stream worker, dashboards" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 aqstream \
 && useradd --system --uid 10001 --gid aqstream --create-home --home-dir /home/aqstream \
        --shell /usr/sbin/nologin aqstream

WORKDIR /app
# Code stays owned by root: the service user can read it but not change it.
COPY --from=build /app /app

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AQSTREAM_ENVIRONMENT=production \
    AQSTREAM_API_HOST=0.0.0.0 \
    AQSTREAM_STATE_DIR=/tmp/aqstream

USER aqstream:aqstream
EXPOSE 8000 8050

# Health checks live in docker-compose.yml (only the API serves /health on a fixed port).
CMD ["aqstream", "api"]
