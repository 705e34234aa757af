"""The DAG's own GCP tasks, run with ``dag.test()`` against the GCS and BigQuery emulators.

``load_to_staging`` (the shared ``steps.prepare_staging`` header check, the numbered copy,
GCSToBigQueryOperator), ``validate`` and ``build_features`` (the shared steps in a PythonOperator:
every statement of validate.sql, quarantine.sql, merge_history.sql and features.sql through
BigQueryWarehouse, then the same checks as locally) run for real; the assertions read the
resulting tables.

What this proves: the GCS and BigQuery client calls the tasks make (buckets, objects, load jobs,
one query job per statement with its named parameters, table lookups), the requests' shapes as
the emulators parse them, and the steps' logic end to end through Airflow. What it does not: that
the SQL is valid on real BigQuery. The BigQuery emulator (bqemulator) runs every statement on
DuckDB through sqlglot, the same route as the local platform, so it accepts DuckDB-only SQL and
knows nothing of BigQuery's own rules (MERGE cardinality, partition limits, DML quotas,
locations); IAM and quotas are not emulated either. The BigQuery dialect is checked statically
by tests/plugins/sales_forecast/test_sql_bigquery.py, and for real, at zero cost, by
scripts/gcp_smoke.sh on a project (docs/gcp.md, "Smoke test on your project").
"""

from __future__ import annotations

import json
from datetime import date

import pytest

pytestmark = pytest.mark.gcp_emulator

FIRST_TASKS = ["load_to_staging", "validate", "build_features"]
LOGICAL_DATE = "2025-02-01T00:00:00+00:00"
# Columns deliberately not in the contract's order: the load must still put each value under its
# own column (a positional load of the raw file would put store ids into `date`).
HEADER = "store_id,date,item_id,sales,price,on_promo,is_holiday,temperature"


def variables(dataset: str) -> dict[str, str]:
    """The run's GCP settings, as Airflow Variables (what Composer users set)."""
    return {
        "sf_gcp_project": "test-project",
        "sf_gcp_bucket": "sf-runs",
        "sf_gcp_bq_dataset": dataset,
        "sf_gcp_bq_location": "US",
        "sf_gcp_trainer_image": "<your-registry>/test-project/sf/trainer:test",
    }


def bucket(gcs_client, name: str):
    b = gcs_client.bucket(name)
    if not b.exists():
        gcs_client.create_bucket(name)
    return b


def upload(gcs_client, bucket_name: str, name: str, lines: list[str]) -> str:
    bucket(gcs_client, bucket_name).blob(name).upload_from_string(
        "\n".join(lines) + "\n", content_type="text/csv"
    )
    return f"gs://{bucket_name}/{name}"


def rows(bq_client, sql: str) -> list[dict]:
    return [dict(r.items()) for r in bq_client.query(sql).result()]


def good_day(d: str, item: str, sales: float, price: float = 2.5) -> str:
    return f"S01,{d},{item},{sales},{price},false,false,7.5"


@pytest.fixture(scope="module")
def daily_file(gcs_client):
    """A daily file with a few bad rows (11% of them: under the 20% limit)."""
    lines = [HEADER]
    # S01/I001: Jan 1-20 with Jan 5-6 missing (no sales those days), price changes on Jan 7.
    for day in range(1, 21):
        if day in (5, 6):
            continue
        lines.append(good_day(f"2025-01-{day:02d}", "I001", day, 2.5 if day < 7 else 3.0))
    # S01/I002 starts later, on Jan 8.
    for day in range(8, 21):
        lines.append(good_day(f"2025-01-{day:02d}", "I002", 10 + day))
    bad = {
        "negative": "S01,2025-01-21,I001,-4,3.0,false,false,7.5",
        "type": "S01,2025-01-22,I001,abc,3.0,false,false,7.5",
        "fields": "S01,2025-01-23,I001,5,3.0,false,false,7.5,extra",
        "dup": good_day("2025-01-12", "I002", 22),  # exact copy of I002's Jan 12 row
    }
    lines += list(bad.values())
    uri = upload(gcs_client, "sf-drops", "2025-02-01/sales.csv", lines)
    return {"uri": uri, "lines": lines, "bad": bad}


@pytest.fixture(scope="module")
def results(daily_file, gcs_client, bq_client, run_gcp_dag):
    """Three runs in one dag.test() process, each on a dataset of its own."""
    bucket(gcs_client, "sf-runs")  # the one thing the DAG expects to exist (docs/gcp.md)
    too_many = [HEADER.replace("store_id,date", "date,store_id")]
    too_many += [f"2025-01-0{d},S01,I001,{d},1.0,false,false,5" for d in range(1, 5)]
    too_many += ["2025-01-05,S01,I001,oops,1.0,false,false,5", "2025-01-06,S01,I001,-1,1,f,f,5"]
    upload(gcs_client, "sf-drops", "bad/sales.csv", too_many)
    upload(
        gcs_client,
        "sf-drops",
        "header/sales.csv",
        [
            "date,store_id,item_id,sales,price,on_promo,is_holiday,temp",
            "2025-01-01,S01,I001,1,1.0,false,false,5",
        ],
    )
    source_table(bq_client)
    older_history(bq_client)
    daily, bad, header, table, evolved = run_gcp_dag(
        [
            # {{ ds }} in the input param is rendered at run time, as for a daily drop folder.
            {
                # The accepted rows join history in merge_history (after the forecast in the
                # DAG; the trainer jobs in between are tested in test_trainer_on_emulators).
                "task_ids": [*FIRST_TASKS, "merge_history"],
                "edges": [["build_features", "merge_history"]],
                "logical_date": LOGICAL_DATE,
                "conf": {"input_uri": "gs://sf-drops/{{ ds }}/sales.csv", "dataset": "retail"},
                "variables": variables("daily"),
            },
            {
                "task_ids": FIRST_TASKS,
                "logical_date": LOGICAL_DATE,
                "conf": {"input_uri": "gs://sf-drops/bad/sales.csv"},
                "variables": variables("toomany"),
            },
            {
                "task_ids": ["load_to_staging"],
                "logical_date": LOGICAL_DATE,
                "conf": {"input_uri": "gs://sf-drops/header/sales.csv"},
                "variables": variables("header"),
            },
            {
                "task_ids": FIRST_TASKS,
                "logical_date": LOGICAL_DATE,
                "conf": {"input_uri": f"bq://{SOURCE_TABLE}"},
                "variables": variables("fromtable"),
            },
            {
                "task_ids": [*FIRST_TASKS, "merge_history"],
                "edges": [["build_features", "merge_history"]],
                "logical_date": LOGICAL_DATE,
                "conf": {"input_uri": "gs://sf-drops/{{ ds }}/sales.csv"},
                "variables": variables("evolve"),
            },
        ]
    )
    return {"daily": daily, "bad": bad, "header": header, "table": table, "evolved": evolved}


def older_history(bq_client) -> None:
    """sales_history as a retail contract without is_available made it, holding one day."""
    from google.cloud import bigquery

    bq_client.create_dataset("test-project.evolve", exists_ok=True)
    table = "test-project.evolve.sales_history"
    names = [
        ("date", "DATE"), ("store_id", "STRING"), ("item_id", "STRING"), ("sales", "FLOAT64"),
        ("price", "FLOAT64"), ("on_promo", "BOOL"), ("is_holiday", "BOOL"),
        ("temperature", "FLOAT64"), ("_loaded_by_run", "STRING"), ("_loaded_at", "TIMESTAMP"),
    ]  # fmt: skip
    bq_client.delete_table(table, not_found_ok=True)
    schema = [bigquery.SchemaField(n, t) for n, t in names]
    bq_client.create_table(bigquery.Table(table, schema=schema))
    bq_client.query(
        f"INSERT INTO `{table}` VALUES (DATE '2024-12-31', 'S01', 'I001', 9.0, 2.5, FALSE, "
        "FALSE, 6.5, 'manual__older', CURRENT_TIMESTAMP())"
    ).result()


SOURCE_TABLE = "test-project.src.daily_sales"


def source_table(bq_client) -> None:
    """A typed BigQuery table as a warehouse would hold the sales: 12 rows, one of them bad."""
    from google.cloud import bigquery

    bq_client.create_dataset("test-project.src", exists_ok=True)
    schema = [
        bigquery.SchemaField("store_id", "STRING"),
        bigquery.SchemaField("date", "DATE"),
        bigquery.SchemaField("item_id", "STRING"),
        bigquery.SchemaField("sales", "FLOAT64"),
        bigquery.SchemaField("price", "FLOAT64"),
        bigquery.SchemaField("on_promo", "BOOL"),
        bigquery.SchemaField("is_holiday", "BOOL"),
        bigquery.SchemaField("temperature", "FLOAT64"),
    ]
    bq_client.delete_table(SOURCE_TABLE, not_found_ok=True)
    bq_client.create_table(bigquery.Table(SOURCE_TABLE, schema=schema))
    values = [
        f"('S01', DATE '2025-01-{d:02d}', 'I001', {-1.0 if d == 7 else float(d)}, 2.5, "
        f"{'TRUE' if d % 3 == 0 else 'FALSE'}, FALSE, 6.5)"
        for d in range(1, 13)
    ]
    bq_client.query(f"INSERT INTO `{SOURCE_TABLE}` VALUES {', '.join(values)}").result()


@pytest.fixture(scope="module")
def daily(results):
    result = results["daily"]
    expected = {t: "success" for t in [*FIRST_TASKS, "merge_history"]}
    assert result.states == expected, result.output[-5000:]
    return result


def test_first_three_tasks_succeed(daily):
    from sales_forecast.sqlrender import run_suffix

    assert (
        "loaded 34 rows from gs://sf-drops/2025-02-01/sales.csv into "
        f"test-project.daily.staging__{run_suffix(daily.run_id)} (1 malformed lines set aside)"
    ) in daily.output
    assert "merged 31 accepted rows into sales_history" in daily.output
    assert "4 rows quarantined in rejected_rows" in daily.output
    # The shared steps' summaries, from the emulator's answers to their queries.
    assert (
        "validation: {'rows': 35, 'accepted': 31, 'rejected': 4, 'reject_fraction': 0.114286}"
    ) in daily.output
    assert (
        "daily_sales_features: {'rows_total': 33, 'rows_in_window': 33, 'series': 2, "
        "'first_date': '2025-01-01', 'last_date': '2025-01-20', 'unknown_days': 0, "
        "'table': 'bq://test-project.daily.daily_sales_features'}"
    ) in daily.output
    assert "data is stale: its last day 2025-01-20 is 11 days before the cutoff 2025-01-31" in (
        daily.output
    )


def test_bad_rows_are_quarantined_with_line_and_reason(daily, daily_file, bq_client):
    got = rows(
        bq_client,
        "SELECT source_row, reason, raw_record, source_file FROM "
        f"`test-project.daily.rejected_rows` WHERE run_id = '{daily.run_id}' "
        "ORDER BY source_row",
    )
    by_line = {r["source_row"]: r for r in got}
    # The bad lines close the file, in order (line 1 is the header).
    first_bad = len(daily_file["lines"]) - len(daily_file["bad"]) + 1
    line = {name: first_bad + i for i, name in enumerate(daily_file["bad"])}
    assert set(by_line) == set(line.values())
    assert by_line[line["negative"]]["reason"] == "sales: negative value"
    assert by_line[line["type"]]["reason"] == 'sales: "abc" is not a valid FLOAT64'
    assert by_line[line["fields"]]["reason"] == (
        "malformed CSV line (too many columns): expected 8 fields, found 9"
    )
    first_copy = daily_file["lines"].index(daily_file["bad"]["dup"]) + 1
    assert by_line[line["dup"]]["reason"] == f"exact duplicate of row {first_copy}"
    # Nothing is lost: the raw values are kept, under their own column names.
    raw = json.loads(by_line[line["type"]]["raw_record"])
    assert raw["sales"] == "abc" and raw["store_id"] == "S01" and raw["date"] == "2025-01-22"
    assert by_line[line["fields"]]["raw_record"] == daily_file["bad"]["fields"]
    assert {r["source_file"] for r in got} == {daily_file["uri"]}


def test_accepted_rows_join_history(daily, bq_client):
    hist = rows(
        bq_client,
        "SELECT store_id, item_id, date, sales, price, on_promo, _loaded_by_run "
        "FROM `test-project.daily.sales_history` ORDER BY item_id, date",
    )
    assert len(hist) == 18 + 13
    assert {r["store_id"] for r in hist} == {"S01"}  # reordered columns landed in place
    assert {r["_loaded_by_run"] for r in hist} == {daily.run_id}
    first = hist[0]
    assert (first["item_id"], first["date"], first["sales"], first["price"]) == (
        "I001",
        date(2025, 1, 1),
        1.0,
        2.5,
    )
    assert first["on_promo"] is False


def test_features_fill_gaps_per_series(daily, bq_client):
    feats = rows(
        bq_client,
        "SELECT series_id, date, sales, price, on_promo, is_holiday, temperature, is_gap_filled "
        "FROM `test-project.daily.daily_sales_features` ORDER BY series_id, date",
    )
    i001 = [r for r in feats if r["series_id"] == "S01|I001"]
    i002 = [r for r in feats if r["series_id"] == "S01|I002"]
    # Every day from the series' first day to the last day of history, one row each.
    assert [r["date"] for r in i001] == [date(2025, 1, d) for d in range(1, 21)]
    assert [r["date"] for r in i002] == [date(2025, 1, d) for d in range(8, 21)]
    gap = {r["date"].day: r for r in i001 if r["is_gap_filled"]}
    assert set(gap) == {5, 6}
    for r in gap.values():
        assert r["sales"] == 0.0
        assert r["price"] == 2.5  # known column, rule "last": the last price before the gap
        assert r["on_promo"] is False and r["is_holiday"] is False  # rule "false"
        assert r["temperature"] is None  # observed column: unknown on a day without a row
    assert [r["sales"] for r in i001 if not r["is_gap_filled"]] == [
        d for d in range(1, 21) if d not in (5, 6)
    ]
    assert i001[-1]["price"] == 3.0
    assert not any(r["is_gap_filled"] for r in i002)


def test_staging_copy_is_numbered_and_contract_written(daily, gcs_client, bq_client):
    from google.api_core.exceptions import NotFound
    from sales_forecast.run_context import run_key
    from sales_forecast.sqlrender import run_suffix

    key = run_key(daily.run_id)
    runs = gcs_client.bucket("sf-runs")
    numbered = runs.blob(f"runs/{key}/staging/input.csv").download_as_text().splitlines()
    assert numbered[0].startswith("_source_row,_source_file,")
    assert [line.split(",")[0] for line in numbered[1:3]] == ["2", "3"]
    # The run's own staging tables are dropped once merge_history has merged them.
    for table in ("staging", "staging_checked", "staging_malformed"):
        with pytest.raises(NotFound):
            bq_client.get_table(f"test-project.daily.{table}__{run_suffix(daily.run_id)}")
    contract = json.loads(runs.blob(f"runs/{key}/contract.json").download_as_text())
    assert contract["name"] == "retail" and contract["series_keys"] == ["store_id", "item_id"]
    run = json.loads(runs.blob(f"runs/{key}/run.json").download_as_text())
    assert run["input_uri"] == "gs://sf-drops/2025-02-01/sales.csv"  # {{ ds }} rendered
    assert run["cutoff_date"] == "2025-01-31"


def test_too_many_bad_rows_fail_validate_and_add_nothing(results, bq_client):
    result = results["bad"]
    assert result.states == {
        "load_to_staging": "success",
        "validate": "failed",
        "build_features": "upstream_failed",
    }, result.output[-5000:]
    # The same words as locally, naming the file, the lines and the table to look at.
    assert (
        "gs://sf-drops/bad/sales.csv: 2 of 6 rows rejected (33.3% > the 20% limit); nothing was "
        "added to history. See table rejected_rows"
    ) in result.output
    assert 'gs://sf-drops/bad/sales.csv line 6: sales: "oops" is not a valid FLOAT64' in (
        result.output
    )
    assert rows(bq_client, "SELECT COUNT(*) AS n FROM `test-project.toomany.sales_history`") == [
        {"n": 0}
    ]
    rejected = rows(bq_client, "SELECT COUNT(*) AS n FROM `test-project.toomany.rejected_rows`")
    assert rejected == [{"n": 2}]


def test_header_that_does_not_match_the_contract_fails_the_load(results):
    result = results["header"]
    assert result.states == {"load_to_staging": "failed"}, result.output[-5000:]
    assert "gs://sf-drops/header/sales.csv: line 1 (header) does not match the 'retail' " in (
        result.output
    )
    assert "missing columns ['temperature']; unknown columns ['temp']" in result.output


def test_a_bigquery_table_is_validated_like_a_csv(results, bq_client):
    """bq://project.dataset.table: typed columns made text by stage_table.sql, then the same
    validation and quarantine (a negative sale is rejected with its reason)."""
    result = results["table"]
    assert result.states == {t: "success" for t in FIRST_TASKS}, result.output[-5000:]
    assert f"loaded 12 rows from bq://{SOURCE_TABLE} into" in result.output
    assert "validation: {'rows': 12, 'accepted': 11, 'rejected': 1," in result.output
    assert f"bq://{SOURCE_TABLE} row " in result.output and "sales: negative value" in (
        result.output
    )
    feats = rows(
        bq_client,
        "SELECT COUNT(*) AS n, MIN(date) AS first, MAX(date) AS last "
        "FROM `test-project.fromtable.daily_sales_features`",
    )
    assert feats == [{"n": 12, "first": date(2025, 1, 1), "last": date(2025, 1, 12)}]


def test_a_history_from_an_older_contract_gains_its_new_column(results, bq_client):
    result = results["evolved"]
    expected = {t: "success" for t in [*FIRST_TASKS, "merge_history"]}
    assert result.states == expected, result.output[-5000:]
    assert "sales_history gained the contract's new columns ['is_available']" in result.output
    kept = rows(
        bq_client,
        "SELECT date, sales, is_available FROM `test-project.evolve.sales_history` "
        "WHERE date = DATE '2024-12-31'",
    )
    assert kept == [{"date": date(2024, 12, 31), "sales": 9.0, "is_available": None}]
    (n,) = rows(bq_client, "SELECT COUNT(*) AS n FROM `test-project.evolve.sales_history`")
    assert n["n"] > 1  # the day's accepted rows joined it
