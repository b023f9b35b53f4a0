"""SmoothGrad (analysis.smoothgrad), as an option of the gradient-map figures
(analysis.guided_figures) and of guided_backprop.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_network, run_script

from analysis import AnalysisError
from analysis.choices import GRADIENT_METHODS
from analysis.guided import unit_gradients
from analysis.guided_figures import guided_figures
from analysis.inputs import NeuronQuery, RunImages
from analysis.smoothgrad import NOISE, SAMPLES, Smoothing, smoothgrad
from runs.weights import load_network


@pytest.fixture(scope="module")
def network():
    return random_network(seed=3, images=3)


def unit_maps(model, method):
    def map_of(x):
        return unit_gradients(model, "CONV3", x, [4, 9, 30], [[2, 2], [4, 5], [7, 1]], method,
                              batch_size=2)
    return map_of


def test_the_paper_s_defaults():
    assert (SAMPLES, NOISE) == (50, 0.15)


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_zero_noise_gives_the_plain_map(network, method):
    model, images = network
    plain = unit_maps(model, method)(images)
    assert np.abs(plain).max() > 0
    np.testing.assert_array_equal(smoothgrad(unit_maps(model, method), images, samples=3,
                                             noise=0.0), plain)


def test_the_mean_over_noisy_copies(network):
    """The result is the mean of the maps of the noisy copies, and the copies carry noise of
    standard deviation noise * 255, a new draw each sample."""
    _, images = network
    seen = []

    def record(x):
        seen.append(x.copy())
        return x * np.float32(2.0)

    result = smoothgrad(record, images, samples=4, noise=0.1, seed=5)
    assert len(seen) == 4 and result.dtype == np.float32 and result.shape == images.shape
    np.testing.assert_allclose(result, 2 * np.mean(seen, axis=0), rtol=1e-5, atol=1e-3)
    noise = np.stack(seen) - images
    assert noise.std() == pytest.approx(25.5, rel=0.02) and abs(noise.mean()) < 0.5
    assert not np.allclose(noise[0], noise[1])


def test_deterministic_for_a_seed_and_different_across_seeds(network):
    model, images = network
    guided = unit_maps(model, "guided")
    first = smoothgrad(guided, images, samples=3, seed=1)
    np.testing.assert_array_equal(smoothgrad(guided, images, samples=3, seed=1), first)
    assert not np.allclose(smoothgrad(guided, images, samples=3, seed=2), first)
    assert not np.allclose(guided(images), first)


def test_model_unchanged_after_a_call(network):
    model, images = network
    before = model.predict(images, verbose=0)
    weights = [v.numpy().copy() for v in model.weights]
    smoothgrad(unit_maps(model, "deconvnet"), images, samples=2)
    np.testing.assert_array_equal(model.predict(images, verbose=0), before)
    for old, new in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())


def test_bad_settings():
    with pytest.raises(AnalysisError, match=r"^the number of SmoothGrad samples must be at least "
                                            r"0 \(0: off\), not -1$"):
        smoothgrad(lambda x: x, np.zeros((1, 2, 2, 3)), samples=-1)
    with pytest.raises(AnalysisError, match=r"^SmoothGrad needs at least 1 sample$"):
        smoothgrad(lambda x: x, np.zeros((1, 2, 2, 3)), samples=0)
    with pytest.raises(AnalysisError, match=r"^the SmoothGrad noise level must be at least 0, "
                                            r"not -0.1$"):
        smoothgrad(lambda x: x, np.zeros((1, 2, 2, 3)), noise=-0.1)


# ---------------------------------------------------------------------------------------------
# In the gradient-map figures and guided_backprop.py


def test_guided_figures_with_smoothgrad(random_run, tmp_path):
    paths = guided_figures(RunImages(random_run, images=20), tmp_path,
                           NeuronQuery(neurons=[5, 1], k=2), method="saliency",
                           smoothing=Smoothing(samples=2, noise=0.1, seed=4))
    assert [p.name for p in paths] == ["smoothgrad_saliency_CONV4_maps.npz",
                                       "smoothgrad_saliency_CONV4.png",
                                       "smoothgrad_saliency_CONV4_top2.png"]
    saved = np.load(paths[0])
    assert int(saved["smooth_samples"]) == 2 and float(saved["smooth_noise"]) == 0.1
    assert int(saved["smooth_seed"]) == 4
    model, _, _ = load_network(random_run)
    images, positions = saved["images"].reshape(-1, 32, 32, 3), saved["positions"].reshape(-1, 2)
    channels = np.repeat(saved["neurons"], 2)

    def map_of(x):
        return unit_gradients(model, "CONV4", x, channels, positions, "saliency")

    expected = smoothgrad(map_of, images, samples=2, noise=0.1, seed=4)
    np.testing.assert_allclose(saved["saliency"].reshape(expected.shape), expected, rtol=1e-5,
                               atol=1e-9)
    assert not np.allclose(map_of(images), expected)
    # Off (the default): the names and the npz are as they always were.
    plain = guided_figures(RunImages(random_run, images=20), tmp_path / "plain",
                           NeuronQuery(neurons=[5, 1], k=2), method="saliency")
    assert plain[0].name == "saliency_CONV4_maps.npz"
    assert not {"smooth_samples", "smooth_noise", "smooth_seed"} & set(np.load(plain[0]).files)


def test_smoothing_settings_are_checked_when_made():
    assert Smoothing() == Smoothing(samples=SAMPLES, noise=NOISE, seed=0)
    with pytest.raises(AnalysisError, match=r"^the number of SmoothGrad samples must be at least"):
        Smoothing(samples=-2)
    with pytest.raises(AnalysisError, match=r"^SmoothGrad needs at least 1 sample$"):
        Smoothing(samples=0)  # off is no Smoothing at all
    with pytest.raises(AnalysisError, match=r"^the SmoothGrad noise level must be at least 0"):
        Smoothing(samples=2, noise=float("nan"))


@pytest.mark.slow
def test_cli_smoothgrad(tiny_run, tiny_cifar, tmp_path):
    result = run_script("guided_backprop.py", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--neurons", "3", "-k", "2", "--images", "20",
                        "--smoothgrad", "2", "--noise", "0.2", "--seed", "7", "--out",
                        str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "smoothgrad_guided_CONV4.png", "smoothgrad_guided_CONV4_maps.npz",
        "smoothgrad_guided_CONV4_top2.png"]
    saved = np.load(tmp_path / "smoothgrad_guided_CONV4_maps.npz")
    assert (int(saved["smooth_samples"]), float(saved["smooth_noise"]),
            int(saved["smooth_seed"])) == (2, 0.2, 7)
    result = run_script("guided_backprop.py", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--smoothgrad", "2", "--noise", "-1", "--out",
                        str(tmp_path / "bad"))
    assert result.returncode == 2
    assert result.stderr == "error: the SmoothGrad noise level must be at least 0, not -1.0\n"
