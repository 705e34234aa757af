"""The tuning decisions written once: the spec, the params, the trial args, the best trial."""

from __future__ import annotations

import json
import math

import pytest
from sales_forecast import tuning
from sales_forecast.errors import DataError
from sales_forecast.tuning import SPEC, BestTrial, LocalTrial

BEST = {
    "learning_rate": 0.0375,
    "num_leaves": 63,
    "max_depth": 7,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.9,
    "n_estimators": 900,
}


def test_the_spec_is_the_predecessors():
    spec = {p.name: (p.kind, p.low, p.high, p.log) for p in SPEC}
    assert spec == {
        "learning_rate": ("float", 0.01, 0.2, True),
        "num_leaves": ("int", 31, 255, False),
        "max_depth": ("int", -1, 15, False),
        "feature_fraction": ("float", 0.6, 1.0, False),
        "bagging_fraction": ("float", 0.6, 1.0, False),
        "n_estimators": ("int", 200, 2000, False),
    }


def test_the_optuna_distributions_follow_the_spec():
    from optuna.distributions import FloatDistribution, IntDistribution
    from sales_forecast.platforms.local_tuning import optuna_distributions

    d = optuna_distributions()
    assert d["learning_rate"] == FloatDistribution(0.01, 0.2, log=True)
    assert d["num_leaves"] == IntDistribution(31, 255)
    assert d["max_depth"] == IntDistribution(-1, 15)
    assert set(d) == {p.name for p in SPEC}


def test_the_vertex_study_spec_follows_the_spec():
    body = tuning.vertex_study_spec("wape")
    assert body["metrics"] == [{"metric_id": "wape", "goal": "MINIMIZE"}]
    by_id = {p["parameter_id"]: p for p in body["parameters"]}
    assert by_id["learning_rate"] == {
        "parameter_id": "learning_rate",
        "double_value_spec": {"min_value": 0.01, "max_value": 0.2},
        "scale_type": "UNIT_LOG_SCALE",
    }
    assert by_id["n_estimators"]["integer_value_spec"] == {"min_value": 200, "max_value": 2000}
    assert tuning.vertex_metric_spec("mae") == {"mae": "minimize"}
    with pytest.raises(ValueError, match="metric must be one of"):
        tuning.vertex_study_spec("rmse")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"trials": 0}, "trials=0 is out of range"),
        ({"trials": "many"}, "trials='many' is not an integer"),
        ({"trials": 2.5}, "is not an integer"),
        ({"trials": 5, "parallel_trials": 0}, "parallel_trials=0 is out of range"),
        ({"trials": 5, "metric": "rmse"}, "metric='rmse' is not one of mae, wape"),
        ({"trials": 5, "trial_timeout_s": 1}, "trial_timeout_s=1 is out of range"),
    ],
)
def test_bad_tuning_params_are_clear_errors(params, error):
    with pytest.raises(DataError, match=error):
        tuning.parse_tuning_params(params)


def test_tuning_params_defaults_and_parallelism_capped_by_trials():
    req = tuning.parse_tuning_params({"trials": 3, "parallel_trials": 8, "metric": "MAE"})
    assert req == tuning.TuningRequest(trials=3, parallel_trials=3, metric="mae")
    assert tuning.parse_tuning_params({"trials": ""}) == tuning.TuningRequest()


def test_trial_args_replace_the_model_dir_and_the_tuned_flags():
    base = [
        "--data-uri", "duckdb://w", "--model-dir", "/runs/r/model",
        "--num_leaves", "15", "--min_child_samples", "5",
    ]  # fmt: skip
    args = tuning.trial_args(base, BEST, "mae", model_dir="/runs/r/tuning/trials/0003/model")
    assert args[:4] == ["--data-uri", "duckdb://w", "--min_child_samples", "5"]
    assert args.count("--model-dir") == 1
    assert args[args.index("--model-dir") + 1] == "/runs/r/tuning/trials/0003/model"
    assert args[args.index("--num_leaves") + 1] == "63"
    assert float(args[args.index("--learning_rate") + 1]) == BEST["learning_rate"]
    assert args[-2:] == ["--hpt-metric-name", "mae"]
    # On Vertex AI each trial's AIP_MODEL_DIR is its own: no --model-dir at all.
    assert "--model-dir" not in tuning.trial_args(base, {}, "wape", model_dir=None)


def test_the_trainer_understands_the_trial_flags():
    from trainer.cli import build_parser

    args = tuning.trial_args(
        ["--data-uri", "x.csv", "--contract", "c.json", "--cutoff-date", "2025-01-01"],
        BEST,
        "wape",
        model_dir="/tmp/m",
    )
    ns = build_parser().parse_args(["train", *args])
    assert {k: getattr(ns, k) for k in BEST} == BEST
    assert ns.hpt_metric_name == "wape" and ns.model_dir == "/tmp/m"


def test_read_hpt_metric_reads_what_hypertune_writes(tmp_path, monkeypatch):
    import hypertune

    path = tmp_path / "m" / "output.metrics"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(path))
    ht = hypertune.HyperTune()
    ht.report_hyperparameter_tuning_metric(hyperparameter_metric_tag="mae", metric_value=3.5)
    ht.report_hyperparameter_tuning_metric(hyperparameter_metric_tag="mae", metric_value=2.25)
    assert tuning.read_hpt_metric(path.read_text(), "mae") == 2.25
    assert tuning.read_hpt_metric(path.read_text(), "wape") is None
    assert tuning.read_hpt_metric("not json\n\n", "mae") is None


def test_the_best_local_trial_ignores_failed_pruned_and_undefined_trials():
    trials = [
        LocalTrial(0, "COMPLETE", 2.0, {**BEST, "num_leaves": 40}),
        LocalTrial(1, "FAIL", None, BEST),
        LocalTrial(2, "PRUNED", 0.1, BEST),
        LocalTrial(3, "COMPLETE", math.nan, BEST),
        LocalTrial(4, "COMPLETE", 1.5, BEST),
        LocalTrial(5, "COMPLETE", 1.5, {**BEST, "num_leaves": 99}),
    ]
    best = tuning.best_local_trial(trials, study="s", metric="mae")
    assert (best.trial, best.value, best.params) == ("4", 1.5, BEST)
    assert (best.n_trials, best.n_complete) == (6, 3)
    with pytest.raises(DataError, match="no trial completed"):
        tuning.best_local_trial(trials[1:3], study="s", metric="mae")


def _vertex_trials(camel: bool) -> dict:
    def key(snake: str) -> str:
        if not camel:
            return snake
        head, *rest = snake.split("_")
        return head + "".join(w.capitalize() for w in rest)

    def trial(tid, state, value, params, metric="mae"):
        t = {
            "id": tid,
            "state": state,
            key("parameters"): [{key("parameter_id"): k, "value": v} for k, v in params.items()],
        }
        if value is not None:
            t[key("final_measurement")] = {"metrics": [{key("metric_id"): metric, "value": value}]}
        return t

    vertex_ints = {k: float(v) for k, v in BEST.items()}  # Vertex reports every value as a float
    return {
        "name": "projects/p/locations/r/hyperparameterTuningJobs/42",
        "trials": [
            trial("1", "SUCCEEDED", 2.0, {**vertex_ints, "num_leaves": 40.0}),
            trial("2", "INFEASIBLE", 0.5, vertex_ints),  # failed trial: ignored
            trial("3", "SUCCEEDED", 1.25, vertex_ints),
            trial("4", "STOPPING", 0.1, vertex_ints),
            trial("5", "SUCCEEDED", 0.2, vertex_ints, metric="wape"),  # not the study's metric
            trial("6", "ACTIVE", None, vertex_ints),
        ],
    }


@pytest.mark.parametrize("camel", [False, True], ids=["snake_case", "camelCase"])
def test_the_best_vertex_trial_from_either_shape(camel):
    job = _vertex_trials(camel)
    best = tuning.best_vertex_trial(job, metric="mae")
    assert best.trial == "3" and best.value == 1.25
    assert best.params == BEST
    assert isinstance(best.params["num_leaves"], int)
    assert best.study.endswith("/42") and best.platform == "vertex"
    # The same record whichever way trials.json holds it.
    assert tuning.best_from_trials_doc({**job, "platform": "vertex"}, metric="mae") == best


def test_the_best_vertex_trial_reads_integer_enum_states():
    job = _vertex_trials(False)
    for t in job["trials"]:
        t["state"] = {"SUCCEEDED": 4, "INFEASIBLE": 5}.get(t["state"], 2)
    assert tuning.best_vertex_trial(job, metric="mae").trial == "3"


def test_a_vertex_job_without_a_succeeded_trial_is_a_clear_error():
    job = _vertex_trials(False)
    job["trials"] = [t for t in job["trials"] if t["state"] != "SUCCEEDED"]
    with pytest.raises(DataError, match="no trial succeeded with metric mae"):
        tuning.best_vertex_trial(job, metric="mae")
    job = _vertex_trials(False)
    for t in job["trials"]:
        t["parameters"] = t["parameters"][:2]
    with pytest.raises(DataError, match="lacks the tuned parameters"):
        tuning.best_vertex_trial(job, metric="mae")


def test_the_retrain_params_put_the_best_trial_over_the_settings():
    best = BestTrial("s", "3", "mae", 1.0, dict(BEST), "local")
    params = tuning.retrain_params({"num_leaves": 15, "min_child_samples": 5}, best)
    assert params == {**BEST, "min_child_samples": 5}
    assert BestTrial.from_dict(json.loads(json.dumps(best.to_dict()))) == best
    with pytest.raises(DataError, match="incomplete"):
        BestTrial.from_dict({"study": "s"})


def test_the_daily_run_reuses_the_newest_tuned_version():
    from sales_forecast.decisions import latest_tuned
    from sales_forecast.platforms.base import ModelVersion

    def v(version, study=""):
        return ModelVersion(name="m", version=version, uri=f"/m/{version}", run_id="r", study=study)

    assert latest_tuned([v("1"), v("2")]) is None
    assert latest_tuned([v("1", "a"), v("10", "b"), v("9", "c"), v("11")]).version == "10"


def test_tuned_params_read_from_a_models_params_json():
    saved = {"params": {**BEST, "min_child_samples": 20}, "horizon": 28}
    assert tuning.tuned_params(saved) == BEST
    with pytest.raises(DataError, match="no 'params'"):
        tuning.tuned_params({"horizon": 28})
