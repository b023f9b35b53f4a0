"""How a figure is measured: timed repetitions after a warm-up, within a budget, summarised as
median, min and max; a failing measurement becomes a note instead of stopping the benchmark."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable

import keras

CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000
MAX_STEPS = 200  # most training steps in one repetition


@dataclasses.dataclass
class Settings:
    """How long and how often to measure; QUICK shrinks every one of them."""

    batch_size: int = 100
    reps: int = 5  # timed repetitions per figure (fewer once the budget runs out, never under 2)
    rep_seconds: float = 2.0  # aimed length of one repetition
    budget: float = 20.0  # seconds of timed repetitions after which a measurement stops
    warmup_steps: int = 2
    xla: bool = True
    matmul_sizes: tuple[int, ...] = (1024, 2048, 4096)
    epoch_scale: float = 0.1  # the whole-epoch figure runs training's epoch on this share
    infer_images: int = 2000
    scan_images: int = CIFAR_TEST


QUICK = {"reps": 3, "rep_seconds": 0.3, "budget": 2.0, "warmup_steps": 1, "xla": False,
         "matmul_sizes": (1024,), "epoch_scale": 0.02, "infer_images": 500, "scan_images": 500}


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
    """The figures a Row keeps of its repetitions."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "reps": len(samples)}


def timed(run: Callable[[], None], s: Settings,
          warm_up: Callable[[], None] | None = None) -> list[float]:
    """Seconds of each repetition of run(), after warm_up() (default: run()); stops early past
    the budget, but never before 2 repetitions."""
    (warm_up or run)()
    seconds, start = [], time.perf_counter()
    while len(seconds) < s.reps and (len(seconds) < 2 or time.perf_counter() - start < s.budget):
        t = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t)
    return seconds


class RepTimer(keras.callbacks.Callback):
    """Images/s of each epoch (one repetition); stops fit once the budget is spent and
    min_epochs are in."""

    def __init__(self, images_per_epoch: int, budget: float = math.inf, min_epochs: int = 2):
        super().__init__()
        self.images, self.budget, self.min_epochs = images_per_epoch, budget, min_epochs
        self.rates: list[float] = []

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
