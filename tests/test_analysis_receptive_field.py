"""analysis.receptive_field: the field of a unit, checked by perturbing input pixels."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from analysis.activations import layer_model
from analysis.receptive_field import ReceptiveField, crop_field, field_box, receptive_field
from models.network import build_model

SIZE = 32


@pytest.fixture(scope="module")
def network() -> keras.Model:
    """The report's network with random weights (its geometry is what matters here)."""
    keras.utils.set_random_seed(0)
    return build_model()


def inside_lines(box: tuple[int, int, int, int]) -> list[tuple[slice, slice]]:
    """The outermost rows and columns of the field that lie inside the image."""
    top, left, bottom, right = box
    rows, cols = slice(max(top, 0), min(bottom, SIZE)), slice(max(left, 0), min(right, SIZE))
    return [(slice(r, r + 1), cols) for r in {rows.start, rows.stop - 1}] + \
           [(rows, slice(c, c + 1)) for c in {cols.start, cols.stop - 1}]


def check_field(model: keras.Model, layer: str, units: list[tuple[int, int]]) -> None:
    """Pixels outside each unit's computed field leave all its channels unchanged; large changes
    to the field's outermost rows and columns inside the image change them."""
    rf = receptive_field(model, layer)
    names = [lay.name for lay in model.layers[1:]]
    submodel = layer_model(model, layer) if layer in names else model
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    images, expect_change = [base], [None]
    for unit in units:
        box = field_box(rf, *unit)
        outside = np.ones((SIZE, SIZE), bool)
        outside[max(box[0], 0):box[2], max(box[1], 0):box[3]] = False
        assert outside.any() or rf.size >= SIZE
        image = base.copy()
        image[outside] = rng.uniform(-2000, 2000, (outside.sum(), 3))
        images.append(image)
        expect_change.append((unit, False, "outside"))
        for rows, cols in inside_lines(box):
            image = base.copy()
            image[rows, cols] = rng.uniform(-2000, 2000, image[rows, cols].shape)
            images.append(image)
            where = f"rows {rows.start}:{rows.stop} cols {cols.start}:{cols.stop}"
            expect_change.append((unit, True, where))
    out = keras.ops.convert_to_numpy(submodel(np.stack(images), training=False))
    for i, (unit, change, what) in enumerate(expect_change[1:], start=1):
        before, after = out[0][unit], out[i][unit]
        if change:
            assert np.abs(after - before).max() > 1e-3 * (np.abs(before).max() + 1), (layer, unit,
                                                                                       what)
        else:
            np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{layer} {unit} {what}")


def test_report_network_fields(network):
    fields = {name: receptive_field(network, name)
              for name in ("CONV1", "POOL1", "CONV2", "POOL2", "CONV3", "CONV4", "POOL3")}
    assert fields == {"CONV1": ReceptiveField(3, 1, -1), "POOL1": ReceptiveField(4, 2, -1),
                      "CONV2": ReceptiveField(8, 2, -3), "POOL2": ReceptiveField(10, 4, -3),
                      "CONV3": ReceptiveField(18, 4, -7), "CONV4": ReceptiveField(26, 4, -11),
                      "POOL3": ReceptiveField(30, 8, -11)}


def test_batchnorm_after_every_conv_keeps_the_geometry():
    assert receptive_field(build_model(batchnorm="all"), "CONV4") == ReceptiveField(26, 4, -11)


def test_dense_layers_have_no_field(network):
    with pytest.raises(ValueError, match="flatten"):
        receptive_field(network, "FC1")
    with pytest.raises(ValueError, match="CONV1, POOL1, CONV2"):
        receptive_field(network, "CONV9")


@pytest.mark.parametrize("layer", ["CONV4", "POOL3", "CONV2", "CONV1"])
def test_field_by_perturbation(network, layer):
    size = network.get_layer(layer).output.shape[1]
    last = size - 1
    # Corners and edges (fields cut by the image border) and one interior unit.
    check_field(network, layer, [(0, 0), (0, last), (last, last), (last, 0), (size // 2, 1),
                                 (3 % size, last // 2)])


def test_even_kernels_strides_and_dilation_by_perturbation():
    """'same' padding with an even kernel and a stride pads more after the image than before."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 4, strides=2, padding="same", activation="relu", name="a")(inputs)
    x = layers.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu", name="b")(x)
    x = layers.AveragePooling2D(3, strides=2, padding="same", name="c")(x)
    x = layers.Conv2D(8, 2, padding="valid", name="d")(x)
    model = keras.Model(inputs, x)
    assert receptive_field(model, "a") == ReceptiveField(4, 2, -1)
    assert receptive_field(model, "b") == ReceptiveField(12, 2, -5)
    assert receptive_field(model, "c") == ReceptiveField(16, 4, -5)  # pads 1 after, 0 before
    assert receptive_field(model, "d") == ReceptiveField(20, 4, -5)
    for name in ("a", "b", "c", "d"):
        size = model.get_layer(name).output.shape[1]
        check_field(model, name, [(0, 0), (size - 1, size - 1), (size // 2, size - 1)])


def test_field_box_and_border_crop():
    rf = ReceptiveField(26, 4, -11)
    assert field_box(rf, 0, 0) == (-11, -11, 15, 15)
    assert field_box(rf, 7, 2) == (17, -3, 43, 23)
    image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    patch = crop_field(image, field_box(rf, 7, 2), fill=7)
    assert patch.shape == (26, 26, 3) and patch.dtype == np.uint8
    # Rows 17..31 and columns 0..22 of the image, at the patch's offsets (0, 3); padding elsewhere.
    np.testing.assert_array_equal(patch[:15, 3:], image[17:32, 0:23])
    assert (patch[15:] == 7).all() and (patch[:, :3] == 7).all()
    np.testing.assert_array_equal(crop_field(image, (4, 5, 10, 9)), image[4:10, 5:9])
    assert (crop_field(image, (40, 40, 43, 43), fill=1) == 1).all()
