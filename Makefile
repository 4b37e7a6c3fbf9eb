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
# Node 22, the official MCP conformance suites and MicroPython's 32-bit WebAssembly port, pinned in
# conformance/package*.json (npm installs Node itself as the package `node`; the machine's node may be
# older). host_tools/official_suite.py runs the suites from here, tests/host/test_heap_allowance.py the port.
NODE_DIR := $(VENV)/node
NODE_STAMP := $(NODE_DIR)/.installed-$(shell cat conformance/package.json conformance/package-lock.json | sha1sum | cut -c1-12)

.PHONY: conformance help emulate flash deploy provision discover gateway bench soak test lint format boards conformance-tools clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'
	@echo "  Variables: BOARD=$(BOARD) (see boards/), HTTP_PORT=<port> for emulate, NO_TOKEN=1"
	@echo "  LINE_NUMBERS=1 (emulate, flash, deploy): tracebacks with line numbers, at ~5 KB of flash and ~2 KB of heap"
	@echo "  Gateway: BROKER=host[:port] (the MQTT broker), GATEWAY_PORT=8080"
	@echo "  Real boards: PORT=/dev/ttyUSB0 (default: the one found), FIRMWARE=image.bin, SSID=network (password asked)"

$(STAMP): requirements.txt pyproject.toml
	@echo "==> Creating $(VENV) and installing pinned dependencies"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -rf $(VENV)/mpy-typings
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --target $(VENV)/mpy-typings $(MPY_STUBS)
	@rm -f $(VENV)/.installed-*
	@touch $@

$(NODE_STAMP): conformance/package.json conformance/package-lock.json
	@echo "==> Installing Node 22, the MCP conformance suites and the WebAssembly MicroPython into $(NODE_DIR)"
	@mkdir -p $(NODE_DIR)
	@cp conformance/package.json conformance/package-lock.json $(NODE_DIR)/
	@cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@rm -f $(NODE_DIR)/.installed-*
	@touch $@

conformance-tools: $(NODE_STAMP)  ## Install Node 22, the pinned MCP conformance suites and WebAssembly MicroPython (once)

emulate: $(STAMP)  ## Run an emulated board serving MCP on localhost (BOARD=esp32s3)
	@$(BIN)/boardmcp emulate --board $(BOARD) $(if $(HTTP_PORT),--port $(HTTP_PORT)) $(if $(NO_TOKEN),--no-token) $(if $(LINE_NUMBERS),--line-numbers)

flash: $(STAMP)  ## Put MicroPython + boardmcp on a board: BOARD=esp32s3 PORT=/dev/ttyUSB0 [FIRMWARE=path] [SSID=name]
	@$(BIN)/boardmcp flash --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(FIRMWARE),--firmware $(FIRMWARE)) $(if $(SSID),--ssid "$(SSID)") $(if $(LINE_NUMBERS),--line-numbers)

deploy: $(STAMP)  ## Copy the firmware to a board running MicroPython (no erase): BOARD= PORT=
	@$(BIN)/boardmcp deploy --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(LINE_NUMBERS),--line-numbers)

provision: $(STAMP)  ## Give a board Wi-Fi and a new token over serial: SSID=name [PORT=] (password asked)
	@$(BIN)/boardmcp provision --board $(BOARD) $(if $(PORT),--port $(PORT)) --ssid "$(SSID)"

discover: $(STAMP)  ## List the boards announcing MCP (_mcp._tcp) on the LAN
	@$(BIN)/boardmcp discover
gateway: $(STAMP)  ## One MCP endpoint for every board on an MQTT broker: BROKER=host[:port] [GATEWAY_PORT=8080]
	@$(BIN)/boardmcp gateway --broker "$(BROKER)" $(if $(GATEWAY_PORT),--port $(GATEWAY_PORT))

bench: $(STAMP)  ## Benchmark the firmware beside FastMCP; writes docs/BENCHMARKS.md (QUICK=1: fewer requests)
	@command -v valgrind >/dev/null || echo "bench: valgrind not found, so no instruction count (Debian: apt-get install valgrind)" >&2
	@$(BIN)/boardmcp bench --board $(BOARD) $(if $(QUICK),--quick)

soak: $(STAMP)  ## 20,000 mixed requests (HTTP, WebSocket, serial) at the esp32 heap; writes docs/SOAK.md
	@$(BIN)/boardmcp bench --soak --board $(if $(filter command line,$(origin BOARD)),$(BOARD),esp32)

conformance: $(STAMP)  ## Check a board: TARGET=emulated|http://HOST[:PORT]|serial:/dev/tty.. [BOARD=] [TOKEN=] [DESTRUCTIVE=1] [JUNIT=path]
	@$(BIN)/boardmcp test --target $(or $(TARGET),emulated) $(if $(filter command line,$(origin BOARD)),--board $(BOARD)) $(if $(TOKEN),--token $(TOKEN)) $(if $(DESTRUCTIVE),--destructive) $(if $(JUNIT),--junit $(JUNIT))

boards: $(STAMP)  ## List the board profiles
	@$(BIN)/boardmcp boards

lint: $(STAMP)  ## ruff over all Python; pyright over firmware/ against the esp32 stubs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd firmware && ../$(BIN)/pyright

format: $(STAMP)  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint conformance-tools  ## Lint, then the whole test suite (with the official conformance suites)
	$(BIN)/python -m pytest

clean:  ## Remove build output and the venv
	rm -rf build $(VENV) .pytest_cache .ruff_cache
