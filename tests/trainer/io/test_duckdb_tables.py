import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.io.tables import read_table, write_table


def test_duckdb_read_pushes_cutoff(retail_duckdb):
    df = read_table(retail_duckdb, date_column="date", cutoff=dt.date(2024, 6, 1))
    assert pd.to_datetime(df["date"]).max() == pd.Timestamp("2024-06-01")
    with pytest.raises(TrainerError, match="not found"):
        read_table(retail_duckdb.replace("daily_sales_features", "nope"))
    with pytest.raises(TrainerError, match="not found"):
        read_table("duckdb:///does/not/exist.duckdb?table=t")


def test_duckdb_compact_read_of_a_window_and_some_columns(retail_duckdb):
    df = read_table(
        retail_duckdb,
        date_column="date",
        cutoff=dt.date(2024, 6, 1),
        since=dt.date(2024, 5, 1),
        columns=["series_id", "date", "sales", "nope"],
        compact=True,
    )
    assert list(df.columns) == ["series_id", "date", "sales"]
    assert isinstance(df["series_id"].dtype, pd.CategoricalDtype)
    days = pd.to_datetime(df["date"])
    assert days.min() == pd.Timestamp("2024-05-01") and days.max() == pd.Timestamp("2024-06-01")


def test_duckdb_write_replaces_rows_of_the_run(tmp_path: Path, forecast_rows):
    uri = f"duckdb://{tmp_path}/out.duckdb?table=daily_sales_forecasts"
    write_table(forecast_rows("a", 3), uri, replace_where={"run_id": "a"}, date_columns=["date"])
    write_table(forecast_rows("b", 2), uri, replace_where={"run_id": "b"}, date_columns=["date"])
    write_table(forecast_rows("a", 4), uri, replace_where={"run_id": "a"}, date_columns=["date"])
    con = duckdb.connect(f"{tmp_path}/out.duckdb", read_only=True)
    try:
        counts = dict(
            con.execute("SELECT run_id, count(*) FROM daily_sales_forecasts GROUP BY 1").fetchall()
        )
        types = dict(
            con.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall()
        )
    finally:
        con.close()
    assert counts == {"a": 4, "b": 2}
    assert types["date"] == "DATE"


def test_duckdb_write_adds_columns_an_older_table_lacks(tmp_path: Path, forecast_rows):
    """A forecasts table made before a column existed keeps its rows and gains the column."""
    path = f"{tmp_path}/out.duckdb"
    con = duckdb.connect(path)
    con.execute("CREATE TABLE fc (run_id VARCHAR, date DATE, forecast DOUBLE)")
    con.execute("INSERT INTO fc VALUES ('old', DATE '2024-01-01', 5.0)")
    con.close()
    rows = forecast_rows("new", 2).assign(cutoff_date=pd.Timestamp("2024-01-31"))
    write_table(
        rows, f"duckdb://{path}?table=fc", replace_where={"cutoff_date": dt.date(2024, 1, 31)},
        date_columns=["date", "cutoff_date"],
    )  # fmt: skip
    con = duckdb.connect(path, read_only=True)
    try:
        got = con.execute("SELECT run_id, cutoff_date FROM fc ORDER BY run_id").fetchall()
    finally:
        con.close()
    assert got[-1] == ("old", None)
    assert {r for r, _ in got} == {"new", "old"} and len(got) == 3


def test_duckdb_schema_qualified_tables(tmp_path: Path, retail_panel, duckdb_writer, forecast_rows):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("CREATE SCHEMA sales")
    con.close()
    uri = duckdb_writer(retail_panel, tmp_path / "wh.duckdb", table="sales.daily_sales_features")
    assert len(read_table(uri, date_column="date", cutoff=dt.date(2024, 6, 30))) == len(
        retail_panel
    )
    out = f"duckdb://{tmp_path}/wh.duckdb?table=forecasts.daily_sales_forecasts"
    write_table(forecast_rows("a", 2), out, replace_where={"run_id": "a"}, date_columns=["date"])
    assert len(read_table(out)) == 2


_HOLD_LOCK = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS t AS SELECT DATE '2024-01-01' AS date, 1 AS v")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_reader_retries_while_another_process_holds_the_lock(tmp_path: Path):
    path = tmp_path / "busy.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path), "1.0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        df = read_table(f"duckdb://{path}?table=t", date_column="date", cutoff=dt.date(2024, 1, 1))
        assert len(df) == 1
        assert time.monotonic() - start > 0.3  # it had to wait for the writer
    finally:
        holder.wait(timeout=30)


def test_quote_doubles_embedded_quotes_and_keeps_dots():
    from trainer.io.duckdb_tables import _quote, _quote_table

    assert _quote('a"b') == '"a""b"'
    assert _quote("a.b") == '"a.b"'  # a column name with a dot is one name
    assert _quote_table("s.t") == '"s"."t"'


def test_a_hostile_column_name_is_data_not_sql(tmp_path: Path):
    """A hand-made contract or frame column cannot end the quoted identifier (review §3)."""
    path = tmp_path / "out.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE victim AS SELECT 1 AS v")
    con.close()
    evil = 'x" DOUBLE); DROP TABLE victim; --'
    day = 'd"ay'
    df = pd.DataFrame(
        {"run_id": ["a"], day: [pd.Timestamp("2024-01-02")], evil: [1.5], "dotted.name": [2.0]}
    )
    uri = f"duckdb://{path}?table=t"
    write_table(df, uri, replace_where={"run_id": "a"}, date_columns=[day])
    write_table(df, uri, replace_where={"run_id": "a"}, date_columns=[day])  # ALTER, DELETE
    back = read_table(uri, date_column=day, cutoff=dt.date(2024, 1, 2), columns=[evil, day])
    assert list(back.columns) == [day, evil] and back[evil].tolist() == [1.5]
    assert read_table(uri, date_column=day, cutoff=dt.date(2024, 1, 1)).empty
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        cols = [r[0] for r in con.execute("DESCRIBE t").fetchall()]
    finally:
        con.close()
    assert tables == {"victim", "t"}
    assert cols == ["run_id", day, evil, "dotted.name"]
