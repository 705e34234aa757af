from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sales_forecast.errors import DataError
from sales_forecast.run_context import make_run_context, render_params


def ctx_for(settings, tmp_path, input_uri=None, **params):
    # Inputs live under the data root (an allowed input folder) unless a test says otherwise.
    input_uri = str(settings.data_root / "x.csv") if input_uri is None else input_uri
    return make_run_context(
        run_id="manual__2024-03-10T00:00:00+00:00",
        logical_date=datetime(2024, 3, 10, tzinfo=UTC),
        params={"input_uri": input_uri, **params},
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )


def test_run_context_dates_and_defaults(settings, tmp_path):
    ctx = ctx_for(settings, tmp_path)
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
        ({"cutoff_date": "20250620"}, "not a YYYY-MM-DD date"),  # review #30
        ({"cutoff_date": 20250620}, "not a YYYY-MM-DD date"),  # a number in the conf JSON
        ({"cutoff_date": "2025-06-20T00:00"}, "not a YYYY-MM-DD date"),
        ({"cutoff_date": "2025-6-20"}, "not a YYYY-MM-DD date"),
        ({"cutoff_date": "２０２５-06-20"}, "not a YYYY-MM-DD date"),  # fullwidth digits
        ({"cutoff_date": "2024-W10-6"}, "not a YYYY-MM-DD date"),
        ({"cutoff_date": "2024-02-30"}, "not a YYYY-MM-DD date"),
    ],
)
def test_bad_params_are_clear_errors(settings, tmp_path, params, message):
    with pytest.raises(DataError, match=message):
        ctx_for(settings, tmp_path, **params)


def test_explicit_cutoff(settings, tmp_path):
    assert ctx_for(settings, tmp_path, cutoff_date="2024-01-31").cutoff_date == date(2024, 1, 31)


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


def test_cutoff_uses_the_shared_date_rule():
    from sf_contract.constants import DATE_PATTERN

    assert DATE_PATTERN == r"^\d{4}-\d{2}-\d{2}$"  # what the message promises


# ----------------------------------------------------------------- where inputs may come from


def test_inputs_under_the_data_root_or_an_extra_root_are_accepted(settings, tmp_path, monkeypatch):
    from sales_forecast import config

    root = settings.data_root
    assert ctx_for(settings, tmp_path, str(root / "in" / "s.csv")).input_uri == str(
        root / "in/s.csv"
    )
    # file:// and relative paths (from the worker's folder) mean the same files.
    assert ctx_for(settings, tmp_path, f"file://{root}/s.csv").input_uri == f"file://{root}/s.csv"
    monkeypatch.chdir(tmp_path)
    assert ctx_for(settings, tmp_path, "data/s.csv").input_uri == "data/s.csv"
    # The demo data ships in the repository's data/ folder (the default input).
    assert ctx_for(settings, tmp_path, "").input_uri == settings.default_input_uri
    extra = tmp_path / "drops"
    monkeypatch.setenv("SF_INPUT_ROOTS", f'["{extra}"]')
    config.get_settings.cache_clear()
    wider = config.get_settings()
    assert ctx_for(wider, tmp_path, str(extra / "s.csv")).input_uri == str(extra / "s.csv")
    with pytest.raises(DataError, match="outside the allowed folders"):
        ctx_for(settings, tmp_path, str(extra / "s.csv"))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("/etc/passwd", "outside the allowed folders"),
        ("http://127.0.0.1:9/x.csv", "uses the 'http' scheme"),
        ("https://example.com/x.csv", "uses the 'https' scheme"),
        ("s3://bucket/x.csv", "uses the 's3' scheme"),
        ("gs://bucket/x.csv", "uses the 'gs' scheme"),
        ("simplecache::http://127.0.0.1:9/x", "uses the 'simplecache' scheme"),
        ("file://otherhost/etc/passwd", "is not a plain file:///<path> URI"),
        ("file:///etc/passwd", "outside the allowed folders"),
        ("~/x.csv", "outside the allowed folders"),
        ("{root}/../../x.csv", "outside the allowed folders"),
        ("{root}/a::b.csv", "contains '::'"),
        ("{root}/*.csv", "contains a wildcard"),
        ("{root}/x\n.csv", "contains a control character"),
        ("file://{root}/%2e%2e/x.csv", "is not a plain file:///<path> URI"),
    ],
)
def test_local_inputs_outside_the_allowed_folders_are_refused(settings, tmp_path, uri, message):
    settings.data_root.mkdir(parents=True)
    uri = uri.replace("{root}", str(settings.data_root))
    with pytest.raises(DataError, match=message) as err:
        ctx_for(settings, tmp_path, uri)
    assert str(settings.data_root) in str(err.value) or "folder" in message  # names the roots
    with pytest.raises(DataError, match=message):
        ctx_for(settings, tmp_path, future_uri=uri)


def test_a_folder_is_a_parquet_input_and_never_a_future_file(settings, tmp_path):
    folder = settings.data_root / "drops"
    folder.mkdir(parents=True)
    # Spelt with its "/" from here on: the sign sources.source_kind reads.
    assert ctx_for(settings, tmp_path, str(folder)).input_uri == f"{folder}/"
    assert ctx_for(settings, tmp_path, f"{folder}/").input_uri == f"{folder}/"
    with pytest.raises(DataError, match="is a folder, not a CSV file"):
        ctx_for(settings, tmp_path, future_uri=str(folder))


def test_gcp_inputs_may_be_parquet_folders_and_bigquery_tables(settings, tmp_path):
    gcp = settings.model_copy(update={"platform": "gcp"})
    assert ctx_for(gcp, tmp_path, "gs://bucket/drops/").input_uri == "gs://bucket/drops/"
    assert ctx_for(gcp, tmp_path, "bq://my-project.sales.daily").input_uri.startswith("bq://")
    with pytest.raises(DataError, match="is a folder, not a CSV file"):
        ctx_for(gcp, tmp_path, "gs://bucket/x.csv", future_uri="gs://bucket/drops/")
    with pytest.raises(DataError, match="BigQuery tables are read as input_uri only"):
        ctx_for(gcp, tmp_path, "gs://bucket/x.csv", future_uri="bq://my-project.sales.daily")
    with pytest.raises(DataError, match="not a BigQuery table URI"):
        ctx_for(gcp, tmp_path, "bq://my-project.sales")


def test_a_symlink_out_of_the_root_is_refused(settings, tmp_path):
    settings.data_root.mkdir(parents=True)
    secret = tmp_path / "secret.csv"
    secret.write_text("date,store_id\n")
    (settings.data_root / "innocent.csv").symlink_to(secret)
    with pytest.raises(DataError, match="outside the allowed folders"):
        ctx_for(settings, tmp_path, str(settings.data_root / "innocent.csv"))
    # A symlink that stays inside a root is fine.
    (settings.data_root / "real.csv").write_text("x")
    (settings.data_root / "link.csv").symlink_to(settings.data_root / "real.csv")
    ctx_for(settings, tmp_path, str(settings.data_root / "link.csv"))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://my-drops/2025/sales.csv", None),
        ("gs://a.b_c-d/x", None),
        ("gs://b/in.csv", None),
        ("gs://-b/in.csv", "is not a gs://<bucket>/<object> URI"),
        ("gs://b..c/../x", None),  # GCS has no folders to escape
        ("/home/airflow/gcs/data/sales.csv", "is not a gs://<bucket>/<object> URI"),
        ("file:///etc/passwd", "is not a gs://<bucket>/<object> URI"),
        ("http://metadata.google.internal/x", "is not a gs://<bucket>/<object> URI"),
        ("gs://Bucket/x.csv", "is not a gs://<bucket>/<object> URI"),
        ("gs://bucket", "is not a gs://<bucket>/<object> URI"),
        ("gs://bucket/", "is not a gs://<bucket>/<object> URI"),
        ("gs://bucket/drops/*.csv", "contains a wildcard"),
        ("gs://bucket/drops/[ab].csv", "contains a wildcard"),
        ("gs://bucket/x.csv::http://x", "is not a gs://<bucket>/<object> URI"),
    ],
)
def test_gcp_inputs_are_gs_uris_only(settings, tmp_path, uri, message):
    gcp = settings.model_copy(update={"platform": "gcp"})
    if message is None:
        assert ctx_for(gcp, tmp_path, uri, future_uri=uri).future_uri == uri
        return
    with pytest.raises(DataError, match=message) as err:
        ctx_for(gcp, tmp_path, uri)
    assert "gs://<bucket>/<object>" in str(err.value)


@pytest.mark.parametrize("dataset", ["../../etc/passwd", "/etc/passwd", "retail.yaml", "no_such"])
def test_a_dataset_that_is_not_a_contract_name_fails_the_run_at_once(settings, tmp_path, dataset):
    with pytest.raises(DataError, match="available: retail, takeaway"):
        ctx_for(settings, tmp_path, dataset=dataset)


def test_gcp_has_no_default_input_file(settings, tmp_path):
    gcp = settings.model_copy(update={"platform": "gcp"})
    with pytest.raises(DataError, match="param input_uri is empty: pass input_uri=gs://"):
        ctx_for(gcp, tmp_path, "")


@pytest.mark.parametrize(
    ("run_id", "setting", "param", "expect"),
    [
        ("scheduled__2025-04-01T00:00:00+00:00", False, False, False),
        ("scheduled__2025-04-01T00:00:00+00:00", True, False, True),  # the schedule may deploy
        ("manual__2025-04-01T00:00:00+00:00", True, False, False),  # a manual run: its param
        ("manual__2025-04-01T00:00:00+00:00", False, True, True),
    ],
)
def test_scheduled_runs_deploy_only_when_the_setting_says_so(
    settings, run_id, setting, param, expect
):
    from datetime import UTC, datetime

    from sales_forecast.run_context import make_run_context

    s = settings.model_copy(update={"scheduled_enable_deploy": setting})
    ctx = make_run_context(
        run_id=run_id,
        logical_date=datetime(2025, 4, 1, tzinfo=UTC),
        params={"enable_deploy": param},
        settings=s,
        runs_root="/tmp/runs",
    )
    assert ctx.enable_deploy is expect
