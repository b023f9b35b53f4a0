"""The plain Keras baseline: one epoch of the report's network trained the way course code does.

    python -m benchmarks.plain_keras --data-dir ../shared/data/cifar-10-jpeg
    python -m benchmarks.plain_keras --data-dir ../shared/data/cifar-10-jpeg --precision bf16

The job is train.py's: the same 6,216,114-parameter network with the same dropout (spelled out
here in Keras' own layers, Dropout included, as course code writes it), the same data read the
same way (the last 5,000 training images for validation), random 4-pixel translations with zero
fill and horizontal flips, Adam at 1e-3, one epoch of fit with validation, then the test set
evaluated; batch 100. The means are what a course notebook uses and nothing of training/: Keras'
RandomTranslation and RandomFlip layers in a tf.data map, Keras' own Adam, compile and fit, numpy
arrays for validation and test. --precision bf16 adds the one line
keras.mixed_precision.set_global_policy("mixed_bfloat16").

It prints one JSON line, {"plain_keras": {...}}, with epoch_seconds counted as train.py's
history.csv counts its seconds: from the epoch's start (fit's on_epoch_begin) to the end of the
test evaluation, so training, validation and test, tracing included, and not the start-up.
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import tensorflow as tf

from data.cifar10 import load_cifar10, split_validation
from models.network import CIFAR10_MEAN, CIFAR10_STD

BATCH = 100


def report_network() -> keras.Model:
    """The report's network in Keras' own layers: models.network.build_model's, in order."""
    x = inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling([1 / s for s in CIFAR10_STD],
                               offset=[-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD,
                                                              strict=True)])(x)
    for filters, pool in ((64, True), (128, True), (256, False), (256, True)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x) if pool else x
        x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Flatten()(x)
    for _ in range(2):
        x = keras.layers.Dropout(0.5)(keras.layers.Dense(1024, activation="relu")(x))
    x = keras.layers.BatchNormalization()(keras.layers.Dense(10)(x))
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32")(x))


class EpochStart(keras.callbacks.Callback):
    """When fit's epoch began: where train.py's EpochRecorder starts its seconds."""

    def on_epoch_begin(self, epoch, logs=None):
        self.time = time.perf_counter()


def augmented_batches(x, y) -> tf.data.Dataset:
    """Shuffled batches of 100, each shifted by up to 4 pixels (12.5% of 32) and flipped."""
    augment = keras.Sequential([keras.layers.RandomTranslation(0.125, 0.125, fill_mode="constant"),
                                keras.layers.RandomFlip("horizontal")])
    return (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(BATCH)
            .map(lambda images, labels: (augment(tf.cast(images, "float32"), training=True),
                                         labels), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def one_epoch(data_dir: str | None, precision: str = "fp32", train_images: int | None = None,
              val_images: int = 5000) -> dict:
    """Train one epoch on the first train_images of the training split, validate, test; returns
    the epoch's seconds, the image counts, the parameter count and the test accuracy."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    data = load_cifar10(data_dir)
    (x_train, y_train), (x_val, y_val) = split_validation(data.x_train, data.y_train, val_images)
    x_train, y_train = x_train[:train_images], y_train[:train_images]
    model = report_network()
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = EpochStart()
    model.fit(augmented_batches(x_train, y_train), epochs=1, verbose=0, callbacks=[start],
              validation_data=(x_val.astype("float32"), y_val), validation_batch_size=BATCH)
    test = model.evaluate(data.x_test.astype("float32"), data.y_test, batch_size=BATCH,
                          verbose=0, return_dict=True)
    return {"precision": precision, "epoch_seconds": time.perf_counter() - start.time,
            "train_images": len(x_train), "val_images": len(x_val),
            "test_images": len(data.x_test), "parameters": model.count_params(),
            "test_accuracy": test["accuracy"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz (default: $CIFAR10_DIR, else "
                                      "Keras' download)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--train-images", type=int, help="the first N training images (default: all)")
    p.add_argument("--val-images", type=int, default=5000,
                   help="the last N training images validate (default: 5000, as train.py)")
    args = p.parse_args(argv)
    result = one_epoch(args.data_dir, args.precision, args.train_images, args.val_images)
    print(json.dumps({"plain_keras": result}), flush=True)


if __name__ == "__main__":
    main()
