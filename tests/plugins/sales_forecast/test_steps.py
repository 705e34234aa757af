from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sales_forecast import steps
from sales_forecast.contract import load_contract
from sales_forecast.platforms.local import build_local_platform

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"


def ctx_for(settings, tmp_path, input_uri, **params):
    return steps.make_run_context(
        run_id="manual__2024-03-10T00:00:00+00:00",
        logical_date=datetime(2024, 3, 10, tzinfo=UTC),
        params={"input_uri": input_uri, **params},
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )


def test_run_context_dates_and_defaults(settings, tmp_path):
    ctx = ctx_for(settings, tmp_path, "x.csv")
    assert ctx.run_date == date(2024, 3, 10)
    assert ctx.cutoff_date == date(2024, 3, 9)  # the last complete day
    assert ctx.horizon == 28 and ctx.dataset == "retail" and ctx.enable_deploy is False
    assert ctx.future_uri is None
    assert ctx.run_key == "manual__2024-03-10T00_00_00_00_00"
    assert "/" not in ctx.run_key and ":" not in ctx.run_key


def test_run_date_converts_at_the_utc_day_boundary(settings, tmp_path):
    # 23:30 in New York on the 9th is already the 10th in UTC.
    ny = timezone(timedelta(hours=-5))
    ctx = steps.make_run_context(
        run_id="r",
        logical_date=datetime(2024, 3, 9, 23, 30, tzinfo=ny),
        params={},
        settings=settings,
        runs_root=str(tmp_path),
    )
    assert ctx.run_date == date(2024, 3, 10)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"horizon": 0}, "out of range"),
        ({"horizon": "ten"}, "not an integer"),
        ({"cutoff_date": "10/03/2024"}, "not a YYYY-MM-DD date"),
    ],
)
def test_bad_params_are_clear_errors(settings, tmp_path, params, message):
    with pytest.raises(steps.DataError, match=message):
        ctx_for(settings, tmp_path, "x.csv", **params)


def test_explicit_cutoff(settings, tmp_path):
    assert ctx_for(settings, tmp_path, "x", cutoff_date="2024-01-31").cutoff_date == date(
        2024, 1, 31
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "input file not found"),
        ("", "the file is empty"),
        (HEADER + "\n", "header but no data rows"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_unusable_files(tmp_path, content, message):
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(steps.DataError, match=message) as err:
        steps.read_csv_header(str(path))
    assert str(path) in str(err.value)


def test_header_mismatch_names_the_problem():
    contract = load_contract("retail")
    header = [*HEADER.split(",")[:-1], "humidity", "sales"]
    with pytest.raises(steps.DataError) as err:
        steps.check_header(header, contract, "f.csv")
    msg = str(err.value)
    assert "f.csv: line 1 (header)" in msg
    assert "missing columns ['temperature']" in msg
    assert "unknown columns ['humidity']" in msg
    assert "duplicate columns ['sales']" in msg
    steps.check_header(list(reversed(HEADER.split(","))), contract, "f.csv")  # order is free


def test_mostly_bad_file_fails_and_history_is_untouched(settings, tmp_path):
    platform = build_local_platform(settings)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "\n2024-01-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(good))
    steps.load_to_staging(ctx, platform)
    steps.validate(ctx, platform, settings)
    steps.build_features(ctx, platform)

    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "\n2024-01-02,S01,I001,x,1.5,false,false,5\n"
        "2024-01-03,S01,I001,4,1.5,false,false,5\n"
    )
    ctx2 = ctx_for(settings, tmp_path, str(bad))
    steps.load_to_staging(ctx2, platform)
    with pytest.raises(steps.DataError) as err:
        steps.validate(ctx2, platform, settings)
    msg = str(err.value)
    assert str(bad) in msg and "line 2" in msg and '"x" is not a valid FLOAT64' in msg
    wh = platform.warehouse
    (n,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
    assert n["n"] == 1  # the earlier good day is still there, nothing from the bad file
    (q,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.rejected_rows}")
    assert q["n"] == 1  # and the bad row is kept for inspection


def test_no_history_before_cutoff_is_a_clear_error(settings, tmp_path):
    platform = build_local_platform(settings)
    f = tmp_path / "late.csv"
    f.write_text(HEADER + "\n2024-05-01,S01,I001,3,1.5,false,false,5\n")
    ctx = ctx_for(settings, tmp_path, str(f))
    steps.load_to_staging(ctx, platform)
    steps.validate(ctx, platform, settings)
    with pytest.raises(steps.DataError, match="no history on or before the cutoff"):
        steps.build_features(ctx, platform)


def test_register_and_deploy_skip_without_enable_deploy(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, "x.csv")
    steps._write_json(f"{ctx.run_dir}/backtest/gate.json", {"passed": True})
    with pytest.raises(steps.SkipStep, match="enable_deploy is false"):
        steps.register(ctx, platform)
    with pytest.raises(steps.SkipStep):
        steps.deploy(ctx, platform)


def test_register_skips_when_gate_fails(settings, tmp_path):
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, "x.csv", enable_deploy=True)
    steps._write_json(
        f"{ctx.run_dir}/backtest/gate.json", {"passed": False, "reason": "worse than production"}
    )
    with pytest.raises(steps.SkipStep, match="worse than production"):
        steps.register(ctx, platform)
