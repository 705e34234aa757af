"""The local tuner's contract with its trials, on a stand-in trainer (fast, deterministic).

The stand-in is a ``trainer`` package in a temporary source tree, run exactly as the real one
(``python -m trainer train ...`` with that tree on PYTHONPATH): it reports its metric through
the real ``hypertune`` library, and fails or hangs on the trial ids a test names. The real
trainer's study runs end to end in test_tuning_e2e.py.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from sales_forecast.errors import DataError
from sales_forecast.platforms.local_tuning import LocalTuner, optuna_distributions, require_trials
from sales_forecast.tuning import SPEC

FAKE_TRAINER = """
import argparse, json, os, sys, time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("command")
parser.add_argument("--model-dir", required=True)
parser.add_argument("--hpt-metric-name", required=True)
parser.add_argument("--data-uri")
parser.add_argument("--num-threads", type=int, required=True)  # the trial's share of the cores
for name in ("learning_rate", "num_leaves", "max_depth", "feature_fraction",
             "bagging_fraction", "n_estimators"):
    parser.add_argument("--" + name, type=float)
args = parser.parse_args()
trial = os.environ["CLOUD_ML_TRIAL_ID"]
log = Path(os.environ["FAKE_LOG"])
with log.open("a") as fh:
    fh.write(json.dumps({"trial": trial, "start": time.time()}) + "\\n")
if trial in os.environ.get("FAKE_FAIL", "").split(","):
    print("boom: a bad trial", file=sys.stderr)
    sys.exit(1)
if trial in os.environ.get("FAKE_HANG", "").split(","):
    time.sleep(60)
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
Path(args.model_dir).mkdir(parents=True, exist_ok=True)
Path(args.model_dir, "params.json").write_text(json.dumps(vars(args)))
import hypertune
# A smooth function of the params with its minimum inside the box.
value = (args.learning_rate - 0.05) ** 2 + ((args.num_leaves - 100) / 1000) ** 2
hypertune.HyperTune().report_hyperparameter_tuning_metric(
    hyperparameter_metric_tag=args.hpt_metric_name, metric_value=value, global_step=1
)
with log.open("a") as fh:
    fh.write(json.dumps({"trial": trial, "end": time.time()}) + "\\n")
"""


@pytest.fixture
def fake_src(tmp_path):
    src = tmp_path / "src"
    (src / "trainer").mkdir(parents=True)
    (src / "trainer" / "__init__.py").write_text("")
    (src / "trainer" / "__main__.py").write_text(textwrap.dedent(FAKE_TRAINER))
    return src


def tuner(tmp_path, src, *, trials=3, parallel=2, timeout=30.0, **env):
    log = tmp_path / "calls.jsonl"
    return LocalTuner(
        python=sys.executable,
        src=src,
        tuning_dir=tmp_path / "run" / "tuning",
        study="sf-hpt-test",
        # As decisions.train_args spells them, with the run's own model folder.
        train_args=["--data-uri", "duckdb://x", "--model-dir", str(tmp_path / "run" / "model")],
        metric="mae",
        trials=trials,
        parallel=parallel,
        trial_timeout_s=timeout,
        env={"FAKE_LOG": str(log), **env},
    )


def calls(tmp_path):
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_trials_run_in_parallel_report_through_hypertune_and_never_touch_the_run_model(
    tmp_path, fake_src, caplog
):
    caplog.set_level("INFO", logger="sales_forecast.platforms.local_tuning")
    t = tuner(tmp_path, fake_src, trials=4, parallel=2, FAKE_SLEEP="1.0")
    out = t.run()
    assert out.counts == {"COMPLETE": 4}
    best = require_trials(out)
    doc = t.trials_doc()
    values = {str(tr["number"]): tr["value"] for tr in doc["trials"]}
    assert best.value == min(values.values()) and values[best.trial] == best.value
    # The value is the one the trial's trainer reported into its own metric file.
    metric_file = t.trial_dir(int(best.trial)) / "hypertune" / "output.metrics"
    (line,) = metric_file.read_text().splitlines()
    assert float(json.loads(line)["mae"]) == best.value
    # Each trial wrote its own model folder; the run's model folder stays empty.
    assert not (tmp_path / "run" / "model").exists()
    for n in range(4):
        written = json.loads((t.trial_dir(n) / "model" / "params.json").read_text())
        assert written["model_dir"] == str(t.trial_dir(n) / "model")
    # Two at a time: some trial started before another had ended.
    starts = {c["trial"]: c["start"] for c in calls(tmp_path) if "start" in c}
    ends = {c["trial"]: c["end"] for c in calls(tmp_path) if "end" in c}
    assert any(starts[a] < ends[b] and starts[b] < ends[a] for a in starts for b in starts if a < b)
    # The sampled parameters follow the one spec.
    import optuna

    study = optuna.load_study(study_name="sf-hpt-test", storage=t.storage_url)
    assert study.trials[0].distributions == optuna_distributions(SPEC)
    assert best.params == {p.name: study.trials[int(best.trial)].params[p.name] for p in SPEC}
    progress = [r.getMessage() for r in caplog.records if "tuning progress" in r.getMessage()]
    assert len(progress) == 4 and progress[-1].startswith("tuning progress: 4/4 trials done")
    assert "best so far: trial" in progress[-1]


def test_a_rerun_resumes_the_stored_study(tmp_path, fake_src):
    first = tuner(tmp_path, fake_src, trials=2, parallel=1).run()
    assert first.counts == {"COMPLETE": 2}
    assert len([c for c in calls(tmp_path) if "start" in c]) == 2
    # The same task again: nothing left to run, the same best trial.
    again = tuner(tmp_path, fake_src, trials=2, parallel=1).run()
    assert again.counts == {"COMPLETE": 2} and again.best == first.best
    assert len([c for c in calls(tmp_path) if "start" in c]) == 2
    # More trials asked for: only the missing one runs.
    more = tuner(tmp_path, fake_src, trials=3, parallel=1).run()
    assert more.counts == {"COMPLETE": 3}
    assert [c["trial"] for c in calls(tmp_path) if "start" in c] == ["0", "1", "2"]


def test_a_failing_trial_is_recorded_failed_and_the_study_goes_on(tmp_path, fake_src):
    t = tuner(tmp_path, fake_src, trials=3, parallel=1, FAKE_FAIL="1")
    out = t.run()
    assert out.counts == {"COMPLETE": 2, "FAIL": 1}
    states = {tr["number"]: tr["state"] for tr in t.trials_doc()["trials"]}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE"}
    failed = next(tr for tr in t.trials_doc()["trials"] if tr["state"] == "FAIL")
    assert "exit 1" in failed["user_attrs"]["reason"] and "boom" in failed["user_attrs"]["reason"]
    assert out.best is not None and out.best.trial in ("0", "2")


def test_a_trial_over_its_time_budget_is_stopped_and_recorded_pruned(tmp_path, fake_src):
    import time

    start = time.monotonic()
    t = tuner(tmp_path, fake_src, trials=2, parallel=1, timeout=3.0, FAKE_HANG="0")
    out = t.run()
    assert time.monotonic() - start < 40  # the 60 s sleep was cut short
    assert out.counts == {"PRUNED": 1, "COMPLETE": 1}
    assert out.best is not None and out.best.trial == "1"
    pruned = t.trials_doc()["trials"][0]
    assert pruned["state"] == "PRUNED" and "time budget" in pruned["user_attrs"]["reason"]


def test_a_study_where_every_trial_failed_is_a_clear_error(tmp_path, fake_src):
    out = tuner(tmp_path, fake_src, trials=2, parallel=2, FAKE_FAIL="0,1").run()
    assert out.counts == {"FAIL": 2}
    with pytest.raises(DataError, match="no trial completed"):
        require_trials(out)


def test_a_trial_left_running_by_a_killed_task_is_recorded_failed_on_resume(tmp_path, fake_src):
    import optuna

    t = tuner(tmp_path, fake_src, trials=2, parallel=1)
    study = t._study()
    study.ask()  # a trial a killed process never finished
    out = t.run()
    assert out.counts == {"FAIL": 1, "COMPLETE": 1}
    assert (
        optuna.load_study(study_name="sf-hpt-test", storage=t.storage_url).trials[0].state.name
        == "FAIL"
    )
