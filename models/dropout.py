"""Dropout (Srivastava et al. 2014, JMLR 15) with a mask that costs fewer random bits.

Keras' Dropout on TensorFlow draws one 32-bit Philox word per element and turns it into a float
(tf.nn.experimental.stateless_dropout); on a CPU that draw is most of dropout's cost. Here each
element gets 8 random bits when the rate is a multiple of 1/256 (the report's 0.5 is) and 16 bits
otherwise, so one word serves 4 or 2 elements. An element is kept when its draw is at least
round(rate * 2^bits): a Bernoulli draw with that rate exactly for 8 bits, and within 2^-17 of the
configured rate for 16 (under mixed_bfloat16 Keras' own draw is a bfloat16 uniform, whose rate is
a multiple of 1/128). Kept elements are scaled by 1 / (1 - that rate), so the expected output is
the input. The gradient is the same mask times the incoming gradient, as for Keras' Dropout.
"""

from __future__ import annotations

import keras


def mask_bits(rate: float) -> int:
    """Random bits per element: 8 where they give the rate exactly, else 16."""
    return 8 if float(rate * 256).is_integer() else 16


def drawn_rate(rate: float) -> float:
    """The probability that an element is dropped: rate rounded to a multiple of 2^-bits (and kept
    below 1, so that kept elements have a finite scale)."""
    levels = 2 ** mask_bits(rate)
    return min(round(rate * levels), levels - 1) / levels


def keep_mask(shape, rate: float, seed, dtype):
    """0 for each dropped element, 1 / (1 - drawn_rate) for each kept one (TensorFlow tensors)."""
    import tensorflow as tf

    bits = mask_bits(rate)
    threshold = round(drawn_rate(rate) * 2**bits)
    count = tf.reduce_prod(shape)
    per_word = 32 // bits
    words = tf.random.stateless_uniform([(count + per_word - 1) // per_word], seed=seed,
                                        minval=None, maxval=None, dtype=tf.uint32)
    draws = tf.reshape(tf.bitcast(words, tf.uint8 if bits == 8 else tf.uint16), [-1])[:count]
    kept = tf.reshape(draws >= threshold, shape)
    scale = tf.constant(1 / (1 - drawn_rate(rate)), dtype)
    return tf.where(kept, scale, tf.zeros([], dtype))


@keras.saving.register_keras_serializable(package="cifar10")
class Dropout(keras.layers.Dropout):
    """keras.layers.Dropout with the cheaper mask on the TensorFlow backend; the same layer (and
    the same seed-generator state in the weights) otherwise."""

    def call(self, inputs, training=False):
        if not (training and self.rate > 0 and self.noise_shape is None
                and keras.backend.backend() == "tensorflow"):
            return super().call(inputs, training=training)
        import tensorflow as tf

        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        # The mask depends on no input, so the product's gradient is the mask times dy.
        return inputs * keep_mask(tf.shape(inputs), self.rate, seed, inputs.dtype)
