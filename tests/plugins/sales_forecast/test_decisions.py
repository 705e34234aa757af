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
        "champion_mode": "recipe",
        "champion_version": "3",
        "reason": "kept production: the new model was no better (WAPE 0.384 vs 0.384; lower is "
        "better)",
    }
    assert decisions.gate_log(gate) == (
        "gate FAILED (recipe): kept production v3: the new model was no better (WAPE 0.384 vs "
        "0.384; lower is better)"
    )
    assert (
        decisions.gate_log({"passed": True, "reason": "promoted: x"}) == "gate PASSED: promoted: x"
    )


# ---------------------------------------------------------------- which model forecasts


NAIVE = "seasonal_naive"
CAND = "candidate:rk"


@pytest.mark.parametrize(
    ("passed", "beats", "uri", "train_end", "champ_h", "expect", "fallback"),
    [
        # the gate passed: this run's model, whatever is in production
        (True, True, "models/m/3", "2025-03-01", 14, CAND, None),
        # nothing in production: this run's model if it beat seasonal naive, else naive
        (False, True, None, None, None, CAND, None),
        (False, False, None, None, None, NAIVE, None),
        # the gate failed: production stays; new series get this run's model (or naive)
        (False, True, "models/m/3", "2025-03-01", 14, "3", CAND),
        (False, False, "models/m/3", "2025-03-31", 14, "3", None),
        # production trained past the cutoff (a backfill) or unknown window: not used
        (False, True, "models/m/3", "2025-04-07", 14, CAND, None),
        (False, False, "models/m/3", None, 14, NAIVE, None),
        # production calibrated for fewer days than asked: no intervals, so not used
        (False, True, "models/m/3", "2025-03-01", 7, CAND, None),
        (False, False, "models/m/3", "2025-03-01", 7, NAIVE, None),
        # horizon unknown (an older model): used
        (False, True, "models/m/3", "2025-03-01", None, "3", CAND),
    ],
)
def test_forecast_model(passed, beats, uri, train_end, champ_h, expect, fallback):
    chosen = decisions.forecast_model(
        gate={"passed": passed, "beats_baseline": beats, "metric": "wape", "reason": "r"},
        champion_uri=uri,
        champion_version="3" if uri else None,
        champion_train_end=train_end,
        champion_horizon=champ_h,
        cutoff=CUTOFF,
        horizon=14,
        candidate_dir="runs/rk/model",
        run_key="rk",
    )
    assert chosen.model_version == expect
    assert chosen.model_dir == {CAND: "runs/rk/model", NAIVE: None}.get(expect, uri)
    assert chosen.fallback_version == fallback
    assert chosen.fallback_dir == ("runs/rk/model" if fallback else None)
    assert chosen.reason


def _counts(*per_model):
    return [
        {"model_version": v, "rows": r, "series": n, "first_date": date(2025, 4, 1),
         "last_date": date(2025, 4, 14)}
        for v, r, n in per_model
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("counts", "expected", "ok"),
    [
        (_counts(("3", 28, 2)), 2, True),
        (_counts(("3", 28, 2), (NAIVE, 14, 1)), 3, True),  # a new series by seasonal naive
        (_counts(("3", 28, 2)), 3, False),  # a series of the features has no forecast
        (_counts(("3", 27, 2)), 2, False),  # a day is missing
        (_counts(), 0, True),
    ],
)
def test_forecast_outcome_checks_every_series_and_day(counts, expected, ok):
    if ok:
        out = decisions.forecast_outcome(counts, expected_series=expected, horizon=14, table="t")
        assert out["series"] == expected and out["table"] == "t"
        assert out["series_by_model"] == {c["model_version"]: c["series"] for c in counts}
    else:
        with pytest.raises(RuntimeError, match="some series or days are missing"):
            decisions.forecast_outcome(counts, expected_series=expected, horizon=14, table="t")


@pytest.mark.parametrize(
    ("train_end", "age", "stale"),
    [("2025-03-30", 1, False), ("2025-03-17", 14, False), ("2025-03-16", 15, True),
     (None, None, False), ("garbage", None, False)],
)  # fmt: skip
def test_model_freshness(train_end, age, stale):
    got_age, warning = decisions.model_freshness(train_end, CUTOFF, 14)
    assert got_age == age
    assert (warning is not None) == stale
    if stale:
        assert "SF_MAX_MODEL_AGE_DAYS=14" in warning


@pytest.mark.parametrize(
    ("rows", "fails"),
    [
        ([{"series_id": "a|1", "rows": 100, "unplaced": 2}], False),  # 2% is the limit
        ([{"series_id": "a|1", "rows": 100, "unplaced": 3}], True),
        ([{"series_id": "a|1", "rows": 1, "unplaced": 1}], True),  # a one-day delta's only row
        ([], False),
    ],
)
def test_series_reject_outcome(rows, fails):
    kwargs = dict(max_fraction=0.02, input_uri="in.csv", run_id="r1")
    if fails:
        with pytest.raises(DataError, match=r"a\|1: \d+ of \d+ rows .*SF_MAX_SERIES_REJECT"):
            decisions.series_reject_outcome(rows, **kwargs)
    else:
        decisions.series_reject_outcome(rows, **kwargs)


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


def test_train_args_carry_the_recipe_params():
    args = decisions.train_args(PATHS, CUTOFF, 14, {"num_leaves": 31, "learning_rate": 0.05})
    assert args[-4:] == ["--learning_rate", "0.05", "--num_leaves", "31"]


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
        freshness_tolerance=0.02,
        champion_dir=champion,
    )
    expected = [
        *COMMON,
        "--model-dir", "gs://b/runs/rk/model",
        "--n-windows", "2",
        "--metric", "wape",
        "--min-improvement", "0.0",
        "--freshness-tolerance", "0.02",
        "--output-dir", "gs://b/runs/rk/backtest",
        "--results-uri", "bq://p.d.backtest_results",
        "--run-id", "r1",
    ]  # fmt: skip
    if champion:
        expected += ["--champion-model-dir", champion]
    assert args == expected


@pytest.mark.parametrize(
    ("model", "tail"),
    [
        (decisions.ForecastModel("gs://b/models/m/3/", "3", "r"),
         ["--model-dir", "gs://b/models/m/3/", "--model-version", "3"]),
        (decisions.ForecastModel("gs://b/models/m/3/", "3", "r", "gs://b/runs/rk/model", CAND),
         ["--model-dir", "gs://b/models/m/3/", "--model-version", "3",
          "--fallback-model-dir", "gs://b/runs/rk/model", "--fallback-model-version", CAND]),
        (decisions.ForecastModel(None, NAIVE, "r"), ["--seasonal-naive"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("future", [None, "gs://drops/future.csv"])
def test_forecast_args(model, tail, future):
    args = decisions.forecast_args(PATHS, CUTOFF, 14, run_id="r1", model=model, future_uri=future)
    expected = [
        "--data-uri", "bq://p.d.daily_sales_features",
        "--contract", "gs://b/runs/rk/contract.json",
        "--cutoff-date", "2025-03-31",
        "--horizon", "14",
        "--output-uri", "bq://p.d.daily_sales_forecasts",
        "--run-id", "r1",
        "--meta-uri", "gs://b/runs/rk/forecast/forecast_meta.json",
        *tail,
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
    ("prod_end", "changed", "why"),
    [
        ("2025-04-07", False, "a backfill does not replace it"),
        ("2025-04-07", True, "a backfill does not replace it"),
        ("2025-03-31", False, "nothing fresher to register"),  # a re-run of the same days
        ("2025-03-31", True, None),  # a changed recipe that passed on the same days
        ("2025-03-24", False, None),  # a week newer: the fresher model
        (None, False, None),
    ],
)
def test_only_a_fresher_or_a_better_model_replaces_production(prod_end, changed, why):
    got = decisions.register_skip_reason(
        True,
        {"passed": True, "reason": "ok", "recipe_changed": changed},
        production_train_end=prod_end,
        cutoff=CUTOFF,
        train_end="2025-03-31",
    )
    assert (got is None) if why is None else (why in got)


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
