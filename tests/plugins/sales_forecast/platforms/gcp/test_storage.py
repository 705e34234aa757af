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


def test_a_limited_read_downloads_only_that_many_bytes(gcs):
    """The header probe of a drop is a ranged read, not a second download of the whole file."""
    store = GcsStore("google_cloud_default")
    gcs.put("gs://acme-sf/drops/sales.csv", b"date,store_id\n" + b"2025-01-01,S1\n" * 1000)
    assert store.read_bytes("gs://acme-sf/drops/sales.csv", limit=4) == b"date"
    assert gcs.calls == [("range:0-3", "drops/sales.csv")]
    gcs.put("gs://acme-sf/drops/empty.csv", b"")  # GCS answers 416 to a range of it
    assert store.read_bytes("gs://acme-sf/drops/empty.csv", limit=4) == b""
    assert store.read_bytes("gs://acme-sf/drops/sales.csv", limit=0) == b""
    for limit in (4, 0):
        with pytest.raises(FileNotFoundError, match="gs://acme-sf/drops/nope.csv not found"):
            store.read_bytes("gs://acme-sf/drops/nope.csv", limit=limit)


def test_copy_is_server_side_and_sha256_is_streamed(gcs):
    import hashlib

    store = GcsStore("google_cloud_default")
    data = b"0123456789" * 7
    gcs.put("gs://acme-sf/runs/r/model/m.pkl", data)
    store.copy("gs://acme-sf/runs/r/model/m.pkl", "gs://acme-sf/models/m/r/m.pkl")
    assert store.sha256("gs://acme-sf/models/m/r/m.pkl") == hashlib.sha256(data).hexdigest()
    assert gcs.calls == [("rewrite", "runs/r/model/m.pkl"), ("stream", "models/m/r/m.pkl")]
    with pytest.raises(FileNotFoundError):
        store.sha256("gs://acme-sf/models/m/r/nope.pkl")


def test_the_bucket_check_needs_only_object_permissions(gcs):
    """roles/storage.objectAdmin has no storage.buckets.get: the check must not need it."""
    store = GcsStore("google_cloud_default")
    gcs.denied.add("storage.buckets.get")
    store.check_bucket("acme-sf")  # no 403: objects can be listed, so the bucket is usable


def test_a_missing_bucket_and_a_real_permission_problem_say_what_to_fix(gcs):
    from sales_forecast.errors import ConfigError

    store = GcsStore("google_cloud_default")
    with pytest.raises(ConfigError, match="bucket gs://nope not found: create it"):
        store.check_bucket("nope")
    gcs.denied.add("storage.objects.list")
    with pytest.raises(ConfigError, match="roles/storage.objectAdmin on the bucket") as err:
        store.check_bucket("acme-sf")
    assert "no access to the objects of gs://acme-sf" in str(err.value)
