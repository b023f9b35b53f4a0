"""analysis.selection: which neurons to show and why, checked before any image is scanned."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from analysis import AnalysisError
from analysis.activations import TopActivations
from analysis.selection import BY_HAND, Choice, check_neurons, choose_neurons, describe
from models.network import build_model


@pytest.fixture(scope="module")
def network() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model()


def test_check_neurons_names_the_bad_layer_and_channels(network):
    assert check_neurons(network, "CONV4", None) == 256
    assert check_neurons(network, "POOL2", [0, 127]) == 128
    with pytest.raises(AnalysisError, match=r"^layer POOL2 has channels 0 to 127; no 128$"):
        check_neurons(network, "POOL2", [7, 128])
    with pytest.raises(AnalysisError, match=r"^layer CONV4 has channels 0 to 255; no 256, 999$"):
        check_neurons(network, "CONV4", [3, 256, 999])
    with pytest.raises(AnalysisError, match=r"^layer CONV4 has channels 0 to 255; no -1$"):
        check_neurons(network, "CONV4", [-1])
    with pytest.raises(AnalysisError, match=r"^no conv or pool layer 'FC1' in the network; choose "
                                            r"one of CONV1, POOL1, CONV2"):
        check_neurons(network, "FC1", [1])
    with pytest.raises(AnalysisError, match=r"^no neurons given"):
        check_neurons(network, "CONV4", [])


def known_top() -> tuple[TopActivations, np.ndarray]:
    """Channel 0: 3 of 4 top images are class 2 (bird); channel 1: 2 of 4 class 1; channel 2:
    all class 2 but weak."""
    top = TopActivations("L", values=np.array([[5, 4, 3, 2], [9, 8, 1, 1], [0.5, 0.5, 0.5, 0.5]],
                                              np.float32),
                         images=np.array([[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 2]]),
                         positions=np.zeros((3, 4, 2), int))
    return top, np.array([2, 2, 2, 7, 1, 1, 3, 3])


def test_choose_by_purity_says_why():
    top, labels = known_top()
    chosen = choose_neurons(top, labels, count=2)
    assert chosen == [Choice(0, "3/4 of its top images are bird, mean top-4 activation 3.50"),
                      Choice(1, "2/4 of its top images are automobile, mean top-4 activation 4.75")]
    assert [c.channel for c in choose_neurons(top, labels, count=99)] == [0, 1, 2]  # all there are
    assert describe("L", chosen[:1]) == [
        "L neuron 0: 3/4 of its top images are bird, mean top-4 activation 3.50"]
    with pytest.raises(AnalysisError, match=r"^the number of neurons to choose must be at least 1"):
        choose_neurons(top, labels, count=0)


def test_choose_by_hand_keeps_the_order():
    top, labels = known_top()
    assert choose_neurons(top, labels, neurons=[2, 0], count=1) == [Choice(2, BY_HAND),
                                                                    Choice(0, BY_HAND)]
    assert BY_HAND == "picked by hand"
