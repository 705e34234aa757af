# Self-documenting: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
ACTIVATE := source $(VENV)/bin/activate

.DEFAULT_GOAL := help
.PHONY: help setup demo airflow test test-unit lint typecheck format serve clean-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## Create/reuse .venv from the pinned requirements and the in-repo Airflow home
	@./scripts/setup_env.sh

demo: setup ## Run the whole daily DAG locally on the bundled demo data, then show the results
	@$(ACTIVATE) && airflow dags test sales_forecast -c '{"enable_deploy": true}' > .airflow/demo-run.log 2>&1 \
	  || { tail -n 60 .airflow/demo-run.log; echo "demo run failed: full log in .airflow/demo-run.log"; exit 1; }
	@$(ACTIVATE) && python -m sales_forecast.report

# DATASET: a contract name or a contract file's path (default: the default contract); INPUT: a
# local CSV. Exit status 2 when a run on that file would fail (docs/contracts.md).
.PHONY: check
check: setup ## Check a contract and a CSV, no DAG run: make check DATASET=my.yaml INPUT=my.csv
	@test -n '$(INPUT)' || { echo "usage: make check DATASET=<name or contract file> INPUT=<csv>"; exit 2; }
	@$(ACTIVATE) && python -m sales_forecast.check $(if $(DATASET),--dataset '$(DATASET)') --input '$(INPUT)'

# The Airflow UI's port, its base URL and the task runners' execution-API URL all come from
# SF_AIRFLOW_PORT (or AIRFLOW__API__PORT), default 8080: scripts/airflow_env.sh, sourced by the
# venv's activate script. Loopback unless AIRFLOW__API__HOST says otherwise (Airflow's default
# is every interface). The simple auth manager writes the admin password on first start.
airflow: setup ## Airflow UI + scheduler (airflow standalone) on http://localhost:8080 (SF_AIRFLOW_PORT)
	@$(ACTIVATE) && export AIRFLOW__API__HOST="$${AIRFLOW__API__HOST:-127.0.0.1}" \
	  && echo "Airflow UI/API: $$AIRFLOW__API__BASE_URL (user admin, password in" \
	  "$${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated})" \
	  && airflow standalone

# Its own port, so it runs beside the Airflow UI; the app itself reads Vertex's AIP_HTTP_PORT
# (default 8080 in the image), which an explicit AIP_HTTP_PORT still sets here.
SF_SERVING_PORT ?= $(or $(AIP_HTTP_PORT),8090)
serve: setup ## Serve the registry's production model on http://127.0.0.1:8090 (SF_SERVING_PORT)
	@$(ACTIVATE) && AIP_HTTP_PORT='$(SF_SERVING_PORT)' python -m serving

# The slow groups: the DAG end to end, a real Airflow, the GCS/BigQuery emulators, a fresh image venv.
SLOW_MARKERS := e2e or gcp_emulator or image

test: setup ## The full suite: lint, type check, then every test (installs the emulators once)
	@./scripts/setup_emulators.sh
	@$(ACTIVATE) && ruff check . && ruff format --check . && python -m mypy
	@$(ACTIVATE) && python -m pytest -q

test-unit: setup ## The fast lane (~3 min): every test but the end-to-end, real-Airflow, emulator and image ones
	@$(ACTIVATE) && python -m pytest -q -m "not ($(SLOW_MARKERS))"

lint: setup ## ruff lint + format check + type check
	@$(ACTIVATE) && ruff check . && ruff format --check . && python -m mypy

typecheck: setup ## mypy over plugins/, trainer/, serving/ and sf_contract/ (config in pyproject.toml)
	@$(ACTIVATE) && python -m mypy

format: setup ## Apply ruff fixes and formatting
	@$(ACTIVATE) && ruff check --fix . && ruff format .

clean-local: ## Delete the local warehouse, runs and registry (.local/) and the Airflow home
	rm -rf .local .airflow
