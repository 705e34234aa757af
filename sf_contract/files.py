"""The files one deployable writes and another reads, each with its name, shape and reader.

| file            | written by                         | read by                               |
|-----------------|------------------------------------|---------------------------------------|
| contract.json   | Airflow (load_to_staging)          | trainer                               |
| metrics.json    | trainer (train)                    | Airflow (train, register)             |
| metadata.json   | trainer (train)                    | Airflow (forecast: train_end), server |
| gate.json       | trainer (backtest), Airflow adds   | Airflow (forecast, register), report  |
|                 | ``champion_version``               |                                       |
| registry.json   | Airflow (local registry)           | local server                          |
| manifest.json   | Airflow (GCP register)             | server (AIP_STORAGE_URI)              |

Readers raise :class:`FileFormatError` naming the file and what is wrong, never a bare
``JSONDecodeError`` or ``KeyError`` from deep inside a step.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any, TypedDict, cast

__all__ = [
    "CONTRACT_FILE",
    "GATE_FILE",
    "MANIFEST_FILE",
    "METADATA_FILE",
    "METRICS_FILE",
    "REGISTRY_FILE",
    "FileFormatError",
    "GateFile",
    "Manifest",
    "ModelMetadata",
    "RegistryEntry",
    "RegistryIndex",
    "dumps",
    "empty_registry",
    "parse_gate",
    "parse_json",
    "parse_manifest",
    "parse_metadata",
    "parse_registry",
    "registry_index_path",
]

CONTRACT_FILE = "contract.json"
METRICS_FILE = "metrics.json"
METADATA_FILE = "metadata.json"
GATE_FILE = "gate.json"
REGISTRY_FILE = "registry.json"
MANIFEST_FILE = "manifest.json"


class FileFormatError(ValueError):
    """A cross-boundary file is not valid JSON or lacks what its readers need."""


class GateFile(TypedDict, total=False):
    """``<run>/backtest/gate.json``: the quality gate's decision (lower metric is better)."""

    passed: bool  # required
    metric: str  # required
    reason: str  # required
    challenger: float | None
    baseline: float | None
    champion: float | None
    min_improvement: float
    # Whether the challenger beat seasonal naive (when it did not and nothing usable is in
    # production, the stored forecasts are seasonal naive's).
    beats_baseline: bool
    # How the production model was scored: "artifact" (its stored model moved forward over
    # the newer data, on the windows after its training end), "recipe" (its recipe refit on
    # the challenger's windows: a changed recipe), "same_recipe" (an unchanged recipe on newer
    # data, nothing after its training end to score it on) or "none" (no production model).
    champion_mode: str
    recipe_changed: bool | None
    champion_train_end: str | None
    freshness_tolerance: float
    # Production's scores, null when not computed: its stored model on the windows after its
    # training end (and the series it knows), its recipe refit on every window (a changed
    # recipe only). ``champion`` above is the one the decision used.
    champion_artifact: float | None
    champion_recipe: float | None
    # The challenger on exactly champion_artifact's rows (what that score is compared with).
    challenger_on_artifact_rows: float | None
    # Added by the Airflow side: the registry version the challenger was compared with.
    champion_version: str | None


class ModelMetadata(TypedDict, total=False):
    """``<model>/metadata.json``: how a model was trained (the registries read the window)."""

    contract: dict[str, Any]
    trainer_config: dict[str, Any]
    feature_spec: dict[str, Any]
    # The recipe the fit used (trainer.recipe): name (panel / small), reason, the data's
    # shape, the knobs it filled and those the config gave.
    recipe: dict[str, Any]
    training_window: dict[str, str]
    train_start: str
    train_end: str  # required: the last day of data the model saw
    cutoff_date: str
    data_uri: str
    n_series: int
    n_rows: int
    n_gap_filled_rows: int | None
    n_unknown_rows: int | None  # days whose row was quarantined (not trained or scored on)
    horizon: int
    levels: list[int]
    intervals: dict[str, Any]
    created_at: str
    library_versions: dict[str, str]


class RegistryEntry(TypedDict, total=False):
    version: str  # required
    uri: str  # required: the promoted folder, never a run folder
    run_id: str  # required
    files: dict[str, str]  # relative path -> sha256
    metrics: dict[str, Any]
    created_at: str


class RegistryIndex(TypedDict):
    """``<models_root>/<model_name>/registry.json``: the local registry's index."""

    model: str
    versions: list[RegistryEntry]
    aliases: dict[str, str]  # alias -> version
    events: list[dict[str, Any]]


class Manifest(TypedDict, total=False):
    """``manifest.json`` in a promoted model folder: the sha256 of every other file."""

    files: dict[str, str]  # required
    created_at: str
    run_id: str
    source: str


def dumps(doc: object) -> str:
    """The one JSON spelling of these files: indented, keys sorted, dates as ISO text."""
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


def parse_json(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{where} is not valid JSON ({exc})") from None


def _object(text: str | bytes, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    doc = parse_json(text, where)
    if not isinstance(doc, dict):
        raise FileFormatError(f"{where} must hold a JSON object, not {type(doc).__name__}")
    missing = [k for k in required if k not in doc]
    if missing:
        raise FileFormatError(f"{where} lacks {', '.join(missing)}")
    return doc


def parse_gate(text: str | bytes, where: str = GATE_FILE) -> GateFile:
    doc = _object(text, where, ("passed", "metric", "reason"))
    if not isinstance(doc["passed"], bool):
        raise FileFormatError(f"{where}: passed must be true or false")
    if "beats_baseline" not in doc:
        # A gate written before the field existed: it beat the baseline iff it was below it.
        ch, base = doc.get("challenger"), doc.get("baseline")
        doc["beats_baseline"] = bool(
            isinstance(ch, int | float) and isinstance(base, int | float) and ch < base
        )
    return cast(GateFile, doc)


def parse_metadata(text: str | bytes, where: str = METADATA_FILE) -> ModelMetadata:
    return cast(ModelMetadata, _object(text, where, ("train_end",)))


def parse_manifest(text: str | bytes, where: str = MANIFEST_FILE) -> Manifest:
    doc = _object(text, where, ("files",))
    files = doc["files"]
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    ):
        raise FileFormatError(f'{where} is not {{"files": {{"path": "<sha256>", ...}}}}')
    return cast(Manifest, doc)


def empty_registry(model: str) -> RegistryIndex:
    return {"model": model, "versions": [], "aliases": {}, "events": []}


def parse_registry(text: str | bytes, where: str = REGISTRY_FILE) -> RegistryIndex:
    doc = _object(text, where, ("versions", "aliases"))
    if not isinstance(doc["versions"], list) or not isinstance(doc["aliases"], dict):
        raise FileFormatError(f"{where}: versions must be a list and aliases an object")
    for i, entry in enumerate(doc["versions"]):
        if not isinstance(entry, dict) or not all(k in entry for k in ("version", "uri", "run_id")):
            raise FileFormatError(f"{where}: versions[{i}] lacks version, uri or run_id")
    doc.setdefault("model", "")
    doc.setdefault("events", [])
    return cast(RegistryIndex, doc)


def registry_index_path(models_root: str | PurePath, model_name: str) -> PurePath:
    """Where a model's local registry index lives (the serving app reads the same path)."""
    return PurePath(models_root) / model_name / REGISTRY_FILE
