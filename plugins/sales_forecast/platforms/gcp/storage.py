"""GCS as the platform's object store, and the ``gs://`` URI rules."""

from __future__ import annotations

import re

from airflow.providers.google.cloud.hooks.gcs import GCSHook

from sales_forecast.errors import DataError
from sales_forecast.platforms.base import ObjectStore

__all__ = ["GcsStore", "label_value", "split_gs_prefix", "split_gs_uri"]


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/path/to/object`` -> ``("bucket", "path/to/object")``."""
    if not uri.startswith("gs://"):
        raise DataError(f"{uri}: not a gs:// URI (the gcp platform reads its inputs from GCS)")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name or name.endswith("/"):
        raise DataError(f"{uri}: expected gs://bucket/path/to/file")
    return bucket, name


def split_gs_prefix(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/folder/`` -> ``("bucket", "some/folder")`` (no trailing slash)."""
    if not uri.startswith("gs://"):
        raise ValueError(f"{uri}: not a gs:// URI")
    bucket, _, path = uri[len("gs://") :].partition("/")
    return bucket, path.strip("/")


def label_value(text: str) -> str:
    """A Vertex AI / Cloud Run label value: lowercase letters, digits, ``_`` and ``-``, <= 63."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:63]


class GcsStore(ObjectStore):
    """Objects in GCS through the provider's hook (the connection Airflow is configured with)."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._hook: GCSHook | None = None

    @property
    def hook(self) -> GCSHook:
        if self._hook is None:
            self._hook = GCSHook(gcp_conn_id=self.conn_id)
        return self._hook

    def exists(self, uri: str) -> bool:
        bucket, name = split_gs_uri(uri)
        return bool(self.hook.exists(bucket_name=bucket, object_name=name))

    def read_bytes(self, uri: str, limit: int | None = None) -> bytes:
        from google.api_core.exceptions import NotFound

        bucket, name = split_gs_uri(uri)
        try:
            data = self.hook.download(bucket_name=bucket, object_name=name)
        except NotFound:
            raise FileNotFoundError(f"{uri} not found") from None
        return bytes(data if limit is None else data[:limit])

    def write_text(self, uri: str, text: str) -> None:
        bucket, name = split_gs_uri(uri)
        mime = "application/json" if name.endswith(".json") else "text/plain"
        self.hook.upload(bucket_name=bucket, object_name=name, data=text, mime_type=mime)
