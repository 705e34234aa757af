"""Hyperparameter tuning, written once: the search space, the trial arguments, the best trial.

Both platforms search the same :data:`SPEC`: locally Optuna samples it
(:mod:`sales_forecast.platforms.local_tuning`), on GCP a Vertex AI hyperparameter tuning job
does (:mod:`sales_forecast.platforms.gcp.tuning`). Whichever ran, the best trial becomes a
:class:`BestTrial` written to ``<run>/tuning/best.json``, and the retrain is the ordinary
``train`` job with its params as trainer flags. Nothing here imports Optuna or a cloud SDK at
import time, and nothing does I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sales_forecast.errors import DataError

__all__ = [
    "BEST_FILE",
    "METRICS",
    "SPEC",
    "SOURCE_FILE",
    "TRIALS_FILE",
    "BestTrial",
    "LocalTrial",
    "ParamSpec",
    "TuningRequest",
    "best_from_trials_doc",
    "best_local_trial",
    "best_vertex_trial",
    "parse_tuning_params",
    "read_hpt_metric",
    "retrain_params",
    "study_name",
    "tuned_params",
    "trial_args",
    "vertex_metric_spec",
    "vertex_study_spec",
]

# The metrics a study may minimise (the trainer's --hpt-metric-name choices that suit it).
METRICS = ("mae", "wape")
# <run>/tuning/ holds the study (local: Optuna's SQLite file), the trials, and the pick.
BEST_FILE = "best.json"
TRIALS_FILE = "trials.json"  # GCP: the finished Vertex AI job, as the provider returned it
# <run>/tuning/params_from.json: the study a run's trained params came from (register reads it).
SOURCE_FILE = "params_from.json"

# The limits of the tuning DAG's params (checked again for API-triggered runs).
MAX_TRIALS = 500
MAX_PARALLEL = 64


@dataclass(frozen=True)
class ParamSpec:
    """One tuned LightGBM parameter, by its trainer flag name (underscore spelling)."""

    name: str
    kind: Literal["int", "float"]
    low: float
    high: float
    log: bool = False

    def value(self, raw: Any) -> int | float:
        """A sampled or reported value as the trainer reads it (Vertex reports ints as floats)."""
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise DataError(f"tuned parameter {self.name}={raw!r} is not a number") from None
        if not math.isfinite(number):
            raise DataError(f"tuned parameter {self.name}={raw!r} is not finite")
        return int(round(number)) if self.kind == "int" else number


# The one search space (the predecessor's). LightGBM's max_depth -1 means "no limit".
SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("learning_rate", "float", 0.01, 0.2, log=True),
    ParamSpec("num_leaves", "int", 31, 255),
    ParamSpec("max_depth", "int", -1, 15),
    ParamSpec("feature_fraction", "float", 0.6, 1.0),
    ParamSpec("bagging_fraction", "float", 0.6, 1.0),
    ParamSpec("n_estimators", "int", 200, 2000),
)


@dataclass(frozen=True)
class TuningRequest:
    """The tuning DAG's params, checked."""

    trials: int = 20
    parallel_trials: int = 2
    metric: str = "wape"
    trial_timeout_s: int = 1800


def _int_param(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise DataError(f"param {name}={raw!r} is not an integer") from None
    if isinstance(raw, float) and raw != value:
        raise DataError(f"param {name}={raw!r} is not an integer")
    if not low <= value <= high:
        raise DataError(f"param {name}={value} is out of range ({low}..{high})")
    return value


def parse_tuning_params(params: Mapping[str, Any]) -> TuningRequest:
    """The tuning params of a run (a clear DataError for each bad one)."""
    base = TuningRequest()
    trials = _int_param(params, "trials", base.trials, 1, MAX_TRIALS)
    parallel = _int_param(params, "parallel_trials", base.parallel_trials, 1, MAX_PARALLEL)
    metric = str(params.get("metric") or base.metric).strip().lower()
    if metric not in METRICS:
        raise DataError(f"param metric={metric!r} is not one of {', '.join(METRICS)}")
    timeout = _int_param(params, "trial_timeout_s", base.trial_timeout_s, 10, 24 * 3600)
    return TuningRequest(
        trials=trials,
        parallel_trials=min(parallel, trials),
        metric=metric,
        trial_timeout_s=timeout,
    )


def study_name(run_key: str) -> str:
    """The study's name: one study per tuning run (a re-run of the task resumes it)."""
    return f"sf-hpt-{run_key}"[:128]


# ---------------------------------------------------------------- the spec on each platform


def vertex_study_spec(
    metric: str, spec: Sequence[ParamSpec] = SPEC, algorithm: str | None = None
) -> dict[str, Any]:
    """``HyperparameterTuningJob.study_spec``: the spec in Vertex AI's ``StudySpec`` shape."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    parameters = []
    for p in spec:
        value_spec = (
            {"integer_value_spec": {"min_value": int(p.low), "max_value": int(p.high)}}
            if p.kind == "int"
            else {"double_value_spec": {"min_value": p.low, "max_value": p.high}}
        )
        parameters.append(
            {
                "parameter_id": p.name,
                **value_spec,
                "scale_type": "UNIT_LOG_SCALE" if p.log else "UNIT_LINEAR_SCALE",
            }
        )
    body: dict[str, Any] = {
        "metrics": [{"metric_id": metric, "goal": "MINIMIZE"}],
        "parameters": parameters,
    }
    if algorithm:
        body["algorithm"] = algorithm
    return body


def vertex_metric_spec(metric: str) -> dict[str, str]:
    """The provider operator's ``metric_spec``: metric id -> goal."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return {metric: "minimize"}


# ---------------------------------------------------------------- a trial's job


def trial_args(
    train_args: Sequence[str],
    params: Mapping[str, int | float],
    metric: str,
    *,
    model_dir: str | None,
) -> list[str]:
    """A trial's ``train`` arguments: the run's own, its own model folder, the tuned flags.

    ``train_args`` are :func:`sales_forecast.decisions.train_args` for the run. Its
    ``--model-dir`` (the run's model, which only the retrain writes) is replaced by
    ``model_dir``, or dropped when ``None``: on Vertex AI each trial's ``AIP_MODEL_DIR`` is its
    own folder. A tuned flag given in ``SF_TRAINER_PARAMS`` too is the trial's.
    """
    out: list[str] = []
    tuned = {f"--{name}" for name in params}
    it = iter(train_args)
    for arg in it:
        if arg == "--model-dir" or arg in tuned or arg.replace("_", "-") in tuned:
            next(it, None)
            continue
        out.append(arg)
    if model_dir is not None:
        out += ["--model-dir", model_dir]
    for name, value in sorted(params.items()):
        out += [f"--{name}", repr(value) if isinstance(value, float) else str(value)]
    return [*out, "--hpt-metric-name", metric]


def read_hpt_metric(text: str, metric: str) -> float | None:
    """The last value of ``metric`` in a ``hypertune`` metric file (JSON lines), or None.

    cloudml-hypertune writes one JSON object per report, the value as a string under the
    metric's tag.
    """
    value: float | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            raw = doc[metric]
        except (ValueError, KeyError, TypeError):
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
    return value


# ---------------------------------------------------------------- the best trial


@dataclass(frozen=True)
class BestTrial:
    """The trial the retrain reproduces, and the study it came from (``best.json``)."""

    study: str
    trial: str
    metric: str
    value: float
    params: dict[str, int | float]
    platform: str
    n_trials: int = 0
    n_complete: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> BestTrial:
        try:
            return cls(
                study=str(doc["study"]),
                trial=str(doc["trial"]),
                metric=str(doc["metric"]),
                value=float(doc["value"]),
                params={str(k): v for k, v in dict(doc["params"]).items()},
                platform=str(doc.get("platform", "")),
                n_trials=int(doc.get("n_trials", 0)),
                n_complete=int(doc.get("n_complete", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"best trial record is incomplete: {exc!r}") from None

    @property
    def registry_record(self) -> dict[str, Any]:
        """What the registry keeps about the study that produced a model's params."""
        return {
            "study": self.study,
            "trial": self.trial,
            "metric": self.metric,
            "value": self.value,
            "params": dict(self.params),
            "platform": self.platform,
        }


@dataclass(frozen=True)
class LocalTrial:
    """A finished local trial, as :func:`best_local_trial` needs it (state in Optuna's names)."""

    number: int
    state: str  # COMPLETE, FAIL, PRUNED, RUNNING, WAITING
    value: float | None
    params: Mapping[str, Any]


def _clean_params(raw: Mapping[str, Any], spec: Sequence[ParamSpec]) -> dict[str, int | float]:
    by_name = {p.name: p for p in spec}
    missing = sorted(set(by_name) - set(raw))
    if missing:
        raise DataError(f"the best trial lacks the tuned parameters {missing}")
    return {name: by_name[name].value(raw[name]) for name in by_name}


def best_local_trial(
    trials: Iterable[LocalTrial],
    *,
    study: str,
    metric: str,
    spec: Sequence[ParamSpec] = SPEC,
) -> BestTrial:
    """The complete trial with the lowest finite value (ties: the earlier trial)."""
    trials = list(trials)
    done = [
        t
        for t in trials
        if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)
    ]
    if not done:
        states = sorted({t.state for t in trials})
        raise DataError(
            f"study {study}: no trial completed ({len(trials)} trials, states {states}); "
            "see the tune task's log for the trials' errors"
        )
    best = min(done, key=lambda t: (float(t.value or 0.0), t.number))
    return BestTrial(
        study=study,
        trial=str(best.number),
        metric=metric,
        value=float(best.value or 0.0),
        params=_clean_params(best.params, spec),
        platform="local",
        n_trials=len(trials),
        n_complete=len(done),
    )


def _get(doc: Mapping[str, Any], snake: str) -> Any:
    """A field in either of the shapes the provider returns (snake_case or camelCase)."""
    if snake in doc:
        return doc[snake]
    head, *rest = snake.split("_")
    return doc.get(head + "".join(w.capitalize() for w in rest))


# Vertex AI Trial.State: only a SUCCEEDED trial has a usable final measurement.
_SUCCEEDED = ("SUCCEEDED", 4)


def best_vertex_trial(
    job: Mapping[str, Any], *, metric: str, spec: Sequence[ParamSpec] = SPEC
) -> BestTrial:
    """The best trial of a finished Vertex AI hyperparameter tuning job (a dict of it).

    The provider returns the job's trials, not a best one, as ``to_dict()`` (snake_case) or
    JSON (camelCase) depending on the path; both are read. Trials that did not succeed
    (failed, infeasible, stopped) or lack the metric are ignored. Lowest value wins (the
    metrics are minimised); ties go to the lower trial id.
    """
    trials = _get(job, "trials") or []
    name = str(_get(job, "name") or _get(job, "display_name") or "")
    scored: list[tuple[float, int, str, dict[str, Any]]] = []
    for trial in trials:
        state = _get(trial, "state")
        if state not in _SUCCEEDED:
            continue
        measurement = _get(trial, "final_measurement") or {}
        value = None
        for m in _get(measurement, "metrics") or []:
            if _get(m, "metric_id") == metric:
                value = _get(m, "value")
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            continue
        params = {
            str(_get(p, "parameter_id")): _get(p, "value") for p in _get(trial, "parameters") or []
        }
        trial_id = str(_get(trial, "id") or "")
        order = int(trial_id) if trial_id.isdigit() else len(scored)
        scored.append((number, order, trial_id, params))
    if not scored:
        raise DataError(
            f"tuning job {name or '(unnamed)'}: no trial succeeded with metric {metric} "
            f"({len(trials)} trials)"
        )
    value, _, trial_id, params = min(scored, key=lambda s: (s[0], s[1]))
    return BestTrial(
        study=name,
        trial=trial_id,
        metric=metric,
        value=value,
        params=_clean_params(params, spec),
        platform="vertex",
        n_trials=len(trials),
        n_complete=len(scored),
    )


def best_from_trials_doc(
    doc: Mapping[str, Any], *, metric: str, spec: Sequence[ParamSpec] = SPEC
) -> BestTrial:
    """The best trial of a ``trials.json``: a local study's trials, or a Vertex AI job."""
    if doc.get("platform") == "local":
        trials = []
        for t in doc.get("trials") or []:
            raw = t.get("value")
            trials.append(
                LocalTrial(
                    number=int(t["number"]),
                    state=str(t["state"]),
                    value=None if raw is None else float(raw),
                    params=dict(t.get("params") or {}),
                )
            )
        return best_local_trial(trials, study=str(doc.get("study", "")), metric=metric, spec=spec)
    return best_vertex_trial(doc, metric=metric, spec=spec)


def retrain_params(
    base: Mapping[str, int | float | str], best: BestTrial
) -> dict[str, int | float | str]:
    """The retrain's trainer params: ``SF_TRAINER_PARAMS`` with the best trial's on top."""
    return {**base, **best.params}


def tuned_params(
    saved: Mapping[str, Any], spec: Sequence[ParamSpec] = SPEC
) -> dict[str, int | float]:
    """The tuned LightGBM params in a model's ``params.json`` (its full trainer config)."""
    params = saved.get("params") if isinstance(saved.get("params"), Mapping) else None
    if params is None:
        raise DataError("params.json has no 'params' object")
    return _clean_params(params, spec)
