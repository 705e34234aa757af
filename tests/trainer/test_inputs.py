import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainer.errors import NoRowsError, TrainerError
from trainer.inputs import load_panel, read_future_csv


def test_load_panel_reads_contract_columns_up_to_the_cutoff(retail_duckdb, retail_contract):
    # The trainer's panel reader: contract columns only (no observed temperature), same rows.
    panel = load_panel(retail_duckdb, retail_contract, dt.date(2024, 6, 1))
    assert "temperature" not in panel.columns and panel["date"].max() == pd.Timestamp("2024-06-01")
    assert panel.groupby("series_id", observed=True).size()["S2|C"] == 40 - 29


def test_load_panel_without_rows_is_a_typed_error(retail_duckdb, retail_contract):
    with pytest.raises(NoRowsError, match="no rows on or before the cut-off 2020-01-01"):
        load_panel(retail_duckdb, retail_contract, dt.date(2020, 1, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "store_id,item_id,date,price,colour\nS1,A,2024-07-01,2.0,red\n",
            r"unknown columns \['colour'\]",
        ),
        (
            "store_id,item_id,date,price\nS1,A,2024-07-01,2.0\nS1,A,2024-07-02,cheap\n",
            r"row 3: column 'price': cannot parse 'cheap' as FLOAT64",
        ),
        ("store_id,item_id,date,on_promo\nS1,A,2024-07-01,perhaps\n", r"row 2: column 'on_promo'"),
        ("store_id,item_id,date\nS1,A,2024-07-01\nS1,A,2024-07-01\n", r"rows \[2, 3\]: duplicate"),
        ("store_id,item_id,date,sales\nS1,A,2024-07-01,3\n", "is the target"),
        ("store_id,item_id,date\nS1,A,07/01/2024\n", "cannot parse '07/01/2024' as DATE"),
        ("store_id,date\nS1,2024-07-01\n", r"missing series key columns \['item_id'\]"),
    ],
)
def test_future_csv_validation_names_file_row_and_problem(
    tmp_path: Path, retail_contract, text, message
):
    path = tmp_path / "future.csv"
    path.write_text(text)
    with pytest.raises(TrainerError, match=message) as info:
        read_future_csv(str(path), retail_contract)
    assert str(path) in str(info.value)


def test_future_csv_accepts_observed_and_blank_known(tmp_path: Path, retail_contract):
    path = tmp_path / "future.csv"
    path.write_text("store_id,item_id,date,price,on_promo,temperature\nS1,A,2024-07-01,,yes,30\n")
    future = read_future_csv(str(path), retail_contract)
    assert "temperature" not in future.columns
    assert pd.isna(future.loc[0, "price"]) and future.loc[0, "on_promo"] is True


def test_future_csv_dates_are_strict_iso(tmp_path: Path, retail_contract):
    """The one date rule (sf_contract.parse_date): YYYY-MM-DD, not 20240701 or 2024-W27-1."""
    for text in ("20240701", "2024-W27-1"):
        path = tmp_path / "future.csv"
        path.write_text(f"store_id,item_id,date\nS1,A,{text}\n")
        with pytest.raises(TrainerError, match=f"row 2: column 'date': cannot parse '{text}'"):
            read_future_csv(str(path), retail_contract)


def _quarantined_duckdb(panel: pd.DataFrame, path: Path, writer, rows: list[int]) -> str:
    """The panel with ``rows`` as daily_sales_features writes a quarantined day: NULL, unknown."""
    import duckdb

    frame = panel.copy()
    frame["is_unknown"] = False
    frame.loc[rows, "is_unknown"] = True
    uri = writer(frame, path)
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE daily_sales_features SET sales = NULL WHERE is_unknown")
        assert con.execute(
            "SELECT count(*) FROM daily_sales_features WHERE sales IS NULL"
        ).fetchone()[0] == len(rows)
    finally:
        con.close()
    return uri


def test_a_panel_with_unknown_days_loads_and_trains(
    tmp_path: Path, retail_panel, retail_contract, small_config, duckdb_writer
):
    from trainer.train import run_train

    rng = np.random.default_rng(3)
    rows = sorted(rng.choice(len(retail_panel), size=60, replace=False).tolist())
    uri = _quarantined_duckdb(retail_panel, tmp_path / "w.duckdb", duckdb_writer, rows)
    cutoff = dt.date(2024, 6, 30)
    panel = load_panel(uri, retail_contract, cutoff)
    assert int(panel["is_unknown"].sum()) == 60 and panel["sales"].notna().all()
    summary = run_train(
        panel=panel,
        contract=retail_contract,
        config=small_config,
        cutoff_date=cutoff,
        model_dir=str(tmp_path / "model"),
    )
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert meta["n_unknown_rows"] == metrics["n_unknown_rows"] == 60
    assert meta["n_gap_filled_rows"] == metrics["n_gap_filled_rows"] == 0
    # The validation windows (the last 7 days) score only the days whose actuals are known.
    last_week = panel[panel["date"] > pd.Timestamp(cutoff) - pd.Timedelta(days=7)]
    assert metrics["overall"]["n"] == int((~last_week["is_unknown"]).sum()) < len(last_week)
    assert np.isfinite(summary["metrics"]["wape"]) and summary["intervals"]


def test_a_null_target_without_is_unknown_is_still_an_error(
    tmp_path: Path, retail_panel, retail_contract, duckdb_writer
):
    uri = _quarantined_duckdb(retail_panel, tmp_path / "w.duckdb", duckdb_writer, [7, 8])
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        con.execute("UPDATE daily_sales_features SET is_unknown = FALSE WHERE sales IS NULL")
    finally:
        con.close()
    with pytest.raises(TrainerError, match=r"target 'sales' has 2 null or non-numeric values") as e:
        load_panel(uri, retail_contract, dt.date(2024, 6, 30))
    assert uri in str(e.value)


def test_plain_files_without_is_unknown_load_with_it_false(
    tmp_path: Path, retail_panel, retail_contract
):
    path = tmp_path / "panel.csv"
    retail_panel.drop(columns=["is_gap_filled"]).to_csv(path, index=False)
    panel = load_panel(str(path), retail_contract, dt.date(2024, 6, 30))
    assert panel["is_unknown"].dtype == bool and not panel["is_unknown"].any()
    # A CSV with the column: an empty target on an unknown row reads as NULL and is filled.
    frame = retail_panel.assign(is_unknown=False)
    frame.loc[10, "is_unknown"] = True
    frame.loc[10, "sales"] = np.nan
    frame.to_csv(path, index=False)
    panel = load_panel(str(path), retail_contract, dt.date(2024, 6, 30))
    assert int(panel["is_unknown"].sum()) == 1
    assert panel.loc[panel["is_unknown"], "sales"].item() == retail_panel.loc[3, "sales"]
