"""The run report the backtest command writes beside backtest.json."""

import base64
import json
import re
from pathlib import Path

import pytest

from trainer import cli
from trainer.backtest import load_artifact
from trainer.model import Forecaster
from trainer.report import MAX_SERIES, sample_series

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def model_dir(tmp_path: Path, retail_panel, retail_contract, small_config) -> Path:
    path = tmp_path / "model"
    Forecaster.fit(retail_panel, retail_contract, small_config).save(str(path))
    (path / "params.json").write_text(json.dumps(small_config.to_dict()))
    return path


def _backtest(tmp_path, db, contract_file, model_dir, capsys, *extra) -> dict:
    code = cli.main(
        [
            "backtest", "--data-uri", db, "--contract", contract_file,
            "--cutoff-date", "2024-06-30", "--horizon", "7", "--n-windows", "2",
            "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "bt"), *extra,
        ]
    )  # fmt: skip
    assert code == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_backtest_writes_a_self_contained_report(
    tmp_path: Path, retail_duckdb, retail_contract_file, model_dir, capsys
):
    summary = _backtest(tmp_path, retail_duckdb, retail_contract_file, model_dir, capsys)
    report_dir = tmp_path / "bt" / "report"
    assert summary["report"] == str(report_dir / "report.html")
    page = (report_dir / "report.html").read_text()
    assert (tmp_path / "bt" / "gate.json").exists()
    # The metric table: every method of backtest.json with its scores.
    backtest = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    table = page.split("<table class='metrics'>")[1].split("</table>")[0]
    for name in backtest["methods"]:
        assert f"<td>{name}</td>" in table
    wape = backtest["methods"]["challenger"]["overall"]["wape"]
    assert f"{wape:.4g}" in table
    # Feature importance names the model's own features.
    booster = load_artifact(str(model_dir))._mlf.models_["lgbm"].booster_
    importance = page.split("<table class='importance'>")[1].split("</table>")[0]
    assert "Feature importance" in page
    for feature in booster.feature_name():
        assert f"<td>{feature}</td>" in importance
    # Every picture is embedded; nothing is loaded from elsewhere.
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert images and all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    assert all((report_dir / p).stat().st_size > 0 for p in pngs)
    series = [p for p in pngs if p.startswith("series_")]
    # Six series in the panel, the five with a forecast on both windows and the newcomer.
    assert 1 <= len(series) <= MAX_SERIES and "total.png" in pngs
    assert {"metrics.png", "feature_importance.png"} <= set(pngs)
    assert len(images) == len(pngs)


def test_the_series_sample_is_bounded_and_seeded():
    ids = [f"s{i}" for i in range(40)]
    first = sample_series(ids, seed=3)
    assert len(first) == MAX_SERIES and first == sample_series(reversed(ids), seed=3)
    assert first != sample_series(ids, seed=4)
    assert sample_series(["b", "a", "a"], seed=0) == ["a", "b"]


def test_a_report_failure_is_a_warning_and_the_backtest_still_passes(
    tmp_path: Path, retail_duckdb, retail_contract_file, model_dir, capsys, monkeypatch, caplog
):
    import trainer.report

    def broken(**_):
        raise ValueError("no canvas")

    monkeypatch.setattr(trainer.report, "write_report", broken)
    summary = _backtest(tmp_path, retail_duckdb, retail_contract_file, model_dir, capsys)
    assert summary["report"] is None and summary["gate"]["metric"] == "wape"
    assert (tmp_path / "bt" / "gate.json").exists()
    assert "run report was not written (ValueError: no canvas)" in caplog.text


def test_a_params_only_model_folder_still_gets_a_report(
    tmp_path: Path, retail_duckdb, retail_contract_file, small_config, capsys
):
    folder = tmp_path / "params_only"
    folder.mkdir()
    (folder / "params.json").write_text(json.dumps(small_config.to_dict()))
    summary = _backtest(
        tmp_path, retail_duckdb, retail_contract_file, folder, capsys, "--no-coverage"
    )
    page = Path(summary["report"]).read_text()
    assert "Not available: the challenger&#x27;s stored model could not be loaded" in page
    assert "series_01.png" in page
