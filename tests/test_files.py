"""runs.files: atomic writes leave the old file or the new one, never a part, never a temp file."""

from __future__ import annotations

import errno

import pytest

from runs import atomic_save, atomic_write_text


def test_a_write_replaces_the_file(tmp_path):
    path = tmp_path / "history.csv"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "best.weights.h5"
    path.write_text("the old weights")

    def disk_full(tmp: str) -> None:
        with open(tmp, "w") as file:
            file.write("half of the new weigh")
        raise OSError(errno.ENOSPC, "No space left on device", tmp)

    with pytest.raises(OSError, match="No space left on device"):
        atomic_save(path, disk_full)
    assert path.read_text() == "the old weights"
    assert [p.name for p in tmp_path.iterdir()] == ["best.weights.h5"]
