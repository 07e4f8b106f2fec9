# Steno: `make run` starts the all-in-one stack, `make test` runs every check.
# Both bootstrap what they need (uv, the Python environment, buf) and are quick the second time.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
TOOLS := .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
BUF := node_modules/.bin/buf
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint protos sync fixtures bench bench-quick clean

run: $(STAMP)
	$(UV) run --no-sync steno dev

test: $(STAMP) $(BUF) lint
	$(UV) run --no-sync pytest

lint: $(STAMP) $(BUF)
	$(BUF) lint
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

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --all-extras
	touch $@

# buf is pinned exactly in package.json, and its platform binaries exactly by buf itself.
$(BUF): package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .steno .pytest_cache .mypy_cache .ruff_cache
