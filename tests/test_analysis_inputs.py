"""analysis.inputs: a run's float32 network and the first images of a split, read once."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import AnalysisError
from analysis.inputs import NeuronQuery, RunImages, load_images, load_inputs
from data import load_cifar10
from models import Config


def test_load_images_cuts_the_split_as_training_does(tiny_cifar):
    data = load_cifar10(str(tiny_cifar))
    config = Config(data_dir=str(tiny_cifar), val_size=50)
    x, y = load_images(config, split="test", images=7)
    np.testing.assert_array_equal(x, data.x_test[:7])
    np.testing.assert_array_equal(y, data.y_test[:7])
    x, y = load_images(config, split="val")  # the last 50 training images, all of them
    np.testing.assert_array_equal(x, data.x_train[-50:])
    assert len(load_images(config, split="train", images=1000)[0]) == 250
    with pytest.raises(AnalysisError, match=r"^the number of images must be at least 1, not 0$"):
        load_images(config, images=0)


def test_the_train_split_of_a_limited_run_is_what_it_trained_on(tiny_cifar):
    data = load_cifar10(str(tiny_cifar))
    config = Config(data_dir=str(tiny_cifar), val_size=50, limit=30)
    x, y = load_images(config, split="train")
    np.testing.assert_array_equal(x, data.x_train[:30])
    assert y.tolist() == data.y_train[:30].tolist()
    np.testing.assert_array_equal(load_images(config, split="val")[0], data.x_train[-50:])


def test_data_dir_comes_before_the_run_s_copy(tiny_cifar, tmp_path):
    moved = Config(data_dir=str(tmp_path / "gone"), val_size=50)  # the run's copy is not there
    x, _ = load_images(moved, data_dir=str(tiny_cifar), images=3)
    np.testing.assert_array_equal(x, load_cifar10(str(tiny_cifar)).x_test[:3])


@pytest.mark.parametrize(("make", "message"), [
    (lambda: RunImages("r", images=0), "the number of images must be at least 1, not 0"),
    (lambda: RunImages("r", batch_size=0), "the batch size must be at least 1, not 0"),
    (lambda: NeuronQuery(k=0), "k must be at least 1, not 0"),
    (lambda: NeuronQuery(count=0), "the number of neurons must be at least 1, not 0"),
    (lambda: NeuronQuery(neurons=[]), "no neurons given: name at least one channel, or None to "
                                      "choose them"),
])
def test_a_bad_source_or_query_fails_when_made(make, message):
    with pytest.raises(AnalysisError) as error:
        make()
    assert str(error.value) == message


def test_a_query_keeps_its_neurons_as_a_tuple_of_ints():
    given = [np.int64(7), 2]
    query = NeuronQuery(neurons=given)
    given.append(5)  # the caller's list is not the query's
    assert query.neurons == (7, 2) and all(type(n) is int for n in query.neurons)
    assert NeuronQuery().neurons is None and RunImages("r").images is None


def test_load_inputs_checks_the_network_before_reading_data(random_run, tiny_cifar, tmp_path):
    inputs = load_inputs(RunImages(random_run, split="val", images=5))
    assert inputs.model.get_layer("CONV1").kernel.dtype == "float32"
    assert inputs.config.val_size == 50 and inputs.images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(inputs.labels, load_cifar10(str(tiny_cifar)).y_train[-50:-45])
    seen = []

    def refuse(model):
        seen.append(model)
        raise AnalysisError("refused")

    with pytest.raises(AnalysisError, match=r"^refused$"):  # not the missing data's error
        load_inputs(RunImages(random_run, data_dir=str(tmp_path / "nowhere")), check=refuse)
    assert len(seen) == 1
