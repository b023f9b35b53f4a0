"""neurons.py and analysis.activations: top-k images per channel, class purity, the figures."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from conftest import run_script

import neurons
from analysis.activations import (
    TopActivations,
    channel_maxima,
    class_purity,
    layer_model,
    select_interesting,
    top_activations,
    top_k,
)
from analysis.receptive_field import field_box
from models.cli import UserError
from models.config import Config
from models.network import build_model
from models.runs import load_run


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
    top = top_activations(network, layer, images, k=5, batch_size=7, progress=False)  # batches of 7: 6 batches
    maps = keras.ops.convert_to_numpy(layer_model(network, layer)(images.astype(np.float32), training=False))
    expected_images, expected_values = brute_force(maps, 5)
    assert top.layer == layer and top.values.dtype == np.float32
    assert top.images.shape == (maps.shape[-1], 5) and top.positions.shape == (maps.shape[-1], 5, 2)
    np.testing.assert_array_equal(top.images, expected_images)
    np.testing.assert_allclose(top.values, expected_values, rtol=1e-5, atol=1e-6)
    assert (np.diff(top.values, axis=1) <= 0).all()
    # The position is where the maximum is, the first one in row-major order.
    for channel in range(0, maps.shape[-1], 17):
        for image, value, (row, col) in zip(top.images[channel], top.values[channel], top.positions[channel],
                                            strict=True):
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


def test_purity_and_selection_on_known_numbers():
    top = TopActivations("X", values=np.array([[5, 4, 3, 2], [9, 8, 1, 1], [0.5, 0.5, 0.5, 0.5], [0, 0, 0, 0],
                                               [6, 6, 6, 6]], np.float32),
                         images=np.array([[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 4, 5], [0, 1, 2, 3], [1, 3, 5, 7]]),
                         positions=np.zeros((5, 4, 2), int))
    labels = np.array([2, 2, 2, 7, 1, 1, 3, 3])
    rows = class_purity(top, labels)
    assert [(r["purity"], r["dominant"], r["count"]) for r in rows] == [
        (0.75, 2, 3), (0.5, 1, 2), (0.5, 2, 2), (0.75, 2, 3), (0.25, 2, 1)]
    # Channel 1: classes 1 (9 + 8) and 3 (1 + 1) tie on count; the stronger class wins. Channels 2 and 4:
    # full ties; the class of the first (top-ranked) image wins.
    assert rows[1]["mean_activation"] == pytest.approx(4.75)
    # Mean activations 3.5, 4.75, 0.5, 0, 6 average 2.95: channel 2 (0.5 <= 0.25 * 2.95) is weak, 3 dead too.
    assert [r["weak"] for r in rows] == [False, False, True, True, False]
    assert [r["dead"] for r in rows] == [False, False, False, True, False]
    # Purity first, then activation; weak channels last even when pure (channel 3).
    assert select_interesting(top, labels, n=5) == [0, 1, 4, 3, 2]
    assert select_interesting(top, labels, n=2) == [0, 1]



def test_selection_caps_channels_per_class():
    # Channels 0 and 1 are pure class-0 detectors (0 the stronger), channel 2 is half class 1.
    top = TopActivations("X", values=np.array([[4, 4], [3, 3], [2, 2]], np.float32),
                         images=np.array([[0, 1], [0, 1], [2, 0]]), positions=np.zeros((3, 2, 2), int))
    labels = np.array([0, 0, 1])
    assert select_interesting(top, labels, n=3, per_class=None) == [0, 1, 2]
    assert select_interesting(top, labels, n=3, per_class=1) == [0, 2, 1]  # the cap moves 1 after 2
    assert select_interesting(top, labels, n=2, per_class=1) == [0, 2]


def test_neurons_make_figures_on_a_tiny_run(tiny_run, tmp_path):
    paths = neurons.make_figures(tiny_run, tmp_path, k=4, count=3, progress=False)
    assert [p.name for p in paths] == ["neurons_CONV4.png", "neurons_CONV4_classes.png", "neurons_CONV4.json",
                                       "neurons_CONV4.csv"]
    for png in paths[:2]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    report = json.loads(paths[2].read_text())
    assert (report["layer"], report["split"], report["images"], report["k"]) == ("CONV4", "test", 100, 4)
    assert report["receptive_field"] == {"size": 26, "stride": 4, "start": -11}
    assert len(report["channels"]) == 256 and len(report["selected"]) == 3
    assert len({c["channel"] for c in report["class_neurons"]}) == 10
    # The JSON agrees with the network: each listed activation is the unit's value in its image.
    model, _, _ = load_run(str(tiny_run))
    x = neurons.load_split(Config.load(tiny_run / "config.json").data_dir, "test", None, 50)[0]
    submodel = layer_model(model, "CONV4")
    for pick in report["selected"]:
        channel = report["channels"][pick["channel"]]
        assert pick["reason"].startswith(f"{channel['count']}/4 of its top images are {channel['dominant_name']}")
        maps = keras.ops.convert_to_numpy(submodel(x[[t["image"] for t in channel["top"]]].astype(np.float32)))
        for plane, t in zip(maps[..., pick["channel"]], channel["top"], strict=True):
            assert plane.max() == pytest.approx(t["activation"], abs=1e-4)
            assert plane[tuple(t["unit"])] == pytest.approx(t["activation"], abs=1e-4)
            assert t["box"] == list(field_box(neurons.receptive_field(model, "CONV4"), *t["unit"]))
    rows = list(csv.DictReader(paths[3].open()))
    assert len(rows) == 256 and rows[5]["channel"] == "5"
    assert rows[5]["top_images"].split() == [str(t["image"]) for t in report["channels"][5]["top"]]


def test_neurons_by_hand_and_bad_input(tiny_run, tmp_path):
    paths = neurons.make_figures(tiny_run, tmp_path, layer="POOL2", images=30, k=3, neurons=[7, 2],
                                 progress=False)
    report = json.loads(paths[2].read_text())
    assert [s["channel"] for s in report["selected"]] == [7, 2]
    assert report["selected"][0]["reason"] == "picked by hand (--neurons)"
    assert report["receptive_field"] == {"size": 10, "stride": 4, "start": -3} and report["images"] == 30
    with pytest.raises(UserError, match=r"POOL2 has channels 0 to 127, not \[128\]"):
        neurons.make_figures(tiny_run, tmp_path, layer="POOL2", images=5, neurons=[128], progress=False)
    with pytest.raises(UserError, match="no conv or pool layer 'FC1' in the network; choose one of CONV1, POOL1"):
        neurons.make_figures(tiny_run, tmp_path, layer="FC1", images=5, progress=False)
    with pytest.raises(UserError, match="--neurons takes channel numbers"):
        neurons.parse_channels("3,x")


def test_neurons_cli(tiny_run, tmp_path):
    result = run_script("neurons.py", "--run", str(tiny_run), "--images", "40", "--k", "3", "--split", "val",
                        "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {tmp_path / 'neurons_CONV4_classes.png'}" in result.stdout
    assert result.stdout.count("CONV4 neuron ") == 10
    assert json.loads((tmp_path / "neurons_CONV4.json").read_text())["images"] == 40  # val holds 50 images
