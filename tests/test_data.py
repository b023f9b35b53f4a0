"""Loading CIFAR-10 (folder, tar.gz, environment, Keras), the safe unpickler, the input pipeline."""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import make_images, run_script, write_batch

from data import DataError, load_cifar10, split_validation
from data.cifar10 import CLASS_NAMES, resolve_source
from data.pipeline import Augmentation, _NumpyBatches, make_dataset


def test_folder_gives_channels_last_uint8_images(tiny_cifar):
    data = load_cifar10(str(tiny_cifar))
    assert data.x_train.shape == (300, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (100, 32, 32, 3) and data.y_test.dtype == np.int64
    images, labels = make_images(60, seed=1)  # data_batch_1, written from these
    np.testing.assert_array_equal(data.x_train[:60], images)
    assert data.y_train[:60].tolist() == labels
    assert data.class_names == CLASS_NAMES and data.source == str(tiny_cifar)


def test_rows_are_red_then_green_then_blue_planes(tmp_path, tiny_cifar):
    shutil.copytree(tiny_cifar, tmp_path / "c")
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 0, 1] = (10, 20, 30)
    write_batch(tmp_path / "c" / "test_batch", image, [7], b"testing batch 1 of 1")
    raw = pickle.loads((tmp_path / "c" / "test_batch").read_bytes(), encoding="bytes")[b"data"][0]
    assert (raw[1], raw[1024 + 1], raw[2048 + 1]) == (10, 20, 30)
    assert load_cifar10(str(tmp_path / "c")).x_test[0, 0, 1].tolist() == [10, 20, 30]


def test_tarball_and_parent_folder_load_the_same(tiny_cifar, tiny_tarball):
    folder = load_cifar10(str(tiny_cifar))
    for source in (tiny_tarball, tiny_tarball.parent, tiny_cifar.parent):
        data = load_cifar10(str(source))
        np.testing.assert_array_equal(data.x_train, folder.x_train)
        np.testing.assert_array_equal(data.y_test, folder.y_test)


def test_a_tarball_is_read_from_its_one_folder_of_batches(tiny_cifar, tmp_path):
    renamed = tmp_path / "renamed.tar.gz"
    with tarfile.open(renamed, "w:gz") as tar:
        tar.add(tiny_cifar, arcname="batches")
    expected = load_cifar10(str(tiny_cifar)).y_test.tolist()
    assert load_cifar10(str(renamed)).y_test.tolist() == expected
    stale = tmp_path / "stale"
    stale.mkdir()
    images, labels = make_images(5, seed=7)
    write_batch(stale / "test_batch", images, labels, b"testing batch 1 of 1")
    two = tmp_path / "two.tar.gz"
    for order in (("old", "cifar-10-batches-py"), ("cifar-10-batches-py", "old")):
        with tarfile.open(two, "w:gz") as tar:
            for folder in order:
                tar.add(stale / "test_batch" if folder == "old" else tiny_cifar,
                        arcname=f"{folder}/test_batch" if folder == "old" else folder)
        with pytest.raises(DataError) as error:
            load_cifar10(str(two))
        assert str(error.value) == (f"{two} holds CIFAR-10 batch files in 2 folders "
                                    f"(cifar-10-batches-py/, old/); keep one of them in the "
                                    f"archive")


def test_environment_variable_is_used_without_data_dir(tiny_cifar, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", str(tiny_cifar))
    assert load_cifar10().source == str(tiny_cifar)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_malicious_pickle_is_refused_without_running_code(tmp_path, tiny_cifar, monkeypatch):
    shutil.copytree(tiny_cifar, tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").write_bytes(pickle.dumps({b"data": _RunsCode()}, protocol=2))
    monkeypatch.chdir(tmp_path)  # where "touch pwned" would write, if it ran
    with pytest.raises(DataError, match=r"data_batch_3 is not a CIFAR-10 batch "
                                        r"\(refusing to load posix.system\)"):
        load_cifar10(str(tmp_path / "c"))
    assert not (tmp_path / "pwned").exists()


def test_missing_and_corrupt_batches_are_named(tmp_path, tiny_cifar):
    shutil.copytree(tiny_cifar, tmp_path / "c")
    (tmp_path / "c" / "data_batch_2").unlink()
    with pytest.raises(DataError, match="lacks data_batch_2; pass --data-dir"):
        load_cifar10(str(tmp_path / "c"))
    shutil.copy(tiny_cifar / "data_batch_1", tmp_path / "c" / "data_batch_2")
    (tmp_path / "c" / "test_batch").write_bytes((tiny_cifar / "test_batch").read_bytes()[:5000])
    with pytest.raises(DataError, match="test_batch is corrupt"):
        load_cifar10(str(tmp_path / "c"))
    with pytest.raises(DataError, match=rf"^{tmp_path / 'nowhere'} does not exist; pass"):
        load_cifar10(str(tmp_path / "nowhere"))


def test_a_missing_cifar10_dir_says_it_came_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=rf"^{tmp_path / 'nowhere'} \(from \$CIFAR10_DIR\) does "
                                        r"not exist; pass --data-dir"):
        load_cifar10()


@pytest.mark.parametrize("labels, message", [
    ([3] * 59 + [10], "image 59 has label 10, outside 0-9"),
    ([-1, 0] + [5] * 58, "image 0 has label -1, outside 0-9"),
    ([12, 11] + [5] * 58, "image 0 has label 12, outside 0-9 (2 such labels)"),
])
def test_labels_outside_the_ten_classes_are_refused_at_load(tmp_path, tiny_cifar, labels, message):
    shutil.copytree(tiny_cifar, tmp_path / "c")
    images, _ = make_images(60, seed=4)
    write_batch(tmp_path / "c" / "data_batch_4", images, labels, b"training batch 4 of 5")
    with pytest.raises(DataError) as error:
        load_cifar10(str(tmp_path / "c"))
    assert str(error.value) == f"data_batch_4 is corrupt: {message}"


def test_one_rule_picks_the_copy(tmp_path, monkeypatch):
    trained_on = tmp_path / "trained"
    trained_on.mkdir()
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    assert resolve_source("flag", str(trained_on)) == "flag"
    assert resolve_source(None, str(trained_on)) == str(trained_on)
    assert resolve_source(None, str(tmp_path / "gone")) is None  # then Keras' download
    assert resolve_source(None, None) is None
    monkeypatch.setenv("CIFAR10_DIR", "env")
    assert resolve_source(None, str(trained_on)) == "env"
    assert resolve_source("flag", str(trained_on)) == "flag"


def test_offline_without_a_local_copy_is_one_line(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://example/cifar-10-python.tar.gz: None -- "
                        "[Errno -3]\nmore")

    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError) as error:
        load_cifar10()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("could not download CIFAR-10 (URL fetch failure")
    assert "--data-dir (or set CIFAR10_DIR)" in message


@pytest.mark.slow
def test_bad_data_dir_on_the_command_line_is_one_line_exit_2(tmp_path):
    result = run_script("train.py", "--data-dir", str(tmp_path / "missing"), "--run", "x",
                        "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'missing'} does not exist" in result.stderr


def test_validation_split_is_the_last_images():
    x, y = np.arange(100).reshape(100, 1), np.arange(100)
    (_, y_train), (_, y_val) = split_validation(x, y, 10)
    assert y_train.tolist() == list(range(90)) and y_val.tolist() == list(range(90, 100))
    with pytest.raises(DataError, match="--val-size must be between 1 and 99"):
        split_validation(x, y, 100)


def test_evaluation_batches_are_the_images_in_order():
    images, labels = make_images(25, seed=3)
    batches = list(make_dataset(images, np.array(labels), batch_size=10))
    assert [len(b[1]) for b in batches] == [10, 10, 5]
    assert batches[0][0].dtype == "float32"
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), images.astype("float32"))


def test_augmentation_translates_and_flips_each_image():
    images, labels = make_images(64, seed=4)
    batches = list(make_dataset(images, np.array(labels), batch_size=32, training=True,
                                augmentation=Augmentation(), seed=1))
    assert [len(b[1]) for b in batches] == [32, 32]
    out = np.concatenate([b[0] for b in batches])
    out_labels = np.concatenate([b[1] for b in batches])
    changed = 0
    for augmented, label in zip(out, out_labels, strict=True):
        candidates = [i for i, lab in enumerate(labels) if lab == label]
        assert any(is_shift_or_flip(images[i], augmented, 4) for i in candidates)
        changed += not any(np.array_equal(images[i], augmented) for i in candidates)
    assert changed > 32  # most images moved


def is_shift_or_flip(image: np.ndarray, augmented: np.ndarray, max_shift: int) -> bool:
    shift = (max_shift, max_shift)
    padded = np.pad(image, (shift, shift, (0, 0))).astype("float32")
    for flip in (False, True):
        source = padded[:, ::-1] if flip else padded
        for dy in range(2 * max_shift + 1):
            for dx in range(2 * max_shift + 1):
                if np.array_equal(source[dy:dy + 32, dx:dx + 32], augmented):
                    return True
    return False


def test_augmentation_is_deterministic_for_a_seed():
    images, labels = make_images(40, seed=5)
    def batches():
        return [b[0] for b in make_dataset(images, np.array(labels), batch_size=20, training=True,
                                           augmentation=Augmentation(), seed=7)]

    first, again = batches(), batches()
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))


@pytest.mark.parametrize("numpy_path", [False, True], ids=["tf.data", "numpy"])
def test_cutout_zeroes_one_clipped_square_per_image(numpy_path):
    images, _ = make_images(64, seed=8)
    images = np.maximum(images, 1)  # so that every zero in the output is Cutout's
    options = dict(training=True, augmentation=Augmentation(translate=0, flip=False, cutout=8),
                   seed=3)
    if numpy_path:
        numpy_batches = _NumpyBatches(images, np.arange(64), 32, **options)
        batches = [numpy_batches[i] for i in range(len(numpy_batches))]
    else:
        batches = list(make_dataset(images, np.arange(64), batch_size=32, **options))
    sides = set()
    for batch, order in batches:
        for augmented, index in zip(batch, order, strict=True):
            zeroed = np.all(augmented == 0, axis=-1)
            rows, cols = np.flatnonzero(zeroed.any(1)), np.flatnonzero(zeroed.any(0))
            # One solid rectangle, 4-8 pixels a side (a square clipped by at most half at an
            # edge) ...
            assert zeroed.sum() == len(rows) * len(cols) and zeroed[np.ix_(rows, cols)].all()
            assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8
            # ... and every other pixel untouched.
            np.testing.assert_array_equal(augmented[~zeroed], images[index][~zeroed])
            sides.add((len(rows), len(cols), rows[0], cols[0]))
    assert len(sides) > 32  # the square moves from image to image


def test_no_augment_only_shuffles():
    images, labels = make_images(40, seed=6)
    batches = list(make_dataset(images, np.array(labels), batch_size=20, training=True))
    out = np.concatenate([b[0] for b in batches])
    assert sorted(map(bytes, out.astype(np.uint8))) == sorted(map(bytes, images))


@pytest.mark.parametrize("numpy_path", [False, True], ids=["tf.data", "numpy"])
def test_augmentation_draws_uniform_shifts_and_fair_flips(numpy_path):
    """Each image's row and column shift is uniform over -4..4 and its flip has probability 1/2,
    read off images whose pixels name their own row and column."""
    n = 9000
    rows, cols = np.meshgrid(np.arange(1, 33), np.arange(1, 33), indexing="ij")
    image = np.stack([rows, cols, np.ones_like(rows)], -1).astype(np.uint8)
    images = np.repeat(image[None], n, axis=0)
    options = dict(training=True, augmentation=Augmentation(translate=4, flip=True), seed=5)
    if numpy_path:
        batches = _NumpyBatches(images, np.arange(n), 500, **options)
        out = np.concatenate([batches[i][0] for i in range(len(batches))])
    else:
        out = np.concatenate([b[0] for b in make_dataset(images, np.arange(n), 500, **options)])
    flipped = out[:, 16, 17, 1] < out[:, 16, 16, 1]  # columns run backwards in a mirror image
    row_shift = out[:, 16, 16, 0] - 17
    col_shift = out[:, 16, 16, 1] - 17 + flipped
    assert abs(flipped.sum() - n / 2) < 250  # 5 standard deviations
    for shift in (row_shift, col_shift):
        assert sorted(set(shift.tolist())) == list(range(-4, 5))
        assert np.all(np.abs(np.bincount((shift + 4).astype(int)) - n / 9) < 150)
    # Every combination of the two shifts occurs: they are drawn for each image, not shared.
    assert len(set(zip(row_shift.tolist(), col_shift.tolist(), strict=True))) == 81


def write_raw_batch(path: Path, data, labels, protocol: int = 2) -> None:
    """A batch file holding exactly these data and labels, whatever their types."""
    batch = {b"batch_label": b"training batch 4 of 5", b"labels": labels, b"data": data}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def rows(images: np.ndarray) -> np.ndarray:
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


@pytest.mark.parametrize("data, labels, message", [
    (rows(make_images(60, 4)[0]).astype(np.float32) / 255, [1] * 60,
     "its pixels are float32, not whole numbers 0-255 (uint8)"),
    (rows(make_images(60, 4)[0]).astype(np.int16) + 100, [1] * 60,
     "its pixels range over 100..355, not 0-255"),
    (rows(make_images(60, 4)[0]), [6.7] + [1] * 59,
     "image 0 has label 6.7, not a whole number 0-9"),
    (rows(make_images(60, 4)[0]), [1, float("nan")] + [1] * 58,
     "image 1 has label nan, not a whole number 0-9"),
    (rows(make_images(60, 4)[0]), 3, "its labels are not a list of one label an image"),
    (np.zeros((0, 3072), np.uint8), [], "it holds no images"),
])
def test_batches_are_checked_by_meaning_naming_the_file_and_the_problem(tmp_path, tiny_cifar,
                                                                        data, labels, message):
    shutil.copytree(tiny_cifar, tmp_path / "c")
    write_raw_batch(tmp_path / "c" / "data_batch_4", data, labels)
    with pytest.raises(DataError) as error:
        load_cifar10(str(tmp_path / "c"))
    assert str(error.value) == f"data_batch_4 is corrupt: {message}"


def test_whole_labels_of_any_type_and_pickle_protocol_5_load_as_the_same_batch(tmp_path,
                                                                               tiny_cifar):
    original = load_cifar10(str(tiny_cifar))
    shutil.copytree(tiny_cifar, tmp_path / "c")
    images, labels = make_images(60, seed=4)
    write_raw_batch(tmp_path / "c" / "data_batch_4", rows(images),
                    np.array(labels, np.float64), protocol=5)
    data = load_cifar10(str(tmp_path / "c"))
    np.testing.assert_array_equal(data.x_train, original.x_train)
    np.testing.assert_array_equal(data.y_train, original.y_train)
    assert data.y_train.dtype == np.int64
