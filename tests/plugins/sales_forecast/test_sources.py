"""Inputs that are not CSV files: a Parquet file or folder (locally, for real, in DuckDB) and a
BigQuery table (the request shapes; the emulator suite does not cover them).

Every kind goes through the same contract, validation and quarantine as a CSV: the tests load
the same rows as a CSV and as Parquet and compare what validation accepts and rejects.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlglot
from sales_forecast import steps
from sales_forecast.errors import DataError
from sales_forecast.platforms.gcp.load import parquet_load_config
from sales_forecast.platforms.local import build_local_platform
from sales_forecast.run_context import make_run_context
from sales_forecast.sources import (
    SourceColumn,
    SourceKind,
    parse_bq_uri,
    row_word,
    source_kind,
    staged_columns,
)
from sales_forecast.sqlrender import TableNames, render_sql

from sf_contract.schema import parse_contract
from tests._support.contracts import POS_HEADER, pos_contract_doc


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("/data/sales.csv", SourceKind.CSV),
        ("/data/sales.CSV", SourceKind.CSV),
        ("/data/export", SourceKind.CSV),  # a folder is spelt with "/" once it is checked
        ("/data/sales.parquet", SourceKind.PARQUET),
        ("/data/sales.PQ", SourceKind.PARQUET),
        ("/data/drops/", SourceKind.PARQUET),
        ("gs://b/drops/", SourceKind.PARQUET),
        ("gs://b/x.parquet", SourceKind.PARQUET),
        ("bq://my-project.sales.daily", SourceKind.BIGQUERY),
        ("BQ://my-project.sales.daily", SourceKind.BIGQUERY),
    ],
)
def test_the_kind_of_input_comes_from_its_spelling(uri, kind):
    assert source_kind(uri) is kind
    assert row_word(uri) == ("line" if kind is SourceKind.CSV else "row")


@pytest.mark.parametrize(
    "uri",
    [
        "bq://my-project.sales",
        "bq://My-Project.sales.daily",
        "bq://my-project.sa-les.daily",
        "bq://my-project.sales.da`ily",
        "bq://my-project.sales.daily; DROP TABLE x",
        "bq://my-project.sales.daily.extra",
        "bq://p.sales.daily",  # project ids have 6..30 characters
    ],
)
def test_a_bigquery_uri_names_project_dataset_and_table(uri):
    with pytest.raises(DataError, match="not a BigQuery table URI"):
        parse_bq_uri(uri)


def test_a_bigquery_uri_parses():
    table = parse_bq_uri("bq://my-project.sales_2025.daily-sales")
    parts = (table.project, table.dataset, table.table)
    assert parts == ("my-project", "sales_2025", "daily-sales")
    assert table.table_id == "my-project.sales_2025.daily-sales"
    assert parse_bq_uri("bq://example.com:my-project.s.t").project == "example.com:my-project"


POS = parse_contract(pos_contract_doc())
POS_TYPES = ["DATE", "VARCHAR", "VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN"]


def pos_source(types=POS_TYPES, names=None):
    names = names or POS_HEADER.split(",")
    return [SourceColumn(n, t) for n, t in zip(names, types, strict=True)]


def test_a_typed_sources_columns_are_its_header():
    # Any order; the source's own names are the contract's headers.
    cols = pos_source()
    staged = staged_columns(list(reversed(cols)), POS, "x.parquet")
    assert [s.name for s in staged] == POS.column_names
    assert [s.source for s in staged] == POS_HEADER.split(",")
    assert [s.position for s in staged] == [5, 4, 3, 2, 1, 0]
    assert [s.kind for s in staged] == ["date", "text", "text", "text", "text", "text"]
    with pytest.raises(DataError, match=r"x.parquet: columns does not match .*missing columns"):
        staged_columns(cols[:-1], POS, "x.parquet")
    with pytest.raises(DataError, match="names are case-sensitive"):
        staged_columns(pos_source(names=POS_HEADER.lower().split(",")), POS, "x.parquet")


@pytest.mark.parametrize(
    "type_name",
    ["TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE", "DATETIME", "timestamp_ms"],
)
def test_timestamps_are_their_own_kind(type_name):
    types = [type_name, *POS_TYPES[1:]]
    assert staged_columns(pos_source(types), POS, "x.parquet")[0].kind == "timestamp"


@pytest.mark.parametrize(
    "type_name", ["INTEGER[]", "STRUCT(a INTEGER)", "MAP(VARCHAR, INTEGER)", "BLOB", "ARRAY"]
)
def test_nested_and_binary_columns_fail_the_load_with_their_name(type_name):
    types = [*POS_TYPES[:3], type_name, *POS_TYPES[4:]]
    with pytest.raises(DataError, match=r"column 'Units Sold' has type .* no contract column"):
        staged_columns(pos_source(types), POS, "x.parquet")


def test_bigquery_refuses_a_source_column_it_would_have_to_quote():
    with pytest.raises(DataError, match="'Units Sold' is not a valid name.*a view that renames"):
        staged_columns(pos_source(), POS, "bq://my-project.s.t", identifiers_only=True)
    plain = parse_contract(
        pos_contract_doc(date="d", store_id="s", item_id="i", sales="u", price="p", on_promo="x")
    )
    names = ["d", "s", "i", "u", "p", "x"]
    staged = staged_columns(pos_source(names=names), plain, "bq://p", identifiers_only=True)
    assert [s.source for s in staged] == names


def test_the_bigquery_staging_reads_the_source_by_its_checked_names():
    plain = parse_contract(
        pos_contract_doc(date="d", store_id="s", item_id="i", sales="u", price="p", on_promo="x")
    )
    names = ["d", "s", "i", "u", "p", "x"]
    staged = staged_columns(pos_source(names=names), plain, "bq://p", identifiers_only=True)
    sql = render_sql(
        "stage_table",
        plain,
        TableNames("my-project.sf", "run1"),
        {"staged": staged, "bq_table": "my-project.src.t", "source_uri": "bq://my-project.src.t"},
    )
    assert "FROM `my-project.src.t`" in sql
    assert "`u` AS `sales`" in sql and "`d` AS `date`" in sql
    assert "FORMAT_DATE('%d/%m/%Y', `date`) AS `date`" in sql
    assert "'bq://my-project.src.t' AS _source_file" in sql


def test_a_source_may_leave_out_an_optional_column_which_stages_as_null():
    doc = pos_contract_doc(date="d", store_id="s", item_id="i", sales="u", price="p", on_promo="x")
    doc["columns"].append(
        {"name": "in_stock", "type": "BOOL", "role": "availability", "required": False}
    )
    plain = parse_contract(doc)
    names = ["d", "s", "i", "u", "p", "x"]
    staged = staged_columns(pos_source(names=names), plain, "bq://p", identifiers_only=True)
    assert (staged[-1].name, staged[-1].kind, staged[-1].position) == ("in_stock", "absent", -1)
    sql = render_sql(
        "stage_table",
        plain,
        TableNames("my-project.sf", "run1"),
        {"staged": staged, "bq_table": "my-project.src.t", "source_uri": "bq://my-project.src.t"},
    )
    assert "CAST(NULL AS STRING) AS `in_stock`" in sql
    assert sql.count("in_stock") == 1  # never read from the source
    sqlglot.parse(sql, read="bigquery")
    # A required column is still required.
    with pytest.raises(DataError, match="missing columns"):
        staged_columns(
            pos_source(types=POS_TYPES[:-1], names=names[:-1]),
            plain,
            "bq://p",
            identifiers_only=True,
        )


def test_a_parquet_load_job_keeps_the_files_own_schema():
    config = parquet_load_config(["gs://b/d/a.parquet", "gs://b/d/b.parquet"], "p", "ds", "t")
    load = config["load"]
    assert load["sourceFormat"] == "PARQUET" and load["writeDisposition"] == "WRITE_TRUNCATE"
    assert load["destinationTable"] == {"projectId": "p", "datasetId": "ds", "tableId": "t"}
    assert "schema" not in load and "autodetect" not in load
    from google.cloud.bigquery import LoadJobConfig

    # The body is one the client library reads back without losing a key.
    parsed = LoadJobConfig.from_api_repr(config)
    assert parsed.source_format == "PARQUET"
    assert parsed.to_api_repr()["load"]["parquetOptions"] == {"enableListInference": True}


# ------------------------------------------------------------- local Parquet, end to end


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from sales_forecast import config

    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "pos.json").write_text(json.dumps(pos_contract_doc()))
    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SF_INPUT_ROOTS", json.dumps([str(tmp_path)]))
    monkeypatch.setenv("SF_CONTRACTS_DIR", str(contracts))
    config.get_settings.cache_clear()
    yield config.get_settings()
    config.get_settings.cache_clear()


def ctx_for(settings, tmp_path, input_uri, run_id="manual__2025-02-10T00:00:00+00:00"):
    return make_run_context(
        run_id=run_id,
        logical_date=datetime(2025, 2, 10, tzinfo=UTC),
        params={"input_uri": input_uri, "dataset": "pos"},
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )


def pos_frame() -> pd.DataFrame:
    """Ten days of two SKUs, typed as a warehouse export would type them, with bad values."""
    days = pd.date_range("2025-01-01", periods=10, freq="D")
    rows = []
    for sku in ("4006381333931", "4006381333948"):
        for i, day in enumerate(days):
            rows.append(
                {"Date": day.date(), "Store": "S01", "SKU": sku, "Units Sold": float(i % 4),
                 "Unit Price": 2.49, "Promo": i % 3 == 0}
            )  # fmt: skip
    df = pd.DataFrame(rows)
    df.loc[2, "Units Sold"] = float("nan")  # row 3: a NaN target
    df.loc[5, "Units Sold"] = -1.0  # row 6: negative sales
    df.loc[7, "Unit Price"] = float("inf")  # row 8: not a number
    df.loc[9, "Store"] = None  # row 10: a missing key
    return df


def accepted_and_rejected(platform, ctx, settings):
    steps.validate(ctx, platform, settings)
    wh = platform.warehouse
    accepted = wh.query(
        f"SELECT store_id, item_id, date, sales, price, on_promo FROM {wh.tables.staging_checked} "
        "WHERE reject_reason IS NULL ORDER BY store_id, item_id, date"
    )
    rejected = wh.query(
        f"SELECT source_row, reason FROM {wh.tables.rejected_rows} WHERE run_id = @r "
        "ORDER BY source_row",
        r=ctx.run_id,
    )
    return accepted, rejected


def test_a_parquet_file_is_validated_and_quarantined_as_its_csv_is(settings, tmp_path):
    df = pos_frame()
    parquet = tmp_path / "pos.parquet"
    df.to_parquet(parquet, index=False)
    csv = tmp_path / "pos.csv"
    # The same rows as the till writes them: day-first dates, Y/N promotions.
    text = df.assign(
        Date=[d.strftime("%d/%m/%Y") for d in df["Date"]],
        Promo=df["Promo"].map({True: "Y", False: "N"}),
    )
    text.to_csv(csv, index=False)
    platform = build_local_platform(settings)

    ctx_pq = ctx_for(settings, tmp_path, str(parquet), run_id="manual__pq")
    out = steps.load_to_staging(ctx_pq, platform, settings)
    assert out["rows"] == 20 and out["malformed"] == 0
    pq_accepted, pq_rejected = accepted_and_rejected(platform, ctx_pq, settings)

    ctx_csv = ctx_for(settings, tmp_path, str(csv), run_id="manual__csv")
    steps.load_to_staging(ctx_csv, platform, settings)
    csv_accepted, csv_rejected = accepted_and_rejected(platform, ctx_csv, settings)

    assert len(pq_accepted) == 16
    assert pq_accepted == csv_accepted
    assert pq_accepted[0]["date"] == date(2025, 1, 1)
    # Parquet rows count from 1, CSV lines from 2 (the header is line 1).
    assert [r["source_row"] for r in pq_rejected] == [3, 6, 8, 10]
    assert [r["source_row"] for r in csv_rejected] == [4, 7, 9, 11]
    assert [r["reason"] for r in pq_rejected] == [r["reason"] for r in csv_rejected]
    reasons = " ".join(r["reason"] for r in pq_rejected)
    assert "sales: missing value" in reasons and '"inf" is not a valid FLOAT64' in reasons


def test_a_parquet_folder_is_one_input_numbered_across_its_files(settings, tmp_path):
    df = pos_frame()
    folder = tmp_path / "drops"
    (folder / "2025-01").mkdir(parents=True)
    df.iloc[:12].to_parquet(folder / "2025-01" / "part-0.parquet", index=False)
    # Another file's columns in another order: matched by name, as a CSV header is.
    df.iloc[12:][list(reversed(df.columns))].to_parquet(folder / "part-1.pq", index=False)
    (folder / "_SUCCESS").write_text("")
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(folder))
    assert ctx.input_uri == f"{folder}/"
    out = steps.load_to_staging(ctx, platform, settings)
    assert out["rows"] == 20
    accepted, rejected = accepted_and_rejected(platform, ctx, settings)
    assert len(accepted) == 16
    assert [r["source_row"] for r in rejected] == [3, 6, 8, 10]
    # A rerun's quarantine replaces the folder's rows instead of adding copies.
    steps.load_to_staging(ctx, platform, settings)
    assert len(accepted_and_rejected(platform, ctx, settings)[1]) == 4


def test_timestamps_at_midnight_are_days_and_others_are_quarantined(settings, tmp_path):
    df = pos_frame()
    df["Date"] = pd.to_datetime(df["Date"])
    df.loc[0, "Date"] = pd.Timestamp("2025-01-01 13:30")
    df.loc[9, "Store"] = "S01"  # four bad rows in twenty at most: a run's reject limit
    parquet = tmp_path / "pos_ts.parquet"
    df.to_parquet(parquet, index=False)
    platform = build_local_platform(settings)
    ctx = ctx_for(settings, tmp_path, str(parquet))
    steps.load_to_staging(ctx, platform, settings)
    # A day that cannot be read fails the run for its series (it would read as no sales) ...
    with pytest.raises(DataError, match="S01|4006381333931: 1 of 10 rows"):
        accepted_and_rejected(platform, ctx, settings)
    # ... and the quarantine says why; the days at midnight are days.
    wh = platform.warehouse
    accepted = wh.query(f"SELECT date FROM {wh.tables.staging_checked} WHERE reject_reason IS NULL")
    assert len(accepted) == 16 and min(r["date"] for r in accepted) == date(2025, 1, 1)
    rejected = wh.query(f"SELECT source_row, reason FROM {wh.tables.rejected_rows} ORDER BY 1")
    assert rejected[0]["source_row"] == 1
    assert '"2025-01-01 13:30:00" is not a valid DATE (expected %d/%m/%Y)' in rejected[0]["reason"]


def test_a_file_that_is_not_parquet_is_a_clear_error(settings, tmp_path):
    bad = tmp_path / "pos.parquet"
    bad.write_text(POS_HEADER + "\n01/01/2025,S01,1,1,1,Y\n")
    platform = build_local_platform(settings)
    with pytest.raises(DataError, match=r"pos.parquet: not readable as Parquet"):
        steps.load_to_staging(ctx_for(settings, tmp_path, str(bad)), platform, settings)


def test_a_parquet_with_other_columns_fails_like_a_csv_header(settings, tmp_path):
    parquet = tmp_path / "pos.parquet"
    pos_frame().rename(columns={"Units Sold": "Units sold"}).to_parquet(parquet, index=False)
    platform = build_local_platform(settings)
    with pytest.raises(DataError, match="columns does not match the 'pos' contract.*case"):
        steps.load_to_staging(ctx_for(settings, tmp_path, str(parquet)), platform, settings)
