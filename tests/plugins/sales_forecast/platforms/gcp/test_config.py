"""The ``gcp_*`` settings as one task run sees them: rendered, defaulted, checked."""

from __future__ import annotations

import pytest
from sales_forecast.errors import ConfigError
from sales_forecast.platforms.gcp.config import resolve_config

from tests._support.gcp import variables_renderer

REQUIRED = {"sf_gcp_project": "p", "sf_gcp_bucket": "gs://bkt/", "sf_gcp_trainer_image": "i"}


def test_defaults_and_a_bucket_given_as_a_uri(settings):
    render = variables_renderer(REQUIRED)
    cfg = resolve_config(settings, render)
    assert cfg.bucket == "bkt" and cfg.region == "us-central1" and cfg.deploy_max_replicas == 1
    assert (cfg.bq_dataset, cfg.bq_location, cfg.runner) == ("sales_forecast", "US", "vertex")
    assert (cfg.train_boot_disk_type, cfg.train_boot_disk_size_gb) == ("pd-ssd", 100)
    assert cfg.job_timeout_s == settings.trainer_timeout_s
    assert resolve_config(settings, render, runner="cloud-run").runner == "cloud_run"
    with pytest.raises(ConfigError, match="sf_gcp_bucket"):
        resolve_config(settings, variables_renderer({"sf_gcp_project": "p"}))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"sf_gcp_bucket": "bkt/folder"}, "to a bucket name, got 'bkt/folder'"),
        ({"sf_gcp_deploy_min_replicas": "0"}, "to at least 1, got 0"),
        ({"sf_gcp_train_boot_disk_size_gb": "big"}, "boot_disk_size_gb.* whole number"),
        (
            {"sf_gcp_deploy_min_replicas": "3", "sf_gcp_deploy_max_replicas": "2"},
            r"deploy_max_replicas \(2\) is below deploy_min_replicas \(3\)",
        ),
    ],
)
def test_invalid_settings_name_what_to_fix(settings, variables, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(settings, variables_renderer({**REQUIRED, **variables}))


def test_the_serving_image_is_required_only_where_it_is_used(settings):
    cfg = resolve_config(settings, variables_renderer(REQUIRED))
    assert cfg.serving_image == ""
    with pytest.raises(ConfigError, match="serving_image: set the Airflow Variable"):
        cfg.require("serving_image")


def test_the_boot_disk_is_configurable_for_hyperdisk_only_machine_series(settings):
    variables = {
        **REQUIRED,
        "sf_gcp_train_machine_type": "c4-standard-8",
        "sf_gcp_train_boot_disk_type": "hyperdisk-balanced",
        "sf_gcp_train_boot_disk_size_gb": "250",
    }
    cfg = resolve_config(settings, variables_renderer(variables))
    assert (cfg.train_boot_disk_type, cfg.train_boot_disk_size_gb) == ("hyperdisk-balanced", 250)
