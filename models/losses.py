"""Losses the training recipes use."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="cifar10")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy against integer labels smoothed towards uniform.

    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016. Keras'
    sparse cross-entropy takes no label_smoothing, so the labels are one-hot encoded here.
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"),
                                   keras.ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(labels, y_pred,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def make_loss(label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The report's loss (negative log-likelihood of the labels), smoothed if asked."""
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(name="nll")
    return SmoothedSparseCrossentropy(label_smoothing)
