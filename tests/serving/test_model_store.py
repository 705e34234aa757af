"""sha256 checks before anything is loaded, registry following and refusals."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from serving.errors import IntegrityError, ModelNotReady
from serving.model_store import ModelStore, copy_and_hash, read_registry, verify_files

S1A = {"store_id": "S1", "item_id": "A"}


def _predict(client: Any) -> Any:
    return client.post("/predict", json={"instances": [S1A]})


# ---------------------------------------------------------------- registry mode


@pytest.mark.parametrize("change", ["edit", "remove", "add"])
def test_tampered_registry_version_is_refused(
    registry: Any, model_a: Path, client_for: Any, change: str
) -> None:
    version = registry.promote(model_a)
    folder = registry.folder(version)
    if change == "edit":
        with open(folder / "series_state.parquet", "ab") as handle:
            handle.write(b"\0")
    elif change == "remove":
        (folder / "conformity_scores.parquet").unlink()
    else:
        (folder / "mlforecast" / "extra.pkl").write_bytes(b"surprise")
    client = client_for()
    ready = client.get("/ready")
    assert ready.status_code == 503
    reason = ready.json()["reason"]
    assert "sha256" in reason and "refusing to serve it" in reason
    expected = {
        "edit": "series_state.parquet",
        "remove": "conformity_scores.parquet",
        "add": "extra.pkl",
    }
    assert expected[change] in reason
    response = _predict(client)
    assert response.status_code == 503
    assert "refusing to serve it" in response.json()["error"]
    assert "sales_forecast_model_loaded 0.0" in client.get("/metrics").text
    assert (
        'sales_forecast_model_load_failures_total{reason="integrity"} 1.0'
        in client.get("/metrics").text
    )


def test_files_swapped_after_the_check_are_never_read(
    registry: Any, model_a: Path, make_settings: Any, monkeypatch: Any
) -> None:
    """The model is loaded from the private copy that was hashed, not from the folder."""
    import serving.model_store as store_module

    registry.promote(model_a)
    folder = registry.folder("1")
    real = store_module.copy_and_hash

    def copy_then_tamper(uri: str, dest: str) -> dict[str, str]:
        sums = real(uri, dest)
        (folder / "forecaster.json").write_text("{}")  # too late: the copy is what loads
        return sums

    monkeypatch.setattr(store_module, "copy_and_hash", copy_then_tamper)
    store = ModelStore(make_settings())
    store.load_initial()
    assert store.current is not None and store.current.version == "1"


def test_registry_without_sums_is_refused(registry: Any, model_a: Path, make_settings: Any) -> None:
    registry.promote(model_a)
    index_path = registry.registry.index_path
    index = json.loads(index_path.read_text())
    index["versions"][0]["files"] = {}
    index_path.write_text(json.dumps(index))
    store = ModelStore(make_settings())
    store.load_initial()
    assert store.current is None
    assert "records no sha256" in store.not_ready_reason


def test_alias_missing_then_promoted(registry: Any, model_a: Path, make_settings: Any) -> None:
    registry.registry.register(str(model_a), run_id="r0", metrics={}, extra={})
    store = ModelStore(make_settings())
    store.load_initial()
    assert store.current is None
    assert "holds alias 'production'" in store.not_ready_reason
    registry.registry.set_alias("production", "1")
    assert store.refresh() is True
    assert store.current is not None and store.current.version == "1"
    assert store.refresh() is False  # nothing changed: one stat, no reload


def test_a_tampered_new_version_keeps_the_old_one_serving(
    registry: Any, model_a: Path, model_b: Path, make_settings: Any, tmp_path: Path
) -> None:
    registry.promote(model_a)
    store = ModelStore(make_settings())
    store.load_initial()
    assert store.current.version == "1"
    # Version 2 is registered, then its files change before the alias moves to it.
    v2 = registry.registry.register(str(model_b), run_id="r2", metrics={}, extra={})
    (registry.folder(v2.version) / "params.json").write_text("{}")
    registry.registry.set_alias("production", v2.version)
    assert store.refresh() is False
    assert store.current.version == "1"  # the verified model keeps serving
    assert "version 2" in store.last_error and "params.json" in store.last_error
    status = store.status()
    assert status["ready"] is True and "refusing" in status["last_error"]
    # The refusal is not retried on every poll, only when the registry changes again.
    assert store.refresh(force=True) is False
    registry.promote(model_b)  # a clean version 3
    assert store.refresh() is True
    assert store.current.version == "3" and store.last_error is None


def test_rollback_by_moving_the_alias_back(
    registry: Any, model_a: Path, model_b: Path, make_settings: Any
) -> None:
    registry.promote(model_a)
    registry.promote(model_b)
    store = ModelStore(make_settings())
    store.load_initial()
    assert store.current.version == "2"
    registry.registry.set_alias("production", "1")
    assert store.refresh() is True
    assert store.current.version == "1"


# ---------------------------------------------------------------- storage mode


def test_storage_uri_with_manifest(
    model_a: Path, helpers: Any, tmp_path: Path, client_for: Any
) -> None:
    folder = helpers.copy_model(model_a, tmp_path / "gcs-copy")
    helpers.write_manifest(folder)
    client = client_for(storage_uri=str(folder), model_version="7")
    model = client.get("/ready").json()["model"]
    assert model["version"] == "7" and model["sha256_verified"] is True
    assert model["source"] == "AIP_STORAGE_URI"
    assert _predict(client).json()["model_version"] == "7"


def test_storage_uri_with_a_bad_manifest_is_refused(
    model_a: Path, helpers: Any, tmp_path: Path, client_for: Any
) -> None:
    folder = helpers.copy_model(model_a, tmp_path / "gcs-copy")
    helpers.write_manifest(folder)
    (folder / "metadata.json").write_text('{"tampered": true}')
    client = client_for(storage_uri=str(folder))
    assert client.get("/ready").status_code == 503
    assert "metadata.json" in client.get("/ready").json()["reason"]
    assert _predict(client).status_code == 503


def test_storage_uri_without_manifest_is_hashed_and_logged(
    model_a: Path, client_for: Any, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="serving.model_store")
    client = client_for(storage_uri=str(model_a))
    model = client.get("/ready").json()["model"]
    assert model["sha256_verified"] is False
    assert model["version"].startswith("sha256:")
    assert "no sha256 manifest" in caplog.text and "series_state.parquet" in caplog.text
    assert _predict(client).status_code == 200


def test_storage_uri_without_manifest_refused_when_required(model_a: Path, client_for: Any) -> None:
    client = client_for(storage_uri=str(model_a), require_manifest=True)
    ready = client.get("/ready")
    assert ready.status_code == 503
    reason = ready.json()["reason"]
    assert "no sha256 manifest (manifest.json)" in reason
    assert "SF_SERVING_REQUIRE_MANIFEST is true" in reason and "register" in reason
    assert _predict(client).status_code == 503


def test_on_vertex_ready_names_the_run_and_the_deployment(
    model_a: Path, helpers: Any, tmp_path: Path, client_for: Any
) -> None:
    """What the container can know of the registry version: the run that wrote the manifest
    (one version per run), the version label register set, and Vertex's deployment ids."""
    folder = helpers.copy_model(model_a, tmp_path / "gcs-copy")
    helpers.write_manifest(folder)  # run_id "r1", as register writes it
    client = client_for(
        storage_uri=str(folder),
        require_manifest=True,
        model_version="run:r1",
        endpoint_id="9",
        deployed_model_id="123",
    )
    model = client.get("/ready").json()["model"]
    assert (model["version"], model["run_id"], model["sha256_verified"]) == ("run:r1", "r1", True)
    assert model["deployment"] == {"endpoint_id": "9", "deployed_model_id": "123"}
    assert _predict(client).headers["X-Model-Version"] == "run:r1"


def test_off_vertex_ready_has_no_deployment(served: Any) -> None:
    assert served.get("/ready").json()["model"]["deployment"] is None


def test_storage_uri_missing(client_for: Any, tmp_path: Path, monkeypatch: Any) -> None:
    import serving.model_store as store_module

    monkeypatch.setattr(store_module.time, "sleep", lambda s: None)  # no retry back-off here
    client = client_for(storage_uri=str(tmp_path / "nowhere"))
    assert "model folder not found" in client.get("/ready").json()["reason"]


def test_storage_uri_over_fsspec(model_a: Path, client_for: Any, tmp_path: Path) -> None:
    """gs:// goes through the same fsspec code path; memory:// stands in for it here."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in sorted(model_a.rglob("*")):
        if path.is_file():
            fs.pipe(f"/bucket/model/{path.relative_to(model_a).as_posix()}", path.read_bytes())
    manifest = copy_and_hash(str(model_a), str(tmp_path / "scratch"))
    fs.pipe("/bucket/model/manifest.json", json.dumps({"files": manifest}).encode())
    try:
        client = client_for(storage_uri="memory://bucket/model")
        assert client.get("/ready").json()["model"]["sha256_verified"] is True
        assert _predict(client).status_code == 200
    finally:
        fs.rm("/bucket", recursive=True)


def test_verify_files_lists_every_difference() -> None:
    with pytest.raises(IntegrityError) as err:
        verify_files({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "x", "d": "4"}, "m")
    assert "changed ['b']" in str(err.value)
    assert "missing ['c']" in str(err.value)
    assert "unexpected ['d']" in str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "is not valid JSON"),
        ('{"versions": []}', "lacks aliases"),
        ('{"versions": [{"version": "1"}], "aliases": {}}', "versions[0] lacks version, uri"),
    ],
)
def test_an_unreadable_registry_is_not_ready_with_the_reason(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "registry.json"
    path.write_text(text)
    with pytest.raises(ModelNotReady) as err:
        read_registry(path, "production")
    assert f"model registry {path}" in str(err.value) and words in str(err.value)


def test_storage_uri_with_a_malformed_manifest_is_refused(
    model_a: Path, helpers: Any, tmp_path: Path, client_for: Any
) -> None:
    folder = helpers.copy_model(model_a, tmp_path / "gcs-copy")
    (folder / "manifest.json").write_text('{"files": {"metadata.json": "not-a-sha256"}}')
    client = client_for(storage_uri=str(folder))
    reason = client.get("/ready").json()["reason"]
    assert "manifest.json is not" in reason and '"<sha256>"' in reason


# ---------------------------------------------------------------- freshness


@pytest.mark.parametrize(
    ("today", "age", "stale"),
    [("2024-06-30", 0, False), ("2024-07-14", 14, False), ("2024-07-15", 15, True)],
)
def test_freshness_is_stale_beyond_the_max_age(today: str, age: int, stale: bool) -> None:
    import datetime as dt

    from serving.model_store import freshness

    fresh = freshness(dt.date(2024, 6, 30), dt.date.fromisoformat(today), 14)
    words = fresh.pop("data_ends")
    assert fresh == {"train_end": "2024-06-30", "age_days": age, "max_age_days": 14, "stale": stale}
    assert words.startswith("data ends 2024-06-30, ")


@pytest.mark.parametrize(
    ("today", "words"),
    [
        ("2024-06-30", "data ends 2024-06-30, today"),
        ("2024-07-01", "data ends 2024-06-30, 1 day before today"),
        ("2024-07-14", "data ends 2024-06-30, 14 days before today"),
        (
            "2024-07-15",
            "data ends 2024-06-30, 15 days before today: stale (more than "
            "SF_MAX_MODEL_AGE_DAYS=14 days)",
        ),
        ("2024-06-28", "data ends 2024-06-30, 2 days after today"),
    ],
)
def test_freshness_says_where_the_data_ends_in_words(today: str, words: str) -> None:
    import datetime as dt

    from serving.model_store import freshness

    assert freshness(dt.date(2024, 6, 30), dt.date.fromisoformat(today), 14)["data_ends"] == words
    assert freshness(None, dt.date.fromisoformat(today), 14)["data_ends"] is None


def _today(monkeypatch: Any, day: str) -> None:
    import datetime as dt

    import serving.model_store as store_module

    monkeypatch.setattr(store_module, "_utc_today", lambda: dt.date.fromisoformat(day))


def test_ready_reports_the_models_age_and_logs_once_when_stale(
    registry: Any,
    model_a: Path,
    helpers: Any,
    tmp_path: Path,
    client_for: Any,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    # metadata.json (verified with the other files) says 06-28; the series' state says 06-30.
    folder = helpers.copy_model(model_a, tmp_path / "with-metadata")
    (folder / "metadata.json").write_text(json.dumps({"train_end": "2024-06-28"}))
    registry.promote(folder)
    caplog.set_level(logging.WARNING, logger="serving.model_store")
    _today(monkeypatch, "2024-07-10")
    client = client_for(max_model_age_days=14)
    ready = client.get("/ready")
    assert ready.status_code == 200
    model = ready.json()["model"]
    assert (model["train_end"], model["train_end_source"]) == ("2024-06-28", "metadata.json")
    assert (model["age_days"], model["max_age_days"], model["stale"]) == (12, 14, False)
    assert model["data_ends"] == "data ends 2024-06-28, 12 days before today"
    assert "is stale" not in caplog.text
    # Time passes while it serves: stale, still 200, one warning however often /ready is asked.
    _today(monkeypatch, "2024-07-20")
    for _ in range(3):
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert (ready.json()["model"]["age_days"], ready.json()["model"]["stale"]) == (22, True)
    warnings = [r.getMessage() for r in caplog.records if "is stale" in r.getMessage()]
    assert warnings == [
        "model sales_forecast version 1 is stale: trained on data up to 2024-06-28, 22 days "
        "ago (SF_MAX_MODEL_AGE_DAYS=14); it keeps serving until a newer version is promoted"
    ]
    assert client.post("/predict", json={"instances": [S1A]}).status_code == 200
    metrics = client.get("/metrics").text
    assert "sales_forecast_model_train_end_timestamp_seconds 1.7195328e+09" in metrics


def test_a_new_stale_version_is_logged_again(
    registry: Any,
    model_a: Path,
    model_b: Path,
    make_settings: Any,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="serving.model_store")
    _today(monkeypatch, "2025-01-01")
    registry.promote(model_a)
    store = ModelStore(make_settings())
    store.load_initial()
    store.status()
    registry.promote(model_b)
    assert store.refresh() is True
    store.status()
    stale = [r.getMessage() for r in caplog.records if "is stale" in r.getMessage()]
    assert len(stale) == 2 and "version 1 " in stale[0] and "version 2 " in stale[1]


def test_train_end_from_the_registry_then_from_the_model(
    registry: Any, model_a: Path, make_settings: Any, monkeypatch: Any
) -> None:
    _today(monkeypatch, "2024-07-01")
    window = {"training_window": {"train_start": "2024-01-01", "train_end": "2024-06-29"}}
    v1 = registry.registry.register(str(model_a), run_id="r1", metrics={}, extra=window)
    registry.registry.set_alias("production", v1.version)
    store = ModelStore(make_settings())
    store.load_initial()
    model = store.status()["model"]
    assert (model["train_end"], model["train_end_source"], model["age_days"]) == (
        "2024-06-29",
        "registry",
        2,
    )
    registry.promote(model_a)  # no metadata.json, no window: the series' last day
    assert store.refresh() is True
    model = store.status()["model"]
    assert (model["train_end"], model["train_end_source"], model["age_days"]) == (
        "2024-06-30",
        "model",
        1,
    )


# ---------------------------------------------------------------- wrongly shaped registry (D13)

WRONG_SHAPES = [
    ("[]", "must hold a JSON object, not list"),
    ('{"aliases": ["1"], "versions": []}', "aliases an object"),
    ('{"aliases": ["1"]}', "lacks versions"),
    (
        '{"versions": [{"version": "1", "run_id": "r"}], "aliases": {"production": "1"}}',
        "versions[0] lacks version, uri or run_id",
    ),
    (
        '{"versions": [{"version": "1", "run_id": "r", "uri": null}], '
        '"aliases": {"production": "1"}}',
        "uri must be a folder path, not None",
    ),
    (
        '{"versions": [{"version": "1", "run_id": "r", "uri": "/m", "files": "x"}], '
        '"aliases": {"production": "1"}}',
        'files must be {"path": "<sha256>", ...}',
    ),
    ('{"versions": [], "aliases": {"production": ["1"]}}', "must name a version"),
]


def _write_index(settings: Any, text: str) -> None:
    settings.registry_path.parent.mkdir(parents=True, exist_ok=True)
    settings.registry_path.write_text(text)


@pytest.mark.parametrize(("text", "words"), WRONG_SHAPES)
def test_a_wrongly_shaped_registry_at_startup_is_not_ready(
    make_settings: Any, client_for: Any, text: str, words: str
) -> None:
    _write_index(make_settings(), text)
    client = client_for()  # the lifespan ran: the app is up
    assert client.get("/live").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert words in body["last_error"] and words in body["reason"]
    assert "model registry" in body["last_error"]
    assert _predict(client).status_code == 503


@pytest.mark.parametrize(("text", "words"), WRONG_SHAPES)
def test_a_wrongly_shaped_registry_while_serving_is_reported(
    registry: Any, model_a: Path, client_for: Any, text: str, words: str
) -> None:
    registry.promote(model_a)
    client = client_for()
    store = client.app.state.store
    good = registry.registry.index_path.read_text()
    registry.registry.index_path.write_text(text)
    assert store.refresh() is False
    ready = client.get("/ready")
    assert ready.status_code == 200  # version 1 keeps serving
    assert words in ready.json()["last_error"]
    assert ready.json()["last_error"].endswith("; still serving version 1")
    assert _predict(client).status_code == 200
    # Fixed again (same version): the fault is over.
    registry.registry.index_path.write_text(good)
    assert store.refresh() is False
    assert client.get("/ready").json()["last_error"] is None


def test_a_fault_fixed_before_the_first_promotion_clears_last_error(make_settings: Any) -> None:
    settings = make_settings()
    _write_index(settings, "[]")
    store = ModelStore(settings)
    store.load_initial()
    assert "must hold a JSON object" in store.status()["last_error"]
    _write_index(settings, '{"model": "m", "versions": [], "aliases": {}}')
    store.refresh()
    status = store.status()
    assert status["last_error"] is None and "holds alias 'production'" in status["reason"]


def test_load_initial_never_raises(make_settings: Any, monkeypatch: Any) -> None:
    import serving.model_store as store_module

    def broken(path: Path, alias: str) -> Any:
        raise KeyError("uri")

    monkeypatch.setattr(store_module, "read_registry", broken)
    store = ModelStore(make_settings())
    store.load_initial()
    status = store.status()
    assert status["ready"] is False and "KeyError" in status["reason"]
    assert "KeyError" in status["last_error"]
