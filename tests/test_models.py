"""The network's options: dropout placement, batch-norm placement, initialization, precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from models.network import CONV_LAYERS, DENSE_LAYERS, build_model

REPORT_PARAMS = {"CONV1": 1_792, "CONV2": 73_856, "CONV3": 295_168, "CONV4": 590_080,
                 "FC1": 4_195_328, "FC2": 1_049_600, "SOFTMAX": 10_250, "BN": 40}


def names_of(model, kind) -> list[str]:
    return [layer.name for layer in model.layers if isinstance(layer, kind)]


def test_default_network_has_the_reports_parameters():
    model = build_model()
    assert {name: model.get_layer(name).count_params() for name in REPORT_PARAMS} == REPORT_PARAMS
    assert model.count_params() == 6_216_114
    assert sum(model.get_layer(n).count_params() for n in CONV_LAYERS) == 960_896
    assert sum(model.get_layer(n).count_params() for n in DENSE_LAYERS) == 5_255_218


def test_dropout_follows_every_conv_block_and_both_fc_layers():
    model = build_model(conv_dropout=0.3, fc_dropout=0.6)
    order = [layer.name for layer in model.layers]
    for before, dropout in [("POOL1", "DROP1"), ("POOL2", "DROP2"), ("CONV3", "DROP3"),
                            ("POOL3", "DROP4"), ("FC1", "DROP5"), ("FC2", "DROP6")]:
        assert order[order.index(before) + 1] == dropout
    rates = {layer.name: layer.rate for layer in model.layers if isinstance(layer, layers.Dropout)}
    assert rates == {"DROP1": 0.3, "DROP2": 0.3, "DROP3": 0.3, "DROP4": 0.3, "DROP5": 0.6,
                     "DROP6": 0.6}


def test_a_zero_rate_removes_the_dropout_layers():
    assert names_of(build_model(conv_dropout=0), layers.Dropout) == ["DROP5", "DROP6"]
    assert names_of(build_model(fc_dropout=0), layers.Dropout) == ["DROP1", "DROP2", "DROP3",
                                                                    "DROP4"]
    assert build_model(conv_dropout=0, fc_dropout=0).count_params() == 6_216_114


def test_batchnorm_placement():
    assert names_of(build_model("output"), layers.BatchNormalization) == ["BN"]
    assert names_of(build_model("none"), layers.BatchNormalization) == []
    assert build_model("none").count_params() == 6_216_114 - 40
    everywhere = build_model("all")
    assert names_of(everywhere, layers.BatchNormalization) == ["CONV1_BN", "CONV2_BN", "CONV3_BN",
                                                               "CONV4_BN", "BN"]
    assert everywhere.count_params() == 6_216_114 + 4 * (64 + 128 + 256 + 256)
    with pytest.raises(ValueError, match="batchnorm must be one of"):
        build_model("everywhere")


def test_softmax_computes_in_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model()
        assert model.get_layer("FC1").compute_dtype == "bfloat16"
        pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        probabilities = model(pixels)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("softmax").compute_dtype == "float32"
    assert probabilities.dtype == "float32"
    np.testing.assert_allclose(np.sum(np.asarray(probabilities), axis=1), 1.0, rtol=1e-6)


def test_the_model_standardizes_raw_pixels():
    """Scripts feed raw 0-255 pixels; the first layer maps the CIFAR-10 mean to zero."""
    model = build_model()
    standardize = keras.Model(model.input, model.get_layer("standardize").output)
    mean = np.broadcast_to(np.array([125.3, 123.0, 113.9], "float32"), (1, 32, 32, 3))
    np.testing.assert_allclose(np.asarray(standardize(mean)), 0.0, atol=1e-5)
