"""models/dropout.py against TensorFlow's dropout: the same mask semantics, rate, gradient."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.dropout import Dropout, drawn_rate, keep_mask, mask_bits


def test_bits_and_drawn_rate():
    assert [mask_bits(r) for r in (0.5, 0.25, 0.125, 3 / 256, 0.1, 0.3)] == [8, 8, 8, 8, 16, 16]
    assert drawn_rate(0.5) == 0.5 and drawn_rate(3 / 256) == 3 / 256
    assert drawn_rate(0.1) == 6554 / 65536 and abs(drawn_rate(0.1) - 0.1) < 2**-17
    assert drawn_rate(0.99999999) == 65535 / 65536  # kept elements keep a finite scale


@pytest.mark.parametrize("rate", [0.5, 0.1, 0.3])
def test_the_mask_is_bernoulli_with_the_rate_and_unbiased(rate):
    n = 1_000_003  # odd: the last word is cut
    mask = keep_mask(tf.constant([n]), rate, tf.constant([3, 4]), tf.float32).numpy()
    scale = 1 / (1 - drawn_rate(rate))
    assert set(np.unique(mask).tolist()) == {0.0, np.float32(scale)}
    dropped = (mask == 0).mean()
    assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    assert abs(mask.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)
    # Neighbouring elements, which share a random word, are independent draws.
    both = ((mask[:-1] == 0) & (mask[1:] == 0)).mean()
    assert abs(both - rate**2) < 5 * np.sqrt(rate**2 * (1 - rate**2) / n)


def test_layer_forward_and_gradient_match_tensorflows_dropout_for_the_same_mask():
    """Given the mask this layer drew, TensorFlow's own dropout expression (where(keep, x /
    (1 - rate), 0), differentiated by TensorFlow) gives the same output and input gradient."""
    layer = Dropout(0.3, seed=1)
    x = tf.random.normal([4, 6, 6, 5], seed=2)
    dy = tf.random.normal([4, 6, 6, 5], seed=3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    (dx,) = tape.gradient(y, [x], output_gradients=dy)
    kept = y.numpy() != 0
    assert 0.5 < kept.mean() < 0.9
    with tf.GradientTape() as tape:
        tape.watch(x)
        expected = tf.where(kept, x / (1 - drawn_rate(0.3)), 0.0)
    (expected_dx,) = tape.gradient(expected, [x], output_gradients=dy)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(dx.numpy(), expected_dx.numpy(), rtol=1e-6)


def test_layer_is_deterministic_for_a_seed_new_each_call_and_identity_in_inference():
    x = tf.ones([8, 100])
    first, again = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    a, b = first(x, training=True).numpy(), again(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, first(x, training=True).numpy())
    np.testing.assert_array_equal(first(x, training=False).numpy(), x.numpy())


def test_under_mixed_bfloat16_the_mask_is_bfloat16():
    layer = Dropout(0.5, seed=1, dtype="mixed_bfloat16")
    y = layer(tf.ones([2, 64], tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16 and set(np.unique(y.numpy().astype(np.float32))) == {0.0, 2.0}


def test_it_is_a_keras_dropout_with_the_same_weights_layout():
    ours, theirs = Dropout(0.5, name="DROP1"), keras.layers.Dropout(0.5, name="DROP1")
    assert isinstance(ours, keras.layers.Dropout)
    assert [v.shape for v in ours.weights] == [v.shape for v in theirs.weights]
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ours)).rate \
        == 0.5
