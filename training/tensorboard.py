"""TensorBoard event files of a run (RUN/tensorboard/): every epoch's losses, accuracies and
learning rate, and CONV1's filters as an image every few epochs.

They are written with TensorFlow's own summary writer (tf.summary.write with the metadata
TensorBoard's plugins read), so training needs no tensorboard package; viewing them does. The
folders are laid out as Keras' TensorBoard callback lays them out, so that TensorBoard draws
train, val and test on one chart per number: train/, val/ and test/ each hold epoch_loss and
epoch_accuracy, train/ also epoch_learning_rate and the conv1_filters image. The step is the
epoch (1, 2, ...).

An epoch's summaries are written only after its checkpoint committed it (RunWriter), so no
event file ever holds an epoch a kill left uncommitted and the redone epoch writes it once. A
kill between the commit and the summaries loses that epoch's; a resumed run writes what its
event files lack first (EventFiles.complete). Each process writes new event files and never
rewrites old ones: TensorBoard reads them all.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

import runs
from runs.files import check_free_space

# (folder, tag) -> the history.csv column it plots
SCALARS = {("train", "epoch_loss"): "train_loss", ("train", "epoch_accuracy"): "train_accuracy",
           ("val", "epoch_loss"): "val_loss", ("val", "epoch_accuracy"): "val_accuracy",
           ("test", "epoch_loss"): "test_loss", ("test", "epoch_accuracy"): "test_accuracy",
           ("train", "epoch_learning_rate"): "learning_rate"}
FILTERS = ("train", "conv1_filters")
FILTERS_LAYER = "CONV1"
TILE, GAP = 8, 2  # each 3x3 filter drawn 8x larger, 2 pixels apart


def filters_due(epoch: int, *, every: int, last: bool) -> bool:
    """Whether the epoch gets the filters image: every `every` epochs, and the run's last."""
    return last or epoch % every == 0


def filters_image(kernel: np.ndarray) -> np.ndarray:
    """A conv kernel (h, w, 3, n) as one RGB image (uint8, H x W x 3): its n filters in a
    near-square grid, each stretched to its own min..max (as visualize_filters.py's normalized
    grid), TILE times larger, GAP black pixels apart."""
    filters = np.moveaxis(np.asarray(kernel, dtype=np.float32), -1, 0)
    low = filters.min(axis=(1, 2, 3), keepdims=True)
    span = filters.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = (filters - low) / np.where(span > 0, span, 1)
    count, height, width, _ = scaled.shape
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    size_h, size_w = height * TILE + GAP, width * TILE + GAP
    image = np.zeros((rows * size_h + GAP, cols * size_w + GAP, 3), np.uint8)
    for index, single in enumerate(scaled):
        r, c = divmod(index, cols)
        tile = np.kron(single, np.ones((TILE, TILE, 1)))
        image[GAP + r * size_h:(r + 1) * size_h, GAP + c * size_w:(c + 1) * size_w] = np.round(
            tile * 255).astype(np.uint8)
    return image


def unavailable() -> str | None:
    """A warning line where event files cannot be written: TensorFlow, whose summary writer
    writes them, is not installed (a JAX machine); None where they can."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return ("warning: no TensorBoard event files: writing them needs TensorFlow, which is "
                "not installed (--tensorboard 0 asks for none)")
    return None


def written(folder: Path) -> set[tuple[str, str, int]]:
    """(folder, tag, step) of every summary the run's event files hold. A file a kill cut off in
    the middle of a record is read up to that record."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    found = set()
    root = Path(folder) / runs.TENSORBOARD
    for split in sorted({split for split, _ in SCALARS}):
        for path in sorted((root / split).glob("events.out.tfevents.*")):
            try:
                for record in tf.data.TFRecordDataset(str(path)):
                    event = event_pb2.Event.FromString(record.numpy())
                    found.update((split, value.tag, event.step) for value in event.summary.value)
            except tf.errors.DataLossError:
                continue
    return found


class EventFiles:
    """This process's event files in RUN/tensorboard/, opened at the first write."""

    def __init__(self, folder: Path):
        self.root = Path(folder) / runs.TENSORBOARD
        self.writers: dict = {}

    def write_epoch(self, row: dict, *, filters: np.ndarray | None = None) -> None:
        """One epoch's scalars (a history.csv row) and, where given, CONV1's kernel as an image;
        flushed at once, as the epoch is committed already.

        TensorFlow's writer drops what a full disk has no room for without a word, and leaves a
        cut-off record behind: the free space is checked first (OSError(ENOSPC) where short)."""
        image = None if filters is None else filters_image(filters)
        check_free_space(self.root, 4096 + (0 if image is None else image.nbytes))
        for (split, tag), column in SCALARS.items():
            self._scalar(split, tag, row[column], row["epoch"])
        if image is not None:
            self._image(*FILTERS, image, row["epoch"])
        for writer in self.writers.values():
            writer.flush()

    def complete(self, state: dict, model: keras.Model, *, every: int) -> None:
        """Write what the event files lack of the committed epochs (state: the checkpoint's run
        state): the scalars from its history, and the filters image of the last committed
        epoch, where due, from the network restored from that checkpoint."""
        done = state["epoch"]
        have = written(self.root.parent)
        missing = [(split, tag, column, row) for row in state["history"]
                   for (split, tag), column in SCALARS.items()
                   if (split, tag, row["epoch"]) not in have]
        image_missing = bool(done) and filters_due(done, every=every, last=False) and (
            *FILTERS, done) not in have
        if not missing and not image_missing:
            return
        check_free_space(self.root, 4096 + 256 * len(missing))
        for split, tag, column, row in missing:
            self._scalar(split, tag, row[column], row["epoch"])
        if image_missing:
            self._image(*FILTERS, filters_image(conv1_kernel(model)), done)
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def _writer(self, split: str):
        import tensorflow as tf

        if split not in self.writers:
            self.writers[split] = tf.summary.create_file_writer(str(self.root / split))
        return self.writers[split]

    def _scalar(self, split: str, tag: str, value: float, step: int) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR)
        with self._writer(split).as_default():
            tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)

    def _image(self, split: str, tag: str, image: np.ndarray, step: int) -> None:
        # TensorBoard's image plugin reads [width, height, png, ...] as strings.
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"),
            data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
        tensor = tf.stack([tf.as_string(image.shape[1]), tf.as_string(image.shape[0]),
                           tf.image.encode_png(image)])
        with self._writer(split).as_default():
            tf.summary.write(tag, tensor, step=step, metadata=metadata)


def conv1_kernel(model: keras.Model) -> np.ndarray:
    return keras.ops.convert_to_numpy(model.get_layer(FILTERS_LAYER).kernel)
