import numpy as np
import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.panel import fill_unknown_target, known_rows, prepare_panel


def test_prepare_panel_types_and_drops_observed(retail_panel, retail_contract):
    panel = prepare_panel(retail_panel, retail_contract)
    assert "temperature" not in panel.columns
    assert panel["on_promo"].dtype == float
    assert panel["date"].dtype == "datetime64[ns]"
    assert panel.groupby("series_id").size().to_dict()["S2|C"] == 40


def test_prepare_panel_errors(retail_panel, retail_contract):
    with pytest.raises(TrainerError, match=r"missing columns \['price'\]"):
        prepare_panel(retail_panel.drop(columns=["price"]), retail_contract)
    with pytest.raises(TrainerError, match="no rows"):
        prepare_panel(retail_panel.iloc[:0], retail_contract)
    with pytest.raises(TrainerError, match="duplicate"):
        prepare_panel(pd.concat([retail_panel, retail_panel.iloc[:1]]), retail_contract)
    with pytest.raises(TrainerError, match="missing days"):
        prepare_panel(retail_panel.drop(index=[5]), retail_contract)


# --------------------------------------------------------------------- unknown (quarantined) days

N = float("nan")


@pytest.mark.parametrize(
    ("series", "values", "unknown", "expected"),
    [
        # 1. the same series' value 7 days earlier, when that day is known
        ("a" * 9, [1, 2, 3, 4, 5, 6, 7, 8, N], "........?", [1, 2, 3, 4, 5, 6, 7, 8, 2]),
        # 2. else the last known value before (no day 7 earlier yet)
        ("a" * 5, [1, 2, N, 4, 5], "..?..", [1, 2, 2, 4, 5]),
        # 2. ... also when the day 7 earlier is itself unknown (fills never feed fills)
        ("a" * 9, [1, N, 3, 4, 5, 6, 7, 8, N], ".?......?", [1, 1, 3, 4, 5, 6, 7, 8, 8]),
        # 2. ... the nearest known day before a run of unknown days
        ("a" * 5, [1, N, N, N, 5], ".???.", [1, 1, 1, 1, 5]),
        # 3. else the first known value after (the series starts unknown)
        ("a" * 4, [N, N, 3, 4], "??..", [3, 3, 3, 4]),
        # a value on a flagged row is no actual either: the flag wins
        ("a" * 3, [1, 99, 3], ".?.", [1, 1, 3]),
        # 4. nothing known at all: 0
        ("a" * 3, [N, N, N], "???", [0, 0, 0]),
        # a gap-filled 0 is a known value (zero sales), so it is copied
        ("a" * 3, [0, N, 5], ".?.", [0, 0, 5]),
        # never across series: b's fills come from b only, a's lag-7 day is not b's
        (
            "a" * 3 + "b" * 9,
            [1, 2, 3, N, 5, 6, 7, 8, 9, N, 11, N],
            "...?.....?.?",
            [1, 2, 3, 5, 5, 6, 7, 8, 9, 9, 11, 5],
        ),
        # nothing unknown: unchanged
        ("ab", [1, N], "..", [1, N]),
    ],
)
def test_fill_unknown_target_rule(series, values, unknown, expected):
    flags = np.array([c == "?" for c in unknown])
    out = fill_unknown_target(np.array(values, dtype=float), flags, np.array(list(series)))
    np.testing.assert_array_equal(out, np.array(expected, dtype=float))


def _with_unknown(panel: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    out = panel.copy()
    out["is_unknown"] = False
    out.loc[rows, "is_unknown"] = True
    out.loc[rows, "sales"] = np.nan
    return out


def test_prepare_panel_accepts_null_target_only_on_unknown_rows(retail_panel, retail_contract):
    a = retail_panel.index[retail_panel["series_id"] == "S1|A"]
    rows = [int(a[20]), int(a[21]), int(a[100])]
    raw = _with_unknown(retail_panel, rows)
    panel = prepare_panel(raw.sample(frac=1, random_state=0), retail_contract)
    assert panel["is_unknown"].dtype == bool and int(panel["is_unknown"].sum()) == 3
    assert panel["sales"].notna().all()
    s1a = panel[panel["series_id"] == "S1|A"].reset_index(drop=True)
    truth = retail_panel.loc[a, "sales"].to_numpy()
    # Day 20 and 21: last week's value; day 100 too.
    assert s1a.loc[20, "sales"] == truth[13] and s1a.loc[21, "sales"] == truth[14]
    assert s1a.loc[100, "sales"] == truth[93]
    assert s1a["is_unknown"].sum() == 3 and not panel["is_gap_filled"].any()

    # A NULL target on a row not flagged unknown stays the clear error it was.
    broken = raw.copy()
    broken.loc[int(a[50]), "sales"] = np.nan
    with pytest.raises(TrainerError, match=r"target 'sales' has 1 null .*S1\|A on 2024-02-02"):
        prepare_panel(broken, retail_contract)
    with pytest.raises(TrainerError, match="has 3 null"):
        prepare_panel(raw.drop(columns=["is_unknown"]), retail_contract)


def test_is_unknown_defaults_to_false_and_parses_text(retail_panel, retail_contract):
    panel = prepare_panel(retail_panel, retail_contract)
    assert panel["is_unknown"].dtype == bool and not panel["is_unknown"].any()
    # A CSV panel spells BOOLs as text; blanks (an older row) are not unknown.
    raw = _with_unknown(retail_panel, [30])
    raw["is_unknown"] = raw["is_unknown"].map({True: "true", False: "f"}).astype(object)
    raw.loc[31, "is_unknown"] = None
    panel = prepare_panel(raw, retail_contract)
    assert panel["is_unknown"].tolist().count(True) == 1 and panel["sales"].notna().all()
    raw.loc[32, "is_unknown"] = "perhaps"
    with pytest.raises(TrainerError, match="cannot parse 'perhaps' as BOOL"):
        prepare_panel(raw, retail_contract)


def test_known_rows_drops_the_unknown_days(retail_panel, retail_contract):
    a = retail_panel.index[retail_panel["series_id"] == "S1|A"]
    panel = prepare_panel(_with_unknown(retail_panel, [int(a[-1])]), retail_contract)
    last = panel["date"].max()
    frame = pd.DataFrame(
        {"series_id": ["S1|A", "S1|A", "S2|A"], "date": [last, last - pd.Timedelta(days=1), last]}
    )
    kept = known_rows(frame, panel, retail_contract)
    assert kept.index.tolist() == [1, 2]
    assert known_rows(frame, prepare_panel(retail_panel, retail_contract), retail_contract) is frame
