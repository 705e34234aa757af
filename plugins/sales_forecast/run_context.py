"""One DAG run as the steps see it: its id, its dates and its checked params.

Both platforms build the context here, from the same rendered params, so a cut-off, a horizon
or a templated ``input_uri`` means the same thing locally and on Cloud Composer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sales_forecast.config import Settings
from sales_forecast.errors import DataError
from sf_contract.files import CONTRACT_FILE, GATE_FILE
from sf_contract.scalars import ScalarError, parse_date

__all__ = ["RunContext", "make_run_context", "render_params", "run_key"]

# The trigger form's limits (see tasks.dag_params); checked again here for API-triggered runs.
HORIZON_RANGE = (1, 366)


@dataclass(frozen=True)
class RunContext:
    run_id: str
    run_key: str  # run_id made safe for folder names and labels
    run_date: date  # the run's logical date as a calendar date (UTC)
    cutoff_date: date  # the last day of data this run may use
    input_uri: str
    future_uri: str | None
    dataset: str
    horizon: int
    enable_deploy: bool
    run_dir: str

    @property
    def cutoff_iso(self) -> str:
        return self.cutoff_date.isoformat()

    @property
    def model_dir(self) -> str:
        """Where this run's trainer writes its model (run-scoped: may be pruned)."""
        return f"{self.run_dir}/model"

    @property
    def backtest_dir(self) -> str:
        return f"{self.run_dir}/backtest"

    @property
    def gate_uri(self) -> str:
        return f"{self.backtest_dir}/{GATE_FILE}"

    @property
    def contract_uri(self) -> str:
        """The resolved contract the trainer reads."""
        return f"{self.run_dir}/{CONTRACT_FILE}"

    @property
    def forecast_meta_uri(self) -> str:
        return f"{self.run_dir}/forecast/forecast_meta.json"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_date"] = self.run_date.isoformat()
        d["cutoff_date"] = self.cutoff_date.isoformat()
        return d


def run_key(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_")[:200]


def render_params(
    context: Mapping[str, Any], render: Callable[[str, dict[str, Any]], Any]
) -> tuple[str, datetime, dict[str, Any]]:
    """The run id, logical date and params of a task run, string params rendered once more.

    Why render again: a param like ``gs://bucket/drops/{{ ds }}/sales.csv`` is a template the
    user typed into the trigger form; Airflow does not render params themselves.
    """
    dag_run = context["dag_run"]
    # Airflow 3 runs triggered without a logical date still have run_after.
    when = context.get("logical_date") or dag_run.run_after
    template_context = dict(context)
    template_context.setdefault("ds", when.strftime("%Y-%m-%d"))
    template_context.setdefault("ds_nodash", when.strftime("%Y%m%d"))
    params = {
        k: render(v, template_context) if isinstance(v, str) and "{" in v else v
        for k, v in dict(context["params"]).items()
    }
    return str(dag_run.run_id), when, params


def make_run_context(
    *,
    run_id: str,
    logical_date: datetime | date,
    params: Mapping[str, Any],
    settings: Settings,
    runs_root: str,
) -> RunContext:
    """Build the run's context from the DAG run's id, logical date and (rendered) params.

    Airflow's logical date is a UTC timestamp; the warehouse has calendar dates. The conversion
    happens here, once: a run at 2024-03-10T00:00Z is the run of 2024-03-10, and by default it
    uses data up to and including the day before (the last complete day).
    """
    if isinstance(logical_date, datetime):
        if logical_date.tzinfo is None:
            raise ValueError("logical_date must be timezone-aware")
        run_date = logical_date.astimezone(UTC).date()
    else:
        run_date = logical_date
    cutoff_raw = str(params.get("cutoff_date") or "").strip()
    if cutoff_raw:
        try:
            cutoff = parse_date(cutoff_raw)
        except ScalarError:
            raise DataError(f"param cutoff_date={cutoff_raw!r} is not a YYYY-MM-DD date") from None
    else:
        cutoff = run_date - timedelta(days=1)
    try:
        raw_h = params.get("horizon")
        horizon = int(settings.default_horizon if raw_h in (None, "") else raw_h)
    except (TypeError, ValueError):
        raise DataError(f"param horizon={params.get('horizon')!r} is not an integer") from None
    low, high = HORIZON_RANGE
    if not low <= horizon <= high:
        raise DataError(f"param horizon={horizon} is out of range ({low}..{high} days)")
    input_uri = str(params.get("input_uri") or settings.default_input_uri).strip()
    future_uri = str(params.get("future_uri") or "").strip() or None
    key = run_key(run_id)
    return RunContext(
        run_id=run_id,
        run_key=key,
        run_date=run_date,
        cutoff_date=cutoff,
        input_uri=input_uri,
        future_uri=future_uri,
        dataset=str(params.get("dataset") or settings.default_dataset).strip(),
        horizon=horizon,
        enable_deploy=bool(params.get("enable_deploy", False)),
        run_dir=f"{runs_root.rstrip('/')}/{key}",
    )
