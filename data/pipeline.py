"""The input pipeline: batches of float32 pixels (0-255; the model standardizes them).

Training batches are shuffled and augmented on the fly, a batch at a time, with random
translations of up to `translate` pixels (zero padding, then a random crop), horizontal flips
and, when `cutout` > 0, Cutout (DeVries & Taylor 2017, arXiv:1708.04552): one `cutout` x `cutout`
square, centred anywhere in the image and clipped at its edges, is set to zero. On the TensorFlow
backend this is a tf.data pipeline with a parallel map and prefetch; on other Keras backends (JAX
on a GPU machine without TensorFlow) the same augmentation runs in numpy in a PyDataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """What a training image goes through: a shift of up to translate pixels each way, a flip
    with probability 1/2 where flip, and a Cutout square of side cutout (0: none)."""

    translate: int = 4
    flip: bool = True
    cutout: int = 0


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, training: bool = False,
                 augmentation: Augmentation | None = None, seed: int = 0):
    """Batches of (images, labels); shuffled when training, and augmented too where an
    augmentation is given."""
    augmentation = augmentation if training else None
    if keras.backend.backend() == "tensorflow":
        return _tf_dataset(x, y, batch_size, training, augmentation, seed)
    return _NumpyBatches(x, y, batch_size, training, augmentation, seed)


def _tf_dataset(x, y, batch_size: int, training: bool, augmentation: Augmentation | None,
                seed: int):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if augmentation:
        # A whole batch per call, in a handful of vectorized ops: per image, the ops' fixed cost
        # took CPU time from the training step it runs beside. Stateless ops keyed by a per-batch
        # seed stream: deterministic for a given --seed, different every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, pair: (_tf_augment(batch[0], pair, augmentation), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda images, labels: (tf.cast(images, tf.float32), labels),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _tf_augment(images, pair, augmentation: Augmentation):
    """A batch of uint8 images, each shifted by its own uniform offset in [-translate,
    translate]^2 (zero padding), mirrored with probability 1/2 and given one Cutout square
    centred uniformly anywhere; as float32."""
    import tensorflow as tf

    translate, cutout = augmentation.translate, augmentation.cutout
    seed = tf.cast(tf.reshape(pair, [2]), tf.int32)
    n, size = tf.shape(images)[0], images.shape[1]
    if translate:
        padded = tf.pad(images, [[0, 0], [translate, translate], [translate, translate], [0, 0]])
        offsets = tf.random.stateless_uniform([2, n], seed=seed, maxval=2 * translate + 1,
                                              dtype=tf.int32)
        window = tf.range(size)[None, :]
        images = tf.gather(padded, offsets[0][:, None] + window, axis=1, batch_dims=1)
        images = tf.gather(images, offsets[1][:, None] + window, axis=2, batch_dims=1)
    if augmentation.flip:
        mirrored = tf.random.stateless_uniform([n], seed=seed + 1) < 0.5
        images = tf.where(mirrored[:, None, None, None], tf.reverse(images, [2]), images)
    images = tf.cast(images, tf.float32)
    if cutout:
        centres = tf.random.stateless_uniform([2, n, 1], seed=seed + 2, maxval=size,
                                              dtype=tf.int32)
        inside = _in_window(tf.range(size)[None, :], centres, cutout)
        keep = tf.logical_not(inside[0][:, :, None] & inside[1][:, None, :])
        images = images * tf.cast(keep, tf.float32)[..., None]
    return images


def _in_window(positions, centre, size: int):
    """Whether each position lies in the `size`-wide window that starts size // 2 before centre.

    Plain operators only, so it serves tensors (tf.data) and numpy arrays (the PyDataset) alike.
    """
    start = centre - size // 2
    return (positions >= start) & (positions < start + size)


class _NumpyBatches(keras.utils.PyDataset):
    """The same batches for backends without TensorFlow, augmented in numpy."""

    def __init__(self, x, y, batch_size: int, training: bool,
                 augmentation: Augmentation | None, seed: int):
        super().__init__(workers=4, use_multiprocessing=False)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.training, self.augmentation = training, augmentation
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x)) if training else np.arange(len(x))

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size)
        return full if self.training else full + (rest > 0)

    def on_epoch_end(self) -> None:
        if self.training:
            self.order = self.rng.permutation(len(self.x))

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.x[rows]
        if self.augmentation:
            images = self._augment(images, np.random.default_rng([index, int(self.order[0])]))
        return images.astype(np.float32), self.y[rows]

    def _augment(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, t = len(images), self.augmentation.translate
        if t:
            padded = np.pad(images, ((0, 0), (t, t), (t, t), (0, 0)))
            dy, dx = rng.integers(0, 2 * t + 1, size=(2, n))
            rows = dy[:, None] + np.arange(32)[None, :]
            cols = dx[:, None] + np.arange(32)[None, :]
            images = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
        if self.augmentation.flip:
            flipped = rng.random(n) < 0.5
            images[flipped] = images[flipped, :, ::-1]
        if self.augmentation.cutout:
            images = images * self._cutout_keep(images.shape[1],
                                                rng.integers(0, images.shape[1], size=(2, n)))
        return images

    def _cutout_keep(self, size: int, centres: np.ndarray) -> np.ndarray:
        """(n, size, size, 1) masks: 0 inside each image's square, 1 elsewhere."""
        inside = _in_window(np.arange(size), centres[..., None], self.augmentation.cutout)
        return ~(inside[0][:, :, None] & inside[1][:, None, :])[..., None]
