"""The trainer's BigQuery I/O at the client-library boundary: the exact calls it makes.

The emulator tests (tests/gcp) cannot show these: the emulators run neither multi-statement
transactions nor the Storage Read API, so there the write takes its two-statement branch and the
read the REST one. Here a fake ``bigquery.Client`` (autospec'd, so a call the real client does
not have, or with arguments it does not take, fails) records every call of the production
branch, and the Storage Read API path runs the installed google-cloud-bigquery's own download
code up to a fake read client, which shows the read session it asks for.
"""

import datetime as dt
import re
from typing import Any
from unittest import mock

import pandas as pd
import pytest
from google.api_core.exceptions import BadRequest, NotFound, PermissionDenied
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, bigquery_storage

from trainer.errors import TrainerError
from trainer.io import bigquery_tables
from trainer.io.tables import read_table, write_table

UUID = "0123456789abcdef0123456789abcdef"
STAGING = "proj.ds._staging_fc_0123456789ab"
FC_SCHEMA = [
    ("run_id", "STRING"),
    ("series_id", "STRING"),
    ("date", "DATE"),
    ("forecast", "FLOAT64"),
]


def fake_client(table: bigquery.Table | None = None) -> Any:
    """An autospec'd ``bigquery.Client`` whose create_table returns ``table`` (default: the
    table asked for, as a new table)."""
    client = mock.create_autospec(bigquery.Client, instance=True)
    client.create_table.side_effect = lambda t, exists_ok=False: table if table is not None else t
    return client


def shape(value: Any) -> Any:
    """A call argument as comparable data (API objects by their content)."""
    if isinstance(value, bigquery.Table):
        return {
            "table": value.full_table_id or str(value.reference),
            "schema": [(f.name, f.field_type) for f in value.schema],
            "expires": value.expires is not None,
        }
    if isinstance(value, (bigquery.LoadJobConfig, bigquery.QueryJobConfig)):
        return value.to_api_repr()
    if isinstance(value, pd.DataFrame):
        return value.to_dict("records")
    return value


def calls(client: Any) -> list[tuple[str, tuple, dict]]:
    """The client's own calls in order (not the calls on what they returned)."""
    out = []
    for name, args, kwargs in client.mock_calls:
        if "." in name or name.startswith("__"):
            continue
        out.append((name, tuple(shape(a) for a in args), {k: shape(v) for k, v in kwargs.items()}))
    return out


def result_calls(client: Any, method: str) -> list[str]:
    """The calls made on what ``client.<method>(...)`` returned (e.g. ``().result()``)."""
    return [name for name, _, _ in client.mock_calls if name.startswith(f"{method}().")]


def query_params(value: str, kind: str, name: str = "p0") -> dict:
    return {
        "name": name,
        "parameterType": {"type": kind},
        "parameterValue": {"value": value},
    }


@pytest.fixture
def fixed_uuid(monkeypatch):
    monkeypatch.setattr(bigquery_tables.uuid, "uuid4", lambda: mock.Mock(hex=UUID))


# --------------------------------------------------------------------------- write


def test_write_is_load_then_one_transaction_then_drop_with_these_exact_calls(
    monkeypatch, fixed_uuid, forecast_rows
):
    client = fake_client()
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    rows = forecast_rows("r1", 2)
    write_table(rows, "bq://proj.ds.fc", replace_where={"run_id": "r1"}, date_columns=["date"])
    staged = rows.assign(date=[dt.date(2024, 7, 1)] * 2)
    script = (
        "BEGIN TRANSACTION;\n"
        "DELETE FROM `proj.ds.fc` WHERE `run_id` = @p0;\n"
        "INSERT INTO `proj.ds.fc` (`run_id`, `series_id`, `date`, `forecast`) "
        f"SELECT `run_id`, `series_id`, `date`, `forecast` FROM `{STAGING}`;\n"
        "COMMIT TRANSACTION;"
    )
    assert calls(client) == [
        (
            "create_table",
            ({"table": "proj.ds.fc", "schema": FC_SCHEMA, "expires": False},),
            {"exists_ok": True},
        ),
        ("create_table", ({"table": "proj.ds._staging_fc_0123456789ab", "schema": FC_SCHEMA,
                           "expires": True},), {}),
        (
            "load_table_from_dataframe",
            (staged.to_dict("records"), STAGING),
            {"job_config": {"load": {
                "schema": {"fields": [{"name": n, "type": t, "mode": "NULLABLE"}
                                      for n, t in FC_SCHEMA]},
                "writeDisposition": "WRITE_APPEND",
            }}},
        ),
        (
            "query",
            (script,),
            {"job_config": {"query": {
                "queryParameters": [query_params("r1", "STRING")],
                "parameterMode": "NAMED",
            }}},
        ),
        ("delete_table", (STAGING,), {"not_found_ok": True}),
    ]  # fmt: skip
    # Every job is waited for before the next call.
    assert result_calls(client, "load_table_from_dataframe") == [
        "load_table_from_dataframe().result"
    ]
    assert result_calls(client, "query") == ["query().result"]


def test_the_staging_table_expires_on_its_own(monkeypatch, fixed_uuid, forecast_rows):
    client = fake_client()
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    before = dt.datetime.now(dt.UTC)
    write_table(forecast_rows("r1", 1), "bq://proj.ds.fc", replace_where={"run_id": "r1"})
    staged = client.create_table.call_args_list[1].args[0]
    assert staged.table_id == "_staging_fc_0123456789ab"
    assert before + bigquery_tables.STAGING_TTL <= staged.expires
    assert staged.expires <= dt.datetime.now(dt.UTC) + bigquery_tables.STAGING_TTL


@pytest.mark.parametrize(
    ("where", "condition", "params"),
    [
        (
            {"run_id": "r1", "cutoff_date": dt.date(2024, 1, 31), "fold": 2},
            "`run_id` = @p0 AND `cutoff_date` = @p1 AND `fold` = @p2",
            [
                query_params("r1", "STRING"),
                query_params("2024-01-31", "DATE", "p1"),
                query_params("2", "INT64", "p2"),
            ],
        ),
        ({}, "FALSE", []),  # nothing to replace: delete nothing, append
    ],
)
def test_write_replaces_exactly_the_rows_of_replace_where(
    monkeypatch, fixed_uuid, forecast_rows, where, condition, params
):
    client = fake_client()
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    write_table(forecast_rows("r1", 1), "bq://proj.ds.fc", replace_where=where)
    ((script,), kwargs) = client.query.call_args
    assert script.splitlines()[1] == f"DELETE FROM `proj.ds.fc` WHERE {condition};"
    assert kwargs["job_config"].to_api_repr()["query"].get("queryParameters", []) == params


def test_a_failed_swap_or_load_still_drops_the_staging_table(
    monkeypatch, fixed_uuid, forecast_rows
):
    for failing in ("query", "load_table_from_dataframe"):
        client = fake_client()
        getattr(client, failing).return_value.result.side_effect = BadRequest("boom")
        monkeypatch.setattr(bigquery_tables, "bq_client", lambda project, c=client: (c, False))
        with pytest.raises(BadRequest):
            write_table(forecast_rows("r1", 1), "bq://proj.ds.fc", replace_where={"run_id": "r1"})
        assert calls(client)[-1] == ("delete_table", (STAGING,), {"not_found_ok": True}), failing


def test_write_on_the_emulator_is_two_plain_statements(monkeypatch, fixed_uuid, forecast_rows):
    client = fake_client()
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, True))
    write_table(forecast_rows("r1", 1), "bq://proj.ds.fc", replace_where={"run_id": "r1"})
    queries = [(args[0], kwargs) for name, args, kwargs in calls(client) if name == "query"]
    assert [sql for sql, _ in queries] == [
        "DELETE FROM `proj.ds.fc` WHERE `run_id` = @p0",
        "INSERT INTO `proj.ds.fc` (`run_id`, `series_id`, `date`, `forecast`) "
        f"SELECT `run_id`, `series_id`, `date`, `forecast` FROM `{STAGING}`",
    ]
    assert queries[1][1] == {}


def test_write_adds_columns_an_older_table_lacks(monkeypatch, fixed_uuid, forecast_rows):
    table = bigquery.Table("proj.ds.fc", schema=[bigquery.SchemaField("run_id", "STRING")])
    client = fake_client(table)
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    write_table(
        forecast_rows("r1", 2),
        "bq://proj.ds.fc",
        replace_where={"run_id": "r1"},
        date_columns=["date"],
    )
    assert calls(client)[1] == (
        "update_table",
        ({"table": "proj.ds.fc", "schema": [("run_id", "STRING"), *FC_SCHEMA[1:]],
          "expires": False}, ["schema"]),
        {},
    )  # fmt: skip


def test_write_to_a_missing_dataset_is_a_trainer_error(monkeypatch, forecast_rows):
    client = fake_client()
    client.create_table.side_effect = NotFound("Dataset proj:ds was not found in location EU")
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    with pytest.raises(TrainerError, match="cannot write bq://proj.ds.fc: Dataset proj:ds was not"):
        write_table(forecast_rows("r1", 1), "bq://proj.ds.fc", replace_where={"run_id": "r1"})


# --------------------------------------------------------------------------- read


def read_client(rows: Any, schema: list[bigquery.SchemaField] | None = None) -> Any:
    client = mock.create_autospec(bigquery.Client, instance=True)
    client.query.return_value.result.return_value = rows
    if schema is not None:
        client.get_table.return_value = bigquery.Table("proj.ds.panel", schema=schema)
    return client


def test_read_is_one_query_with_date_parameters_then_the_storage_api(monkeypatch):
    import pyarrow as pa

    rows = mock.Mock()
    rows.to_arrow.return_value = pa.table({"date": [dt.date(2024, 1, 1)], "sales": [1.0]})
    schema = [bigquery.SchemaField(n, "STRING") for n in ("date", "sales", "price", "other")]
    client = read_client(rows, schema)
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    df = read_table(
        "bq://proj.ds.panel",
        date_column="date",
        cutoff=dt.date(2024, 1, 31),
        since=dt.date(2023, 1, 1),
        columns=["sales", "date", "missing"],
    )
    assert calls(client) == [
        ("get_table", ("proj.ds.panel",), {}),
        (
            "query",
            ("SELECT `date`, `sales` FROM `proj.ds.panel` "
             "WHERE `date` <= @cutoff AND `date` >= @since",),
            {"job_config": {"query": {
                "queryParameters": [
                    query_params("2024-01-31", "DATE", "cutoff"),
                    query_params("2023-01-01", "DATE", "since"),
                ],
                "parameterMode": "NAMED",
            }}},
        ),
    ]  # fmt: skip
    rows.to_arrow.assert_called_once_with(create_bqstorage_client=True)
    assert df.to_dict("records") == [{"date": dt.date(2024, 1, 1), "sales": 1.0}]


def test_read_on_the_emulator_uses_the_rest_api(monkeypatch):
    import pyarrow as pa

    rows = mock.Mock()
    rows.to_arrow.return_value = pa.table({"date": [dt.date(2024, 1, 1)], "v": [1.0]})
    client = read_client(rows)
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, True))
    df = read_table("bq://proj.ds.panel", date_column="date", cutoff=dt.date(2024, 1, 31))
    assert [name for name, _, _ in calls(client)] == ["query"]
    assert client.query.call_args.args == ("SELECT * FROM `proj.ds.panel` WHERE `date` <= @cutoff",)
    rows.to_arrow.assert_called_once_with(create_bqstorage_client=False)
    assert len(df) == 1


def storage_read(monkeypatch, read_client_fake: Any) -> tuple[Any, pd.DataFrame | Exception]:
    """read_table on BigQuery whose result is a real RowIterator of the installed client
    library, with the Storage Read API client replaced by ``read_client_fake``."""
    real = bigquery.Client(project="proj", credentials=AnonymousCredentials())
    monkeypatch.setattr(real, "_ensure_bqstorage_client", lambda *a, **k: read_client_fake)

    def no_rest(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the rows were fetched over REST: {args} {kwargs}")

    rows = bigquery.table.RowIterator(
        real,
        no_rest,
        "/projects/proj/datasets/_anon/tables/anon/data",
        [bigquery.SchemaField("date", "DATE"), bigquery.SchemaField("sales", "FLOAT64")],
        table=bigquery.TableReference.from_string("proj._anon.anon"),
    )
    client = read_client(rows)
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    try:
        return client, read_table("bq://proj.ds.panel", date_column="date", cutoff=None)
    except Exception as exc:
        return client, exc


def test_the_storage_read_api_reads_the_query_result_table_as_arrow(monkeypatch):
    fake = mock.Mock()
    fake.create_read_session.return_value = bigquery_storage.types.ReadSession(streams=[])
    _, df = storage_read(monkeypatch, fake)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["date", "sales"] and df.empty
    fake.create_read_session.assert_called_once_with(
        parent="projects/proj",
        read_session=bigquery_storage.types.ReadSession(
            table="projects/proj/datasets/_anon/tables/anon",
            data_format=bigquery_storage.types.DataFormat.ARROW,
            read_options=bigquery_storage.types.ReadSession.TableReadOptions(
                arrow_serialization_options=bigquery_storage.types.ArrowSerializationOptions(
                    buffer_compression=bigquery_storage.types.ArrowSerializationOptions.CompressionCodec.LZ4_FRAME
                )
            ),
        ),
        max_stream_count=0,
        retry=None,
        timeout=None,
    )


def test_no_read_session_permission_is_a_trainer_error_naming_the_role(monkeypatch):
    fake = mock.Mock()
    fake.create_read_session.side_effect = PermissionDenied(
        "Permission bigquery.readsessions.create denied on project proj"
    )
    _, error = storage_read(monkeypatch, fake)
    assert isinstance(error, TrainerError)
    assert "roles/bigquery.readSessionUser on project proj" in str(error)
    assert "bigquery.readsessions.create denied" in str(error)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (NotFound("Not found: Table proj:ds.panel"), "not found (Not found: Table proj:ds.panel)"),
        (BadRequest("Unrecognized name: date"), "Unrecognized name: date"),
    ],
)
def test_a_missing_table_or_column_is_a_trainer_error(monkeypatch, error, message):
    client = read_client(None)
    client.query.return_value.result.side_effect = error
    monkeypatch.setattr(bigquery_tables, "bq_client", lambda project: (client, False))
    with pytest.raises(TrainerError, match=re.escape(f"cannot read bq://proj.ds.panel: {message}")):
        read_table("bq://proj.ds.panel", date_column="date", cutoff=dt.date(2024, 1, 31))
