"""Settings are checked when they are read, so a bad one fails a task at once, naming it."""

import pytest
from pydantic import ValidationError
from sales_forecast.config import Settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SF_GATE_MIN_IMPROVEMENT": "-0.5"}, "gate_min_improvement"),
        ({"SF_GATE_MIN_IMPROVEMENT": "1"}, "gate_min_improvement"),
        ({"SF_GATE_FRESHNESS_TOLERANCE": "2"}, "gate_freshness_tolerance"),
        ({"SF_MAX_REJECT_FRACTION": "1.5"}, "max_reject_fraction"),
        ({"SF_MAX_SERIES_REJECT_FRACTION": "-0.1"}, "max_series_reject_fraction"),
        ({"SF_MAX_MODEL_AGE_DAYS": "0"}, "max_model_age_days"),
        ({"SF_BACKTEST_WINDOWS": "0"}, "backtest_windows"),
        ({"SF_DATASET": 'x"; DROP TABLE y; --'}, "is not a valid name"),
        ({"SF_MODEL_NAME": "my model"}, "is not a valid name"),
        ({"SF_TRAINER_PARAMS": '{"--model-dir": "/elsewhere"}'}, "not a trainer parameter"),
    ],
)
def test_a_bad_setting_is_refused_when_read(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_the_gcp_input_default_is_the_variable_not_the_demo_file(monkeypatch):
    monkeypatch.delenv("SF_DEFAULT_INPUT_URI", raising=False)
    assert Settings(platform="local").input_uri_default.endswith("retail_sales.csv")
    assert "sf_gcp_input_uri" in Settings(platform="gcp").input_uri_default
    explicit = Settings(platform="gcp", default_input_uri="gs://b/x.csv")
    assert explicit.input_uri_default == "gs://b/x.csv"


def test_a_bad_setting_fails_the_task_without_retries(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from sales_forecast import config
    from sales_forecast.tasks import run_step

    monkeypatch.setenv("SF_GATE_MIN_IMPROVEMENT", "-0.5")
    config.get_settings.cache_clear()
    try:
        with pytest.raises(AirflowFailException, match="gate_min_improvement"):
            run_step("validate", task=None)
    finally:
        config.get_settings.cache_clear()
