"""The input pipeline: batches of float32 pixels (0-255; the model standardizes them).

Training batches are shuffled and augmented on the fly with random translations of up to
`translate` pixels (zero padding, then a random crop), horizontal flips and, when `cutout` > 0,
Cutout (DeVries & Taylor 2017, arXiv:1708.04552): one `cutout` x `cutout` square, centred
anywhere in the image and clipped at its edges, is set to zero. On the TensorFlow
backend this is a tf.data pipeline with a parallel map and prefetch; on other Keras backends
(JAX on a GPU machine without TensorFlow) the same augmentation runs in numpy in a PyDataset.
"""

from __future__ import annotations

import keras
import numpy as np


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, training: bool = False,
                 augment: bool = True, translate: int = 4, flip: bool = True, cutout: int = 0,
                 seed: int = 0):
    """Batches of (images, labels); shuffled and augmented when training (and augment)."""
    augment = training and augment
    if keras.backend.backend() == "tensorflow":
        return _tf_dataset(x, y, batch_size, training, augment, translate, flip, cutout, seed)
    return _NumpyBatches(x, y, batch_size, training, augment, translate, flip, cutout, seed)


def _tf_dataset(x, y, batch_size, training, augment, translate, flip, cutout, seed):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        # Stateless ops keyed by a per-image seed stream: deterministic for a given --seed even
        # with a parallel map, and different every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda example, pair: (_tf_augment(example[0], pair, translate, flip, cutout),
                                   example[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    dataset = dataset.map(lambda images, labels: (tf.cast(images, tf.float32), labels),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _tf_augment(image, pair, translate: int, flip: bool, cutout: int):
    import tensorflow as tf

    seed = tf.cast(tf.reshape(pair, [2]), tf.int32)
    if translate:
        padded = tf.pad(image, [[translate, translate], [translate, translate], [0, 0]])
        image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    if cutout:
        height, width = image.shape[0], image.shape[1]
        centre = tf.random.stateless_uniform([2], seed=seed + 2, maxval=min(height, width),
                                             dtype=tf.int32)
        inside_rows = _in_window(tf.range(height), centre[0], cutout)
        inside_cols = _in_window(tf.range(width), centre[1], cutout)
        keep = tf.logical_not(inside_rows[:, None] & inside_cols[None, :])
        image = image * tf.cast(keep, image.dtype)[:, :, None]
    return image


def _in_window(positions, centre, size: int):
    """Whether each position lies in the `size`-wide window that starts size // 2 before centre.

    Plain operators only, so it serves tensors (tf.data) and numpy arrays (the PyDataset) alike.
    """
    start = centre - size // 2
    return (positions >= start) & (positions < start + size)


class _NumpyBatches(keras.utils.PyDataset):
    """The same batches for backends without TensorFlow, augmented in numpy."""

    def __init__(self, x, y, batch_size, training, augment, translate, flip, cutout, seed):
        super().__init__(workers=4, use_multiprocessing=False)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.training, self.augment, self.translate, self.flip = training, augment, translate, flip
        self.cutout = cutout
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
        if self.augment:
            images = self._augment(images, np.random.default_rng([index, int(self.order[0])]))
        return images.astype(np.float32), self.y[rows]

    def _augment(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, t = len(images), self.translate
        if t:
            padded = np.pad(images, ((0, 0), (t, t), (t, t), (0, 0)))
            dy, dx = rng.integers(0, 2 * t + 1, size=(2, n))
            rows = dy[:, None] + np.arange(32)[None, :]
            cols = dx[:, None] + np.arange(32)[None, :]
            images = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
        if self.flip:
            flipped = rng.random(n) < 0.5
            images[flipped] = images[flipped, :, ::-1]
        if self.cutout:
            images = images * self._cutout_keep(images.shape[1],
                                                rng.integers(0, images.shape[1], size=(2, n)))
        return images

    def _cutout_keep(self, size: int, centres: np.ndarray) -> np.ndarray:
        """(n, size, size, 1) masks: 0 inside each image's square, 1 elsewhere."""
        inside = _in_window(np.arange(size), centres[..., None], self.cutout)
        return ~(inside[0][:, :, None] & inside[1][:, None, :])[..., None]
