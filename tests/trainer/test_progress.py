"""Start / end log lines of every fit of ``train`` and ``backtest``, with i/n and elapsed."""

import datetime as dt
import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest

from trainer import progress as progress_module
from trainer.backtest import run_backtest
from trainer.model import Forecaster
from trainer.panel import prepare_panel
from trainer.progress import elapsed_text, progress
from trainer.train import run_train

DONE = re.compile(r" done in \d+\.\d s$")


def _lines(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    """The progress lines (a start or an end) that begin with ``start``."""
    messages = [r.getMessage() for r in caplog.records]
    return [m for m in messages if m.startswith(start) and (m.endswith(" ...") or DONE.search(m))]


def _pairs(lines: list[str]) -> list[str]:
    """The labels of ``<label> ...`` / ``<label> done in <t>`` pairs, checking they pair up."""
    labels = []
    open_labels: list[str] = []
    for line in lines:
        if line.endswith(" ..."):
            open_labels.append(line[: -len(" ...")])
            labels.append(open_labels[-1])
        else:
            assert DONE.search(line), line
            assert open_labels, f"an end without a start: {line}"
            assert DONE.sub("", line) == open_labels.pop(), line
    assert not open_labels, f"started and never ended: {open_labels}"
    return labels


def test_progress_logs_start_and_end_with_elapsed(monkeypatch, caplog):
    clock = iter([10.0, 22.34])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with progress(log, "train: validation window", 1, 2, detail="(cut-off 2025-03-17)"):
            log.info("inside")
    assert [r.getMessage() for r in caplog.records] == [
        "train: validation window 1/2 (cut-off 2025-03-17) ...",
        "inside",
        "train: validation window 1/2 (cut-off 2025-03-17) done in 12.3 s",
    ]


def test_progress_says_when_a_step_failed(monkeypatch, caplog):
    clock = iter([0.0, 125.2])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with pytest.raises(ValueError, match="boom"), progress(log, "final fit"):
            raise ValueError("boom")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "final fit ..."),
        (logging.WARNING, "final fit failed after 2 min 05 s"),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (12.34, "12.3 s"), (59.9, "59.9 s"), (3600, "60 min 00 s")],
)
def test_elapsed_text(seconds, text):
    assert elapsed_text(seconds) == text


def test_train_logs_each_fit_in_order(
    caplog, retail_panel, retail_contract, small_config, tmp_path: Path
):
    panel = prepare_panel(retail_panel, retail_contract)
    config = replace(small_config, validation_windows=2)
    with caplog.at_level(logging.INFO, logger="trainer"):
        run_train(
            panel=panel,
            contract=retail_contract,
            config=config,
            cutoff_date=dt.date(2024, 6, 30),
            model_dir=str(tmp_path / "model"),
        )
    labels = _pairs(_lines(caplog, "train: "))
    rows = f"{len(panel):,}"
    assert labels == [
        f"train: whole step on 6 series, {rows} rows",
        "train: validation window 1/2 (cut-off 2024-06-16): model fit",
        "train: validation window 2/2 (cut-off 2024-06-23): model fit",
        f"train: final fit with intervals on 6 series, {rows} rows up to 2024-06-30",
    ]
    # The whole step's end is the last of them: nothing runs unlogged after it.
    assert DONE.search(_lines(caplog, "train: ")[-1])
    assert _lines(caplog, "train: ")[-1].startswith("train: whole step")
    explained = [r for r in caplog.records if "WAPE = sum of absolute errors" in r.getMessage()]
    assert len(explained) == 1


def test_backtest_logs_each_fit_of_each_window(
    caplog, retail_panel, retail_contract, small_config, tmp_path: Path
):
    full = prepare_panel(retail_panel, retail_contract)
    old = full[full["date"] <= full["date"].max() - dt.timedelta(days=7)]
    production = Forecaster.fit(old, retail_contract, small_config, intervals=False)
    challenger = small_config.with_params(min_child_samples=6)
    with caplog.at_level(logging.INFO, logger="trainer"):
        run_backtest(
            panel=full,
            contract=retail_contract,
            cutoff_date=dt.date(2024, 6, 30),
            horizon=7,
            n_windows=2,
            challenger=challenger,
            champion=small_config,
            champion_artifact=production,
            output_dir=str(tmp_path / "bt"),
            coverage=False,
        )
    labels = _pairs(_lines(caplog, "backtest: "))
    assert labels == [
        "backtest: all 2 window(s) on 6 series",
        "backtest: window 1/2 (cut-off 2024-06-16): challenger fit",
        "backtest: window 1/2 (cut-off 2024-06-16): champion recipe refit",
        # Production was trained up to 2024-06-23: only the last window is after that.
        "backtest: window 2/2 (cut-off 2024-06-23): challenger fit",
        "backtest: window 2/2 (cut-off 2024-06-23): champion recipe refit",
        "backtest: window 2/2 (cut-off 2024-06-23): champion (stored model) forecast",
    ]
    explained = [r for r in caplog.records if "WAPE = sum of absolute errors" in r.getMessage()]
    assert len(explained) == 1
    assert "lower is better" in explained[0].getMessage()
