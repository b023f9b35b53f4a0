"""Activation maximization (analysis.activation_max), its figures
(analysis.activation_max_figures) and explain.py activation-max."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import run_script

from analysis import AnalysisError
from analysis.activation_max import Ascent, maximize, spectrum_scale, to_pixels
from analysis.activations import layer_model


@pytest.fixture(scope="module")
def tiny():
    """Rescaling -> conv(relu) -> max pool -> dropout -> conv(relu) "C2" (5 channels), random
    weights, C2's positive (so that every C2 channel rises with its C1 inputs and can be
    excited); the dropout would make the results vary if it ran in training mode."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(1 / 64.0, -2.0)(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="C1")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="C2")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, name="D")(x)
    model = keras.Model(inputs, outputs)
    conv = model.get_layer("C2")
    conv.kernel.assign(np.abs(conv.kernel.numpy()))
    return model


CHANNELS = [0, 1, 2, 3, 4]


def test_each_small_step_without_jitter_raises_the_objective(tiny):
    # The exact claim: with the jitter off, every Adam step of a small learning rate goes uphill
    # on every channel's objective (its mean before the ReLU), and so does the activation after
    # the ReLU from start to end.
    vis = maximize(tiny, "C2", CHANNELS, Ascent(steps=40, jitter=0, learning_rate=0.01))
    assert vis.trace.shape == vis.activation.shape == (5, 41)
    assert (np.diff(vis.trace, axis=1) > 0).all()
    assert (vis.activation[:, -1] > vis.activation[:, 0]).all()


def test_defaults_raise_the_activation_well_above_its_start_and_random_images(tiny):
    vis = maximize(tiny, "C2", CHANNELS, Ascent(steps=200))
    assert (vis.trace[:, -1] > vis.trace[:, 0] + 0.5).all()
    maps = layer_model(tiny, "C2")(np.random.default_rng(0).uniform(0, 255, (50, 12, 12, 3)),
                                   training=False).numpy()
    assert (vis.activation[:, -1] > maps.mean(axis=(1, 2)).max(axis=0)).all()


def test_traces_are_the_layer_s_own_output_on_the_images(tiny):
    vis = maximize(tiny, "C2", [4, 1], Ascent(steps=5, seed=2))
    maps = layer_model(tiny, "C2")(vis.images, training=False).numpy()
    np.testing.assert_allclose(vis.activation[:, -1], maps[[0, 1], ..., [4, 1]].mean(axis=(1, 2)),
                               rtol=1e-5)
    # The objective is the same mean before the ReLU, never above the mean after it.
    assert (vis.trace <= vis.activation + 1e-6).all()
    centre = maximize(tiny, "C2", [4, 1], Ascent(steps=5, seed=2, objective="centre"))
    np.testing.assert_allclose(centre.activation[:, -1],
                               layer_model(tiny, "C2")(centre.images, training=False).numpy()
                               [[0, 1], 3, 3, [4, 1]], rtol=1e-5)


def test_pixels_stay_in_the_network_s_input_range(tiny):
    vis = maximize(tiny, "C2", CHANNELS, Ascent(steps=30, learning_rate=0.5))
    assert vis.images.shape == (5, 12, 12, 3) and vis.images.dtype == np.float32
    assert vis.images.min() >= 0.0 and vis.images.max() <= 255.0
    assert vis.images.max() - vis.images.min() > 100  # it did leave the grey start


def test_a_zero_spectrum_is_mid_grey():
    scale = spectrum_scale(6, 5)
    assert scale.shape == (6, 3) and scale[0, 0] == scale.max()  # lowest frequency weighs most
    pixels = to_pixels(np.zeros((1, 2, 3, 6, 3), np.float32), scale, 6, 5).numpy()
    assert pixels.shape == (1, 6, 5, 3)
    np.testing.assert_allclose(pixels, 127.5)


def test_deterministic_for_a_seed_and_different_for_another(tiny):
    first = maximize(tiny, "C2", [1, 3], Ascent(steps=10))
    again = maximize(tiny, "C2", [1, 3], Ascent(steps=10))
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.trace, again.trace)
    other = maximize(tiny, "C2", [1, 3], Ascent(steps=10, seed=1))
    assert np.abs(other.images - first.images).max() > 1.0


def test_a_channel_s_image_does_not_depend_on_the_others(tiny):
    alone = maximize(tiny, "C2", [3], Ascent(steps=10))
    together = maximize(tiny, "C2", [1, 3], Ascent(steps=10))
    np.testing.assert_allclose(alone.images[0], together.images[1], atol=1e-2)


@pytest.mark.parametrize(("layer", "channels", "options", "message"), [
    ("C2", [5], {}, "layer C2 has channels 0 to 4; no 5"),
    ("D", [0], {}, "no conv or pool layer 'D'"),
    ("C2", [0], {"objective": "max"}, "objective must be one of mean, centre, not 'max'"),
    ("C2", [0], {"steps": -1}, "steps and jitter must be at least 0"),
    ("C2", [0], {"learning_rate": float("nan")}, r"the learning rate above 0, not 256, 2, nan$"),
])
def test_bad_requests_raise_analysis_errors(tiny, layer, channels, options, message):
    with pytest.raises(AnalysisError, match=message):
        maximize(tiny, layer, channels, Ascent(**options))


@pytest.mark.slow
def test_explain_activation_max_writes_the_figure_and_the_documented_keys(tiny_run, tiny_cifar,
                                                                          tmp_path):
    result = run_script("explain.py", "activation-max", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--images", "40", "--count", "2", "--steps", "4",
                        "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CONV4 neuron" in result.stdout
    for name in ("actmax_CONV4.png", "actmax_CONV4.npz", "actmax_CONV4.json"):
        assert (tmp_path / name).stat().st_size > 0
        assert f"wrote {tmp_path / name}" in result.stdout
    with np.load(tmp_path / "actmax_CONV4.npz") as saved:
        assert {"layer", "objective", "seed", "steps", "channels", "images", "trace", "activation",
                "top_images", "top_activations"} <= set(saved.files)
        assert saved["images"].shape == (2, 32, 32, 3) and saved["images"].dtype == np.uint8
        assert saved["trace"].shape == (2, 5) and saved["top_images"].shape == (2, 9)
        assert str(saved["layer"]) == "CONV4"
    record = json.loads((tmp_path / "actmax_CONV4.json").read_text())
    assert record["steps"] == 4 and len(record["channels"]) == 2
    assert {"channel", "reason", "dominant", "synthesized_mean", "synthesized_max",
            "top_activations"} <= set(record["channels"][0])
