# boardmcp: `make emulate` runs an emulated board serving MCP; `make test` runs every check.
# The first target that needs tools creates .venv and installs the pinned requirements.

BOARD ?= esp32s3
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
# Firmware is type-checked against the esp32 port's API, not CPython's (see firmware/pyrightconfig.json).
MPY_STUBS := micropython-esp32-stubs==1.29.0.post1 micropython-stdlib-stubs==1.29.0.post2
export PYRIGHT_PYTHON_CACHE_DIR := $(abspath $(VENV))/pyright-cache

.PHONY: help emulate test lint format boards bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  Variables: BOARD=$(BOARD) (see boards/), HTTP_PORT=<port> for emulate, NO_TOKEN=1"

$(STAMP): requirements.txt pyproject.toml
	@echo "==> Creating $(VENV) and installing pinned dependencies"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -rf $(VENV)/mpy-typings
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --target $(VENV)/mpy-typings $(MPY_STUBS)
	@rm -f $(VENV)/.installed-*
	@touch $@

emulate: $(STAMP)  ## Run an emulated board serving MCP on localhost (BOARD=esp32s3)
	@$(BIN)/boardmcp emulate --board $(BOARD) $(if $(HTTP_PORT),--port $(HTTP_PORT)) $(if $(NO_TOKEN),--no-token)

bench: $(STAMP)  ## Benchmark the firmware beside FastMCP; writes docs/BENCHMARKS.md (QUICK=1: fewer requests)
	@command -v valgrind >/dev/null || echo "bench: valgrind not found, so no instruction count (Debian: apt-get install valgrind)" >&2
	@$(BIN)/boardmcp bench --board $(BOARD) $(if $(QUICK),--quick)

boards: $(STAMP)  ## List the board profiles
	@$(BIN)/boardmcp boards

lint: $(STAMP)  ## ruff over all Python; pyright over firmware/ against the esp32 stubs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd firmware && ../$(BIN)/pyright

format: $(STAMP)  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint  ## Lint, then the whole test suite
	$(BIN)/python -m pytest

clean:  ## Remove build output and the venv
	rm -rf build $(VENV) .pytest_cache .ruff_cache
