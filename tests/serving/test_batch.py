"""Batch prediction: the online predictor over a file or table, in chunks, same forecasts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from serving.batch import load_predictor, main, read_instances, run_batch

S1A = {"store_id": "S1", "item_id": "A"}


def _instances(retail_panel: pd.DataFrame) -> list[dict[str, Any]]:
    rows = retail_panel[(retail_panel.store_id == "S1") & (retail_panel.item_id == "A")]
    newer = rows[rows.date > "2024-06-30"].head(2)
    history = [
        {"date": d.strftime("%Y-%m-%d"), "sales": float(s), "price": 2.5, "on_promo": False}
        for d, s in zip(newer["date"], newer["sales"], strict=True)
    ]
    promo = [{"date": "2024-07-02", "on_promo": True, "price": 1.9}]
    return [
        {**S1A, "horizon": 3},
        {"store_id": "S2", "item_id": "C"},
        {"store_id": "S1", "item_id": "B", "horizon": 5, "future": promo},
        {**S1A, "horizon": 4, "history": history},
        {"store_id": "S2", "item_id": "A", "horizon": 2},
    ]


@pytest.fixture()
def served_registry(registry: Any, model_a: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    registry.promote(model_a)
    monkeypatch.setenv("SF_DATA_ROOT", str(registry.data_root))
    return registry


def test_batch_and_online_give_the_same_forecasts(
    served_registry: Any, client_for: Any, retail_panel: pd.DataFrame, tmp_path: Path
) -> None:
    instances = _instances(retail_panel)
    online = client_for().post("/predict", json={"instances": instances})
    assert online.status_code == 200, online.text
    predictor = load_predictor()
    out = tmp_path / "out.jsonl"
    result = run_batch(predictor, instances, str(out), chunk_size=2)
    assert result.predicted == 5 and result.failed == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["instance"] for line in lines] == instances
    assert [line["prediction"] for line in lines] == online.json()["predictions"]
    # Chunk size changes nothing.
    one = tmp_path / "one.jsonl"
    run_batch(predictor, instances, str(one), chunk_size=500)
    assert one.read_text() == out.read_text()


def test_a_bad_instance_costs_only_its_own_line(served_registry: Any, tmp_path: Path) -> None:
    instances = [{**S1A, "horizon": 2}, {"store_id": "S9", "item_id": "Q"}, {**S1A, "horizon": 0}]
    out = tmp_path / "out.jsonl"
    result = run_batch(load_predictor(), instances, str(out), chunk_size=10)
    assert (result.predicted, result.failed) == (1, 2)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert "prediction" in lines[0]
    assert "unknown series" in lines[1]["error"]
    assert "horizon" in lines[2]["error"]


def test_table_output_rows_are_replaced_per_batch_id(
    served_registry: Any, tmp_path: Path, retail_panel: pd.DataFrame
) -> None:
    src = tmp_path / "instances.parquet"
    pd.DataFrame(
        [{**S1A, "horizon": 3}, {"store_id": "S2", "item_id": "A", "horizon": 2}]
    ).to_parquet(src, index=False)
    instances = read_instances(str(src))
    assert instances == [{**S1A, "horizon": 3}, {"store_id": "S2", "item_id": "A", "horizon": 2}]
    db = tmp_path / "w.duckdb"
    uri = f"duckdb://{db}?table=batch_forecasts"
    predictor = load_predictor()
    assert run_batch(predictor, instances, uri, batch_id="b1").rows == 5
    run_batch(predictor, instances, uri, batch_id="b1")
    run_batch(predictor, instances[:1], uri, batch_id="b2")
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(
            con.execute("SELECT batch_id, count(*) FROM batch_forecasts GROUP BY 1").fetchall()
        )
        cols = [r[0] for r in con.execute("DESCRIBE batch_forecasts").fetchall()]
    assert counts == {"b1": 5, "b2": 3}
    assert cols[:5] == ["batch_id", "model_version", "series_id", "store_id", "item_id"]


def test_the_command(
    served_registry: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({**S1A, "horizon": 2})
        + "\n\n"
        + json.dumps({"store_id": "S2", "item_id": "A"})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    assert main(["--input", str(src), "--output", str(out), "--version", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["predicted"] == 2 and summary["model_version"] == "1"
    assert main(["--input", str(src), "--output", str(out), "--version", "7"]) == 2
    assert "has no version '7'" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert main(["--input", str(bad), "--output", str(out)]) == 2
    assert "line 1: not JSON" in capsys.readouterr().err
    every_bad = tmp_path / "unknown.jsonl"
    every_bad.write_text(json.dumps({"store_id": "S9", "item_id": "Z"}) + "\n")
    assert main(["--input", str(every_bad), "--output", str(out)]) == 2
