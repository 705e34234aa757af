import datetime as dt
from unittest import mock

from trainer.io import bigquery_tables
from trainer.io.tables import read_table, write_table


class _FakeJob:
    def __init__(self, table=None):
        self._table = table

    def result(self):
        return self

    def to_arrow(self, create_bqstorage_client: bool):
        self.storage = create_bqstorage_client
        return self._table


def test_bigquery_read_pushes_cutoff_and_skips_storage_api_on_emulator(monkeypatch):
    import pyarrow as pa

    client = mock.MagicMock()
    job = _FakeJob(pa.table({"date": [dt.date(2024, 1, 1)], "v": [1.0]}))
    client.query.return_value = job
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, True))
    df = read_table("bq://proj.ds.panel", date_column="date", cutoff=dt.date(2024, 1, 31))
    sql = client.query.call_args.args[0]
    assert sql == "SELECT * FROM `proj.ds.panel` WHERE `date` <= @cutoff"
    params = client.query.call_args.kwargs["job_config"].query_parameters
    assert params[0].value == dt.date(2024, 1, 31)
    assert job.storage is False and len(df) == 1


def test_bigquery_write_swaps_run_rows_in_one_transaction(monkeypatch, forecast_rows):
    client = mock.MagicMock()
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    write_table(
        forecast_rows("r1", 2),
        "bq://proj.ds.fc",
        replace_where={"run_id": "r1"},
        date_columns=["date"],
    )
    staging = client.load_table_from_dataframe.call_args.args[1]
    assert staging.startswith("proj.ds._staging_fc_")
    script = client.query.call_args.args[0]
    assert script.startswith("BEGIN TRANSACTION;")
    assert "DELETE FROM `proj.ds.fc` WHERE `run_id` = @p0" in script
    assert f"FROM `{staging}`" in script and script.endswith("COMMIT TRANSACTION;")
    client.delete_table.assert_called_once_with(staging, not_found_ok=True)


def test_bigquery_write_adds_columns_an_older_table_lacks(monkeypatch, forecast_rows):
    from google.cloud import bigquery

    client = mock.MagicMock()
    table = bigquery.Table("proj.ds.fc", schema=[bigquery.SchemaField("run_id", "STRING")])
    client.create_table.return_value = table
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    write_table(forecast_rows("r1", 2), "bq://proj.ds.fc", replace_where={"run_id": "r1"})
    updated, fields = client.update_table.call_args.args
    assert fields == ["schema"]
    assert [f.name for f in updated.schema] == ["run_id", "series_id", "date", "forecast"]
