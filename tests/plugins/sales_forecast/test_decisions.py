"""Every step decision, once, as a table of cases (both platforms call these functions)."""

from datetime import date

import pytest
from sales_forecast import decisions
from sales_forecast.errors import DataError

CUTOFF = date(2025, 3, 31)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("staged", "rejected", "malformed", "limit", "expect"),
    [
        (10, 0, 0, 0.2, {"rows": 10, "accepted": 10, "rejected": 0, "reject_fraction": 0.0}),
        (10, 1, 1, 0.2, {"rows": 11, "accepted": 9, "rejected": 2, "reject_fraction": 0.181818}),
        (10, 2, 1, 0.2, "3 of 11 rows rejected (27.3% > the 20% limit); nothing was added"),
        (4, 4, 0, 1.0, "no valid rows (4 rejected)"),
        (0, 0, 3, 1.0, "no valid rows (3 rejected)"),
    ],
)
def test_validation_outcome(staged, rejected, malformed, limit, expect):
    examples = [{"source_row": 3, "reason": "sales is empty"}]
    kwargs = dict(
        staged=staged,
        rejected=rejected,
        malformed=malformed,
        examples=examples,
        input_uri="gs://b/in.csv",
        run_id="r1",
        max_reject_fraction=limit,
    )
    if isinstance(expect, str):
        with pytest.raises(DataError) as err:
            decisions.validation_outcome(**kwargs)
        assert expect in str(err.value)
        assert "gs://b/in.csv line 3: sales is empty" in str(err.value)
        return
    summary, where = decisions.validation_outcome(**kwargs)
    assert summary == expect
    assert where == "gs://b/in.csv line 3: sales is empty"


def test_too_many_rejects_names_the_quarantine_table_and_run():
    with pytest.raises(DataError, match=r"See table rejected_rows \(run_id='r1'\)"):
        decisions.validation_outcome(
            staged=2,
            rejected=1,
            malformed=0,
            examples=[],
            input_uri="in.csv",
            run_id="r1",
            max_reject_fraction=0.2,
        )


# ---------------------------------------------------------------- features


@pytest.mark.parametrize(
    ("last", "stale"),
    [(CUTOFF, False), (date(2025, 3, 24), False), (date(2025, 3, 23), True)],
)
def test_features_outcome_warns_about_stale_data(last, stale):
    stats = {
        "rows_total": 9,
        "rows_in_window": 8,
        "series": 2,
        "first_date": date(2025, 1, 1),
        "last_date": last,
    }
    summary, warning = decisions.features_outcome(stats, CUTOFF, "t")
    assert summary["first_date"] == "2025-01-01" and summary["table"] == "t"
    assert (warning is not None) == stale
    if stale:
        assert f"its last day {last} is 8 days before the cutoff {CUTOFF}" in warning


def test_features_outcome_without_history_before_the_cutoff():
    stats = {
        "rows_total": 3,
        "rows_in_window": 0,
        "series": 0,
        "first_date": date(2025, 5, 1),
        "last_date": None,
    }
    with pytest.raises(DataError, match="history starts 2025-05-01"):
        decisions.features_outcome(stats, CUTOFF, "t")


# ---------------------------------------------------------------- the gate's comparison


@pytest.mark.parametrize(
    ("uri", "champion_key", "expect"),
    [
        (None, None, None),
        ("models/m/3", "run_a", "models/m/3"),
        ("models/m/3", "run_b", None),  # a re-run of the run that produced production
    ],
)
def test_backtest_champion(uri, champion_key, expect):
    chosen, note = decisions.backtest_champion(uri, champion_key, "run_b")
    assert chosen == expect
    assert note


def test_gate_log_reads_the_same_everywhere():
    gate = {
        "passed": False,
        "metric": "wape",
        "challenger": 0.4,
        "baseline": 0.5,
        "champion": 0.3,
        "reason": "not below champion",
    }
    assert decisions.gate_log(gate) == (
        "gate FAILED on wape: challenger=0.4 baseline=0.5 champion=0.3 (not below champion)"
    )


# ---------------------------------------------------------------- which model forecasts


@pytest.mark.parametrize(
    ("passed", "uri", "version", "train_end", "expect_version"),
    [
        (True, "models/m/3", "3", "2025-03-01", "candidate:rk"),  # the gate passed
        (False, None, None, None, "candidate:rk"),  # nothing in production
        (False, "models/m/3", "3", "2025-03-01", "3"),  # the gate failed: production stays
        (False, "models/m/3", "3", "2025-03-31", "3"),  # trained up to the cutoff: fine
        (False, "models/m/3", "3", "2025-04-07", "candidate:rk"),  # backfill: too new
        (False, "models/m/3", "3", None, "candidate:rk"),  # unknown window: treated as too new
    ],
)
def test_forecast_model(passed, uri, version, train_end, expect_version):
    chosen = decisions.forecast_model(
        gate_passed=passed,
        champion_uri=uri,
        champion_version=version,
        champion_train_end=train_end,
        cutoff=CUTOFF,
        candidate_dir="runs/rk/model",
        run_key="rk",
    )
    assert chosen.model_version == expect_version
    assert chosen.model_dir == ("runs/rk/model" if expect_version.startswith("candidate") else uri)
    assert chosen.reason


@pytest.mark.parametrize(
    ("rows", "series", "ok"), [(28, 2, True), (27, 2, False), (0, 0, True), (30, 1, False)]
)
def test_forecast_outcome_checks_every_series_and_day(rows, series, ok):
    stats = {"rows_written": rows, "series": series, "first_date": None, "last_date": None}
    if ok:
        out = decisions.forecast_outcome(stats, 14 if series == 2 else 28, "3", "t")
        assert out["model_version"] == "3" and out["table"] == "t"
    else:
        with pytest.raises(RuntimeError, match="some series or days are missing"):
            decisions.forecast_outcome(stats, 14, "3", "t")


# ---------------------------------------------------------------- trainer arguments


PATHS = decisions.TrainerPaths(
    features_uri="bq://p.d.daily_sales_features",
    forecasts_uri="bq://p.d.daily_sales_forecasts",
    backtest_results_uri="bq://p.d.backtest_results",
    run_dir="gs://b/runs/rk",
    contract_uri="gs://b/runs/rk/contract.json",
    model_dir="gs://b/runs/rk/model",
    backtest_dir="gs://b/runs/rk/backtest",
    forecast_meta_uri="gs://b/runs/rk/forecast/forecast_meta.json",
)
COMMON = [
    "--data-uri", "bq://p.d.daily_sales_features",
    "--contract", "gs://b/runs/rk/contract.json",
    "--cutoff-date", "2025-03-31",
    "--horizon", "14",
]  # fmt: skip


def test_train_args_and_env():
    assert decisions.train_args(PATHS, CUTOFF, 14) == [
        *COMMON,
        "--model-dir",
        "gs://b/runs/rk/model",
    ]
    assert decisions.train_env(PATHS) == {
        "AIP_MODEL_DIR": "gs://b/runs/rk/model/",
        "AIP_CHECKPOINT_DIR": "gs://b/runs/rk/checkpoints/",
    }


@pytest.mark.parametrize("champion", [None, "gs://b/models/m/run_a/"])
def test_backtest_args(champion):
    args = decisions.backtest_args(
        PATHS,
        CUTOFF,
        14,
        run_id="r1",
        n_windows=2,
        metric="wape",
        min_improvement=0.0,
        champion_dir=champion,
    )
    expected = [
        *COMMON,
        "--model-dir", "gs://b/runs/rk/model",
        "--n-windows", "2",
        "--metric", "wape",
        "--min-improvement", "0.0",
        "--output-dir", "gs://b/runs/rk/backtest",
        "--results-uri", "bq://p.d.backtest_results",
        "--run-id", "r1",
    ]  # fmt: skip
    if champion:
        expected += ["--champion-model-dir", champion]
    assert args == expected


@pytest.mark.parametrize("future", [None, "gs://drops/future.csv"])
def test_forecast_args(future):
    args = decisions.forecast_args(
        PATHS,
        CUTOFF,
        14,
        run_id="r1",
        model_dir="gs://b/models/m/run_a/",
        model_version="3",
        future_uri=future,
    )
    expected = [
        "--model-dir", "gs://b/models/m/run_a/",
        "--data-uri", "bq://p.d.daily_sales_features",
        "--cutoff-date", "2025-03-31",
        "--horizon", "14",
        "--output-uri", "bq://p.d.daily_sales_forecasts",
        "--run-id", "r1",
        "--model-version", "3",
        "--meta-uri", "gs://b/runs/rk/forecast/forecast_meta.json",
    ]  # fmt: skip
    if future:
        expected += ["--future-uri", future]
    assert args == expected


# ---------------------------------------------------------------- register, deploy


@pytest.mark.parametrize(
    ("enabled", "passed", "reason"),
    [
        (False, True, "enable_deploy is false"),
        (False, False, "enable_deploy is false"),
        (True, False, "the quality gate did not pass: worse"),
        (True, True, None),
    ],
)
def test_register_skip_reason(enabled, passed, reason):
    got = decisions.register_skip_reason(enabled, {"passed": passed, "reason": "worse"})
    assert got == reason or (reason and got and got.startswith(reason))


@pytest.mark.parametrize(
    ("enabled", "registered", "reason"),
    [
        (False, True, "enable_deploy is false for this run"),
        (True, False, "no model version was registered by this run"),
        (True, True, None),
    ],
)
def test_deploy_skip_reason(enabled, registered, reason):
    assert decisions.deploy_skip_reason(enabled, registered) == reason
