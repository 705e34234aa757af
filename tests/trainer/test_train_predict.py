import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from trainer.config import TrainerConfig
from trainer.errors import TrainerError
from trainer.inputs import load_panel
from trainer.predict import run_predict
from trainer.train import run_train

CUTOFF = dt.date(2024, 6, 23)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, retail_contract, small_config, panel_factory, duckdb_writer):
    """A model trained through CUTOFF on a panel that runs a week past it."""
    root = tmp_path_factory.mktemp("trained")
    data_uri = duckdb_writer(panel_factory(), root / "warehouse.duckdb")
    panel = load_panel(data_uri, retail_contract, CUTOFF)
    model_dir = str(root / "model")
    summary = run_train(
        panel=panel,
        contract=retail_contract,
        config=small_config,
        cutoff_date=CUTOFF,
        model_dir=model_dir,
        data_uri=data_uri,
    )
    return {"root": root, "data_uri": data_uri, "model_dir": model_dir, "summary": summary}


def test_train_writes_model_folder(trained, small_config):
    model_dir = Path(trained["model_dir"])
    files = {str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()}
    assert {
        "metadata.json",
        "metrics.json",
        "params.json",
        "forecaster.json",
        "series_state.parquet",
        "conformity_scores.parquet",
        "mlforecast/ts.pkl",
        "mlforecast/models.pkl",
    } <= files
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics["overall"]) == {"mae", "rmse", "wape", "mase", "bias", "n"}
    assert set(metrics["buckets"]) == {"day_1", "days_1_7"}
    assert set(metrics["baseline"]["overall"]) == set(metrics["overall"])
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["training_window"] == {"first_date": "2023-12-14", "last_date": "2024-06-23"}
    assert meta["n_series"] == 6 and meta["horizon"] == 7 and meta["levels"] == [80, 95]
    assert meta["contract"]["name"] == "retail"
    assert {"lightgbm", "mlforecast", "python"} <= set(meta["library_versions"])
    assert meta["feature_spec"]["excluded"][0]["column"] == "temperature"
    params = json.loads((model_dir / "params.json").read_text())
    assert TrainerConfig.from_dict(params) == small_config


def test_hypertune_metric_is_reported(
    tmp_path: Path, monkeypatch, retail_contract, small_config, retail_duckdb
):
    from dataclasses import replace

    metric_file = tmp_path / "hpt" / "metrics"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(metric_file))
    config = replace(small_config, hpt_metric_name="mae", interval_windows=2)
    summary = run_train(
        panel=load_panel(retail_duckdb, retail_contract, CUTOFF),
        contract=retail_contract,
        config=config,
        cutoff_date=CUTOFF,
        model_dir=str(tmp_path / "model"),
    )
    line = json.loads(metric_file.read_text().strip().splitlines()[-1])
    assert float(line["mae"]) == pytest.approx(summary["metrics"]["mae"])


def _count(db: str, table: str = "daily_sales_forecasts") -> dict[str, int]:
    con = duckdb.connect(db, read_only=True)
    try:
        return dict(con.execute(f"SELECT run_id, count(*) FROM {table} GROUP BY 1").fetchall())
    finally:
        con.close()


def test_predict_to_duckdb_replaces_the_same_cutoff(trained, tmp_path: Path):
    db = tmp_path / "out.duckdb"
    out_uri = f"duckdb://{db}?table=daily_sales_forecasts"
    kwargs = dict(
        model_dir=trained["model_dir"], cutoff_date=CUTOFF, output_uri=out_uri, model_version="3"
    )
    run_predict(run_id="r1", **kwargs)
    run_predict(run_id="r1", **kwargs)
    assert _count(str(db)) == {"r1": 42}
    # Another run from the same data (a second manual trigger) replaces it: one forecast per
    # (origin, series, day), the origin being the last day of data, not the run's calendar.
    run_predict(run_id="r2", **kwargs)
    assert _count(str(db)) == {"r2": 42}
    # A run a day later on the same data is the same forecast: it replaces, not duplicates.
    later = run_predict(run_id="r9", **{**kwargs, "cutoff_date": CUTOFF + dt.timedelta(days=1)})
    assert _count(str(db)) == {"r9": 42}
    assert later["origin_date"] == CUTOFF.isoformat() and later["data_days_before_cutoff"] == 1
    run_predict(run_id="r2", **kwargs)
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [r[0] for r in con.execute("DESCRIBE daily_sales_forecasts").fetchall()]
        frame = con.execute("SELECT * FROM daily_sales_forecasts WHERE run_id = 'r2'").df()
    finally:
        con.close()
    assert cols == [
        "run_id", "model_version", "cutoff_date", "series_id", "store_id", "item_id", "date",
        "forecast",
        "lower_80", "upper_80", "lower_95", "upper_95", "created_at",
    ]  # fmt: skip
    assert not frame["forecast"].isna().any() and (frame["forecast"] >= 0).all()
    meta = json.loads((tmp_path / "forecast_meta_r2.json").read_text())
    assert meta["filled_total"] == 3 * 42 and meta["filled_values"]["price"] == 42


def test_predict_updates_from_newer_data_and_uses_future_file(trained, tmp_path: Path):
    future = tmp_path / "future.csv"
    future.write_text(
        "store_id,item_id,date,on_promo,price\nS1,A,2024-07-01,true,2.0\nS1,A,2024-09-01,true,2.0\n"
    )
    out = tmp_path / "fc" / "forecast.parquet"
    summary = run_predict(
        model_dir=trained["model_dir"],
        cutoff_date=dt.date(2024, 6, 30),
        data_uri=trained["data_uri"],
        future_uri=str(future),
        output_uri=str(out),
        run_id="r3",
        model_version="3",
    )
    frame = pd.read_parquet(out)
    assert len(frame) == 42 and frame["date"].min() == dt.date(2024, 7, 1)
    assert summary["history_rows_applied"] == 6 * 7
    assert summary["filled_values"] == {"price": 41, "on_promo": 41, "is_holiday": 42}
    assert summary["ignored_future_rows"] == 1
    assert (tmp_path / "fc" / "forecast_meta.json").exists()


def test_predict_rejects_model_newer_than_cutoff_and_bad_future(trained, tmp_path: Path):
    out = str(tmp_path / "x.parquet")
    with pytest.raises(TrainerError, match="after the cut-off"):
        run_predict(
            model_dir=trained["model_dir"],
            cutoff_date=dt.date(2024, 6, 1),
            output_uri=out,
            run_id="r",
            model_version="1",
        )
    bad = tmp_path / "bad.csv"
    bad.write_text("store_id,item_id,date,price\nS1,A,2024-06-24,two\n")
    with pytest.raises(TrainerError, match="row 2: column 'price'"):
        run_predict(
            model_dir=trained["model_dir"],
            cutoff_date=CUTOFF,
            future_uri=str(bad),
            output_uri=out,
            run_id="r",
            model_version="1",
        )
    assert not os.path.exists(out)


def test_no_leakage_through_the_cutoff(
    trained, tmp_path: Path, retail_contract, small_config, panel_factory, duckdb_writer
):
    """Altering the panel after the cut-off changes nothing a cut-off run produces."""
    altered = panel_factory()
    later = altered["date"] > pd.Timestamp(CUTOFF)
    altered.loc[later, "sales"] = altered.loc[later, "sales"] * 5 + 50
    altered.loc[later, "on_promo"] = ~altered.loc[later, "on_promo"]
    other_uri = duckdb_writer(altered, tmp_path / "altered.duckdb")
    model_dir = str(tmp_path / "model")
    run_train(
        panel=load_panel(other_uri, retail_contract, CUTOFF),
        contract=retail_contract,
        config=small_config,
        cutoff_date=CUTOFF,
        model_dir=model_dir,
    )
    frames = []
    for mdir, data in ((trained["model_dir"], trained["data_uri"]), (model_dir, other_uri)):
        out = tmp_path / f"{len(frames)}.parquet"
        run_predict(
            model_dir=mdir,
            cutoff_date=CUTOFF,
            data_uri=data,
            output_uri=str(out),
            run_id="r",
            model_version="1",
        )
        frames.append(pd.read_parquet(out).drop(columns=["created_at"]))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    metrics = [
        json.loads((Path(d) / "metrics.json").read_text())
        for d in (trained["model_dir"], model_dir)
    ]
    assert metrics[0]["overall"] == metrics[1]["overall"]
