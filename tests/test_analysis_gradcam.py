"""Grad-CAM and Guided Grad-CAM (analysis.gradcam), their figures (analysis.gradcam_figures)
and explain.py gradcam."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import random_network, run_script

from analysis import AnalysisError
from analysis.gradcam import (
    choose_targets,
    class_maps,
    gradcam,
    per_class_sample,
    predict,
    score_layer,
    upsample,
)
from analysis.gradcam_figures import gradcam_figures
from analysis.guided import output_gradients
from analysis.inputs import RunImages
from data import load_cifar10
from models.network import build_model
from runs.weights import load_network

EPS = 1e-3  # Keras' BatchNormalization epsilon

# ---------------------------------------------------------------------------------------------
# A tiny classifier and its forward pass in numpy


@pytest.fixture(scope="module")
def tiny():
    """conv(relu) -> max pool -> dropout -> conv(relu) -> dense -> batch norm -> softmax, random
    weights; the first conv's bias keeps its outputs positive (no ties in the pooling)."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="C1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="P1")(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="C2")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="logits")(x)
    x = keras.layers.BatchNormalization(name="norm")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    w = {"k1": rng.normal(0, 0.3, (3, 3, 2, 3)), "b1": rng.uniform(4, 5, 3),
         "k2": rng.normal(0, 0.5, (3, 3, 3, 4)), "b2": rng.normal(0, 1, 4),
         "w": rng.normal(0, 0.5, (36, 3)), "b": rng.normal(0, 0.3, 3),
         "gamma": rng.uniform(0.5, 2, 3), "beta": rng.normal(0, 0.5, 3),
         "mean": rng.normal(0, 0.3, 3), "var": rng.uniform(0.5, 2, 3)}
    w = {key: value.astype(np.float32) for key, value in w.items()}
    model.get_layer("C1").set_weights([w["k1"], w["b1"]])
    model.get_layer("C2").set_weights([w["k2"], w["b2"]])
    model.get_layer("logits").set_weights([w["w"], w["b"]])
    model.get_layer("norm").set_weights([w["gamma"], w["beta"], w["mean"], w["var"]])
    images = rng.uniform(-1, 1, (4, 6, 6, 2)).astype(np.float32)
    return model, {key: value.astype(np.float64) for key, value in w.items()}, images


def conv(x, kernel, bias):
    """3x3 'same' cross-correlation, stride 1."""
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    height, width = x.shape[:2]
    return bias + sum(padded[di:di + height, dj:dj + width] @ kernel[di, dj]
                      for di in range(3) for dj in range(3))


def pool(x):
    return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, -1).max(axis=(1, 3))


def scores_from_c2(w, a2):
    z = a2.reshape(-1) @ w["w"] + w["b"]
    return (z - w["mean"]) / np.sqrt(w["var"] + EPS) * w["gamma"] + w["beta"]


def scores_from_c1(w, a1):
    return scores_from_c2(w, np.maximum(conv(pool(a1), w["k2"], w["b2"]), 0))


def numpy_gradcam(w, image, target, layer):
    """Grad-CAM by the definition: the gradient of the pre-softmax score by central
    differences, channel weights by its spatial mean, ReLU of the weighted sum of the maps."""
    a1 = np.maximum(conv(image.astype(np.float64), w["k1"], w["b1"]), 0)
    features, rest = (a1, scores_from_c1) if layer == "C1" else (
        np.maximum(conv(pool(a1), w["k2"], w["b2"]), 0), scores_from_c2)
    step, grad = 1e-6, np.zeros_like(features)
    for index in np.ndindex(features.shape):
        plus, minus = features.copy(), features.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (rest(w, plus)[target] - rest(w, minus)[target]) / (2 * step)
    weights = grad.mean(axis=(0, 1))
    return np.maximum((features * weights).sum(axis=-1), 0), rest(w, features)[target]


@pytest.mark.parametrize("layer", ["C1", "C2"])
def test_gradcam_equals_the_numpy_definition(tiny, layer):
    model, w, images = tiny
    targets = np.array([0, 1, 2, 1])
    cam, scores = gradcam(model, images, targets, layer=layer, batch_size=3)
    expected = [numpy_gradcam(w, image, t, layer) for image, t in zip(images, targets,
                                                                      strict=True)]
    expected_cam = np.stack([e[0] for e in expected])
    assert cam.dtype == np.float32 and cam.shape == expected_cam.shape
    assert expected_cam.max() > 0
    np.testing.assert_allclose(cam, expected_cam, rtol=1e-4, atol=1e-5 * expected_cam.max())
    np.testing.assert_allclose(scores, [e[1] for e in expected], rtol=1e-5, atol=1e-5)


def test_the_numpy_forward_pass_is_the_model_s(tiny):
    model, w, images = tiny
    a1 = [np.maximum(conv(image.astype(np.float64), w["k1"], w["b1"]), 0) for image in images]
    assert min(a.min() for a in a1) > 0  # no zeros to tie in the pooling windows
    logits = np.stack([scores_from_c1(w, a) for a in a1])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_the_score_layer_is_the_one_before_the_softmax(tiny):
    assert score_layer(tiny[0]).name == "norm"
    assert score_layer(build_model(batchnorm="output")).name == "BN"
    assert score_layer(build_model(batchnorm="all")).name == "BN"
    assert score_layer(build_model(batchnorm="none")).name == "SOFTMAX"
    inputs = keras.Input((4, 4, 1))
    logits = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(AnalysisError, match=r"^the network does not end in a softmax activation"):
        score_layer(logits)


@pytest.fixture(scope="module")
def network():
    return random_network(seed=2, images=5)


def test_gradcam_is_batched_and_at_the_layer_s_resolution(network):
    model, images = network
    targets = np.array([0, 3, 9, 3, 5])
    cam, scores = gradcam(model, images, targets, layer="CONV4", batch_size=5)
    assert cam.shape == (5, 8, 8) and cam.dtype == np.float32 and cam.min() >= 0
    small_batches = gradcam(model, images, targets, layer="CONV4", batch_size=2)
    np.testing.assert_allclose(small_batches[0], cam, rtol=1e-5, atol=1e-5 * cam.max())
    np.testing.assert_allclose(small_batches[1], scores, rtol=1e-5, atol=1e-5)
    assert gradcam(model, images, targets, layer="POOL2")[0].shape == (5, 8, 8)
    assert gradcam(model, images, targets, layer="CONV2")[0].shape == (5, 16, 16)
    # The score is the BN output before the softmax, whose softmax is the model's prediction.
    logits = keras.Model(model.input, model.get_layer("BN").output)(images, training=False)
    np.testing.assert_allclose(scores, logits.numpy()[np.arange(5), targets], rtol=1e-5,
                               atol=1e-5)


def test_bad_layers_and_classes(network):
    model, images = network
    with pytest.raises(AnalysisError, match=r"^no conv or pool layer 'FC1' in the network"):
        gradcam(model, images, [0] * 5, layer="FC1")
    with pytest.raises(AnalysisError, match=r"^the network has classes 0 to 9; no 10, 11$"):
        gradcam(model, images, [0, 10, 11, 10, 0])
    with pytest.raises(AnalysisError, match=r"^5 images but 2 target classes$"):
        gradcam(model, images, [0, 1])


def test_guided_gradcam_is_the_upsampled_cam_times_the_guided_map(network):
    model, images = network
    targets = np.array([1, 2, 3, 4, 5])
    maps = class_maps(model, images, targets, layer="CONV4", batch_size=2)
    np.testing.assert_array_equal(maps.cam, gradcam(model, images, targets, batch_size=2)[0])
    guided = output_gradients(model, "BN", images, targets, "guided", batch_size=2)
    np.testing.assert_allclose(maps.guided, guided, rtol=1e-5, atol=1e-7 * np.abs(guided).max())
    up = upsample(maps.cam, (32, 32))
    assert up.shape == (5, 32, 32) and np.abs(guided).max() > 0
    np.testing.assert_allclose(maps.guided_gradcam, up[..., None] * maps.guided, rtol=1e-6)


def test_upsample_is_bilinear():
    flat = upsample(np.full((1, 8, 8), 2.0), (32, 32))
    np.testing.assert_allclose(flat, 2.0)
    ramp = upsample(np.arange(4.0)[None, None, :].repeat(2, axis=1), (2, 8))[0, 0]
    # Pixel centres: output x maps to input (x + 0.5) / 2 - 0.5, clamped at the edges.
    np.testing.assert_allclose(ramp, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])


def test_model_unchanged_after_a_call(network):
    model, images = network
    before = model.predict(images, verbose=0)
    weights = [v.numpy().copy() for v in model.weights]
    class_maps(model, images, [0, 1, 2, 3, 4], layer="CONV3")
    np.testing.assert_array_equal(model.predict(images, verbose=0), before)
    for old, new in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    assert model.get_layer("CONV4").activation.__name__ == "relu"


# ---------------------------------------------------------------------------------------------
# Which class and which images


def test_choose_targets():
    probabilities = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.4, 0.4, 0.2]])
    labels = np.array([2, 0, 1])
    assert choose_targets(probabilities, labels).tolist() == [1, 0, 0]  # first on ties
    assert choose_targets(probabilities, labels, "true").tolist() == [2, 0, 1]
    assert choose_targets(probabilities, labels, 2).tolist() == [2, 2, 2]
    assert choose_targets(probabilities, labels, "1").tolist() == [1, 1, 1]
    assert choose_targets(np.eye(10)[:2], [0, 0], "cat").tolist() == [3, 3]
    with pytest.raises(AnalysisError, match=r"^target must be predicted, true, a class number 0 "
                                            r"to 2 or a class name \(airplane, automobile, "
                                            r"bird\), not 'dog'$"):
        choose_targets(probabilities, labels, "dog")
    with pytest.raises(AnalysisError, match=r"not 3$"):
        choose_targets(probabilities, labels, 3)


def test_per_class_sample_picks_the_most_confident_correct_image_and_mistake():
    probabilities = np.array([
        [0.6, 0.3, 0.1],  # 0: class 0, correct
        [0.9, 0.05, 0.05],  # 1: class 0, correct, more confident
        [0.2, 0.7, 0.1],  # 2: class 0, mistake (1)
        [0.1, 0.1, 0.8],  # 3: class 0, mistake (2), more confident
        [0.1, 0.8, 0.1],  # 4: class 1, correct
        [0.95, 0.03, 0.02],  # 5: class 2, mistake, confident in class 0
        [0.1, 0.85, 0.05],  # 6: class 1, correct, more confident
        [0.4, 0.3, 0.3],  # 7: class 2, mistake (0), less confident
    ])
    labels = np.array([0, 0, 0, 0, 1, 2, 1, 2])
    sample = per_class_sample(probabilities, labels)
    # Class 1 has no mistake and class 2 no correct image: they are left out.
    assert sample.indices.tolist() == [1, 3, 6, 5]
    assert sample.kinds == ["correct", "mistake", "correct", "mistake"]
    ties = per_class_sample(np.array([[0.8, 0.2], [0.8, 0.2]]), np.array([0, 0]))
    assert ties.indices.tolist() == [0] and ties.kinds == ["correct"]


# ---------------------------------------------------------------------------------------------
# The figures and the script

KEYS = {"layer", "split", "target", "image_indices", "kinds", "images", "labels", "predictions",
        "probabilities", "targets", "scores", "cam", "guided", "guided_gradcam"}


def test_gradcam_figures_on_a_per_class_sample(random_run, tiny_cifar, tmp_path):
    paths = gradcam_figures(RunImages(random_run, images=40, batch_size=16), tmp_path)
    assert [p.name for p in paths] == ["gradcam_CONV4_maps.npz", "gradcam_CONV4.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = np.load(paths[0])
    assert set(saved.files) == KEYS
    n = len(saved["image_indices"])
    assert str(saved["layer"]) == "CONV4" and str(saved["target"]) == "predicted"
    assert saved["images"].shape == (n, 32, 32, 3) and saved["images"].dtype == np.uint8
    assert saved["cam"].shape == (n, 8, 8) and saved["cam"].dtype == np.float32
    assert saved["guided_gradcam"].shape == (n, 32, 32, 3) and saved["cam"].min() >= 0
    model, _, _ = load_network(random_run)
    test = load_cifar10(str(tiny_cifar))
    x, y = test.x_test[:40], test.y_test[:40]
    sample = per_class_sample(predict(model, x), y)
    assert saved["image_indices"].tolist() == sample.indices.tolist()
    assert saved["kinds"].tolist() == sample.kinds
    np.testing.assert_array_equal(saved["images"], x[sample.indices])
    np.testing.assert_array_equal(saved["labels"], y[sample.indices])
    assert saved["targets"].tolist() == saved["predictions"].tolist()
    assert saved["predictions"].tolist() == saved["probabilities"].argmax(axis=1).tolist()
    cam, _ = gradcam(model, saved["images"], saved["targets"])
    np.testing.assert_allclose(saved["cam"], cam, rtol=1e-5, atol=1e-6 * max(cam.max(), 1e-9))


def test_gradcam_figures_on_chosen_images_for_the_true_class(random_run, tiny_cifar, tmp_path):
    paths = gradcam_figures(RunImages(random_run, which="last", images=10), tmp_path,
                            indices=[7, 2, 7], target="true", layer="CONV2")
    assert [p.name for p in paths] == ["gradcam_CONV2_maps.npz", "gradcam_CONV2.png"]
    saved = np.load(paths[0])
    test = load_cifar10(str(tiny_cifar))
    assert saved["image_indices"].tolist() == [7, 2, 7]
    assert saved["targets"].tolist() == test.y_test[[7, 2, 7]].tolist()
    assert saved["cam"].shape == (3, 16, 16) and saved["kinds"].tolist() == ["chosen"] * 3
    model, _, _ = load_network(random_run, "last")
    cam, _ = gradcam(model, saved["images"], saved["targets"], layer="CONV2")
    np.testing.assert_allclose(saved["cam"], cam, rtol=1e-5, atol=1e-6 * max(cam.max(), 1e-9))
    first = np.load(gradcam_figures(RunImages(random_run, images=3), tmp_path / "first",
                                    per_class=False, target="cat")[0])
    assert first["image_indices"].tolist() == [0, 1, 2] and first["targets"].tolist() == [3] * 3


def test_bad_requests_fail_before_any_work(random_run, tmp_path):
    nowhere = str(tmp_path / "nowhere")  # no data: these checks come before reading it
    out = tmp_path / "out"
    with pytest.raises(AnalysisError, match=r"^no conv or pool layer 'FC1' in the network; choose "
                                            r"one of CONV1, POOL1, CONV2, POOL2, CONV3, CONV4, "
                                            r"POOL3$"):
        gradcam_figures(RunImages(random_run, data_dir=nowhere), out, layer="FC1")
    with pytest.raises(AnalysisError, match=r"^target must be predicted, true, a class number"):
        gradcam_figures(RunImages(random_run, data_dir=nowhere), out, target="zebra")
    with pytest.raises(AnalysisError, match=r"^image indices go from 0; no -1$"):
        gradcam_figures(RunImages(random_run, data_dir=nowhere), out, indices=[3, -1])
    with pytest.raises(AnalysisError, match=r"^the batch size must be at least 1, not 0$"):
        gradcam_figures(RunImages(random_run, batch_size=0), out)
    with pytest.raises(AnalysisError, match=r"^image indices go from 0 to 9 \(the first 10 images "
                                            r"of the test split\); no 10, 50$"):
        gradcam_figures(RunImages(random_run, images=10), out, indices=[1, 10, 50])
    with pytest.raises(AnalysisError, match=r"^at most 200 images in one figure, not 300"):
        gradcam_figures(RunImages(random_run), out, indices=list(range(300)))
    assert not out.exists()


@pytest.mark.slow
def test_cli_writes_the_maps(tiny_run, tiny_cifar, tmp_path):
    result = run_script("explain.py", "gradcam", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--images", "30", "--out", str(tmp_path),
                        "--target", "true", "--layer", "CONV3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [f"wrote {tmp_path / 'gradcam_CONV3_maps.npz'}",
                                          f"wrote {tmp_path / 'gradcam_CONV3.png'}"]
    saved = np.load(tmp_path / "gradcam_CONV3_maps.npz")
    assert set(saved.files) == KEYS and str(saved["layer"]) == "CONV3"
    n = len(saved["targets"])
    assert saved["images"].shape == (n, 32, 32, 3) and saved["cam"].shape == (n, 8, 8)
    assert saved["targets"].tolist() == saved["labels"].tolist()
    assert saved["image_indices"].max() < 30


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "message"), [
    (["--layer", "FC2"], "error: no conv or pool layer 'FC2' in the network; choose one of "
                         "CONV1, POOL1, CONV2, POOL2, CONV3, CONV4, POOL3\n"),
    (["--target", "7x"], "error: target must be predicted, true, a class number 0 to 9 or a "
                         "class name (airplane, automobile, bird, cat, deer, dog, frog, horse, "
                         "ship, truck), not '7x'\n"),
    (["--images", "20", "--indices", "5,20"], "error: image indices go from 0 to 19 (the first "
                                              "20 images of the test split); no 20\n"),
])
def test_cli_bad_requests_are_one_line_and_status_2(tiny_run, tiny_cifar, tmp_path, flags,
                                                    message):
    result = run_script("explain.py", "gradcam", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--out", str(tmp_path), *flags)
    assert result.returncode == 2
    assert result.stderr == message
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_bad_indices_and_methods_are_usage_errors(tiny_run, tmp_path):
    result = run_script("explain.py", "gradcam", "--run", str(tiny_run), "--indices", "a,b")
    assert result.returncode == 2
    assert "argument --indices: takes image indices separated by commas" in result.stderr
    result = run_script("explain.py", "nothing", "--run", str(tiny_run))
    assert result.returncode == 2 and "invalid choice: 'nothing'" in result.stderr
