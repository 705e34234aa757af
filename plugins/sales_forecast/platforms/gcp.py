"""The GCP platform's plain-Python half: configuration resolved at run time, the run's names and
URIs, the request bodies sent to Vertex AI and Cloud Run, and the few steps BigQuery cannot do.

Nothing here imports Airflow, a provider or a Google client at module level; the operators in
:mod:`sales_forecast.platforms.gcp_operators` call these functions, and the tests convert the
bodies into the real ``google.cloud.aiplatform_v1`` / ``google.cloud.run_v2`` messages.

The trainer image meets this side exactly as it does locally (see :mod:`sales_forecast.steps`):
the same ``python -m trainer <command>`` arguments, ``bq://project.dataset.table`` URIs for the
warehouse tables and ``gs://<bucket>/runs/<run_key>/...`` for the run's files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sales_forecast.config import GCP_VARIABLES, Settings
from sales_forecast.contract import Contract
from sales_forecast.sqlrender import TableNames, render_sql
from sales_forecast.steps import DataError, RunContext

__all__ = [
    "PRODUCTION_ALIAS",
    "TRAINER_COMMAND",
    "Champion",
    "ConfigError",
    "GcpConfig",
    "GcpRun",
    "NumberedCsv",
    "backtest_args",
    "build_features_summary",
    "cloud_run_job_body",
    "cloud_run_overrides",
    "custom_job_body",
    "deployed_model_body",
    "find_production_model",
    "move_alias",
    "endpoint_body",
    "forecast_summary",
    "label_value",
    "model_upload_body",
    "number_csv",
    "predict_args",
    "query_parameters",
    "resolve_config",
    "sha256_manifest",
    "split_gs_prefix",
    "split_gs_uri",
    "split_statements_verbatim",
    "staging_schema_fields",
    "train_args",
    "validation_summary",
]

PRODUCTION_ALIAS = "production"
# The trainer image's entrypoint, spelled out so the job does not depend on the Dockerfile's
# ENTRYPOINT/CMD split: the job's args are then exactly the local runner's.
TRAINER_COMMAND = ("python", "-m", "trainer")
CLOUD_RUN_CONTAINER = "trainer"
RUNNERS = ("vertex", "cloud_run")
# Columns the load step adds in front of the contract's (validate.sql reads them).
SOURCE_COLUMNS = ("_source_row", "_source_file")


class ConfigError(ValueError):
    """A GCP setting is missing or invalid: the message names the Variable to set."""


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class GcpConfig:
    """The GCP settings of one task run, every template rendered."""

    project: str
    region: str
    bucket: str
    bq_dataset: str
    bq_location: str
    trainer_image: str
    serving_image: str
    service_account: str
    train_machine_type: str
    deploy_machine_type: str
    deploy_min_replicas: int
    deploy_max_replicas: int
    endpoint_display_name: str
    model_name: str
    runner: str
    cloud_run_job: str
    cloud_run_cpu: str
    cloud_run_memory: str
    serving_port: int = 8080
    predict_route: str = "/predict"
    health_route: str = "/health"
    job_timeout_s: int = 6 * 3600

    def require(self, *names: str) -> None:
        """Raise :class:`ConfigError` naming every empty setting among ``names``."""
        missing = [n for n in names if not str(getattr(self, n)).strip()]
        if missing:
            raise ConfigError(
                "GCP settings not configured: "
                + "; ".join(_how_to_set(f"gcp_{n}") for n in missing)
            )


def _how_to_set(setting: str) -> str:
    var = GCP_VARIABLES[setting][0]
    return (
        f"{setting.removeprefix('gcp_')}: set the Airflow Variable {var} (or the environment "
        f"variable AIRFLOW_VAR_{var.upper()} / SF_{setting.upper()})"
    )


def _positive_int(setting: str, raw: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{_how_to_set(setting)} to a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{_how_to_set(setting)} to at least 1, got {value}")
    return value


def resolve_config(
    settings: Settings, render: Callable[[str], str], runner: str | None = None
) -> GcpConfig:
    """Render every ``gcp_*`` setting with the task's template context and check it.

    ``render`` is the operator's own template renderer, so ``{{ var.value.get(...) }}`` reads
    Airflow Variables now, at run time. Required values (project, bucket, trainer image) are
    checked here; the serving image only where it is used (``register``).
    """

    def get(name: str) -> str:
        return str(render(getattr(settings, name)) or "").strip()

    bucket = get("gcp_bucket").removeprefix("gs://").strip("/")
    if "/" in bucket:
        raise ConfigError(f"{_how_to_set('gcp_bucket')} to a bucket name, got {bucket!r}")
    chosen = (runner or get("gcp_runner") or "vertex").strip().lower().replace("-", "_")
    if chosen not in RUNNERS:
        raise ConfigError(
            f"runner {chosen!r} is not one of {RUNNERS}: fix the run's conf 'runner' or "
            + _how_to_set("gcp_runner")
        )
    cfg = GcpConfig(
        project=get("gcp_project"),
        region=get("gcp_region"),
        bucket=bucket,
        bq_dataset=get("gcp_bq_dataset"),
        bq_location=get("gcp_bq_location"),
        trainer_image=get("gcp_trainer_image"),
        serving_image=get("gcp_serving_image"),
        service_account=get("gcp_service_account"),
        train_machine_type=get("gcp_train_machine_type"),
        deploy_machine_type=get("gcp_deploy_machine_type"),
        deploy_min_replicas=_positive_int(
            "gcp_deploy_min_replicas", get("gcp_deploy_min_replicas")
        ),
        deploy_max_replicas=_positive_int(
            "gcp_deploy_max_replicas", get("gcp_deploy_max_replicas")
        ),
        endpoint_display_name=get("gcp_endpoint_display_name"),
        model_name=settings.model_name,
        runner=chosen,
        cloud_run_job=get("gcp_cloud_run_job"),
        cloud_run_cpu=get("gcp_cloud_run_cpu"),
        cloud_run_memory=get("gcp_cloud_run_memory"),
        serving_port=settings.gcp_serving_port,
        predict_route=settings.gcp_predict_route,
        health_route=settings.gcp_health_route,
        job_timeout_s=settings.trainer_timeout_s,
    )
    cfg.require("project", "region", "bucket", "bq_dataset", "bq_location", "trainer_image")
    if cfg.deploy_max_replicas < cfg.deploy_min_replicas:
        raise ConfigError(
            f"deploy_max_replicas ({cfg.deploy_max_replicas}) is below deploy_min_replicas "
            f"({cfg.deploy_min_replicas})"
        )
    return cfg


# ---------------------------------------------------------------- the run


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/path/to/object`` -> ``("bucket", "path/to/object")``."""
    if not uri.startswith("gs://"):
        raise DataError(f"{uri}: not a gs:// URI (the gcp platform reads its inputs from GCS)")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name or name.endswith("/"):
        raise DataError(f"{uri}: expected gs://bucket/path/to/file")
    return bucket, name


def split_gs_prefix(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/folder/`` -> ``("bucket", "some/folder")`` (no trailing slash)."""
    if not uri.startswith("gs://"):
        raise ValueError(f"{uri}: not a gs:// URI")
    bucket, _, path = uri[len("gs://") :].partition("/")
    return bucket, path.strip("/")


def label_value(text: str) -> str:
    """A Vertex AI / Cloud Run label value: lowercase letters, digits, ``_`` and ``-``, <= 63."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:63]


@dataclass(frozen=True)
class Champion:
    """The Vertex AI Model Registry version holding the ``production`` alias."""

    model_id: str  # the parent model's id (last segment of its resource name)
    version: str
    uri: str  # its artifact_uri: the promoted models folder


@dataclass(frozen=True)
class GcpRun:
    """Everything one task run needs to know: config, the run's context and its contract.

    Available to templates as ``sf`` (e.g. ``{{ sf.cfg.project }}``, ``{{ sf.run_key }}``).
    """

    cfg: GcpConfig
    ctx: RunContext
    contract: Contract
    settings: Settings = field(repr=False)

    # -- the run
    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def run_key(self) -> str:
        return self.ctx.run_key

    @property
    def cutoff_date(self) -> str:
        return self.ctx.cutoff_date.isoformat()

    @property
    def input_uri(self) -> str:
        return self.ctx.input_uri

    # -- BigQuery
    @property
    def dataset_ref(self) -> str:
        return f"{self.cfg.project}.{self.cfg.bq_dataset}"

    @property
    def tables(self) -> TableNames:
        return TableNames(self.dataset_ref)

    def table_id(self, table: str) -> str:
        return f"{self.dataset_ref}.{table}"

    def table_uri(self, table: str) -> str:
        """The trainer's URI for a table (``bq://project.dataset.table``)."""
        return f"bq://{self.table_id(table)}"

    def sql(self, name: str) -> str:
        """``sql/<name>.sql`` rendered for this run's contract and dataset (BigQuery dialect)."""
        return render_sql(name, self.contract, self.tables)

    # -- GCS
    @property
    def run_dir(self) -> str:
        return self.ctx.run_dir  # gs://<bucket>/runs/<run_key>

    @property
    def model_dir(self) -> str:
        return f"{self.run_dir}/model"

    @property
    def backtest_dir(self) -> str:
        return f"{self.run_dir}/backtest"

    @property
    def gate_uri(self) -> str:
        return f"{self.backtest_dir}/gate.json"

    @property
    def contract_uri(self) -> str:
        return f"{self.run_dir}/contract.json"

    @property
    def staging_csv_uri(self) -> str:
        """The input re-written with line numbers: what the BigQuery load job reads."""
        return f"{self.run_dir}/staging/input.csv"

    @property
    def staging_object(self) -> str:
        return split_gs_uri(self.staging_csv_uri)[1]

    @property
    def malformed_uri(self) -> str:
        return f"{self.run_dir}/staging/malformed.jsonl"

    @property
    def promoted_dir(self) -> str:
        """Where ``register`` copies the model: stable, never pruned with the run folders."""
        return f"gs://{self.cfg.bucket}/models/{self.cfg.model_name}/{self.run_key}/"

    def job_name(self, command: str) -> str:
        return f"{command}-{self.run_key}"


# ---------------------------------------------------------------- load: numbering the CSV


def staging_schema_fields(contract: Contract) -> list[dict[str, str]]:
    """The staging table's ``schema_fields``: line number and file, then every column as STRING.

    The columns are in the contract's order because :func:`number_csv` writes them in that order
    whatever the input's order was (a positional load would otherwise mis-assign them).
    """
    return [
        {"name": "_source_row", "type": "INT64", "mode": "REQUIRED"},
        {"name": "_source_file", "type": "STRING", "mode": "REQUIRED"},
        *contract.bigquery_schema_fields(all_strings=True),
    ]


@dataclass
class NumberedCsv:
    rows: int = 0
    malformed: list[dict[str, Any]] = field(default_factory=list)


def number_csv(
    src: IO[str], dst: IO[str], *, header: Sequence[str], contract: Contract, source_uri: str
) -> NumberedCsv:
    """Copy a CSV, prefixing every record with its line number and source, columns reordered.

    Why: a BigQuery load job neither keeps the file's order nor can tell a record's line number,
    and the quarantine reports ``<file> line N: <reason>`` exactly as the local platform does.
    Records whose field count is wrong (or that are not UTF-8) are returned in ``malformed``
    with a reason instead of being written, like the local loader's rejects table.
    ``src`` must be opened with ``newline=""`` and ``errors="replace"``.
    """
    # strict: a stray quote is an error for that record, not a silent merge of the lines.
    reader = csv.reader(src, strict=True)
    writer = csv.writer(dst, lineterminator="\n")
    columns = contract.column_names
    order = [list(header).index(c) for c in columns]
    writer.writerow([*SOURCE_COLUMNS, *columns])
    out = NumberedCsv()
    next(reader, None)  # the header, already checked against the contract
    prev_end = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line, prev_end = prev_end + 1, reader.line_num
            out.malformed.append(_malformed(line, "bad quoting", str(exc), ""))
            continue
        line, prev_end = prev_end + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        raw = _raw(record)
        if any("\ufffd" in value for value in record):
            out.malformed.append(_malformed(line, "invalid unicode", "not UTF-8 text", raw))
        elif len(record) != len(header):
            kind = "too many columns" if len(record) > len(header) else "missing columns"
            detail = f"expected {len(header)} fields, found {len(record)}"
            out.malformed.append(_malformed(line, kind, detail, raw))
        else:
            writer.writerow([line, source_uri, *(record[i] for i in order)])
            out.rows += 1
    return out


def _raw(record: list[str]) -> str:
    buf: list[str] = []

    class _W:
        def write(self, s: str) -> None:
            buf.append(s)

    csv.writer(_W(), lineterminator="").writerow(record)
    return "".join(buf)


def _malformed(line: int, kind: str, detail: str, raw: str) -> dict[str, Any]:
    # Same wording as the local loader: "malformed CSV line (<error type>): <detail>".
    return {"source_row": line, "reason": f"malformed CSV line ({kind}): {detail}", "raw_line": raw}


MALFORMED_SCHEMA = [
    {"name": "source_row", "type": "INT64", "mode": "NULLABLE"},
    {"name": "reason", "type": "STRING", "mode": "NULLABLE"},
    {"name": "raw_line", "type": "STRING", "mode": "NULLABLE"},
]


# ---------------------------------------------------------------- SQL steps


def split_statements_verbatim(sql: str) -> list[str]:
    """Split a BigQuery script into its statements, keeping each statement's text as written.

    (``sqlrender.split_statements`` regenerates the SQL through sqlglot; what BigQuery runs here
    must be the .sql file's own text.) Semicolons inside strings and comments do not split.
    """
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import TokenType

    tokens = Dialect.get_or_raise("bigquery").tokenize(sql)
    statements: list[str] = []
    start, has_code = 0, False
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            if has_code:
                statements.append(sql[start : tok.start].strip())
            start, has_code = tok.end + 1, False
        else:
            has_code = True
    if has_code:
        statements.append(sql[start:].strip())
    return statements


def query_parameters(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BigQuery ``queryParameters`` for the named ``@params`` a statement actually uses."""
    out = []
    for name, value in params.items():
        if not re.search(rf"@{re.escape(name)}\b", sql):
            continue
        if isinstance(value, bool):
            kind, text = "BOOL", "true" if value else "false"
        elif isinstance(value, int):
            kind, text = "INT64", str(value)
        elif isinstance(value, float):
            kind, text = "FLOAT64", repr(value)
        elif hasattr(value, "isoformat") and not isinstance(value, str):
            kind, text = "DATE", value.isoformat()
        else:
            kind, text = "STRING", str(value)
        out.append(
            {"name": name, "parameterType": {"type": kind}, "parameterValue": {"value": text}}
        )
    return out


def validation_summary(
    *,
    staged: int,
    rejected: int,
    malformed: int,
    examples: Iterable[Mapping[str, Any]],
    input_uri: str,
    run_id: str,
    max_reject_fraction: float,
) -> tuple[dict[str, Any], str]:
    """The outcome of validation, with the same rules and messages as ``steps.validate``.

    Returns ``(summary, first_problems)``; raises :class:`DataError` when the run must stop.
    """
    total = staged + malformed
    rejected_all = rejected + malformed
    accepted = total - rejected_all
    summary = {
        "rows": total,
        "accepted": accepted,
        "rejected": rejected_all,
        "reject_fraction": round(rejected_all / total, 6) if total else 0.0,
    }
    where = "; ".join(f"{input_uri} line {e['source_row']}: {e['reason']}" for e in examples)
    if accepted == 0:
        raise DataError(f"{input_uri}: no valid rows ({rejected_all} rejected). {where}")
    if rejected_all / total > max_reject_fraction:
        raise DataError(
            f"{input_uri}: {rejected_all} of {total} rows rejected "
            f"({rejected_all / total:.1%} > the {max_reject_fraction:.0%} limit); nothing "
            f"was added to history. See table rejected_rows (run_id={run_id!r}). "
            f"First problems: {where}"
        )
    return summary, where


def build_features_summary(stats: Mapping[str, Any], cutoff: Any, table: str) -> dict[str, Any]:
    """Check the feature table's stats like ``steps.build_features`` (no history -> DataError)."""
    if not stats["rows_in_window"]:
        raise DataError(
            f"no history on or before the cutoff date {cutoff} "
            f"(history starts {stats['first_date']}); nothing to train on"
        )
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in stats.items()}
    out["table"] = table
    return out


def forecast_summary(
    stats: Mapping[str, Any], horizon: int, model_version: str, table: str
) -> dict[str, Any]:
    """Check the forecast rows like ``steps.forecast``: every series, every day of the horizon."""
    if stats["rows_written"] != stats["series"] * horizon:
        raise RuntimeError(
            f"forecast wrote {stats['rows_written']} rows for {stats['series']} series and a "
            f"{horizon}-day horizon: some series or days are missing"
        )
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in stats.items()}
    out.update(model_version=model_version, table=table)
    return out


# ---------------------------------------------------------------- trainer arguments


def _common_job_args(run: GcpRun) -> list[str]:
    # Same flags as steps._common_job_args, with BigQuery and GCS locations.
    return [
        "--data-uri", run.table_uri("daily_sales_features"),
        "--contract", run.contract_uri,
        "--cutoff-date", run.cutoff_date,
        "--horizon", str(run.ctx.horizon),
    ]  # fmt: skip


def train_args(run: GcpRun) -> list[str]:
    return ["train", *_common_job_args(run), "--model-dir", run.model_dir]


def backtest_args(run: GcpRun, champion_dir: str | None) -> list[str]:
    s = run.settings
    args = [
        "backtest",
        *_common_job_args(run),
        "--model-dir", run.model_dir,
        "--n-windows", str(s.backtest_windows),
        "--metric", s.gate_metric,
        "--min-improvement", str(s.gate_min_improvement),
        "--output-dir", run.backtest_dir,
        "--results-uri", run.table_uri("backtest_results"),
        "--run-id", run.run_id,
    ]  # fmt: skip
    if champion_dir:
        args += ["--champion-model-dir", champion_dir]
    return args


def predict_args(run: GcpRun, model_dir: str, model_version: str) -> list[str]:
    args = [
        "predict",
        "--model-dir", model_dir,
        "--data-uri", run.table_uri("daily_sales_features"),
        "--cutoff-date", run.cutoff_date,
        "--horizon", str(run.ctx.horizon),
        "--output-uri", run.table_uri("daily_sales_forecasts"),
        "--run-id", run.run_id,
        "--model-version", model_version,
        # BigQuery has no "next to the output": the meta file goes with the run's files.
        "--meta-uri", f"{run.run_dir}/forecast/forecast_meta.json",
    ]  # fmt: skip
    if run.ctx.future_uri:
        args += ["--future-uri", run.ctx.future_uri]
    return args


# ---------------------------------------------------------------- request bodies


def _labels(run: GcpRun, **extra: str) -> dict[str, str]:
    return {
        "app": "sales-forecast",
        "sf_run": label_value(run.run_key),
        "sf_dataset": label_value(run.contract.name),
        **{k: label_value(v) for k, v in extra.items()},
    }


def custom_job_body(run: GcpRun, command: str, args: Sequence[str]) -> dict[str, Any]:
    """A Vertex AI ``CustomJob`` running the trainer image with ``args``.

    ``base_output_directory`` is the run folder, so Vertex sets ``AIP_MODEL_DIR`` to
    ``<run_dir>/model/`` and ``AIP_CHECKPOINT_DIR`` to ``<run_dir>/checkpoints/``: the same values
    the local runner sets (the args also name the folders explicitly).
    """
    cfg = run.cfg
    job_spec: dict[str, Any] = {
        "worker_pool_specs": [
            {
                "machine_spec": {"machine_type": cfg.train_machine_type},
                "replica_count": 1,
                "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100},
                "container_spec": {
                    "image_uri": cfg.trainer_image,
                    "command": list(TRAINER_COMMAND),
                    "args": list(args),
                    "env": [
                        {"name": "PYTHONUNBUFFERED", "value": "1"},
                        {"name": "SF_RUN_ID", "value": run.run_id},
                    ],
                },
            }
        ],
        "base_output_directory": {"output_uri_prefix": run.run_dir},
        "scheduling": {"timeout": {"seconds": cfg.job_timeout_s}},
    }
    if cfg.service_account:
        job_spec["service_account"] = cfg.service_account
    return {
        "display_name": f"sf-{run.job_name(command)}"[:128],
        "labels": _labels(run, sf_task=command),
        "job_spec": job_spec,
    }


def cloud_run_env(run: GcpRun, command: str) -> dict[str, str]:
    """What Vertex AI would set, set by hand: Cloud Run knows nothing about ``AIP_*``."""
    env = {
        "PYTHONUNBUFFERED": "1",
        "SF_RUN_ID": run.run_id,
        "CLOUD_ML_JOB_ID": run.job_name(command),
    }
    if command == "train":
        env["AIP_MODEL_DIR"] = f"{run.model_dir}/"
        env["AIP_CHECKPOINT_DIR"] = f"{run.run_dir}/checkpoints/"
    return env


def cloud_run_overrides(run: GcpRun, command: str, args: Sequence[str]) -> dict[str, Any]:
    """``RunJobRequest.overrides``: this run's args and env on the shared trainer job."""
    return {
        "container_overrides": [
            {
                "name": CLOUD_RUN_CONTAINER,
                "args": list(args),
                "env": [{"name": k, "value": v} for k, v in cloud_run_env(run, command).items()],
            }
        ],
        "task_count": 1,
        "timeout": {"seconds": run.cfg.job_timeout_s},
    }


def cloud_run_job_body(cfg: GcpConfig) -> dict[str, Any]:
    """The Cloud Run job the ``cloud_run`` runner executes, created/updated from the trainer image.

    One job serves train, backtest and forecast: each execution overrides the args.
    """
    task: dict[str, Any] = {
        "containers": [
            {
                "name": CLOUD_RUN_CONTAINER,
                "image": cfg.trainer_image,
                "command": list(TRAINER_COMMAND),
                "resources": {"limits": {"cpu": cfg.cloud_run_cpu, "memory": cfg.cloud_run_memory}},
            }
        ],
        # A failed trainer run is retried by Airflow (which also re-reads its inputs), not here.
        "max_retries": 0,
        "timeout": {"seconds": cfg.job_timeout_s},
    }
    if cfg.service_account:
        task["service_account"] = cfg.service_account
    return {
        "labels": {"app": "sales-forecast"},
        "template": {"task_count": 1, "template": task},
    }


def model_upload_body(
    run: GcpRun, *, gate: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Vertex AI ``Model`` to upload: the promoted folder served by the serving image.

    ``artifact_uri`` is the promoted models folder (Vertex sets ``AIP_STORAGE_URI`` to a copy of
    it), never the run-scoped folder, which may be pruned. No version alias here: ``deploy``
    moves ``production`` once the version actually serves.
    """
    cfg = run.cfg
    gate = gate or {}
    description = f"run {run.run_id}, cutoff {run.cutoff_date}, dataset {run.contract.name}"
    if gate:
        description += (
            f"; gate {gate.get('metric')}: challenger={gate.get('challenger')} "
            f"baseline={gate.get('baseline')} champion={gate.get('champion')}"
        )
    if metrics:
        description += "; metrics " + json.dumps(metrics, sort_keys=True, default=str)
    return {
        "display_name": cfg.model_name,
        "description": f"Daily sales forecaster ({run.contract.name} contract)",
        "version_description": description[:4000],
        "artifact_uri": run.promoted_dir,
        "container_spec": {
            "image_uri": cfg.serving_image,
            "predict_route": cfg.predict_route,
            "health_route": cfg.health_route,
            "ports": [{"container_port": cfg.serving_port}],
            "env": [{"name": "SF_MODEL_NAME", "value": cfg.model_name}],
        },
        "labels": _labels(run),
    }


def endpoint_body(cfg: GcpConfig) -> dict[str, Any]:
    return {
        "display_name": cfg.endpoint_display_name,
        "description": f"Online forecasts of {cfg.model_name}",
        "labels": {"app": "sales-forecast"},
    }


def deployed_model_body(cfg: GcpConfig, model: str, version: str) -> dict[str, Any]:
    """The ``DeployedModel``: ``model`` is the parent model's resource name.

    Before ``register`` has run (the rendered view) ``model`` is empty: only the resources show.
    """
    body: dict[str, Any] = {
        "model": f"{model}@{version}" if model else "",
        "display_name": f"{cfg.model_name}-v{version}" if model else cfg.model_name,
        "dedicated_resources": {
            "machine_spec": {"machine_type": cfg.deploy_machine_type},
            "min_replica_count": cfg.deploy_min_replicas,
            "max_replica_count": cfg.deploy_max_replicas,
        },
    }
    if cfg.service_account:
        body["service_account"] = cfg.service_account
    return body


# ---------------------------------------------------------------- promotion


def sha256_manifest(files: Mapping[str, bytes], **extra: Any) -> dict[str, Any]:
    """``manifest.json`` of a promoted model folder: the sha256 of every file.

    The serving app verifies these before it loads anything from ``AIP_STORAGE_URI``.
    """
    return {
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


# ---------------------------------------------------------------- Vertex AI Model Registry


def find_production_model(hook: Any, cfg: GcpConfig) -> tuple[str | None, Champion | None]:
    """The parent model (by display name) and its ``production`` version, looked up now.

    ``hook`` is a ``ModelServiceHook``. Returns ``(None, None)`` before the first registration
    and ``(model_id, None)`` while no version holds the alias.
    """
    from google.api_core.exceptions import NotFound

    models = list(
        hook.list_models(
            project_id=cfg.project,
            region=cfg.region,
            filter=f'display_name="{cfg.model_name}"',
        )
    )
    if not models:
        return None, None
    # Versions accumulate under one parent; should two parents share the name, the oldest wins
    # (the one every earlier run registered under).
    parent = min(models, key=lambda m: (str(getattr(m, "create_time", "")), m.name))
    model_id = parent.name.rpartition("/")[-1]
    try:
        version = hook.get_model(
            project_id=cfg.project, region=cfg.region, model_id=f"{model_id}@{PRODUCTION_ALIAS}"
        )
    except NotFound:
        return model_id, None
    return model_id, Champion(
        model_id=model_id, version=str(version.version_id), uri=str(version.artifact_uri)
    )


def move_alias(
    hook: Any, cfg: GcpConfig, model_id: str, version: str, alias: str = PRODUCTION_ALIAS
) -> str | None:
    """Point ``alias`` at ``model_id@version``; return the version that held it before."""
    from google.api_core.exceptions import GoogleAPICallError, NotFound

    try:
        previous = str(
            hook.get_model(
                project_id=cfg.project, region=cfg.region, model_id=f"{model_id}@{alias}"
            ).version_id
        )
    except NotFound:
        previous = None
    if previous == version:
        return previous
    try:
        hook.add_version_aliases(
            project_id=cfg.project,
            region=cfg.region,
            model_id=f"{model_id}@{version}",
            version_aliases=[alias],
        )
    except GoogleAPICallError:
        if previous is None:
            raise
        # An alias names one version; should the API refuse to take it over, release it from the
        # previous holder first (a moment without the alias beats two versions claiming it).
        hook.delete_version_aliases(
            project_id=cfg.project,
            region=cfg.region,
            model_id=f"{model_id}@{previous}",
            version_aliases=[alias],
        )
        hook.add_version_aliases(
            project_id=cfg.project,
            region=cfg.region,
            model_id=f"{model_id}@{version}",
            version_aliases=[alias],
        )
    return previous
