"""analysis.neuron_figures (Task VII): the top-k patches of interesting neurons, their figures and
tables; and neurons.py."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from conftest import run_script

from analysis import AnalysisError
from analysis.activations import TopActivations, layer_model
from analysis.inputs import NeuronQuery, RunImages, load_images
from analysis.neuron_figures import PAD, class_neurons, neuron_figures, neuron_patches
from analysis.receptive_field import ReceptiveField, field_box, receptive_field
from runs.weights import load_network

PNG = b"\x89PNG\r\n\x1a\n"


def test_neuron_patches_are_the_fields_of_the_maximal_units():
    images = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    top = TopActivations("L", values=np.ones((1, 2), np.float32), images=np.array([[1, 0]]),
                         positions=np.array([[[0, 0], [3, 4]]]))
    first, second = neuron_patches(images, top, 0, ReceptiveField(10, 4, -3))
    assert first.shape == second.shape == (10, 10, 3)
    np.testing.assert_array_equal(first[3:, 3:], images[1, 0:7, 0:7])
    assert (first[:3] == PAD).all() and (first[:, :3] == PAD).all()
    np.testing.assert_array_equal(second, images[0, 9:19, 13:23])


def test_class_neurons_picks_a_distinct_channel_per_class():
    # Image i is of class i. Channels 0-9 see only their own class's image; channel 10 sees
    # class 0's too, more strongly; channel 3 is weak.
    images = np.array([[c, c] for c in range(10)] + [[0, 0]])
    top = TopActivations("L", values=np.ones((11, 2), np.float32), images=images,
                         positions=np.zeros((11, 2, 2), int))
    rows = [{"weak": c == 3, "mean_activation": 5.0 if c == 10 else 1.0} for c in range(11)]
    picks = class_neurons(top, rows, np.arange(10))
    # Class 0: the stronger of channels 0 and 10; class 3: not its weak channel, but the strongest
    # unused other one (channel 0, none of its top images of class 3).
    assert picks == [(0, 10, 2), (1, 1, 2), (2, 2, 2), (3, 0, 0),
                     *[(c, c, 2) for c in range(4, 10)]]


def test_neuron_figures_on_a_tiny_run(random_run, tmp_path):
    printed: list[str] = []
    paths = neuron_figures(RunImages(random_run), tmp_path, NeuronQuery(count=3, k=4),
                           log=printed.append)
    assert [p.name for p in paths] == ["neurons_CONV4.png", "neurons_CONV4_classes.png",
                                       "neurons_CONV4.json", "neurons_CONV4.csv"]
    for png in paths[:2]:
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 20_000
    report = json.loads(paths[2].read_text())
    assert (report["layer"], report["split"], report["images"], report["k"]) == ("CONV4", "test",
                                                                                 100, 4)
    assert report["weights"] == "best" and report["run"] == str(random_run)
    assert report["receptive_field"] == {"size": 26, "stride": 4, "start": -11}
    assert len(report["channels"]) == 256 and len(report["selected"]) == 3
    assert len({c["channel"] for c in report["class_neurons"]}) == 10
    assert printed[0].startswith("CONV4: ")
    assert "channels never fire on these 100 images" in printed[0]
    assert printed[1:] == [f"CONV4 neuron {s['channel']}: {s['reason']}"
                           for s in report["selected"]]
    # The JSON agrees with the network: each listed activation is the unit's value in its image.
    model, config, _ = load_network(random_run)
    x = load_images(config)[0]
    submodel = layer_model(model, "CONV4")
    for pick in report["selected"]:
        channel = report["channels"][pick["channel"]]
        assert pick["reason"] == (f"{channel['count']}/4 of its top images are "
                                  f"{channel['dominant_name']}, mean top-4 activation "
                                  f"{channel['mean_activation']:.2f}")
        tops = x[[t["image"] for t in channel["top"]]].astype(np.float32)
        maps = keras.ops.convert_to_numpy(submodel(tops))
        for plane, t in zip(maps[..., pick["channel"]], channel["top"], strict=True):
            assert plane.max() == pytest.approx(t["activation"], abs=1e-4)
            assert plane[tuple(t["unit"])] == pytest.approx(t["activation"], abs=1e-4)
            assert t["box"] == list(field_box(receptive_field(model, "CONV4"), *t["unit"]))
    rows = list(csv.DictReader(paths[3].open()))
    assert len(rows) == 256 and rows[5]["channel"] == "5"
    assert rows[5]["top_images"].split() == [str(t["image"]) for t in report["channels"][5]["top"]]
    assert not list(tmp_path.glob(".tmp-*"))


def test_neurons_by_hand_and_bad_input(random_run, tmp_path):
    paths = neuron_figures(RunImages(random_run, images=30), tmp_path,
                           NeuronQuery(layer="POOL2", neurons=[7, 2], k=3))
    report = json.loads(paths[2].read_text())
    assert report["selected"] == [{"channel": 7, "reason": "picked by hand"},
                                  {"channel": 2, "reason": "picked by hand"}]
    assert report["receptive_field"] == {"size": 10, "stride": 4, "start": -3}
    assert report["images"] == 30
    # Bad neurons and layers fail before the data is read (here: there is none to read).
    nowhere = str(tmp_path / "nowhere")
    with pytest.raises(AnalysisError, match=r"^layer POOL2 has channels 0 to 127; no 128$"):
        neuron_figures(RunImages(random_run, data_dir=nowhere), tmp_path / "bad",
                       NeuronQuery(layer="POOL2", neurons=[128]))
    with pytest.raises(AnalysisError, match=r"^no conv or pool layer 'FC1' in the network; choose "
                                            r"one of CONV1, POOL1"):
        neuron_figures(RunImages(random_run, data_dir=nowhere), tmp_path / "bad",
                       NeuronQuery(layer="FC1"))
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_neurons_cli(tiny_run, tmp_path):
    result = run_script("neurons.py", "--run", str(tiny_run), "--images", "40", "--k", "3",
                        "--split", "val", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {tmp_path / 'neurons_CONV4_classes.png'}" in result.stdout
    assert result.stdout.count("CONV4 neuron ") == 10
    report = json.loads((tmp_path / "neurons_CONV4.json").read_text())
    assert report["images"] == 40 and report["split"] == "val"  # val holds 50 images


@pytest.mark.slow
def test_neurons_cli_bad_neurons(tiny_run, tmp_path):
    result = run_script("neurons.py", "--run", str(tiny_run), "--neurons", "3,x", "--out",
                        str(tmp_path))
    assert result.returncode == 2
    assert ("argument --neurons: takes channel numbers separated by commas, e.g. 3,17,40 "
            "(not '3,x')") in result.stderr
    result = run_script("neurons.py", "--run", str(tiny_run), "--neurons", "3,300", "--which",
                        "last", "--count", "2", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "error: layer CONV4 has channels 0 to 255; no 300\n"
    assert not list(tmp_path.iterdir())
