"""Files and folders at any fsspec path: local, ``gs://``, ``memory://`` in tests."""

from __future__ import annotations

__all__ = [
    "fetch_dir",
    "is_local",
    "join_uri",
    "local_path",
    "open_file",
    "publish_dir",
    "read_json",
    "write_json",
]

import contextlib
import datetime as dt
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec
import numpy as np
import pandas as pd

from trainer.errors import TrainerError


def is_local(uri: str) -> bool:
    """True for plain paths and ``file://`` URIs."""
    protocol = fsspec.utils.get_protocol(uri)
    return protocol in ("file", "local")


def local_path(uri: str) -> str:
    """The path of a local URI (``file://`` stripped)."""
    return uri[len("file://") :] if uri.startswith("file://") else uri


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a local path or URI without mangling ``gs://``."""
    if is_local(base):
        return os.path.join(local_path(base), *parts)
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@contextlib.contextmanager
def open_file(uri: str, mode: str = "rb") -> Iterator[IO[Any]]:
    """Open a local path or any fsspec URI; a missing file is a clear :class:`TrainerError`."""
    try:
        with fsspec.open(uri, mode) as handle:
            yield handle
    except FileNotFoundError:
        raise TrainerError(f"file not found: {uri}") from None


def read_json(uri: str) -> Any:
    """Parse the JSON file at ``uri``."""
    with open_file(uri, "r") as handle:
        return json.load(handle)


def write_json(data: Any, uri: str) -> None:
    """Write JSON (NaN/inf become null); local files are replaced atomically."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"
    if is_local(uri):
        path = local_path(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
        return
    with fsspec.open(uri, "w") as handle:
        handle.write(text)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return value


def publish_dir(local_dir: str, target_uri: str) -> None:
    """Copy a finished folder to its destination.

    Locally the folder is first copied next to the target and then swapped in with renames, so
    a crash never leaves a half-written model where a reader expects a whole one. Remote
    destinations (``gs://``; the Vertex ``AIP_MODEL_DIR``) get every file uploaded.
    """
    if is_local(target_uri):
        target = os.path.abspath(local_path(target_uri))
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=parent)
        shutil.copytree(local_dir, staging, dirs_exist_ok=True)
        backup = None
        if os.path.exists(target):
            backup = f"{target}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, backup)
        os.replace(staging, target)
        if backup:
            shutil.rmtree(backup, ignore_errors=True)
        return
    fs, root = fsspec.core.url_to_fs(target_uri)
    for dirpath, _, filenames in os.walk(local_dir):
        for name in filenames:
            src = os.path.join(dirpath, name)
            rel = os.path.relpath(src, local_dir).replace(os.sep, "/")
            fs.put_file(src, f"{root.rstrip('/')}/{rel}")


@contextlib.contextmanager
def fetch_dir(uri: str) -> Iterator[str]:
    """Yield a local folder holding the contents of ``uri`` (downloaded if remote)."""
    if is_local(uri):
        path = local_path(uri)
        if not os.path.isdir(path):
            raise TrainerError(f"model folder not found: {uri}")
        yield path
        return
    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    files = [f for f in fs.find(root) if not f.endswith("/")]
    if not files:
        raise TrainerError(f"model folder not found or empty: {uri}")
    with tempfile.TemporaryDirectory(prefix="trainer-model-") as tmp:
        for remote in files:
            rel = remote[len(root) :].lstrip("/")
            dest = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            fs.get_file(remote, dest)
        yield tmp
