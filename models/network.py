"""The report's VGG-style CIFAR-10 network (CS7011 PA2, Task IV), as a Keras 3 Functional model.

CONV1 64 -> POOL1 -> CONV2 128 -> POOL2 -> CONV3 256 -> CONV4 256 -> POOL3 -> FC1 1024 -> FC2 1024
-> SOFTMAX (Dense 10) -> BN -> softmax: 6,216,114 parameters with the default options.
"""

from __future__ import annotations

import keras
from keras import layers

from models.config import CHOICES, Config
from models.dropout import Dropout

# Per-channel mean and standard deviation of the CIFAR-10 training set (0-255 scale). Input
# standardization is a layer of the model, so every script that feeds it raw pixels sees exactly
# what training saw. Fixed constants, not fitted, so the model is the same on any data copy.
CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)

CONV_LAYERS = ("CONV1", "CONV2", "CONV3", "CONV4")
DENSE_LAYERS = ("FC1", "FC2", "SOFTMAX", "BN")


def _conv(x, filters: int, name: str, batchnorm: str):
    # Xavier (Glorot uniform) initialization, as the report states; Keras' default, spelled out.
    x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                      kernel_initializer="glorot_uniform", name=name)(x)
    if batchnorm == "all":
        x = layers.BatchNormalization(name=f"{name}_BN")(x)
    return x


def _dropout(x, rate: float, name: str):
    # A rate of 0 removes the layer, so a no-dropout network has no Dropout layers at all.
    return Dropout(rate, name=name)(x) if rate > 0 else x


def build_model(batchnorm: str = "output", conv_dropout: float = 0.5, fc_dropout: float = 0.5,
                name: str = "cifar10_vgg") -> keras.Model:
    """Build the report's network.

    batchnorm: "output" (the report's network: one BatchNormalization on the 10 logits),
    "all" (also after every conv layer, for the report's Task V experiment) or "none".
    conv_dropout / fc_dropout: rates after every conv(+pool) block / after FC1 and FC2.
    """
    if batchnorm not in CHOICES["batchnorm"]:
        raise ValueError(f"batchnorm must be one of {CHOICES['batchnorm']}, not {batchnorm!r}")
    inputs = keras.Input(shape=(32, 32, 3), name="input")
    scale = [1.0 / s for s in CIFAR10_STD]
    x = layers.Rescaling(scale=scale,
                         offset=[-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD, strict=True)],
                         name="standardize")(inputs)
    x = _conv(x, 64, "CONV1", batchnorm)
    x = layers.MaxPooling2D(2, name="POOL1")(x)
    x = _dropout(x, conv_dropout, "DROP1")
    x = _conv(x, 128, "CONV2", batchnorm)
    x = layers.MaxPooling2D(2, name="POOL2")(x)
    x = _dropout(x, conv_dropout, "DROP2")
    x = _conv(x, 256, "CONV3", batchnorm)
    x = _dropout(x, conv_dropout, "DROP3")
    x = _conv(x, 256, "CONV4", batchnorm)
    x = layers.MaxPooling2D(2, name="POOL3")(x)
    x = _dropout(x, conv_dropout, "DROP4")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, activation="relu", kernel_initializer="glorot_uniform", name="FC1")(x)
    x = _dropout(x, fc_dropout, "DROP5")
    x = layers.Dense(1024, activation="relu", kernel_initializer="glorot_uniform", name="FC2")(x)
    x = _dropout(x, fc_dropout, "DROP6")
    x = layers.Dense(10, kernel_initializer="glorot_uniform", name="SOFTMAX")(x)
    if batchnorm != "none":
        x = layers.BatchNormalization(name="BN")(x)
    # float32 even under a mixed-precision policy: a bf16 softmax loses the small probabilities.
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def build_from_config(config: Config) -> keras.Model:
    """The network variant a run trained (batch-norm placement and dropout rates)."""
    return build_model(config.batchnorm, config.conv_dropout, config.fc_dropout)
