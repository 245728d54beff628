# The project's vocabulary. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PORT ?= 3000
# Test processes for make test: on 2 cores, 4 overlap the suite's waits (servers, timeouts) best.
WORKERS ?= 4
E ?= checkout_session_completed

.DEFAULT_GOAL := help
.PHONY: help venv test quick unit integration test-dynamodb-local lint demo run event deliveries replay bench build validate clean

help:
	@echo "make run       start the webhook on http://127.0.0.1:$(PORT)/ with local DynamoDB, send the sample events"
	@echo "make test      lint the template and code, run every test, and the demo"
	@echo "make demo      send the sample events through a local webhook and check every outcome"
	@echo "make lint      cfn-lint the template, ruff, mypy --strict and the complexity check on the code"
	@echo "make unit      the unit tests only"
	@echo "make quick     every test but the slow ones (load, fuzz, the documented commands, the demo)"
	@echo "make integration   the integration tests only (real HTTP, DynamoDB and its stream on loopback)"
	@echo "make test-dynamodb-local   the integration tests against Amazon's DynamoDB Local (Java, npm, unshare)"
	@echo "make event E=checkout_session_completed   write a freshly signed event for sam local invoke"
	@echo "make event SESSION=cs_... [DESTINATION=meta]   the stream event that hands that delivery to the sender"
	@echo "make deliveries   list deliveries per destination (a running make run's; STACK=name for a deployed stack; REQUEUE=cs_... [DESTINATION=meta] to send one again)"
	@echo "make replay SINCE=2026-12-01T00:00Z [UNTIL=...] [STACK=name] [DESTINATION=meta] [APPLY=1]   report what Stripe's record holds and this deployment missed (a dry run without APPLY=1)"
	@echo "make bench     run the benchmarks and append to benchmarks/RESULTS.md"
	@echo "make build     sam build (needs the AWS SAM CLI)"
	@echo "make validate  sam validate --lint (needs the AWS SAM CLI)"
	@echo "make clean     remove the virtual environment, build output and caches"

$(INSTALLED): requirements-dev.txt constraints.txt layers/dependencies/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(INSTALLED)

lint: $(INSTALLED)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/xenon --max-absolute B functions

unit: $(INSTALLED)
	$(BIN)/python -m pytest tests/unit

integration: $(INSTALLED)
	$(BIN)/python -m pytest tests/integration

test-dynamodb-local: $(INSTALLED)
	tests/run-against-dynamodb-local.sh tests/integration

# Everything, slow tests included (`make demo` runs inside the suite, as the docs show it).
test: lint
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

quick: $(INSTALLED)
	$(BIN)/python -m pytest -m "not slow"

demo: $(INSTALLED)
	$(BIN)/python -m devtools.local_server --demo --port 0

run: $(INSTALLED)
	$(BIN)/python -m devtools.local_server --port $(PORT)

event: $(INSTALLED)
	$(BIN)/python -m devtools.sign_event $(if $(SESSION),--stream-for $(SESSION) $(if $(DESTINATION),--destination $(DESTINATION),),$(E))

deliveries: $(INSTALLED)
	$(BIN)/python -m devtools.deliveries $(if $(STACK),--stack-name $(STACK),) $(if $(REQUEUE),--requeue $(REQUEUE),) $(if $(DESTINATION),--destination $(DESTINATION),) $(if $(COVERAGE),--coverage $(COVERAGE),)

replay: $(INSTALLED)
	@test -n "$(SINCE)" || { echo "make replay needs SINCE=, e.g. make replay SINCE=2026-12-01T00:00Z" >&2; exit 2; }
	@case "$(APPLY)" in ""|1) ;; *) echo "APPLY=1 does it; without APPLY it is a dry run (APPLY=$(APPLY) is neither)" >&2; exit 2;; esac
	$(BIN)/python -m devtools.replay --since "$(SINCE)" $(if $(UNTIL),--until "$(UNTIL)",) $(if $(STACK),--stack-name $(STACK),) $(if $(DESTINATION),--destination $(DESTINATION),) $(if $(filter 1,$(APPLY)),--apply,)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run_all

SAM_CLI_MISSING := The AWS SAM CLI is not installed: see https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html (or pip install aws-sam-cli in a virtual environment of its own)

build:
	@command -v sam >/dev/null || { echo "$(SAM_CLI_MISSING)" >&2; exit 2; }
	sam build

validate:
	@command -v sam >/dev/null || { echo "$(SAM_CLI_MISSING)" >&2; exit 2; }
	sam validate --lint

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
