"""The trainer image depends on the standard library, its own requirements and sf_contract only.

It never imports the Airflow side (``airflow``, ``sales_forecast``, ``plugins``): it meets it
through arguments, files and tables, and shares the contract through ``sf_contract``.
"""

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAINER = REPO / "trainer"
FORBIDDEN = ("airflow", "sales_forecast", "plugins")

_CHECK = """
import pkgutil, sys
import trainer
for info in pkgutil.walk_packages(trainer.__path__, "trainer."):
    if info.name != "trainer.__main__":
        __import__(info.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(",".join(bad))
"""


def _requirements() -> set[str]:
    names = set()
    for line in (TRAINER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_trainer_never_imports_airflow_or_plugins():
    result = subprocess.run(
        [sys.executable, "-c", _CHECK.format(forbidden=FORBIDDEN)], cwd=REPO, capture_output=True,
        text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    # Lazy imports inside functions would dodge the check above; the source check catches them.
    pattern = re.compile(r"^\s*(from|import)\s+(airflow|sales_forecast|plugins)\b", re.M)
    for path in TRAINER.rglob("*.py"):
        assert not pattern.search(path.read_text()), path


def test_trainer_imports_only_the_stdlib_its_requirements_and_sf_contract():
    required = _requirements()
    distributions = metadata.packages_distributions()
    for path in TRAINER.rglob("*.py"):
        for root in _imported_roots(path):
            if root in sys.stdlib_module_names or root in ("trainer", "sf_contract"):
                continue
            dists = {d.lower().replace("_", "-") for d in distributions.get(root, [])}
            assert dists & required, f"{path.relative_to(REPO)} imports {root} ({dists or '?'})"
