# Steno: `make run` starts the all-in-one stack, `make test` runs every check.
# Both bootstrap what they need (uv, the Python environment with buf) and are quick the second time.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
TOOLS := .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
# buf comes from PyPI (buf-bin, in the dev dependency group), pinned by uv.lock.
BUF := $(VENV)/bin/buf
# What `buf breaking` compares the protos with: main's. On main itself that is the same
# commit's protos, which pass. Without a local main branch (a CI checkout), override it:
# make lint BUF_AGAINST='.git#ref=origin/main,subdir=protos'.
BUF_AGAINST ?= .git\#branch=main,subdir=protos
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint protos sync fixtures bench bench-quick e2e-containers manifests clean

run: $(STAMP)
	$(UV) run --no-sync steno dev

test: $(STAMP) lint
	$(UV) run --no-sync pytest

lint: $(STAMP)
	$(BUF) lint
	$(BUF) breaking protos --against '$(BUF_AGAINST)'
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy

# The generated steno.v1 code is the steno-contract workspace member's package.
CONTRACT_SRC := libs/contract/src

protos: $(STAMP)
	$(UV) run --no-sync python -m grpc_tools.protoc -Iprotos \
		--python_out=$(CONTRACT_SRC) --pyi_out=$(CONTRACT_SRC) --grpc_python_out=$(CONTRACT_SRC) \
		$$(find protos -name '*.proto' | sort)

sync: $(STAMP)

fixtures:
	tests/fixtures/audio/make_fixtures.sh

# Same-run ratios against baselines (bench/results/latest.json and .md), then the memory
# figures. bench-quick: smaller inputs and fewer rounds, a few minutes.
bench: $(STAMP)
	$(UV) run --no-sync python -m bench
	$(UV) run --no-sync python -m bench.lexicon_rewrite
	$(UV) run --no-sync python -m bench.transcriber_memory

bench-quick: $(STAMP)
	$(UV) run --no-sync python -m bench --quick

# The three images built with ./Dockerfile and the stack run as containers, on a Docker
# engine the tests start themselves (root, and Debian's docker.io and debootstrap, needed).
# STENO_CONTAINER_CACHE (default ~/.cache/steno/containers) keeps the base images and the
# build cache: a second run is quick. The timeout covers a first run's debootstrap and builds.
e2e-containers: $(STAMP)
	$(UV) run --no-sync pytest -m containers --timeout=3600 tests/containers

# Each overlay as kustomize renders it, committed so a review shows what is applied.
manifests: $(STAMP)
	for overlay in dev prod; do \
		$(VENV)/bin/kubectl kustomize deploy/k8s/overlays/$$overlay > deploy/k8s/rendered/$$overlay.yaml; \
	done

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --all-extras
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS) .steno .pytest_cache .mypy_cache .ruff_cache
