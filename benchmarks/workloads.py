"""What the benchmark times: the matmul roofline, training's step and input pipeline, a plain
Keras baseline, training's whole epoch phase by phase, evaluation's predict and the neurons scan.

Each takes its settings and returns one figure per timed repetition. Training figures build the
network, optimizer, input pipeline and callbacks with the training package's own functions from
a Config, so every setting reaches them as it reaches a real run.
"""

from __future__ import annotations

import contextlib
import io
import math
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from analysis.activations import top_activations
from benchmarks.timing import (
    CIFAR_TEST,
    CIFAR_TRAIN,
    MAX_STEPS,
    RepTimer,
    Settings,
    fit_rates,
    timed,
)
from data import make_dataset
from evaluation import predict
from models import Config, build_model
from training.callbacks import EpochRecorder, make_callbacks
from training.devices import PRECISION_POLICIES
from training.setup import build_compiled
from training.trainer import EVAL_BATCH_SIZE

MATMUL_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
EVALUATE_BATCH = 500  # evaluate.py's default --batch-size
SCAN_BATCH, SCAN_LAYER = 250, "CONV4"  # neurons.py's defaults


# ---------------------------------------------------------------------------------------------
# FLOPs and the matmul roofline


def layer_flops(model: keras.Model) -> dict[str, int]:
    """Forward FLOPs per image of each Conv2D and Dense layer (see tools/bench.py's docstring)."""
    flops = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k_h, k_w, c_in, c_out = layer.kernel.shape
            _, height, width, _ = layer.output.shape
            flops[layer.name] = 2 * height * width * k_h * k_w * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            n_in, n_out = layer.kernel.shape
            flops[layer.name] = 2 * n_in * n_out
    return flops


def matmul_rates(precision: str, n: int, s: Settings) -> list[float]:
    """FLOP/s of TensorFlow's matmul of two random n x n matrices, one figure per repetition."""
    dtype = MATMUL_DTYPES[precision]
    a, b = (tf.cast(tf.random.normal((n, n), seed=i), dtype) for i in (1, 2))
    # Summing the product keeps one number to fetch (n^2 adds beside 2 n^3 FLOPs), and fetching
    # it waits for every queued matmul on a GPU too.
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    product(a, b).numpy()
    start = time.perf_counter()
    product(a, b).numpy()
    calls = max(1, math.ceil(0.2 / (time.perf_counter() - start)))  # repetitions of >= 0.2 s

    def run() -> None:
        result = None
        for _ in range(calls):
            result = product(a, b)
        result.numpy()

    return [2 * n**3 * calls / t for t in timed(run, s)]


# ---------------------------------------------------------------------------------------------
# Training throughput


def random_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels: throughput does not depend on the pixels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def bench_config(precision: str, s: Settings, **settings) -> Config:
    """The report's run configuration at the benchmark's batch size and a resolved precision."""
    return Config.from_settings({"precision": precision, "batch_size": s.batch_size, **settings})


def compiled(config: Config) -> keras.Model:
    """Training's compiled model under the config's precision policy, in a fresh session."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[config.precision])
    return build_compiled(config, steps_per_epoch=1)


def train_batches(config: Config, x: np.ndarray, y: np.ndarray, seed: int):
    """Training's input pipeline as a run builds it: shuffled, with every augmentation setting
    of the config (translation, flip, Cutout)."""
    return make_dataset(x, y, config.batch_size, training=True, augment=config.augment,
                        translate=config.translate, flip=config.flip, cutout=config.cutout,
                        seed=seed)


def train_path(precision: str, xla: bool, s: Settings, seed: int) -> list[float]:
    """Training's model.fit on its augmented, shuffled batches."""
    config = bench_config(precision, s, xla=xla)
    model = compiled(config)
    x, y = random_images(MAX_STEPS * s.batch_size, seed)

    def fit(steps, epochs, callbacks):
        n = steps * s.batch_size
        model.fit(train_batches(config, x[:n], y[:n], seed), epochs=epochs, callbacks=callbacks,
                  shuffle=False, verbose=0)

    return fit_rates(fit, s)


def step_only(precision: str, s: Settings, seed: int) -> list[float]:
    """The same compiled model on one batch held in memory: no input pipeline at all."""
    model = compiled(bench_config(precision, s))
    x, y = random_images(s.batch_size, seed)
    batch = tf.data.Dataset.from_tensors((x.astype(np.float32), y))

    def fit(steps, epochs, callbacks):
        model.fit(batch.repeat(steps), epochs=epochs, callbacks=callbacks, shuffle=False,
                  verbose=0)

    return fit_rates(fit, s)


def plain_keras(s: Settings, seed: int) -> list[float]:
    """Course-style training: float32, Keras' default compile and fit on numpy arrays (no
    tf.data)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = random_images(MAX_STEPS * s.batch_size, seed)
    x = x.astype(np.float32)

    def fit(steps, epochs, callbacks):
        n = steps * s.batch_size
        model.fit(x[:n], y[:n], batch_size=s.batch_size, epochs=epochs, callbacks=callbacks,
                  verbose=0)

    return fit_rates(fit, s)


# ---------------------------------------------------------------------------------------------
# A whole training epoch, phase by phase


class Phases(keras.callbacks.Callback):
    """Marks the phases of each epoch: training steps, validation, then (via marks placed after
    training's callbacks) the test evaluation and the saving."""

    def __init__(self):
        super().__init__()
        self.epochs: list[dict[str, float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.current, self.last, self.validating = {}, time.perf_counter(), False

    def on_test_begin(self, logs=None):
        if not self.validating:  # fit's validation runs evaluate with fit's callbacks
            self.validating = True
            self.mark("train")

    def on_epoch_end(self, epoch, logs=None):
        self.mark("val")

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.current[phase], self.last = now - self.last, now
        if phase == "save":
            self.epochs.append(self.current)


class Mark(keras.callbacks.Callback):
    """Ends a phase of Phases where it stands in the callback list."""

    def __init__(self, phases: Phases, phase: str):
        super().__init__()
        self.phases, self.phase = phases, phase

    def on_epoch_end(self, epoch, logs=None):
        self.phases.mark(self.phase)


def timed_callbacks(phases: Phases, callbacks: list[keras.callbacks.Callback]) -> list:
    """Training's callbacks with the phase marks between them: the test evaluation happens in
    EpochRecorder, the saving in the callbacks after it."""
    recorder = next(i for i, c in enumerate(callbacks) if isinstance(c, EpochRecorder)) + 1
    return [phases, *callbacks[:recorder], Mark(phases, "test"), *callbacks[recorder:],
            Mark(phases, "save")]


def whole_epoch(precision: str, s: Settings, seed: int) -> dict:
    """Training's epoch on a split scaled down by s.epoch_scale (whole batches, in the proportions
    of the real 45,000 / 5,000 / 10,000 images): each epoch's seconds per phase, and projected to
    full size."""
    config = bench_config(precision, s, epochs=1 + s.reps)
    model = compiled(config)
    full = {"train": CIFAR_TRAIN - config.val_size, "val": config.val_size, "test": CIFAR_TEST}
    sizes = {phase: max(1, round(count * s.epoch_scale / s.batch_size)) * s.batch_size
             for phase, count in full.items()}
    eval_batch = max(config.batch_size, EVAL_BATCH_SIZE)  # as training evaluates
    train = train_batches(config, *random_images(sizes["train"], seed), seed)
    val = make_dataset(*random_images(sizes["val"], seed + 1), eval_batch)
    test = make_dataset(*random_images(sizes["test"], seed + 2), eval_batch)
    phases = Phases()
    with tempfile.TemporaryDirectory() as run, contextlib.redirect_stdout(io.StringIO()):
        callbacks = make_callbacks(config, folder=Path(run), test_data=test,
                                   state={"epoch": 0, "history": []}, chief=True)
        stop = RepTimer(sizes["train"], s.budget, min_epochs=3)  # the warm-up epoch, 2 timed ones
        model.fit(train, validation_data=val, epochs=config.epochs,
                  callbacks=[*timed_callbacks(phases, callbacks), stop], shuffle=False, verbose=0)
    timed_epochs = phases.epochs[1:]  # the first epoch traces the training and evaluation
    full_phases = {p: statistics.median(e[p] / sizes[p] * full[p] for e in timed_epochs)
                   for p in sizes}
    return {"sizes": sizes, "full_sizes": full, "epochs": timed_epochs,
            "projected_seconds": [project(e, sizes, full) for e in timed_epochs],
            "projected_phase_seconds": {**full_phases,
                                        "save": statistics.median(e["save"] for e in timed_epochs)}}


def project(epoch: dict[str, float], sizes: dict[str, int], full: dict[str, int]) -> float:
    """Seconds of a full-size epoch: each phase's seconds per image times its full image count,
    plus saving."""
    return sum(epoch[p] / sizes[p] * full[p] for p in sizes) + epoch["save"]


# ---------------------------------------------------------------------------------------------
# Inference and the neurons.py scan


def inference_rates(precision: str, s: Settings, seed: int) -> list[float]:
    """Evaluation's predict (predict_on_batch over 500-image batches) under the precision's
    policy."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    model = build_model()
    x, _ = random_images(s.infer_images, seed)

    def infer(images: np.ndarray) -> None:
        predict(model, images, EVALUATE_BATCH)

    return [len(x) / t for t in timed(lambda: infer(x), s, lambda: infer(x[:EVALUATE_BATCH]))]


def scan_rates(s: Settings, seed: int) -> list[float]:
    """neurons.py's pass: the top 9 test images of every CONV4 channel, float32 as neurons.py
    loads it."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    model = build_model()
    x, _ = random_images(s.scan_images, seed)

    def scan(images: np.ndarray) -> None:
        top_activations(model, SCAN_LAYER, images, k=9, batch_size=SCAN_BATCH, progress=False)

    return [len(x) / t for t in timed(lambda: scan(x), s, lambda: scan(x[:SCAN_BATCH]))]
