"""Class activation maps: where in the image a conv layer's features speak for a class.

Grad-CAM: Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual Explanations
from Deep Networks via Gradient-based Localization", ICCV 2017. For a class c and a conv (or
pool) layer with feature maps A_k (h x w, one per channel k):

  y_c        the class's score before the softmax (Sec. 3: the gradient of the score, not of the
             probability, so that the other classes' scores do not enter the map),
  w_k        the spatial mean of d y_c / d A_k (Eq. 1: "global-average-pooled" gradients),
  cam        ReLU(sum_k w_k A_k) (Eq. 2), at the layer's own resolution.

Guided Grad-CAM (Sec. 3.1) is the cam upsampled bilinearly to the image times the guided
backpropagation map of the same score (analysis.guided): the guided map is fine-grained but not
class-discriminative, the cam is class-discriminative but coarse.

In the report's network the score is the output of the layer that feeds the final softmax
activation: the batch norm after the SOFTMAX dense layer, or that dense layer itself without
batch norm. It is found from the model's graph, not by name. Everything runs in inference mode
(dropout off, batch norm on its moving statistics) and leaves the model as it was.

Which class to explain (choose_targets) and which images (per_class_sample: for each class its
most confident correct image and its most confident mistake) are decided here too, from the
network's softmax outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from analysis import AnalysisError
from analysis.activations import spatial_layer
from analysis.guided import output_gradients
from data import CLASS_NAMES

TARGETS = ("predicted", "true")  # or a class, by number or name


def score_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer whose output is the class scores before the softmax: the one feeding model's
    final softmax activation layer."""
    producers = {id(layer.output): layer for layer in model.layers
                 if not isinstance(layer, keras.layers.InputLayer)}
    final = producers.get(id(model.outputs[0])) if len(model.outputs) == 1 else None
    if not (isinstance(final, keras.layers.Activation)
            and getattr(final.activation, "__name__", None) == "softmax"
            and id(final.input) in producers):
        raise AnalysisError("the network does not end in a softmax activation layer after the "
                            "class scores; Grad-CAM explains the scores before the softmax")
    return producers[id(final.input)]


def class_count(model: keras.Model) -> int:
    return int(score_layer(model).output.shape[-1])


def class_name(c: int) -> str:
    return CLASS_NAMES[c] if 0 <= c < len(CLASS_NAMES) else str(c)


def check_target(model: keras.Model, target: str | int) -> None:
    """target must be "predicted", "true", or one of the network's classes (number or name)."""
    target_class(target, class_count(model))


def target_class(target: str | int, classes: int) -> int | None:
    """The fixed class target names (None for "predicted" and "true")."""
    if target in TARGETS:
        return None
    names = [class_name(c) for c in range(classes)]
    text = str(target).strip()
    if text.lstrip("-").isdigit() and 0 <= int(text) < classes:
        return int(text)
    if text in names:
        return names.index(text)
    raise AnalysisError(f"target must be predicted, true, a class number 0 to {classes - 1} or "
                        f"a class name ({', '.join(names)}), not {target!r}")


def choose_targets(probabilities: np.ndarray, labels: np.ndarray,
                   target: str | int = "predicted") -> np.ndarray:
    """The class each image's map explains: its predicted class (the largest probability, the
    first on ties), its true class, or one fixed class for all."""
    probabilities = np.asarray(probabilities)
    fixed = target_class(target, probabilities.shape[1])
    if fixed is not None:
        return np.full(len(probabilities), fixed, np.int64)
    if target == "true":
        return np.asarray(labels, np.int64).reshape(-1)
    return probabilities.argmax(axis=1).astype(np.int64)


@dataclass
class Sample:
    """Images picked to explain: their indices and why each was picked."""

    indices: np.ndarray  # (n,) int indices into the images searched
    kinds: list[str]  # "correct", "mistake" or "chosen"


def per_class_sample(probabilities: np.ndarray, labels: np.ndarray) -> Sample:
    """For each class in turn: its most confident correct image (true class c, predicted c,
    largest probability of c) and its most confident mistake (true class c, predicted another
    class, largest probability of that wrong class). A class with no correct image or no
    mistake among these images has none; ties keep the first image."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels).reshape(-1)
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    indices, kinds = [], []
    for c in range(probabilities.shape[1]):
        for kind, wanted in (("correct", predicted == c), ("mistake", predicted != c)):
            candidates = np.flatnonzero((labels == c) & wanted)
            if candidates.size:
                indices.append(int(candidates[np.argmax(confidence[candidates])]))
                kinds.append(kind)
    return Sample(np.asarray(indices, np.int64), kinds)


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 250,
            progress: bool = False) -> np.ndarray:
    """The network's softmax outputs for images (raw pixels), in inference mode, float32."""
    starts = range(0, len(images), batch_size)
    out = [np.asarray(model.predict_on_batch(np.asarray(images[s:s + batch_size], np.float32)),
                      np.float32)
           for s in tqdm(starts, desc="predictions", unit="batch",
                         disable=not progress or len(starts) < 2)]
    return np.concatenate(out) if out else np.zeros((0, class_count(model)), np.float32)


@dataclass
class ClassMaps:
    """Grad-CAM and Guided Grad-CAM of one class per image, with the score they explain."""

    cam: np.ndarray  # (N, h, w) float32 at the layer's resolution, after the ReLU
    scores: np.ndarray  # (N,) the explained class's score before the softmax
    guided: np.ndarray  # (N, H, W, 3) guided backpropagation of that score
    guided_gradcam: np.ndarray  # (N, H, W, 3) upsample(cam) * guided


def gradcam(model: keras.Model, images: np.ndarray, targets: np.ndarray, *,
            layer: str = "CONV4", batch_size: int = 100,
            progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of class targets[i] at layer for image i (raw pixels), and the class scores.

    Returns cam (N, h, w) float32 at the layer's own resolution (after the ReLU, neither
    upsampled nor normalized) and scores (N,) float32, the targets' scores before the softmax.
    """
    features = spatial_layer(model, layer)
    if len(features.output.shape) != 4:
        raise AnalysisError(f"layer {layer} has no spatial map for Grad-CAM")
    images = np.asarray(images, np.float32)
    targets = _check_targets(model, images, targets)
    both = keras.Model(model.input, [features.output, score_layer(model).output])
    cams = np.empty((len(images), *features.output.shape[1:3]), np.float32)
    scores = np.empty(len(images), np.float32)
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=f"Grad-CAM {layer}", unit="batch",
                      disable=not progress or len(starts) < 2):
        stop = start + batch_size
        cams[start:stop], scores[start:stop] = _batch_gradcam(
            both, tf.constant(images[start:stop]), tf.constant(targets[start:stop]))
    return cams, scores


def _batch_gradcam(both: keras.Model, images: tf.Tensor, targets: tf.Tensor):
    with tf.GradientTape() as tape:
        maps, logits = both(images, training=False)
        score = tf.gather(logits, targets, axis=1, batch_dims=1)
        # In inference mode the images of a batch do not interact, so the gradient of the sum is
        # each image's gradient of its own class score.
        total = tf.reduce_sum(score)
    weights = tf.reduce_mean(tape.gradient(total, maps), axis=(1, 2))  # (n, channels)
    cam = tf.nn.relu(tf.einsum("nhwk,nk->nhw", maps, weights))
    return cam.numpy(), score.numpy()


def _check_targets(model: keras.Model, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    targets = np.asarray(targets).reshape(-1)
    if len(targets) != len(images):
        raise AnalysisError(f"{len(images)} images but {len(targets)} target classes")
    classes = class_count(model)
    bad = sorted({int(t) for t in targets if not 0 <= t < classes})
    if bad:
        raise AnalysisError(f"the network has classes 0 to {classes - 1}; no "
                            f"{', '.join(map(str, bad))}")
    return targets.astype(np.int32)


def upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps (N, h, w) resized bilinearly to size (as Selvaraju et al. do before multiplying with
    the guided map), float32."""
    resized = tf.image.resize(np.asarray(cam, np.float32)[..., None], size, method="bilinear")
    return resized.numpy()[..., 0]


def class_maps(model: keras.Model, images: np.ndarray, targets: np.ndarray, *,
               layer: str = "CONV4", batch_size: int = 100, progress: bool = False) -> ClassMaps:
    """Grad-CAM at layer and Guided Grad-CAM of class targets[i] for image i (raw pixels)."""
    cam, scores = gradcam(model, images, targets, layer=layer, batch_size=batch_size,
                          progress=progress)
    guided = output_gradients(model, score_layer(model).name, np.asarray(images, np.float32),
                              np.asarray(targets), "guided", batch_size, progress)
    return ClassMaps(cam, scores, guided, upsample(cam, guided.shape[1:3])[..., None] * guided)
