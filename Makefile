# daneel's two everyday commands: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080

.PHONY: run test lint docs-check bench install clean crd manifests

$(BIN)/daneel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The deep-learning runtimes' frameworks (the `dl` extra: torch, tensorflow-cpu, catboost, transformers), which
# `make test` installs beside `dev`: about 3.3 GB and a minute and a half with pip. torch goes first, as TORCH
# names it, so that `dl` finds it and takes no other: 2.13.0 is the CPU build this kind of machine keeps on disk
# (PyPI's default Linux wheels are CUDA builds of several GB). DL=0 leaves them out; their tests then skip.
TORCH ?= torch==2.13.0
DL ?= 1

$(VENV)/.dl: pyproject.toml | $(BIN)/daneel
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	$(BIN)/python -m pip install --quiet -e '.[dev,dl]'
	touch $@

install: $(BIN)/daneel

examples/iris/model.joblib: examples/iris/train.py | $(BIN)/daneel
	$(BIN)/python examples/iris/train.py

run: $(BIN)/daneel examples/iris/model.joblib
	$(BIN)/daneel serve examples/iris --http-port $(PORT)

test: $(BIN)/daneel $(if $(filter-out 0,$(DL)),$(VENV)/.dl)
	$(BIN)/python -m pytest -q

lint: $(BIN)/daneel
	$(BIN)/ruff check src tests examples scripts bench
	$(BIN)/ruff format --check src tests examples scripts bench
	$(BIN)/mypy
	$(BIN)/mypy scripts/check_docs.py
	cd bench && ../$(BIN)/mypy --strict *.py
	$(BIN)/lint-imports

# Runs every console example of README.md and docs/**/*.md against real servers (see docs/contributing.md).
docs-check: $(BIN)/daneel examples/iris/model.joblib
	$(BIN)/python scripts/check_docs.py README.md $(shell find docs -name '*.md' | sort)

# daneel against MLServer and a raw ASGI baseline under wrk (docs/performance.md); installs wrk and MLServer itself.
# QUICK=1 for a run of under 3 minutes; BENCH_ARGS="--servers daneel,raw-asgi ..." passes options to bench/run.py.
bench: $(BIN)/daneel
	$(BIN)/python bench/run.py $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS)

# The generated Kubernetes files, after a change to the deployment schema or the renderer (tests fail while stale).
crd: $(BIN)/daneel
	$(BIN)/daneel schema --crd > deploy/crd/modeldeployments.daneel.dev.yaml
	cp deploy/crd/modeldeployments.daneel.dev.yaml deploy/helm/daneel-operator/crds/
	cp deploy/crd/kopf-peering.yaml deploy/helm/daneel-operator/crds/

manifests: $(BIN)/daneel
	$(BIN)/daneel manifest examples/deployments/canary.yaml -o examples/manifests/canary.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache examples/iris/model.joblib bench/.work bench/.venv-mlserver bench/.venv-daneel bench/.venv-daneel-torch
