"""SmoothGrad: a gradient map averaged over noisy copies of the input.

Smilkov, Thorat, Kim, Viegas & Wattenberg, "SmoothGrad: removing noise by adding noise",
arXiv:1706.03825 (2017). A gradient map fluctuates sharply from pixel to pixel, because the
network's gradient does at this scale; the mean of the maps of n copies of the image, each with
Gaussian noise N(0, sigma^2) added to every pixel, keeps what the copies agree on. sigma is a
noise level times the range of the input, max - min; the input here is raw pixels, range 255.
The defaults are the paper's recommendations from its experiments: n = 50 samples (the maps get
smoother as n grows, with diminishing returns beyond about 50) and a noise level of 0.15 (10-20%
of the range balances a sharp map against one that captures the object's structure).
The noisy copies are not clipped to the pixel range, as in the paper.

Works with any map of images shaped like them: analysis.guided's saliency, guided
backpropagation and deconvnet maps. The noise comes from a seeded generator, one draw of every
image per sample, so a seed gives the same maps whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from analysis import AnalysisError

SAMPLES = 50  # Smilkov et al.'s recommended sample size
NOISE = 0.15  # Smilkov et al.: sigma / (max - min) of 10-20%
PIXEL_RANGE = 255.0  # the network takes raw pixels, 0 to 255


def check_smoothing(samples: int, noise: float) -> None:
    """samples: 0 (no SmoothGrad) or more; noise: a level of at least 0."""
    if samples < 0:
        raise AnalysisError(f"the number of SmoothGrad samples must be at least 0 (0: off), "
                            f"not {samples}")
    if not noise >= 0:  # also NaN
        raise AnalysisError(f"the SmoothGrad noise level must be at least 0, not {noise}")


@dataclass(frozen=True)
class Smoothing:
    """SmoothGrad's settings, checked when made: samples noisy copies per image (at least 1),
    the noise level (a fraction of the pixel range) and the noise generator's seed."""

    samples: int = SAMPLES
    noise: float = NOISE
    seed: int = 0

    def __post_init__(self):
        check_smoothing(self.samples, self.noise)
        if self.samples < 1:
            raise AnalysisError("SmoothGrad needs at least 1 sample")

    def title(self) -> str:
        return f"SmoothGrad ({self.samples} samples, noise {self.noise:g} of the pixel range)"

    def settings(self) -> dict:
        return {"smooth_samples": self.samples, "smooth_noise": self.noise,
                "smooth_seed": self.seed}


def smoothgrad(map_of: Callable[[np.ndarray], np.ndarray], images: np.ndarray, *,
               samples: int = SAMPLES, noise: float = NOISE, seed: int = 0,
               value_range: float = PIXEL_RANGE, progress: bool = False) -> np.ndarray:
    """The mean of map_of(images + noise) over samples draws of noise N(0, sigma^2), sigma =
    noise * value_range, float32 shaped like map_of's maps.

    map_of takes and returns arrays of images, one map per image (batching is its business).
    Deterministic for a seed; with noise 0 every copy is the image and the result is its map.
    """
    check_smoothing(samples, noise)
    if samples < 1:
        raise AnalysisError("SmoothGrad needs at least 1 sample")
    images = np.asarray(images, np.float32)
    rng = np.random.default_rng(seed)
    sigma = noise * value_range
    total = None
    for _ in tqdm(range(samples), desc="SmoothGrad samples", unit="sample",
                  disable=not progress):
        noisy = images + rng.normal(0.0, sigma, images.shape).astype(np.float32)
        maps = np.asarray(map_of(noisy), np.float64)
        total = maps if total is None else total + maps
    return (total / samples).astype(np.float32)
