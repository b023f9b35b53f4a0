"""What the units of a conv or pool layer respond to: maximal activations over many images.

The "interesting neurons" method of the report's Task VII, after Zeiler & Fergus, "Visualizing
and Understanding Convolutional Networks" (ECCV 2014) and Girshick et al., "Rich feature
hierarchies..." (CVPR 2014, Fig. 4): feed many images through the network once, keep for every
channel the images that excite it most and where in the feature map the maximum is, then look at
the input patches those maximal units see (analysis.receptive_field).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import keras
import numpy as np
from tqdm import tqdm

from analysis import AnalysisError
from analysis.receptive_field import spatial_layer_names


def spatial_layer(model: keras.Model, layer_name: str) -> keras.layers.Layer:
    """model's conv or pool layer layer_name, with a one-line error naming the others."""
    names = spatial_layer_names(model)
    if layer_name not in names:
        raise AnalysisError(f"no conv or pool layer {layer_name!r} in the network; "
                            f"choose one of {', '.join(names)}")
    return model.get_layer(layer_name)


def layer_model(model: keras.Model, layer_name: str) -> keras.Model:
    """A model from model's input (raw pixels, 0-255) to the output of one conv or pool layer.

    It shares model's layers and weights; call it with training=False (or predict_on_batch), so
    that dropout is off.
    """
    output = spatial_layer(model, layer_name).output
    return keras.Model(model.input, output, name=f"to_{layer_name}")


@dataclass
class ChannelMaxima:
    """Per image and channel: the largest activation over the feature map, and where it is."""

    layer: str
    values: np.ndarray  # (N, C) float32
    positions: np.ndarray  # (N, C, 2) int16 (row, col) in the layer's output map


@dataclass
class TopActivations:
    """Per channel, the k images that excite it most (descending), from ChannelMaxima."""

    layer: str
    values: np.ndarray  # (C, k) float32, descending
    images: np.ndarray  # (C, k) int: indices into the image array given
    positions: np.ndarray  # (C, k, 2) int (row, col) of the maximal unit in the layer's output map


def channel_maxima(model: keras.Model, layer_name: str, images: np.ndarray,
                   batch_size: int = 250, progress: bool = True) -> ChannelMaxima:
    """One batched pass over images (raw pixels 0-255; the model standardizes them itself)."""
    if len(images) == 0:
        raise AnalysisError("no images to feed through the network")
    submodel = layer_model(model, layer_name)
    values, positions = [], []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=f"{layer_name} activations", unit="batch", disable=not progress):
        batch = np.asarray(images[start:start + batch_size], dtype=np.float32)
        # predict_on_batch runs in inference mode: dropout off.
        maps = np.asarray(submodel.predict_on_batch(batch), dtype=np.float32)
        n, height, width, channels = maps.shape
        flat = maps.reshape(n, height * width, channels)
        where = flat.argmax(axis=1)  # the first maximal unit on ties, scanning rows then columns
        values.append(np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0])
        # int16, because a position per image and channel over the whole training set is large.
        positions.append(np.stack(np.divmod(where, width), axis=-1).astype(np.int16))
    return ChannelMaxima(layer_name, np.concatenate(values), np.concatenate(positions))


def top_k(maxima: ChannelMaxima, k: int = 9, subset: np.ndarray | None = None) -> TopActivations:
    """Each channel's k most exciting images (among subset, indices into the images, if given).

    Ties keep the image that comes first (a stable sort), so the result is reproducible.
    """
    candidates = np.arange(len(maxima.values)) if subset is None else np.asarray(subset)
    k = min(k, len(candidates))
    values = maxima.values[candidates]  # (n, C)
    order = np.argsort(-values, axis=0, kind="stable")[:k]  # (k, C)
    images = candidates[order].T  # (C, k)
    channels = np.arange(values.shape[1])[:, None]
    return TopActivations(maxima.layer, maxima.values[images, channels],
                          images, maxima.positions[images, channels].astype(np.int64))


def top_activations(model: keras.Model, layer_name: str, images: np.ndarray, k: int = 9,
                    batch_size: int = 250, progress: bool = True) -> TopActivations:
    """Each channel of layer_name: its k most exciting images and where its maximal unit is."""
    return top_k(channel_maxima(model, layer_name, images, batch_size, progress), k)


# A channel whose best responses are under this share of the layer's average channel's is
# near-dead: it fires weakly on a few odd patches, often at the image border, and the classes of
# those images say little about it. Such channels are ranked after all others.
WEAK = 0.25


def class_purity(top: TopActivations, labels: np.ndarray) -> list[dict]:
    """Per channel: how much its top-k images agree on a class.

    purity is the share of the top-k images that belong to the most common class among them
    (dominant; on a tie, the class whose images excite the channel more, then the class of the
    higher-ranked image); mean_activation is the
    mean of the top-k activations; weak marks a channel whose mean_activation is under WEAK times
    the average over the layer's channels, dead one that never fires on these images.
    """
    means = top.values.mean(axis=1)
    typical = float(means.mean())
    rows = []
    for channel, (images, values) in enumerate(zip(top.images, top.values, strict=True)):
        classes = np.asarray(labels)[images]
        counts = Counter(classes.tolist())
        dominant = max(counts, key=lambda c: (counts[c], values[classes == c].sum()))
        rows.append({"channel": channel, "purity": counts[dominant] / len(images),
                     "dominant": int(dominant), "count": counts[dominant],
                     "mean_activation": float(means[channel]),
                     "weak": bool(means[channel] <= WEAK * typical),
                     "dead": bool(values.max() <= 0)})
    return rows


def select_interesting(top: TopActivations, labels: np.ndarray, n: int = 10,
                       per_class: int | None = 3) -> list[int]:
    """The n channels whose top-k images are most often of one class (class purity), ties broken
    by the mean top-k activation; weak and dead channels (see class_purity) come last.

    At most per_class channels are taken per dominant class while others remain (None: no cap),
    so that ten neurons show several classes rather than ten detectors of the easiest one.
    """
    rows = class_purity(top, labels)
    rows.sort(key=lambda r: (r["weak"], -r["purity"], -r["mean_activation"], r["channel"]))
    taken: list[dict] = []
    for row in rows:
        if per_class is None or sum(t["dominant"] == row["dominant"] for t in taken) < per_class:
            taken.append(row)
    rest = [r for r in rows if r not in taken]
    return [r["channel"] for r in (taken + rest)[:n]]


def channel_means(model: keras.Model, layer_name: str, images: np.ndarray, batch_size: int = 250,
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, over all images and positions: the mean activation and the share of units
    that fire (> 0). A channel at 0 and 0 is dead on these images; one far above the rest
    dominates."""
    if len(images) == 0:
        raise AnalysisError("no images to feed through the network")
    submodel = layer_model(model, layer_name)
    total, active, units = 0.0, 0.0, 0
    for start in tqdm(range(0, len(images), batch_size), desc=f"{layer_name} means", unit="batch",
                      disable=not progress):
        batch = np.asarray(images[start:start + batch_size], dtype=np.float32)
        maps = np.asarray(submodel.predict_on_batch(batch), dtype=np.float64)
        total = total + maps.sum(axis=(0, 1, 2))
        active = active + (maps > 0).sum(axis=(0, 1, 2))
        units += maps.shape[0] * maps.shape[1] * maps.shape[2]
    return (total / units).astype(np.float32), (active / units).astype(np.float32)

