"""What every analysis starts from: which run's network and which images (RunImages), which of a
layer's neurons (NeuronQuery), and, loaded, the network in float32 with those images (Inputs).

The images are cut from CIFAR-10 as training cut them (data.select_split), from the copy
data.load_cifar10 picks by its one rule, given the run's own copy as the fallback. The network
is checked (layer names, neuron numbers) before the data is read and long before the images
are fed through it, so a mistyped layer or neuron fails in seconds.

RunImages and NeuronQuery check their numbers when they are made, so a bad count fails before
any network is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from analysis import AnalysisError
from data import load_cifar10, select_split
from models import Config
from runs.weights import load_network


def check_counts(*counts: tuple[str, int]) -> None:
    """Each (what, count) pair (k, neurons to choose, batch size...) must be at least 1; the
    first one below names itself in the error."""
    for what, value in counts:
        if value < 1:
            raise AnalysisError(f"{what} must be at least 1, not {value}")


@dataclass(frozen=True)
class RunImages:
    """What an analysis reads: run's `which` weights ("best" or "last") and the first `images`
    images (None: all) of split ("test", "val" or "train"), from data_dir (None: data's rule),
    fed through the network batch_size at a time."""

    run: str | Path
    which: str = "best"
    data_dir: str | None = None
    split: str = "test"
    images: int | None = None
    batch_size: int = 250

    def __post_init__(self):
        if self.images is not None:
            check_counts(("the number of images", self.images))
        check_counts(("the batch size", self.batch_size))


@dataclass(frozen=True)
class NeuronQuery:
    """Which neurons (channels) of a conv or pool layer to show: those given, in their order,
    else the `count` purest by their top-k images (analysis.selection). Immutable: the neurons
    given are kept as a tuple."""

    layer: str = "CONV4"
    neurons: tuple[int, ...] | None = None
    count: int = 10
    k: int = 9

    def __post_init__(self):
        if self.neurons is not None:
            if not len(self.neurons):
                raise AnalysisError("no neurons given: name at least one channel, or None to "
                                    "choose them")
            object.__setattr__(self, "neurons", tuple(int(n) for n in self.neurons))
        check_counts(("k", self.k), ("the number of neurons", self.count))


@dataclass
class Inputs:
    """A run's float32 network with its config, and the images (raw pixels) and labels to probe."""

    model: keras.Model
    config: Config
    images: np.ndarray
    labels: np.ndarray


def load_images(config: Config, *, data_dir: str | None = None, split: str = "test",
                images: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `images` images (all if None) of a split and their labels, for a run with
    config (its CIFAR-10 copy, validation size and --limit: "train" is what the run trained on)."""
    if images is not None:
        check_counts(("the number of images", images))
    data = load_cifar10(data_dir, trained_on=config.data_dir)
    x, y = select_split(data, split, config.val_size, config.limit)
    return x[:images], y[:images]


def load_inputs(run_images: RunImages,
                check: Callable[[keras.Model], object] | None = None) -> Inputs:
    """The run's network with its weights (float32, whatever precision it trained in) and the
    images run_images names; check(model), if given, runs before the data is read."""
    model, config, _ = load_network(run_images.run, run_images.which)
    if check is not None:
        check(model)
    x, y = load_images(config, data_dir=run_images.data_dir, split=run_images.split,
                       images=run_images.images)
    return Inputs(model, config, x, y)
