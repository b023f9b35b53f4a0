"""The cascading randomization check (analysis.sanity), its figures (analysis.sanity_figures)
and explain.py sanity."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import run_script

from analysis import AnalysisError
from analysis.sanity import (
    METHODS,
    TRAINED,
    average_ranks,
    cascade,
    cascading_randomization,
    randomization_stages,
    rank_correlation,
    ssim,
)
from analysis.sanity_figures import curve_figure, stage_figure, summary

STAGES = ["trained", "SOFTMAX", "FC1", "CONV2", "CONV1"]


@pytest.fixture(scope="module")
def tiny():
    """The report's network in miniature: Rescaling -> CONV1 -> pool -> CONV2 -> CONV2_BN ->
    flatten -> FC1 -> dropout -> SOFTMAX -> BN -> softmax, every weight (batch-norm statistics
    too) drawn at random and unlike the initializers' values, as training leaves them."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 64.0, -2.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="CONV1")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="CONV2")(x)
    x = keras.layers.BatchNormalization(name="CONV2_BN")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="relu", name="FC1")(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(3, name="SOFTMAX")(x)
    x = keras.layers.BatchNormalization(name="BN")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="softmax")(x))
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in v.path
                       else rng.normal(0.2, 0.5, w.shape)
                       for v, w in zip(model.weights, model.get_weights(), strict=True)])
    images = rng.uniform(0, 255, (6, 8, 8, 3)).astype(np.float32)
    return model, images


def weights_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers
            if layer.weights}


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_stages_go_top_down_with_each_batch_norm_beside_its_layer(tiny):
    stages = randomization_stages(tiny[0])
    assert [s.name for s in stages] == STAGES
    assert stages[0].layers == stages[0].randomized == ()
    assert stages[1].layers == ("SOFTMAX", "BN")
    assert stages[3].layers == ("CONV2", "CONV2_BN")
    assert stages[-1].randomized == ("SOFTMAX", "BN", "FC1", "CONV2", "CONV2_BN", "CONV1")


def test_each_stage_changes_the_weights_of_its_own_layers_only(tiny):
    model, _ = tiny
    trained = weights_by_layer(model)
    previous = trained
    for stage, copy in cascade(model, seed=4):
        now = weights_by_layer(copy)
        for name in trained:
            # Changed from the stage before exactly in the stage's layers, and unlike the trained
            # weights exactly in the layers randomized so far.
            assert same(now[name], previous[name]) == (name not in stage.layers), (stage, name)
            assert same(now[name], trained[name]) == (name not in stage.randomized), (stage, name)
        previous = now
    # The layers' own initializers: Glorot kernels, zero biases, batch norm back to its start.
    np.testing.assert_array_equal(previous["FC1"][1], 0.0)
    gamma, beta, mean, variance = previous["BN"]
    assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (variance == 1).all()
    limit = np.sqrt(6 / (16 + 8))  # Glorot uniform for FC1's 16 x 8 kernel
    assert np.abs(previous["FC1"][0]).max() <= limit and previous["FC1"][0].std() > limit / 4
    untouched = weights_by_layer(model)
    assert all(same(untouched[name], trained[name]) for name in trained)


def test_the_cascade_is_deterministic_for_a_seed(tiny):
    model, _ = tiny
    runs = [[weights_by_layer(copy) for _, copy in cascade(model, seed=s)] for s in (1, 1, 2)]
    assert all(same(a[n], b[n]) for a, b in zip(runs[0], runs[1], strict=True) for n in a)
    assert not same(runs[0][-1]["CONV1"], runs[2][-1]["CONV1"])


def test_the_check_is_one_at_trained_and_leaves_the_model_alone(tiny):
    model, images = tiny
    before = weights_by_layer(model)
    predictions = model.predict_on_batch(images)
    check = cascading_randomization(model, images, layer="CONV2", seed=0, batch_size=4)
    assert [s.name for s in check.stages] == STAGES
    assert set(check.rank) == set(check.ssim) == set(check.maps) == set(METHODS)
    np.testing.assert_array_equal(check.targets, predictions.argmax(axis=1))
    for method, rank in check.rank.items():
        assert rank.shape == check.ssim[method].shape == (5, 6)
        defined = rank[0][np.isfinite(rank[0])]
        assert defined.size and np.allclose(defined, 1.0), method
        np.testing.assert_allclose(check.ssim[method][0][np.isfinite(check.ssim[method][0])],
                                   1.0)
    assert check.maps["saliency"].shape == (5, 6, 8, 8)
    assert check.maps["gradcam"].shape == (5, 6, 4, 4)
    # Randomizing the network changes the plain gradient.
    assert np.nanmean(check.rank["saliency"][-1]) < 0.9
    after = weights_by_layer(model)
    assert all(same(before[n], after[n]) for n in before)
    np.testing.assert_array_equal(model.predict_on_batch(images), predictions)


def test_the_maps_explain_the_targets_given(tiny):
    model, images = tiny
    targets = np.array([0, 1, 2, 0, 1, 2])
    one = cascading_randomization(model, images, targets, layer="CONV2", methods=["saliency"])
    other = cascading_randomization(model, images, (targets + 1) % 3, layer="CONV2",
                                    methods=["saliency"])
    np.testing.assert_array_equal(one.targets, targets)
    assert not np.allclose(one.maps["saliency"][0], other.maps["saliency"][0])


def brute_force_spearman(a, b) -> float:
    """Rank = 1 + how many are smaller + half of the others equal to it; then Pearson."""
    a, b = np.ravel(a), np.ravel(b)

    def ranks(v):
        return np.array([1 + (v < x).sum() + ((v == x).sum() - 1) / 2 for x in v])

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    cov = (ra * rb).sum() / n - ra.mean() * rb.mean()
    return cov / np.sqrt(((ra ** 2).sum() / n - ra.mean() ** 2) * ((rb ** 2).sum() / n
                                                                   - rb.mean() ** 2))


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(average_ranks(np.array([10, 20, 20, 5, 20])),
                                  [2, 4, 4, 1, 4])


@pytest.mark.parametrize("seed", range(5))
def test_rank_correlation_equals_the_brute_force_one_with_ties(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, (3, 5)), rng.integers(0, 3, 15)
    assert rank_correlation(a, b) == pytest.approx(brute_force_spearman(a, b), abs=1e-12)


def test_rank_correlation_special_cases():
    x = np.array([0.1, 3.0, 2.0, 7.0])
    assert rank_correlation(x, x ** 3) == pytest.approx(1.0)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(x, np.zeros(4)))
    with pytest.raises(ValueError, match="arrays of 4 and 3 values"):
        rank_correlation(x, x[:3])


def test_ssim_is_one_for_the_same_map_at_any_scale_and_less_for_another():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, (10, 9)), rng.uniform(0, 1, (10, 9))
    assert ssim(a, 3 * a) == pytest.approx(1.0)
    assert ssim(a, b) < 0.5
    assert ssim(a[:4, :4], a[:4, :4]) == pytest.approx(1.0)  # smaller than the window


@pytest.mark.parametrize(("options", "message"), [
    ({"methods": ["gradient"]}, "methods must be some of saliency, guided, deconvnet, gradcam"),
    ({"methods": []}, "methods must be some of .*, not none"),
    ({"layer": "FC1"}, "no conv or pool layer 'FC1'"),
])
def test_bad_requests_raise_analysis_errors(tiny, options, message):
    model, images = tiny
    with pytest.raises(AnalysisError, match=message):
        cascading_randomization(model, images, **{"layer": "CONV2", **options})


def test_a_network_without_a_separate_softmax_is_refused():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="C")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        keras.layers.Flatten()(x)))
    with pytest.raises(AnalysisError, match="scores before the softmax"):
        cascading_randomization(model, np.zeros((1, 4, 4, 3)), layer="C", methods=["saliency"])


def test_summary_and_figures(tiny, tmp_path):
    model, images = tiny
    check = cascading_randomization(model, images, layer="CONV2", methods=["guided", "gradcam"])
    record = summary(check)
    assert set(record) == {"guided", "gradcam"}
    for values in record.values():
        assert values["stages"] == STAGES and values["rank_correlation"][0] == pytest.approx(1.0)
        assert len(values["rank_correlation_per_image"]) == 5
        assert len(values["rank_correlation_per_image"][0]) == 6
        assert len(values["ssim"]) == len(values["undefined"]) == 5
    json.dumps(record, allow_nan=False)  # undefined values are null, not NaN
    image = images[0].astype(np.uint8)
    for path in (stage_figure(tmp_path / "s.png", check, image, 0, "t"),
                 curve_figure(tmp_path / "c.png", check, "t")):
        assert path.stat().st_size > 1000


@pytest.mark.slow
def test_explain_sanity_writes_the_figures_and_the_documented_keys(tiny_run, tiny_cifar,
                                                                   tmp_path):
    result = run_script("explain.py", "sanity", "--run", str(tiny_run), "--data-dir",
                        str(tiny_cifar), "--images", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("sanity_CONV4.json", "sanity_CONV4.png", "sanity_CONV4_curve.png"):
        assert (tmp_path / name).stat().st_size > 0
        assert f"wrote {tmp_path / name}" in result.stdout
    record = json.loads((tmp_path / "sanity_CONV4.json").read_text())
    stages = [TRAINED, "SOFTMAX", "FC2", "FC1", "CONV4", "CONV3", "CONV2", "CONV1"]
    assert record["stages"] == stages and record["images"] == 3
    assert record["stage_layers"]["SOFTMAX"] == ["SOFTMAX", "BN"]
    assert set(record["methods"]) == set(METHODS)
    for values in record["methods"].values():
        assert values["stages"] == stages
        assert values["rank_correlation"][0] == pytest.approx(1.0)
        assert len(values["rank_correlation"]) == len(values["ssim"]) == 8
        assert [len(v) for v in values["rank_correlation_per_image"]] == [3] * 8


def test_the_script_s_method_names_are_the_check_s():
    from analysis.choices import SANITY_METHODS

    assert tuple(METHODS) == SANITY_METHODS
