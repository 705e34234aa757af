# Sourced (bash or zsh), never run: keeps the Airflow UI/API port and the two URLs that must name
# it consistent. The venv's activate script sources this file (scripts/setup_env.sh writes that),
# so `source .venv/bin/activate`, `make airflow` and the tests all derive the same values.
#
# Why: the api-server listens on [api] port, but the task runners reach the execution API at
# [core] execution_api_server_url, whose default comes from [api] base_url and, without one, is
# http://localhost:8080/execution/. Moving only the port leaves every task "up for retry" with an
# empty log (the cause is only in the scheduler's console).
#
# One setting: SF_AIRFLOW_PORT (default 8080), or Airflow's own AIRFLOW__API__PORT, which wins
# when both are set. AIRFLOW__API__BASE_URL and AIRFLOW__CORE__EXECUTION_API_SERVER_URL are
# derived from the port unless set explicitly (e.g. behind a proxy).
#
# Values derived here are remembered in _SF_DERIVED_*, so a later call (re-activating, `make
# airflow` from an activated shell, the `airflow` wrapper below) recognises them as ours and
# derives them again from a changed port, while a value the user set is kept.

sf_airflow_env() {
  # Forget our own earlier derivations; whatever differs from them was set by the user.
  if [ -n "${AIRFLOW__API__PORT:-}" ] && [ "$AIRFLOW__API__PORT" = "${_SF_DERIVED_API_PORT:-}" ]; then
    unset AIRFLOW__API__PORT
  fi
  if [ -n "${AIRFLOW__API__BASE_URL:-}" ] && [ "$AIRFLOW__API__BASE_URL" = "${_SF_DERIVED_BASE_URL:-}" ]; then
    unset AIRFLOW__API__BASE_URL
  fi
  if [ -n "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-}" ] \
    && [ "$AIRFLOW__CORE__EXECUTION_API_SERVER_URL" = "${_SF_DERIVED_EXECUTION_URL:-}" ]; then
    unset AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  fi
  unset _SF_DERIVED_API_PORT _SF_DERIVED_BASE_URL _SF_DERIVED_EXECUTION_URL

  if [ -n "${AIRFLOW__API__PORT:-}" ]; then
    if [ -n "${SF_AIRFLOW_PORT:-}" ] && [ "$SF_AIRFLOW_PORT" != "$AIRFLOW__API__PORT" ]; then
      echo "sales-forecast: AIRFLOW__API__PORT=$AIRFLOW__API__PORT wins over SF_AIRFLOW_PORT=$SF_AIRFLOW_PORT" >&2
    fi
  else
    export AIRFLOW__API__PORT="${SF_AIRFLOW_PORT:-8080}"
    export _SF_DERIVED_API_PORT="$AIRFLOW__API__PORT"
  fi
  case "$AIRFLOW__API__PORT" in
    '' | *[!0-9]*)
      echo "sales-forecast: the Airflow port must be a number, got '$AIRFLOW__API__PORT'" >&2
      return 1
      ;;
  esac

  if [ -z "${AIRFLOW__API__BASE_URL:-}" ]; then
    # localhost, as in Airflow's own default, so the UI's links match what the README says.
    export AIRFLOW__API__BASE_URL="http://localhost:$AIRFLOW__API__PORT"
    export _SF_DERIVED_BASE_URL="$AIRFLOW__API__BASE_URL"
  fi
  if [ -z "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-}" ]; then
    # The same rule as Airflow's default: {base_url}/execution/.
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__API__BASE_URL%/}/execution/"
    export _SF_DERIVED_EXECUTION_URL="$AIRFLOW__CORE__EXECUTION_API_SERVER_URL"
  fi
}

# In an activated shell, `AIRFLOW__API__PORT=9000 airflow standalone` (or exporting a new port
# after activation) would otherwise run with the URLs derived at activation time. The subshell
# keeps the caller's environment as it was.
airflow() {
  (sf_airflow_env && command airflow "$@")
}
