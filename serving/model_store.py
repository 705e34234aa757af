"""Find the model to serve, check every file's sha256, load it aside, then swap it in.

Sources:

* **storage** (``AIP_STORAGE_URI``): a model folder, ``gs://`` or local. Its ``manifest.json``
  (``{"files": {"path": "<sha256>"}}``, written when a version is promoted on GCP) lists the
  sums. A folder without one is hashed and its sums logged (refused instead with
  ``SF_SERVING_REQUIRE_MANIFEST=true``).
* **registry** (local): ``<data_root>/models/<name>/registry.json``, the version an alias points
  at and the sums recorded when it was registered. The file is read here directly (the image
  carries no Airflow-side code; both sides share its format through ``sf_contract.files``); it
  is replaced atomically by its writer, so a read sees either the old or the new index.

Loading: every file is copied into a private temporary folder while its sha256 is computed,
the sums are compared with the record, and only that copy is loaded. Files changed after the
check are never read, so a swap of files between check and load cannot sneak in. Any
mismatch refuses the version: with nothing loaded yet the app is not ready (503); with a model
already serving, that one stays and the refusal is reported by ``/ready`` and the metrics.

Hot swap: the new version is loaded and warmed in a worker thread while the current one keeps
serving; then one reference is replaced. A request holds the model it started with until it
ends, so no request fails or mixes versions during a swap.
"""

from __future__ import annotations

__all__ = [
    "LoadedModel",
    "ModelRecord",
    "ModelStore",
    "copy_and_hash",
    "freshness",
    "read_registry",
    "verify_files",
]

import asyncio
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.config import Settings
from serving.errors import IntegrityError, ModelNotReady, RegistryFormatError
from serving.metrics import ServingMetrics
from serving.predictor import Predictor
from sf_contract.files import (
    MANIFEST_FILE,
    METADATA_FILE,
    FileFormatError,
    parse_manifest,
    parse_metadata,
    parse_registry,
)
from sf_contract.scalars import ScalarError, parse_date

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_STORAGE_ATTEMPTS = 3


@dataclass(frozen=True)
class ModelRecord:
    """What should be served: a version, its folder, and the sha256 sums it must have."""

    version: str | None
    uri: str
    expected: dict[str, str] | None  # None: no record (storage mode without a manifest)
    source: str
    run_id: str | None = None
    # The registry's copy of the training window's end (metadata.json in the folder wins).
    train_end: str | None = None


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def freshness(train_end: dt.date | None, today: dt.date, max_age_days: int) -> dict[str, Any]:
    """How old a model is: days from its last training day to ``today``; stale beyond the max.

    ``age_days`` counts whole days (trained up to yesterday: 1). Stale is ``age > max``, the
    same comparison the Airflow side makes against a run's cut-off. ``data_ends`` says the
    same in words for a person reading /ready.
    """
    if train_end is None:
        return {
            "train_end": None,
            "age_days": None,
            "max_age_days": max_age_days,
            "stale": None,
            "data_ends": None,
        }
    age = (today - train_end).days
    stale = age > max_age_days
    return {
        "train_end": train_end.isoformat(),
        "age_days": age,
        "max_age_days": max_age_days,
        "stale": stale,
        "data_ends": _data_ends(train_end, age, max_age_days, stale),
    }


def _data_ends(train_end: dt.date, age: int, max_age_days: int, stale: bool) -> str:
    def days(n: int) -> str:
        return f"{n} day" if n == 1 else f"{n} days"

    # A negative age is a clock behind the data's (or data dated ahead): say it as it is.
    when = "today" if age == 0 else f"{days(abs(age))} {'before' if age > 0 else 'after'} today"
    line = f"data ends {train_end.isoformat()}, {when}"
    if stale:
        line += f": stale (more than SF_MAX_MODEL_AGE_DAYS={max_age_days} days)"
    return line


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded and warmed model: what requests use."""

    record: ModelRecord
    version: str
    predictor: Predictor
    files: dict[str, str]
    verified: bool
    loaded_at: str
    load_seconds: float
    train_end: dt.date | None = None
    # Where train_end came from: "metadata.json", "registry" or "model" (its series' last day).
    train_end_source: str | None = None

    def describe(self, fresh: Mapping[str, Any]) -> dict[str, Any]:
        """What /ready reports; ``fresh`` is :func:`freshness` for today (computed by the
        caller: a model ages while it serves)."""
        return {
            "version": self.version,
            "uri": self.record.uri,
            "source": self.record.source,
            "run_id": self.record.run_id,
            "sha256_verified": self.verified,
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
            **self.predictor.describe(),
            **fresh,
            "train_end_source": self.train_end_source,
        }


def copy_and_hash(uri: str, dest: str) -> dict[str, str]:
    """Copy every file under ``uri`` (any fsspec URL) into ``dest``; return their sha256."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    if not fs.isdir(root):
        raise FileNotFoundError(f"model folder not found: {uri}")
    sums: dict[str, str] = {}
    for remote in sorted(fs.find(root)):
        rel = remote[len(root) :].lstrip("/")
        if not rel:
            continue
        target = os.path.join(dest, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        digest = hashlib.sha256()
        with fs.open(remote, "rb") as src, open(target, "wb") as out:
            while block := src.read(_CHUNK):
                digest.update(block)
                out.write(block)
        sums[rel] = digest.hexdigest()
    if not sums:
        raise FileNotFoundError(f"model folder is empty: {uri}")
    return sums


def verify_files(expected: dict[str, str], actual: dict[str, str], label: str) -> None:
    """Raise :class:`IntegrityError` unless the files and their sums are exactly the record's."""
    if actual == expected:
        return
    changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    missing = sorted(expected.keys() - actual.keys())
    added = sorted(actual.keys() - expected.keys())
    parts = [
        f"{what} {names}"
        for what, names in (("changed", changed), ("missing", missing), ("unexpected", added))
        if names
    ]
    raise IntegrityError(
        f"{label}: files differ from their recorded sha256 ({'; '.join(parts)}); "
        "refusing to serve it"
    )


def read_registry(path: Path, alias: str, version: str | None = None) -> ModelRecord:
    """The version ``alias`` points at in a local registry index (or ``version`` itself, when
    given: a batch job may score an older version).

    Raises ``ModelNotReady`` when there is no index or no version holds the alias yet, and
    its subclass ``RegistryFormatError`` when the index cannot be read or is wrongly shaped
    (never a bare ``KeyError`` / ``AttributeError``: the caller must stay up).
    """
    where = f"model registry {path}"
    try:
        index = parse_registry(path.read_bytes(), where)
    except FileNotFoundError:
        raise ModelNotReady(f"no model registry at {path} (run `make demo` first)") from None
    except OSError as exc:
        raise RegistryFormatError(f"cannot read {where}: {exc}") from None
    except FileFormatError as exc:
        raise RegistryFormatError(str(exc)) from None
    if version is not None:
        for i, entry in enumerate(index["versions"]):
            if str(entry["version"]) == str(version):
                return _record(entry, f"{where}: versions[{i}] (version {version})", path, alias)
        known = [str(e["version"]) for e in index["versions"]]
        raise ModelNotReady(f"{path} has no version {version!r} (it has {known})")
    version = index["aliases"].get(alias)
    if version is None:
        raise ModelNotReady(f"no version of {index['model']!r} holds alias {alias!r} in {path}")
    if not isinstance(version, str | int) or isinstance(version, bool):
        raise RegistryFormatError(f"{where}: alias {alias!r} must name a version, not {version!r}")
    for i, entry in enumerate(index["versions"]):
        if str(entry["version"]) == str(version):
            return _record(entry, f"{where}: versions[{i}] (version {version})", path, alias)
    raise ModelNotReady(f"alias {alias!r} points at version {version}, which {path} does not list")


def _record(entry: Mapping[str, Any], where: str, path: Path, alias: str) -> ModelRecord:
    # parse_registry checks that the fields exist, not their types; what is used here must be
    # of the right type, or loading fails far from the cause.
    uri = entry["uri"]
    if not isinstance(uri, str) or not uri.strip():
        raise RegistryFormatError(f"{where}: uri must be a folder path, not {uri!r}")
    files = entry.get("files") or {}
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise RegistryFormatError(f'{where}: files must be {{"path": "<sha256>", ...}}')
    run_id = entry["run_id"]
    window = entry.get("training_window")
    train_end = window.get("train_end") if isinstance(window, dict) else None
    return ModelRecord(
        version=str(entry["version"]),
        uri=uri,
        # Registered versions always carry sums; an empty record cannot be verified.
        expected=dict(files),
        source=f"registry {path} alias {alias}",
        run_id=None if run_id is None else str(run_id),
        train_end=train_end if isinstance(train_end, str) else None,
    )


def _train_end(folder: str, record: ModelRecord, label: str) -> tuple[dt.date | None, str | None]:
    """The model's last training day from its metadata.json (verified with the other files),
    else from the registry's training_window; ``(None, None)`` when neither says."""
    candidates: list[tuple[object, str]] = []
    meta = Path(folder, METADATA_FILE)
    if meta.is_file():
        try:
            doc = parse_metadata(meta.read_bytes(), f"{label} {METADATA_FILE}")
            candidates.append((doc["train_end"], METADATA_FILE))
        except FileFormatError as exc:
            log.warning("%s; using another source for the training end", exc)
    if record.train_end is not None:
        candidates.append((record.train_end, "registry"))
    for value, source in candidates:
        try:
            return parse_date(str(value)), source
        except ScalarError as exc:
            log.warning("%s: train_end from %s: %s", label, source, exc)
    return None, None


def _stat_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:  # missing or unreadable: read_registry says which
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class ModelStore:
    """Holds the model being served and replaces it when the registry alias moves."""

    def __init__(self, settings: Settings, metrics: ServingMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._current: LoadedModel | None = None
        self._load_lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._refused: ModelRecord | None = None
        self.last_error: str | None = None
        self.not_ready_reason: str = "the model is loading"
        # The loaded model whose staleness was logged (once per load, not once per /ready).
        self._stale_logged: LoadedModel | None = None
        self._stale_lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def require(self) -> LoadedModel:
        """The model to answer one request with (kept by the request until it ends)."""
        model = self._current
        if model is None:
            raise ModelNotReady(self.not_ready_reason)
        return model

    # ------------------------------------------------------------------ loading

    def load_initial(self) -> None:
        """Load the first model; never raises (a failure leaves the app up but not ready)."""
        try:
            if self.settings.mode == "storage":
                self._load_storage()
            else:
                self.refresh(force=True)
        except Exception as exc:  # raising here would fail the app's startup: a crash loop
            log.exception("loading the first model failed")
            message = f"cannot load a model: {type(exc).__name__}: {exc}"
            self.last_error = message
            if self._current is None:
                self.not_ready_reason = message

    def _load_storage(self) -> None:
        uri = str(self.settings.storage_uri)
        record = ModelRecord(
            version=self.settings.model_version, uri=uri, expected=None, source="AIP_STORAGE_URI"
        )
        for attempt in range(1, _STORAGE_ATTEMPTS + 1):
            try:
                self._swap(self._load(record))
                return
            except IntegrityError as exc:
                self._failed(record, str(exc), "integrity")
                return
            except Exception as exc:  # any failure leaves the app up, not ready
                self._failed(record, f"cannot load the model from {uri}: {exc}", "load")
                if attempt < _STORAGE_ATTEMPTS:
                    time.sleep(2.0 * attempt)  # a storage hiccup: try again shortly

    def refresh(self, force: bool = False) -> bool:
        """Look at the registry; load and swap in the alias' version when it moved.

        Returns True when a new model was swapped in. Cheap when nothing changed (one stat).
        """
        path = self.settings.registry_path
        stamp = _stat_stamp(path)
        if not force and stamp == self._stamp:
            return False
        with self._load_lock:
            self._stamp = stamp
            try:
                record = read_registry(path, self.settings.alias)
            except ModelNotReady as exc:
                self._registry_unreadable(exc)
                return False
            if self._current is not None and self._current.record == record:
                # The alias points at what serves: an earlier registry fault or refusal is over.
                self.last_error = None
                return False
            if record == self._refused:
                return False  # refused already; retried when the registry changes again
            try:
                loaded = self._load(record)
            except IntegrityError as exc:
                self._failed(record, str(exc), "integrity")
                return False
            except Exception as exc:  # a bad version must not stop serving
                self._failed(record, f"cannot load version {record.version}: {exc}", "load")
                return False
            self._swap(loaded)
            return True

    def _registry_unreadable(self, exc: ModelNotReady) -> None:
        # Read once per change of the file (the stat stamp), so this logs once per change.
        if self._current is None:
            self.not_ready_reason = str(exc)
            # No registry or no alias yet is the normal state before the first promotion (and
            # ends an earlier fault); a wrongly shaped one is a fault to report.
            if isinstance(exc, RegistryFormatError):
                self.last_error = str(exc)
                log.error("%s", exc)
            else:
                self.last_error = None
            return
        self.last_error = f"{exc}; still serving version {self._current.version}"
        log.warning("%s", self.last_error)

    def load_record(self, record: ModelRecord) -> LoadedModel:
        """Verify and load ``record`` without serving it (a batch job's model)."""
        return self._load(record)

    def _load(self, record: ModelRecord) -> LoadedModel:
        from trainer.model import Forecaster

        started = time.perf_counter()
        label = f"model {self.settings.model_name} version {record.version or '?'} ({record.uri})"
        with tempfile.TemporaryDirectory(prefix="serving-model-") as tmp:
            actual = copy_and_hash(record.uri, tmp)
            expected = record.expected
            verified = True
            if self.settings.mode == "storage":
                expected, actual, verified, run_id = self._storage_sums(record.uri, tmp, actual)
                # The run that wrote the manifest: on GCP it names one registry version.
                record = dataclasses.replace(record, run_id=run_id)
            elif not expected:
                raise IntegrityError(f"{label}: the registry records no sha256 sums")
            if expected is not None:
                verify_files(expected, actual, label)
            forecaster = Forecaster.load(tmp)
            train_end, train_end_source = _train_end(tmp, record, label)
        version = (
            record.version
            or "sha256:"
            + hashlib.sha256(json.dumps(actual, sort_keys=True).encode()).hexdigest()[:12]
        )
        # Warming (the base forecast of every series) happens before the swap, so the first
        # request on the new version is as fast as any other.
        predictor = Predictor(
            forecaster,
            version=version,
            train_end=train_end,
            cache=self.settings.cache,
            max_concurrent_forecasts=self.settings.max_concurrent_forecasts,
        )
        if train_end is None and predictor.train_end is not None:
            # A folder without metadata.json (e.g. a bare Forecaster.save): its series say.
            train_end, train_end_source = predictor.train_end, "model"
        seconds = time.perf_counter() - started
        log.info(
            "loaded %s in %.2f s (sha256 %s)",
            label,
            seconds,
            "verified" if verified else "NOT verified: no manifest",
        )
        return LoadedModel(
            record=record,
            version=version,
            predictor=predictor,
            files=actual,
            verified=verified,
            loaded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            load_seconds=seconds,
            train_end=train_end,
            train_end_source=train_end_source,
        )

    def _storage_sums(
        self, uri: str, folder: str, actual: dict[str, str]
    ) -> tuple[dict[str, str] | None, dict[str, str], bool, str | None]:
        """(expected sums, the model's files' sums, verified, the manifest's run_id)."""
        if MANIFEST_FILE not in actual:
            if self.settings.require_manifest:
                raise IntegrityError(
                    f"{uri} has no sha256 manifest ({MANIFEST_FILE}) and "
                    "SF_SERVING_REQUIRE_MANIFEST is true; refusing to serve it (the GCP "
                    "register step writes one when it promotes a model: register the model "
                    "through the DAG, or add a manifest of every file's sha256)"
                )
            log.warning(
                "%s has no sha256 manifest (%s): serving it unverified; its files' sha256: %s",
                uri,
                MANIFEST_FILE,
                json.dumps(actual, sort_keys=True),
            )
            return None, actual, False, None
        text = Path(folder, MANIFEST_FILE).read_bytes()
        try:
            manifest = parse_manifest(text, f"{uri}/{MANIFEST_FILE}")
        except FileFormatError as exc:
            raise IntegrityError(str(exc)) from None
        expected = dict(manifest["files"])
        run_id = manifest.get("run_id")
        # The manifest itself is not part of the model.
        files = {k: v for k, v in actual.items() if k != MANIFEST_FILE}
        return expected, files, True, run_id if isinstance(run_id, str) and run_id else None

    def _swap(self, loaded: LoadedModel) -> None:
        previous = None if self._current is None else self._current.version
        # A model is millions of long-lived objects (trees, frames, prebuilt answers). Left
        # in the collector's generations, every full collection walks them all: pauses of
        # ~200 ms in the middle of requests. Frozen, the collector skips them. Unfreezing
        # first lets the old model's reference cycles go once requests let go of it; the one
        # full collection here is a single pause per swap instead of one every few seconds.
        gc.unfreeze()
        self._current = loaded  # one reference: requests in flight keep the old model
        self._refused = None
        self.last_error = None
        gc.collect()
        gc.freeze()
        if self.metrics is not None:
            self.metrics.model_changed(loaded, self.settings.model_name, self.settings.mode)
        if previous is None:
            log.info("serving version %s", loaded.version)
        else:
            log.info("swapped version %s -> %s", previous, loaded.version)
        self.freshness(loaded)  # logs at once when the new version is already stale

    def _failed(self, record: ModelRecord, message: str, reason: str) -> None:
        self._refused = record
        self.last_error = message
        if self._current is None:
            self.not_ready_reason = message
            log.error("%s", message)
        else:
            log.error("%s; still serving version %s", message, self._current.version)
        if self.metrics is not None:
            self.metrics.load_failed(reason)

    # ------------------------------------------------------------------ watching

    async def watch(self) -> None:
        """Poll the registry until cancelled (the loading runs in a worker thread)."""
        from starlette.concurrency import run_in_threadpool

        interval = self.settings.poll_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(self.refresh)
            except Exception as exc:  # the watcher must outlive any single bad look
                log.exception("registry poll failed")
                self.last_error = f"registry poll failed: {type(exc).__name__}: {exc}"
            # A model becomes stale while it serves; say so even if nobody asks /ready.
            if (model := self._current) is not None:
                self.freshness(model)

    def freshness(self, model: LoadedModel) -> dict[str, Any]:
        """:func:`freshness` of ``model`` today; logs a warning the first time the loaded
        model is found stale."""
        fresh = freshness(model.train_end, _utc_today(), self.settings.max_model_age_days)
        if fresh["stale"]:
            with self._stale_lock:
                first = self._stale_logged is not model
                self._stale_logged = model
            if first:
                log.warning(
                    "model %s version %s is stale: trained on data up to %s, %d days ago "
                    "(SF_MAX_MODEL_AGE_DAYS=%d); it keeps serving until a newer version is "
                    "promoted",
                    self.settings.model_name,
                    model.version,
                    fresh["train_end"],
                    fresh["age_days"],
                    fresh["max_age_days"],
                )
        return fresh

    def deployment(self) -> dict[str, str | None] | None:
        """Where Vertex AI deployed this container (its ``AIP_*`` ids); None elsewhere."""
        s = self.settings
        if s.endpoint_id is None and s.deployed_model_id is None:
            return None
        return {"endpoint_id": s.endpoint_id, "deployed_model_id": s.deployed_model_id}

    def status(self) -> dict[str, Any]:
        model = self._current
        described = None
        if model is not None:
            described = {**model.describe(self.freshness(model)), "deployment": self.deployment()}
        return {
            "ready": model is not None,
            "reason": None if model is not None else self.not_ready_reason,
            "model": described,
            "last_error": self.last_error,
        }
