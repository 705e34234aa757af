import json
from datetime import date
from pathlib import Path

import pytest
from sales_forecast.contract import load_contract
from sales_forecast.platforms.local import DuckDBWarehouse, LocalDeployer, LocalModelRegistry

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"
FAR = date(2030, 1, 1)  # a cut-off after every test date


def write_csv(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


@pytest.fixture
def wh(tmp_path):
    return DuckDBWarehouse(tmp_path / "w.duckdb", "sf")


@pytest.fixture
def retail():
    return load_contract("retail")


def stage_and_validate(wh, retail, path, run_id="r1", cutoff=FAR):
    load = wh.load_csv_to_staging(path, HEADER.split(","), retail)
    wh.run_script("create_tables", retail)
    wh.run_script("validate", retail, cutoff=cutoff)
    wh.run_script("quarantine", retail, run_id=run_id, source_file=path)
    return load


def reasons(wh, run_id="r1"):
    rows = wh.query(
        f"SELECT source_row, reason FROM {wh.tables.rejected_rows} WHERE run_id = @r "
        "ORDER BY source_row",
        r=run_id,
    )
    return {r["source_row"]: r["reason"] for r in rows}


def test_every_bad_row_is_quarantined_with_its_line_and_reason(wh, retail, tmp_path):
    path = write_csv(
        tmp_path / "in.csv",
        [
            "2024-01-01,S01,I001,3,1.5,false,true,5.0",  # 2 ok
            "2024-01-02,S01,I001,-1,1.5,false,false,5",  # 3 negative target
            "2024-01-03,S01,I001,abc,1.5,false,false,5",  # 4 wrong type
            "2024-13-01,S01,I001,2,1.5,false,false,5",  # 5 impossible date
            "01/04/2024,S01,I001,2,1.5,false,false,5",  # 6 unparsable date format
            "2024-01-05,S01,I001,,1.5,false,false,5",  # 7 missing target
            "2024-01-06,,I001,2,1.5,false,false,5",  # 8 missing key
            "2024-01-07,S01,I001,2,1.5,maybe,false,5",  # 9 bad bool
            "2024-01-08,S01,I001,2,1.5,false,false,5,9",  # 10 too many fields
            "2024-01-09,S01,I001,2,1.5,false,false,5",  # 11 exact duplicate kept
            "2024-01-09,S01,I001,2,1.5,false,false,5",  # 12 exact duplicate rejected
            "2024-01-10,S01,I001,2,1.5,false,false,5",  # 13 conflicting
            "2024-01-10,S01,I001,3,1.5,false,false,5",  # 14 conflicting
            "2024-01-11,S01,I001,2,nan,false,false,5",  # 15 non-finite float
            "2024-01-12,S01,I001,4,,,,",  # 16 ok: covariates nullable
        ],
    )
    load = stage_and_validate(wh, retail, path)
    assert load.rows == 14 and load.malformed == 1
    got = reasons(wh)
    assert set(got) == {3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15}
    assert got[3] == "sales: negative value"
    assert got[4] == 'sales: "abc" is not a valid FLOAT64'
    # The reason says what a date should look like (the contract's date_format or ISO).
    assert got[5] == 'date: "2024-13-01" is not a valid DATE (expected YYYY-MM-DD)'
    assert got[6] == 'date: "01/04/2024" is not a valid DATE (expected YYYY-MM-DD)'
    assert got[7] == "sales: missing value"
    assert got[8] == "store_id: missing value"
    assert got[9] == 'on_promo: "maybe" is not a valid BOOL'
    assert got[10].startswith("malformed CSV line (too many columns)")
    assert got[12] == "exact duplicate of row 11"
    assert got[13] == got[14] and got[13].startswith("duplicate key with conflicting values")
    assert got[15] == 'price: "nan" is not a valid FLOAT64'
    raw = wh.query(f"SELECT raw_record FROM {wh.tables.rejected_rows} WHERE source_row = 4")[0][
        "raw_record"
    ]
    assert json.loads(raw)["sales"] == "abc"  # the raw value is kept, nothing is lost


def pos_contract(**headers: str):
    """A point-of-sale export's contract: own header names, day-first dates, Y/N promotions."""
    from sf_contract.schema import parse_contract

    names = {
        "date": "Date",
        "store_id": "Store",
        "item_id": "SKU",
        "sales": "Units Sold",
        "price": "Unit Price",
        "on_promo": "Promo",
        **headers,
    }
    types = {"date": "DATE", "sales": "FLOAT64", "price": "FLOAT64", "on_promo": "BOOL"}
    roles = {"price": "known", "on_promo": "known"}
    return parse_contract(
        {
            "name": "pos",
            "date_column": "date",
            "target": "sales",
            "series_keys": ["store_id", "item_id"],
            "date_format": "%d/%m/%Y",
            "columns": [
                {"name": n, "type": types.get(n, "STRING"), "role": roles.get(n), "header": h}
                for n, h in names.items()
            ],
        }
    )


def test_an_export_is_loaded_under_the_contract_names_from_its_own_header(wh, tmp_path):
    contract = pos_contract()
    # Another column order than the contract's, the export's own names.
    header = ["Promo", "Units Sold", "Date", "SKU", "Store", "Unit Price"]
    path = tmp_path / "pos.csv"
    path.write_text(
        ",".join(header)
        + "\nY,3,01/02/2025,A1,S01,1.5\n"
        + "N,2,2/2/2025,A1,S01,1.5\n"
        + "n,4,2025-02-03,A1,S01,1.5\n"  # ISO, not the contract's format
        + "y,1,31/02/2025,A1,S01,1.5\n"  # no such day
    )
    wh.run_script("create_tables", contract)
    load = wh.load_csv_to_staging(str(path), header, contract)
    assert load.rows == 4
    staged = wh.query(f"SELECT * FROM {wh.tables.staging} ORDER BY _source_row")
    assert list(staged[0]) == ["_source_row", "_source_file", *contract.column_names]
    assert staged[0] | {"_source_file": None} == {
        "_source_row": 2,
        "_source_file": None,
        "date": "01/02/2025",
        "store_id": "S01",
        "item_id": "A1",
        "sales": "3",
        "price": "1.5",
        "on_promo": "Y",
    }
    wh.run_script("validate", contract, cutoff=FAR)
    wh.run_script("quarantine", contract, run_id="r1", source_file=str(path))
    checked = wh.query(
        f"SELECT _source_row, date, on_promo, reject_reason FROM {wh.tables.staging_checked} "
        "ORDER BY _source_row"
    )
    assert [(r["date"], r["on_promo"]) for r in checked[:2]] == [
        (date(2025, 2, 1), True),
        (date(2025, 2, 2), False),
    ]
    assert reasons(wh) == {
        4: 'date: "2025-02-03" is not a valid DATE (expected %d/%m/%Y)',
        5: 'date: "31/02/2025" is not a valid DATE (expected %d/%m/%Y)',
    }


def test_header_names_that_look_like_sql_are_only_ever_data(wh, tmp_path):
    hostile = {
        "sales": 'Units"; DROP TABLE sf.x; --',
        "price": "Price`) AS y, (SELECT 1",
        "on_promo": "Promo' || '",
    }
    contract = pos_contract(**hostile)
    header = contract.csv_headers
    path = tmp_path / "pos.csv"
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerow(["01/02/2025", "S01", "A1", "3", "1.5", "Y"])
    wh.run_script("create_tables", contract)
    assert wh.load_csv_to_staging(str(path), header, contract).rows == 1
    (row,) = wh.query(f"SELECT sales, price, on_promo FROM {wh.tables.staging}")
    assert row == {"sales": "3", "price": "1.5", "on_promo": "Y"}


def test_the_loader_refuses_a_header_the_contract_does_not_have(wh, tmp_path):
    from sales_forecast.errors import DataError

    contract = pos_contract()
    path = tmp_path / "pos.csv"
    header = ["Date", "Store", "SKU", "sales", "Unit Price", "Promo"]
    path.write_text(",".join(header) + "\n01/02/2025,S01,A1,3,1.5,Y\n")
    with pytest.raises(DataError, match=r"missing columns \['Units Sold' \(sales\)\]"):
        wh.load_csv_to_staging(str(path), header, contract)


def test_quarantine_is_replaced_when_the_run_is_rerun(wh, retail, tmp_path):
    path = write_csv(tmp_path / "in.csv", ["2024-01-02,S01,I001,-1,1.5,false,false,5"])
    other = write_csv(tmp_path / "other.csv", ["2024-01-02,S01,I001,x,1.5,false,false,5"])
    stage_and_validate(wh, retail, path)
    stage_and_validate(wh, retail, path)
    assert len(reasons(wh, "r1")) == 1
    # The same file loaded by another run replaces its quarantine rows rather than copying them.
    stage_and_validate(wh, retail, path, run_id="r2")
    assert len(reasons(wh, "r1")) == 0 and len(reasons(wh, "r2")) == 1
    stage_and_validate(wh, retail, other, run_id="r3")
    assert len(reasons(wh, "r2")) == 1 and len(reasons(wh, "r3")) == 1


def test_history_merge_and_features_fill_gaps(wh, retail, tmp_path):
    path = write_csv(
        tmp_path / "a.csv",
        [
            "2024-01-01,S01,I001,3,1.5,false,true,5.0",
            "2024-01-04,S01,I001,5,,true,false,6.0",
            "2024-01-03,S01,I002,1,2.0,false,false,",
        ],
    )
    stage_and_validate(wh, retail, path)
    wh.run_script("merge_history", retail, run_id="r1")
    # A second delivery corrects one day and adds another; the rest of history is untouched.
    path2 = write_csv(
        tmp_path / "b.csv",
        [
            "2024-01-04,S01,I001,7,1.4,true,false,6.0",
            "2024-01-05,S01,I002,2,2.0,false,false,1.0",
        ],
    )
    stage_and_validate(wh, retail, path2, run_id="r2")
    wh.run_script("merge_history", retail, run_id="r2")
    wh.run_script("features", retail, cutoff=FAR)
    rows = wh.query(
        f"SELECT series_id, date, sales, price, on_promo, is_gap_filled, temperature "
        f"FROM {wh.tables.daily_sales_features} ORDER BY series_id, date"
    )
    got = [
        (
            r["series_id"],
            r["date"].isoformat(),
            r["sales"],
            r["price"],
            r["on_promo"],
            r["is_gap_filled"],
        )
        for r in rows
    ]
    assert got == [
        ("S01|I001", "2024-01-01", 3.0, 1.5, False, False),
        ("S01|I001", "2024-01-02", 0.0, 1.5, False, True),
        ("S01|I001", "2024-01-03", 0.0, 1.5, False, True),
        ("S01|I001", "2024-01-04", 7.0, 1.4, True, False),
        ("S01|I001", "2024-01-05", 0.0, 1.4, False, True),
        ("S01|I002", "2024-01-03", 1.0, 2.0, False, False),
        ("S01|I002", "2024-01-04", 0.0, 2.0, False, True),
        ("S01|I002", "2024-01-05", 2.0, 2.0, False, False),
    ]
    assert rows[1]["temperature"] is None  # observed-only values are never invented
    (n,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
    assert n["n"] == 4


def features(wh, cutoff=FAR):
    rows = wh.query(
        f"SELECT series_id, date, sales, is_gap_filled, is_unknown "
        f"FROM {wh.tables.daily_sales_features} ORDER BY series_id, date"
    )
    return [
        (r["series_id"], r["date"].isoformat(), r["sales"], r["is_gap_filled"], r["is_unknown"])
        for r in rows
    ]


def test_a_key_holding_the_separator_is_rejected(wh, retail, tmp_path):
    # (S01, I001|Z) and (S01|I001, Z) would both be the series "S01|I001|Z".
    path = write_csv(
        tmp_path / "in.csv",
        ["2024-01-01,S01,I001|Z,3,1,false,false,1", "2024-01-01,S01|I001,Z,4,1,false,false,1"],
    )
    stage_and_validate(wh, retail, path)
    got = reasons(wh)
    assert got == {
        2: "item_id: contains |, the series-id separator",
        3: "store_id: contains |, the series-id separator",
    }


def test_rows_after_the_cutoff_are_quarantined_and_the_spine_ends_there(wh, retail, tmp_path):
    path = write_csv(
        tmp_path / "in.csv",
        [
            "2024-01-01,S01,I001,3,1,false,false,1",
            "2024-01-03,S01,I001,5,1,false,false,1",
            "9999-12-31,S01,I001,1,1,false,false,1",  # would stretch the spine for ever
        ],
    )
    stage_and_validate(wh, retail, path, cutoff=date(2024, 1, 3))
    assert reasons(wh) == {4: "date: 9999-12-31 is after the cut-off of this run, 2024-01-03"}
    wh.run_script("features", retail, cutoff=date(2024, 1, 3))
    assert [r[1] for r in features(wh)] == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_a_quarantined_day_is_unknown_not_a_day_without_sales(wh, retail, tmp_path):
    path = write_csv(
        tmp_path / "in.csv",
        [
            "2024-01-01,S01,I001,3,1,false,false,1",
            "2024-01-02,S01,I001,abc,1,false,false,1",  # rejected, its day is known
            "2024-01-04,S01,I001,5,1,false,false,1",  # 01-03 has no row: no sales
        ],
    )
    stage_and_validate(wh, retail, path)
    wh.run_script("features", retail, cutoff=FAR)
    assert features(wh) == [
        ("S01|I001", "2024-01-01", 3.0, False, False),
        ("S01|I001", "2024-01-02", None, False, True),
        ("S01|I001", "2024-01-03", 0.0, True, False),
        ("S01|I001", "2024-01-04", 5.0, False, False),
    ]
    # A later good row for that day makes it known again.
    fix = write_csv(tmp_path / "fix.csv", ["2024-01-02,S01,I001,4,1,false,false,1"])
    wh.run_script("merge_history", retail, run_id="r1")
    stage_and_validate(wh, retail, fix, run_id="r2")
    wh.run_script("features", retail, cutoff=FAR)
    assert features(wh)[1] == ("S01|I001", "2024-01-02", 4.0, False, False)


def test_features_use_the_runs_rows_before_they_are_merged(wh, retail, tmp_path):
    path = write_csv(tmp_path / "in.csv", ["2024-01-01,S01,I001,3,1,false,false,1"])
    stage_and_validate(wh, retail, path)
    wh.run_script("features", retail, cutoff=FAR)
    assert len(features(wh)) == 1
    (n,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
    assert n["n"] == 0  # history changes only in merge_history, after the forecast


def test_overlapping_runs_stage_apart_and_lose_nothing(tmp_path, retail):
    """Two runs load, validate and merge in an interleaved order: both files reach history."""
    a = DuckDBWarehouse(tmp_path / "w.duckdb", "sf", run_id="manual__A")
    b = DuckDBWarehouse(tmp_path / "w.duckdb", "sf", run_id="manual__B")
    assert a.tables.staging != b.tables.staging
    pa = write_csv(tmp_path / "a.csv", ["2024-01-01,S07,I001,3,1,false,false,1"])
    pb = write_csv(tmp_path / "b.csv", ["2024-01-01,S08,I001,4,1,false,false,1"])
    stage_and_validate(a, retail, pa, run_id="manual__A")
    stage_and_validate(b, retail, pb, run_id="manual__B")  # would overwrite A's shared staging
    a.run_script("merge_history", retail, run_id="manual__A")
    b.run_script("merge_history", retail, run_id="manual__B")
    rows = a.query(f"SELECT store_id FROM {a.tables.sales_history} ORDER BY store_id")
    assert [r["store_id"] for r in rows] == ["S07", "S08"]
    a.run_script("drop_staging", retail)
    assert not a.table_exists("staging_checked") and b.table_exists("staging_checked")


def test_takeaway_single_series_features(tmp_path):
    contract = load_contract("takeaway")
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", "sf")
    header = contract.column_names
    row = "{d},{t},25,20,30,0,5,1010,false,,false,0,0,false,false,false,false,false,false"
    p = tmp_path / "t.csv"
    p.write_text(
        ",".join(header)
        + "\n"
        + row.format(d="2024-01-05", t="120.5")
        + "\n"
        + row.format(d="2024-01-07", t="99")
        + "\n"
    )
    wh.load_csv_to_staging(str(p), header, contract)
    wh.run_script("create_tables", contract)
    wh.run_script("validate", contract, cutoff=FAR)
    wh.run_script("quarantine", contract, run_id="r", source_file=str(p))
    wh.run_script("merge_history", contract, run_id="r")
    wh.run_script("features", contract, cutoff=FAR)
    rows = wh.query(
        f"SELECT series_id, Total, holiday_name, is_weekend "
        f"FROM {wh.tables.daily_sales_features} ORDER BY date"
    )
    assert [(r["series_id"], r["Total"]) for r in rows] == [
        ("total", 120.5),
        ("total", 0.0),
        ("total", 99.0),
    ]
    assert rows[1]["holiday_name"] == ""
    # The missing day is Saturday 2024-01-06: future_fill weekend says so, whatever the rows
    # around it carry.
    assert [r["is_weekend"] for r in rows] == [False, True, False]


def test_registry_versions_aliases_and_hashes(tmp_path):
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "model.bin").write_bytes(b"abc")
    (model / "metrics.json").write_text("{}")
    reg = LocalModelRegistry(tmp_path / "models", "m")
    v1 = reg.register(str(model), run_id="a", metrics={"wape": 0.2}, extra={})
    again = reg.register(str(model), run_id="a", metrics={"wape": 0.2}, extra={})
    assert again.version == v1.version == "1"  # idempotent per run
    v2 = reg.register(str(model), run_id="b", metrics={"wape": 0.1}, extra={})
    assert v2.version == "2" and Path(v2.uri).parent == tmp_path / "models" / "m"
    assert v2.files["model.bin"] == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    dep = LocalDeployer(reg)
    assert dep.deploy(v1)["version"] == "1"
    assert dep.deploy(v2)["previous_version"] == "1"
    assert reg.get_by_alias("production").version == "2"
    # A tampered promoted file is refused.
    (Path(v1.uri) / "model.bin").write_bytes(b"evil")
    with pytest.raises(RuntimeError, match="differ from the registry record"):
        dep.deploy(reg.get("1"))
    assert reg.get_by_alias("production").version == "2"


def test_memory_limit_caps_duckdb(tmp_path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", "sf", memory_limit="1GB")
    (row,) = wh.query("SELECT current_setting('memory_limit') AS m")
    assert row["m"] == "953.6 MiB"  # 1 GB in DuckDB's binary units
    bad = DuckDBWarehouse(tmp_path / "x.duckdb", "sf", memory_limit="lots")
    with pytest.raises(Exception, match="(?i)memory"):
        bad.query("SELECT 1 AS one")


def test_a_damaged_registry_index_fails_at_once_and_is_never_overwritten(tmp_path):
    from sales_forecast.errors import ConfigError

    registry = LocalModelRegistry(tmp_path / "models", "m")
    registry.index_path.parent.mkdir(parents=True)
    registry.index_path.write_text('{"model": "m", "versions": [')
    with pytest.raises(ConfigError, match="restore it from a backup or move it away"):
        registry.get_by_alias("production")
    assert registry.index_path.read_text() == '{"model": "m", "versions": ['


def test_a_trainer_user_error_is_a_data_error_and_other_failures_are_not(tmp_path):
    """Exit 2 is the trainer's "a mistake the caller can fix": Airflow must not retry it."""
    import sys

    from sales_forecast.errors import DataError
    from sales_forecast.platforms.local import SubprocessJobRunner

    fake = tmp_path / "trainer"
    fake.mkdir()
    (fake / "__main__.py").write_text(
        "import sys\nprint('error: column sales is the target', file=sys.stderr)\n"
        "sys.exit(int(sys.argv[2]))\n"
    )
    runner = SubprocessJobRunner(sys.executable, tmp_path, timeout_s=30)
    with pytest.raises(DataError, match="column sales is the target"):
        runner.run("predict", ["2"], env={}, job_name="j")
    with pytest.raises(RuntimeError, match="failed, exit 3") as err:
        runner.run("predict", ["3"], env={}, job_name="j")
    assert not isinstance(err.value, DataError)
