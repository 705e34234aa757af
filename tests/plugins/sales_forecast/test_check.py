"""``python -m sales_forecast.check``: a contract and a file through the run's own rules."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from sales_forecast import config
from sales_forecast.check import main, reason_group

from tests._support.contracts import POS_HEADER, pos_contract_doc

REPO = Path(__file__).resolve().parents[3]
POS_CONTRACT = pos_contract_doc()


@pytest.fixture
def env(tmp_path, monkeypatch):
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SF_INPUT_ROOTS", json.dumps([str(tmp_path)]))
    monkeypatch.setenv("SF_CONTRACTS_DIR", str(contracts))
    config.get_settings.cache_clear()
    yield tmp_path
    config.get_settings.cache_clear()


def write_contract(folder: Path, doc: dict, name: str = "pos.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def pos_rows(days: int = 20, stores: tuple[str, ...] = ("S01", "S02")) -> list[str]:
    """Day-first dates, Y/N promotions; S02 sells nothing (no row) on even days."""
    rows = []
    for store in stores:
        for d in range(1, days + 1):
            if store == "S02" and d % 2 == 0:
                continue
            day = date(2025, 1, 1) + timedelta(days=d - 1)
            promo = "Y" if d % 7 == 0 else "N"
            rows.append(f"{day:%d/%m/%Y},{store},A1,{d % 5 + 1},2.5,{promo}")
    return rows


def write_csv(folder: Path, rows: list[str], header: str = POS_HEADER) -> Path:
    path = folder / "pos.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_a_good_export_would_proceed_and_the_summary_says_what_a_run_would_use(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    # 60 days: one S01 row without a readable date stays under the 2% a series may lose.
    rows = pos_rows(days=60)
    rows[3] = "04/01/2025,S01,A1,lots,2.5,N"  # line 5
    rows[4] = "2025-01-05,S01,A1,3,2.5,N"  # line 6: ISO, not the contract's format
    csv = write_csv(env, rows)
    code, out = run("--dataset", str(contract), "--input", str(csv), "--cutoff", "2025-03-01")
    assert code == 0, out
    # The contract, with the file's header names beside the contract's.
    assert "Contract 'pos'" in out and "the till export" in out
    assert "dates as %d/%m/%Y" in out
    assert "sales     FLOAT64  target  Units Sold" in out
    assert "on_promo  BOOL     known   Promo               false" in out
    # What a run would accept and quarantine, and why.
    assert "rows read: 90, accepted: 88, quarantined: 2 (2.2%; a run fails above 20%)" in out
    assert '      1  sales: "…" is not a valid FLOAT64' in out
    assert '      1  date: "…" is not a valid DATE (expected %d/%m/%Y)' in out
    assert 'line 5: sales: "lots" is not a valid FLOAT64' in out
    assert 'line 6: date: "2025-01-05" is not a valid DATE (expected %d/%m/%Y)' in out
    assert "sales = 'Units Sold'" in out
    assert "series: 2, dates 2025-01-01 .. 2025-03-01 (60 days)" in out
    # S02's 30 even days, and S01's 4th and 5th of January (both quarantined).
    assert "days without an accepted row: 32" in out
    assert 'put pos.yaml in SF_CONTRACTS_DIR and trigger with {"dataset": "pos"}' in out
    assert "A run would proceed: 88 rows would be used, 2 quarantined" in out
    # Nothing of the check stays behind in the real warehouse.
    assert not (env / "data" / "warehouse.duckdb").exists()


def test_too_many_rejects_would_fail_the_run(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    rows = [r.replace("/", "-") for r in pos_rows()]  # every date wrong
    csv = write_csv(env, rows)
    code, out = run("--dataset", str(contract), "--input", str(csv), "--cutoff", "2025-03-01")
    assert code == 2
    assert "quarantined: 30 (100.0%" in out
    assert "A run would FAIL: " in out and "no valid rows (30 rejected)" in out
    assert "rejected_rows (run_id='check')" not in out  # the check's table is gone


def test_the_reject_limit_is_the_runs_own(env, monkeypatch):
    monkeypatch.setenv("SF_MAX_REJECT_FRACTION", "0.05")
    config.get_settings.cache_clear()
    contract = write_contract(env / "contracts", POS_CONTRACT)
    rows = pos_rows()
    rows[0] = rows[0].replace(",N", ",maybe")
    rows[1] = rows[1].replace(",N", ",maybe")
    code, out = run("--dataset", str(contract), "--input", str(write_csv(env, rows)))
    assert code == 2
    assert "2 of 30 rows rejected (6.7% > the 5% limit)" in out
    assert "a run fails above 5%" in out


def test_a_series_losing_its_dates_would_fail_the_run(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    rows = [*pos_rows(days=30, stores=("S01",)), "32/01/2025,S01,A1,1,2.5,N"]
    code, out = run("--dataset", str(contract), "--input", str(write_csv(env, rows)))
    assert code == 2
    assert "1 series have more than 2% of their rows rejected with a date" in out
    assert "S01|A1: 1 of 31 rows" in out


def test_the_first_ten_rejects_are_listed_and_all_are_counted(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    rows = pos_rows(days=31, stores=("S01", "S02", "S03", "S04"))
    for i in range(12):
        rows[i * 8] = rows[i * 8].rsplit(",", 1)[0] + ",perhaps"
    code, out = run("--dataset", str(contract), "--input", str(write_csv(env, rows)))
    assert code == 0, out
    assert "first 10 quarantined rows:" in out
    assert out.count("\n    line ") == 10
    assert '     12  on_promo: "…" is not a valid BOOL' in out


def test_a_header_that_does_not_match_names_both_names(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    csv = write_csv(env, pos_rows(), header="Date,Store,SKU,Units,Unit Price,Promo")
    code, out = run("--dataset", str(contract), "--input", str(csv))
    assert code == 2
    assert "missing columns ['Units Sold' (sales)]" in out
    assert "unknown columns ['Units']" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "My Shop"}, "contract name 'My Shop' is not a valid name"),
        ({"date_format": "%d/%m/%y"}, "'%y' is not supported"),
        ({"name": "x" * 120}, "its warehouse dataset: warehouse dataset 'sales_forecast_xxx"),
    ],
)
def test_an_invalid_contract_fails_at_once_with_its_reason(env, change, message):
    contract = write_contract(env / "contracts", {**POS_CONTRACT, **change}, "mine.yaml")
    code, out = run("--dataset", str(contract), "--input", str(write_csv(env, pos_rows())))
    assert code == 2
    assert out.startswith("The contract is invalid: ")
    assert message in out
    assert "never retried" in out


def test_a_contract_name_is_found_as_a_run_finds_it(env):
    write_contract(env / "contracts", POS_CONTRACT)
    csv = write_csv(env, pos_rows())
    code, out = run("--dataset", "pos", "--input", str(csv), "--cutoff", "2025-03-01")
    assert code == 0, out
    assert "Contract 'pos'" in out
    code, out = run("--dataset", "nope", "--input", str(csv))
    assert code == 2 and "dataset 'nope' is not a known contract" in out


def test_a_contract_file_a_run_would_not_find_gets_a_note(env):
    contract = write_contract(env, POS_CONTRACT, "till.yaml")
    code, out = run("--dataset", str(contract), "--input", str(write_csv(env, pos_rows())))
    assert code == 0
    assert "a run finds this contract as pos.yaml in SF_CONTRACTS_DIR" in out


def test_a_file_a_run_could_not_read_gets_a_note(env, tmp_path_factory):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    code, out = run("--dataset", str(contract), "--input", str(write_csv(elsewhere, pos_rows())))
    assert code == 0
    assert "a run could not read the file where it is" in out and "SF_INPUT_ROOTS" in out


def test_rows_after_the_cutoff_are_quarantined_as_in_a_run(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    csv = write_csv(env, pos_rows())
    code, out = run("--dataset", str(contract), "--input", str(csv), "--cutoff", "2025-01-18")
    assert code == 0
    assert "      3  date: a date after the cut-off of this run" in out  # the 19th and 20th
    assert "dates 2025-01-01 .. 2025-01-18" in out


def test_a_missing_input_fails(env):
    contract = write_contract(env / "contracts", POS_CONTRACT)
    code, out = run("--dataset", str(contract), "--input", str(env / "nope.csv"))
    assert code == 2 and "nope.csv: input file not found" in out


@pytest.mark.parametrize(
    ("reason", "groups"),
    [
        ('sales: "abc" is not a valid FLOAT64', ['sales: "…" is not a valid FLOAT64']),
        (
            'sales: "x; y" is not a valid FLOAT64; on_promo: "maybe" is not a valid BOOL',
            ['sales: "…" is not a valid FLOAT64', 'on_promo: "…" is not a valid BOOL'],
        ),
        ("exact duplicate of row 17", ["exact duplicate of row N"]),
        (
            "duplicate key with conflicting values (3 rows for this series and date)",
            ["duplicate key with conflicting values (N rows for this series and date)"],
        ),
        (
            "date: 2030-01-01 is after the cut-off of this run, 2025-01-01",
            ["date: a date after the cut-off of this run"],
        ),
        (
            "malformed CSV line (too many columns): Expected Number of Columns: 6 Found: 7",
            ["malformed CSV line (too many columns)"],
        ),
    ],
)
def test_reasons_are_grouped_without_the_rows_values(reason, groups):
    assert reason_group(reason) == groups


def test_the_module_runs_and_exits_2_when_a_run_would_fail(env):
    contract = write_contract(env / "contracts", {**POS_CONTRACT, "name": "My Shop"}, "x.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "sales_forecast.check", "--dataset", str(contract), "--input", "x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}"},
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "contract name 'My Shop' is not a valid name" in proc.stdout
