from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sales_forecast.errors import DataError
from sales_forecast.run_context import make_run_context, render_params


def ctx_for(settings, tmp_path, input_uri, **params):
    return make_run_context(
        run_id="manual__2024-03-10T00:00:00+00:00",
        logical_date=datetime(2024, 3, 10, tzinfo=UTC),
        params={"input_uri": input_uri, **params},
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )


def test_run_context_dates_and_defaults(settings, tmp_path):
    ctx = ctx_for(settings, tmp_path, "x.csv")
    assert ctx.run_date == date(2024, 3, 10)
    assert ctx.cutoff_date == date(2024, 3, 9)  # the last complete day
    assert ctx.horizon == 28 and ctx.dataset == "retail" and ctx.enable_deploy is False
    assert ctx.future_uri is None
    assert ctx.run_key == "manual__2024-03-10T00_00_00_00_00"
    assert "/" not in ctx.run_key and ":" not in ctx.run_key
    assert ctx.model_dir == f"{ctx.run_dir}/model"


def test_run_date_converts_at_the_utc_day_boundary(settings, tmp_path):
    # 23:30 in New York on the 9th is already the 10th in UTC.
    ny = timezone(timedelta(hours=-5))
    ctx = make_run_context(
        run_id="r",
        logical_date=datetime(2024, 3, 9, 23, 30, tzinfo=ny),
        params={},
        settings=settings,
        runs_root=str(tmp_path),
    )
    assert ctx.run_date == date(2024, 3, 10)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"horizon": 0}, "out of range"),
        ({"horizon": 367}, "out of range"),
        ({"horizon": "ten"}, "not an integer"),
        ({"cutoff_date": "10/03/2024"}, "not a YYYY-MM-DD date"),
        # The form says YYYY-MM-DD; Python's fromisoformat would take these.
        ({"cutoff_date": "20240309"}, "not a YYYY-MM-DD date"),
        ({"cutoff_date": "2024-W10-6"}, "not a YYYY-MM-DD date"),
        ({"cutoff_date": "2024-02-30"}, "not a YYYY-MM-DD date"),
    ],
)
def test_bad_params_are_clear_errors(settings, tmp_path, params, message):
    with pytest.raises(DataError, match=message):
        ctx_for(settings, tmp_path, "x.csv", **params)


def test_explicit_cutoff(settings, tmp_path):
    assert ctx_for(settings, tmp_path, "x", cutoff_date="2024-01-31").cutoff_date == date(
        2024, 1, 31
    )


def test_string_params_are_rendered_with_the_runs_dates():
    class Run:
        run_id = "manual__x"
        run_after = datetime(2024, 3, 10, 5, tzinfo=UTC)

    seen = {}

    def render(value, context):
        seen[value] = context["ds"]
        return value.replace("{{ ds }}", context["ds"])

    context = {"dag_run": Run(), "params": {"input_uri": "gs://b/{{ ds }}/s.csv", "horizon": 7}}
    run_id, when, params = render_params(context, render)
    assert (run_id, when) == ("manual__x", Run.run_after)  # no logical date: run_after
    assert params == {"input_uri": "gs://b/2024-03-10/s.csv", "horizon": 7}
    assert seen == {"gs://b/{{ ds }}/s.csv": "2024-03-10"}  # non-templates are not rendered
