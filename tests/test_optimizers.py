"""The fused Adam and AdamW take the same steps as Keras' own, on one device and mirrored over
two."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT

from models.optimizers import FusedAdam, FusedAdamW


def train(optimizer_class, scope=contextlib.nullcontext, **options) -> keras.Model:
    """Twelve steps of a small network, the same data and initial weights every time."""
    keras.utils.set_random_seed(0)
    with scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile(optimizer_class(learning_rate=0.01, **options), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype("float32"), rng.normal(size=(64, 3)).astype("float32")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
    return model


@pytest.mark.parametrize(("keras_class", "fused_class", "options"), [
    (keras.optimizers.Adam, FusedAdam, {}),
    (keras.optimizers.Adam, FusedAdam, {"weight_decay": 0.01}),
    (keras.optimizers.AdamW, FusedAdamW, {"weight_decay": 0.05}),
])
def test_fused_update_equals_keras(keras_class, fused_class, options):
    expected, fused = train(keras_class, **options), train(fused_class, **options)
    assert int(fused.optimizer.iterations) == 12
    for a, b in zip(expected.get_weights(), fused.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, atol=2e-6)
    for a, b in zip(expected.optimizer.variables, fused.optimizer.variables, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-6)


MIRRORED = """
import sys
import models, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
sys.path.insert(0, "tests")
from test_optimizers import train
from models.optimizers import FusedAdam
scope = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope
expected, fused = train(keras.optimizers.Adam, scope), train(FusedAdam, scope)
print(max(float(np.max(np.abs(a - b)))
          for a, b in zip(expected.get_weights(), fused.get_weights())))
print(max(float(np.max(np.abs(np.asarray(m.value.values[0]) - np.asarray(m.value.values[1]))))
          for m in fused.optimizer._momentums))
"""


@pytest.mark.slow
def test_fused_update_under_mirrored_strategy_equals_keras():
    result = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    weights_gap, replica_gap = map(float, result.stdout.split())
    assert weights_gap < 2e-6
    assert replica_gap == 0.0  # each replica updated its own copy, once
