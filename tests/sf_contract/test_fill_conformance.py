"""``future_fill`` is applied twice, and both places must give a filled day the same value.

History: features.sql fills the gap days of a series in the warehouse (DuckDB here, the same
statements BigQuery runs). Forecast days: the trainer fills the days after history in pandas
(:func:`trainer.future.build_future_frame`). For each rule, one tiny history with a gap runs
through the SQL; the trainer is given the same history up to the gap and asked for the gap's
days as forecast days. Each side's value for each day, as the model sees it, must agree.
"""

import datetime as dt

import pandas as pd
import pytest
from sales_forecast.platforms.local import DuckDBWarehouse

from sf_contract.schema import parse_contract
from trainer import feature_spec as trainer_feature_spec
from trainer import future as trainer_future
from trainer import panel as trainer_panel
from trainer.config import FeatureConfig

# Every day of the file is on or before the run's cut-off.
FAR_CUTOFF = dt.date(9999, 12, 30)

# History has rows on a Thursday and the Tuesday after; Friday to Monday are gap days, so the
# weekend rule sees two weekdays and two weekend days.
THURSDAY = dt.date(2024, 1, 4)
GAP = [THURSDAY + dt.timedelta(days=i) for i in range(1, 5)]
TUESDAY = THURSDAY + dt.timedelta(days=5)
SERIES = ("S1", "S2")
NUMERIC = ("FLOAT64", "INT64", "BOOL")

# (type, rule, the column's value on Thursday per series, on Tuesday, the gap days' values)
CASES = [
    ("FLOAT64", "last", ("2.5", "7"), "9", {"S1": [2.5] * 4, "S2": [7.0] * 4}),
    ("INT64", "last", ("3", "-1"), "9", {"S1": [3.0] * 4, "S2": [-1.0] * 4}),
    ("BOOL", "last", ("yes", "f"), "false", {"S1": [1.0] * 4, "S2": [0.0] * 4}),
    ("STRING", "last", ("red", "blue"), "green", {"S1": ["red"] * 4, "S2": ["blue"] * 4}),
    ("FLOAT64", "zero", ("2.5", "7"), "9", [0.0] * 4),
    ("INT64", "zero", ("3", "4"), "9", [0.0] * 4),
    ("BOOL", "zero", ("true", "true"), "true", [0.0] * 4),
    ("BOOL", "false", ("true", "true"), "true", [0.0] * 4),
    ("BOOL", "weekend", ("false", "true"), "false", [0.0, 1.0, 1.0, 0.0]),
    ("FLOAT64", "value:1.5", ("2.5", "7"), "9", [1.5] * 4),
    ("FLOAT64", "value:-2e-3", ("2.5", "7"), "9", [-0.002] * 4),
    ("INT64", "value:-4", ("3", "4"), "9", [-4.0] * 4),
    # BigQuery's SAFE_CAST('yes' AS BOOL) is NULL: the fill constant must be the contract's
    # own parse of the text, as the trainer's is.
    ("BOOL", "value:yes", ("false", "false"), "false", [1.0] * 4),
    ("BOOL", "value:N", ("true", "true"), "true", [0.0] * 4),
    ("STRING", "value:none", ("red", "blue"), "green", ["none"] * 4),
    ("STRING", "value:O'Brien", ("red", "blue"), "green", ["O'Brien"] * 4),
    ("STRING", "value:", ("red", "blue"), "green", [""] * 4),
]
COLUMNS = [f"x{i}" for i in range(len(CASES))]


@pytest.fixture(scope="module")
def contract():
    """One contract holding every case as its own known column."""
    return parse_contract(
        {
            "name": "conformance",
            "date_column": "date",
            "target": "sales",
            "series_keys": ["store"],
            "columns": [
                {"name": "date", "type": "DATE", "role": "date"},
                {"name": "store", "type": "STRING", "role": "key"},
                {"name": "sales", "type": "FLOAT64", "role": "target"},
                *(
                    {"name": name, "type": ctype, "role": "known", "future_fill": rule}
                    for name, (ctype, rule, *_) in zip(COLUMNS, CASES, strict=True)
                ),
            ],
        }
    )


def csv_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def sql_panel(tmp_path_factory, contract) -> pd.DataFrame:
    """daily_sales_features for the history, built by the pipeline's own scripts on DuckDB."""
    tmp = tmp_path_factory.mktemp("conformance")
    lines = [",".join(contract.column_names)]
    for i, store in enumerate(SERIES):
        thursday = [csv_text(case[2][i]) for case in CASES]
        tuesday = [csv_text(case[3]) for case in CASES]
        lines.append(",".join([str(THURSDAY), store, "3", *thursday]))
        lines.append(",".join([str(TUESDAY), store, "4", *tuesday]))
    path = tmp / "history.csv"
    path.write_text("\n".join(lines) + "\n")
    wh = DuckDBWarehouse(tmp / "w.duckdb", "sf")
    wh.load_csv_to_staging(str(path), contract.column_names, contract)
    wh.run_script("create_tables", contract)
    wh.run_script("validate", contract, cutoff=FAR_CUTOFF)
    wh.run_script("quarantine", contract, run_id="r", source_file=str(path))
    wh.run_script("merge_history", contract, run_id="r")
    wh.run_script("features", contract, cutoff=FAR_CUTOFF)
    rejected = wh.query(f"SELECT source_row, reason FROM {wh.tables.rejected_rows}")
    assert rejected == [], "the history rows must all be valid"
    rows = wh.query(f"SELECT * FROM {wh.tables.daily_sales_features} ORDER BY series_id, date")
    return pd.DataFrame(rows)


def as_model_sees_it(value, ctype: str):
    """A panel value the way the trainer encodes it: numbers and booleans as floats."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return float(value) if ctype in NUMERIC else str(value)


@pytest.fixture(scope="module")
def trainer_frame(contract, sql_panel) -> pd.DataFrame:
    """The trainer's forecast of the gap days, from the same history up to Thursday.

    The feature spec comes from the whole SQL panel, as in training (its categories include
    the values features.sql filled in).
    """
    prepared = trainer_panel.prepare_panel(sql_panel, contract, source="features")
    spec = trainer_feature_spec.build_feature_spec(prepared, contract, FeatureConfig())
    history = sql_panel[pd.to_datetime(sql_panel["date"]).dt.date <= THURSDAY]
    state = trainer_panel.series_state(
        trainer_panel.prepare_panel(history, contract, source="history"), contract
    )
    frame, filled, _ = trainer_future.build_future_frame(spec, contract, state, horizon=len(GAP))
    # Every forecast day of every column was a filled day.
    assert filled == dict.fromkeys(COLUMNS, len(GAP) * len(SERIES))
    names = {c.source: c.name for c in spec.dynamic}
    return frame.rename(columns={v: k for k, v in names.items()})


@pytest.mark.parametrize(
    ("column", "ctype", "expected"),
    [
        pytest.param(name, case[0], case[4], id=f"{case[1]}-{case[0]}")
        for name, case in zip(COLUMNS, CASES, strict=True)
    ],
)
def test_sql_and_trainer_fill_a_day_alike(sql_panel, trainer_frame, column, ctype, expected):
    want = expected if isinstance(expected, dict) else dict.fromkeys(SERIES, expected)

    gap_rows = sql_panel[sql_panel["is_gap_filled"]]
    assert sorted(set(gap_rows["date"])) == GAP
    sql = {
        str(sid): [as_model_sees_it(v, ctype) for v in group.sort_values("date")[column]]
        for sid, group in gap_rows.groupby("series_id", sort=True)
    }
    assert sql == want, "features.sql"

    trainer = {}
    for sid, group in trainer_frame.groupby("unique_id", sort=True):
        assert [d.date() for d in pd.to_datetime(group["ds"])] == GAP
        trainer[str(sid)] = [as_model_sees_it(v, ctype) for v in group[column].astype(object)]
    assert trainer == want, "trainer.future.build_future_frame"
