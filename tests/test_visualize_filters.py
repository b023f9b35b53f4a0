"""visualize_filters.py and analysis.filters: filter images, mean activations, the figures."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
from conftest import run_script

import visualize_filters
from analysis.activations import channel_means, layer_model
from analysis.filters import channel_mosaic, grid_shape, scale_filters
from models.cli import UserError
from models.network import build_model
from models.runs import load_run


def test_grid_shape():
    assert [grid_shape(n) for n in (1, 3, 10, 64, 128, 256)] == [(1, 1), (2, 2), (3, 4), (8, 8), (11, 12), (16, 16)]


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
    assert norm[0, 0, 0, 0] == 1.0 and norm[0, 1, 1, 2] == 0.0 and norm[0, 0, 1, 0] == pytest.approx(1 / 3)
    assert norm[1, 2, 2, 1] == 1.0 and norm[1, 0, 0, 0] == 0.0
    assert (scale_filters(np.zeros((3, 3, 3, 1)), True) == 0).all()  # a zero filter stays finite


def test_channel_mosaic_places_each_input_channel():
    filters = np.arange(2 * 3 * 3 * 5, dtype=np.float32).reshape(2, 3, 3, 5)  # 5 input channels: a 2x3 grid
    mosaic = channel_mosaic(filters)
    assert mosaic.shape == (2, 7, 11)
    np.testing.assert_array_equal(mosaic[1, 0:3, 4:7], filters[1, :, :, 1])
    np.testing.assert_array_equal(mosaic[0, 4:7, 4:7], filters[0, :, :, 4])
    assert np.isnan(mosaic[:, 3, :]).all() and np.isnan(mosaic[:, :, 3]).all() and np.isnan(mosaic[0, 4:, 8:]).all()


def test_channel_means_match_a_direct_computation():
    keras.utils.set_random_seed(0)
    model = build_model()
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    means, active = channel_means(model, "CONV2", images, batch_size=8, progress=False)
    maps = keras.ops.convert_to_numpy(layer_model(model, "CONV2")(images.astype(np.float32), training=False))
    np.testing.assert_allclose(means, maps.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(active, (maps > 0).mean(axis=(0, 1, 2)), rtol=1e-6)


def test_make_figures_on_a_tiny_run(tiny_run, tmp_path):
    paths = visualize_filters.make_figures(tiny_run, tmp_path, images=40, progress=False)
    assert [p.name for p in paths] == ["filters_CONV1_raw.png", "filters_CONV1_normalized.png", "filters_CONV1.csv"]
    for png in paths[:2]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    rows = list(csv.DictReader(paths[2].open()))
    assert [r["filter"] for r in rows] == [str(i) for i in range(64)]
    model, config, _ = load_run(str(tiny_run))
    kernel = keras.ops.convert_to_numpy(model.get_layer("CONV1").kernel)
    norms = np.sqrt((kernel**2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose([float(r["weight_norm"]) for r in rows], norms, atol=1e-5)
    x = visualize_filters.load_split(config.data_dir, "test", 40, config.val_size)[0]
    maps = keras.ops.convert_to_numpy(layer_model(model, "CONV1")(x.astype(np.float32)))
    np.testing.assert_allclose([float(r["mean_activation"]) for r in rows], maps.mean(axis=(0, 1, 2)), atol=1e-5)


def test_deeper_layer_without_activations(tiny_run, tmp_path):
    paths = visualize_filters.make_figures(tiny_run, tmp_path, layer="CONV2", images=0, progress=False)
    assert [p.name for p in paths] == ["filters_CONV2_raw.png", "filters_CONV2_normalized.png", "filters_CONV2.csv"]
    rows = list(csv.DictReader(paths[2].open()))
    assert len(rows) == 128 and rows[0]["mean_activation"] == "" and float(rows[0]["weight_norm"]) > 0
    with pytest.raises(UserError, match="no conv layer 'POOL1' in the network; choose one of CONV1, CONV2, CONV3"):
        visualize_filters.make_figures(tiny_run, tmp_path, layer="POOL1", images=0, progress=False)


def test_cli(tiny_run, tmp_path):
    result = run_script("visualize_filters.py", "--run", str(tiny_run), "--images", "20", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {tmp_path / 'filters_CONV1_raw.png'}" in result.stdout
    assert (tmp_path / "filters_CONV1_normalized.png").is_file()


def test_tile_places_images_on_a_white_canvas():
    images = np.zeros((3, 2, 2))
    images[2, 1, 1] = np.nan  # a blank pixel in a mosaic
    canvas, origins = visualize_filters.tile(images, cols=2, gap_x=1, gap_y=3)
    assert canvas.shape == (2 * (2 + 3) + 3, 2 * 3 - 1, 3)
    assert origins == [(0, 3), (3, 3), (0, 8)]
    assert (canvas[3:5, 0:2] == 0).all() and (canvas[3:5, 2] == 1).all() and (canvas[:3] == 1).all()
    assert canvas[9, 1].tolist() == [1, 1, 1] and canvas[8, 1].tolist() == [0, 0, 0]
