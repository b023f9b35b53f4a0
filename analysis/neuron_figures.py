"""Interesting neurons of a conv layer, traced back to the image patches that excite them (the
report's Task VII, after Zeiler & Fergus, "Visualizing and Understanding Convolutional
Networks", ECCV 2014).

The images go through the network once; for every channel of the layer the k images that excite
it most are kept, with the unit where the maximum is and the input patch that unit sees, its
receptive field computed from the network's own layers (drawn with grey where it reaches past
the image border). The neurons shown are chosen by analysis.selection (by hand, or by class
purity). For the layer L, neuron_figures writes:

  neurons_L.png          a row per chosen neuron: its top-k patches with class and activation
  neurons_L_classes.png  a row per CIFAR-10 class: the patches of the neuron most selective for it
  neurons_L.json, .csv   every channel's purity, dominant class and top images (to check the
                         figures), and the chosen neurons with the reason for each
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.activations import ChannelMaxima, TopActivations, channel_maxima, class_purity, top_k
from analysis.figures import DPI, Cell, grid_figure, save_figure
from analysis.inputs import NeuronQuery, RunImages, load_inputs
from analysis.receptive_field import ReceptiveField, crop_field, field_box, receptive_field
from analysis.selection import check_neurons, choose_neurons, describe
from data import CLASS_NAMES
from runs import atomic_write_text

PAD = 200  # light grey: the part of a field beyond the image border (the network's zero padding)
CLASS_COLUMNS = 10  # the report's 10x10 grid
CELL = 96  # about this many pixels per patch, a whole number per image pixel

# A row of patches: the label left of it, the patches, a caption under each.
Row = tuple[str, list[np.ndarray], list[str]]


def neuron_patches(images: np.ndarray, top: TopActivations, channel: int,
                   rf: ReceptiveField) -> list[np.ndarray]:
    """The input patches seen by the maximal unit of channel in each of its top images."""
    return [crop_field(images[i], field_box(rf, *pos), fill=PAD)
            for i, pos in zip(top.images[channel], top.positions[channel], strict=True)]


def class_neurons(top: TopActivations, rows: list[dict],
                  labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Per class, the distinct channel whose top-k images are most often of that class (ties:
    the stronger channel; weak channels last): (class, channel, how many of its top-k are of it)."""
    classes = np.asarray(labels)[top.images]  # (C, k)
    used, picks = set(), []
    for cls in range(len(CLASS_NAMES)):
        counts = (classes == cls).sum(axis=1)
        order = sorted(range(len(counts)),
                       key=lambda c: (rows[c]["weak"], -counts[c], -rows[c]["mean_activation"], c))
        channel = next(c for c in order if c not in used)
        used.add(channel)
        picks.append((cls, channel, int(counts[channel])))
    return picks


def plot_rows(rows: list[Row], title: str, path: Path) -> Path:
    """A grid of patches, one row per neuron: a label on the left, a caption under each patch."""
    size = max(patch.shape[0] for _, patches, _ in rows for patch in patches)
    grid = [[Cell(patch, caption=caption) for patch, caption in zip(patches, captions, strict=True)]
            for _, patches, captions in rows]
    fig = grid_figure(grid, title=title, labels=[label for label, _, _ in rows],
                      cell=size * max(1, round(CELL / size)))
    return save_figure(fig, path, dpi=DPI)


def class_rows(x: np.ndarray, y: np.ndarray, maxima: ChannelMaxima,
               picks: list[tuple[int, int, int]], rf: ReceptiveField, k: int) -> list[Row]:
    """A row per class: the picked neuron's most exciting patches among that class's images."""
    rows = []
    for cls, channel, n in picks:
        members = np.flatnonzero(y == cls)
        if len(members) == 0:
            continue
        within = top_k(maxima, CLASS_COLUMNS, subset=members)
        rows.append((f"{CLASS_NAMES[cls]}\n#{channel} ({n}/{k})",
                     neuron_patches(x, within, channel, rf),
                     [f"{v:.2f}" for v in within.values[channel]]))
    return rows


def channel_rows(top: TopActivations, labels: np.ndarray, rf: ReceptiveField) -> list[dict]:
    """Every channel's purity, dominant class and top images, as written to the JSON file."""
    rows = class_purity(top, labels)
    for row in rows:
        channel = row["channel"]
        row["dominant_name"] = CLASS_NAMES[row["dominant"]]
        row["top"] = [{"image": int(i), "label": int(labels[i]), "class": CLASS_NAMES[labels[i]],
                       "activation": round(float(v), 5), "unit": [int(r), int(c)],
                       "box": list(field_box(rf, int(r), int(c)))}
                      for i, v, (r, c) in zip(top.images[channel], top.values[channel],
                                              top.positions[channel], strict=True)]
    return rows


def write_tables(out: Path, layer: str, summary: dict, rows: list[dict]) -> list[Path]:
    """neurons_L.json (the summary and every channel's row) and neurons_L.csv (one line per
    channel, for a spreadsheet)."""
    json_path, csv_path = out / f"neurons_{layer}.json", out / f"neurons_{layer}.csv"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps({**summary, "channels": rows}, indent=1) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["channel", "purity", "dominant_class", "count", "mean_activation", "weak",
                     "dead", "top_images"])
    for r in rows:
        top_images = " ".join(str(t["image"]) for t in r["top"])
        writer.writerow([r["channel"], f"{r['purity']:.4f}", r["dominant_name"], r["count"],
                         f"{r['mean_activation']:.5f}", int(r["weak"]), int(r["dead"]),
                         top_images])
    atomic_write_text(csv_path, buffer.getvalue())
    return [json_path, csv_path]


def neuron_figures(run_images: RunImages, out: Path, query: NeuronQuery = NeuronQuery(), *,
                   progress: bool = False,
                   log: Callable[[str], None] | None = None) -> list[Path]:
    """Both figures and the tables of the query's layer, written into out; returns the paths.

    The top-k images of every channel are searched among the images run_images names; the
    neurons shown are the query's. log, where given, takes what it found: how many channels are
    dead or weak, and why each neuron was chosen, a line each.
    """
    out, layer = Path(out), query.layer
    inputs = load_inputs(run_images, check=lambda model: check_neurons(model, layer, query.neurons))
    x, y = inputs.images, inputs.labels
    maxima = channel_maxima(inputs.model, layer, x, run_images.batch_size, progress)
    top, rf = top_k(maxima, query.k), receptive_field(inputs.model, layer)
    rows = channel_rows(top, y, rf)
    chosen = choose_neurons(top, y, neurons=query.neurons, count=query.count)
    if log:
        log(f"{layer}: {sum(r['dead'] for r in rows)} of {len(rows)} channels never fire on "
            f"these {len(x)} images, {sum(r['weak'] for r in rows)} are weak (ranked last)")
        for line in describe(layer, chosen):
            log(line)
    k = top.values.shape[1]  # the query's, or fewer where there are fewer images
    where = f"patch = the unit's {rf.size}x{rf.size} field, grey = beyond the image border"
    neuron_rows = [(f"#{c.channel}\n{rows[c.channel]['count']}/{k} "
                    f"{rows[c.channel]['dominant_name']}",
                    neuron_patches(x, top, c.channel, rf),
                    [f"{t['class']} {t['activation']:.2f}" for t in rows[c.channel]["top"]])
                   for c in chosen]
    how = "picked by hand" if query.neurons is not None else "chosen by class purity"
    paths = [plot_rows(neuron_rows, f"{layer} neurons {how}: top {k} of {len(x)} "
                                    f"{run_images.split} images\n{where}",
                       out / f"neurons_{layer}.png")]
    picks = class_neurons(top, rows, y)
    paths.append(plot_rows(class_rows(x, y, maxima, picks, rf, k),
                           f"{layer}: per class, the neuron most selective for it (the class's "
                           f"share of its top {k}) and its top {CLASS_COLUMNS} patches in that "
                           f"class\n{where}", out / f"neurons_{layer}_classes.png"))
    summary = {"run": str(run_images.run), "weights": run_images.which, "layer": layer,
               "split": run_images.split, "images": len(x), "k": k, "receptive_field": vars(rf),
               "selected": [{"channel": c.channel, "reason": c.reason} for c in chosen],
               "class_neurons": [{"class": CLASS_NAMES[cls], "channel": ch, "count": n}
                                 for cls, ch, n in picks]}
    return paths + write_tables(out, layer, summary, rows)
