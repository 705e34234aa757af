#!/usr/bin/env bash
# A smoke test of the pipeline on your own GCP project, in two parts (docs/gcp.md, "Smoke test
# on your project"):
#   1. SQL: every statement the DAG sends to BigQuery, rendered for --contract by
#      scripts/render_sql.py, checked by BigQuery itself in a scratch dataset that expires
#      (dropped at the end unless --keep-scratch). Each statement is a `bq query --dry_run`
#      (free), except those that create a table a later statement reads (create_tables.sql, the
#      staging table, validate.sql's staging_checked): they run for real, on empty tables (DDL
#      is free; the one query bills BigQuery's 10 MB minimum). Statements on tables only the
#      trainer writes are dry-run after part 2, against the dataset the run wrote.
#   2. DAG (needs --environment, --region, --bucket): uploads a small CSV (the demo data of
#      --contract) to gs://BUCKET/smoke/<stamp>/, triggers the sales_forecast DAG with it
#      (enable_deploy false: no endpoint is created), waits and prints every task's state.
#      This part is not free: it runs the trainer's jobs (minutes of Vertex AI or Cloud Run).
#      The run writes to the dataset and model of --contract (takeaway: <dataset>_takeaway,
#      <model>_takeaway), apart from the default contract's.
# Exits non-zero if any statement fails or the DAG run does not succeed.
#
# Usage:
#   scripts/gcp_smoke.sh --project PROJECT --location BQ_LOCATION [--contract takeaway]
#                        [--scratch-dataset NAME] [--keep-scratch] [--sql-only]
#                        [--environment ENV --region REGION --bucket BUCKET]
#                        [--bq-dataset sales_forecast] [--dag-dataset NAME]
#                        [--csv FILE] [--future-csv FILE] [--cutoff-date YYYY-MM-DD]
#                        [--runner vertex|cloud_run] [--unpause] [--timeout-min 120]
#                        [--python PYTHON] [--dry-run]
#
# --location is the BigQuery location of sf_gcp_bq_location (US, EU, europe-west1, ...).
# --bq-dataset is sf_gcp_bq_dataset; the run's dataset is it plus "_<contract>" for any
# contract but the default one (retail), or --dag-dataset. --unpause unpauses the DAG first (a
# triggered run of a paused DAG stays queued; unpausing also starts its daily schedule).
# --dry-run prints the bq / gcloud commands instead of running them (the SQL is still rendered).
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="" LOCATION="" CONTRACT="takeaway" SCRATCH="" KEEP=0 SQL_ONLY=0
ENVIRONMENT="" REGION="" BUCKET="" BQ_DATASET="sales_forecast" DAG_DATASET="" CSV="" FUTURE=""
CUTOFF="" RUNNER="" UNPAUSE=0 TIMEOUT_MIN=120 DRY_RUN=0
PYTHON="${PYTHON:-}"
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --project) PROJECT="$2"; shift 2 ;;
    --location) LOCATION="$2"; shift 2 ;;
    --contract) CONTRACT="$2"; shift 2 ;;
    --scratch-dataset) SCRATCH="$2"; shift 2 ;;
    --keep-scratch) KEEP=1; shift ;;
    --sql-only) SQL_ONLY=1; shift ;;
    --environment) ENVIRONMENT="$2"; shift 2 ;;
    --region) REGION="$2"; shift 2 ;;
    --bucket) BUCKET="${2#gs://}"; BUCKET="${BUCKET%/}"; shift 2 ;;
    --bq-dataset) BQ_DATASET="$2"; shift 2 ;;
    --dag-dataset) DAG_DATASET="$2"; shift 2 ;;
    --csv) CSV="$2"; shift 2 ;;
    --future-csv) FUTURE="$2"; shift 2 ;;
    --cutoff-date) CUTOFF="$2"; shift 2 ;;
    --runner) RUNNER="$2"; shift 2 ;;
    --unpause) UNPAUSE=1; shift ;;
    --timeout-min) TIMEOUT_MIN="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
[ -n "$PROJECT" ] && [ -n "$LOCATION" ] || { echo "--project and --location are required" >&2; usage 2; }
if [ "$SQL_ONLY" = 0 ] && { [ -z "$ENVIRONMENT" ] || [ -z "$REGION" ] || [ -z "$BUCKET" ]; }; then
  echo "the DAG run needs --environment, --region and --bucket (or pass --sql-only)" >&2
  exit 2
fi
[[ "$TIMEOUT_MIN" =~ ^[1-9][0-9]*$ ]] || { echo "--timeout-min must be a whole number of minutes" >&2; exit 2; }
case "$RUNNER" in ""|vertex|cloud_run) ;; *) echo "--runner must be vertex or cloud_run" >&2; exit 2 ;; esac
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

STAMP="$(date -u +%Y%m%dT%H%M%S)"
SCRATCH="${SCRATCH:-sf_smoke_$STAMP}"
RUN_ID="smoke__$STAMP"
if [ -z "$DAG_DATASET" ]; then
  if [ "$CONTRACT" = retail ]; then DAG_DATASET="$BQ_DATASET"; else DAG_DATASET="${BQ_DATASET}_$CONTRACT"; fi
fi
if [ -z "$CSV" ]; then
  CSV="data/demo/${CONTRACT}_sales.csv"
  [ -n "$FUTURE" ] || [ ! -f "data/demo/${CONTRACT}_future.csv" ] || FUTURE="data/demo/${CONTRACT}_future.csv"
fi
[ "$SQL_ONLY" = 1 ] || [ -f "$CSV" ] || { echo "no such CSV: $CSV (pass --csv)" >&2; exit 2; }
[ -z "$FUTURE" ] || [ -f "$FUTURE" ] || { echo "no such CSV: $FUTURE" >&2; exit 2; }
if [ -z "$CUTOFF" ] && [ "$SQL_ONLY" = 0 ]; then
  # The file's last day: a cut-off after it would make the run's data look stale.
  CUTOFF="$("$PYTHON" -c 'import csv, sys; print(max(r["date"] for r in csv.DictReader(open(sys.argv[1]))))' "$CSV" 2>/dev/null || true)"
fi

show() { printf '%q' "$1"; shift; printf ' %q' "$@"; echo; }
run() {
  if [ "$DRY_RUN" = 1 ]; then show "$@"; else "$@"; fi
}
WORK="$(mktemp -d)"
cleanup() {
  if [ "$KEEP" = 0 ] && [ -n "${SCRATCH_MADE:-}" ]; then
    run bq rm -r -f -d "$PROJECT:$SCRATCH" || echo "could not drop the scratch dataset $PROJECT:$SCRATCH" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
FAILED=0

# --------------------------------------------------------------------------- 1. SQL
RENDER=("$PYTHON" scripts/render_sql.py --project "$PROJECT" --dataset "$SCRATCH"
  --location "$LOCATION" --contract "$CONTRACT" --run-id "$RUN_ID" --out "$WORK/sql"
  --source-file "gs://${BUCKET:-smoke}/smoke/$STAMP/sales.csv")
[ -z "$CUTOFF" ] || RENDER+=(--cutoff "$CUTOFF")
[ "$SQL_ONLY" = 1 ] || RENDER+=(--dag-dataset "$DAG_DATASET")
"${RENDER[@]}"

BQ=(bq --project_id="$PROJECT" --location="$LOCATION")
run "${BQ[@]}" mk --dataset --default_table_expiration=3600 \
  --description="sales_forecast smoke test (scripts/gcp_smoke.sh), safe to delete" \
  "$PROJECT:$SCRATCH"
SCRATCH_MADE=1

# query FILE [bq query flags...]: the statement from stdin (a leading "--" comment is not a flag).
# ${a[@]+"${a[@]}"}: an empty array under `set -u` in the bash 3.2 of macOS.
query() {
  local file="$1"; shift
  if [ "$DRY_RUN" = 1 ]; then
    show "${BQ[@]}" query --use_legacy_sql=false "$@"; echo "    < $file"
    return 0
  fi
  "${BQ[@]}" query --use_legacy_sql=false "$@" < "$WORK/sql/$file"
}

checked=0 deferred=() skipped=0
while IFS=$'\t' read -r action file params; do
  read -ra flags <<< "$params"
  case "$action" in
    run) echo "== $file: run (creates a table later statements read)"; flags+=(--format=none) ;;
    dry_run) echo "== $file: dry run"; flags+=(--dry_run) ;;
    after_dag) deferred+=("$file"$'\t'"$params"); continue ;;
    skip) skipped=$((skipped + 1)); echo "== $file: skipped (reads a table only the trainer writes)"; continue ;;
    *) echo "unknown action $action in plan.tsv" >&2; exit 1 ;;
  esac
  checked=$((checked + 1))
  query "$file" ${flags[@]+"${flags[@]}"} || { echo "!! $file failed" >&2; FAILED=$((FAILED + 1)); }
done < "$WORK/sql/plan.tsv"
[ "$DRY_RUN" = 0 ] || echo "(--dry-run: nothing was sent)"
echo "SQL: $checked statements checked, $FAILED failed, $skipped skipped," \
     "${#deferred[@]} after the DAG run"

# --------------------------------------------------------------------------- 2. DAG
[ "$SQL_ONLY" = 0 ] || { [ "$FAILED" = 0 ]; exit; }

COMPOSER=(gcloud composer environments run "$ENVIRONMENT" --location "$REGION" --project "$PROJECT")
DROP="gs://$BUCKET/smoke/$STAMP"
run gcloud storage cp "$CSV" "$DROP/sales.csv" --project "$PROJECT"
CONF="{\"input_uri\": \"$DROP/sales.csv\", \"dataset\": \"$CONTRACT\", \"enable_deploy\": false"
if [ -n "$FUTURE" ]; then
  run gcloud storage cp "$FUTURE" "$DROP/future.csv" --project "$PROJECT"
  CONF+=", \"future_uri\": \"$DROP/future.csv\""
fi
[ -z "$CUTOFF" ] || CONF+=", \"cutoff_date\": \"$CUTOFF\""
[ -z "$RUNNER" ] || CONF+=", \"runner\": \"$RUNNER\""
CONF+="}"
[ "$UNPAUSE" = 0 ] || run "${COMPOSER[@]}" dags unpause -- sales_forecast
run "${COMPOSER[@]}" dags trigger -- sales_forecast --run-id "$RUN_ID" --conf "$CONF"

# The run's state from `dags list-runs -o json` (gcloud adds lines of its own around the JSON).
run_state() {
  "${COMPOSER[@]}" dags list-runs -- sales_forecast -o json 2>/dev/null | "$PYTHON" -c '
import json, sys
text = sys.stdin.read()
start = text.find("[")
runs = json.loads(text[start : text.rindex("]") + 1]) if start >= 0 else []
print(next((r.get("state", "") for r in runs if r.get("run_id") == sys.argv[1]), "unknown"))
' "$RUN_ID"
}

state="dry-run"
if [ "$DRY_RUN" = 1 ]; then
  show "${COMPOSER[@]}" dags list-runs -- sales_forecast -o json
  echo "# ... every minute until run $RUN_ID is success or failed (at most $TIMEOUT_MIN min)"
else
  deadline=$(( $(date +%s) + TIMEOUT_MIN * 60 ))
  state="unknown"
  while [ "$(date +%s)" -lt "$deadline" ]; do
    state="$(run_state || echo unknown)"
    echo "$(date -u +%H:%M:%S) run $RUN_ID: $state"
    case "$state" in success|failed) break ;; esac
    sleep 60
  done
  [ "$state" != queued ] || echo "still queued: is the DAG paused? (pass --unpause)" >&2
fi
run "${COMPOSER[@]}" tasks states-for-dag-run -- sales_forecast "$RUN_ID"
[ "$state" = success ] || [ "$DRY_RUN" = 1 ] || { echo "!! DAG run $RUN_ID: $state" >&2; FAILED=$((FAILED + 1)); }

for entry in ${deferred[@]+"${deferred[@]}"}; do
  IFS=$'\t' read -r file params <<< "$entry"
  read -ra flags <<< "$params"
  echo "== $file: dry run against $PROJECT:$DAG_DATASET (written by the run)"
  query "$file" ${flags[@]+"${flags[@]}"} --dry_run || { echo "!! $file failed" >&2; FAILED=$((FAILED + 1)); }
done
echo "smoke test: $FAILED failure(s); inputs in $DROP/, run $RUN_ID"
[ "$FAILED" = 0 ]
