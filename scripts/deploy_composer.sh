#!/usr/bin/env bash
# Deploys the Airflow side (dags/ + plugins/) to a Cloud Composer 3 environment:
#   1. installs the PyPI requirements (requirements.txt without apache-airflow, which Composer
#      provides at the version its image names),
#   2. sets SF_PLATFORM=gcp in the environment,
#   3. optionally imports Airflow Variables (the sf_gcp_* settings) from a JSON file,
#   4. syncs sf_contract (the contract rules shared with the images), plugins/sales_forecast and
#      dags/*.py to the environment's bucket; Composer puts plugins/ on sys.path, so both
#      packages import from there.
#
# Usage:
#   scripts/deploy_composer.sh --environment NAME --location REGION [--project PROJECT]
#                              [--variables FILE.json] [--skip-requirements] [--dry-run]
#
# --dry-run prints the gcloud commands instead of running them. See docs/gcp.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVIRONMENT="" LOCATION="" PROJECT="" VARIABLES="" SKIP_REQS=0 DRY_RUN=0
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --environment) ENVIRONMENT="$2"; shift 2 ;;
    --location) LOCATION="$2"; shift 2 ;;
    --project) PROJECT="$2"; shift 2 ;;
    --variables) VARIABLES="$2"; shift 2 ;;
    --skip-requirements) SKIP_REQS=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
[ -n "$ENVIRONMENT" ] && [ -n "$LOCATION" ] || { echo "--environment and --location are required" >&2; usage 2; }
[ -z "$VARIABLES" ] || [ -f "$VARIABLES" ] || { echo "no such variables file: $VARIABLES" >&2; exit 2; }

# `update` and `run` take the environment as a positional argument, `storage ...` as a flag.
WHERE=(--location "$LOCATION")
[ -z "$PROJECT" ] || WHERE+=(--project "$PROJECT")
ENV_ARGS=(--environment "$ENVIRONMENT" "${WHERE[@]}")
run() {
  if [ "$DRY_RUN" = 1 ]; then printf '%q' "$1"; shift; printf ' %q' "$@"; echo; else "$@"; fi
}

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT

# 1. PyPI packages. Composer refuses apache-airflow itself; everything else is pinned as in CI.
if [ "$SKIP_REQS" = 0 ]; then
  grep -v -E '^\s*(#|$)' requirements.txt | grep -v -E '^apache-airflow==' > "$STAGE/requirements.txt"
  [ "$DRY_RUN" = 0 ] || sed 's/^/# pypi: /' "$STAGE/requirements.txt"
  # Fails with "No change in configuration" when nothing changed: that is fine.
  run gcloud composer environments update "$ENVIRONMENT" "${WHERE[@]}" \
    --update-pypi-packages-from-file "$STAGE/requirements.txt" \
    || echo "(requirements unchanged or update failed; see the message above)" >&2
fi

# 2. The platform switch; every GCP value is read from Airflow Variables at run time.
run gcloud composer environments update "$ENVIRONMENT" "${WHERE[@]}" \
  --update-env-variables SF_PLATFORM=gcp \
  || echo "(environment variables unchanged or update failed; see the message above)" >&2

# 3. Airflow Variables: copy the file to the bucket's data/ folder, then import it there.
if [ -n "$VARIABLES" ]; then
  cp "$VARIABLES" "$STAGE/sf_variables.json"
  run gcloud composer environments storage data import "${ENV_ARGS[@]}" \
    --source "$STAGE/sf_variables.json"
  run gcloud composer environments run "$ENVIRONMENT" "${WHERE[@]}" variables import -- \
    /home/airflow/gcs/data/sf_variables.json
fi

# 4. Code: plugins first, so a DAG never parses against older plugins, and sf_contract before
# sales_forecast, which imports it. No __pycache__.
for package in sf_contract plugins/sales_forecast; do
  name="$(basename "$package")"
  cp -r "$package" "$STAGE/$name"
  find "$STAGE/$name" -name __pycache__ -prune -exec rm -rf {} +
  run gcloud composer environments storage plugins import "${ENV_ARGS[@]}" \
    --source "$STAGE/$name"
done
for dag in dags/*.py; do
  run gcloud composer environments storage dags import "${ENV_ARGS[@]}" --source "$dag"
done
echo "deployed to Composer environment $ENVIRONMENT ($LOCATION)"
