# The project's vocabulary. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PORT ?= 3000
E ?= checkout_session_completed

.DEFAULT_GOAL := help
.PHONY: help venv test unit integration test-dynamodb-local lint demo run event deliveries bench build validate clean

help:
	@echo "make run       start the webhook on http://127.0.0.1:$(PORT)/ with local DynamoDB, send the sample events"
	@echo "make test      lint the template and code, run every test, and the demo"
	@echo "make test-dynamodb-local   the integration tests against Amazon's DynamoDB Local (Java, npm, unshare)"
	@echo "make demo      send the sample events through a local webhook and check every outcome"
	@echo "make event E=checkout_session_completed   write a freshly signed event for sam local invoke"
	@echo "make deliveries   list TikTok deliveries by status and match-key coverage (REQUEUE=cs_... to send one again)"
	@echo "make bench     run the benchmarks and append to benchmarks/RESULTS.md"
	@echo "make build     sam build (needs AWS SAM CLI)"

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

unit: $(INSTALLED)
	$(BIN)/python -m pytest tests/unit

integration: $(INSTALLED)
	$(BIN)/python -m pytest tests/integration

test-dynamodb-local: $(INSTALLED)
	tests/run-against-dynamodb-local.sh tests/integration

test: lint
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory demo

demo: $(INSTALLED)
	$(BIN)/python -m devtools.local_server --demo --port 0

run: $(INSTALLED)
	$(BIN)/python -m devtools.local_server --port $(PORT)

event: $(INSTALLED)
	$(BIN)/python -m devtools.sign_event $(if $(SESSION),--stream-for $(SESSION) $(if $(DESTINATION),--destination $(DESTINATION),),$(E))

deliveries: $(INSTALLED)
	$(BIN)/python -m devtools.deliveries $(if $(REQUEUE),--requeue $(REQUEUE),) $(if $(DESTINATION),--destination $(DESTINATION),) $(if $(COVERAGE),--coverage $(COVERAGE),)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run_all

build:
	sam build

validate:
	sam validate --lint

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
