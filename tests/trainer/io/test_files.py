import os
from pathlib import Path

import pytest

from trainer.errors import TrainerError
from trainer.io.files import fetch_dir, publish_dir


def test_publish_and_fetch_remote_dir(tmp_path: Path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "a.json").write_text("{}")
    (src / "sub" / "b.bin").write_bytes(b"xyz")
    publish_dir(str(src), "memory://bucket/models/m1")
    with fetch_dir("memory://bucket/models/m1") as local:
        assert sorted(os.listdir(local)) == ["a.json", "sub"]
        assert (Path(local) / "sub" / "b.bin").read_bytes() == b"xyz"
    with pytest.raises(TrainerError):
        with fetch_dir("memory://bucket/models/missing"):
            pass


def test_publish_local_dir_replaces_whole_folder(tmp_path: Path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "old.txt").write_text("old")
    (second / "new.txt").write_text("new")
    target = tmp_path / "out" / "model"
    publish_dir(str(first), str(target))
    publish_dir(str(second), str(target))
    assert sorted(os.listdir(target)) == ["new.txt"]
    assert [p for p in os.listdir(target.parent) if p != "model"] == []
