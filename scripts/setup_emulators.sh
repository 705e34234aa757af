#!/usr/bin/env bash
# Creates (or reuses) .venv-emulators: the local Cloud Storage and BigQuery emulators from PyPI
# that tests/gcp runs the DAG's GCP tasks against. Idempotent: re-running only reinstalls when
# the pinned requirements change.
#
# The emulators live in a venv of their own because bqemulator asks for a newer fastapi than
# Airflow allows, and it needs duckdb 1.5.5 (the Airflow side pins duckdb 2.x, which has no
# matching spatial extension package).
#
# Offline: bqemulator loads DuckDB's `spatial` extension at start-up and would download it. It is
# installed once from the duckdb-extension-spatial wheel into the emulator's own HOME
# (.venv-emulators/home), which the tests pass to bqemulator.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
VENV="${EMULATOR_VENV:-$REPO/.venv-emulators}"
REQS="$REPO/tests/gcp/requirements-emulators.txt"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the emulators into $VENV ..."
  "$VENV/bin/python" -m pip install --quiet --upgrade "pip==25.3"
  "$VENV/bin/python" -m pip install --quiet -r "$REQS"
  rm -f "$VENV/.spatial-installed"
  echo "$want" > "$stamp"
fi

EMU_HOME="$VENV/home"
mkdir -p "$EMU_HOME"
if [ ! -f "$VENV/.spatial-installed" ]; then
  HOME="$EMU_HOME" "$VENV/bin/python" - <<'PY'
import os

import duckdb
import duckdb_extension_spatial as ext

version = duckdb.__version__
path = os.path.join(
    os.path.dirname(ext.__file__), "extensions", f"v{version}", "spatial.duckdb_extension"
)
if not os.path.exists(path):
    raise SystemExit(f"no spatial extension for duckdb {version} in {os.path.dirname(path)}")
duckdb.connect().execute(f"INSTALL '{path}'")
print(f"installed DuckDB spatial {version} for the BigQuery emulator (HOME={os.environ['HOME']})")
PY
  touch "$VENV/.spatial-installed"
fi

for tool in gcp-storage-emulator bqemulator; do
  [ -x "$VENV/bin/$tool" ] || { echo "missing $VENV/bin/$tool after install" >&2; exit 1; }
done
echo "emulators ready in $VENV (used by: pytest -m gcp_emulator tests/gcp)"
