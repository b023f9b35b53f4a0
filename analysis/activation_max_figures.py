"""What a unit wants, beside what excites it in the data: activation maximization
(analysis.activation_max) of chosen channels of a conv or pool layer, next to each channel's
top-k real patches (analysis.neuron_figures).

The channels are chosen by analysis.selection (by hand, or the purest by class among their top-k
images), from the top-k images of every channel over the first images of a split. For the layer
L, activation_max_figures writes:

  actmax_L.png    a row per channel: its synthesized image (the whole input; under it the
                  channel's mean and largest unit activation in it), then the patches its maximal
                  units see in its top-k real images (class and activation under each)
  actmax_L.npz    layer, objective, seed, steps, channels (n,), images (n, H, W, 3) uint8, trace
                  and activation (n, steps + 1; the objective before the ReLU and the activation
                  after it, at the start and after each step), top_images and top_activations
                  (n, k: the real images' indices into the split and their maxima)
  actmax_L.json   per channel: why it was chosen, its dominant class, the synthesized image's
                  mean and largest activation, and the top real activations; with the settings
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.activation_max import Ascent, maximize
from analysis.activations import class_purity, layer_model
from analysis.figures import DPI, Cell, grid_figure, save_figure
from analysis.inputs import NeuronQuery, RunImages
from analysis.neuron_figures import CELL, neuron_patches
from analysis.receptive_field import receptive_field
from analysis.selection import probe_neurons
from data import CLASS_NAMES
from runs import atomic_save, atomic_write_text


def activation_max_figures(run_images: RunImages, out: Path, query: NeuronQuery = NeuronQuery(), *,
                           ascent: Ascent = Ascent(), progress: bool = False,
                           log: Callable[[str], None] | None = None) -> list[Path]:
    """Synthesized images of the query's channels beside their top-k patches among the images
    run_images names, written into out; returns the paths.

    ascent holds analysis.activation_max.maximize's settings. log, where given, takes why each
    channel was chosen, a line each.
    """
    probe = probe_neurons(run_images, query, progress=progress, log=log)
    model, x, y = probe.inputs.model, probe.inputs.images, probe.inputs.labels
    top, chosen, out, layer = probe.top, probe.chosen, Path(out), query.layer
    channels = np.array([c.channel for c in chosen])
    vis = maximize(model, layer, channels, ascent, progress=progress)
    synthesized = np.round(vis.images).astype(np.uint8)
    maps = np.asarray(layer_model(model, layer).predict_on_batch(synthesized.astype(np.float32)))
    own = maps[np.arange(len(channels)), ..., channels]  # (n, h, w): each channel's own map
    means, peaks = own.mean(axis=(1, 2)), own.max(axis=(1, 2))
    rows, rf = class_purity(top, y), receptive_field(model, layer)
    k = top.values.shape[1]

    npz = out / f"actmax_{layer}.npz"
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(npz, lambda tmp: np.savez_compressed(
        tmp, layer=layer, objective=ascent.objective, seed=ascent.seed, steps=ascent.steps,
        channels=channels,
        images=synthesized, trace=vis.trace, activation=vis.activation,
        top_images=top.images[channels], top_activations=top.values[channels]))
    record = {"run": str(run_images.run), "weights": run_images.which, "layer": layer,
              "split": run_images.split, "images": len(x), "k": k, "objective": ascent.objective,
              "steps": ascent.steps, "jitter": ascent.jitter,
              "learning_rate": ascent.learning_rate, "seed": ascent.seed,
              "channels": [{"channel": c.channel, "reason": c.reason,
                            "dominant": CLASS_NAMES[rows[c.channel]["dominant"]],
                            "synthesized_mean": round(float(means[i]), 5),
                            "synthesized_max": round(float(peaks[i]), 5),
                            "top_activations": [round(float(v), 5)
                                                for v in top.values[c.channel]]}
                           for i, c in enumerate(chosen)]}
    json_path = out / f"actmax_{layer}.json"
    atomic_write_text(json_path, json.dumps(record, indent=1) + "\n")

    grid, labels = [], []
    for i, c in enumerate(chosen):
        row = rows[c.channel]
        patches = neuron_patches(x, top, c.channel, rf)
        grid.append([Cell(synthesized[i], "synthesized" if not grid else "",
                          f"{means[i]:.2f} / {peaks[i]:.2f}"),
                     *(Cell(patch, f"top {j + 1}" if not grid else "",
                            f"{CLASS_NAMES[y[image]]} {value:.2f}")
                       for j, (patch, image, value) in enumerate(
                           zip(patches, top.images[c.channel], top.values[c.channel],
                               strict=True)))])
        labels.append(f"#{c.channel}\n{row['count']}/{k} {CLASS_NAMES[row['dominant']]}")
    unit = "centre unit" if ascent.objective == "centre" else "mean over the map"
    title = (f"{layer}: what each channel wants (activation maximization of its {unit}, "
             f"{ascent.steps} steps, jitter {ascent.jitter}, seed {ascent.seed}) beside its top "
             f"{k} patches among {len(x)} {run_images.split} images\nunder the synthesized image: "
             f"the channel's mean / largest activation in it; under each patch: the image's "
             f"class and the channel's largest activation in it")
    size = max(p.shape[0] for p in patches)
    figure = save_figure(grid_figure(grid, title=title, labels=labels,
                                     cell=size * max(1, round(CELL / size))),
                         out / f"actmax_{layer}.png", dpi=DPI)
    return [figure, npz, json_path]
