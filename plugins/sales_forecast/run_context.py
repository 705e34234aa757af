"""One DAG run as the steps see it: its id, its dates and its checked params.

Both platforms build the context here, from the same rendered params, so a cut-off, a horizon
or a templated ``input_uri`` means the same thing locally and on Cloud Composer.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sales_forecast.config import Settings
from sales_forecast.contract import contract_path
from sales_forecast.errors import DataError
from sales_forecast.sources import SourceKind, parse_bq_uri, source_kind
from sales_forecast.tuning import TuningRequest, parse_tuning_params
from sf_contract.files import CONTRACT_FILE, GATE_FILE
from sf_contract.scalars import ScalarError, parse_date
from sf_contract.schema import ContractError

__all__ = [
    "RunContext",
    "check_input_uri",
    "data_day",
    "make_run_context",
    "render_params",
    "run_key",
]

# The trigger form's limits (see tasks.dag_params); checked again here for API-triggered runs.
HORIZON_RANGE = (1, 366)

# gs://<bucket>/<object>: bucket names are a-z, 0-9, "-", "_" and ".", starting and ending
# with a letter or digit (GCS wants 3 or more; the length is GCS's to refuse).
_GS_URI = re.compile(r"gs://([a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?)/(.+)")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Glob characters: DuckDB's read_csv and gcsfs expand them, so one URI could read many files.
_WILDCARDS = frozenset("*?[")


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
    # A tuning run's (sales_forecast_hpt) search; None on the daily DAG.
    tuning: TuningRequest | None = None
    # The daily DAG: train with the params of the newest registered tuned model, if any.
    use_tuned_params: bool = True

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

    @property
    def tuning_dir(self) -> str:
        """A tuning run's study and trials: never under the promoted models folder."""
        return f"{self.run_dir}/tuning"

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
    user typed into the trigger form; Airflow does not render params themselves. A default that
    reads a Variable holding such a template is rendered once more.
    """
    dag_run = context["dag_run"]
    # Airflow 3 runs triggered without a logical date still have run_after.
    when = context.get("logical_date") or dag_run.run_after
    template_context = dict(context)
    template_context.setdefault("ds", when.strftime("%Y-%m-%d"))
    template_context.setdefault("ds_nodash", when.strftime("%Y%m%d"))

    def rendered(value: Any) -> Any:
        # Twice at most: a default that reads a Variable (sf_gcp_input_uri) may itself hold a
        # template (gs://b/drops/{{ ds }}/sales.csv); a third level is not a use case.
        for _ in range(2):
            if not (isinstance(value, str) and "{" in value):
                break
            value = render(value, template_context)
        return value

    params = {k: rendered(v) for k, v in dict(context["params"]).items()}
    return str(dag_run.run_id), when, params


def _input_error(param: str, uri: str, why: str, allowed: str) -> DataError:
    shown = repr(uri) if len(uri) <= 200 else repr(uri[:197]) + "..."
    return DataError(f"param {param}={shown} {why}; {allowed}")


def check_input_uri(uri: str, settings: Settings, param: str = "input_uri") -> str:
    """``uri`` when a run may read it, else a DataError naming what is allowed.

    The param is typed by whoever triggers the run, and the worker reads it: without a check,
    ``/etc/passwd`` or ``http://<metadata server>/`` ends up in the task log (review D7). On
    GCP only ``gs://bucket/object`` is read. Locally, only a path (no scheme, or ``file://``)
    that, with symlinks followed and ``..`` resolved, lies under one of
    ``Settings.allowed_input_roots``. Nothing is opened here: a folder or a device is refused
    from its ``stat``, and a missing file is left to the load step ("input file not found").
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in uri):
        raise _input_error(param, uri, "contains a control character", "use a plain URI")
    # A table is an input (input_uri) only; the future covariates file is always a CSV.
    tables_allowed = param == "input_uri"
    if source_kind(uri) is SourceKind.BIGQUERY:
        if settings.platform != "gcp" or not tables_allowed:
            where = "on the GCP platform" if tables_allowed else "as input_uri"
            raise _input_error(
                param, uri, "names a BigQuery table", f"BigQuery tables are read {where} only"
            )
        parse_bq_uri(uri)
        return uri
    if settings.platform == "gcp":
        allowed = (
            "on GCP an input is a gs://<bucket>/<object> URI (no wildcards): a CSV, a Parquet "
            "file, a folder of Parquet files (gs://<bucket>/<folder>/), or bq://<project>."
            "<dataset>.<table>"
        )
        match = _GS_URI.fullmatch(uri)
        if match is None or "::" in uri or "#" in uri:
            raise _input_error(param, uri, "is not a gs://<bucket>/<object> URI", allowed)
        if _WILDCARDS & set(match.group(2)):
            raise _input_error(param, uri, "contains a wildcard (*, ? or [)", allowed)
        if match.group(2).endswith("/") and not tables_allowed:
            raise _input_error(param, uri, "is a folder, not a CSV file", allowed)
        return uri
    roots = settings.allowed_input_roots
    allowed = (
        "on the local platform an input is a local path (or file://: a CSV, a Parquet file or "
        "a folder of Parquet files) under one of "
        f"{', '.join(str(r) for r in roots)} (add folders with SF_INPUT_ROOTS)"
    )
    scheme = _SCHEME.match(uri)
    path_text = uri
    if scheme is not None:
        if scheme.group(1).lower() != "file":
            raise _input_error(param, uri, f"uses the {scheme.group(1)!r} scheme", allowed)
        parts = urlsplit(uri)
        # "%": fsspec does not decode %2e%2e, other readers might; one meaning only.
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or "%" in uri:
            raise _input_error(param, uri, "is not a plain file:///<path> URI", allowed)
        path_text = parts.path
    if "::" in path_text:
        # fsspec reads "a::b" as a chain of file systems, not as one file name.
        raise _input_error(param, uri, "contains '::'", allowed)
    if _WILDCARDS & set(path_text):
        raise _input_error(param, uri, "contains a wildcard (*, ? or [)", allowed)
    try:
        # expanduser: fsspec and DuckDB both read "~/x.csv" as the home folder's.
        resolved = Path(path_text).expanduser().resolve()
        try:
            info: os.stat_result | None = resolved.stat()
        except FileNotFoundError:
            info = None
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, a NUL byte
        raise _input_error(param, uri, f"cannot be resolved ({exc})", allowed) from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise _input_error(
            param, uri, "is outside the allowed folders (symlinks and .. resolved)", allowed
        )
    if info is not None and stat.S_ISDIR(info.st_mode):
        if not tables_allowed:
            raise _input_error(param, uri, "is a folder, not a CSV file", "name the CSV file")
        # A folder of Parquet files: spelt with its "/", the one sign sources.source_kind
        # reads, so every later step knows it without looking at the disk again.
        return uri if uri.endswith("/") else uri + "/"
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise _input_error(param, uri, "is not a regular file", "name a CSV file")
    return uri


def _run_date(logical_date: datetime | date) -> date:
    """A run's logical date (a UTC timestamp in Airflow) as the calendar day it is in UTC."""
    if isinstance(logical_date, datetime):
        if logical_date.tzinfo is None:
            raise ValueError("logical_date must be timezone-aware")
        return logical_date.astimezone(UTC).date()
    return logical_date


def data_day(params: Mapping[str, Any], name: str, logical_date: datetime | date) -> date:
    """The last day of data a run uses: the param ``name`` (``YYYY-MM-DD``) when given, else
    the day before the run's logical date (the last complete day), in UTC.

    Airflow's logical date is a UTC timestamp; the warehouse has calendar dates. The conversion
    happens here, once, for every DAG (the daily cut-off, the monitoring day).
    """
    raw = str(params.get(name) or "").strip()
    if not raw:
        return _run_date(logical_date) - timedelta(days=1)
    try:
        return parse_date(raw)
    except ScalarError:
        raise DataError(f"param {name}={raw!r} is not a YYYY-MM-DD date") from None


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
    cutoff = data_day(params, "cutoff_date", logical_date)
    try:
        raw_h = params.get("horizon")
        horizon = int(settings.default_horizon if raw_h in (None, "") else raw_h)
    except (TypeError, ValueError):
        raise DataError(f"param horizon={params.get('horizon')!r} is not an integer") from None
    low, high = HORIZON_RANGE
    if not low <= horizon <= high:
        raise DataError(f"param horizon={horizon} is out of range ({low}..{high} days)")
    input_raw = str(params.get("input_uri") or "").strip()
    tuning = parse_tuning_params(params) if "trials" in params else None
    if tuning is not None and not input_raw:
        # A tuning run reads the features a daily run built, never an input file.
        input_uri = ""
    elif not input_raw and settings.platform == "gcp":
        # The local default is the demo file in the repository: nothing to read on GCP.
        raise DataError(
            "param input_uri is empty: pass input_uri=gs://<bucket>/<object> "
            "(or set its default, the Airflow Variable sf_gcp_input_uri)"
        )
    else:
        input_uri = check_input_uri(input_raw or settings.default_input_uri.strip(), settings)
    future_uri = str(params.get("future_uri") or "").strip() or None
    if future_uri is not None:
        future_uri = check_input_uri(future_uri, settings, "future_uri")
    dataset = str(params.get("dataset") or settings.default_dataset).strip()
    try:
        # Names only, nothing opened: a path or `..` fails the run before any task reads it.
        contract_path(dataset, settings)
    except ContractError as exc:
        raise DataError(str(exc)) from None
    key = run_key(run_id)
    return RunContext(
        run_id=run_id,
        run_key=key,
        run_date=_run_date(logical_date),
        cutoff_date=cutoff,
        input_uri=input_uri,
        future_uri=future_uri,
        dataset=dataset,
        horizon=horizon,
        enable_deploy=bool(params.get("enable_deploy", False))
        # A scheduled run has no conf to tick enable_deploy in: SF_SCHEDULED_ENABLE_DEPLOY
        # lets the daily schedule deploy when the gate passes (off unless set).
        or (run_id.startswith("scheduled__") and settings.scheduled_enable_deploy),
        run_dir=f"{runs_root.rstrip('/')}/{key}",
        # Only the tuning DAG has a `trials` param.
        tuning=tuning,
        use_tuned_params=tuning is None and bool(params.get("use_tuned_params", True)),
    )
