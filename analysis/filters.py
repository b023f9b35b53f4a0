"""Conv filters as images (the report's Task VI; Krizhevsky, Sutskever & Hinton, "ImageNet
Classification with Deep Convolutional Neural Networks", NIPS 2012, Fig. 3, show first-layer
filters the same way: each filter's weights as a small RGB image).
"""

from __future__ import annotations

import math

import numpy as np


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for n cells: 64 -> (8, 8), 128 -> (11, 12)."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def scale_filters(kernel: np.ndarray, normalize: bool) -> np.ndarray:
    """Weights (kh, kw, in, out) mapped to [0, 1] as (out, kh, kw, in) images.

    normalize=False: one common scale for all filters, zero at 0.5 (grey), so the filters'
    relative strengths show; normalize=True: each filter stretched to its own min..max.
    """
    filters = np.moveaxis(np.asarray(kernel, dtype=np.float32), -1, 0)
    if normalize:
        low = filters.min(axis=(1, 2, 3), keepdims=True)
        span = filters.max(axis=(1, 2, 3), keepdims=True) - low
        return (filters - low) / np.where(span > 0, span, 1)
    bound = float(np.abs(filters).max()) or 1.0
    return filters / (2 * bound) + 0.5


def channel_mosaic(filters: np.ndarray) -> np.ndarray:
    """(out, kh, kw, in) -> (out, H, W): each filter's input channels side by side in a
    near-square grid, one kh x kw tile per input channel, separated by one NaN (blank) pixel."""
    out, kh, kw, channels = filters.shape
    rows, cols = grid_shape(channels)
    mosaic = np.full((out, rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan, dtype=np.float32)
    for c in range(channels):
        r, q = divmod(c, cols)
        mosaic[:, r * (kh + 1):r * (kh + 1) + kh, q * (kw + 1):q * (kw + 1) + kw] = filters[..., c]
    return mosaic
