"""A run's length from a time budget: train.py --budget-minutes M measures this machine's speed on
a few training steps and evaluation batches of a throwaway copy of the run's network, then sets
the number of epochs so that training, with each epoch's validation and test evaluation, ends
within M minutes here.

The recipe's schedule is stated in epochs (the work); the budget only picks how many epochs this
machine affords, once, before the run's first step. The resolved count is saved in config.json
as the run's epochs, so a --resume continues the same schedule without measuring again.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from models.config import Config, ConfigError

# Timed training steps after the untimed ones that trace and warm the step up.
PROBE_STEPS, WARM_STEPS = 20, 3
# Epochs are counted against the budget with this much to spare: an epoch's time varies by a few
# percent (the input pipeline, the checkpoint commit), and a budget is a promise.
MARGIN = 1.05


@dataclasses.dataclass(frozen=True)
class EpochCost:
    """What one epoch costs on this machine, as measured: its training steps, its evaluation
    (validation and test), its commit (checkpoint and weights files) and the one-off start-up
    (tracing the step) the run pays again."""

    step_seconds: float
    steps: int
    eval_seconds: float
    commit_seconds: float
    start_seconds: float

    @property
    def seconds(self) -> float:
        return self.steps * self.step_seconds + self.eval_seconds + self.commit_seconds


def measure(model: keras.Model, x: np.ndarray, y: np.ndarray, *, batch_size: int,
            steps: int, eval_images: int, eval_batch_size: int, scratch: Path) -> EpochCost:
    """Time training steps, evaluation batches and an epoch's files of model (compiled as the
    run's, and thrown away after: the steps change its weights) on the run's first training
    images; the files are written into a temporary folder in scratch, the run's disk."""
    batches = [(x[i:i + batch_size], y[i:i + batch_size])
               for i in range(0, (WARM_STEPS + PROBE_STEPS) * batch_size, batch_size)]
    batches = [batch for batch in batches if len(batch[0]) == batch_size] or [
        (x[:batch_size], y[:batch_size])]
    start = time.perf_counter()
    for images, labels in batches[:WARM_STEPS]:
        model.train_on_batch(images, labels)
    traced = time.perf_counter()
    timed = [batches[i % len(batches)] for i in range(WARM_STEPS, WARM_STEPS + PROBE_STEPS)]
    for images, labels in timed:
        model.train_on_batch(images, labels)
    step_seconds = (time.perf_counter() - traced) / PROBE_STEPS
    eval_x, eval_y = x[:eval_batch_size], y[:eval_batch_size]
    model.test_on_batch(eval_x, eval_y)
    evaluated = time.perf_counter()
    model.test_on_batch(eval_x, eval_y)
    eval_seconds = (time.perf_counter() - evaluated) * eval_images / len(eval_x)
    return EpochCost(step_seconds, steps, eval_seconds, _commit_seconds(model, scratch),
                     start_seconds=traced - start)


def _commit_seconds(model: keras.Model, scratch: Path) -> float:
    """The time an epoch's commit takes: the checkpoint (network and optimizer) and two weights
    files (the last and, at a better epoch, the best)."""
    with tempfile.TemporaryDirectory(prefix=".budget-", dir=scratch) as folder:
        began = time.perf_counter()
        model.save(Path(folder) / "checkpoint.keras")
        for which in ("last", "best"):
            model.save_weights(Path(folder) / f"{which}.weights.h5")
        return time.perf_counter() - began


def epochs_within(minutes: float, cost: EpochCost, *, spent: float) -> int:
    """How many whole epochs fit the budget after the seconds already spent (data, probe), the
    run's own start-up and the margin; ConfigError where not even one does."""
    left = minutes * 60 - spent - cost.start_seconds
    epochs = math.floor(left / (cost.seconds * MARGIN))
    if epochs < 1:
        raise ConfigError(f"{minutes:g} minutes here fit no epoch: one takes "
                          f"{cost.seconds:.0f} s on this machine")
    return epochs


def budget_line(minutes: float, epochs: int, cost: EpochCost) -> str:
    """The run's first line: "20 minutes here = 13 epochs of 88 s"."""
    return (f"{minutes:g} minutes here = {epochs} epoch{'s' if epochs != 1 else ''} of "
            f"{cost.seconds:.0f} s")


def budgeted(config: Config, build: Callable[[], keras.Model], x: np.ndarray, y: np.ndarray, *,
             steps: int, eval_images: int, eval_batch_size: int, scratch: Path,
             started: float) -> tuple[Config, str]:
    """The config with the epochs its budget_minutes afford here, and the line that says so;
    build makes the run's compiled network, started is the perf_counter() at which the run began
    (its data loading counts against the budget)."""
    minutes = config.budget_minutes
    cost = measure(build(), x, y, batch_size=config.batch_size, steps=steps,
                   eval_images=eval_images, eval_batch_size=eval_batch_size, scratch=scratch)
    epochs = epochs_within(minutes, cost, spent=time.perf_counter() - started)
    line = budget_line(minutes, epochs, cost)
    try:
        return dataclasses.replace(config, epochs=epochs), line
    except ConfigError as error:  # a warm-up as long as the epochs the budget affords
        raise ConfigError(f"{line}, too few: {error}") from None
