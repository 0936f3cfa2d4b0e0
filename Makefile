# Developer entry points. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KUBE_BIN_ENV := AUTH0_ROTATOR_KUBE_BIN="$$(hack/kube-bins.sh --print)"

.PHONY: help venv lint kube-bins promtool test unit demo cluster-up cluster-env cluster-down bench-auth0 bench-latency bench-scale bench-burst bench-consumers soak

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## create .venv with the package and dev tools

lint: venv  ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check operator tests benchmarks
	$(VENV)/bin/ruff format --check operator tests benchmarks
	$(VENV)/bin/mypy

kube-bins:  ## build the local Kubernetes binaries (cached outside the repo)
	hack/kube-bins.sh >/dev/null

promtool:  ## build promtool for the alert rule tests (cached outside the repo)
	hack/promtool.sh >/dev/null

unit: venv  ## unit tests only (no control plane)
	$(PY) -m pytest tests/unit

test: lint kube-bins promtool  ## everything CI runs: lint, build, all tests
	$(KUBE_BIN_ENV) $(PY) -m pytest

bench-auth0: venv  ## benchmark: 300 secret changes vs a 10 req/s fake tenant (writes benchmarks/results/)
	$(PY) benchmarks/auth0_client.py

bench-latency: venv kube-bins  ## benchmark: forced-rotation latency vs direct calls and the manual runbook
	$(KUBE_BIN_ENV) $(PY) benchmarks/rotation_latency.py

bench-scale: venv kube-bins  ## benchmark: idle cost and restart at 2,000 and 10,000 resources (writes benchmarks/results/)
	$(KUBE_BIN_ENV) $(PY) benchmarks/scale.py $(BENCH_ARGS)

bench-burst: venv kube-bins  ## benchmark: 300 rotations due at once vs a 10 req/s tenant; cost per rotation
	$(KUBE_BIN_ENV) $(PY) benchmarks/burst.py $(BENCH_ARGS)

bench-consumers: venv kube-bins  ## benchmark: failed authentications and outage per rotation, every mode vs the runbook (~25 min)
	$(KUBE_BIN_ENV) $(PY) benchmarks/consumer_impact.py $(BENCH_ARGS)

soak: venv kube-bins  ## soak: every strategy at once under mixed faults, SOAK_MINUTES (default 20), SOAK_SEED to replay (writes benchmarks/results/soak.json)
	$(KUBE_BIN_ENV) $(PY) benchmarks/soak.py

demo: venv kube-bins  ## local control plane + fake Auth0 + operator, one rotation end to end (DEMO_ARGS=--keep stays up)
	$(KUBE_BIN_ENV) $(PY) -m auth0_rotator_dev.devcluster.demo $(DEMO_ARGS)

cluster-up: venv kube-bins  ## start a local control plane in the background
	$(KUBE_BIN_ENV) $(PY) -m auth0_rotator_dev.devcluster up

cluster-env: venv  ## print exports for the running local control plane
	@$(KUBE_BIN_ENV) $(PY) -m auth0_rotator_dev.devcluster env

cluster-down: venv  ## stop the local control plane
	$(PY) -m auth0_rotator_dev.devcluster down
