"""Which neurons of a layer to show, and why each was chosen: the one rule the neuron figures
and the gradient-map figures share.

A neuron is a channel of a conv or pool layer. It is picked by hand, or automatically by class
purity (analysis.activations.select_interesting: the share of its top-k images that belong to
one class, at most three per class). The reason is written beside the figures, so that a
reader can check the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from analysis import AnalysisError
from analysis.activations import (
    TopActivations,
    class_purity,
    select_interesting,
    spatial_layer,
    top_activations,
)
from analysis.inputs import Inputs, NeuronQuery, RunImages, load_inputs
from data import CLASS_NAMES

BY_HAND = "picked by hand"


@dataclass(frozen=True)
class Choice:
    """A chosen neuron (a channel of the layer) and the one-line reason it was chosen."""

    channel: int
    reason: str


def check_neurons(model: keras.Model, layer: str, neurons: list[int] | None) -> int:
    """The number of channels of model's conv or pool layer, after checking that the layer
    exists and that every neuron given is one of its channels: before any image is fed through
    the network, so that a mistyped number fails at once."""
    channels = int(spatial_layer(model, layer).output.shape[-1])
    if neurons is not None and not neurons:
        raise AnalysisError("no neurons given: name at least one channel, or None to choose them")
    bad = [n for n in neurons or [] if not 0 <= n < channels]
    if bad:
        raise AnalysisError(f"layer {layer} has channels 0 to {channels - 1}; "
                            f"no {', '.join(map(str, bad))}")
    return channels


def choose_neurons(top: TopActivations, labels: np.ndarray, *, neurons: list[int] | None = None,
                   count: int = 10) -> list[Choice]:
    """The neurons given, in their order; else the `count` purest (see the module docstring).

    Each comes with its reason: "picked by hand", or how many of its top-k images are of its
    dominant class and its mean top-k activation.
    """
    if neurons is not None:
        return [Choice(int(n), BY_HAND) for n in neurons]
    if count < 1:
        raise AnalysisError(f"the number of neurons to choose must be at least 1, not {count}")
    channels, k = top.values.shape
    rows = class_purity(top, labels)
    return [Choice(c, f"{rows[c]['count']}/{k} of its top images are "
                      f"{CLASS_NAMES[rows[c]['dominant']]}, mean top-{k} activation "
                      f"{rows[c]['mean_activation']:.2f}")
            for c in select_interesting(top, labels, min(count, channels))]


def describe(layer: str, choices: list[Choice]) -> list[str]:
    """One line per chosen neuron, as the scripts print them."""
    return [f"{layer} neuron {c.channel}: {c.reason}" for c in choices]


@dataclass
class Probe:
    """A run's inputs, every channel's top-k images among them, and the neurons chosen."""

    inputs: Inputs
    top: TopActivations
    chosen: list[Choice]


def probe_neurons(run_images: RunImages, query: NeuronQuery, *, progress: bool = False,
                  log: Callable[[str], None] | None = None) -> Probe:
    """Load the run's network and the images run_images names (the query's neurons checked
    first), find every channel's top-k images and choose the neurons; log, where given, takes
    why each was chosen, a line each."""
    inputs = load_inputs(run_images, check=lambda model: check_neurons(model, query.layer,
                                                                       query.neurons))
    top = top_activations(inputs.model, query.layer, inputs.images, k=query.k,
                          batch_size=run_images.batch_size, progress=progress)
    chosen = choose_neurons(top, inputs.labels, neurons=query.neurons, count=query.count)
    if log:
        for line in describe(query.layer, chosen):
            log(line)
    return Probe(inputs, top, chosen)
