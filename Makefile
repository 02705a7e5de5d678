# The front door. `make run` and `make test` do all their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
CHECKOV := .venv-checkov
PY := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
# sam build needs the runtime's interpreter (python3.13) on PATH; pyenv shims resolve it with this.
SAM_PYENV := PYENV_VERSION=$${PYENV_VERSION:-3.13.0:3.11.7}

.PHONY: help run test unit integration e2e twin faults fuzz lint typecheck validate build deploy bench bench-quick clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements-dev.txt requirements-bench.txt layers/shared/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -r requirements-dev.txt -r requirements-bench.txt -e .
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -qq --upgrade pip
	$(TOOLS)/bin/python -m pip install -qq -r requirements-tools.txt
	touch $@

$(CHECKOV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install -qq --upgrade pip
	$(CHECKOV)/bin/python -m pip install -qq -r requirements-checkov.txt
	touch $@

run: $(VENV)/.installed  ## the whole gateway locally: moto, API on :3000, simulator, worker
	$(VENV)/bin/python -m smsgw_local

test: $(VENV)/.installed $(TOOLS)/.installed lint typecheck validate  ## everything CI runs: lint, template checks, every test folder (faults, fuzz, the quick bench too)
	SMSGW_TOOLS_BIN=$(abspath $(TOOLS))/bin $(PY) -m pytest

unit: $(VENV)/.installed  ## unit tests only (no network)
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed  ## handlers against moto
	$(PY) -m pytest tests/integration

e2e: $(VENV)/.installed  ## the gateway end to end through the local twin, over real HTTP
	$(PY) -m pytest tests/e2e

twin: $(VENV)/.installed  ## the local twin's own tests: API Gateway stand-in, SQS poller, runtimes, simulator
	$(PY) -m pytest tests/twin

faults: $(VENV)/.installed  ## the fault mixes: the platform's faults, then AWS's, ledgers printed
	$(PY) -m pytest tests/faults

fuzz: $(VENV)/.installed  ## the property and contract fuzzers (seeded)
	$(PY) -m pytest tests/fuzz

lint: $(VENV)/.installed  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed  ## mypy --strict
	$(VENV)/bin/mypy

validate: $(TOOLS)/.installed $(CHECKOV)/.installed  ## sam validate --lint, cfn-lint and checkov, offline
	$(TOOLS)/bin/sam validate --lint --template template.yaml
	$(TOOLS)/bin/cfn-lint template.yaml
	$(CHECKOV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

build: $(TOOLS)/.installed  ## sam build (needs python3.13 on PATH)
	$(SAM_PYENV) $(TOOLS)/bin/sam build --template template.yaml

# The guided answers go to samconfig.local.toml (git-ignored), never to the tracked
# samconfig.toml. SAM refuses a --config-file that does not exist, so create it first.
deploy: build  ## sam deploy --guided, answers kept in samconfig.local.toml (see docs/deploy.md)
	test -e samconfig.local.toml || touch samconfig.local.toml
	$(TOOLS)/bin/sam deploy --guided --config-file samconfig.local.toml

bench: $(VENV)/.installed  ## benchmarks: writes docs/benchmarks.md, .json, .png and docs/capacity.md
	$(PY) -m bench

bench-quick: $(VENV)/.installed  ## the benchmarks at tiny sizes, into build/bench-quick (make test runs them via tests/bench)
	$(PY) -m bench --quick

clean:  ## remove virtual environments and build output
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .venv-runtime .aws-sam .pytest_cache .mypy_cache .ruff_cache
