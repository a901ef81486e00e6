# Shipyard: `make up` runs it locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test test-unit test-integration lint typecheck protos bench clean lock

# Every package comes from requirements.lock (exact versions), so a fresh clone installs the same
# set on any day; `make lock` re-resolves it on purpose.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$$(sed -n 's/^# pip==//p' requirements.lock)"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

## up: install, then run Shipyard locally until Ctrl-C (data in ./.shipyard)
up: $(STAMP)
	@# bubblewrap isolates runs; as root with apt, install it (else `shipyard up` says what is missing)
	@if ! command -v bwrap >/dev/null && [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing bubblewrap (Debian package), which isolates runs"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    bubblewrap >/dev/null || echo "could not install bubblewrap"; fi
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

## lock: re-resolve every Python package into requirements.lock (then make protos and make test)
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

## bench-serving: a served scikit-learn model: requests/s and p50/p99 directly and via the gateway, beside MLServer
.PHONY: bench-serving
bench-serving: $(STAMP)
	$(BIN)/python -m bench.serving $(ARGS)

## bench-console: first render of the runs list and a run's page with 10,000 runs x 1,000 metric points, in Chromium
.PHONY: bench-console
bench-console: $(STAMP)
	bash tools/install-test-deps.sh
	$(BIN)/python -m bench.console $(ARGS)

## bench-lineage: lineage-svc over 100,000 runs / 300,000 versions: upstream query, ingest beside raw consume, rebuild
.PHONY: bench-lineage
bench-lineage: $(STAMP)
	$(BIN)/python -m bench.lineage $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
