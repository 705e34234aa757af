"""``run_monitor``: one monitoring day's tables written, and a re-run replacing them."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from trainer.monitor import run_monitor

from .test_monitoring import CONTRACT, END, forecasts_from, linear_panel


def test_a_monitoring_day_is_written_once_whatever_the_reruns(tmp_path, duckdb_writer):
    raw = linear_panel(days=120)
    raw["series_id"] = raw["store"] + "|" + raw["item"]
    db = tmp_path / "w.duckdb"
    data = duckdb_writer(raw, db)
    fc = pd.concat(
        [
            forecasts_from(raw, END - pd.Timedelta(days=14), 7, error=1.0),
            forecasts_from(raw, END - pd.Timedelta(days=7), 7, error=2.0),
        ],
        ignore_index=True,
    )
    fc["date"] = fc["date"].dt.date
    fc["cutoff_date"] = pd.to_datetime(fc["cutoff_date"]).dt.date
    con = duckdb.connect(str(db))
    con.register("fc", fc)
    con.execute("CREATE TABLE daily_sales_forecasts AS SELECT * FROM fc")
    con.close()
    uri = f"duckdb://{db}?table="
    kwargs = {
        "data_uri": data,
        "forecasts_uri": uri + "daily_sales_forecasts",
        "contract": CONTRACT,
        "accuracy_uri": uri + "forecast_accuracy",
        "drift_uri": uri + "drift_report",
        "window_days": 14,
        "reference_days": 60,
    }
    day = dt.date(2024, 4, 1)
    first = run_monitor(monitor_date=day, **kwargs)
    again = run_monitor(monitor_date=day, **kwargs)
    assert first == again
    assert first["scored_points"] == 28 and first["by_model"]["3"]["n_points"] == 28
    assert first["by_model"]["3"]["value_added"] > 0.5
    run_monitor(monitor_date=dt.date(2024, 4, 2), **kwargs)
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(
            con.execute(
                "SELECT monitor_date, count(*) FROM forecast_accuracy GROUP BY 1"
            ).fetchall()
        )
        drift_days = con.execute(
            "SELECT count(DISTINCT monitor_date), count(*) FROM drift_report"
        ).fetchone()
    assert counts[dt.date(2024, 4, 1)] == first["accuracy_rows"]
    assert len(counts) == 2 and drift_days == (2, 2 * first["drift_rows"])


def test_the_monitor_command_runs_and_refuses_a_bad_threshold(tmp_path, duckdb_writer, capsys):
    import json

    from trainer.cli import main

    raw = linear_panel(days=60)
    raw["series_id"] = raw["store"] + "|" + raw["item"]
    db = tmp_path / "w.duckdb"
    data = duckdb_writer(raw, db)
    fc = forecasts_from(raw, END - pd.Timedelta(days=7), 7, error=1.0)
    fc.to_parquet(tmp_path / "fc.parquet", index=False)
    contract = tmp_path / "c.json"
    contract.write_text(json.dumps(CONTRACT.to_dict()))
    uri = f"duckdb://{db}?table="
    argv = [
        "monitor", "--data-uri", data, "--forecasts-uri", str(tmp_path / "fc.parquet"),
        "--contract", str(contract), "--monitor-date", "2024-04-01",
        "--accuracy-uri", uri + "forecast_accuracy", "--drift-uri", uri + "drift_report",
        "--window-days", "7", "--reference-days", "30",
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["scored_points"] == 14
    assert main([*argv, "--psi-threshold", "0"]) == 2
    assert "--psi-threshold must be > 0" in capsys.readouterr().err
