"""``register`` on GCP: the shared skip rule, promotion with a sha256 manifest, a new version."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import aiplatform_v1
from sales_forecast.platforms.gcp.register import sha256_manifest

from sf_contract.files import parse_manifest
from tests._support.gcp import PARENT, RUN_DIR, RUN_ID, RUN_KEY, FakeGCS, render

PROMOTED = f"gs://acme-sf/models/sales_forecast/{RUN_KEY}/"


def test_sha256_manifest():
    manifest = sha256_manifest({"b.txt": "bb" * 32, "a.txt": "aa" * 32}, run_id="r")
    assert list(manifest["files"]) == ["a.txt", "b.txt"]
    assert manifest["files"]["a.txt"] == "aa" * 32
    assert manifest["run_id"] == "r"
    parse_manifest(json.dumps(manifest))  # what the serving app reads


def put_gate(gcs: FakeGCS, passed: bool, reason: str = "test") -> None:
    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": passed, "metric": "wape", "reason": reason})


def test_register_is_skipped_unless_enabled_and_passed(dag, gcs, models):
    from airflow.sdk.exceptions import AirflowSkipException

    task = dag.get_task("register")
    put_gate(gcs, True)
    with pytest.raises(AirflowSkipException, match="enable_deploy is false"):
        task.execute(render(task))
    put_gate(gcs, False, reason="worse than naive")
    with pytest.raises(AirflowSkipException, match="gate did not pass: worse than naive"):
        task.execute(render(task, params={"enable_deploy": True}))
    models.upload_model.assert_not_called()


def model_files(gcs: FakeGCS) -> dict[str, bytes]:
    files = {
        "forecaster.json": b'{"a": 1}',
        "mlforecast/models.pkl": b"\x00\x01",
        "metrics.json": b'{"wape": 0.1}',
        "metadata.json": b'{"train_end": "2025-03-31", "train_start": "2024-01-01"}',
    }
    for rel, data in files.items():
        gcs.put(f"{RUN_DIR}/model/{rel}", data)
    put_gate(gcs, True)
    return files


def test_register_promotes_the_model_and_adds_a_version(dag, gcs, models, bq):
    files = model_files(gcs)
    models.get_model.side_effect = NotFound("no production yet")
    models.wait_for_operation.return_value = aiplatform_v1.UploadModelResponse(
        model=f"{PARENT}/models/777", model_version_id="2"
    )
    models.extract_model_id.return_value = "777"
    task = dag.get_task("register")
    out = task.execute(render(task, params={"enable_deploy": True}))

    # The promoted folder holds the same bytes and a manifest of their sha256.
    for rel, data in files.items():
        assert gcs.get(f"{PROMOTED}{rel}") == data
    manifest = json.loads(gcs.get(f"{PROMOTED}manifest.json"))
    assert manifest["files"] == {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}
    assert manifest["run_id"] == RUN_ID
    # No model file passed through the worker's memory whole: each one was copied server-side,
    # then hashed as a stream of the promoted copy. Only the small records the shared
    # registration step reads (gate, metrics, training window) are read whole.
    whole = {name for api, name in gcs.calls if api in ("download", "download_file")}
    assert whole == {
        f"runs/{RUN_KEY}/{f}"
        for f in ("backtest/gate.json", "model/metrics.json", "model/metadata.json")
    }
    for rel in files:
        assert ("rewrite", f"runs/{RUN_KEY}/model/{rel}") in gcs.calls
        assert ("stream", f"models/sales_forecast/{RUN_KEY}/{rel}") in gcs.calls

    upload = models.upload_model.call_args.kwargs
    assert upload["parent_model"] == "777"  # a new version of the same model
    env = {e["name"]: e["value"] for e in upload["model"]["container_spec"]["env"]}
    assert env == {
        "SF_MODEL_NAME": "sales_forecast",
        "SF_MODEL_VERSION": f"run:{RUN_KEY}",
        "SF_SERVING_REQUIRE_MANIFEST": "true",
    }
    assert upload["model"]["artifact_uri"] == PROMOTED
    assert upload["model"]["container_spec"]["image_uri"].endswith("/serving:1.2.0")
    # The gate and the metrics are recorded with the version.
    assert "challenger=None" in upload["model"]["version_description"]
    assert '"wape": 0.1' in upload["model"]["version_description"]
    assert out == {
        "model": f"{PARENT}/models/777",
        "model_id": "777",
        "version": "2",
        "uri": PROMOTED,
    }
    # This run's forecast rows now carry the registry version, as locally.
    (relabel,) = [j for j in bq.jobs if "UPDATE" in j["configuration"]["query"]["query"]]
    params = {
        p["name"]: p["parameterValue"]["value"]
        for p in relabel["configuration"]["query"]["queryParameters"]
    }
    assert params["version"] == "2" and params["candidate"].startswith("candidate:")


def test_the_first_registration_creates_the_parent_model(dag, gcs, models, bq):
    model_files(gcs)
    models.list_models.return_value = []
    models.wait_for_operation.return_value = aiplatform_v1.UploadModelResponse(
        model=f"{PARENT}/models/778", model_version_id="1"
    )
    task = dag.get_task("register")
    out = task.execute(render(task, params={"enable_deploy": True}))
    assert models.upload_model.call_args.kwargs["parent_model"] is None
    assert out["model_id"] == "778" and out["version"] == "1"


def test_registering_a_run_twice_returns_its_version(dag, gcs, models):
    model_files(gcs)
    models.list_model_versions.return_value = [
        SimpleNamespace(name=f"{PARENT}/models/777@4", version_id="4", artifact_uri=PROMOTED)
    ]
    task = dag.get_task("register")
    out = task.execute(render(task, params={"enable_deploy": True}))
    models.upload_model.assert_not_called()
    assert out["version"] == "4" and out["model_id"] == "777"


def test_register_needs_the_serving_image(dag, gcs, models, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    model_files(gcs)
    monkeypatch.delenv("AIRFLOW_VAR_SF_GCP_SERVING_IMAGE")
    task = dag.get_task("register")
    with pytest.raises(AirflowFailException, match="serving_image: set the Airflow Variable"):
        task.execute(render(task, params={"enable_deploy": True}))
    models.upload_model.assert_not_called()


def test_a_large_file_is_hashed_in_pieces(dag, gcs, models, bq):
    """The sha256 is fed piece by piece (the fake streams 4-byte pieces), and still exact."""
    from sales_forecast.platforms.gcp.register import promote

    model_files(gcs)
    big = bytes(range(256)) * 40  # 10 KiB: 2560 pieces
    gcs.put(f"{RUN_DIR}/model/mlforecast/models.pkl", big)
    run = render(dag.get_task("register"), params={"enable_deploy": True})["sf"]
    sums = promote(run.platform.store, run)
    assert sums["mlforecast/models.pkl"] == hashlib.sha256(big).hexdigest()
    assert gcs.get(f"{PROMOTED}mlforecast/models.pkl") == big


def test_a_manifest_in_the_run_folder_is_not_copied_over_ours(dag, gcs, models, bq):
    from sales_forecast.platforms.gcp.register import promote

    files = model_files(gcs)
    gcs.put(f"{RUN_DIR}/model/manifest.json", {"files": {}})
    run = render(dag.get_task("register"), params={"enable_deploy": True})["sf"]
    promote(run.platform.store, run)
    manifest = parse_manifest(gcs.get(f"{PROMOTED}manifest.json"))
    assert set(manifest["files"]) == set(files)  # never lists itself


def test_the_serving_app_reads_the_container_env_register_sets(dag, gcs, monkeypatch):
    """What register puts in the container spec is what the serving settings understand."""
    from sales_forecast.platforms.gcp.register import model_upload_body

    from serving.config import Settings

    run = render(dag.get_task("register"), params={"enable_deploy": True})["sf"]
    container = model_upload_body(run)["container_spec"]
    for env in container["env"]:
        monkeypatch.setenv(env["name"], env["value"])
    monkeypatch.setenv("AIP_STORAGE_URI", "gs://caip-tenant/model")
    served = Settings()
    assert served.require_manifest is True
    assert served.model_version == f"run:{RUN_KEY}"
    assert served.model_name == "sales_forecast"
    assert (served.predict_route, served.health_route) == (
        container["predict_route"],
        container["health_route"],
    )
