"""Sanity checks for saliency maps: how much does a map depend on what the network learned?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps", NeurIPS
2018, Sec. 3 (cascading randomization): re-initialize the network's layers from the top, one
more at a time, recompute each method's maps for a fixed set of images and compare them with the
trained network's maps. A map that barely changes when the weights that produced the prediction
are random cannot be explaining the prediction; Adebayo et al. found guided backpropagation (and
Guided Grad-CAM) nearly invariant to the top layers, while the plain gradient and Grad-CAM change.

Here:
- stages: "trained" (nothing re-initialized), then each layer with weights from the top (in the
  report's network SOFTMAX, FC2, FC1, CONV4, CONV3, CONV2, CONV1). A batch-normalization layer
  goes with the layer with weights just before it: the output BN with SOFTMAX (in inference mode
  it scales and shifts each class score, which alone would change no class's map but its
  scale, so as a stage of its own it would read as a perfect 1.0 that says nothing), a
  CONVn_BN with CONVn. The stages are cumulative: at stage CONV4, CONV4 and everything above
  it are random.
- re-initialization: each variable of a layer drawn afresh from the layer's own initializer
  (Glorot uniform kernels, zero biases; batch norm back to gamma 1, beta 0, mean 0, variance 1),
  seeded per layer from seed, on a copy of the model; the model given is never changed.
- what is explained: the score of one class per image before the softmax (the trained network's
  predicted class unless told otherwise), the same class at every stage, so that every method
  at every stage explains the same quantity.
- methods: saliency, guided backpropagation and deconvnet maps of that score (analysis.guided),
  Grad-CAM at a conv layer and Guided Grad-CAM (analysis.gradcam). A gradient map is compared by
  its magnitude per pixel, the largest absolute value over the colour channels (as the suite
  draws saliency maps); a Grad-CAM map at the layer's own resolution (it is non-negative);
  Guided Grad-CAM like a gradient map.
- comparison (per image, with the trained network's map of the same image): the Spearman rank
  correlation of the magnitudes (Adebayo et al.'s "rank correlation (ABS)"; ties get the mean of
  their ranks; undefined, NaN, when either map is constant), and the structural similarity
  (SSIM; Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004) of the maps each scaled to its own
  maximum, with a 7 x 7 uniform window (scikit-image's default) or the whole map if smaller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
from tqdm import tqdm

from analysis import AnalysisError
from analysis.activations import spatial_layer
from analysis.gradcam import class_maps, gradcam, predict, score_layer
from analysis.guided import output_gradients

TRAINED = "trained"
SSIM_WINDOW = 7
SSIM_K = (0.01, 0.03)  # Wang et al.'s constants, for maps in [0, 1]

# A method: (model, images, targets, layer, batch_size) -> one magnitude map per image.
MapMethod = Callable[[keras.Model, np.ndarray, np.ndarray, str, int], np.ndarray]


def _gradient_method(rule: str) -> MapMethod:
    def maps(model, images, targets, layer, batch_size):
        grads = output_gradients(model, score_layer(model).name, images, targets, rule,
                                 batch_size)
        return np.abs(grads).max(axis=-1)

    return maps


def _gradcam(model, images, targets, layer, batch_size):
    return gradcam(model, images, targets, layer=layer, batch_size=batch_size)[0]


def _guided_gradcam(model, images, targets, layer, batch_size):
    maps = class_maps(model, images, targets, layer=layer, batch_size=batch_size)
    return np.abs(maps.guided_gradcam).max(axis=-1)


METHODS: dict[str, MapMethod] = {"saliency": _gradient_method("saliency"),
                                 "guided": _gradient_method("guided"),
                                 "deconvnet": _gradient_method("deconvnet"),
                                 "gradcam": _gradcam, "guided-gradcam": _guided_gradcam}
SPATIAL = ("gradcam",)  # maps at the layer's resolution, drawn upsampled over the image


@dataclass(frozen=True)
class Stage:
    """One step of the cascade: its name ("trained" or the top layer re-initialized at it),
    the layers re-initialized at this step, and all those re-initialized so far."""

    name: str
    layers: tuple[str, ...]
    randomized: tuple[str, ...]


def randomization_stages(model: keras.Model) -> list[Stage]:
    """The cascade's stages for model, "trained" first, then its layers with weights from the
    top, each batch norm with the layer with weights before it (see the module docstring)."""
    groups: list[list[str]] = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and groups:
            groups[-1].append(layer.name)
        else:
            groups.append([layer.name])
    stages, randomized = [Stage(TRAINED, (), ())], ()
    for group in reversed(groups):
        randomized += tuple(group)
        stages.append(Stage(group[0], tuple(group), randomized))
    return stages


def copy_model(model: keras.Model) -> keras.Model:
    """A copy of model with its own layers and variables, holding the same weights."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def layer_seed(seed: int, index: int) -> int:
    """The seed of the index-th layer's initializers, from the cascade's seed."""
    return int(np.random.default_rng([seed, index]).integers(2**31 - 1))


def reinitialize(layer: keras.layers.Layer, seed: int) -> None:
    """Every variable of layer drawn afresh from the layer's initializer for it (kernel from
    kernel_initializer, gamma from gamma_initializer...), the i-th seeded with seed + i."""
    for i, variable in enumerate(layer.weights):
        name = variable.path.split("/")[-1]
        initializer = getattr(layer, f"{name}_initializer", None)
        if initializer is None:
            raise AnalysisError(f"layer {layer.name}: no initializer for its variable {name!r}, "
                                "so it cannot be re-initialized")
        config = initializer.get_config()
        if "seed" in config:
            config["seed"] = seed + i
        fresh = type(initializer).from_config(config)
        variable.assign(fresh(tuple(variable.shape), dtype=variable.dtype))


def cascade(model: keras.Model, *, seed: int = 0) -> Iterator[tuple[Stage, keras.Model]]:
    """Each stage with a copy of model whose stage.randomized layers are re-initialized.

    One copy, changed in place from stage to stage (each layer is re-initialized once and stays
    random below it): use it before asking for the next stage. model itself is never changed.
    """
    copy = copy_model(model)
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    for stage in randomization_stages(model):
        for name in stage.layers:
            reinitialize(copy.get_layer(name), layer_seed(seed, index[name]))
        yield stage, copy


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, tied values sharing the mean of their ranks (as
    scipy.stats.rankdata's default)."""
    values = np.asarray(values).reshape(-1)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    run = np.cumsum(first) - 1  # which run of equal values each sorted position is in
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends + 1) / 2.0)[run]  # mean of ranks start + 1 ... end
    return ranks


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two arrays of the same size (flattened): the Pearson
    correlation of their average ranks; NaN when either is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    if ra.size != rb.size:
        raise ValueError(f"arrays of {ra.size} and {rb.size} values")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / norm) if norm > 0 else float("nan")


def _scaled(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    peak = np.abs(a).max()
    return a / peak if peak > 0 else a


def ssim(a: np.ndarray, b: np.ndarray, window: int = SSIM_WINDOW) -> float:
    """The mean structural similarity of two 2-D maps, each scaled to its own maximum (so in
    [0, 1] for non-negative maps), over all window x window squares inside them (sample
    statistics, Wang et al.'s constants for a data range of 1)."""
    a, b = _scaled(a), _scaled(b)
    size = min(window, *a.shape)
    if size < 2:
        return float("nan")
    wa = np.lib.stride_tricks.sliding_window_view(a, (size, size))
    wb = np.lib.stride_tricks.sliding_window_view(b, (size, size))
    axes, n = (-2, -1), size * size
    mean_a, mean_b = wa.mean(axis=axes), wb.mean(axis=axes)
    da, db = wa - mean_a[..., None, None], wb - mean_b[..., None, None]
    var_a, var_b = (da * da).sum(axis=axes) / (n - 1), (db * db).sum(axis=axes) / (n - 1)
    cov = (da * db).sum(axis=axes) / (n - 1)
    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    value = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)
             / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(value.mean())


@dataclass
class SanityCheck:
    """The maps at every stage and how much each image's map still agrees with the trained
    network's; arrays indexed [stage, image]."""

    stages: list[Stage]
    targets: np.ndarray  # (N,) the class each map explains
    maps: dict[str, np.ndarray]  # method -> (stages, N, h, w) magnitudes
    rank: dict[str, np.ndarray]  # method -> (stages, N) Spearman with the trained maps
    ssim: dict[str, np.ndarray]  # method -> (stages, N)


def check_methods(methods: tuple[str, ...] | list[str]) -> None:
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise AnalysisError(f"methods must be some of {', '.join(METHODS)}, not "
                            f"{', '.join(bad) or 'none'}")


def cascading_randomization(model: keras.Model, images: np.ndarray,
                            targets: np.ndarray | None = None, *, layer: str = "CONV4",
                            methods: tuple[str, ...] | list[str] = tuple(METHODS),
                            seed: int = 0, batch_size: int = 100,
                            progress: bool = False) -> SanityCheck:
    """The cascading randomization check of model on images (raw pixels) for methods (see the
    module docstring); layer is Grad-CAM's. targets: the class each image's maps explain (None:
    the trained network's prediction)."""
    check_methods(methods)
    if any(m in ("gradcam", "guided-gradcam") for m in methods):
        spatial_layer(model, layer)
    score_layer(model)
    images = np.asarray(images, np.float32)
    if len(images) == 0:
        raise AnalysisError("no images to explain")
    if targets is None:
        targets = predict(model, images, batch_size).argmax(axis=1)
    targets = np.asarray(targets, np.int64).reshape(-1)
    reference = {m: METHODS[m](model, images, targets, layer, batch_size) for m in methods}
    stages, maps = [], {m: [] for m in methods}
    total = len(randomization_stages(model))
    for stage, copy in tqdm(cascade(model, seed=seed), total=total, desc="randomization stages",
                            unit="stage", disable=not progress):
        stages.append(stage)
        for m in methods:
            maps[m].append(METHODS[m](copy, images, targets, layer, batch_size))
    rank = {m: np.array([[rank_correlation(r, s) for r, s in zip(reference[m], stage, strict=True)]
                         for stage in maps[m]]) for m in methods}
    similar = {m: np.array([[ssim(r, s) for r, s in zip(reference[m], stage, strict=True)]
                            for stage in maps[m]]) for m in methods}
    return SanityCheck(stages, targets, {m: np.stack(v) for m, v in maps.items()}, rank, similar)
