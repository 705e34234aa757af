"""A point-of-sale export used as it comes, through every step of the DAG on the local platform.

The file is what a till system writes, not what the demo data looks like: its own header names
(``Date,Store,SKU,Units Sold,Unit Price,Promo``), day-first dates (``31/10/2025``), ``Y``/``N``
promotions, and no row at all on a day an item sold nothing. The contract maps it (``header``,
``date_format``) and lives in ``SF_CONTRACTS_DIR``; the check command and the run must agree.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sales_forecast import config, steps
from sales_forecast.check import main as check_main
from sales_forecast.errors import SkipStep
from sales_forecast.platforms.local import build_local_platform
from sales_forecast.run_context import make_run_context
from sales_forecast.tasks import DailyTasks

pytestmark = pytest.mark.e2e

HORIZON = 7
START = date(2024, 9, 1)
LAST = date(2025, 3, 31)  # the export's last day
CONTRACT = """\
name: pos
description: The till system's daily export, as it comes.
date_column: date
target: sales
series_keys: [store_id, item_id]
date_format: "%d/%m/%Y"
columns:
  - {name: date, type: DATE, header: Date}
  - {name: store_id, type: STRING, header: Store}
  - {name: item_id, type: STRING, header: SKU}
  - {name: sales, type: FLOAT64, header: Units Sold}
  - {name: price, type: FLOAT64, role: known, future_fill: last, header: Unit Price}
  - {name: on_promo, type: BOOL, role: known, future_fill: "false", header: Promo}
"""
HEADER = "Date,Store,SKU,Units Sold,Unit Price,Promo"


def pos_export() -> tuple[list[str], int]:
    """The export's lines (header first) and how many zero-sales days were left out."""
    rng = np.random.default_rng(7)
    lines, left_out = [HEADER], 0
    days = (LAST - START).days + 1
    for store, level in (("S01", 6.0), ("S02", 3.0)):
        for item, price in (("SKU-1", 2.5), ("SKU-2", 11.0)):
            for n in range(days):
                day = START + timedelta(days=n)
                promo = day.day % 10 < 2
                weekly = 1.5 if day.weekday() >= 5 else 1.0
                units = rng.poisson(level * weekly * (1.8 if promo else 1.0) / (price / 2.5))
                if units == 0:
                    left_out += 1  # the till writes nothing for a day without sales
                    continue
                shown_price = price * (0.8 if promo else 1.0)
                lines.append(
                    f"{day:%d/%m/%Y},{store},{item},{units},{shown_price:.2f},"
                    f"{'Y' if promo else 'N'}"
                )
    return lines, left_out


@pytest.fixture
def env(tmp_path, monkeypatch):
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "pos.yaml").write_text(CONTRACT)
    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SF_INPUT_ROOTS", json.dumps([str(tmp_path)]))
    monkeypatch.setenv("SF_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("SF_BACKTEST_WINDOWS", "1")
    config.get_settings.cache_clear()
    yield tmp_path
    config.get_settings.cache_clear()


def test_a_pos_export_as_it_comes_gets_forecasts(env: Path):
    lines, left_out = pos_export()
    assert left_out > 20  # the panel has days without a row to fill
    # One day of S01's SKU-1 in ISO, not the contract's format.
    bad = next(i for i, line in enumerate(lines) if line.startswith("15/03/2025,S01,SKU-1,"))
    lines[bad] = lines[bad].replace("15/03/2025", "2025-03-15")
    path = env / "export.csv"
    path.write_text("\n".join(lines) + "\n")
    bad_line_no, rows = bad + 1, len(lines) - 1

    # The check says what the run will do, before the run.
    out = io.StringIO()
    assert check_main(["--dataset", "pos", "--input", str(path), "--cutoff", str(LAST)], out) == 0
    report = out.getvalue()
    assert f"rows read: {rows}, accepted: {rows - 1}, quarantined: 1" in report
    assert f"days without an accepted row: {left_out + 1}" in report

    settings = config.get_settings()
    when = datetime(LAST.year, LAST.month, LAST.day, tzinfo=UTC) + timedelta(days=1)
    ctx = make_run_context(
        run_id=f"scheduled__{when.isoformat()}",
        logical_date=when,
        params={"input_uri": str(path), "dataset": "pos", "horizon": HORIZON},
        settings=settings,
        runs_root=str(settings.runs_root),
    )
    assert ctx.cutoff_date == LAST
    platform = build_local_platform(settings, "pos", ctx.run_id)
    results: dict[str, object] = {}
    for step in DailyTasks._fields:
        try:
            results[step] = steps.STEPS[step](ctx, platform, settings)
        except SkipStep as exc:
            results[step] = f"skipped: {exc}"
    wh = platform.warehouse
    assert wh.dataset == "sales_forecast_pos"  # its own tables, apart from retail's

    # Validation: everything but the line in another date format, named as such.
    assert results["validate"]["rows"] == rows  # type: ignore[index]
    assert results["validate"]["rejected"] == 1  # type: ignore[index]
    (rejected,) = wh.query(f"SELECT source_row, reason FROM {wh.tables.rejected_rows}")
    assert rejected == {
        "source_row": bad_line_no,
        "reason": 'date: "2025-03-15" is not a valid DATE (expected %d/%m/%Y)',
    }

    # History under the contract's names, the day-first dates and Y/N read right.
    (hist,) = wh.query(
        f"SELECT COUNT(*) AS n, MIN(date) AS first, MAX(date) AS last, "
        f"COUNTIF(on_promo) AS promos, COUNTIF(on_promo IS NULL) AS no_promo_value "
        f"FROM {wh.tables.sales_history}"
    )
    promo_lines = sum(1 for line in lines[1:] if line.endswith(",Y") and line != lines[bad])
    assert hist == {
        "n": rows - 1,
        "first": START,
        "last": LAST,
        "promos": promo_lines,
        "no_promo_value": 0,
    }

    # The left-out days are days without sales; the quarantined day is unknown, not zero.
    (panel,) = wh.query(
        f"SELECT COUNT(*) AS n, COUNTIF(is_gap_filled) AS gaps, "
        f"COUNTIF(is_gap_filled AND sales = 0) AS zero_gaps, COUNTIF(is_unknown) AS unknown "
        f"FROM {wh.tables.daily_sales_features}"
    )
    days = (LAST - START).days + 1
    assert panel["n"] == 4 * days
    assert panel["gaps"] == panel["zero_gaps"] == left_out + 1  # 15 March: no readable date
    assert panel["unknown"] == 0

    # Forecasts for every series, the days after the export's last day.
    forecasts = wh.query(
        f"SELECT series_id, COUNT(*) AS n, MIN(date) AS first, MAX(date) AS last, "
        f"COUNTIF(forecast IS NULL OR lower_80 IS NULL) AS missing "
        f"FROM {wh.tables.daily_sales_forecasts} WHERE run_id = @r GROUP BY 1 ORDER BY 1",
        r=ctx.run_id,
    )
    assert [f["series_id"] for f in forecasts] == [
        "S01|SKU-1",
        "S01|SKU-2",
        "S02|SKU-1",
        "S02|SKU-2",
    ]
    for f in forecasts:
        assert f["n"] == HORIZON and f["missing"] == 0
        assert f["first"] == LAST + timedelta(days=1)
        assert f["last"] == LAST + timedelta(days=HORIZON)
    # The contract travelled to the trainer with its header names and format.
    sent = json.loads(Path(ctx.contract_uri).read_text())
    assert sent["date_format"] == "%d/%m/%Y"
    assert sent["columns"][3] == {
        "name": "sales",
        "type": "FLOAT64",
        "role": "target",
        "header": "Units Sold",
    }
    assert str(results["register"]).startswith("skipped")  # enable_deploy was not asked for
