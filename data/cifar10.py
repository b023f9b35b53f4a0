"""Loads CIFAR-10 from a local copy in the official python layout, the official tar.gz, or Keras.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009. The batch files are
pickles; they are read with an allow-list unpickler, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
TARBALL = "cifar-10-python.tar.gz"
HOW_TO_POINT = ("pass --data-dir (or set CIFAR10_DIR) to a folder with "
                f"{', '.join(TRAIN_BATCHES[:1])}..{TEST_BATCH} in the official python layout, "
                f"or to {TARBALL}")


class DataError(ValueError):
    """The data could not be found or read; the message says what to do."""


@dataclass
class Cifar10:
    x_train: np.ndarray  # (N, 32, 32, 3) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: tuple[str, ...] = CLASS_NAMES


# Everything a CIFAR-10 batch pickle may name: numpy arrays and dtypes (protocol 5 rebuilds an
# array from its buffer with _frombuffer), and _codecs.encode and bytes, which is how pickle
# protocol 2 spells a bytes object. Nothing else (no os.system, no eval).
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy{core}.multiarray", "_reconstruct"): np._core.multiarray._reconstruct
       for core in (".core", "._core")},
    **{(f"numpy{core}.numeric", "_frombuffer"): np._core.numeric._frombuffer
       for core in (".core", "._core")},
    ("_codecs", "encode"): __import__("_codecs").encode,
    ("__builtin__", "bytes"): bytes,  # protocol 2's empty bytes
    ("builtins", "bytes"): bytes,
}


class _Forbidden(pickle.UnpicklingError):
    """The pickle names something outside the allow-list."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Forbidden(f"refusing to load {module}.{name}") from None


def unpickle_batch(raw: bytes, name: str) -> dict:
    """Unpickle one batch file's bytes with the allow-list; raise DataError if it is not one."""
    try:
        batch = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Forbidden as error:
        raise DataError(f"{name} is not a CIFAR-10 batch ({error}); not loading it") from None
    except Exception as error:  # truncated or garbled files raise many kinds of errors
        raise DataError(f"{name} is corrupt ({type(error).__name__}: {error})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{name} is not a CIFAR-10 batch (holds a {type(batch).__name__})")
    return batch


def _images_and_labels(batch: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images (N, 32, 32, 3) uint8 and labels (N,) int64, checked by what they mean:
    pixels are whole numbers 0-255 (float pixels in [0, 1] would train on black images, int16
    ones would wrap), labels whole numbers 0-9, one per image, and a batch holds images."""
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if (not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072
            or labels is None):
        raise DataError(f"{name} is not a CIFAR-10 batch (no (N, 3072) 'data' array and 'labels')")
    if not len(data):
        raise DataError(f"{name} is corrupt: it holds no images")
    _check_pixels(data, name)
    labels = _checked_labels(labels, len(data), name)
    # Rows hold 1024 R, 1024 G, 1024 B values: to (N, 32, 32, 3), channels last.
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _check_pixels(data: np.ndarray, name: str) -> None:
    if data.dtype.kind not in "iu":
        raise DataError(f"{name} is corrupt: its pixels are {data.dtype}, not whole numbers "
                        f"0-255 (uint8)")
    low, high = int(data.min()), int(data.max())
    if low < 0 or high > 255:
        raise DataError(f"{name} is corrupt: its pixels range over {low}..{high}, not 0-255")


def _whole(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value == int(value)


def _checked_labels(labels, images: int, name: str) -> np.ndarray:
    values = np.asarray(labels) if isinstance(labels, (list, tuple, np.ndarray)) else None
    if values is None or values.ndim != 1:
        raise DataError(f"{name} is corrupt: its labels are not a list of one label an image")
    if len(values) != images:
        raise DataError(f"{name} is corrupt: {images} images but {len(values)} labels")
    if values.dtype.kind not in "iu":
        listed = values.tolist()
        first = next((i for i, v in enumerate(listed) if not _whole(v)), None)
        if first is not None:
            raise DataError(f"{name} is corrupt: image {first} has label {listed[first]!r}, "
                            f"not a whole number 0-{len(CLASS_NAMES) - 1}")
    values = values.astype(np.int64)
    bad = np.flatnonzero((values < 0) | (values >= len(CLASS_NAMES)))
    if len(bad):
        raise DataError(f"{name} is corrupt: image {bad[0]} has label {values[bad[0]]}, outside "
                        f"0-{len(CLASS_NAMES) - 1}"
                        + (f" ({len(bad)} such labels)" if len(bad) > 1 else ""))
    return values


def _read_batches(read, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [_images_and_labels(unpickle_batch(read(n), n), n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _load(read, source: str) -> Cifar10:
    x_train, y_train = _read_batches(read, TRAIN_BATCHES)
    x_test, y_test = _read_batches(read, (TEST_BATCH,))
    return Cifar10(x_train, y_train, x_test, y_test, source)


def _load_folder(folder: Path) -> Cifar10:
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    elif not (folder / TEST_BATCH).exists() and (folder / TARBALL).exists():
        return _load_tarball(folder / TARBALL)
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}; {HOW_TO_POINT}")
    return _load(lambda name: (folder / name).read_bytes(), str(folder))


def _load_tarball(path: Path) -> Cifar10:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = _batch_members(tar, path)
            missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in members]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}; {HOW_TO_POINT}")
            return _load(lambda name: tar.extractfile(members[name]).read(), str(path))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{path} is not a readable tar.gz ({error})") from None


def _batch_members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """The batch files of the one folder of the archive that holds any: matched by file name
    alone, an old/test_batch beside cifar-10-batches-py/test_batch would be read in its place."""
    folders: dict[str, dict[str, tarfile.TarInfo]] = {}
    for member in tar.getmembers():
        name = Path(member.name)
        if member.isfile() and name.name in (*TRAIN_BATCHES, TEST_BATCH):
            folders.setdefault(str(name.parent), {})[name.name] = member
    if len(folders) > 1:
        listed = ", ".join(f"{folder}/" for folder in sorted(folders))
        raise DataError(f"{path} holds CIFAR-10 batch files in {len(folders)} folders "
                        f"({listed}); keep one of them in the archive")
    return next(iter(folders.values()), {})


def _load_keras() -> Cifar10:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"could not download CIFAR-10 ({reason}); {HOW_TO_POINT}") from None
    return Cifar10(x_train, y_train.ravel().astype(np.int64), x_test,
                   y_test.ravel().astype(np.int64), "keras.datasets.cifar10")


def resolve_source(data_dir: str | None, trained_on: str | None = None) -> str | None:
    """The one rule for which copy a script reads: --data-dir, else $CIFAR10_DIR, else the copy
    the run trained on (its config's data_dir) if it is still there, else None (Keras' download)."""
    if data_dir or os.environ.get("CIFAR10_DIR"):
        return data_dir or os.environ["CIFAR10_DIR"]
    if trained_on and Path(trained_on).expanduser().exists():
        return trained_on
    return None


def load_cifar10(data_dir: str | None = None, trained_on: str | None = None) -> Cifar10:
    """Load CIFAR-10 from the copy resolve_source picks: a folder, a tar.gz or Keras' download."""
    source = resolve_source(data_dir, trained_on)
    if source is None:
        return _load_keras()
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_tarball(path)
    origin = "" if data_dir else " (from $CIFAR10_DIR)"
    raise DataError(f"{path}{origin} does not exist; {HOW_TO_POINT}")


SPLITS = ("test", "val", "train")


def select_split(data: Cifar10, split: str, val_size: int,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split, cut exactly as train.py cuts them: "val" is the last val_size
    training images, "train" the rest (its first `limit` images, for a run trained with --limit)."""
    if split not in SPLITS:
        raise DataError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if split == "test":
        return data.x_test, data.y_test
    (x_train, y_train), (x_val, y_val) = split_validation(data.x_train, data.y_train, val_size)
    return (x_val, y_val) if split == "val" else (x_train[:limit], y_train[:limit])


def split_validation(x: np.ndarray, y: np.ndarray, val_size: int):
    """The last val_size training images are the validation set: deterministic, no shuffling."""
    if not 0 < val_size < len(x):
        raise DataError(f"--val-size must be between 1 and {len(x) - 1}, not {val_size}")
    return (x[:-val_size], y[:-val_size]), (x[-val_size:], y[-val_size:])
