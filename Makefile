# Two commands for a newcomer:  make run ARGS="model=rgnet"   and   make test
# The first use creates .venv and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU machines: this pin takes the CPU wheel. GPU machines: install your CUDA build of torch
# into $(VENV) first (see README), or pass TORCH="torch --index-url <your CUDA index>".
TORCH  ?= torch==2.13.0
# An editable install that puts the project on sys.path, so Hydra finds the vectorized launcher in
# hydra_plugins/ (setuptools' default editable import hook hides it from Hydra's plugin scan).
EDITABLE = --config-settings editable_mode=compat
# Optional extras, comma-separated: make setup EXTRAS=tensorboard
EXTRAS ?=
comma  := ,
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: setup run test test-slow test-all lint format bench clean

# The extras have a stamp of their own per set asked for, so `make setup EXTRAS=mlflow` after
# a first `make` installs them (one stamp for everything said "Nothing to be done").
EXTRAS_STAMP := $(if $(EXTRAS),$(VENV)/.extras-$(subst $(comma),-,$(EXTRAS)))

setup: $(VENV)/.installed $(EXTRAS_STAMP)

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]" $(EDITABLE)
	touch $@

$(VENV)/.extras-%: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" $(EDITABLE)
	touch $@

run: setup
	$(BIN)/python -m runner $(ARGS)

# The suite: lint, types, then every test but the long end-to-end runs (GPU tests skip
# themselves without a GPU), one pytest process per core (pytest-xdist, each file in one of
# them), one thread each: the models are tiny, and threads of several processes fighting over
# the cores made the suite slower. test-slow: the long end-to-end runs (sweeps, faults, DDP, the
# README tour). CI runs both (.ci/run); test-all does too.
TEST_WORKERS ?= auto
PARALLEL := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
test: lint
	$(PARALLEL) -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(PARALLEL) -m slow $(PYTEST_ARGS)

test-all: test test-slow

lint: setup
	$(BIN)/ruff check runner tests bench hydra_plugins
	$(BIN)/ruff format --check runner tests bench hydra_plugins
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format runner tests bench hydra_plugins
	$(BIN)/ruff check --fix runner tests bench hydra_plugins

# Every benchmark, then bench/results/<machine>.md: each target met or missed. QUICK=1: fewer
# repetitions and models (2 min 55 s here, measured with every benchmark), for a
# first look.
QUICK ?=
bench: setup
	$(BIN)/python bench/startup.py $(if $(QUICK),--quick)
	$(BIN)/python bench/small_run.py $(if $(QUICK),--quick)
	$(BIN)/python bench/build_init.py $(if $(QUICK),--quick)
	$(BIN)/python bench/train_throughput.py $(if $(QUICK),--quick)
	$(BIN)/python bench/stats_cost.py $(if $(QUICK),--quick)
	$(BIN)/python bench/checkpoint_io.py $(if $(QUICK),--quick)
	$(BIN)/python bench/compile_mode.py $(if $(QUICK),--quick)
	$(BIN)/python bench/graph_models.py $(if $(QUICK),--quick)
	$(BIN)/python bench/reports.py $(if $(QUICK),--quick)
	$(BIN)/python bench/table_read.py $(if $(QUICK),--quick)
	$(BIN)/python bench/vectorized_sweep.py $(if $(QUICK),--quick)
	$(if $(QUICK),,$(BIN)/python bench/sweep_overhead.py)
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
