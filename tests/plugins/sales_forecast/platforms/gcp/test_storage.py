"""GCS as the object store: ``gs://`` URI rules, label values, ``GcsStore`` on the hook."""

from __future__ import annotations

import pytest
from sales_forecast.errors import DataError
from sales_forecast.platforms.gcp.storage import (
    GcsStore,
    label_value,
    split_gs_prefix,
    split_gs_uri,
)


def test_gs_uris_and_labels():
    assert split_gs_uri("gs://b/x/y.csv") == ("b", "x/y.csv")
    for bad in ("/local/file.csv", "gs://b", "gs://b/folder/"):
        with pytest.raises(DataError):
            split_gs_uri(bad)
    assert split_gs_prefix("gs://b/models/m/run/") == ("b", "models/m/run")
    assert label_value("manual__2025-04-01T00:00:00+00:00") == "manual__2025-04-01t00-00-00-00-00"


def test_store_reads_writes_and_reports_missing_objects(gcs):
    store = GcsStore("google_cloud_default")
    assert not store.exists("gs://acme-sf/runs/r/gate.json")
    store.write_text("gs://acme-sf/runs/r/gate.json", '{"passed": true}')
    assert store.exists("gs://acme-sf/runs/r/gate.json")
    assert store.read_bytes("gs://acme-sf/runs/r/gate.json") == b'{"passed": true}'
    assert store.read_bytes("gs://acme-sf/runs/r/gate.json", limit=3) == b'{"p'
    with pytest.raises(FileNotFoundError, match="gs://acme-sf/nope.json not found"):
        store.read_bytes("gs://acme-sf/nope.json")
