# Two commands a user needs: `make demo` and `make test`. Everything else is set up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WHEELS := $(wildcard /opt/wheels)
PIPFLAGS := -q $(if $(WHEELS),--find-links $(WHEELS),)
PYTEST_ARGS ?=

.PHONY: setup models test test-all test-rtl demo lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIPFLAGS) torch==2.13.0
	$(BIN)/pip install $(PIPFLAGS) -e '.[dev]'
	@if ! command -v iverilog >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq iverilog) >/dev/null 2>&1 \
	      || echo "warning: could not install iverilog with apt; Icarus tests will be skipped"; \
	  else echo "note: iverilog missing and not root; Icarus tests will be skipped"; fi; \
	fi
	@if ! command -v openFPGALoader >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq openfpgaloader || (apt-get update -qq \
	      && apt-get install -y -qq openfpgaloader)) >/dev/null 2>&1 \
	      || echo "note: could not install openfpgaloader with apt; program boards yourself"; \
	  else echo "note: openFPGALoader missing and not root: \`codesign board --port\` needs --no-program"; fi; \
	fi
	@touch $@

# CI subset: everything but the tests marked slow.
test: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Train the zoo models into the checkpoint cache (skips the cached ones): the whole-network
# regressions run on trained models and skip a model that is not in the cache.
models: setup
	$(BIN)/python -c 'from models import zoo; [zoo.load(m) for m in ("digits", "eventdigits", "eye")]'

# Every test, including the long RTL regressions.
test-all: models
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-rtl: models
	$(BIN)/python -m pytest -m rtl $(PYTEST_ARGS)

demo: setup
	$(BIN)/codesign demo

# Style (ruff) and the package layering and acyclicity contracts (import-linter, pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf build runs .pytest_cache
