"""What the benchmark times in its own process: the matmul limit on fresh inputs, training's
step alone on one cached batch, evaluation's predict and the neurons scan.

Each takes its settings and returns one figure per timed repetition. The step builds the network
and optimizer with the training package's own functions from a Config, so every setting reaches
it as it reaches a real run.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from analysis.activations import top_activations
from benchmarks.timing import Settings, fit_rates, timed
from evaluation.scoring import predict
from models import Config
from models.network import build_model
from training.devices import PRECISION_POLICIES
from training.setup import build_compiled

MATMUL_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
EVALUATE_BATCH = 500  # evaluate.py's default --batch-size
SCAN_BATCH, SCAN_LAYER = 250, "CONV4"  # neurons.py's defaults
CACHE_FALLBACK = 32 * 2**20  # bytes assumed where the system does not say its cache size
POOL_MAX = 2**30  # the input pool never takes more memory than this


# ---------------------------------------------------------------------------------------------
# FLOPs and the matmul limit


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


def last_level_cache(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """Bytes of the CPU's largest cache as sysfs lists it ("32768K"), else CACHE_FALLBACK."""
    sizes = []
    for entry in root.glob("index*/size"):
        with contextlib.suppress(OSError, ValueError):
            text = entry.read_text().strip().upper()
            unit = {"K": 2**10, "M": 2**20}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KM")) * unit)
    return max(sizes, default=CACHE_FALLBACK)


def input_pool(n: int, precision: str, pool_bytes: int) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Distinct random n x n input pairs, at least two and together at least pool_bytes (capped
    at POOL_MAX), so that cycling through them no matmul finds its operands in the cache."""
    dtype = tf.as_dtype(MATMUL_DTYPES[precision])
    pair_bytes = 2 * n * n * dtype.size
    count = max(2, math.ceil(min(pool_bytes, POOL_MAX) / pair_bytes))
    return [tuple(tf.cast(tf.random.normal((n, n), seed=2 * i + j), dtype) for j in (1, 2))
            for i in range(count)]


def matmul_product():
    """One number from a matmul: summing the product keeps one value to fetch (n^2 adds beside
    2 n^3 FLOPs), and fetching it waits for every queued matmul on a GPU too."""
    return tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))


def matmul_rates(precision: str, n: int, s: Settings, pool_bytes: int | None = None) -> list[float]:
    """FLOP/s of TensorFlow's matmul, n x n by n x n, one figure per repetition; each call takes
    the next pair of a pool twice the size of the last-level cache (input_pool), so none reuses
    operands a previous call left in the cache."""
    pool = input_pool(n, precision, 2 * last_level_cache() if pool_bytes is None else pool_bytes)
    product = matmul_product()

    def cycle(times: int) -> None:
        result = None
        for _ in range(times):
            for a, b in pool:
                result = product(a, b)
        result.numpy()

    cycle(1)  # the warm-up: tracing, kernel selection, every input made and touched once
    start = time.perf_counter()
    cycle(1)
    cycles = max(1, math.ceil(0.2 / (time.perf_counter() - start)))  # repetitions of >= 0.2 s
    return [2 * n**3 * cycles * len(pool) / t
            for t in timed(lambda: cycle(cycles), s, warm_up=lambda: None)]


# ---------------------------------------------------------------------------------------------
# The training step alone


def random_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels: throughput does not depend on the pixels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def step_only(precision: str, s: Settings, seed: int) -> list[float]:
    """Images/s of train.py's compiled model (the report's Config in this precision, its
    optimizer and loss) fed one batch held in memory: no input pipeline at all."""
    config = Config.from_settings({"precision": precision})
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    model = build_compiled(config, steps_per_epoch=1)
    x, y = random_images(config.batch_size, seed)
    batch = tf.data.Dataset.from_tensors((x.astype(np.float32), y))

    def fit(steps, epochs, callbacks):
        model.fit(batch.repeat(steps), epochs=epochs, callbacks=callbacks, shuffle=False,
                  verbose=0)

    return fit_rates(fit, config.batch_size, s)


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
