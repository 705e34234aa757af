"""The review's SQL attacks (D1), replayed against a warehouse that holds another dataset.

Each attack comes through what a user controls (a contract file in SF_CONTRACTS_DIR, the run's
params); afterwards the retail tables must hold exactly what they held before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sales_forecast import config, steps
from sales_forecast.errors import DataError
from sales_forecast.platforms.local import build_local_platform, duckdb_connect
from sales_forecast.run_context import make_run_context

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"
ROWS = [f"2024-02-{d:02d},S01,I001,{d},1.5,false,false,5" for d in range(1, 11)]


@pytest.fixture
def env(tmp_path, monkeypatch):
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SF_INPUT_ROOTS", json.dumps([str(tmp_path)]))
    monkeypatch.setenv("SF_CONTRACTS_DIR", str(contracts))
    config.get_settings.cache_clear()
    settings = config.get_settings()
    sales = tmp_path / "sales.csv"
    sales.write_text("\n".join([HEADER, *ROWS]) + "\n")
    # The state to protect: a retail run merged into history.
    ctx = context(settings, sales, "retail", "manual__golden")
    platform = build_local_platform(settings, "retail", ctx.run_id)
    for step in ("load_to_staging", "validate", "build_features", "merge_history"):
        steps.STEPS[step](ctx, platform, settings)
    yield {"settings": settings, "sales": sales, "contracts": contracts}
    config.get_settings.cache_clear()


def context(settings, sales, dataset, run_id="manual__attack"):
    return make_run_context(
        run_id=run_id,
        logical_date=datetime(2024, 3, 1, tzinfo=UTC),
        params={"input_uri": str(sales), "dataset": dataset},
        settings=settings,
        runs_root=str(settings.runs_root),
    )


def retail_state(settings):
    with duckdb_connect(settings.warehouse_path, read_only=True) as con:
        tables = sorted(
            r[0]
            for r in con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
            ).fetchall()
        )
        history = con.execute(
            "SELECT count(*), sum(sales) FROM sales_forecast.sales_history"
        ).fetchone()
    return tables, history


def contract_doc(name, **fills):
    """The retail contract under another name, some known columns STRING with the given fills."""
    from sales_forecast.contract import load_contract

    doc = load_contract("retail").to_dict()
    for col in doc["columns"]:
        if col["name"] in fills:
            col.update(type="STRING", future_fill=fills[col["name"]])
    return {**doc, "name": name}


@pytest.mark.parametrize(
    "name",
    [
        'x"; DROP TABLE sales_forecast.sales_history; --',
        "sp ace;semi'quote",
        "../../../..escaped",
        "x`; DROP TABLE `sales_forecast.sales_history`; --",
    ],
)
def test_a_hostile_contract_name_never_reaches_sql(env, name):
    settings = env["settings"]
    before = retail_state(settings)
    # The file is found by a safe name; the name inside it is the attack.
    (env["contracts"] / "evil.json").write_text(json.dumps(contract_doc(name)))
    with pytest.raises(DataError):
        ctx = context(settings, env["sales"], "evil")
        steps.load_to_staging(ctx, build_local_platform(settings, "evil"), settings)
    assert retail_state(settings) == before  # no table dropped, created or changed


def test_fill_values_are_data_not_sql(env):
    """D1's second attack: a trailing backslash closing a literal early, SQL in the next one."""
    settings = env["settings"]
    before = retail_state(settings)
    doc = contract_doc(
        "fills",
        price="value:\\",
        on_promo="value:'); DROP TABLE sales_forecast.sales_history; --",
    )
    (env["contracts"] / "fills.json").write_text(json.dumps(doc))
    gappy = env["sales"].with_name("gappy.csv")
    gappy.write_text("\n".join([HEADER, *ROWS[:4], *ROWS[5:]]) + "\n")  # 2024-02-05 missing
    ctx = context(settings, gappy, "fills")
    platform = build_local_platform(settings, "fills", ctx.run_id)
    for step in ("load_to_staging", "validate", "build_features"):
        steps.STEPS[step](ctx, platform, settings)
    tables, history = retail_state(settings)
    assert history == before[1]  # the retail history is intact
    assert set(before[0]) <= set(tables)  # nothing of retail's was dropped
    # And the values are the strings they are, on the filled day.
    with duckdb_connect(settings.warehouse_path, read_only=True) as con:
        filled = con.execute(
            "SELECT price, on_promo FROM sales_forecast_fills.daily_sales_features "
            "WHERE is_gap_filled"
        ).fetchall()
    assert filled == [("\\", "'); DROP TABLE sales_forecast.sales_history; --")]
