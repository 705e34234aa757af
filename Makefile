# Self-documenting: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
ACTIVATE := source $(VENV)/bin/activate

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint format serve clean-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## Create/reuse .venv from the pinned requirements and the in-repo Airflow home
	@./scripts/setup_env.sh

demo: setup ## Run the whole daily DAG locally on the bundled demo data, then show the results
	@$(ACTIVATE) && airflow dags test sales_forecast -c '{"enable_deploy": true}' > .airflow/demo-run.log 2>&1 \
	  || { tail -n 60 .airflow/demo-run.log; echo "demo run failed: full log in .airflow/demo-run.log"; exit 1; }
	@$(ACTIVATE) && python -m sales_forecast.report

serve: setup ## Serve the registry's production model on http://127.0.0.1:8080 (see docs/serving.md)
	@$(ACTIVATE) && python -m serving

test: setup ## Run the test suite (lint included; installs the GCS/BigQuery emulators once)
	@./scripts/setup_emulators.sh
	@$(ACTIVATE) && ruff check . && ruff format --check . && python -m pytest -q

lint: setup ## ruff lint + format check
	@$(ACTIVATE) && ruff check . && ruff format --check .

format: setup ## Apply ruff fixes and formatting
	@$(ACTIVATE) && ruff check --fix . && ruff format .

clean-local: ## Delete the local warehouse, runs and registry (.local/) and the Airflow home
	rm -rf .local .airflow
