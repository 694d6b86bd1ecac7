# Gather: `make run` starts everything on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# Gather's own packages, as requirements.txt lists them (-e ./shared, -e ./services/events, ...).
PACKAGES := $(shell sed -n 's|^-e \./||p' requirements.txt)

.PHONY: install run test bench lint lock screenshots

# Third-party code is installed only as the lock pins it, each file checked against its hash. Gather's own
# packages follow, editable (an editable install has no file to hash) and without dependencies, built with
# the locked setuptools: nothing is resolved or downloaded beyond the lock.
$(STAMP): $(LOCK) requirements.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@echo "==> creating $(VENV) and installing Gather (first run takes a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	PYTHONWARNINGS="ignore:Editable installation" \
		$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation $(addprefix -e ./,$(PACKAGES))
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python deploy/run.py

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# HTTP load comes from wrk (C), installed here when missing and this machine can (Debian, as root); without it
# the benchmarks say so and load the servers from Python threads.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& echo "==> installing wrk" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| echo "==> wrk not found: the HTTP load comes from Python threads"
	$(BIN)/python -m bench

# A PNG of each attendee page state in docs/screenshots/ (the README's gallery), taken in Chromium by the test
# that checks each state with axe: the whole platform runs, about a minute. Without Chromium it fails.
screenshots: install
	rm -f docs/screenshots/*.png
	GATHER_REQUIRE_SERVICES=1 GATHER_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q \
		services/pages/tests/test_pages_browser.py::test_every_page_state_is_accessible

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pip-audit --disable-pip --require-hashes --progress-spinner off -r $(LOCK)

# After editing requirements.txt or a package's pyproject.toml: pin every third-party package (and what it
# needs) with its hashes. Existing pins are kept unless LOCK_ARGS says otherwise, e.g.
# `make lock LOCK_ARGS="--upgrade-package requests"` or `make lock LOCK_ARGS=--upgrade`.
lock: install
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" $(foreach p,$(PACKAGES),--no-emit-package gather-$(notdir $(p))) \
		$(LOCK_ARGS) --output-file $(LOCK) requirements.txt
	$(MAKE) install
