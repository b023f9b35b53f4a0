"""A run's weights scored on a CIFAR-10 split in float32: predictions, loss, accuracy, confusions.

Deterministic: float32 whatever precision trained the run, no augmentation, dropout off, batch
norm in inference mode, deterministic kernels, so the same weights and data give the same numbers
to the last digit on every run. The validation split is training's (the run's val_size).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

import runs
from data import load_cifar10, select_split
from evaluation.errors import TTA_CHOICES, EvaluationError
from models import Config
from runs.weights import load_network

TOP_CONFUSIONS = 10
# Keras' clip for probabilities in the cross-entropy, so that the loss matches model.evaluate's.
EPSILON = 1e-7


def predict(model: keras.Model, images: np.ndarray, batch_size: int,
            flip: bool = False) -> np.ndarray:
    """Class probabilities (float32) in inference mode: dropout off, batch norm on its moving
    statistics; with flip, of the mirror images."""
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be at least 1, not {batch_size}")
    starts = range(0, len(images), batch_size)
    batches = tqdm(starts, desc="flipped" if flip else "predicting", unit="batch", leave=False,
                   disable=None)
    outputs = []
    for start in batches:
        batch = images[start:start + batch_size].astype(np.float32)
        outputs.append(np.asarray(model.predict_on_batch(batch[:, :, ::-1] if flip else batch)))
    return np.concatenate(outputs)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (the report's log loss, without label
    smoothing)."""
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.log(np.clip(picked, EPSILON, 1 - EPSILON)).mean())


def score(probabilities: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Loss, accuracy, per-class accuracy, the confusion matrix (rows: true class) and the most
    frequent confusions (ties by true, then predicted class)."""
    predicted = probabilities.argmax(axis=1)
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, name in enumerate(class_names)}
    off_diagonal = [(int(confusion[t, p]), t, p) for t in range(n) for p in range(n)
                    if t != p and confusion[t, p]]
    top = sorted(off_diagonal, key=lambda c: (-c[0], c[1], c[2]))[:TOP_CONFUSIONS]
    correct = int(np.trace(confusion))
    return {"loss": nll(probabilities, labels), "accuracy": correct / len(labels),
            "correct": correct, "per_class": per_class, "confusion_matrix": confusion.tolist(),
            "top_confusions": [{"true": class_names[t], "predicted": class_names[p], "count": c}
                               for c, t, p in top]}


def deterministic_kernels() -> None:
    """On a GPU, ask TensorFlow for deterministic kernels: cuDNN autotuning could otherwise pick
    another convolution algorithm on the next run and change the last bits of the probabilities.
    CPU kernels already give the same bits every run, and the switch is process-wide, so it is
    left off there.
    """
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()


def weights_name(weights: Path) -> str:
    """best.weights.h5 -> best: names the output files."""
    name = Path(weights).name
    for suffix in (".weights.h5", ".h5"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return Path(weights).stem


def run_config(target: str | None) -> Config:
    """The network a target describes: the config.json of a run folder (name or path) or beside a
    weights file; the report's network without a target or without a config.json."""
    if target is None:
        return Config()
    path = Path(target)
    folder = path.parent if path.is_file() else runs.find_run(target)
    return runs.read_config(folder) or Config()


def evaluate_run(target: str, *, which: str = "best", split: str = "test",
                 data_dir: str | None = None, batch_size: int = 500,
                 tta: str | None = None) -> dict:
    """Evaluate a run folder (name or path) or a weights file on a CIFAR-10 split; every number
    as a dict.

    The data is data.load_cifar10's one rule (data_dir, else $CIFAR10_DIR, else the copy the run
    trained on, else Keras' download). The plain numbers never include test-time augmentation;
    with tta="flip" the probabilities of each image and its mirror image are averaged (Krizhevsky
    et al., NIPS 2012, averaged predictions over reflections) and reported beside them as tta_loss
    and tta_accuracy.
    """
    if tta not in (None, *TTA_CHOICES):
        raise EvaluationError(f"tta must be one of {', '.join(TTA_CHOICES)}, not {tta!r}")
    deterministic_kernels()
    model, config, weights = load_network(target, which, policy="float32")
    data = load_cifar10(data_dir, trained_on=config.data_dir)
    images, labels = select_split(data, split, config.val_size, config.limit)
    if not len(labels):
        raise EvaluationError(f"the {split} split of {data.source} holds no images")
    probabilities = predict(model, images, batch_size)
    result = {"weights": str(weights), "which": weights_name(weights),
              "weights_sha256": runs.sha256(weights),
              "network": {"batchnorm": config.batchnorm, "conv_dropout": config.conv_dropout,
                          "fc_dropout": config.fc_dropout, "params": model.count_params()},
              "split": split, "data_source": data.source, "n_images": len(labels),
              "batch_size": batch_size, "precision": "float32",
              "class_names": list(data.class_names),
              **score(probabilities, labels, data.class_names), "tta": tta}
    if tta == "flip":
        averaged = (probabilities + predict(model, images, batch_size, flip=True)) / 2
        augmented = score(averaged, labels, data.class_names)
        result.update(tta_loss=augmented["loss"], tta_accuracy=augmented["accuracy"],
                      tta_correct=augmented["correct"])
    return result
