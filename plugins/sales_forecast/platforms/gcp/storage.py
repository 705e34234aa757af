"""GCS as the platform's object store, and the ``gs://`` URI rules.

Every call here needs only object permissions (``roles/storage.objectAdmin`` on the bucket, the
role docs/gcp.md documents), never bucket metadata (``storage.buckets.get``).
"""

from __future__ import annotations

import hashlib
import re

from airflow.providers.google.cloud.hooks.gcs import GCSHook

from sales_forecast.errors import ConfigError, DataError
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
        from google.api_core.exceptions import NotFound, RequestRangeNotSatisfiable

        bucket, name = split_gs_uri(uri)
        try:
            if limit is None:
                return bytes(self.hook.download(bucket_name=bucket, object_name=name))
            if limit <= 0:
                if not self.exists(uri):
                    raise NotFound(uri)
                return b""
            # A ranged read: the header probe of a multi-GB drop costs `limit` bytes, not a
            # second full download (the staging copy downloads it once).
            blob = self.hook.get_conn().bucket(bucket).blob(name)
            return bytes(blob.download_as_bytes(start=0, end=limit - 1))
        except RequestRangeNotSatisfiable:
            return b""  # what GCS answers to any range of an empty object
        except NotFound:
            raise FileNotFoundError(f"{uri} not found") from None

    def write_text(self, uri: str, text: str) -> None:
        bucket, name = split_gs_uri(uri)
        mime = "application/json" if name.endswith(".json") else "text/plain"
        self.hook.upload(bucket_name=bucket, object_name=name, data=text, mime_type=mime)

    def copy(self, src: str, dst: str) -> None:
        """Copy one object server-side (no bytes through the worker, any size or location)."""
        src_bucket, src_name = split_gs_uri(src)
        dst_bucket, dst_name = split_gs_uri(dst)
        self.hook.rewrite(
            source_bucket=src_bucket,
            source_object=src_name,
            destination_bucket=dst_bucket,
            destination_object=dst_name,
        )

    def sha256(self, uri: str) -> str:
        """The object's sha256, streamed: memory stays flat whatever the object's size.

        One download request whose body is hashed as it arrives; the client library checks
        the whole object's crc32c/md5 against what GCS stored, so a torn read raises.
        """
        from google.api_core.exceptions import NotFound

        bucket, name = split_gs_uri(uri)
        sink = _Sha256Sink()
        try:
            self.hook.get_conn().bucket(bucket).blob(name).download_to_file(sink)
        except NotFound:
            raise FileNotFoundError(f"{uri} not found") from None
        return sink.digest.hexdigest()

    def check_bucket(self, bucket: str) -> None:
        """Fail with what to fix unless the bucket exists and its objects can be listed.

        Lists at most one object (``storage.objects.list``, in the documented bucket role)
        instead of reading the bucket's metadata (``storage.buckets.get``, which
        ``roles/storage.objectAdmin`` lacks: that check answered 403 on every run).
        """
        from google.api_core.exceptions import Forbidden, NotFound

        try:
            next(iter(self.hook.get_conn().list_blobs(bucket, max_results=1)), None)
        except NotFound:
            raise ConfigError(
                f"bucket gs://{bucket} not found: create it (docs/gcp.md) or fix the Airflow "
                "Variable sf_gcp_bucket"
            ) from None
        except Forbidden as exc:
            raise ConfigError(
                f"no access to the objects of gs://{bucket} ({exc.message}): grant the "
                "Composer environment's service account roles/storage.objectAdmin on the "
                "bucket (docs/gcp.md, section 4), or fix the Airflow Variable sf_gcp_bucket"
            ) from None


class _Sha256Sink:
    """A write-only file object that hashes what is written to it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)
