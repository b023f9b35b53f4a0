"""An evaluation's numbers for people and for files: one screen of text, the confusion-matrix
PNG, the JSON with every number."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import runs


def format_report(result: dict) -> str:
    """One screen: loss and accuracy, then per-class accuracy and the most frequent confusions."""
    n, names, split = result["n_images"], result["class_names"], result["split"]
    confusion = np.array(result["confusion_matrix"])
    net = result["network"]
    lines = [f"{result['weights']}  (batchnorm={net['batchnorm']}, dropout "
             f"{net['conv_dropout']:g}/{net['fc_dropout']:g}, {net['params']:,} params, float32)",
             f"{split} split of {result['data_source']}: {n:,} images", "",
             f"{split} loss {result['loss']:.4f}   {split} accuracy {result['accuracy']:.4f}"
             f"  ({result['correct']:,} / {n:,})"]
    if result.get("tta"):
        lines.append(f"with {result['tta']} TTA: loss {result['tta_loss']:.4f}   accuracy "
                     f"{result['tta_accuracy']:.4f}  ({result['tta_correct']:,} / {n:,})")
    lines += ["", f"{'class':<12}{'accuracy':>9}{'correct':>10}{'images':>8}"
              "   most often taken for"]
    for i, name in enumerate(names):
        accuracy = result["per_class"][name]
        wrong = [(count, j) for j, count in enumerate(confusion[i]) if j != i and count]
        taken = f"{names[max(wrong)[1]]} ({max(wrong)[0]})" if wrong else "-"
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        lines.append(f"{name:<12}{shown:>9}{confusion[i, i]:>10,}{confusion[i].sum():>8,}"
                     f"   {taken}")
    top = result["top_confusions"][:5]
    if top:
        lines += ["", "top confusions (true -> predicted: images)"]
        lines += [f"  {c['true'] + ' -> ' + c['predicted']:<24}{c['count']:>6,}" for c in top]
    return "\n".join(lines)


def plot_confusion(result: dict, path: Path) -> Path:
    """The confusion matrix as a PNG: colour is the share of each true class, numbers are images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import save_figure

    confusion = np.array(result["confusion_matrix"])
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    names = result["class_names"]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(confusion):
        if count:  # blank zeros keep the mistakes readable
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{result['which']} weights, {result['split']} split: accuracy "
                 f"{result['accuracy']:.4f} ({result['n_images']:,} images)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def write_results(result: dict, json_path: Path) -> list[Path]:
    """The JSON with every number, and the confusion-matrix PNG beside it."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    figure = json_path.with_name(f"{result['which']}-{result['split']}-confusion.png")
    return [json_path, plot_confusion(result, figure)]


def default_json_path(result: dict, out: str | Path | None = None) -> Path:
    """RUN/eval/WHICH-SPLIT.json (beside the weights when there is no run folder), or the same
    file name directly in out."""
    if out:
        return Path(out) / runs.eval_json(Path(), result["which"], result["split"]).name
    return runs.eval_json(Path(result["weights"]).parent, result["which"], result["split"])
