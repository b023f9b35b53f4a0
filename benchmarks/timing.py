"""How a figure is measured: timed repetitions after a warm-up, within a budget, summarised as
median, min and max; a failing measurement becomes a note instead of stopping the benchmark."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable

import keras

CIFAR_TEST = 10_000
FULL_SIZES = {"train": 45_000, "val": 5_000, "test": 10_000}  # train.py's split of CIFAR-10
MAX_STEPS = 200  # most training steps in one repetition of the step-only figure


@dataclasses.dataclass
class Settings:
    """How long and how often to measure, and the epoch's size; QUICK shrinks the in-process
    figures (matmul, step, inference, scan), never the epochs."""

    reps: int = 3  # repetitions of every figure (in-process ones: fewer past the budget, >= 2)
    rep_seconds: float = 2.0  # aimed length of one step-only repetition
    budget: float = 20.0  # seconds of timed repetitions after which an in-process figure stops
    warmup_steps: int = 2
    matmul_sizes: tuple[int, ...] = (1024, 2048, 4096)
    infer_images: int = 2000
    scan_images: int = CIFAR_TEST
    train_images: int | None = None  # the epoch's training images (None: all 45,000)
    val_images: int = FULL_SIZES["val"]


QUICK = {"rep_seconds": 0.3, "budget": 2.0, "warmup_steps": 1, "matmul_sizes": (1024,),
         "infer_images": 250, "scan_images": 250}


@dataclasses.dataclass
class Row:
    """One line of the table: a figure's median, min and max over its repetitions (samples, in
    the order they were measured)."""

    group: str
    name: str
    precision: str
    unit: str
    median: float | None = None
    min: float | None = None
    max: float | None = None
    reps: int = 0
    samples: list[float] = dataclasses.field(default_factory=list)
    mfu: float | None = None
    note: str = ""
    seconds: float = 0.0  # wall time of the whole measurement, warm-up included


def stats(samples: list[float]) -> dict:
    """The figures a Row keeps of its repetitions."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "reps": len(samples), "samples": list(samples)}


def timed(run: Callable[[], None], s: Settings,
          warm_up: Callable[[], None] | None = None) -> list[float]:
    """Seconds of each repetition of run(), after warm_up() (default: run()); stops early past
    the budget, but never before 2 repetitions (or s.reps, if fewer)."""
    (warm_up or run)()
    seconds, start = [], time.perf_counter()
    while len(seconds) < s.reps and (len(seconds) < 2 or time.perf_counter() - start < s.budget):
        t = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t)
    return seconds


class RepTimer(keras.callbacks.Callback):
    """Images/s of each epoch (one repetition); stops fit once the budget is spent and two
    epochs are in."""

    def __init__(self, images_per_epoch: int, budget: float = math.inf):
        super().__init__()
        self.images, self.budget = images_per_epoch, budget
        self.rates: list[float] = []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.rates.append(self.images / (now - self.epoch_start))
        if len(self.rates) >= 2 and now - self.start > self.budget:
            self.model.stop_training = True


Fit = Callable[[int, int, list], object]  # fit(steps per epoch, epochs, callbacks)


def fit_rates(fit: Fit, batch_size: int, s: Settings) -> list[float]:
    """Images/s of each timed epoch of fit, after an untimed warm-up epoch (tracing) and a
    one-step epoch that sizes the repetitions to about s.rep_seconds."""
    fit(s.warmup_steps, 1, [])
    probe = RepTimer(batch_size)
    fit(1, 1, [probe])
    steps = min(MAX_STEPS, max(1, round(s.rep_seconds * probe.rates[0] / batch_size)))
    timer = RepTimer(steps * batch_size, s.budget)
    fit(steps, s.reps, [timer])
    return timer.rates


def guarded(row: Row, measure: Callable[[], list[float]] | None) -> Row:
    """The row with its figures, or with a note where measuring failed; rows without a measure
    (skipped) come back as they are."""
    if measure is None:
        return row
    start = time.perf_counter()
    try:
        row.__dict__.update(stats(measure()))
    except Exception as error:  # a benchmark reports what failed and goes on with the other rows
        row.note = failure_note(error)
    row.seconds = time.perf_counter() - start
    return row


def failure_note(error: Exception) -> str:
    """An error in one short line: its type and the first line of its message."""
    first = str(error).strip().splitlines()[0][:80] if str(error).strip() else ""
    return f"failed: {type(error).__name__}: {first}"
