# conveyor: the two quick-start commands, `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint reset

# what the demo needs (the package); the test tools on top of it (the dev extra)
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

## demo: install, replay 10 weekly batches of the NYC flights demo, predict a sample, write the summary
demo: $(VENV)/.installed
	$(PY) -m conveyor demo --batches 10

## test: install with the test tools and run the whole suite: two workers, then the tests
## that bound wall time or throughput (load, soak, hostile files) alone
test: $(VENV)/.installed-dev
	$(PY) -m pytest -n 2 --dist loadfile -m "not serial"
	$(PY) -m pytest -m serial

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check conveyor tests bench
	$(VENV)/bin/mypy

## reset: delete the demo workspace (raw batches, models, reports) to start the stream over
reset:
	rm -rf workspace
