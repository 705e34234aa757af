import pytest

from trainer.errors import TrainerError
from trainer.io.table_uri import parse_table_uri


def test_parse_table_uri():
    loc = parse_table_uri("duckdb:///data/wh.duckdb?table=daily_sales_features")
    assert (loc.kind, loc.location, loc.table) == (
        "duckdb",
        "/data/wh.duckdb",
        "daily_sales_features",
    )
    assert parse_table_uri("bq://proj-1.sales.features").kind == "bigquery"
    assert parse_table_uri("gs://bucket/x/panel.parquet").kind == "parquet"
    assert parse_table_uri("/tmp/out.csv").kind == "csv"
    for bad in (
        "duckdb:///x.duckdb",
        "duckdb:///x.duckdb?table=a;drop",
        "bq://onlytwo.parts",
        "s3://b/x.txt",
    ):
        with pytest.raises(TrainerError):
            parse_table_uri(bad)
