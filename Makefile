# One entry point for developers and CI. `make test` sets everything up from a fresh clone.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
FUZZ_VENV := .venv-fuzz
MUTATION_VENV := .venv-mutation
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
SCHEMATHESIS_VERSION := 4.32.5
MUTMUT_VERSION := 3.8.1
FUZZ_EXAMPLES ?= 150
# Schemathesis' seed (empty: the fixed one, so every run generates the same requests); any seed passes.
FUZZ_SEED ?=
export FUZZ_SEED
# This machine's pip config names local wheel folders that may be absent: hide that noise only.
QUIET_PIP := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true
export AWS_DEFAULT_REGION ?= eu-west-1

FUNCTION ?= CatalogMonitorFunction
EVENT ?= events/catalog_monitor.json

.PHONY: tests integration e2e lock mutation fuzz faults run snapshot ops help setup test lint format unit cfn-lint validate checkov build check-build invoke importtime bench bench-snapshot bench-sources clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The dev environment installs exactly requirements-dev.lock, then this project (both packages) editable.
$(VENV)/.ok: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.lock $(QUIET_PIP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e . $(QUIET_PIP)
	touch $@

# Re-lock after changing pyproject.toml's dev list or the layer's pins: the layer's pins are constraints,
# so the dev environment runs the versions Lambda gets.
lock: ## Rebuild requirements-dev.lock from pyproject.toml's dev list, with the layer's pins as constraints
	rm -rf build/lock && $(PYTHON) -m venv build/lock
	$(PYTHON) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['optional-dependencies']['dev']))" > build/lock/dev.txt
	build/lock/bin/pip install --quiet --disable-pip-version-check -c layers/tweakwise/requirements.txt -r build/lock/dev.txt $(QUIET_PIP)
	(echo "# make lock: the dev environment, with layers/tweakwise/requirements.txt as constraints. Do not edit."; \
	 build/lock/bin/pip freeze --all --exclude-editable | grep -v -E '^(pip|setuptools|wheel)==' | LC_ALL=C sort -f) > requirements-dev.lock

# SAM CLI pins boto3 and checkov pins urllib3 1.x: each lives in its own virtualenv.
$(SAM_VENV)/.ok:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION) $(QUIET_PIP)
	touch $@

$(CHECKOV_VENV)/.ok:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION) $(QUIET_PIP)
	touch $@

# Schemathesis pins its own hypothesis and jsonschema stack: it gets a virtualenv of its own too.
$(FUZZ_VENV)/.ok:
	$(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION) $(QUIET_PIP)
	touch $@

# mutmut runs the tests, so its virtualenv has the dev dependencies too; only `make mutation` needs it.
# Not the project itself: mutmut imports the mutated copies it stages.
$(MUTATION_VENV)/.ok: requirements-dev.lock
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.lock \
		mutmut==$(MUTMUT_VERSION) $(QUIET_PIP)
	touch $@

setup: ## Create the four virtualenvs (in parallel)
	@$(MAKE) --no-print-directory -j4 $(VENV)/.ok $(SAM_VENV)/.ok $(CHECKOV_VENV)/.ok $(FUZZ_VENV)/.ok

test: setup ## Everything CI runs: lint, all tests with coverage, the webhook fuzz, template linters, sam build + layer check
	@# sam build needs a python3.13 (Lambda's runtime): say so before ten minutes of tests, not after
	@$(MAKE) --no-print-directory -s -C layers/tweakwise python313 >/dev/null
	@$(MAKE) --no-print-directory lint tests fuzz cfn-lint validate checkov build check-build
	@echo "make test: all checks passed"

lint: $(VENV)/.ok ## ruff lint and format check, mypy (Python 3.13) over the layer, the handlers and the local runtime
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.ok ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The tiers past unit wait on sockets, retries and subprocesses: they run on PYTEST_WORKERS processes.
PYTEST_WORKERS ?= auto
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

tests: $(VENV)/.ok ## Every test (unit, integration, e2e), in parallel, with coverage of the tweakwise package (fails under 95%)
	$(VENV)/bin/python -m pytest $(PARALLEL) --cov --cov-report=term-missing

unit: $(VENV)/.ok ## The quick loop: unit tests only (no moto, no sockets, no subprocesses), in seconds
	$(VENV)/bin/python -m pytest tests/unit -q -p no:xdist

integration: $(VENV)/.ok ## moto and a local Tweakwise over real sockets, in parallel
	$(VENV)/bin/python -m pytest tests/integration -q $(PARALLEL)

e2e: $(VENV)/.ok ## make run and make invoke as subprocesses
	$(VENV)/bin/python -m pytest tests/e2e -q

cfn-lint: $(VENV)/.ok ## cfn-lint with the serverless rules
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules

validate: $(SAM_VENV)/.ok ## sam validate --lint
	$(SAM_VENV)/bin/sam validate --lint

checkov: $(CHECKOV_VENV)/.ok ## checkov over the template (suppressions carry their reason)
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml

build: $(SAM_VENV)/.ok ## sam build (no Docker: makefile builds with aarch64 wheels)
	$(SAM_VENV)/bin/sam build --parallel $(QUIET_PIP)

check-build: $(VENV)/.ok ## Check the built layer: package, complete dependencies, arm64 binaries
	$(VENV)/bin/python scripts/check_layer.py .aws-sam/build

invoke: $(VENV)/.ok ## Run one function locally: make invoke FUNCTION=CatalogMonitorFunction EVENT=events/catalog_monitor.json
	$(VENV)/bin/python -m tweakwise_local.invoke $(FUNCTION) $(EVENT)

importtime: $(VENV)/.ok ## Cold starts as Lambda runs them (python3.13, the built layer): imports beside `import boto3`, init + first invocation
	$(VENV)/bin/python -m scripts.importtime

clean: ## Remove build output and caches (keeps the virtualenvs)
	rm -rf .aws-sam .pytest_cache .ruff_cache .coverage coverage.xml

bench: $(VENV)/.ok ## Worker throughput as Lambda runs it, on one CPU and at 256-1024 MB CPU shares; webhook cost; writes docs/benchmarks.md
	$(VENV)/bin/python -m benchmarks.catalog_sync

bench-snapshot: $(VENV)/.ok ## Snapshot benchmarks (20,000 items, 1,000,000-line validation); writes their section of docs/benchmarks.md
	$(VENV)/bin/python -m benchmarks.snapshot_sync

bench-sources: $(VENV)/.ok ## Shopify events through make run's EventBridge (1,000 products, 10,000 levels); source cold start; writes its section of docs/benchmarks.md
	$(VENV)/bin/python -m benchmarks.sources

fuzz: $(VENV)/.ok $(FUZZ_VENV)/.ok ## Schemathesis against `make run`: signed requests, no 5xx, no answer off the schema
	$(VENV)/bin/python scripts/fuzz_webhook.py $(FUZZ_VENV)/bin/schemathesis $(FUZZ_EXAMPLES)

mutation: $(MUTATION_VENV)/.ok ## mutmut over webhook, signatures, queueing, catalog, credentials, sync, worker (slow); fails under 90% each
	$(MUTATION_VENV)/bin/python scripts/mutation.py $(MUTATION_VENV)/bin/mutmut --min 90 --survivors

FAULT_ITEMS ?= 1000
faults: $(VENV)/.ok ## 1,000 items through webhook, queue and worker against a sandbox answering 429/503
	$(VENV)/bin/python -m benchmarks.fault_run $(FAULT_ITEMS)

# Empty: `make run` takes 3000, `make snapshot` the port of the one `make run` of this checkout running.
API_PORT ?=
SANDBOX_FAULTS ?=
SANDBOX_FAIL_TASKS ?=
export SANDBOX_FAIL_TASKS
run: $(VENV)/.ok ## The whole bundle locally: webhook API on :3000, queues, worker, schedules, Tweakwise sandbox
	$(VENV)/bin/python -m tweakwise_local.run $(if $(API_PORT),--api-port $(API_PORT)) --faults "$(SANDBOX_FAULTS)"

ops: $(VENV)/.ok ## The operator's console against `make run` (or a stack): make ops ARGS="trace SKU-1"
	$(VENV)/bin/tweakwise-ops $(if $(API_PORT),--api-port $(API_PORT)) $(ARGS)

FILE ?=
ALLOW_MASS_DELETE ?=
DRY_RUN ?=
snapshot: $(VENV)/.ok ## Apply a snapshot through a running `make run` (DRY_RUN=1: plan only): make snapshot FILE=events/catalog_snapshot.jsonl
	$(VENV)/bin/python -m tweakwise_local.snapshots "$(FILE)" $(if $(API_PORT),--api-port $(API_PORT)) $(if $(ALLOW_MASS_DELETE),--allow-mass-delete) $(if $(DRY_RUN),--dry-run)
