# Two commands do everything on a fresh machine:
#   make serve   set up .venv and the model cache if needed, then start the API (embedded defaults)
#   make test    set up, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: serve test models lint typecheck pytest reliability-short bench reliability clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/veil models pull

serve: models
	$(BIN)/veil serve

lint: $(STAMP)
	$(BIN)/ruff check veil tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

# One worker per core, at most 4 (pytest-xdist); each test module runs whole on one worker, as its module
# fixtures and test order expect. Session fixtures (servers, engine) start once per worker that needs them.
# --no-loadscope-reorder keeps the order tests/conftest.py gives: the costliest modules first.
# The reliability short form is a step of its own (below), so that its timed scenarios run alone.
# `$(BIN)/pytest` alone runs everything, that test too, in one process.
pytest: models
	$(BIN)/pytest -n auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder -m "not reliability"

# bench/reliability.py --short (tests/test_reliability.py): the embedded fault and load scenarios, 2-3 minutes
reliability-short: models
	$(BIN)/pytest -m reliability tests/test_reliability.py

test: lint typecheck pytest reliability-short

bench: models
	$(BIN)/python bench/video_throughput.py
	$(BIN)/python bench/plate_latency.py
	$(BIN)/python bench/api_latency.py

# fault and load scenarios on loopback (needs PostgreSQL and RabbitMQ, root for the tmpfs): docs/reliability.md
reliability: models
	$(BIN)/python bench/reliability.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
