"""``python -m sales_forecast.report``: what the latest run wrote, read-only."""

from __future__ import annotations

import pytest
from sales_forecast import report
from sales_forecast.platforms.local import duckdb_connect


@pytest.fixture
def warehouse(settings):
    with duckdb_connect(settings.warehouse_path) as con:
        con.execute("CREATE SCHEMA sales_forecast")
        con.execute(
            "CREATE TABLE sales_forecast.daily_sales_forecasts AS SELECT * FROM (VALUES "
            "('r1', '3', DATE '2025-03-31', 'S01|I001', DATE '2025-04-01', 5.0, 4.0, 6.0, "
            "TIMESTAMP '2025-04-01 01:00:00'),"
            "('r1', 'seasonal_naive', DATE '2025-03-31', 'S02|I009', DATE '2025-04-01', 2.0, "
            "1.0, 3.0, TIMESTAMP '2025-04-01 01:00:00')) "
            "t(run_id, model_version, cutoff_date, series_id, date, forecast, lower_80, "
            "upper_80, created_at)"
        )
        con.execute(
            "CREATE TABLE sales_forecast.rejected_rows AS SELECT * FROM (VALUES "
            "('r1', 'in.csv', 7, 'sales: negative value')) "
            "t(run_id, source_file, source_row, reason)"
        )
        con.execute(
            "CREATE TABLE sales_forecast.daily_sales_features AS "
            "SELECT 'S01|I001' AS series_id, DATE '2025-03-31' AS date"
        )
    return settings


def test_the_report_shows_models_a_series_rejects_and_exports(warehouse, tmp_path, capsys):
    out_csv = tmp_path / "f.csv"
    assert report.main(["--series", "S01/I001", "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "model 3 (1 series), seasonal_naive (1 series)" in text
    assert "series S01|I001" in text and "2025-04-01  3" in text
    assert "in.csv line 7: sales: negative value" in text
    assert "data ends 2025-03-31, " in text and "days before today" in text
    assert out_csv.read_text().splitlines()[0].startswith("run_id,model_version,cutoff_date")


def test_the_report_takes_the_dags_dataset_values(warehouse, capsys):
    assert report.main(["--dataset", "retail"]) == 0
    assert report.main(["--dataset", "plugins/sales_forecast/contracts/retail.yaml"]) == 0
    assert report.main(["--dataset", 'x"; DROP TABLE t; --']) == 2
    assert "is not a valid name" in capsys.readouterr().out
