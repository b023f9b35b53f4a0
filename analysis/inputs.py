"""What every analysis starts from: a run's network in float32 and the first images of a split.

The images are cut from CIFAR-10 as training cut them (data.select_split), from the copy
data.load_cifar10 picks by its one rule, given the run's own copy as the fallback. The network
is checked (layer names, neuron numbers) before the data is read and long before the images
are fed through it, so a mistyped layer or neuron fails in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

import runs
from analysis import AnalysisError
from data import load_cifar10, select_split
from models import Config


@dataclass
class Inputs:
    """A run's float32 network with its config, and the images (raw pixels) and labels to probe."""

    model: keras.Model
    config: Config
    images: np.ndarray
    labels: np.ndarray


def check_counts(*counts: tuple[str, int]) -> None:
    """Each (what, count) pair (k, neurons to choose, batch size...) must be at least 1; the
    first one below names itself in the error."""
    for what, value in counts:
        if value < 1:
            raise AnalysisError(f"{what} must be at least 1, not {value}")


def load_images(config: Config, *, data_dir: str | None = None, split: str = "test",
                images: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `images` images (all if None) of a split and their labels, for a run with
    config (its CIFAR-10 copy, validation size and --limit: "train" is what the run trained on)."""
    if images is not None and images < 1:
        raise AnalysisError(f"the number of images must be at least 1, not {images}")
    data = load_cifar10(data_dir, trained_on=config.data_dir)
    x, y = select_split(data, split, config.val_size, config.limit)
    return x[:images], y[:images]


def load_inputs(run: str | Path, *, which: str = "best", data_dir: str | None = None,
                split: str = "test", images: int | None = None,
                check: Callable[[keras.Model], object] | None = None) -> Inputs:
    """run's network with its `which` weights (float32, whatever precision it trained in) and
    the first `images` images of split; check(model), if given, runs before the data is read."""
    model, config, _ = runs.load_network(run, which)
    if check is not None:
        check(model)
    x, y = load_images(config, data_dir=data_dir, split=split, images=images)
    return Inputs(model, config, x, y)
