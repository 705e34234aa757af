import datetime as dt
from pathlib import Path

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
