"""Guided backpropagation, saliency and deconvnet maps (analysis.guided), their figures
(analysis.guided_figures) and guided_backprop.py."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_network, run_script

from analysis import AnalysisError
from analysis.choices import GRADIENT_METHODS
from analysis.guided import forward_to, output_gradients, render_map, unit_gradients
from analysis.guided_figures import guided_figures
from analysis.inputs import NeuronQuery, RunImages
from analysis.receptive_field import field_box, receptive_field
from data import load_cifar10
from runs.weights import load_network

EPS = 1e-3  # Keras' BatchNormalization epsilon
SCALE, OFFSET = np.array([0.02, 0.05]), np.array([-1.0, -3.0])


# ---------------------------------------------------------------------------------------------
# A small network and its hand-written forward and backward passes


@pytest.fixture(scope="module")
def small():
    """Rescaling -> conv(relu) -> batch norm -> max pool -> dropout -> conv(relu), random
    weights."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Rescaling(SCALE.tolist(), OFFSET.tolist())(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="C1")(x)
    x = keras.layers.BatchNormalization(name="BN1")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="C2")(x)
    model = keras.Model(inputs, x)
    w = {"k1": rng.normal(0, 0.5, (3, 3, 2, 3)), "b1": rng.normal(0, 0.3, 3),
         "gamma": rng.uniform(0.5, 2, 3), "beta": rng.normal(0, 0.5, 3),
         "mean": rng.normal(0, 0.3, 3), "var": rng.uniform(0.5, 2, 3),
         "k2": rng.normal(0, 0.5, (3, 3, 3, 4)), "b2": rng.uniform(0.2, 0.6, 4)}
    w = {key: value.astype(np.float32) for key, value in w.items()}
    model.get_layer("C1").set_weights([w["k1"], w["b1"]])
    model.get_layer("BN1").set_weights([w["gamma"], w["beta"], w["mean"], w["var"]])
    model.get_layer("C2").set_weights([w["k2"], w["b2"]])
    images = rng.uniform(0, 255, (5, 6, 6, 2)).astype(np.float32)
    return model, w, images


def conv_forward(x, kernel, bias):
    """3x3 'same' cross-correlation, stride 1:
    out[i, j] = sum x_pad[i + di, j + dj] @ kernel[di, dj]."""
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    height, width = x.shape[:2]
    return bias + sum(padded[di:di + height, dj:dj + width] @ kernel[di, dj]
                      for di in range(3) for dj in range(3))


def conv_backward(grad, kernel):
    """Gradient of conv_forward with respect to x: each output's gradient goes back through
    the filter."""
    height, width = grad.shape[:2]
    padded = np.zeros((height + 2, width + 2, kernel.shape[2]))
    for di in range(3):
        for dj in range(3):
            padded[di:di + height, dj:dj + width] += grad @ kernel[di, dj].T
    return padded[1:-1, 1:-1]


def pool_forward(x):
    """2x2 max pooling; also the switches (the flat index 0..3 of each window's first maximum)."""
    windows = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, -1).transpose(0, 2, 4, 1, 3)
    windows = windows.reshape(*windows.shape[:3], 4)
    return windows.max(-1), windows.argmax(-1)


def pool_backward(grad, switches):
    out = np.zeros((grad.shape[0] * 2, grad.shape[1] * 2, grad.shape[2]))
    for (i, j, c), where in np.ndenumerate(switches):
        out[2 * i + where // 2, 2 * j + where % 2, c] = grad[i, j, c]
    return out


def relu_backward(grad, pre, method):
    """The three rules (Springenberg et al. 2015, Fig. 1): forward mask, backward mask, or both."""
    forward_mask, backward_mask = pre > 0, grad > 0
    mask = {"saliency": forward_mask, "deconvnet": backward_mask,
            "guided": forward_mask & backward_mask}[method]
    return grad * mask


def reference(w, image, channel, row, col, method):
    """d C2[row, col, channel] / d image, explicit forward then explicit backward pass, in
    float64."""
    w = {key: value.astype(np.float64) for key, value in w.items()}
    bn_scale = w["gamma"] / np.sqrt(w["var"] + EPS)
    pre1 = conv_forward(image * SCALE + OFFSET, w["k1"], w["b1"])
    pooled, switches = pool_forward((np.maximum(pre1, 0) - w["mean"]) * bn_scale + w["beta"])
    pre2 = conv_forward(pooled, w["k2"], w["b2"])
    grad = np.zeros_like(pre2)
    grad[row, col, channel] = 1.0
    grad = conv_backward(relu_backward(grad, pre2, method), w["k2"])
    grad = relu_backward(pool_backward(grad, switches) * bn_scale, pre1, method)
    return conv_backward(grad, w["k1"]) * SCALE, np.maximum(pre2, 0)


# ---------------------------------------------------------------------------------------------
# The maps against the reference and against GradientTape


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_maps_equal_the_numpy_reference(small, method):
    model, w, images = small
    channels = np.array([0, 1, 2, 3, 0])
    # Each image's maximal unit of its channel, as the scripts choose them (an active unit).
    outputs = [reference(w, image, 0, 0, 0, method)[1] for image in images]
    positions = np.array([np.unravel_index(out[..., c].argmax(), out.shape[:2]) for out, c in
                          zip(outputs, channels, strict=True)])
    assert all(out[r, c, ch] > 0
               for out, (r, c), ch in zip(outputs, positions, channels, strict=True))
    maps = unit_gradients(model, "C2", images, channels, positions, method, batch_size=2)
    expected = np.stack([reference(w, image, ch, r, c, method)[0]
                         for image, ch, (r, c) in zip(images, channels, positions, strict=True)])
    assert np.abs(expected).max(axis=(1, 2, 3)).min() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_rules_differ_on_the_small_network(small):
    model, _, images = small
    maps = {m: unit_gradients(model, "C2", images, [2] * 5, [[1, 1]] * 5, m)
            for m in GRADIENT_METHODS}
    for a, b in (("guided", "saliency"), ("guided", "deconvnet"), ("saliency", "deconvnet")):
        assert not np.allclose(maps[a], maps[b]), (a, b)


@pytest.fixture(scope="module")
def network():
    return random_network(seed=1, images=3)


@pytest.mark.parametrize("layer", ["CONV2", "POOL2", "CONV4"])
def test_saliency_is_the_plain_gradient(network, layer):
    model, images = network
    channels, positions = np.array([5, 6, 7]), np.array([[0, 0], [2, 1], [3, 3]])
    index = np.column_stack([np.arange(3), positions, channels])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = keras.Model(model.input, model.get_layer(layer).output)(x, training=False)
        units = tf.gather_nd(outputs, index)
        total = tf.reduce_sum(units)
    expected = tape.gradient(total, x).numpy()
    maps = unit_gradients(model, layer, images, channels, positions, "saliency", batch_size=2)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())


def test_forward_walk_gives_the_layer_outputs(network):
    model, images = network
    for layer in ("standardize", "CONV1_BN", "DROP3", "CONV4"):
        expected = keras.Model(model.input, model.get_layer(layer).output)(images, training=False)
        np.testing.assert_allclose(forward_to(model, layer, tf.constant(images)).numpy(),
                                   expected.numpy(), rtol=1e-6, atol=1e-6)


def test_model_unchanged_after_a_call(network):
    model, images = network
    x = tf.constant(images)

    def plain_gradient():
        with tf.GradientTape() as tape:
            tape.watch(x)
            top = tf.reduce_sum(model(x, training=False)[:, 3])
        return tape.gradient(top, x).numpy()

    before, gradient_before = model.predict(images, verbose=0), plain_gradient()
    for method in GRADIENT_METHODS:
        unit_gradients(model, "CONV4", images, [1, 2, 3], [[1, 1], [2, 2], [3, 3]], method)
    np.testing.assert_array_equal(model.predict(images, verbose=0), before)
    np.testing.assert_array_equal(plain_gradient(), gradient_before)
    assert model.get_layer("CONV4").activation.__name__ == "relu"


def test_output_gradients_of_a_class_score(network):
    """Saliency of the score before the softmax (the BN output) is its plain gradient; the rules
    differ on it as on conv units; a spatial layer is refused."""
    model, images = network
    classes = np.array([2, 7, 2])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = keras.Model(model.input, model.get_layer("BN").output)(x, training=False)
        total = tf.reduce_sum(tf.gather(scores, classes, axis=1, batch_dims=1))
    expected = tape.gradient(total, x).numpy()
    maps = output_gradients(model, "BN", images, classes, "saliency", batch_size=2)
    # Through the whole network float32 rounding reaches about 1e-6 of the map's scale.
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    guided = output_gradients(model, "BN", images, classes, "guided")
    assert guided.shape == images.shape and not np.allclose(guided, maps)
    with pytest.raises(ValueError, match=r"^layer CONV4 has a spatial map"):
        output_gradients(model, "CONV4", images, classes)
    with pytest.raises(ValueError, match=r"^3 images but 2 units$"):
        output_gradients(model, "BN", images, classes[:2])


@pytest.mark.parametrize("position", [(0, 0), (3, 4), (7, 7)])
def test_maps_vanish_outside_the_receptive_field(network, position):
    """The gradient of a unit is zero outside its field and not inside (checks both modules'
    geometry)."""
    model, images = network
    top, left, bottom, right = field_box(receptive_field(model, "CONV4"), *position)
    inside = np.zeros((32, 32), bool)
    inside[max(top, 0):bottom, max(left, 0):right] = True
    maps = unit_gradients(model, "CONV4", images, [0, 1, 2], [position] * 3, "deconvnet")
    maps = np.abs(maps).max(axis=-1)
    assert maps[:, ~inside].max() == 0
    assert (maps[:, inside] > 0).mean() > 0.5


def test_render_map():
    grad = np.zeros((4, 4, 3))
    grad[0, 0] = [2.0, -2.0, 0.0]
    grad[1, 1, 0] = 1.0
    signed = render_map(grad, "signed", percentile=100)
    np.testing.assert_allclose(signed[0, 0], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(signed[1, 1], [0.75, 0.5, 0.5])
    assert signed[3, 3].tolist() == [0.5, 0.5, 0.5]
    absolute = render_map(grad, "abs", percentile=100)
    assert absolute.shape == (4, 4) and absolute[0, 0] == 1.0
    assert absolute[1, 1] == 0.5 and absolute[2, 2] == 0
    assert render_map(np.zeros((2, 2, 3)), "signed").tolist() == np.full((2, 2, 3), 0.5).tolist()


# The figures and the script


def test_guided_figures_write_maps_of_the_saved_units(random_run, tiny_cifar, tmp_path, capsys):
    printed: list[str] = []
    paths = guided_figures(RunImages(random_run, images=40), tmp_path, NeuronQuery(count=4, k=3),
                           method="all", log=printed.append)
    names = ["all_CONV4_maps.npz", *(f"{m}_CONV4{suffix}.png" for m in GRADIENT_METHODS
                                     for suffix in ("", "_top3")), "compare_CONV4.png"]
    assert [p.name for p in paths] == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temporary files left
    for path in paths[1:]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = np.load(paths[0])
    assert saved["neurons"].shape == (4,) and len(set(saved["neurons"].tolist())) == 4
    assert str(saved["layer"]) == "CONV4" and str(saved["split"]) == "test"
    assert saved["image_indices"].shape == (4, 3) and saved["image_indices"].max() < 40
    assert np.all(np.diff(saved["activations"], axis=1) <= 0)
    for method in GRADIENT_METHODS:
        assert saved[method].shape == (4, 3, 32, 32, 3)
    assert capsys.readouterr().out == ""  # the library prints nothing itself
    assert len(printed) == 4 and all(line.startswith("CONV4 neuron ") for line in printed)
    assert [int(line.split()[2].rstrip(":")) for line in printed] == saved["neurons"].tolist()
    test = load_cifar10(str(tiny_cifar))
    np.testing.assert_array_equal(saved["images"], test.x_test[saved["image_indices"]])
    np.testing.assert_array_equal(saved["labels"], test.y_test[saved["image_indices"]])
    # The saved maps are the maps of the saved units, and the units are the saved activations.
    model, _, _ = load_network(random_run)
    neuron, images, positions = saved["neurons"][0], saved["images"][0], saved["positions"][0]
    np.testing.assert_allclose(unit_gradients(model, "CONV4", images, [neuron] * 3, positions,
                                              "guided"), saved["guided"][0], rtol=1e-5, atol=1e-9)
    layer = keras.Model(model.input, model.get_layer("CONV4").output)(images.astype(np.float32))
    np.testing.assert_allclose(layer.numpy()[np.arange(3), positions[:, 0], positions[:, 1],
                                             neuron], saved["activations"][0], rtol=1e-5)
    rf = receptive_field(model, "CONV4")
    assert saved["boxes"][0].tolist() == [list(field_box(rf, *pos)) for pos in positions]


def test_guided_figures_by_hand_with_last_weights(random_run, tmp_path):
    printed: list[str] = []
    paths = guided_figures(RunImages(random_run, which="last", split="val", images=20), tmp_path,
                           NeuronQuery(neurons=[5, 1], k=2), render="abs", log=printed.append)
    assert [p.name for p in paths] == ["guided_CONV4_maps.npz", "guided_CONV4.png",
                                       "guided_CONV4_top2.png"]
    saved = np.load(paths[0])
    assert saved["neurons"].tolist() == [5, 1] and str(saved["split"]) == "val"
    assert printed == ["CONV4 neuron 5: picked by hand", "CONV4 neuron 1: picked by hand"]
    model, _, _ = load_network(random_run, "last")
    np.testing.assert_allclose(unit_gradients(model, "CONV4", saved["images"][0], [5, 5],
                                              saved["positions"][0], "guided"),
                               saved["guided"][0], rtol=1e-5, atol=1e-9)


def test_bad_neurons_layers_and_options_fail_before_any_work(random_run, tmp_path):
    nowhere = str(tmp_path / "nowhere")  # no data: the checks come before reading it
    out = tmp_path / "out"
    with pytest.raises(AnalysisError, match=r"^layer CONV4 has channels 0 to 255; no 256, 999$"):
        guided_figures(RunImages(random_run, data_dir=nowhere), out,
                       NeuronQuery(neurons=[3, 256, 999]))
    with pytest.raises(AnalysisError, match=r"^no conv or pool layer 'FC1' in the network; choose "
                                            r"one of CONV1, POOL1, CONV2, POOL2, CONV3, CONV4, "
                                            r"POOL3$"):
        guided_figures(RunImages(random_run, data_dir=nowhere), out, NeuronQuery(layer="FC1"))
    with pytest.raises(AnalysisError, match=r"^k must be at least 1, not 0$"):
        guided_figures(RunImages(random_run), out, NeuronQuery(k=0))
    with pytest.raises(AnalysisError, match=r"^the number of neurons must be at least 1, not 0$"):
        guided_figures(RunImages(random_run), out, NeuronQuery(count=0))
    with pytest.raises(AnalysisError, match=r"^method must be one of guided, saliency, deconvnet "
                                            r"or all, not 'x'$"):
        guided_figures(RunImages(random_run), out, method="x")
    with pytest.raises(AnalysisError, match=r"^render must be one of standard, signed, abs"):
        guided_figures(RunImages(random_run), out, render="x")
    assert not out.exists()


@pytest.mark.slow
def test_cli_writes_figures_and_maps_into_the_run_s_figures(tiny_run, tiny_cifar, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")  # the shared run stays as it is
    result = run_script("guided_backprop.py", "--run", str(run), "--data-dir", str(tiny_cifar),
                        "--method", "saliency", "-k", "3", "--images", "40", "--count", "2",
                        "--which", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("CONV4 neuron ") == 2
    figures = run / "figures"
    assert sorted(p.name for p in figures.iterdir()) == [
        "saliency_CONV4.png", "saliency_CONV4_maps.npz", "saliency_CONV4_top3.png"]
    assert f"wrote {figures / 'saliency_CONV4.png'}" in result.stdout
    assert np.load(figures / "saliency_CONV4_maps.npz")["saliency"].shape == (2, 3, 32, 32, 3)


@pytest.mark.slow
def test_cli_bad_layer_is_one_line_and_status_2(tiny_run, tiny_cifar, tmp_path):
    result = run_script("guided_backprop.py", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--layer", "FC1", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == ("error: no conv or pool layer 'FC1' in the network; choose one of "
                             "CONV1, POOL1, CONV2, POOL2, CONV3, CONV4, POOL3\n")
    result = run_script("guided_backprop.py", "--run", str(tiny_run), "-k", "0")
    assert result.returncode == 2 and "argument -k/--k: must be at least 1, not 0" in result.stderr
    assert not list(tmp_path.iterdir())
