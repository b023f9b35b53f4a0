"""Interesting neurons of a conv layer, traced back to the image patches that excite them.

The report's Task VII, after Zeiler & Fergus, "Visualizing and Understanding Convolutional
Networks" (ECCV 2014): the images go through the network once; for every channel of --layer
(default CONV4, the last conv layer) the k images that excite it most are kept, with the unit
where the maximum is and the input patch that unit sees, its receptive field computed from the
network's own layers (26x26 pixels for CONV4, drawn with grey where it reaches past the image
border). Ten neurons are chosen automatically by class purity (the share of their top-k images
that belong to one class, ties broken by activation, at most three per class), or by hand with
--neurons.

    python neurons.py --run report --data-dir ../shared/data/cifar-10-jpeg
    python neurons.py --run report --layer CONV3 --neurons 3,17,40 --k 9

Writes into the run's figures/ (or --out), for the layer L:
  neurons_L.png          a row per chosen neuron: its top-k patches with class and activation
  neurons_L_classes.png  a row per CIFAR-10 class: the patches of the neuron most selective for it
  neurons_L.json, .csv   every channel's purity, dominant class and top images (to check the figures)
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from analysis.activations import (
    ChannelMaxima,
    TopActivations,
    channel_maxima,
    class_purity,
    load_split,
    parse_channels,
    select_interesting,
    top_k,
)
from analysis.receptive_field import ReceptiveField, crop_field, field_box, receptive_field
from data import CLASS_NAMES, SPLITS
from models.cli import UserError, main_with_errors, run_folder
from models.runs import load_run

PAD = 200  # light grey: the part of a field beyond the image border (the network's zero padding)
CLASS_COLUMNS = 10  # the report's 10x10 grid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run name under logs/ or a path to a run folder")
    p.add_argument("--which", choices=("best", "last"), default="best", help="a run's best or last weights (best)")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz (default: the run's, else $CIFAR10_DIR)")
    p.add_argument("--split", choices=SPLITS, default="test", help="images to probe with (default: test)")
    p.add_argument("--images", type=int, help="use the first N images of the split (default: all)")
    p.add_argument("--layer", default="CONV4", help="conv or pool layer (default: CONV4)")
    p.add_argument("-k", "--k", type=int, default=9, help="top images per neuron (default: 9)")
    p.add_argument("--neurons", help="channels to show, e.g. 3,17,40 (default: the purest)")
    p.add_argument("--count", type=int, default=10, help="how many neurons to choose automatically (10)")
    p.add_argument("--batch-size", type=int, default=250, help="images per forward pass (default: 250)")
    p.add_argument("--out", help="folder for the figures and tables (default: the run's figures/)")
    return p.parse_args(argv)


def neuron_patches(images: np.ndarray, top: TopActivations, channel: int, rf: ReceptiveField) -> list[np.ndarray]:
    """The input patches seen by the maximal unit of channel in each of its top images."""
    return [crop_field(images[i], field_box(rf, *pos), fill=PAD)
            for i, pos in zip(top.images[channel], top.positions[channel], strict=True)]


def class_neurons(top: TopActivations, rows: list[dict], labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Per class, the distinct channel whose top-k images are most often of that class (ties:
    the stronger channel; weak channels last): (class, channel, how many of its top-k are of it)."""
    classes = np.asarray(labels)[top.images]  # (C, k)
    used, picks = set(), []
    for cls in range(len(CLASS_NAMES)):
        counts = (classes == cls).sum(axis=1)
        order = sorted(range(len(counts)), key=lambda c: (rows[c]["weak"], -counts[c], -rows[c]["mean_activation"], c))
        channel = next(c for c in order if c not in used)
        used.add(channel)
        picks.append((cls, channel, int(counts[channel])))
    return picks


def plot_rows(rows: list[tuple[str, list[np.ndarray], list[str]]], title: str, path: Path) -> Path:
    """A grid of patches, one row per neuron: a label on the left, a caption under each patch."""
    columns = max(len(patches) for _, patches, _ in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.05 * columns + 1.6, 1.25 * len(rows) + 0.9),
                             squeeze=False)
    for (label, patches, captions), row in zip(rows, axes, strict=True):
        for j, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(patches):
                ax.axis("off")
                continue
            ax.imshow(patches[j], interpolation="nearest")
            ax.set_xlabel(captions[j], fontsize=7, labelpad=2)
        row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8, labelpad=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def channel_rows(top: TopActivations, labels: np.ndarray, rf: ReceptiveField) -> list[dict]:
    """Every channel's purity, dominant class and top images, as written to the JSON file."""
    rows = class_purity(top, labels)
    for row in rows:
        row["dominant_name"] = CLASS_NAMES[row["dominant"]]
        row["top"] = [{"image": int(i), "label": int(labels[i]), "class": CLASS_NAMES[labels[i]],
                       "activation": round(float(v), 5), "unit": [int(r), int(c)],
                       "box": list(field_box(rf, int(r), int(c)))}
                      for i, v, (r, c) in zip(top.images[row["channel"]], top.values[row["channel"]],
                                              top.positions[row["channel"]], strict=True)]
    return rows


def write_tables(out: Path, layer: str, summary: dict, rows: list[dict]) -> list[Path]:
    json_path, csv_path = out / f"neurons_{layer}.json", out / f"neurons_{layer}.csv"
    json_path.write_text(json.dumps({**summary, "channels": rows}, indent=1) + "\n")
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["channel", "purity", "dominant_class", "count", "mean_activation", "weak", "dead",
                         "top_images"])
        for r in rows:
            top_images = " ".join(str(t["image"]) for t in r["top"])
            writer.writerow([r["channel"], f"{r['purity']:.4f}", r["dominant_name"], r["count"],
                             f"{r['mean_activation']:.5f}", int(r["weak"]), int(r["dead"]), top_images])
    return [json_path, csv_path]


def make_figures(run: Path, out: Path | None = None, data_dir: str | None = None, layer: str = "CONV4",
                 split: str = "test", images: int | None = None, k: int = 9, neurons: list[int] | None = None,
                 count: int = 10, batch_size: int = 250, weights: str = "best", progress: bool = True) -> list[Path]:
    """Both figures and the tables for one run; returns the paths written."""
    if k < 1 or count < 1 or batch_size < 1:
        raise UserError("--k, --count and --batch-size must be at least 1")
    model, config, _ = load_run(str(run), weights)
    out = Path(out) if out else run_folder(str(run)) / "figures"
    x, y = load_split(data_dir or config.data_dir, split, images, config.val_size)
    maxima = channel_maxima(model, layer, x, batch_size, progress)
    top, rf = top_k(maxima, k), receptive_field(model, layer)
    rows = channel_rows(top, y, rf)
    chosen, reasons = choose_neurons(top, y, rows, neurons, count)
    print(f"{layer}: {sum(r['dead'] for r in rows)} of {len(rows)} channels never fire on these {len(x)} images, "
          f"{sum(r['weak'] for r in rows)} are weak (ranked last)")
    for c in chosen:
        print(f"{layer} neuron {c}: {reasons[c]}")
    k = top.values.shape[1]
    where = f"patch = the unit's {rf.size}x{rf.size} field, grey = beyond the image border"
    neuron_rows = [(f"#{c}\n{rows[c]['count']}/{k} {rows[c]['dominant_name']}", neuron_patches(x, top, c, rf),
                    [f"{t['class']} {t['activation']:.2f}" for t in rows[c]["top"]]) for c in chosen]
    how = "picked by hand" if neurons else "chosen by class purity"
    paths = [plot_rows(neuron_rows, f"{layer} neurons {how}: top {k} of {len(x)} {split} images\n{where}",
                       out / f"neurons_{layer}.png")]
    picks = class_neurons(top, rows, y)
    paths.append(plot_rows(class_rows(x, y, maxima, picks, rf, k),
                           f"{layer}: per class, the neuron most selective for it (the class's share of its top {k}) "
                           f"and its top {CLASS_COLUMNS} patches in that class\n{where}",
                           out / f"neurons_{layer}_classes.png"))
    summary = {"run": str(run), "weights": weights, "layer": layer, "split": split, "images": len(x), "k": k,
               "receptive_field": vars(rf), "selected": [{"channel": c, "reason": reasons[c]} for c in chosen],
               "class_neurons": [{"class": CLASS_NAMES[cls], "channel": ch, "count": n} for cls, ch, n in picks]}
    return paths + write_tables(out, layer, summary, rows)


def choose_neurons(top: TopActivations, labels: np.ndarray, rows: list[dict], neurons: list[int] | None,
                   count: int) -> tuple[list[int], dict[int, str]]:
    """The neurons to show (by hand, or the purest) and why each was chosen."""
    channels, k = top.values.shape
    if neurons:
        if not all(0 <= c < channels for c in neurons):
            raise UserError(f"--neurons: {top.layer} has channels 0 to {channels - 1}, not {neurons}")
        return neurons, dict.fromkeys(neurons, "picked by hand (--neurons)")
    chosen = select_interesting(top, labels, min(count, channels))
    return chosen, {c: f"{rows[c]['count']}/{k} of its top images are {rows[c]['dominant_name']}, "
                       f"mean top-{k} activation {rows[c]['mean_activation']:.2f}" for c in chosen}


def class_rows(x: np.ndarray, y: np.ndarray, maxima: ChannelMaxima, picks: list[tuple[int, int, int]],
               rf: ReceptiveField, k: int) -> list[tuple[str, list[np.ndarray], list[str]]]:
    """A row per class: the picked neuron's most exciting patches among that class's images."""
    rows = []
    for cls, channel, n in picks:
        members = np.flatnonzero(y == cls)
        if len(members) == 0:
            continue
        within = top_k(maxima, CLASS_COLUMNS, subset=members)
        rows.append((f"{CLASS_NAMES[cls]}\n#{channel} ({n}/{k})", neuron_patches(x, within, channel, rf),
                     [f"{v:.2f}" for v in within.values[channel]]))
    return rows


def main() -> None:
    args = parse_args()
    neurons = parse_channels(args.neurons) if args.neurons else None
    paths = make_figures(Path(args.run), Path(args.out) if args.out else None, args.data_dir, args.layer, args.split,
                         args.images, args.k, neurons, args.count, args.batch_size, args.which)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main_with_errors(main)
