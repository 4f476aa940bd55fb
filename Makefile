# Kanaria: `make demo` (local rehearsal, no AWS account) and `make test` are the two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CDK := node_modules/.bin/cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true
export CDK_CLI_TELEMETRY := false
# checkov has its own virtualenv: its pins (boto3/botocore 1.35, packaging 23, networkx 2.6) would downgrade what
# moto, cfn-lint and the CDK app run on (see infra/checkov_gate.py)
CHECKOV_VENV := .venv-checkov
PYTEST_WORKERS ?= 2
# CDK context for synth/deploy, e.g. make deploy CONTEXT="-c kanaria:alarmEmail=oncall@example.com"
CONTEXT ?=

.PHONY: install test test-unit fuzz simulate synth deploy demo bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-tooling.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --quiet --upgrade pip  # -qq: errors only (a machine's pip config can warn per package)
	$(PIP) install --quiet --quiet -r requirements-dev.txt
	$(PIP) install --quiet --quiet --no-deps -e .
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(CHECKOV_VENV)/.installed node_modules/.installed ## virtualenvs + pinned CDK CLI

test: install lint ## the gates, then the whole suite: unit, infrastructure (synth + cdk-nag + cfn-lint + checkov), integration (moto)
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) tests

lint: install ## ruff (rules in pyproject.toml), mypy on the runtime, infra and tooling, import contracts (lint-imports)
	$(VENV)/bin/ruff check lambdas tooling infra tests app.py
	$(VENV)/bin/ruff format --check --quiet lambdas tooling infra tests app.py
	$(VENV)/bin/mypy lambdas/kanaria infra tooling/kanaria_tools
	$(VENV)/bin/lint-imports

test-unit: install
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) tests/unit

fuzz: install ## the large property-based run of the HTTP APIs (KANARIA_FUZZ_EXAMPLES inputs per API, default 1000)
	mkdir -p reports
	KANARIA_FUZZ_REPORT=reports/fuzz.json $(VENV)/bin/pytest -m fuzz -s tests/integration/test_fuzz_apis.py

simulate: install ## the large rollout simulation: >= 100,000 schedules (KANARIA_SIMULATE_SCHEDULES), invariants after every step
	$(VENV)/bin/pytest -m simulate -n $(PYTEST_WORKERS) -p no:randomly tests/simulation/test_simulate.py

# The offline gates every synthesized assembly passes (cdk-nag runs inside the synth)
define SYNTH_GATES
	$(VENV)/bin/cfn-lint --non-zero-exit-code error cdk.out/*.template.json
	$(PY) -m infra.checkov_gate cdk.out
endef

synth: install ## synthesize every stack offline (bundles Lambda layers with pip, no docker), cdk-nag + cfn-lint + checkov gated
	$(CDK) synth --quiet $(CONTEXT)
	$(SYNTH_GATES)

# kanaria:deploy refuses the offline placeholder account: the account and region are the context's, else your
# credentials' (the CDK CLI resolves them). docs/deploy.md: bootstrap, permissions, costs.
deploy: install ## deploy to the account of your AWS credentials, then print what the chatbot needs (API URL, region, topics)
	$(CDK) synth --quiet -c kanaria:deploy=true $(CONTEXT)
	$(SYNTH_GATES)
	mkdir -p reports
	$(CDK) deploy --all --require-approval broadening --app cdk.out --outputs-file reports/deploy-outputs.json
	$(PY) -m kanaria_tools.deploy_outputs reports/deploy-outputs.json

demo: install ## local rehearsal: moto on loopback, real CDK deploy, rollouts (see README)
	$(VENV)/bin/kanaria demo

bench: install ## benchmarks into docs/benchmarks.md (installs the bench-only comparisons: growthbook, gbstats)
	$(PIP) install --quiet --quiet -r requirements-bench.txt
	$(PY) -m kanaria_tools.bench

clean:
	rm -rf cdk.out build reports .pytest_cache
