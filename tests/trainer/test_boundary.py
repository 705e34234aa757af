"""The trainer image must not depend on the Airflow side."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CHECK = """
import sys
import trainer.backtest, trainer.baselines, trainer.cli, trainer.config, trainer.contract
import trainer.features, trainer.io, trainer.metrics, trainer.model, trainer.predict, trainer.train
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("airflow", "sales_forecast", "plugins"))
print(",".join(bad))
"""


def test_trainer_never_imports_airflow_or_plugins():
    result = subprocess.run(
        [sys.executable, "-c", _CHECK], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    # Lazy imports inside functions would dodge the check above; the source check catches them.
    pattern = re.compile(r"^\s*(from|import)\s+(airflow|sales_forecast|plugins)\b", re.M)
    for path in (REPO / "trainer").rglob("*.py"):
        assert not pattern.search(path.read_text()), path
