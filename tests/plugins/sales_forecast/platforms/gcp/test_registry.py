"""The Vertex AI Model Registry behind the registry interface: which version is production."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from google.api_core.exceptions import NotFound
from sales_forecast.platforms.gcp.registry import VertexModelRegistry, find_production_model

from tests._support.gcp import PARENT

ROOT = "gs://acme-sf/models/sales_forecast/"


def registry() -> VertexModelRegistry:
    return VertexModelRegistry(
        conn_id="google_cloud_default",
        project="acme-forecast",
        region="europe-west4",
        model_name="sales_forecast",
        promoted_root=ROOT,
    )


def test_no_parent_model_yet():
    hook = mock.MagicMock()
    hook.list_models.return_value = []
    assert find_production_model(hook, "p", "r", "m") == (None, None)
    hook.list_models.assert_called_once_with(project_id="p", region="r", filter='display_name="m"')
    hook.get_model.assert_not_called()


def test_the_oldest_parent_wins_and_no_version_may_hold_the_alias():
    hook = mock.MagicMock()
    hook.list_models.return_value = [
        SimpleNamespace(name=f"{PARENT}/models/9", create_time="2025-02-01"),
        SimpleNamespace(name=f"{PARENT}/models/7", create_time="2025-01-01"),
    ]
    hook.get_model.side_effect = NotFound("no alias")
    assert find_production_model(hook, "p", "r", "m") == ("7", None)
    assert hook.get_model.call_args.kwargs["model_id"] == "7@production"


def test_production_version_and_the_run_that_registered_it(models):
    version = registry().get_by_alias("production")
    assert version is not None
    assert (version.version, version.uri, version.run_id) == ("3", f"{ROOT}older_run/", "older_run")
    assert version.name == f"{PARENT}/models/777" and version.aliases == ("production",)
    with pytest.raises(ValueError, match="only the 'production' alias"):
        registry().get_by_alias("staging")


def test_a_version_outside_the_promoted_folder_has_no_run(models):
    models.get_model.return_value = SimpleNamespace(
        name=f"{PARENT}/models/777@1", version_id="1", artifact_uri="gs://elsewhere/m/"
    )
    version = registry().get_by_alias("production")
    assert version is not None and version.run_id == ""


def test_list_versions(models):
    models.list_model_versions.return_value = [
        SimpleNamespace(name=f"{PARENT}/models/777@1", version_id="1", artifact_uri=f"{ROOT}a/"),
        SimpleNamespace(name=f"{PARENT}/models/777@2", version_id="2", artifact_uri=f"{ROOT}b/"),
    ]
    assert [(v.version, v.run_id) for v in registry().list_versions()] == [("1", "a"), ("2", "b")]
    models.list_models.return_value = []
    assert registry().list_versions() == []
