"""Adam and AdamW whose update runs as one fused TensorFlow kernel per variable.

Keras 3 writes Adam's update (Kingma & Ba, ICLR 2015) as a dozen element-wise ops per variable;
on a 2-core CPU they take a third of the report network's bf16 training step (bench.py, profiled).
TensorFlow's ResourceApplyAdam computes the same formula in one pass over the variable:
m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
var -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps).
Decoupled weight decay (AdamW, Loshchilov & Hutter, ICLR 2019) is applied by Keras before the
update, as for the plain classes. Other backends, AMSGrad and sparse gradients take Keras' own
update.
"""

from __future__ import annotations

import keras


def _fused_update(optimizer, gradient, variable, learning_rate) -> bool:
    """Apply ResourceApplyAdam where it fits; False where Keras' own update must run instead."""
    if keras.backend.backend() != "tensorflow" or optimizer.amsgrad:
        return False
    import tensorflow as tf

    if isinstance(gradient, tf.IndexedSlices):
        return False
    dtype = variable.dtype
    index = optimizer._get_variable_index(variable)
    step = tf.cast(optimizer.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=optimizer._momentums[index].value.handle,
        v=optimizer._velocities[index].value.handle, beta1_power=beta_1**step,
        beta2_power=beta_2**step, lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
        epsilon=tf.cast(optimizer.epsilon, dtype), grad=tf.cast(gradient, dtype))
    return True


@keras.saving.register_keras_serializable(package="cifar10")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam, its update fused into one TensorFlow kernel per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if not _fused_update(self, gradient, variable, learning_rate):
            super().update_step(gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package="cifar10")
class FusedAdamW(keras.optimizers.AdamW):
    """keras.optimizers.AdamW, its update fused into one TensorFlow kernel per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if not _fused_update(self, gradient, variable, learning_rate):
            super().update_step(gradient, variable, learning_rate)
