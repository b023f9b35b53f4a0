"""Gradient maps of one unit of a layer (conv, pool or flat) with respect to the input pixels.

Three ways of sending a unit's gradient back to the image, which differ only in the rule applied
at each ReLU (Springenberg et al. 2015, Fig. 1, compares them):

- saliency: the plain gradient; a ReLU passes the gradient where its input was positive.
  Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image
  Classification Models and Saliency Maps", ICLR 2014 workshop.
- deconvnet: a ReLU passes the positive part of the gradient, whatever its input was.
  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
- guided: both masks, so only positive gradients at positive inputs pass ("guided backpropagation").
  Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity: The All Convolutional
  Net", ICLR 2015 workshop.

In all three, a convolution passes the gradient back through its transposed filters and a max
pooling routes it to the maximum of each window (the deconvnet's "switches").

The maps are computed on the trained model itself: `forward_to` walks the model's layers and
calls each as the model does in inference mode, except that a layer's built-in ReLU is applied
by a tf.custom_gradient ReLU that carries the chosen rule. The model object is never modified,
so other code using it (predictions, training) is unaffected. Needs the TensorFlow backend.

unit_gradients maps units of a conv or pool layer; output_gradients maps units of a flat layer,
such as a class's score before the softmax (for Guided Grad-CAM, analysis.gradcam).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from analysis.choices import GRADIENT_METHODS, MAP_STYLES

# How each map is conventionally shown: guided and deconvnet maps as signed colour images
# centred at grey (Springenberg et al., Zeiler & Fergus), saliency as the largest absolute value
# over the colour channels (Simonyan et al.).
STANDARD_STYLE = {"guided": "signed", "deconvnet": "signed", "saliency": "abs"}


def rule_relu(method: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """A ReLU whose forward pass is the ordinary one and whose backward pass follows method's
    rule."""
    if method not in GRADIENT_METHODS:
        raise ValueError(f"method must be one of {GRADIENT_METHODS}, not {method!r}")

    @tf.custom_gradient
    def relu(x):
        def backward(upstream):
            if method == "saliency":
                return upstream * tf.cast(x > 0, upstream.dtype)
            if method == "deconvnet":
                return tf.nn.relu(upstream)
            return tf.nn.relu(upstream) * tf.cast(x > 0, upstream.dtype)

        return tf.nn.relu(x), backward

    return relu


def _has_relu(layer: keras.layers.Layer) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", None) == "relu"


def _pre_activation(layer: keras.layers.Layer, x: tf.Tensor) -> tf.Tensor:
    """What layer computes before its built-in ReLU, from the layer's own weights (as its call
    does)."""
    if isinstance(layer, keras.layers.Activation):
        return x
    if isinstance(layer, keras.layers.Conv2D) and layer.data_format == "channels_last":
        out = layer.convolution_op(x, layer.kernel)
    elif isinstance(layer, keras.layers.Dense):
        out = tf.matmul(x, layer.kernel)
    else:
        raise ValueError(f"layer {layer.name}: cannot separate the ReLU of a "
                         f"{type(layer).__name__}")
    return out + layer.bias if layer.use_bias else out


def forward_to(model: keras.Model, layer_name: str, images: tf.Tensor,
               relu: Callable[[tf.Tensor], tf.Tensor] = tf.nn.relu) -> tf.Tensor:
    """The output of model's layer layer_name for images (raw pixels), every built-in ReLU
    replaced by relu. Walks the Functional graph in model.layers order (topological), in
    inference mode (dropout off, batch norm with its moving statistics)."""
    target = model.get_layer(layer_name)
    values = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            values[id(layer.output)] = images
            continue
        x = keras.tree.map_structure(lambda t: values[id(t)], layer.input)
        values[id(layer.output)] = (relu(_pre_activation(layer, x)) if _has_relu(layer)
                                    else layer(x, training=False))
        if layer is target:
            return values[id(layer.output)]
    raise AssertionError("unreachable: get_layer found the layer")


def unit_gradients(model: keras.Model, layer_name: str, images: np.ndarray, channels: np.ndarray,
                   positions: np.ndarray, method: str = "guided", batch_size: int = 100,
                   progress: bool = False) -> np.ndarray:
    """Gradient of unit (row, col, channel) of layer_name with respect to image i, for every i,
    under method's ReLU rule (see the module docstring).

    images: (N, H, W, 3) raw pixels as the model takes them; channels: (N,); positions: (N, 2)
    (row, col) in the layer's map, one unit per image. Returns float32 maps shaped like images.
    """
    if len(model.get_layer(layer_name).output.shape) != 4:
        raise ValueError(f"layer {layer_name} has no spatial map (units are addressed by row, "
                         "col, channel)")
    units = np.column_stack([np.asarray(positions).reshape(-1, 2),
                             np.asarray(channels).reshape(-1)])
    return _gradients(model, layer_name, images, units, method, batch_size, progress)


def output_gradients(model: keras.Model, layer_name: str, images: np.ndarray, units: np.ndarray,
                     method: str = "guided", batch_size: int = 100,
                     progress: bool = False) -> np.ndarray:
    """Gradient of unit units[i] of a layer with a flat output (N, C), such as the class scores
    before the softmax, with respect to image i, for every i, under method's ReLU rule.

    images: (N, H, W, 3) raw pixels; units: (N,) indices into the layer's C outputs. Returns
    float32 maps shaped like images.
    """
    if len(model.get_layer(layer_name).output.shape) != 2:
        raise ValueError(f"layer {layer_name} has a spatial map (use unit_gradients)")
    return _gradients(model, layer_name, images, np.asarray(units).reshape(-1, 1), method,
                      batch_size, progress)


def _gradients(model, layer_name, images, units, method, batch_size, progress) -> np.ndarray:
    """The maps of units (one row of indices into layer_name's output, less the batch axis, per
    image)."""
    relu = rule_relu(method)
    images = np.asarray(images, np.float32)
    if len(units) != len(images):
        raise ValueError(f"{len(images)} images but {len(units)} units")
    maps = np.empty(images.shape, np.float32)
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=f"{method} maps", unit="batch",
                      disable=not progress or len(starts) < 2):
        batch = tf.constant(images[start:start + batch_size])
        index = np.column_stack([np.arange(len(batch)), units[start:start + batch_size]])
        maps[start:start + len(batch)] = _batch_gradients(model, layer_name, batch,
                                                          tf.constant(index.astype(np.int32)), relu)
    return maps


def _batch_gradients(model, layer_name, images, index, relu) -> np.ndarray:
    """Gradient of the sum of the indexed units (image, then the unit's row, col, channel, or
    its one index in a flat output) with respect to images."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        # In inference mode the images of a batch do not interact, so the gradient of the sum is
        # each image's gradient of its own unit.
        total = tf.reduce_sum(tf.gather_nd(forward_to(model, layer_name, images, relu), index))
    return tape.gradient(total, images).numpy()


def render_map(grad: np.ndarray, style: str = "signed", percentile: float = 99.5) -> np.ndarray:
    """A gradient map as an image in [0, 1].

    signed: an RGB image centred at grey (0 -> 0.5), positive components brighter; abs: a grey
    (H, W) image of the largest absolute value over the colour channels, 0 -> black. The scale
    is the percentile of the absolute values, not the maximum, so a few extreme pixels do not
    wash out the rest (they saturate instead); an all-zero map renders as plain grey / black.
    """
    if style not in MAP_STYLES:
        raise ValueError(f"style must be one of {MAP_STYLES}, not {style!r}")
    values = np.abs(grad) if style == "signed" else np.abs(grad).max(axis=-1)
    nonzero = values[values > 0]
    scale = np.percentile(nonzero, percentile) if nonzero.size else 1.0
    if style == "signed":
        return np.clip(0.5 + 0.5 * grad / scale, 0.0, 1.0)
    return np.clip(values / scale, 0.0, 1.0)
