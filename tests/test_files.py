"""runs.files: atomic writes leave the old file or the new one, never a part, never a temp file;
two at once each end whole; a write the disk has no room for is refused before it starts."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import keras
import pytest

import runs
import runs.files
from cli import main_with_errors
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

    with pytest.raises(OSError, match="No space left on device") as error:
        atomic_save(path, disk_full)
    assert error.value.filename == str(path)  # the file asked for, not the temporary one
    assert path.read_text() == "the old weights"
    assert [p.name for p in tmp_path.iterdir()] == ["best.weights.h5"]


def test_a_sigterm_in_a_script_s_write_is_one_line_and_leaves_no_temporary_file(tmp_path,
                                                                               capsys):
    def terminated_mid_write(tmp: str) -> None:
        Path(tmp).write_text("")
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_:
        main_with_errors(lambda: atomic_save(tmp_path / "figure.png", terminated_mid_write))
    assert exit_.value.code == 143
    assert capsys.readouterr().err == "stopped by SIGTERM; no file is left half-written\n"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_temporary_names_hold_the_pid_a_random_part_and_the_suffixes(tmp_path):
    seen: list[str] = []

    def save(tmp: str) -> None:
        seen.append(Path(tmp).name)
        Path(tmp).write_text("weights")

    for _ in range(2):
        atomic_save(tmp_path / "best.weights.h5", save)
    assert all(name.startswith(f".tmp-{os.getpid()}-") for name in seen)
    assert all(name.endswith("-best.weights.h5") for name in seen)  # Keras checks the suffix
    assert seen[0] != seen[1]
    long = "x" * 240 + ".weights.h5"  # a name the file system takes, but not with the prefix
    atomic_save(tmp_path / long, save)
    assert len(seen[2]) == 255 and seen[2].endswith("x.weights.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["best.weights.h5", long])


def test_a_long_name_is_cut_to_255_bytes_not_characters(tmp_path):
    name = "猫" * 80 + ".json"  # 245 bytes in UTF-8: a name the file system takes
    temporary = runs.files.temporary_name(name)
    assert len(os.fsencode(temporary)) <= 255 and temporary.endswith("猫.json")
    atomic_write_text(tmp_path / name, "{}")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_two_writes_of_one_path_at_once_both_end_whole(tmp_path):
    # Both writers are inside save() together (the barrier), as evaluate.py and an analysis
    # script writing one --out can be; with one shared temporary name they would write into the
    # same file, and the second rename would find it gone.
    path = tmp_path / "summary.json"
    together = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []
    half = 1 << 20

    def writer(byte: bytes) -> None:
        def save(tmp: str) -> None:
            with open(tmp, "wb") as file:
                file.write(byte * half)
                file.flush()
                together.wait()
                file.write(byte * half)

        try:
            atomic_save(path, save)
        except BaseException as error:  # a thread cannot raise into the test: kept for it
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(byte,)) for byte in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    data = path.read_bytes()
    assert data in (b"a" * 2 * half, b"b" * 2 * half)  # one whole write, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def fake_disk(monkeypatch, free: int) -> None:
    """The disk that shutil.disk_usage reports has `free` bytes free."""
    monkeypatch.setattr(runs.files.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**12, 10**12 - free, free))


def test_a_write_the_disk_has_no_room_for_is_refused_before_it_starts(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.keras"
    path.write_text("the old checkpoint")
    calls: list[str] = []
    fake_disk(monkeypatch, free=30_000_000)
    with pytest.raises(OSError) as error:
        atomic_save(path, calls.append, size=50_000_000)
    assert error.value.errno == errno.ENOSPC
    assert str(error.value) == (f"[Errno 28] No space left on device (53.5 MB needed, 30.0 MB "
                                f"free): '{path}'")
    assert calls == [] and path.read_text() == "the old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.keras"]
    atomic_save(path, lambda tmp: Path(tmp).write_text("new"), size=20_000_000)  # room enough
    assert path.read_text() == "new"


def mounted_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB file system (tmpfs); skipped where this process may not mount one."""
    folder = tmp_path / "small"
    if not mounted_tmpfs(folder, "2M"):
        pytest.skip("mounting a small tmpfs needs root and a mount the sandbox allows")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_weights_on_a_full_disk_are_refused_and_leave_nothing(small_disk):
    # Without the check, h5py writes until the disk is full, then crashes the process at exit.
    model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(1000)])  # 4 MB
    path = small_disk / "last.weights.h5"
    with pytest.raises(OSError) as error:
        atomic_save(path, model.save_weights, size=runs.model_bytes(model))
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(path)
    assert list(small_disk.iterdir()) == []
    small = keras.Sequential([keras.Input((10,)), keras.layers.Dense(10)])
    atomic_save(path, small.save_weights, size=runs.model_bytes(small))  # what fits is written
    assert [p.name for p in small_disk.iterdir()] == ["last.weights.h5"]
