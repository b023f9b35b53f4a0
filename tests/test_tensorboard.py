"""training.tensorboard: the event files a run writes, read back as TensorBoard reads them; what a
resumed run adds (the epochs its files lack, never one twice); and train.py killed and resumed."""

from __future__ import annotations

import errno
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import runs
import runs.files
from models.config import Config
from models.network import build_from_config
from training.tensorboard import SCALARS, EventFiles, filters_due, filters_image

TINY = ("--val-size", "50", "--batch-size", "50", "--precision", "fp32", "--verbose", "0")


def events(folder: Path) -> list[tuple[str, str, int, object]]:
    """(folder, tag, step, value) of every summary under RUN/tensorboard/, read with
    TensorFlow's own event reader; a scalar's value is a float, an image's is its PNG bytes. A
    file cut off in the middle of a record (a kill) is read up to there, as TensorBoard does."""
    found = []
    for path in sorted((folder / runs.TENSORBOARD).glob("*/events.out.tfevents.*")):
        try:
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    array = tf.make_ndarray(value.tensor)
                    found.append((path.parent.name, value.tag, event.step,
                                  array[2] if array.dtype == object else float(array)))
        except tf.errors.DataLossError:
            continue
    return found


def steps(found: list, split: str, tag: str) -> list[int]:
    return sorted(step for s, t, step, _ in found if (s, t) == (split, tag))


def row(epoch: int) -> dict:
    return {"epoch": epoch, "learning_rate": 1e-3 / epoch, "train_loss": 2.0 - epoch / 10,
            "train_accuracy": 0.1 * epoch, "val_loss": 2.1 - epoch / 10, "val_accuracy": 0.3,
            "test_loss": 2.2, "test_accuracy": 0.25, "seconds": 1.5}


def test_the_filters_image_is_a_grid_of_each_filter_stretched_to_its_range():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 64)).astype("float32")
    image = filters_image(kernel)
    assert image.dtype == np.uint8 and image.shape == (8 * 26 + 2, 8 * 26 + 2, 3)
    first = image[2:26, 2:26]  # filter 0, drawn 8x larger
    assert first.min() == 0 and first.max() == 255
    np.testing.assert_array_equal(first[::8, ::8], np.round(
        (kernel[..., 0] - kernel[..., 0].min()) / np.ptp(kernel[..., 0]) * 255))
    assert (image[:2] == 0).all() and (image[:, 26:28] == 0).all()  # black gaps between them
    assert filters_image(np.zeros((3, 3, 3, 4))).max() == 0  # a flat filter stays black


def test_filters_are_drawn_every_n_epochs_and_at_the_last():
    assert [e for e in range(1, 13) if filters_due(e, every=5, last=e == 12)] == [5, 10, 12]
    assert filters_due(3, every=5, last=True)  # an early stop's epoch is the last


def test_an_epoch_s_scalars_and_image_read_back_as_tensorboard_reads_them(tmp_path):
    model = build_from_config(Config(batchnorm="none"))
    files = EventFiles(tmp_path)
    files.write_epoch(row(1))
    files.write_epoch(row(2), filters=model.get_layer("CONV1").kernel.numpy())
    files.close()
    found = events(tmp_path)
    assert sorted({(split, tag) for split, tag, _, _ in found}) == sorted(
        [*SCALARS, ("train", "conv1_filters")])
    for (split, tag), column in SCALARS.items():
        values = [v for s, t, _, v in sorted(found, key=lambda e: e[2]) if (s, t) == (split, tag)]
        assert values == pytest.approx([row(1)[column], row(2)[column]], rel=1e-6)
    (image,) = [v for _, tag, step, v in found if tag == "conv1_filters" and step == 2]
    np.testing.assert_array_equal(tf.image.decode_png(image).numpy(),
                                  filters_image(model.get_layer("CONV1").kernel.numpy()))


def test_a_resumed_run_writes_what_its_event_files_lack_and_nothing_twice(tmp_path):
    model = build_from_config(Config(batchnorm="none"))
    first = EventFiles(tmp_path)
    for epoch in (1, 2):
        first.write_epoch(row(epoch), filters=None)
    first.close()
    # Killed after epoch 4 committed, before its summaries; epoch 3's were never written either
    # (say --tensorboard was off then). The resumed run completes them, once.
    state = {"epoch": 4, "history": [row(e) for e in range(1, 5)]}
    for _ in range(2):
        later = EventFiles(tmp_path)
        later.complete(state, model, every=2)
        later.close()
    found = events(tmp_path)
    for split, tag in SCALARS:
        assert steps(found, split, tag) == [1, 2, 3, 4]
    assert steps(found, "train", "conv1_filters") == [4]  # the last committed epoch's, if due
    # A cut-off record at the end of a file (a kill while writing) is read up to there.
    path = sorted((tmp_path / runs.TENSORBOARD / "val").glob("events.*"))[0]
    path.write_bytes(path.read_bytes()[:-5])
    lost = EventFiles(tmp_path)
    lost.complete(state, model, every=2)
    lost.close()
    assert Counter((s, t, step) for s, t, step, _ in events(tmp_path)).most_common(1)[0][1] == 1
    assert steps(events(tmp_path), "val", "epoch_accuracy") == [1, 2, 3, 4]


def test_summaries_the_disk_has_no_room_for_are_refused_before_they_are_written(tmp_path,
                                                                                monkeypatch):
    # TensorFlow's writer would drop them without a word and leave a cut-off record behind.
    files = EventFiles(tmp_path)
    files.write_epoch(row(1))
    before = {p: p.stat().st_size for p in (tmp_path / runs.TENSORBOARD).rglob("events.*")}
    monkeypatch.setattr(runs.files.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(OSError) as error:
        files.write_epoch(row(2), filters=np.ones((3, 3, 3, 64)))
    assert error.value.errno == errno.ENOSPC
    assert error.value.filename == str(tmp_path / runs.TENSORBOARD)
    files.close()
    assert {p: p.stat().st_size for p in before} == before


def assert_each_step_once(run: Path, every: int) -> None:
    """Every curve of the run's event files holds the epochs 1..E of history.csv once each, with
    its values, and the filters image the epochs divisible by `every` and the last. A killed and
    resumed run is checked with this (test_training's kill -9 test)."""
    history = runs.read_history(run)
    last = len(history)
    found = events(run)
    for (split, tag), column in SCALARS.items():
        values = sorted((step, value) for s, t, step, value in found if (s, t) == (split, tag))
        assert [step for step, _ in values] == list(range(1, last + 1)), (split, tag)
        assert [value for _, value in values] == pytest.approx(
            [r[column] for r in history], rel=1e-6)
    assert steps(found, "train", "conv1_filters") == sorted(
        {e for e in range(1, last + 1) if e % every == 0} | {last})

