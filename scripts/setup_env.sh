#!/usr/bin/env bash
# Creates (or reuses) the virtual environment from the pinned requirements, makes its activate
# script carry the local Airflow settings, and prepares the in-repo Airflow home.
# Idempotent: re-running only reinstalls when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
VENV="${VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

stamp="$VENV/.requirements.sha256"
want="$(cat requirements.txt requirements-dev.txt constraints.txt trainer/requirements.txt serving/requirements.txt 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing pinned requirements into $VENV (a few minutes the first time)..."
  "$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
  "$VENV/bin/python" -m pip install --quiet -r requirements-dev.txt -c constraints.txt
  echo "$want" > "$stamp"
fi

# `source .venv/bin/activate` is all a user needs before running `airflow ...` from the repo.
marker="# >>> sales-forecast local settings >>>"
# Rewrite the block every time, so an updated set-up reaches an existing venv.
sed -i '/# >>> sales-forecast local settings >>>/,/# <<< sales-forecast local settings <<</d' "$VENV/bin/activate"
{
  cat <<ACT
$marker
export AIRFLOW_HOME="$REPO/.airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$REPO/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export SF_PLATFORM="\${SF_PLATFORM:-local}"
export PYTHONPATH="$REPO/plugins:$REPO\${PYTHONPATH:+:\$PYTHONPATH}"
# The UI/API port (SF_AIRFLOW_PORT or AIRFLOW__API__PORT, default 8080) and the URLs the task
# runners call, kept consistent; also wraps the airflow command, so a port set after
# activation applies too.
. "$REPO/scripts/airflow_env.sh" && sf_airflow_env
# <<< sales-forecast local settings <<<
ACT
} >> "$VENV/bin/activate"

# shellcheck disable=SC1091
source "$VENV/bin/activate"
mkdir -p "$AIRFLOW_HOME"
if [ ! -f "$AIRFLOW_HOME/airflow.db" ]; then
  airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
fi
echo "environment ready: source $VENV/bin/activate"
