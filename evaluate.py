"""Evaluate a run's weights on CIFAR-10: the grader's one command.

    python evaluate.py logs/report                   # the run's best.weights.h5 on the test set
    python evaluate.py report --which last --split val --tta flip
    python evaluate.py path/to/best.weights.h5 --data-dir ../shared/data/cifar-10-jpeg
    python evaluate.py --summary                     # the report's Task IV parameter table

A run folder's config.json rebuilds the exact network variant; a weights file uses the config.json
beside it, else the report's network. Prints loss and accuracy, per-class accuracy and the top
confusions; writes every number to RUN/eval/WHICH-SPLIT.json and the confusion matrix to
RUN/eval/WHICH-SPLIT-confusion.png (or into --out, or to --json PATH).

Deterministic: float32 whatever precision trained the run, no augmentation, dropout off, batch norm
in inference mode, deterministic kernels, so the same weights and data give the same numbers to the
last digit on every run. The validation split is training's (the run's --val-size).
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import contextlib
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from data import SPLITS, Cifar10, load_cifar10, select_split
from data.cifar10 import resolve_source
from models.cli import UserError, main_with_errors, run_folder
from models.config import Config
from models.runs import WEIGHTS, atomic_save, build_from_config, load_weights, resolve_weights
from models.summary import summary_text, write_summary

TTA_CHOICES = ("flip",)
TOP_CONFUSIONS = 10
EPSILON = 1e-7  # Keras' clip for probabilities in the cross-entropy: the loss matches model.evaluate


# ---------------------------------------------------------------------------------------------
# Loading the network and the data


@contextlib.contextmanager
def float32_policy():
    """Build layers in float32 whatever the global policy, and put the caller's policy back after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def load_network(target: str, which: str = "best") -> tuple[keras.Model, Config, Path]:
    """The run's network variant in float32 with its weights (the report's network without a config)."""
    weights, config = resolve_weights(target, which)
    config = config or Config()
    with float32_policy():
        model = build_from_config(config)
    load_weights(model, weights)
    return model, config, weights


def data_source(data_dir: str | None, config: Config) -> str | None:
    """--data-dir, else $CIFAR10_DIR, else the run's own data if it is here, else Keras' download."""
    explicit = resolve_source(data_dir)
    if explicit:
        return explicit
    if config.data_dir and Path(config.data_dir).expanduser().exists():
        return config.data_dir
    return None


def split_images(config: Config, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, Cifar10]:
    """(images, labels, the data set) of a split; val and train are cut exactly as train.py cut them."""
    data = load_cifar10(data_source(data_dir, config))
    return *select_split(data, split, config.val_size, config.limit), data


# ---------------------------------------------------------------------------------------------
# Predicting and scoring


def predict(model: keras.Model, images: np.ndarray, batch_size: int, flip: bool = False) -> np.ndarray:
    """Class probabilities (float32) in inference mode: dropout off, batch norm on its moving statistics."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {batch_size}")
    starts = range(0, len(images), batch_size)
    batches = tqdm(starts, desc="flipped" if flip else "predicting", unit="batch", leave=False, disable=None)
    outputs = []
    for start in batches:
        batch = images[start:start + batch_size].astype(np.float32)
        outputs.append(np.asarray(model.predict_on_batch(batch[:, :, ::-1] if flip else batch)))
    return np.concatenate(outputs)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (the report's log loss, without label smoothing)."""
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.log(np.clip(picked, EPSILON, 1 - EPSILON)).mean())


def score(probabilities: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Loss, accuracy, per-class accuracy, the confusion matrix (rows: true class) and top confusions."""
    predicted = probabilities.argmax(axis=1)
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, name in enumerate(class_names)}
    off_diagonal = [(int(confusion[t, p]), t, p) for t in range(n) for p in range(n) if t != p and confusion[t, p]]
    top = sorted(off_diagonal, key=lambda c: (-c[0], c[1], c[2]))[:TOP_CONFUSIONS]
    correct = int(np.trace(confusion))
    return {"loss": nll(probabilities, labels), "accuracy": correct / len(labels), "correct": correct,
            "per_class": per_class, "confusion_matrix": confusion.tolist(),
            "top_confusions": [{"true": class_names[t], "predicted": class_names[p], "count": c}
                               for c, t, p in top]}


def deterministic_kernels() -> None:
    """On a GPU, ask TensorFlow for deterministic kernels: cuDNN autotuning could otherwise pick
    another convolution algorithm on the next run and change the last bits of the probabilities.
    CPU kernels already give the same bits every run, and the switch is process-wide, so it is left off there.
    """
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()


def weights_name(weights: Path) -> str:
    """best.weights.h5 -> best: names the output files."""
    name = weights.name
    for suffix in (".weights.h5", ".h5"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return weights.stem


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def evaluate_run(target: str, which: str = "best", split: str = "test", data_dir: str | None = None,
                 batch_size: int = 500, tta: str | None = None) -> dict:
    """Evaluate a run folder (name or path) or a weights file on a CIFAR-10 split; every number as a dict.

    The plain numbers never include test-time augmentation; with tta="flip" the probabilities of each
    image and its mirror image are averaged (Krizhevsky et al., NIPS 2012, averaged predictions over
    reflections) and reported beside them as tta_loss and tta_accuracy.
    """
    if tta not in (None, *TTA_CHOICES):
        raise UserError(f"--tta must be one of {', '.join(TTA_CHOICES)}, not {tta!r}")
    deterministic_kernels()
    model, config, weights = load_network(target, which)
    images, labels, data = split_images(config, split, data_dir)
    if not len(labels):
        raise UserError(f"the {split} split of {data.source} holds no images")
    probabilities = predict(model, images, batch_size)
    result = {"weights": str(weights), "which": weights_name(weights), "weights_sha256": sha256(weights),
              "network": {"batchnorm": config.batchnorm, "conv_dropout": config.conv_dropout,
                          "fc_dropout": config.fc_dropout, "params": model.count_params()},
              "split": split, "data_source": data.source, "n_images": len(labels), "batch_size": batch_size,
              "precision": "float32", "class_names": list(data.class_names),
              **score(probabilities, labels, data.class_names), "tta": tta}
    if tta == "flip":
        averaged = (probabilities + predict(model, images, batch_size, flip=True)) / 2
        augmented = score(averaged, labels, data.class_names)
        result.update(tta_loss=augmented["loss"], tta_accuracy=augmented["accuracy"],
                      tta_correct=augmented["correct"])
    return result


# ---------------------------------------------------------------------------------------------
# Reporting


def format_report(result: dict) -> str:
    """One screen: loss and accuracy, then per-class accuracy and the most frequent confusions."""
    n, names = result["n_images"], result["class_names"]
    confusion = np.array(result["confusion_matrix"])
    net = result["network"]
    lines = [f"{result['weights']}  (batchnorm={net['batchnorm']}, dropout {net['conv_dropout']:g}/"
             f"{net['fc_dropout']:g}, {net['params']:,} params, float32)",
             f"{result['split']} split of {result['data_source']}: {n:,} images", "",
             f"{result['split']} loss {result['loss']:.4f}   {result['split']} accuracy {result['accuracy']:.4f}"
             f"  ({result['correct']:,} / {n:,})"]
    if result.get("tta"):
        lines.append(f"with {result['tta']} TTA: loss {result['tta_loss']:.4f}   accuracy "
                     f"{result['tta_accuracy']:.4f}  ({result['tta_correct']:,} / {n:,})")
    lines += ["", f"{'class':<12}{'accuracy':>9}{'correct':>10}{'images':>8}   most often taken for"]
    for i, name in enumerate(names):
        accuracy = result["per_class"][name]
        wrong = [(count, j) for j, count in enumerate(confusion[i]) if j != i and count]
        taken = f"{names[max(wrong)[1]]} ({max(wrong)[0]})" if wrong else "-"
        lines.append(f"{name:<12}{'-' if accuracy is None else f'{accuracy:.4f}':>9}{confusion[i, i]:>10,}"
                     f"{confusion[i].sum():>8,}   {taken}")
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
    ax.set_title(f"{result['which']} weights, {result['split']} split: accuracy {result['accuracy']:.4f} "
                 f"({result['n_images']:,} images)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
    return path


def write_results(result: dict, json_path: Path) -> list[Path]:
    """The JSON with every number, and the confusion-matrix PNG beside it."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(json_path, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2) + "\n"))
    figure = json_path.with_name(f"{result['which']}-{result['split']}-confusion.png")
    return [json_path, plot_confusion(result, figure)]


def default_json_path(result: dict, out: str | None) -> Path:
    """RUN/eval/WHICH-SPLIT.json, or the same name in --out (beside the weights when there is no run)."""
    folder = Path(out) if out else Path(result["weights"]).parent / "eval"
    return folder / f"{result['which']}-{result['split']}.json"


# ---------------------------------------------------------------------------------------------
# The command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", metavar="RUN_OR_WEIGHTS",
                   help="run folder (a name under logs/ or a path) or a .weights.h5 file")
    p.add_argument("--run", help="the same as RUN_OR_WEIGHTS, named as in the other scripts")
    p.add_argument("--which", choices=sorted(WEIGHTS), default="best", help="a run's best or last weights (best)")
    p.add_argument("--split", choices=SPLITS, default="test", help="CIFAR-10 split (test); val is training's")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz (default: $CIFAR10_DIR, else the run's, "
                   "else download)")
    p.add_argument("--batch-size", type=int, default=500, help="images per forward pass (500)")
    p.add_argument("--tta", choices=TTA_CHOICES, help="also report test-time augmentation (mirror images)")
    p.add_argument("--out", help="folder for the JSON and PNG (default: RUN/eval); for --summary, the folder "
                   "for parameters.md (default: the current folder)")
    p.add_argument("--json", help="path of the JSON file (the PNG is written beside it)")
    p.add_argument("--summary", action="store_true",
                   help="print the report's Task IV parameter table (a run's variant if one is named); no weights")
    args = p.parse_args(argv)
    if args.run and args.target and args.run != args.target:
        p.error("name the run once: as RUN_OR_WEIGHTS or as --run")
    args.target = args.target or args.run
    if args.out and args.json:
        p.error("pass --out or --json, not both")
    return args


def config_of(target: str | None) -> Config:
    """The config.json of a run folder or beside a weights file; the report's network otherwise."""
    if target is None:
        return Config()
    path = Path(target)
    folder = path.parent if path.is_file() else run_folder(target)
    return Config.load(folder / "config.json") if (folder / "config.json").exists() else Config()


def summarize(target: str | None, out: str | None) -> None:
    with float32_policy():
        model = build_from_config(config_of(target))
    print(summary_text(model), end="")
    print(f"wrote {write_summary(model, Path(out or '.'))}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.summary:
        summarize(args.target, args.out)
        return
    if args.target is None:
        raise UserError("name a run folder or a weights file to evaluate (or pass --summary); see --help")
    result = evaluate_run(args.target, args.which, args.split, args.data_dir, args.batch_size, args.tta)
    paths = write_results(result, Path(args.json) if args.json else default_json_path(result, args.out))
    print(format_report(result))
    print("", *(f"wrote {path}" for path in paths), sep="\n")


if __name__ == "__main__":
    main_with_errors(main)
