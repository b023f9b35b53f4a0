"""Feature visualization by activation maximization: the input that excites a channel most.

Erhan, Bengio, Courville & Vincent, "Visualizing Higher-Layer Features of a Deep Network"
(Université de Montréal, 2009) synthesize an input by gradient ascent on a unit's activation.
Olah, Mordvintsev & Schubert, "Feature Visualization" (Distill, 2017) show what keeps the result
from being high-frequency noise that the network happens to respond to: transformation
robustness (the image is randomly jittered at every step) and a decorrelated parameterization
(the image is the inverse Fourier transform of a spectrum scaled by 1 / frequency, its colours
mixed by a fixed decorrelating matrix, so that a gradient step moves low frequencies as readily
as high ones). The keras-io example "Visualizing what convnets learn" is the plain version
(normalized gradient ascent on the pixels, no regularization).

Here, as in Olah et al. (and their lucid library):

- objective: the channel's mean over its feature map ("mean", lucid's channel objective, the
  default) or its centre unit ("centre", lucid's neuron objective), taken before the layer's
  ReLU: a near-grey start image leaves most units of a deep layer off, and an off ReLU passes
  no gradient (lucid optimizes its "pre_relu" layers for the same reason). The same mean or
  centre unit after the ReLU, the activation proper, is recorded alongside;
- the image lives in the network's own input space, raw pixels 0-255 (the network standardizes
  them itself): pixels = 255 * sigmoid(decorrelated image), so they stay within [0, 255];
- Adam (written out below) on the spectrum; at each step the image is shifted cyclically by a
  random offset of up to `jitter` pixels in each direction (the Fourier image is periodic, so a
  cyclic shift is a translation of it);
- the network runs in inference mode (dropout off, batch norm with its moving statistics);
- the start spectrum of each channel and the shifts come from numpy generators seeded by seed
  (and the channel), so a seed gives the same images.

The traces are the objective and the activation of the unjittered image at the start and after
every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from analysis import AnalysisError
from analysis.activations import layer_model, spatial_layer
from analysis.choices import JITTER, OBJECTIVES, STEPS
from analysis.selection import check_neurons

LEARNING_RATE = 0.05  # lucid's default for Adam on the decorrelated spectrum
START_SCALE = 0.01  # standard deviation of the start spectrum (lucid's): a near-grey image
# lucid's square root of ImageNet's colour covariance (columns: the decorrelated colour axes):
# mixing the three parameter channels by it gives natural colour statistics.
COLOUR_MIX = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOUR_MIX = COLOUR_MIX / np.linalg.norm(COLOUR_MIX, axis=0).max()
ADAM = (0.9, 0.999, 1e-8)  # beta1, beta2, epsilon


@dataclass(frozen=True)
class Ascent:
    """maximize's settings, checked when made: gradient-ascent steps, the objective ("mean" over
    the channel's map, or its "centre" unit), the random shift per step in pixels, Adam's
    learning rate and the seed of the start image and shifts."""

    steps: int = STEPS
    objective: str = "mean"
    jitter: int = JITTER
    learning_rate: float = LEARNING_RATE
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise AnalysisError(f"objective must be one of {', '.join(OBJECTIVES)}, not "
                                f"{self.objective!r}")
        if self.steps < 0 or self.jitter < 0 or not self.learning_rate > 0:
            raise AnalysisError(f"steps and jitter must be at least 0 and the learning rate "
                                f"above 0, not {self.steps}, {self.jitter}, "
                                f"{self.learning_rate}")


@dataclass
class Visualization:
    """Per chosen channel: its synthesized image and the objective along the way."""

    layer: str
    channels: np.ndarray  # (n,)
    objective: str
    images: np.ndarray  # (n, H, W, C) float32 raw pixels in [0, 255]
    trace: np.ndarray  # (n, steps + 1) float32: the objective at the start and after each step
    activation: np.ndarray  # (n, steps + 1) float32: the same after the ReLU


def spectrum_scale(height: int, width: int, decay: float = 1.0) -> np.ndarray:
    """Per frequency of a real 2-D FFT of a height x width image: 1 / frequency ** decay
    (the lowest frequency counted as 1 / max(height, width)), times sqrt(height * width) so that
    the transform is about unitary and pixel-sized learning rates apply (lucid's rule)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[: width // 2 + 1]
    freqs = np.sqrt(fx * fx + fy * fy)
    return (np.sqrt(height * width) / np.maximum(freqs, 1.0 / max(height, width)) ** decay
            ).astype(np.float32)


def to_pixels(spectrum: tf.Tensor, scale: np.ndarray, height: int, width: int) -> tf.Tensor:
    """Raw pixels (n, height, width, C) in [0, 255] from a spectrum (n, 2, C, fh, fw) of real
    and imaginary parts."""
    image = tf.signal.irfft2d(tf.complex(spectrum[:, 0] * scale, spectrum[:, 1] * scale),
                              fft_length=[height, width])
    image = tf.transpose(image, [0, 2, 3, 1]) / 4.0  # lucid's scaling of the Fourier image
    if image.shape[-1] == 3:
        image = tf.einsum("nhwc,dc->nhwd", image, COLOUR_MIX)
    return 255.0 * tf.sigmoid(image)


def start_spectrum(channels: np.ndarray, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Each channel's start spectrum from its own generator (seed, channel), so that a channel's
    image does not depend on which other channels are synthesized with it."""
    return np.stack([START_SCALE * np.random.default_rng([seed, int(c)]).standard_normal(shape)
                     for c in channels]).astype(np.float32)


def pre_relu_maps(model: keras.Model, layer: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function from raw pixels to layer's maps before its built-in ReLU (in inference mode);
    for a layer without one (a pool layer), to its output."""
    target = spatial_layer(model, layer)
    if not (isinstance(target, keras.layers.Conv2D) and target.data_format == "channels_last"
            and getattr(target.activation, "__name__", None) == "relu"):
        submodel = layer_model(model, layer)
        return lambda pixels: submodel(pixels, training=False)
    to_input = keras.Model(model.input, target.input)

    def maps(pixels):
        out = target.convolution_op(to_input(pixels, training=False), target.kernel)
        return out + target.bias if target.use_bias else out

    return maps


def maximize(model: keras.Model, layer: str, channels: list[int] | np.ndarray,
             ascent: Ascent = Ascent(), *, decay: float = 1.0,
             progress: bool = False) -> Visualization:
    """The images that maximize each channel of model's conv or pool layer (see the module
    docstring), one per channel, optimized together (in inference mode the images of a batch
    do not interact), by the ascent's settings; decay is the spectrum's (spectrum_scale)."""
    steps, objective, jitter, seed = ascent.steps, ascent.objective, ascent.jitter, ascent.seed
    channels = np.asarray(channels, np.int32).reshape(-1)
    check_neurons(model, layer, channels.tolist())
    maps_of = pre_relu_maps(model, layer)
    height, width, colours = (int(d) for d in model.input.shape[1:])
    scale = spectrum_scale(height, width, decay)
    spectrum = tf.Variable(start_spectrum(channels, (2, colours, *scale.shape), seed))
    moments = [tf.Variable(tf.zeros_like(spectrum)) for _ in range(2)]
    index = tf.constant(channels)

    def score(pixels):
        """(objective, activation) per image: before and after the ReLU."""
        maps = tf.gather(maps_of(pixels), index, axis=-1, batch_dims=1)
        if objective == "centre":
            maps = maps[:, maps.shape[1] // 2, maps.shape[2] // 2]
            return maps, tf.nn.relu(maps)
        return tf.reduce_mean(maps, axis=[1, 2]), tf.reduce_mean(tf.nn.relu(maps), axis=[1, 2])

    @tf.function
    def step(shift, t):
        before = score(to_pixels(spectrum, scale, height, width))
        with tf.GradientTape() as tape:
            shifted = tf.roll(to_pixels(spectrum, scale, height, width), shift, axis=[1, 2])
            total = tf.reduce_sum(score(shifted)[0])
        grad = tape.gradient(total, spectrum)
        beta1, beta2, eps = ADAM
        moments[0].assign(beta1 * moments[0] + (1 - beta1) * grad)
        moments[1].assign(beta2 * moments[1] + (1 - beta2) * grad * grad)
        m_hat, v_hat = moments[0] / (1 - beta1 ** t), moments[1] / (1 - beta2 ** t)
        spectrum.assign_add(ascent.learning_rate * m_hat / (tf.sqrt(v_hat) + eps))
        return before

    rng = np.random.default_rng(seed)
    scores = []
    for t in tqdm(range(1, steps + 1), desc=f"{layer} activation maximization", unit="step",
                  disable=not progress):
        shift = rng.integers(-jitter, jitter + 1, 2) if jitter else np.zeros(2, np.int64)
        scores.append(step(tf.constant(shift, tf.int32), tf.constant(float(t))))
    pixels = to_pixels(spectrum, scale, height, width)
    scores.append(score(pixels))
    trace, activation = (np.stack([s[i].numpy() for s in scores], axis=1).astype(np.float32)
                         for i in range(2))
    return Visualization(layer, channels, objective, pixels.numpy(), trace, activation)
