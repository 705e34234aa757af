"""The nine steps on the local platform (real files, DuckDB, the folder registry).

The decisions they make are tested case by case in test_decisions.py; here each step is run
through the platform interfaces, and the GCP tests run the same steps through GCS/BigQuery.
"""

import json
from datetime import UTC, date, datetime

import pytest
from sales_forecast import steps
from sales_forecast.errors import DataError, SkipStep
from sales_forecast.platforms.local import build_local_platform
from sales_forecast.run_context import make_run_context

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Local settings on a fresh data root; the test's own folder holds its input files."""
    from sales_forecast import config

    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SF_INPUT_ROOTS", json.dumps([str(tmp_path)]))
    config.get_settings.cache_clear()
    yield config.get_settings()
    config.get_settings.cache_clear()


def ctx_for(settings, tmp_path, input_uri, run_id="manual__2024-03-10T00:00:00+00:00", **params):
    return make_run_context(
        run_id=run_id,
        logical_date=datetime(2024, 3, 10, tzinfo=UTC),
        params={"input_uri": input_uri, **params},
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )


def write_gate(platform, ctx, **gate):
    doc = {"passed": True, "metric": "wape", "reason": "test", "beats_baseline": True, **gate}
    steps.write_json(platform, f"{ctx.backtest_dir}/gate.json", doc)


def test_missing_input_file_is_a_clear_error(settings, tmp_path):
    platform = build_local_platform(settings)
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="input file not found") as err:
        steps.load_to_staging(ctx_for(settings, tmp_path, str(missing)), platform, settings)
    assert str(missing) in str(err.value)


def test_a_folder_without_parquet_files_is_a_clear_error(settings, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    ctx = ctx_for(settings, tmp_path, str(tmp_path))
    with pytest.raises(DataError, match="the folder holds no Parquet files"):
        steps.load_to_staging(ctx, build_local_platform(settings), settings)


def test_load_writes_the_contract_the_trainer_reads(settings, tmp_path):
    from sf_contract.schema import parse_contract

    platform = build_local_platform(settings)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "\n2024-01-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(good))
    out = steps.load_to_staging(ctx, platform, settings)
    assert out["rows"] == 1 and out["malformed"] == 0
    written = json.loads((tmp_path / "runs" / ctx.run_key / "contract.json").read_text())
    assert parse_contract(written).name == "retail"


def test_mostly_bad_file_fails_and_history_is_untouched(settings, tmp_path):
    platform = build_local_platform(settings)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "\n2024-01-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(good))
    steps.load_to_staging(ctx, platform, settings)
    steps.validate(ctx, platform, settings)
    steps.build_features(ctx, platform, settings)
    steps.merge_history(ctx, platform, settings)

    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "\n2024-01-02,S01,I001,x,1.5,false,false,5\n"
        "2024-01-03,S01,I001,4,1.5,false,false,5\n"
    )
    ctx2 = ctx_for(settings, tmp_path, str(bad))
    steps.load_to_staging(ctx2, platform, settings)
    with pytest.raises(DataError) as err:
        steps.validate(ctx2, platform, settings)
    msg = str(err.value)
    assert str(bad) in msg and "line 2" in msg and '"x" is not a valid FLOAT64' in msg
    wh = platform.warehouse
    (n,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
    assert n["n"] == 1  # the earlier good day is still there, nothing from the bad file
    (q,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.rejected_rows}")
    assert q["n"] == 1  # and the bad row is kept for inspection


def test_a_file_with_only_days_after_the_cutoff_fails_validation(settings, tmp_path):
    platform = build_local_platform(settings)
    f = tmp_path / "late.csv"
    f.write_text(HEADER + "\n2024-05-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(f))  # cutoff 2024-03-09
    steps.load_to_staging(ctx, platform, settings)
    with pytest.raises(DataError, match="2024-05-01 is after the cut-off of this run, 2024-03-09"):
        steps.validate(ctx, platform, settings)


def test_history_changes_only_when_the_run_gets_to_merge_history(settings, tmp_path):
    platform = build_local_platform(settings)
    f = tmp_path / "in.csv"
    f.write_text(HEADER + "\n2024-03-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(f))
    wh = platform.warehouse
    steps.load_to_staging(ctx, platform, settings)
    steps.validate(ctx, platform, settings)
    out = steps.build_features(ctx, platform, settings)
    assert out["rows_in_window"] == 1
    (n,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
    assert n["n"] == 0  # a run failing in train or forecast would leave history as it was
    assert steps.merge_history(ctx, platform, settings)["merged"] == 1
    (n,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
    assert n["n"] == 1
    assert not wh.table_exists("staging_checked")  # the run's staging is dropped
    # A retry of merge_history after that finds nothing left to do, and loses nothing.
    assert steps.merge_history(ctx, platform, settings)["merged"] is None
    # build_features re-run after the merge reads history alone.
    assert steps.build_features(ctx, platform, settings)["rows_in_window"] == 1


def test_a_series_with_too_many_unreadable_dates_fails_the_run(settings, tmp_path):
    platform = build_local_platform(settings)
    good = [f"2024-02-{d:02d},S01,I001,3,1.5,false,false,5" for d in range(1, 29)]
    bad = ["02.29.2024,S01,I001,3,1.5,false,false,5"]  # 1 of 29 rows: a day lost, unplaceable
    f = tmp_path / "in.csv"
    f.write_text("\n".join([HEADER, *good, *bad]) + "\n")
    ctx = ctx_for(settings, tmp_path, str(f))
    steps.load_to_staging(ctx, platform, settings)
    with pytest.raises(DataError, match=r"S01\|I001: 1 of 29 rows \(3.4%\)"):
        steps.validate(ctx, platform, settings)


def test_register_and_deploy_skip_without_enable_deploy(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"))
    write_gate(platform, ctx, passed=True)
    with pytest.raises(SkipStep, match="enable_deploy is false"):
        steps.register(ctx, platform, settings)
    with pytest.raises(SkipStep):
        steps.deploy(ctx, platform, settings)


def test_register_skips_when_gate_fails(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"), enable_deploy=True)
    write_gate(platform, ctx, passed=False, reason="worse than production")
    with pytest.raises(SkipStep, match="worse than production"):
        steps.register(ctx, platform, settings)


def _production_model(settings, tmp_path, platform, *, train_end, run_id="manual__earlier"):
    """Register and promote a model folder of another run, trained up to ``train_end``."""
    src = tmp_path / "prod-model"
    src.mkdir()
    (src / "metadata.json").write_text(json.dumps({"train_end": train_end}))
    (src / "model.bin").write_bytes(b"weights")
    version = platform.publisher.register(str(src), run_id=run_id, metrics={}, extra={})
    platform.deployer.deploy(version)
    return platform.registry.get_by_alias("production")


def _arg(args, flag):
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("passed", "train_end", "uses_production"),
    [
        (True, "2024-03-01", False),  # the gate passed: the challenger forecasts
        (False, "2024-03-01", True),  # the gate failed: production stays
        (False, "2024-03-09", True),  # trained up to the cutoff itself: fine
        (False, "2024-03-20", False),  # backfill: production saw days after the cutoff
    ],
)
def test_forecast_uses_production_only_if_it_lost_and_saw_no_later_data(
    settings, tmp_path, passed, train_end, uses_production
):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"))  # cutoff 2024-03-09
    prod = _production_model(settings, tmp_path, platform, train_end=train_end)
    write_gate(platform, ctx, passed=passed)
    job = steps.plan_forecast(ctx, platform, settings)
    assert job.command == "predict"
    if uses_production:
        assert _arg(job.args, "--model-dir") == prod.uri
        assert _arg(job.args, "--model-version") == prod.version
        # Series production does not know (new items) are forecast by this run's model.
        assert _arg(job.args, "--fallback-model-dir") == ctx.model_dir
        assert _arg(job.args, "--fallback-model-version") == f"candidate:{ctx.run_key}"
    else:
        assert _arg(job.args, "--model-dir") == ctx.model_dir
        assert _arg(job.args, "--model-version") == f"candidate:{ctx.run_key}"
    assert job.state["model_version"] == _arg(job.args, "--model-version")


def test_backtest_compares_with_production_but_never_with_itself(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"))
    job = steps.plan_backtest(ctx, platform, settings)
    assert "--champion-model-dir" not in job.args and job.state["champion_version"] is None

    prod = _production_model(settings, tmp_path, platform, train_end="2024-03-01")
    job = steps.plan_backtest(ctx, platform, settings)
    assert _arg(job.args, "--champion-model-dir") == prod.uri
    assert job.state["champion_version"] == prod.version

    rerun = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"), run_id="manual__earlier")
    job = steps.plan_backtest(rerun, platform, settings)
    assert "--champion-model-dir" not in job.args


def test_forecast_fails_fast_on_a_missing_future_file(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(
        settings, tmp_path, str(tmp_path / "x.csv"), future_uri=str(tmp_path / "future.csv")
    )
    write_gate(platform, ctx, passed=True)
    with pytest.raises(DataError, match="future covariates file not found"):
        steps.plan_forecast(ctx, platform, settings)


def test_a_damaged_gate_file_is_a_clear_error(settings, tmp_path):
    from sf_contract.files import FileFormatError

    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"), enable_deploy=True)
    platform.store.write_text(f"{ctx.backtest_dir}/gate.json", '{"passed": tr')
    with pytest.raises(FileFormatError, match="gate.json is not valid JSON"):
        steps.register(ctx, platform, settings)


def test_trainer_jobs_survive_a_round_trip_through_json():
    job = steps.TrainerJob("predict", ["--a", "1"], {"X": "y"}, "predict-r", {"model_version": "3"})
    assert steps.TrainerJob.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_a_production_model_without_metadata_counts_as_too_new(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"))
    prod = _production_model(settings, tmp_path, platform, train_end="2024-03-01")
    import pathlib

    pathlib.Path(prod.uri, "metadata.json").unlink()
    write_gate(platform, ctx, passed=False)
    job = steps.plan_forecast(ctx, platform, settings)
    assert _arg(job.args, "--model-version") == f"candidate:{ctx.run_key}"


def test_a_model_that_lost_to_seasonal_naive_never_writes_the_forecasts(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(tmp_path / "x.csv"))
    write_gate(platform, ctx, passed=False, beats_baseline=False)
    job = steps.plan_forecast(ctx, platform, settings)
    assert "--seasonal-naive" in job.args and "--model-dir" not in job.args
    assert job.state["model_version"] == "seasonal_naive"


def _features(wh, columns="date, sales, is_available"):
    return wh.query(f"SELECT {columns} FROM {wh.tables.daily_sales_features} ORDER BY date")


def test_the_optional_availability_column_may_be_left_out_or_given(settings, tmp_path):
    platform = build_local_platform(settings)
    wh = platform.warehouse
    # The retail header without is_available: loads, every day available (NULL).
    without = tmp_path / "without.csv"
    without.write_text(HEADER + "\n2024-03-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(without), run_id="manual__without")
    assert steps.load_to_staging(ctx, platform, settings)["rows"] == 1
    steps.validate(ctx, platform, settings)
    steps.build_features(ctx, platform, settings)
    assert _features(wh) == [{"date": date(2024, 3, 1), "sales": 3.0, "is_available": None}]
    steps.merge_history(ctx, platform, settings)
    # With it (any column order): a closed day keeps its row, its zero and its flag.
    given = tmp_path / "given.csv"
    given.write_text(
        "is_available," + HEADER + "\n"
        "true,2024-03-02,S01,I001,4,1.5,false,false,5\n"
        "false,2024-03-03,S01,I001,0,1.5,false,false,5\n"
        "maybe,2024-03-04,S01,I001,2,1.5,false,false,5\n"
        + "".join(f",2024-03-{d:02d},S01,I001,2,1.5,false,false,5\n" for d in range(5, 10))
    )
    ctx = ctx_for(settings, tmp_path, str(given), run_id="manual__given")
    steps.load_to_staging(ctx, platform, settings)
    out = steps.validate(ctx, platform, settings)
    assert out["rejected"] == 1  # "maybe" is no BOOL: quarantined with its reason
    (reason,) = wh.query(
        f"SELECT reason FROM {wh.tables.rejected_rows} WHERE run_id = @r", r=ctx.run_id
    )
    assert "is_available" in reason["reason"]
    steps.build_features(ctx, platform, settings)
    rows = _features(wh)
    assert [(r["date"].day, r["is_available"]) for r in rows[:3]] == [
        (1, None),
        (2, True),
        (3, False),
    ]


def test_a_history_table_from_before_a_new_column_gains_it(settings, tmp_path):
    platform = build_local_platform(settings)
    wh = platform.warehouse
    # The table as the older contract made it, holding one day.
    wh.query("CREATE SCHEMA IF NOT EXISTS sales_forecast")
    wh.query(
        f"CREATE TABLE {wh.tables.sales_history} (date DATE, store_id STRING, item_id STRING, "
        "sales FLOAT64, price FLOAT64, on_promo BOOL, is_holiday BOOL, temperature FLOAT64, "
        "_loaded_by_run STRING, _loaded_at TIMESTAMP)"
    )
    wh.query(
        f"INSERT INTO {wh.tables.sales_history} VALUES (DATE '2024-02-29', 'S01', 'I001', 7, "
        "1.5, false, false, 5, 'manual__old', CURRENT_TIMESTAMP())"
    )
    f = tmp_path / "in.csv"
    f.write_text(HEADER + ",is_available\n2024-03-01,S01,I001,3,1.5,false,false,5,false\n")
    ctx = ctx_for(settings, tmp_path, str(f))
    steps.load_to_staging(ctx, platform, settings)
    steps.validate(ctx, platform, settings)
    steps.build_features(ctx, platform, settings)
    assert steps.merge_history(ctx, platform, settings)["merged"] == 1
    rows = wh.query(
        f"SELECT date, sales, is_available FROM {wh.tables.sales_history} ORDER BY date"
    )
    assert rows == [
        {"date": date(2024, 2, 29), "sales": 7.0, "is_available": None},
        {"date": date(2024, 3, 1), "sales": 3.0, "is_available": False},
    ]


def test_a_parquet_input_may_leave_the_optional_column_out(settings, tmp_path):
    import pandas as pd

    platform = build_local_platform(settings)
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-03-01", "2024-03-02"]).date,
            "store_id": "S01",
            "item_id": "I001",
            "sales": [3.0, 4.0],
            "price": 1.5,
            "on_promo": False,
            "is_holiday": False,
            "temperature": 5.0,
        }
    )
    path = tmp_path / "in.parquet"
    frame.to_parquet(path, index=False)
    ctx = ctx_for(settings, tmp_path, str(path))
    assert steps.load_to_staging(ctx, platform, settings)["rows"] == 2
    steps.validate(ctx, platform, settings)
    steps.build_features(ctx, platform, settings)
    rows = _features(platform.warehouse)
    assert [(r["sales"], r["is_available"]) for r in rows] == [(3.0, None), (4.0, None)]
