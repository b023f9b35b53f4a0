"""analysis.filters (Task VI): filter images, mean activations, the figures; and
visualize_filters.py."""

from __future__ import annotations

import csv
import shutil

import keras
import numpy as np
import pytest
from conftest import run_script

from analysis import AnalysisError
from analysis.activations import layer_model
from analysis.filters import channel_mosaic, filter_figures, grid_shape, scale_filters
from analysis.inputs import RunImages, load_images
from runs.weights import load_network

PNG = b"\x89PNG\r\n\x1a\n"


def test_grid_shape():
    assert [grid_shape(n) for n in (1, 3, 10, 64, 128, 256)] == [(1, 1), (2, 2), (3, 4), (8, 8),
                                                                 (11, 12), (16, 16)]


def test_scale_filters_raw_and_normalized():
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[0, 0, 0, 0], kernel[1, 1, 2, 0] = 2.0, -1.0  # filter 0 spans -1..2
    kernel[2, 2, 1, 1] = 0.5  # filter 1 spans 0..0.5
    raw = scale_filters(kernel, normalize=False)
    assert raw.shape == (2, 3, 3, 3)
    # One scale for both: |w| <= 2 maps to 0..1 with 0 at grey (0.5).
    assert raw[0, 0, 0, 0] == 1.0 and raw[0, 1, 1, 2] == 0.25 and raw[1, 2, 2, 1] == 0.625
    assert raw[1, 0, 0, 0] == 0.5
    norm = scale_filters(kernel, normalize=True)
    assert norm[0, 0, 0, 0] == 1.0 and norm[0, 1, 1, 2] == 0.0
    assert norm[0, 0, 1, 0] == pytest.approx(1 / 3)
    assert norm[1, 2, 2, 1] == 1.0 and norm[1, 0, 0, 0] == 0.0
    assert (scale_filters(np.zeros((3, 3, 3, 1)), True) == 0).all()  # a zero filter stays finite


def test_channel_mosaic_places_each_input_channel():
    # 5 input channels: a 2x3 grid of 3x3 tiles.
    filters = np.arange(2 * 3 * 3 * 5, dtype=np.float32).reshape(2, 3, 3, 5)
    mosaic = channel_mosaic(filters)
    assert mosaic.shape == (2, 7, 11)
    np.testing.assert_array_equal(mosaic[1, 0:3, 4:7], filters[1, :, :, 1])
    np.testing.assert_array_equal(mosaic[0, 4:7, 4:7], filters[0, :, :, 4])
    assert np.isnan(mosaic[:, 3, :]).all() and np.isnan(mosaic[:, :, 3]).all()
    assert np.isnan(mosaic[0, 4:, 8:]).all()


def test_filter_figures_on_a_tiny_run(random_run, tmp_path):
    paths = filter_figures(RunImages(random_run, images=40), tmp_path)
    assert [p.name for p in paths] == ["filters_CONV1_raw.png", "filters_CONV1_normalized.png",
                                       "filters_CONV1.csv"]
    for png in paths[:2]:
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 20_000
    rows = list(csv.DictReader(paths[2].open()))
    assert [r["filter"] for r in rows] == [str(i) for i in range(64)]
    model, config, _ = load_network(random_run)
    kernel = keras.ops.convert_to_numpy(model.get_layer("CONV1").kernel)
    norms = np.sqrt((kernel**2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose([float(r["weight_norm"]) for r in rows], norms, atol=1e-5)
    x = load_images(config, split="test", images=40)[0]
    maps = keras.ops.convert_to_numpy(layer_model(model, "CONV1")(x.astype(np.float32)))
    np.testing.assert_allclose([float(r["mean_activation"]) for r in rows],
                               maps.mean(axis=(0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose([float(r["active_share"]) for r in rows],
                               (maps > 0).mean(axis=(0, 1, 2)), atol=1e-4)
    # Drawn again, the same bytes.
    again = filter_figures(RunImages(random_run, images=40), tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_deeper_layer_without_activations(random_run, tmp_path):
    paths = filter_figures(RunImages(random_run, data_dir=str(tmp_path / "no data needed")),
                           tmp_path, layer="CONV2", activations=False)
    assert [p.name for p in paths] == ["filters_CONV2_raw.png", "filters_CONV2_normalized.png",
                                       "filters_CONV2.csv"]
    rows = list(csv.DictReader(paths[2].open()))
    assert len(rows) == 128 and rows[0]["mean_activation"] == ""
    assert float(rows[0]["weight_norm"]) > 0
    with pytest.raises(AnalysisError, match=r"^no conv layer 'POOL1' in the network; choose one of "
                                            r"CONV1, CONV2, CONV3, CONV4$"):
        filter_figures(RunImages(random_run), tmp_path / "bad", layer="POOL1", activations=False)
    # The layer is checked before the data is read.
    with pytest.raises(AnalysisError, match=r"^no conv layer 'POOL1'"):
        filter_figures(RunImages(random_run, data_dir=str(tmp_path / "nowhere")), tmp_path / "bad",
                       layer="POOL1")
    with pytest.raises(AnalysisError, match=r"^the batch size must be at least 1, not 0$"):
        filter_figures(RunImages(random_run, batch_size=0), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_cli(tiny_run, tmp_path):
    result = run_script("visualize_filters.py", "--run", str(tiny_run), "--images", "20",
                        "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {tmp_path / 'filters_CONV1_raw.png'}" in result.stdout
    assert (tmp_path / "filters_CONV1_normalized.png").is_file()
    rows = list(csv.DictReader((tmp_path / "filters_CONV1.csv").open()))
    assert rows[0]["mean_activation"] != ""


@pytest.mark.slow
def test_cli_without_activations_into_the_run_s_figures(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")  # the shared run stays as it is
    result = run_script("visualize_filters.py", "--run", str(run), "--no-activations",
                        "--layer", "CONV3")
    assert result.returncode == 0, result.stderr[-2000:]
    table = run / "figures" / "filters_CONV3.csv"
    assert f"wrote {table}" in result.stdout
    assert next(csv.DictReader(table.open()))["mean_activation"] == ""
    assert sorted(p.name for p in table.parent.iterdir()) == [
        "filters_CONV3.csv", "filters_CONV3_normalized.png", "filters_CONV3_raw.png"]
    result = run_script("visualize_filters.py", "--run", str(run), "--images", "0")
    assert result.returncode == 2
    assert "argument --images: must be at least 1, not 0" in result.stderr
