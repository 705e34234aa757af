"""The gcp platform's plain-Python pieces: numbering the CSV, splitting scripts, the checks.

The checks must say exactly what the local platform says: the parity tests run the local step
on DuckDB and compare the words.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from sales_forecast import steps
from sales_forecast.contract import load_contract
from sales_forecast.platforms import gcp

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"


def number(text: str, header: list[str] | None = None) -> tuple[gcp.NumberedCsv, list[str]]:
    contract = load_contract("retail")
    src = io.StringIO(text, newline="")
    header = header or text.splitlines()[0].split(",")
    out = io.StringIO()
    result = gcp.number_csv(src, out, header=header, contract=contract, source_uri="gs://b/in.csv")
    return result, out.getvalue().splitlines()


def test_number_csv_reorders_columns_and_keeps_line_numbers():
    text = (
        "store_id,date,item_id,sales,price,on_promo,is_holiday,temperature\n"
        "S01,2024-01-01,I1,3,1.5,false,false,5\n"
        "\n"  # a blank line still counts as a line
        'S01,2024-01-02,I1,"4",1.5,false,false,"a\nb"\n'  # a quoted newline: one record
        "S01,2024-01-04,I1,5,1.5,false,false\n"  # a field short
        "S01,2024-01-05,I1,5,1.5,false,false,5\n"
    )
    result, lines = number(text)
    assert lines[0] == "_source_row,_source_file," + HEADER  # the contract's order
    assert lines[1] == "2,gs://b/in.csv,2024-01-01,S01,I1,3,1.5,false,false,5"
    assert lines[2].startswith("4,gs://b/in.csv,2024-01-02,S01,I1,4,")
    assert lines[-1].startswith("7,gs://b/in.csv,2024-01-05,S01")
    assert result.rows == 3
    assert result.malformed == [
        {
            "source_row": 6,
            "reason": "malformed CSV line (missing columns): expected 8 fields, found 7",
            "raw_line": "S01,2024-01-04,I1,5,1.5,false,false",
        },
    ]


def test_number_csv_sets_aside_bad_quoting_and_invalid_text():
    text = HEADER + '\n2024-01-01,S01,I1,3,1.5,false,"x"y,5\n2024-01-02,S01,I1,\ufffd,1,f,f,5\n'
    result, lines = number(text)
    assert result.rows == 0 and len(lines) == 1
    reasons = [m["reason"] for m in result.malformed]
    assert reasons[0].startswith("malformed CSV line (bad quoting)")
    assert reasons[1] == "malformed CSV line (invalid unicode): not UTF-8 text"


def test_split_statements_keeps_the_text_and_ignores_semicolons_in_strings_and_comments():
    sql = "-- a; comment\nSELECT 'a;b' AS x;\n\n/* c; */ DELETE FROM t WHERE y = @run_id;\n-- end\n"
    assert gcp.split_statements_verbatim(sql) == [
        "-- a; comment\nSELECT 'a;b' AS x",
        "/* c; */ DELETE FROM t WHERE y = @run_id",
    ]


def test_query_parameters_only_for_the_names_a_statement_uses():
    params = {"run_id": "r1", "run": "no", "cutoff": date(2024, 1, 31), "n": 3}
    got = gcp.query_parameters("SELECT @run_id, @cutoff, @n", params)
    assert got == [
        {"name": "run_id", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "r1"}},
        {
            "name": "cutoff",
            "parameterType": {"type": "DATE"},
            "parameterValue": {"value": "2024-01-31"},
        },
        {"name": "n", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}},
    ]


def test_gs_uris_and_labels():
    assert gcp.split_gs_uri("gs://b/x/y.csv") == ("b", "x/y.csv")
    for bad in ("/local/file.csv", "gs://b", "gs://b/folder/"):
        with pytest.raises(steps.DataError):
            gcp.split_gs_uri(bad)
    assert gcp.split_gs_prefix("gs://b/models/m/run/") == ("b", "models/m/run")
    assert (
        gcp.label_value("manual__2025-04-01T00:00:00+00:00") == "manual__2025-04-01t00-00-00-00-00"
    )


def test_defaults_and_a_bucket_given_as_a_uri(settings):
    from tests.gcp.helpers import variables_renderer

    render = variables_renderer(
        {"sf_gcp_project": "p", "sf_gcp_bucket": "gs://bkt/", "sf_gcp_trainer_image": "i"}
    )
    cfg = gcp.resolve_config(settings, render)
    assert cfg.bucket == "bkt" and cfg.region == "us-central1" and cfg.deploy_max_replicas == 1
    assert (cfg.bq_dataset, cfg.bq_location, cfg.runner) == ("sales_forecast", "US", "vertex")
    assert gcp.resolve_config(settings, render, runner="cloud-run").runner == "cloud_run"
    with pytest.raises(gcp.ConfigError, match="sf_gcp_bucket"):
        gcp.resolve_config(settings, variables_renderer({"sf_gcp_project": "p"}))


# ---------------------------------------------------------------- parity with the local steps


def local_platform(settings, tmp_path, lines):
    from sales_forecast.platforms.local import build_local_platform

    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    platform = build_local_platform(settings)
    ctx = steps.make_run_context(
        run_id="r1",
        logical_date=datetime(2024, 3, 1, tzinfo=UTC),
        params={"input_uri": str(path)},
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )
    steps.load_to_staging(ctx, platform)
    return ctx, platform


def gcp_validation(ctx, platform, settings):
    """The gcp check, fed by the same queries the validate operator runs."""
    wh = platform.warehouse
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS staged, COUNTIF(reject_reason IS NOT NULL) AS rejected "
        f"FROM {wh.tables.staging_checked}"
    )
    (mal,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.staging_malformed}")
    examples = wh.query(
        f"SELECT source_row, reason FROM {wh.tables.rejected_rows} "
        "WHERE run_id = @run_id ORDER BY source_row LIMIT 5",
        run_id=ctx.run_id,
    )
    return gcp.validation_summary(
        staged=int(stats["staged"]),
        rejected=int(stats["rejected"]),
        malformed=int(mal["n"]),
        examples=examples,
        input_uri=ctx.input_uri,
        run_id=ctx.run_id,
        max_reject_fraction=settings.max_reject_fraction,
    )


@pytest.mark.parametrize(
    "lines",
    [
        ["2024-01-01,S01,I1,3,1,false,false,5", "2024-01-02,S01,I1,-1,1,false,false,5"],
        ["2024-01-01,S01,I1,x,1,false,false,5", "2024-01-02,S01,I1,-1,1,false,false,5,9"],
    ],
    ids=["over-the-limit", "nothing-valid"],
)
def test_validation_fails_with_the_same_message_as_locally(settings, tmp_path, lines):
    ctx, platform = local_platform(settings, tmp_path, lines)
    with pytest.raises(steps.DataError) as local:
        steps.validate(ctx, platform, settings)
    with pytest.raises(steps.DataError) as remote:
        gcp_validation(ctx, platform, settings)
    assert str(remote.value) == str(local.value)


def test_validation_summary_matches_locally(settings, tmp_path):
    lines = [f"2024-01-{d:02d},S01,I1,{d},1,false,false,5" for d in range(1, 10)]
    ctx, platform = local_platform(settings, tmp_path, [*lines, "2024-01-10,S01,I1,-1,1,f,f,5"])
    local = steps.validate(ctx, platform, settings)
    summary, where = gcp_validation(ctx, platform, settings)
    assert summary == local
    assert where.endswith("line 11: sales: negative value")


def test_features_check_matches_locally():
    stats = {
        "rows_total": 5,
        "rows_in_window": 0,
        "series": 0,
        "first_date": date(2024, 2, 1),
        "last_date": None,
    }
    with pytest.raises(
        steps.DataError,
        match=r"no history on or before the cutoff date "
        r"2024-01-31 \(history starts 2024-02-01\); nothing to train on",
    ):
        gcp.build_features_summary(stats, date(2024, 1, 31), "p.d.daily_sales_features")
    stats.update(rows_in_window=5, series=1, last_date=date(2024, 2, 5))
    out = gcp.build_features_summary(stats, date(2024, 3, 1), "p.d.daily_sales_features")
    assert out["last_date"] == "2024-02-05" and out["table"] == "p.d.daily_sales_features"


def test_sha256_manifest():
    manifest = gcp.sha256_manifest({"b.txt": b"b", "a.txt": b"a"}, run_id="r")
    assert list(manifest["files"]) == ["a.txt", "b.txt"]
    assert manifest["files"]["a.txt"] == (
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    )
    assert manifest["run_id"] == "r"
