# Self-documenting: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
ACTIVATE := source $(VENV)/bin/activate

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-unit lint typecheck format serve clean-local

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

# The slow groups: the DAG end to end, a real Airflow, the GCS/BigQuery emulators, a fresh image venv.
SLOW_MARKERS := e2e or gcp_emulator or image

test: setup ## The full suite: lint, type check, then every test (installs the emulators once)
	@./scripts/setup_emulators.sh
	@$(ACTIVATE) && ruff check . && ruff format --check . && python -m mypy
	@$(ACTIVATE) && python -m pytest -q

test-unit: setup ## The fast lane (~2 min): every test but the end-to-end, real-Airflow, emulator and image ones
	@$(ACTIVATE) && python -m pytest -q -m "not ($(SLOW_MARKERS))"

lint: setup ## ruff lint + format check + type check
	@$(ACTIVATE) && ruff check . && ruff format --check . && python -m mypy

typecheck: setup ## mypy over plugins/, trainer/, serving/ and sf_contract/ (config in pyproject.toml)
	@$(ACTIVATE) && python -m mypy

format: setup ## Apply ruff fixes and formatting
	@$(ACTIVATE) && ruff check --fix . && ruff format .

clean-local: ## Delete the local warehouse, runs and registry (.local/) and the Airflow home
	rm -rf .local .airflow
