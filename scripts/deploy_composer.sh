#!/usr/bin/env bash
# Deploys the Airflow side (dags/ + plugins/) to a Cloud Composer 3 environment:
#   1. checks that the environment runs a triggerer (the trainer tasks are deferrable: without
#      one they stay deferred) and adds --triggerer-count triggerers (default 1) if it has none,
#   2. installs requirements-composer.txt as the environment's PyPI packages (only what the
#      Composer image lacks, with lower bounds; see the file),
#   3. sets SF_PLATFORM=gcp in the environment,
#   4. imports Airflow Variables (the sf_gcp_* settings) from a JSON file, if given, then sets
#      sf_gcp_input_uri, the input of every run that passes none (the daily schedule),
#   5. copies plugins/.airflowignore (Airflow's plugin loader must not import our packages),
#      sf_contract (the contract rules shared with the images), plugins/sales_forecast and
#      dags/*.py to the environment's bucket; Composer puts plugins/ on sys.path, so both
#      packages import from there.
# Any failed step stops the script; an update that changes nothing counts as done.
#
# Usage:
#   scripts/deploy_composer.sh --environment NAME --location REGION [--project PROJECT]
#                              [--input-uri gs://BUCKET/PATH] [--variables FILE.json]
#                              [--triggerer-count N] [--skip-requirements] [--dry-run]
#
# --input-uri is required unless FILE.json sets a non-empty sf_gcp_input_uri; it may hold
# templates, e.g. 'gs://my-drops/{{ ds }}/sales.csv'. --dry-run prints the gcloud commands
# instead of running them. See docs/gcp.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVIRONMENT="" LOCATION="" PROJECT="" VARIABLES="" INPUT_URI="" TRIGGERERS=1
SKIP_REQS=0 DRY_RUN=0
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --environment) ENVIRONMENT="$2"; shift 2 ;;
    --location) LOCATION="$2"; shift 2 ;;
    --project) PROJECT="$2"; shift 2 ;;
    --variables) VARIABLES="$2"; shift 2 ;;
    --input-uri) INPUT_URI="$2"; shift 2 ;;
    --triggerer-count) TRIGGERERS="$2"; shift 2 ;;
    --skip-requirements) SKIP_REQS=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
[ -n "$ENVIRONMENT" ] && [ -n "$LOCATION" ] || { echo "--environment and --location are required" >&2; usage 2; }
[ -z "$VARIABLES" ] || [ -f "$VARIABLES" ] || { echo "no such variables file: $VARIABLES" >&2; exit 2; }
[[ "$TRIGGERERS" =~ ^[1-9][0-9]*$ ]] || { echo "--triggerer-count must be 1 or more" >&2; exit 2; }
if [ -n "$INPUT_URI" ]; then
  [[ "$INPUT_URI" == gs://?* ]] || { echo "--input-uri must be a gs:// URI, got: $INPUT_URI" >&2; exit 2; }
elif [ -z "$VARIABLES" ] || ! grep -Eq '"sf_gcp_input_uri"[[:space:]]*:[[:space:]]*"[^"]' "$VARIABLES"; then
  # Without it every scheduled run fails at its first task (the gcp platform has no default).
  echo "pass --input-uri gs://<bucket>/<path>.csv (e.g. 'gs://my-drops/{{ ds }}/sales.csv')," \
       "or set sf_gcp_input_uri in the --variables file: it is the input of every run that" \
       "passes none, the daily schedule included" >&2
  exit 2
fi

# `update`, `describe` and `run` take the environment as a positional argument, `storage ...`
# as a flag.
WHERE=(--location "$LOCATION")
[ -z "$PROJECT" ] || WHERE+=(--project "$PROJECT")
ENV_ARGS=(--environment "$ENVIRONMENT" "${WHERE[@]}")
show() { printf '%q' "$1"; shift; printf ' %q' "$@"; echo; }
run() {
  if [ "$DRY_RUN" = 1 ]; then show "$@"; else "$@"; fi
}

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT

# An environment update fails with "No change in configuration" when the environment already
# has what was asked: that outcome is success. Any other failure (rejected requirements, an
# update already running, ...) stops the deploy, so the code never lands without the packages
# it imports. gcloud's messages still reach the terminal as they come.
update() {
  if [ "$DRY_RUN" = 1 ]; then show gcloud composer environments update "$@"; return; fi
  local rc=0
  { gcloud composer environments update "$@" 2>&1 1>&3 3>&- | tee "$STAGE/update.err" >&2; } 3>&1 \
    || rc=$?
  [ "$rc" != 0 ] || return 0
  if grep -q "No change in configuration" "$STAGE/update.err"; then
    echo "(unchanged)" >&2
    return 0
  fi
  echo "environment update failed (exit $rc): nothing more was deployed" >&2
  exit "$rc"
}

# 1. A triggerer: the trainer tasks defer to it while their jobs run (Composer's default is 0).
DESCRIBE=(gcloud composer environments describe "$ENVIRONMENT" "${WHERE[@]}"
  --format 'value(config.workloadsConfig.triggerer.count)')
if [ "$DRY_RUN" = 1 ]; then
  show "${DESCRIBE[@]}"
  echo "# only if it reports no triggerer:"
  update "$ENVIRONMENT" "${WHERE[@]}" --triggerer-count "$TRIGGERERS"
else
  count="$("${DESCRIBE[@]}")"
  if [[ "${count:-0}" =~ ^0*$ ]]; then
    echo "the environment has no triggerer: adding $TRIGGERERS (--triggerer-count)" >&2
    update "$ENVIRONMENT" "${WHERE[@]}" --triggerer-count "$TRIGGERERS"
  else
    echo "triggerers: $count"
  fi
fi

# 2. PyPI packages: what the Composer image lacks (requirements-composer.txt), without the
# comments, which the update does not take.
if [ "$SKIP_REQS" = 0 ]; then
  sed -E 's/[[:space:]]*#.*$//; /^[[:space:]]*$/d' requirements-composer.txt > "$STAGE/requirements.txt"
  [ "$DRY_RUN" = 0 ] || sed 's/^/# pypi: /' "$STAGE/requirements.txt"
  update "$ENVIRONMENT" "${WHERE[@]}" --update-pypi-packages-from-file "$STAGE/requirements.txt"
fi

# 3. The platform switch; every GCP value is read from Airflow Variables at run time.
update "$ENVIRONMENT" "${WHERE[@]}" --update-env-variables SF_PLATFORM=gcp

# 4. Airflow Variables: copy the file to the bucket's data/ folder, then import it there. The
# input URI goes after it, so --input-uri wins over the file.
if [ -n "$VARIABLES" ]; then
  cp "$VARIABLES" "$STAGE/sf_variables.json"
  run gcloud composer environments storage data import "${ENV_ARGS[@]}" \
    --source "$STAGE/sf_variables.json"
  run gcloud composer environments run "$ENVIRONMENT" "${WHERE[@]}" variables import -- \
    /home/airflow/gcs/data/sf_variables.json
fi
if [ -n "$INPUT_URI" ]; then
  run gcloud composer environments run "$ENVIRONMENT" "${WHERE[@]}" variables set -- \
    sf_gcp_input_uri "$INPUT_URI"
fi

# 5. Code. plugins/.airflowignore first, so the plugin loader of no component ever sees our
# packages without it; then plugins before DAGs, so a DAG never parses against older plugins,
# sf_contract before sales_forecast, which imports it, and the view's plugin file last. No
# __pycache__.
run gcloud composer environments storage plugins import "${ENV_ARGS[@]}" \
  --source plugins/.airflowignore
for package in sf_contract plugins/sales_forecast; do
  name="$(basename "$package")"
  cp -r "$package" "$STAGE/$name"
  find "$STAGE/$name" -name __pycache__ -prune -exec rm -rf {} +
  run gcloud composer environments storage plugins import "${ENV_ARGS[@]}" \
    --source "$STAGE/$name"
done
# The one real plugin (the "Sales forecasts" view), after the package it imports.
run gcloud composer environments storage plugins import "${ENV_ARGS[@]}" \
  --source plugins/forecasts_view.py
for dag in dags/*.py; do
  run gcloud composer environments storage dags import "${ENV_ARGS[@]}" --source "$dag"
done
echo "deployed to Composer environment $ENVIRONMENT ($LOCATION)"
