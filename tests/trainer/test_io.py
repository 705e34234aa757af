import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import duckdb
import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.io import (
    fetch_dir,
    parse_table_uri,
    publish_dir,
    read_table,
    write_table,
)


def test_parse_table_uri():
    loc = parse_table_uri("duckdb:///data/wh.duckdb?table=daily_sales_features")
    assert (loc.kind, loc.location, loc.table) == (
        "duckdb",
        "/data/wh.duckdb",
        "daily_sales_features",
    )
    assert parse_table_uri("bq://proj-1.sales.features").kind == "bigquery"
    assert parse_table_uri("gs://bucket/x/panel.parquet").kind == "parquet"
    assert parse_table_uri("/tmp/out.csv").kind == "csv"
    for bad in (
        "duckdb:///x.duckdb",
        "duckdb:///x.duckdb?table=a;drop",
        "bq://onlytwo.parts",
        "s3://b/x.txt",
    ):
        with pytest.raises(TrainerError):
            parse_table_uri(bad)


def test_duckdb_read_pushes_cutoff(retail_duckdb):
    df = read_table(retail_duckdb, date_column="date", cutoff=dt.date(2024, 6, 1))
    assert pd.to_datetime(df["date"]).max() == pd.Timestamp("2024-06-01")
    with pytest.raises(TrainerError, match="not found"):
        read_table(retail_duckdb.replace("daily_sales_features", "nope"))
    with pytest.raises(TrainerError, match="not found"):
        read_table("duckdb:///does/not/exist.duckdb?table=t")


def test_duckdb_compact_read_of_a_window_and_some_columns(retail_duckdb, retail_contract):
    from trainer.features import load_panel

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
    # The trainer's panel reader: contract columns only (no observed temperature), same rows.
    panel = load_panel(retail_duckdb, retail_contract, dt.date(2024, 6, 1))
    assert "temperature" not in panel.columns and panel["date"].max() == pd.Timestamp("2024-06-01")
    assert panel.groupby("series_id", observed=True).size()["S2|C"] == 40 - 29


def test_file_tables_filter_cutoff(tmp_path: Path, retail_panel):
    path = tmp_path / "panel.parquet"
    retail_panel.to_parquet(path)
    df = read_table(str(path), date_column="date", cutoff=dt.date(2024, 6, 1))
    assert pd.to_datetime(df["date"]).max() == pd.Timestamp("2024-06-01")
    csv = tmp_path / "panel.csv"
    retail_panel.to_csv(csv, index=False)
    assert len(read_table(str(csv), date_column="date", cutoff=dt.date(2024, 6, 1))) == len(df)


def _rows(run_id: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": run_id,
            "series_id": [f"s{i}" for i in range(n)],
            "date": pd.Timestamp("2024-07-01"),
            "forecast": [1.0] * n,
        }
    )


def test_duckdb_write_replaces_rows_of_the_run(tmp_path: Path):
    uri = f"duckdb://{tmp_path}/out.duckdb?table=daily_sales_forecasts"
    write_table(_rows("a", 3), uri, replace_where={"run_id": "a"}, date_columns=["date"])
    write_table(_rows("b", 2), uri, replace_where={"run_id": "b"}, date_columns=["date"])
    write_table(_rows("a", 4), uri, replace_where={"run_id": "a"}, date_columns=["date"])
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


def test_duckdb_write_adds_columns_an_older_table_lacks(tmp_path: Path):
    """A forecasts table made before a column existed keeps its rows and gains the column."""
    path = f"{tmp_path}/out.duckdb"
    con = duckdb.connect(path)
    con.execute("CREATE TABLE fc (run_id VARCHAR, date DATE, forecast DOUBLE)")
    con.execute("INSERT INTO fc VALUES ('old', DATE '2024-01-01', 5.0)")
    con.close()
    rows = _rows("new", 2).assign(cutoff_date=pd.Timestamp("2024-01-31"))
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


def test_publish_and_fetch_remote_dir(tmp_path: Path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "a.json").write_text("{}")
    (src / "sub" / "b.bin").write_bytes(b"xyz")
    publish_dir(str(src), "memory://bucket/models/m1")
    with fetch_dir("memory://bucket/models/m1") as local:
        assert sorted(os.listdir(local)) == ["a.json", "sub"]
        assert (Path(local) / "sub" / "b.bin").read_bytes() == b"xyz"
    with pytest.raises(TrainerError):
        with fetch_dir("memory://bucket/models/missing"):
            pass


def test_publish_local_dir_replaces_whole_folder(tmp_path: Path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "old.txt").write_text("old")
    (second / "new.txt").write_text("new")
    target = tmp_path / "out" / "model"
    publish_dir(str(first), str(target))
    publish_dir(str(second), str(target))
    assert sorted(os.listdir(target)) == ["new.txt"]
    assert [p for p in os.listdir(target.parent) if p != "model"] == []


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


class _FakeJob:
    def __init__(self, table=None):
        self._table = table

    def result(self):
        return self

    def to_arrow(self, create_bqstorage_client: bool):
        self.storage = create_bqstorage_client
        return self._table


def test_bigquery_read_pushes_cutoff_and_skips_storage_api_on_emulator(monkeypatch):
    import pyarrow as pa

    from trainer import io

    client = mock.MagicMock()
    job = _FakeJob(pa.table({"date": [dt.date(2024, 1, 1)], "v": [1.0]}))
    client.query.return_value = job
    monkeypatch.setattr(io, "_bq_client", lambda project: (client, True))
    df = read_table("bq://proj.ds.panel", date_column="date", cutoff=dt.date(2024, 1, 31))
    sql = client.query.call_args.args[0]
    assert sql == "SELECT * FROM `proj.ds.panel` WHERE `date` <= @cutoff"
    params = client.query.call_args.kwargs["job_config"].query_parameters
    assert params[0].value == dt.date(2024, 1, 31)
    assert job.storage is False and len(df) == 1


def test_bigquery_write_swaps_run_rows_in_one_transaction(monkeypatch):
    from trainer import io

    client = mock.MagicMock()
    monkeypatch.setattr(io, "_bq_client", lambda project: (client, False))
    write_table(
        _rows("r1", 2), "bq://proj.ds.fc", replace_where={"run_id": "r1"}, date_columns=["date"]
    )
    staging = client.load_table_from_dataframe.call_args.args[1]
    assert staging.startswith("proj.ds._staging_fc_")
    script = client.query.call_args.args[0]
    assert script.startswith("BEGIN TRANSACTION;")
    assert "DELETE FROM `proj.ds.fc` WHERE `run_id` = @p0" in script
    assert f"FROM `{staging}`" in script and script.endswith("COMMIT TRANSACTION;")
    client.delete_table.assert_called_once_with(staging, not_found_ok=True)


def test_duckdb_schema_qualified_tables(tmp_path: Path, retail_panel, duckdb_writer):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("CREATE SCHEMA sales")
    con.close()
    uri = duckdb_writer(retail_panel, tmp_path / "wh.duckdb", table="sales.daily_sales_features")
    assert len(read_table(uri, date_column="date", cutoff=dt.date(2024, 6, 30))) == len(
        retail_panel
    )
    out = f"duckdb://{tmp_path}/wh.duckdb?table=forecasts.daily_sales_forecasts"
    write_table(_rows("a", 2), out, replace_where={"run_id": "a"}, date_columns=["date"])
    assert len(read_table(out)) == 2


def test_bigquery_write_adds_columns_an_older_table_lacks(monkeypatch):
    from google.cloud import bigquery

    from trainer import io

    client = mock.MagicMock()
    table = bigquery.Table("proj.ds.fc", schema=[bigquery.SchemaField("run_id", "STRING")])
    client.create_table.return_value = table
    monkeypatch.setattr(io, "_bq_client", lambda project: (client, False))
    write_table(_rows("r1", 2), "bq://proj.ds.fc", replace_where={"run_id": "r1"})
    updated, fields = client.update_table.call_args.args
    assert fields == ["schema"]
    assert [f.name for f in updated.schema] == ["run_id", "series_id", "date", "forecast"]
