"""Benchmark: training and analysis speed against plain Keras and against the machine's own limit.

    python bench.py                  # about 3 minutes on an idle 2-core CPU; table on stdout, bench.json
    python bench.py --quick          # about 30 s: shorter and fewer repetitions, no XLA
    python bench.py --json results/bench.json

Every figure is the median of several timed repetitions after a warm-up (tracing, XLA compilation,
oneDNN kernel selection), printed with its min and max; the number of repetitions is in the table
(a slow measurement stops after --budget seconds, with at least 2). The data are random uint8 images:
throughput does not depend on the pixels. On a shared machine, compare min and max: TensorFlow splits
each kernel over all cores, so one core taken by another process can halve a repetition's speed. The rows:

- roofline: TensorFlow's own matmul, n x n by n x n, 2 n^3 FLOP, in float32 and bfloat16 (float16 on
  a GPU), for a few n; the best median over n is the machine's limit used for MFU.
- training, train.py path: train.py's `build_compiled` under the precision's Keras policy, fed by
  data.make_dataset (shuffle, random translation and flip, float32 cast, prefetch) through model.fit,
  as train.py runs it; each precision the machine supports (fp32; bf16 on CPUs with AVX512-BF16/AMX
  and on GPUs; fp16 on GPUs), without and with XLA (jit_compile).
- training, step only: the same compiled model fed one cached batch again and again, so no input
  pipeline: the training step's own speed.
- training, plain Keras: the way most course code trains: models.build_model, model.compile("adam",
  ...) with Keras' defaults, model.fit(x, y, batch_size=100) on numpy arrays, float32, no tf.data.
  "vs plain Keras" is images/s divided by this row's.
- whole epoch: train.py's epoch with its own callbacks (validation, the test-set evaluation, saving
  weights, checkpoint and history), on a scaled-down split of the same proportions; its phases are
  timed per image and projected to the full 45,000 / 5,000 / 10,000-image epoch.
- inference: evaluate.py's predict (float32, 500-image batches) and the same in the default precision.
- neurons.py scan: analysis.activations.top_activations on CONV4 over the 10,000 test images.

FLOPs per image come from the layer shapes, counting a multiply-add as 2 FLOPs:
  Conv2D (k x k kernel, C_in -> C_out channels, output H x W):  2 * H * W * k * k * C_in * C_out
  Dense (n_in -> n_out):                                         2 * n_in * n_out
  training = 3 x forward (the backward pass computes the gradients of the inputs and of the weights,
  each costing one forward), the usual convention (Kaplan et al. 2020, "Scaling Laws for Neural
  Language Models"; Chowdhery et al. 2022, PaLM, appendix B for MFU). Element-wise layers (ReLU,
  pooling, dropout, batch norm, softmax), the optimizer update and CONV1's unneeded input gradient
  are left out. For the report's network: 0.165 GFLOP forward, 0.495 GFLOP to train, per image.
MFU (model-FLOP utilization) = images/s x training FLOPs per image / the roofline in that precision.
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from analysis.activations import top_activations
from data import make_dataset
from evaluate import predict
from models.cli import UserError, main_with_errors
from models.config import Config
from models.network import build_model
from train import PRECISION_POLICIES, build_compiled, cpu_has_bf16, has_gpu, make_callbacks, resolve_precision

MATMUL_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000
EVALUATE_BATCH = 500  # evaluate.py's default --batch-size
SCAN_BATCH, SCAN_LAYER = 250, "CONV4"  # neurons.py's defaults
MAX_STEPS = 200  # most training steps in one repetition


@dataclasses.dataclass
class Settings:
    """How long and how often to measure; --quick shrinks every one of them."""

    batch_size: int = 100
    reps: int = 5  # timed repetitions per figure (fewer if the budget runs out first, never under 2)
    rep_seconds: float = 2.0  # aimed length of one repetition
    budget: float = 20.0  # seconds of timed repetitions after which a measurement stops
    warmup_steps: int = 2
    xla: bool = True
    matmul_sizes: tuple[int, ...] = (1024, 2048, 4096)
    epoch_scale: float = 0.1  # the whole-epoch figure runs train.py's epoch on this share of the split
    infer_images: int = 2000
    scan_images: int = CIFAR_TEST


QUICK = {"reps": 3, "rep_seconds": 0.3, "budget": 2.0, "warmup_steps": 1, "xla": False, "matmul_sizes": (1024,),
         "epoch_scale": 0.02, "infer_images": 500, "scan_images": 500}


@dataclasses.dataclass
class Row:
    """One line of the table: a figure's median, min and max over its repetitions."""

    group: str
    name: str
    precision: str
    xla: bool | None
    unit: str
    median: float | None = None
    min: float | None = None
    max: float | None = None
    reps: int = 0
    mfu: float | None = None
    vs_baseline: float | None = None
    note: str = ""
    seconds: float = 0.0  # wall time of the whole measurement, warm-up included


def stats(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "reps": len(samples)}


# ---------------------------------------------------------------------------------------------
# FLOPs and the matmul roofline


def layer_flops(model: keras.Model) -> dict[str, int]:
    """Forward FLOPs per image of each Conv2D and Dense layer (see the module docstring)."""
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
    # Summing the product keeps one number to fetch (n^2 adds beside 2 n^3 FLOPs), and fetching it waits
    # for every queued matmul on a GPU too.
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    product(a, b).numpy()
    start = time.perf_counter()
    product(a, b).numpy()
    calls = max(1, math.ceil(0.2 / (time.perf_counter() - start)))  # repetitions of at least 0.2 s

    def run() -> None:
        result = None
        for _ in range(calls):
            result = product(a, b)
        result.numpy()

    return [2 * n**3 * calls / t for t in timed(run, s)]


def timed(run: Callable[[], None], s: Settings, warm_up: Callable[[], None] | None = None) -> list[float]:
    """Seconds of each repetition of run(), after warm_up() (default: run()); stops early past the budget."""
    (warm_up or run)()
    seconds, start = [], time.perf_counter()
    while len(seconds) < s.reps and (len(seconds) < 2 or time.perf_counter() - start < s.budget):
        t = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t)
    return seconds


# ---------------------------------------------------------------------------------------------
# Training throughput


class RepTimer(keras.callbacks.Callback):
    """Images/s of each epoch (one repetition); stops fit once the budget is spent and 2 epochs are in."""

    def __init__(self, images_per_epoch: int, budget: float = math.inf, min_epochs: int = 2):
        super().__init__()
        self.images, self.budget, self.min_epochs, self.rates = images_per_epoch, budget, min_epochs, []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.rates.append(self.images / (now - self.epoch_start))
        if len(self.rates) >= self.min_epochs and now - self.start > self.budget:
            self.model.stop_training = True


Fit = Callable[[int, int, list], object]  # fit(steps per epoch, epochs, callbacks)


def fit_rates(fit: Fit, s: Settings) -> list[float]:
    """Images/s of each timed epoch of fit, after an untimed warm-up epoch (tracing, compiling)
    and a one-step epoch that sizes the repetitions to about s.rep_seconds."""
    fit(s.warmup_steps, 1, [])
    probe = RepTimer(s.batch_size)
    fit(1, 1, [probe])
    steps = min(MAX_STEPS, max(1, round(s.rep_seconds * probe.rates[0] / s.batch_size)))
    timer = RepTimer(steps * s.batch_size, s.budget)
    fit(steps, s.reps, [timer])
    return timer.rates


def random_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def compiled(precision: str, xla: bool = False, **config) -> tuple[keras.Model, Config]:
    """train.py's compiled model under the precision's Keras policy."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    config = Config(precision=precision, xla=xla, **config)
    return build_compiled(config, steps_per_epoch=1), config


def train_path(precision: str, xla: bool, s: Settings, seed: int) -> list[float]:
    """train.py's model.fit on data.make_dataset's augmented, shuffled batches."""
    model, config = compiled(precision, xla)
    x, y = random_images(MAX_STEPS * s.batch_size, seed)

    def fit(steps, epochs, callbacks):
        data = make_dataset(x[:steps * s.batch_size], y[:steps * s.batch_size], s.batch_size, training=True,
                            translate=config.translate, flip=config.flip, seed=seed)
        model.fit(data, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0)

    return fit_rates(fit, s)


def step_only(precision: str, s: Settings, seed: int) -> list[float]:
    """The same compiled model on one batch held in memory: no input pipeline at all."""
    model, _ = compiled(precision)
    x, y = random_images(s.batch_size, seed)
    batch = tf.data.Dataset.from_tensors((x.astype(np.float32), y))

    def fit(steps, epochs, callbacks):
        model.fit(batch.repeat(steps), epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0)

    return fit_rates(fit, s)


def plain_keras(s: Settings, seed: int) -> list[float]:
    """Course-style training: float32, Keras' default compile and fit on numpy arrays (no tf.data)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = random_images(MAX_STEPS * s.batch_size, seed)
    x = x.astype(np.float32)

    def fit(steps, epochs, callbacks):
        n = steps * s.batch_size
        model.fit(x[:n], y[:n], batch_size=s.batch_size, epochs=epochs, callbacks=callbacks, verbose=0)

    return fit_rates(fit, s)


# ---------------------------------------------------------------------------------------------
# A whole train.py epoch, phase by phase


class Phases(keras.callbacks.Callback):
    """Marks the phases of each epoch: training steps, validation, then (via marks placed after
    train.py's callbacks) the test evaluation and the saving."""

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
    def __init__(self, phases: Phases, phase: str):
        super().__init__()
        self.phases, self.phase = phases, phase

    def on_epoch_end(self, epoch, logs=None):
        self.phases.mark(self.phase)


def whole_epoch(precision: str, s: Settings, seed: int) -> dict:
    """train.py's epoch on a split scaled down by s.epoch_scale (whole batches, in the proportions of the
    real 45,000 / 5,000 / 10,000 images): each epoch's seconds per phase, and projected to full size."""
    model, config = compiled(precision, epochs=1 + s.reps)
    full = {"train": CIFAR_TRAIN - config.val_size, "val": config.val_size, "test": CIFAR_TEST}
    sizes = {phase: max(1, round(count * s.epoch_scale / s.batch_size)) * s.batch_size for phase, count in full.items()}
    train = make_dataset(*random_images(sizes["train"], seed), s.batch_size, training=True, seed=seed)
    val = make_dataset(*random_images(sizes["val"], seed + 1), s.batch_size)
    test = make_dataset(*random_images(sizes["test"], seed + 2), s.batch_size)
    phases = Phases()
    with tempfile.TemporaryDirectory() as run, contextlib.redirect_stdout(io.StringIO()):
        callbacks = make_callbacks(config, Path(run), test, {"epoch": 0, "history": []}, chief=True)
        # The test evaluation happens in train.py's EpochRecorder, the saving in the callbacks after it.
        recorder = next(i for i, c in enumerate(callbacks) if type(c).__name__ == "EpochRecorder") + 1
        callbacks = [phases, *callbacks[:recorder], Mark(phases, "test"), *callbacks[recorder:], Mark(phases, "save")]
        stop = RepTimer(sizes["train"], s.budget, min_epochs=3)  # the warm-up epoch and 2 timed ones
        model.fit(train, validation_data=val, epochs=1 + s.reps, callbacks=[*callbacks, stop], shuffle=False,
                  verbose=0)
    timed_epochs = phases.epochs[1:]  # the first epoch traces the training and evaluation functions
    full_phases = {p: statistics.median(e[p] / sizes[p] * full[p] for e in timed_epochs) for p in sizes}
    return {"sizes": sizes, "full_sizes": full, "epochs": timed_epochs,
            "projected_seconds": [project(e, sizes, full) for e in timed_epochs],
            "projected_phase_seconds": {**full_phases, "save": statistics.median(e["save"] for e in timed_epochs)}}


def project(epoch: dict[str, float], sizes: dict[str, int], full: dict[str, int]) -> float:
    """Seconds of a full-size epoch: each phase's seconds per image times its full image count, plus saving."""
    return sum(epoch[p] / sizes[p] * full[p] for p in sizes) + epoch["save"]


# ---------------------------------------------------------------------------------------------
# Inference and the neurons.py scan


def inference_rates(precision: str, s: Settings, seed: int) -> list[float]:
    """evaluate.py's predict (predict_on_batch over 500-image batches) under the precision's policy."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    model = build_model()
    x, _ = random_images(s.infer_images, seed)
    def infer(images: np.ndarray) -> None:
        predict(model, images, EVALUATE_BATCH)

    return [len(x) / t for t in timed(lambda: infer(x), s, lambda: infer(x[:EVALUATE_BATCH]))]


def scan_rates(s: Settings, seed: int) -> list[float]:
    """neurons.py's pass: the top 9 test images of every CONV4 channel, float32 as neurons.py loads it."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    model = build_model()
    x, _ = random_images(s.scan_images, seed)
    def scan(images: np.ndarray) -> None:
        top_activations(model, SCAN_LAYER, images, 9, SCAN_BATCH, False)

    return [len(x) / t for t in timed(lambda: scan(x), s, lambda: scan(x[:SCAN_BATCH]))]


# ---------------------------------------------------------------------------------------------
# The whole benchmark


def precisions() -> list[str]:
    """fp32 always; bf16 where the CPU has bf16 instructions or on a GPU; fp16 on a GPU only."""
    if has_gpu():
        return ["fp32", "bf16", "fp16"]
    return ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]


def guarded(row: Row, measure: Callable[[], list[float]] | None) -> Row:
    """Fill row from measure(); a failure (XLA on an unsupported op, say) becomes the row's note."""
    if measure is None:
        return row
    start = time.perf_counter()
    try:
        row.__dict__.update(stats(measure()))
    except Exception as error:  # a benchmark reports what failed and goes on with the other rows
        first = str(error).strip().splitlines()[0][:80] if str(error).strip() else ""
        row.note = f"failed: {type(error).__name__}: {first}"
    row.seconds = time.perf_counter() - start
    return row


Job = tuple[Row, Callable[[], list[float]] | None]


def training_jobs(precs: list[str], default: str, s: Settings, seed: int, epoch: dict) -> list[Job]:
    """Plain Keras, then per precision train.py's path without and with XLA and the step alone, then
    the whole epoch in the default precision (its details go into epoch)."""
    jobs: list[Job] = [(Row("training", "plain Keras (numpy fit)", "fp32", False, "images/s"),
                        lambda: plain_keras(s, seed))]
    for p in precs:
        for xla in (False, True):
            row = Row("training", "train.py path (make_dataset)", p, xla, "images/s")
            row.note = "" if s.xla or not xla else "skipped (--quick or --no-xla)"
            jobs.append((row, (lambda p=p, xla=xla: train_path(p, xla, s, seed)) if s.xla or not xla else None))
        jobs.append((Row("training", "step only (cached batch)", p, False, "images/s"),
                     lambda p=p: step_only(p, s, seed)))

    def measure_epoch() -> list[float]:
        epoch.update(whole_epoch(default, s, seed))
        return [epoch["full_sizes"]["train"] / t for t in epoch["projected_seconds"]]

    jobs.append((Row("training", "whole epoch, projected to 45k/5k/10k", default, False, "images/s"), measure_epoch))
    return jobs


def all_jobs(precs: list[str], default: str, s: Settings, seed: int, epoch: dict) -> list[Job]:
    sizes = (4096, 8192) if has_gpu() and s.matmul_sizes == Settings.matmul_sizes else s.matmul_sizes
    jobs: list[Job] = [(Row("roofline", f"matmul {n}x{n}", p, None, "GFLOP/s"),
                        lambda p=p, n=n: [r / 1e9 for r in matmul_rates(p, n, s)]) for p in precs for n in sizes]
    jobs += training_jobs(precs, default, s, seed, epoch)
    jobs += [(Row("inference", "evaluate.py predict", p, False, "images/s"), lambda p=p: inference_rates(p, s, seed))
             for p in dict.fromkeys(("fp32", default))]
    jobs.append((Row("analysis", f"neurons.py scan ({SCAN_LAYER}, {CIFAR_TEST:,} images)", "fp32", False, "seconds"),
                 lambda: [CIFAR_TEST / r for r in scan_rates(s, seed)]))
    return jobs


def run_benchmark(s: Settings, seed: int = 0, progress: bool = True) -> dict:
    """Measure everything; returns the JSON-ready result (rows, FLOPs, machine, settings, targets)."""
    started, load_before = time.time(), os.getloadavg()
    keras.mixed_precision.set_global_policy("float32")
    flops = layer_flops(build_model())
    forward = sum(flops.values())
    default, epoch = resolve_precision("auto"), {}
    jobs = all_jobs(precisions(), default, s, seed, epoch)
    rows = [guarded(row, measure) for row, measure in tqdm(jobs, desc="bench", unit="figure", disable=not progress)]
    annotate(rows, 3 * forward)
    return {"settings": dataclasses.asdict(s), "seed": seed, "default_precision": default,
            "flops_per_image": {"layers_forward": flops, "forward": forward, "training": 3 * forward},
            "rows": [dataclasses.asdict(r) for r in rows], "whole_epoch": epoch or None,
            "targets": targets(rows, default), "machine": machine_info(),
            "load_average": {"before": load_before, "after": os.getloadavg()}, "seconds": time.time() - started}


def annotate(rows: list[Row], train_flops: int) -> None:
    """MFU against the best matmul median in the row's precision; speed-up over plain Keras; a note on
    XLA rows that run at under half the speed without XLA."""
    roofline = {}
    for r in rows:
        if r.group == "roofline" and r.median:
            roofline[r.precision] = max(roofline.get(r.precision, 0.0), r.median * 1e9)
    baseline = next((r.median for r in rows if r.name.startswith("plain Keras")), None)
    for r in rows:
        if r.group == "training" and r.median:
            if roofline.get(r.precision):
                r.mfu = r.median * train_flops / roofline[r.precision]
            if baseline:
                r.vs_baseline = r.median / baseline
        without = next((o for o in rows if r.xla and o.name == r.name and o.precision == r.precision
                        and o.xla is False and o.median), None)
        if without and r.median and r.median < without.median / 2:  # XLA's CPU kernels are far slower
            r.note = f"{without.median / r.median:.0f}x slower than without XLA"


def targets(rows: list[Row], default: str) -> dict:
    """The issue's targets: >= 3x plain Keras, MFU >= 80% of the matmul, whole epoch within 10% of the step."""

    def find(name: str, precision: str) -> Row | None:
        return next((r for r in rows if r.name.startswith(name) and r.precision == precision and not r.xla), None)

    path, step = find("train.py path", default), find("step only", default)
    out = {"speedup_vs_plain_keras": {"precision": default, "value": path and path.vs_baseline, "goal": 3.0}}
    for p in ("fp32", "bf16"):
        r = find("step only", p)
        if r is not None:
            out[f"mfu_step_{p}"] = {"precision": p, "value": r.mfu, "goal": 0.8}
    whole = find("whole epoch", default)
    if whole and whole.median and step and step.median:
        out["epoch_vs_step"] = {"precision": default, "value": whole.median / step.median, "goal": 0.9}
    for t in out.values():
        t["met"] = t["value"] is not None and t["value"] >= t["goal"]
    return out


def machine_info() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "bf16_instructions": cpu_has_bf16(), "gpus": [], "tensorflow": tf.__version__, "keras": keras.__version__}
    with contextlib.suppress(OSError):
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        info["cpu"] = names[0] if names else info["cpu"]
    for gpu in tf.config.list_physical_devices("GPU"):
        info["gpus"].append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
    return info


# ---------------------------------------------------------------------------------------------
# Output


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def table(result: dict) -> str:
    head = f"{'measurement':<40}{'prec':<6}{'XLA':<5}{'median':>9}{'min':>9}{'max':>9}  {'unit':<9}{'reps':>4}" \
           f"{'MFU':>6}{'xKeras':>8}  note"
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        xla = "-" if r["xla"] is None else ("yes" if r["xla"] else "no")
        mfu = f"{r['mfu']:.0%}" if r["mfu"] is not None else "-"
        vs = f"{r['vs_baseline']:.2f}" if r["vs_baseline"] is not None else "-"
        lines.append(f"{r['name']:<40}{r['precision']:<6}{xla:<5}{fmt(r['median']):>9}{fmt(r['min']):>9}"
                     f"{fmt(r['max']):>9}  {r['unit']:<9}{r['reps']:>4}{mfu:>6}{vs:>8}  {r['note']}".rstrip())
    flops = result["flops_per_image"]
    lines += ["", f"training FLOPs per image: {flops['training'] / 1e9:.3f} G (3 x {flops['forward'] / 1e9:.3f} G "
              "forward); MFU = images/s x that / the best matmul median in the same precision"]
    epoch = result["whole_epoch"]
    if epoch:
        phases = ", ".join(f"{p} {v:.1f} s" for p, v in epoch["projected_phase_seconds"].items())
        lines.append(f"whole epoch ({result['default_precision']}) projected to {epoch['full_sizes']['train']:,}/"
                     f"{epoch['full_sizes']['val']:,}/{epoch['full_sizes']['test']:,} images: "
                     f"{statistics.median(epoch['projected_seconds']):.1f} s = {phases} (medians; measured on "
                     f"{epoch['sizes']['train']}/{epoch['sizes']['val']}/{epoch['sizes']['test']} images)")
    for name, t in result["targets"].items():
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"target {name} ({t['precision']}): {value} vs goal {t['goal']:.2f}: "
                     f"{'met' if t['met'] else 'MISSED'}")
    load = result["load_average"]
    lines.append(f"{result['machine']['cpu']}, {result['machine']['cores']} cores"
                 f"{', ' + ', '.join(result['machine']['gpus']) if result['machine']['gpus'] else ''}; "
                 f"load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after; "
                 f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="about 30 s: short repetitions, no XLA, small sets")
    p.add_argument("--out", help="folder for bench.json (default: the current folder)")
    p.add_argument("--json", help="JSON path (default: OUT/bench.json)")
    p.add_argument("--batch-size", type=int, default=100, help="training batch size (default: 100, the report's)")
    p.add_argument("--reps", type=int, help="timed repetitions per figure (default: 5; --quick 3)")
    p.add_argument("--budget", type=float, help="seconds after which a figure stops repeating (default: 20)")
    p.add_argument("--no-xla", action="store_true", help="skip the XLA rows (pathologically slow on CPUs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random images (default: 0)")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings(**QUICK) if args.quick else Settings()
    s.batch_size = args.batch_size
    s.reps = args.reps if args.reps is not None else s.reps
    s.budget = args.budget if args.budget is not None else s.budget
    s.xla = s.xla and not args.no_xla
    if s.batch_size < 1 or s.reps < 2 or s.budget <= 0:
        raise UserError("--batch-size must be at least 1, --reps at least 2 and --budget positive")
    return s


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    s = settings_from(args)
    path = Path(args.json) if args.json else Path(args.out or ".") / "bench.json"
    result = run_benchmark(s, args.seed)
    print(table(result))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main_with_errors(main)
