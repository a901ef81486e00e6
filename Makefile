# Shipyard: `make up` runs it locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: up test test-unit test-integration lint typecheck protos bench clean lock

# Every package comes from a lock (exact versions), so a fresh clone installs the same set on any
# day; `make lock` re-resolves both on purpose. requirements.lock holds what the tests need too,
# requirements-run.lock only what running needs (a subset of it, same versions): make up installs that.
$(RUN_STAMP): pyproject.toml requirements-run.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$$(sed -n 's/^# pip==//p' requirements-run.lock)"
	@# No bytecode for all of SciPy & co. up front (half the install): Python writes it for what runs import.
	$(BIN)/python -m pip install --quiet --no-compile -r requirements-run.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$$(sed -n 's/^# pip==//p' requirements.lock)"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

## up: install what running needs, then run Shipyard locally until Ctrl-C (data in ./.shipyard)
up: $(RUN_STAMP)
	@bash tools/install-bubblewrap.sh
	$(BIN)/shipyard up $(ARGS)

## test: install what the tests need (packages, Chromium), then run the whole suite
test: $(STAMP)
	bash tools/install-test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/mypy src services/*/shipyard_* bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest services tests/kit tests/contracts $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy src services/*/shipyard_* bench

## lock: re-resolve every Python package into requirements.lock and requirements-run.lock (then make protos and make test)
lock:
	PYTHON=$(PYTHON) bash tools/lock.sh

## protos: regenerate src/shipyard/contracts from proto/
protos: $(STAMP)
	$(BIN)/python tools/gen_protos.py

## bench: whole-path event rate and gateway call rate beside raw NATS and gRPC references
bench: $(STAMP)
	$(BIN)/python -m bench

## bench-repos: dataset versions (1 GiB, 2,000 files) beside dvc add and sha256 + copy; local and S3 blob stores
.PHONY: bench-repos
bench-repos: $(STAMP)
	$(BIN)/python -m bench.repos $(ARGS)

## bench-runs: local executor: submit → process started latency and runs per minute, beside subprocess
.PHONY: bench-runs
bench-runs: $(STAMP)
	$(BIN)/python -m bench.runs $(ARGS)

## bench-environments: a run's environment (pandas + scikit-learn + matplotlib) built with uv, cold and warm, beside venv + pip
.PHONY: bench-environments
bench-environments: $(STAMP)
	bash tools/install-test-deps.sh
	$(BIN)/python -m bench.environments $(ARGS)

## bench-serving: a served scikit-learn model: requests/s and p50/p99 directly and via the gateway, beside MLServer
.PHONY: bench-serving
bench-serving: $(STAMP)
	$(BIN)/python -m bench.serving $(ARGS)

## bench-cli: `shipyard --help` and `shipyard project list` beside `python -c pass` (goal: < 0.3 s above it)
.PHONY: bench-cli
bench-cli: $(STAMP)
	$(BIN)/python -m bench.cli $(ARGS)

## bench-console: first render of the runs list and a run's page with 10,000 runs x 1,000 metric points, in Chromium
.PHONY: bench-console
bench-console: $(STAMP)
	bash tools/install-test-deps.sh
	$(BIN)/python -m bench.console $(ARGS)

## bench-lineage: lineage-svc over 100,000 runs / 300,000 versions: upstream query, ingest beside raw consume, rebuild
.PHONY: bench-lineage
bench-lineage: $(STAMP)
	$(BIN)/python -m bench.lineage $(ARGS)

## bench-mlflow: MLflow client against Shipyard's /mlflow and a real `mlflow server` (SQLite): log_batch, search_runs
.PHONY: bench-mlflow
bench-mlflow: $(STAMP)
	$(BIN)/python -m bench.mlflow $(ARGS)

## bench-slurm: runs on a loopback Slurm: submit → job running beside bare sbatch (goal ≤ 1.5x), 200 runs at once
.PHONY: bench-slurm
bench-slurm: $(STAMP)
	bash tools/install-test-deps.sh
	$(BIN)/python -m bench.slurm $(ARGS)

## bench-studies: a study of 50 one-second trials, 5 at a time, beside Optuna in a plain loop (goal ≤ 1.3x)
.PHONY: bench-studies
bench-studies: $(STAMP)
	$(BIN)/python -m bench.studies $(ARGS)

## bench-study-page: a study page of 3,000 trials and its refreshes, beside the same read as before (every trial each time)
.PHONY: bench-study-page
bench-study-page: $(STAMP)
	$(BIN)/python -m bench.study_page $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
