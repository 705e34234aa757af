"""Airflow's own plugin loader over the real plugins/ folder imports only our one plugin file.

Every Airflow component (scheduler, API server, triggerer, dag-processor) and every task at
start runs the plugin loader, which imports each `.py` under plugins/ as a top-level module
(`config`, `base`, `local`, ...; with the Vertex AI SDK behind them). plugins/.airflowignore
keeps our packages out of it: they are libraries on sys.path, not plugins. The one real plugin,
plugins/forecasts_view.py (the "Sales forecasts" view), is a small module that imports none of
our packages until the API server builds its app. This runs both
loaders (`airflow.plugins_manager` of the server components, which follows
`[core] dag_ignore_file_syntax`, here regexp; `airflow.sdk.plugins_manager` of the task runner,
always glob; and the server loader once more with glob) in a fresh interpreter, over the
repository's plugins/ and over a copy laid out as deploy_composer.sh leaves the Composer bucket
(sf_contract/ next to sales_forecast/), then imports the DAG's task code from that sys.path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"

PROBE = r"""
import json, sys
from pathlib import Path

folder = Path(sys.argv[1]).resolve()
ours = {"sales_forecast", "sf_contract"} | {
    p.stem for p in folder.rglob("*.py")
}  # every name the loader would register (it uses each file's stem)

def from_folder(name):
    path = getattr(sys.modules.get(name), "__file__", None) or ""
    return path.startswith(str(folder))

from airflow import plugins_manager as core
from airflow.sdk import plugins_manager as sdk
runs = (
    ("core/regexp", core._get_plugins),
    ("sdk/glob", sdk._get_plugins),
    ("core/glob", lambda: core._load_plugins_from_plugin_directory(
        str(folder), ignore_file_syntax="glob"
    )),
)
loaded = {}
for label, load in runs:
    before = set(sys.modules)
    plugins, errors = load()
    new = set(sys.modules) - before
    loaded[label] = {
        "errors": errors,
        "ours": sorted(n for n in new if n.split(".")[0] in ours or from_folder(n)),
        "aiplatform": "google.cloud.aiplatform" in sys.modules,
    }

import sales_forecast.tasks, sf_contract
print(json.dumps({
    "loaded": loaded,
    "tasks": sales_forecast.tasks.__file__,
    "sf_contract": sf_contract.__file__,
}))
"""


def _run_loaders(plugins: Path, pythonpath: list[Path], home: Path) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX": "regexp",
        # Airflow puts the plugins folder on sys.path itself; PYTHONPATH also holds what the
        # deployment adds (the repository root locally, for sf_contract).
        "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
        "SF_PLATFORM": "gcp",
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(plugins)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(home),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _composer_layout(tmp_path: Path) -> Path:
    """plugins/ as deploy_composer.sh leaves it in the bucket: sf_contract/ beside the package."""
    folder = tmp_path / "bucket" / "plugins"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PLUGINS, folder, ignore=ignore)
    shutil.copytree(REPO / "sf_contract", folder / "sf_contract", ignore=ignore)
    return folder


@pytest.mark.parametrize("layout", ["repository", "composer"])
def test_plugin_loader_imports_nothing_of_ours(tmp_path, layout):
    if layout == "repository":
        folder, pythonpath = PLUGINS, [PLUGINS, REPO]
    else:
        folder = _composer_layout(tmp_path)
        pythonpath = [folder]
    result = _run_loaders(folder, pythonpath, tmp_path)
    assert set(result["loaded"]) == {"core/regexp", "sdk/glob", "core/glob"}
    for label, loaded in result["loaded"].items():
        # The first loader imports the plugin file; nothing of sales_forecast comes with it.
        assert set(loaded["ours"]) <= {"forecasts_view"}, (
            f"{label} loader imported {loaded['ours']}"
        )
        assert loaded["errors"] == {}, label
        assert not loaded["aiplatform"], f"{label} loader imported the Vertex AI SDK"
    # The packages still import from the same sys.path, as tasks import them.
    assert Path(result["tasks"]).is_relative_to(folder / "sales_forecast")
    expected_contract = folder / "sf_contract" if layout == "composer" else REPO / "sf_contract"
    assert Path(result["sf_contract"]).is_relative_to(expected_contract)


def test_every_python_package_under_plugins_is_ignored():
    # A new top-level package or module under plugins/ must be added to .airflowignore, or be
    # a real plugin (the view's forecasts_view.py, the only one).
    patterns = {
        line.split("#", 1)[0].strip()
        for line in (PLUGINS / ".airflowignore").read_text().splitlines()
    } - {""}
    entries = {
        p.name if p.is_dir() else p.stem
        for p in PLUGINS.iterdir()
        if p.name not in {".airflowignore", "__pycache__"}
    }
    assert entries - {"forecasts_view"} <= patterns
    assert "forecasts_view" not in patterns
    # deploy_composer.sh ships sf_contract into plugins/ on Composer.
    assert "sf_contract" in patterns
