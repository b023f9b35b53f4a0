"""Receptive fields of conv/pool units, computed from the network's own layer geometry.

The recurrence is the standard one (e.g. Araujo, Norris & Sim, "Computing Receptive Fields of
Convolutional Neural Networks", Distill 2019): walking the layers from the input, a layer with
kernel k, stride s, dilation d and padding p (before the first input pixel) turns the field
(size r, stride j, start a) of its input units into

    r' = r + (k - 1) d j,    j' = j s,    a' = a - p j,

where a is the input-pixel coordinate of the top-left corner of unit 0's field (negative when
the field reaches into the padding). Unit i then sees pixels a' + i j' ... a' + i j' + r' - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

# Layers that keep the spatial geometry unit for unit.
_POINTWISE = (layers.InputLayer, layers.Rescaling, layers.Dropout, layers.SpatialDropout2D,
              layers.BatchNormalization, layers.LayerNormalization, layers.Activation, layers.ReLU,
              layers.LeakyReLU, layers.GaussianNoise)
_CONV = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)
_POOL = (layers.MaxPooling2D, layers.AveragePooling2D)
SPATIAL_LAYERS = _CONV + _POOL


@dataclass(frozen=True)
class ReceptiveField:
    """size x size input pixels per unit; neighbouring units are stride pixels apart; unit (0, 0)
    sees rows and columns start ... start + size - 1 (start < 0: partly in the zero padding)."""

    size: int
    stride: int
    start: int


def _square(value, what: str, layer) -> int:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if values[0] != values[1]:
        raise ValueError(f"layer {layer.name}: non-square {what} {values} is not supported")
    return int(values[0])


def _geometry(layer) -> tuple[int, int, int]:
    """(effective kernel, stride, padding before the first pixel) of a conv or pool layer."""
    if isinstance(layer, _POOL):
        kernel, dilation = _square(layer.pool_size, "pool size", layer), 1
    else:
        kernel = _square(layer.kernel_size, "kernel", layer)
        dilation = _square(layer.dilation_rate, "dilation", layer)
    stride = _square(layer.strides, "stride", layer)
    kernel = (kernel - 1) * dilation + 1
    pad = 0
    if layer.padding == "same":
        # TensorFlow's (and Keras') rule: the total padding makes ceil(n / s) outputs; the odd
        # pixel, if any, goes after the image, so the padding before it is total // 2.
        n = int(layer.input.shape[1])
        pad = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0) // 2
    return kernel, stride, pad


def receptive_field(model: keras.Model, layer_name: str) -> ReceptiveField:
    """The receptive field of one unit of layer_name, in input pixels (see the module docstring).

    Walks model.layers in order up to layer_name (the network is a chain); a layer that changes
    the geometry in a way not modelled here raises ValueError rather than giving a wrong field.
    """
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"no layer {layer_name!r}; conv/pool layers: "
                         f"{', '.join(spatial_layer_names(model))}")
    size, stride, start = 1, 1, 0
    for layer in model.layers[:names.index(layer_name) + 1]:
        if isinstance(layer, SPATIAL_LAYERS):
            kernel, s, pad = _geometry(layer)
            size, start, stride = size + (kernel - 1) * stride, start - pad * stride, stride * s
        elif not isinstance(layer, _POINTWISE):
            raise ValueError(f"layer {layer.name} ({type(layer).__name__}) has no receptive "
                             "field geometry")
    return ReceptiveField(size, stride, start)


def spatial_layer_names(model: keras.Model) -> list[str]:
    """The conv and pool layers of model, in order: the layers whose units have a field."""
    return [layer.name for layer in model.layers if isinstance(layer, SPATIAL_LAYERS)]


def field_box(rf: ReceptiveField, row: int, col: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of unit (row, col)'s field, bottom/right exclusive (slice
    bounds), not clipped to the image: it may start below 0 or end beyond the image size."""
    top, left = rf.start + row * rf.stride, rf.start + col * rf.stride
    return top, left, top + rf.size, left + rf.size


def crop_field(image: np.ndarray, box: tuple[int, int, int, int],
               fill: float | tuple = 0) -> np.ndarray:
    """The patch of image inside box, full size: the part of the box outside the image is drawn
    as padding (fill), so a border unit's patch is not stretched and keeps its position."""
    top, left, bottom, right = box
    patch = np.empty((bottom - top, right - left, *image.shape[2:]), dtype=image.dtype)
    patch[...] = fill
    height, width = image.shape[:2]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
    if y0 < y1 and x0 < x1:
        patch[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return patch
