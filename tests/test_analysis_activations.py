"""analysis.activations: per-channel maxima, top-k images, class purity, mean activations."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from analysis import AnalysisError
from analysis.activations import (
    TopActivations,
    channel_maxima,
    channel_means,
    class_purity,
    layer_model,
    select_interesting,
    spatial_layer,
    top_activations,
    top_k,
)
from models.network import build_model


@pytest.fixture(scope="module")
def network() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)


def brute_force(maps: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every channel's k largest (image max, lowest index first on ties), the slow obvious way."""
    n, _, _, channels = maps.shape
    best = maps.reshape(n, -1, channels).max(axis=1)
    order = [sorted(range(n), key=lambda i, c=c: (-best[i, c], i))[:k] for c in range(channels)]
    picked = np.array(order)
    return picked, np.take_along_axis(best.T, picked, axis=1)


@pytest.mark.parametrize("layer", ["CONV4", "POOL1"])
def test_top_k_is_the_brute_force_top_k(network, images, layer):
    # Batches of 7: 6 batches, the last one short.
    top = top_activations(network, layer, images, k=5, batch_size=7, progress=False)
    maps = keras.ops.convert_to_numpy(layer_model(network, layer)(images.astype(np.float32),
                                                                  training=False))
    expected_images, expected_values = brute_force(maps, 5)
    assert top.layer == layer and top.values.dtype == np.float32
    assert top.images.shape == (maps.shape[-1], 5) and top.positions.shape == (maps.shape[-1], 5, 2)
    np.testing.assert_array_equal(top.images, expected_images)
    np.testing.assert_allclose(top.values, expected_values, rtol=1e-5, atol=1e-6)
    assert (np.diff(top.values, axis=1) <= 0).all()
    # The position is where the maximum is, the first one in row-major order.
    for channel in range(0, maps.shape[-1], 17):
        for image, value, (row, col) in zip(top.images[channel], top.values[channel],
                                            top.positions[channel], strict=True):
            plane = maps[image, :, :, channel]
            assert plane[row, col] == pytest.approx(value, rel=1e-5, abs=1e-6)
            assert plane.argmax() == row * plane.shape[1] + col or plane.max() == plane[row, col]


def test_top_k_within_a_subset(network, images):
    maxima = channel_maxima(network, "CONV4", images, batch_size=16, progress=False)
    subset = np.array([3, 8, 9, 20, 33])
    within = top_k(maxima, 3, subset=subset)
    for channel in (0, 100, 255):
        order = sorted(subset.tolist(), key=lambda i: (-maxima.values[i, channel], i))[:3]
        assert within.images[channel].tolist() == order
    assert top_k(maxima, 99).images.shape == (256, 40)  # k is capped at the number of images


def test_bad_layer_and_no_images(network, images):
    assert spatial_layer(network, "POOL2").name == "POOL2"
    with pytest.raises(AnalysisError, match=r"^no conv or pool layer 'FC1' in the network; "
                                            r"choose one of CONV1, POOL1, CONV2, POOL2, CONV3, "
                                            r"CONV4, POOL3$"):
        layer_model(network, "FC1")
    with pytest.raises(AnalysisError, match=r"^no images to feed through the network$"):
        channel_maxima(network, "CONV1", images[:0], progress=False)
    with pytest.raises(AnalysisError, match=r"^no images to feed through the network$"):
        channel_means(network, "CONV1", images[:0], progress=False)


def test_purity_and_selection_on_known_numbers():
    top = TopActivations("X", values=np.array([[5, 4, 3, 2], [9, 8, 1, 1], [0.5, 0.5, 0.5, 0.5],
                                               [0, 0, 0, 0], [6, 6, 6, 6]], np.float32),
                         images=np.array([[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 4, 5], [0, 1, 2, 3],
                                          [1, 3, 5, 7]]),
                         positions=np.zeros((5, 4, 2), int))
    labels = np.array([2, 2, 2, 7, 1, 1, 3, 3])
    rows = class_purity(top, labels)
    assert [(r["purity"], r["dominant"], r["count"]) for r in rows] == [
        (0.75, 2, 3), (0.5, 1, 2), (0.5, 2, 2), (0.75, 2, 3), (0.25, 2, 1)]
    # Channel 1: classes 1 (9 + 8) and 3 (1 + 1) tie on count; the stronger class wins. Channels
    # 2 and 4: full ties; the class of the first (top-ranked) image wins.
    assert rows[1]["mean_activation"] == pytest.approx(4.75)
    # Mean activations 3.5, 4.75, 0.5, 0, 6 average 2.95: channel 2 (0.5 <= 0.25 * 2.95) is weak,
    # 3 dead too.
    assert [r["weak"] for r in rows] == [False, False, True, True, False]
    assert [r["dead"] for r in rows] == [False, False, False, True, False]
    # Purity first, then activation; weak channels last even when pure (channel 3).
    assert select_interesting(top, labels, n=5) == [0, 1, 4, 3, 2]
    assert select_interesting(top, labels, n=2) == [0, 1]


def test_selection_caps_channels_per_class():
    # Channels 0 and 1 are pure class-0 detectors (0 the stronger), channel 2 is half class 1.
    top = TopActivations("X", values=np.array([[4, 4], [3, 3], [2, 2]], np.float32),
                         images=np.array([[0, 1], [0, 1], [2, 0]]),
                         positions=np.zeros((3, 2, 2), int))
    labels = np.array([0, 0, 1])
    assert select_interesting(top, labels, n=3, per_class=None) == [0, 1, 2]
    assert select_interesting(top, labels, n=3, per_class=1) == [0, 2, 1]  # the cap moves 1 after 2
    assert select_interesting(top, labels, n=2, per_class=1) == [0, 2]


def test_channel_means_match_a_direct_computation(network):
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    means, active = channel_means(network, "CONV2", images, batch_size=8, progress=False)
    maps = keras.ops.convert_to_numpy(layer_model(network, "CONV2")(images.astype(np.float32),
                                                                     training=False))
    np.testing.assert_allclose(means, maps.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(active, (maps > 0).mean(axis=(0, 1, 2)), rtol=1e-6)
