"""``deploy`` on GCP: the shared skip rule, the endpoint found or created, the alias moved."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from google.api_core.exceptions import FailedPrecondition, NotFound
from google.cloud import aiplatform_v1
from sales_forecast.platforms.gcp.deploy import move_alias

from tests._support.gcp import PARENT, RUN_KEY, render

PROMOTED = f"gs://acme-sf/models/sales_forecast/{RUN_KEY}/"
REGISTERED = {"model": f"{PARENT}/models/777", "model_id": "777", "version": "2", "uri": PROMOTED}


def endpoint(deployed=()):
    return SimpleNamespace(name=f"{PARENT}/endpoints/9", deployed_models=list(deployed))


def deploy_context(dag, registered=REGISTERED, **params):
    task = dag.get_task("deploy")
    context = render(task, params=params)
    context["ti"] = SimpleNamespace(
        xcom_pull=lambda task_ids, **kw: registered if task_ids == "register" else None,
        xcom_push=lambda **kw: None,
    )
    return task, context


def test_before_register_ran_the_deployed_model_shows_only_its_resources(dag):
    from sales_forecast.platforms.gcp.deploy import deployed_model_body

    cfg = render(dag.get_task("deploy"))["sf"].cfg
    body = deployed_model_body(cfg, model="", version="")
    assert body["model"] == "" and body["display_name"] == "sales_forecast"
    assert deployed_model_body(cfg, f"{PARENT}/models/7", "4")["display_name"] == (
        "sales_forecast-v4"
    )


def test_deploy_is_skipped_unless_enabled_and_registered(dag, endpoints, models):
    from airflow.sdk.exceptions import AirflowSkipException

    task, context = deploy_context(dag)
    with pytest.raises(AirflowSkipException, match="enable_deploy is false"):
        task.execute(context)
    task, context = deploy_context(dag, registered=None, enable_deploy=True)
    with pytest.raises(AirflowSkipException, match="no model version was registered"):
        task.execute(context)
    endpoints.deploy_model.assert_not_called()


def test_deploy_reuses_the_endpoint_moves_the_alias_and_retires_the_old_model(
    dag, endpoints, models
):
    old = SimpleNamespace(id="old1", model=f"{PARENT}/models/777", model_version_id="1")
    endpoints.list_endpoints.return_value = [endpoint([old])]
    models.get_model.return_value = SimpleNamespace(version_id="1", artifact_uri="gs://x/")
    task, context = deploy_context(dag, enable_deploy=True)
    out = task.execute(context)

    assert endpoints.list_endpoints.call_args.kwargs["filter"] == (
        'display_name="sales-forecast-eu"'
    )
    endpoints.create_endpoint.assert_not_called()
    deploy = endpoints.deploy_model.call_args.kwargs
    assert deploy["endpoint"] == "9"
    assert deploy["deployed_model"]["model"] == f"{PARENT}/models/777@2"
    assert deploy["deployed_model"]["dedicated_resources"]["max_replica_count"] == 3
    assert deploy["traffic_split"] == {"0": 100}
    models.add_version_aliases.assert_called_once_with(
        project_id="acme-forecast",
        region="europe-west4",
        model_id="777@2",
        version_aliases=["production"],
    )
    assert endpoints.undeploy_model.call_args.kwargs["deployed_model_id"] == "old1"
    assert out["previous_version"] == "1" and out["deployed_model_id"] == "new1"


def test_deploy_creates_the_endpoint_the_first_time(dag, endpoints, models):
    endpoints.list_endpoints.return_value = []
    created = endpoint()
    endpoints.wait_for_operation.side_effect = [
        created,
        aiplatform_v1.DeployModelResponse(deployed_model=aiplatform_v1.DeployedModel(id="n")),
    ]
    models.get_model.side_effect = NotFound("no production yet")
    task, context = deploy_context(dag, enable_deploy=True)
    out = task.execute(context)
    body = endpoints.create_endpoint.call_args.kwargs["endpoint"]
    assert body["display_name"] == "sales-forecast-eu"
    assert out["endpoint"] == created.name and out["previous_version"] is None
    endpoints.undeploy_model.assert_not_called()


def test_a_version_already_serving_is_not_deployed_again(dag, endpoints, models):
    same = SimpleNamespace(id="d2", model=f"{PARENT}/models/777", model_version_id="2")
    endpoints.list_endpoints.return_value = [endpoint([same])]
    models.get_model.return_value = SimpleNamespace(version_id="2", artifact_uri=PROMOTED)
    task, context = deploy_context(dag, enable_deploy=True)
    out = task.execute(context)
    endpoints.deploy_model.assert_not_called()
    models.add_version_aliases.assert_not_called()  # production already is version 2
    endpoints.undeploy_model.assert_not_called()
    assert out["deployed_model_id"] == "d2" and out["previous_version"] == "2"


def test_move_alias_releases_it_from_the_previous_version_when_refused(dag):
    cfg = render(dag.get_task("deploy"))["sf"].cfg
    hook = mock.MagicMock()
    hook.get_model.return_value = SimpleNamespace(version_id="1")
    hook.add_version_aliases.side_effect = [FailedPrecondition("alias taken"), None]
    assert move_alias(hook, cfg, "777", "2") == "1"
    hook.delete_version_aliases.assert_called_once_with(
        project_id="acme-forecast",
        region="europe-west4",
        model_id="777@1",
        version_aliases=["production"],
    )
    assert hook.add_version_aliases.call_count == 2


def test_on_a_shared_endpoint_only_this_models_versions_are_replaced(dag, endpoints, models):
    """Another model's deployment keeps its traffic share and stays deployed."""
    ours = SimpleNamespace(id="old1", model=f"{PARENT}/models/777", model_version_id="1")
    other = SimpleNamespace(id="oth1", model=f"{PARENT}/models/555", model_version_id="4")
    shared = endpoint([ours, other])
    shared.traffic_split = {"old1": 70, "oth1": 30}
    endpoints.list_endpoints.return_value = [shared]
    models.get_model.return_value = SimpleNamespace(version_id="1", artifact_uri="gs://x/")
    task, context = deploy_context(dag, enable_deploy=True)
    task.execute(context)

    # The new version takes the share of the version it replaces, the other model keeps its.
    assert endpoints.deploy_model.call_args.kwargs["traffic_split"] == {"oth1": 30, "0": 70}
    undeployed = [c.kwargs["deployed_model_id"] for c in endpoints.undeploy_model.call_args_list]
    assert undeployed == ["old1"]


def test_traffic_split_rules():
    from sales_forecast.platforms.gcp.deploy import same_model, traffic_split

    m = f"{PARENT}/models/777"
    assert same_model(f"{m}@3", m) and not same_model(f"{PARENT}/models/7770", m)
    fresh = SimpleNamespace(deployed_models=[], traffic_split={})
    assert traffic_split(fresh, m) == {"0": 100}
    # Other models hold all the traffic: the new version gets none (and a warning).
    other = SimpleNamespace(id="o", model=f"{PARENT}/models/5")
    taken = SimpleNamespace(deployed_models=[other], traffic_split={"o": 100})
    assert traffic_split(taken, m) == {"o": 100}
