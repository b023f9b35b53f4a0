"""analysis.figures: tiling images into one grid, and saving figures deterministically."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis.figures import FRAME, Cell, as_rgb, grid_figure, save_figure, tile

PNG = b"\x89PNG\r\n\x1a\n"


def test_as_rgb_handles_grey_uint8_and_blank_pixels():
    grey = np.array([[0.0, np.nan], [0.25, 1.0]])
    np.testing.assert_array_equal(as_rgb(grey)[..., 1], [[0.0, 1.0], [0.25, 1.0]])
    assert as_rgb(grey).shape == (2, 2, 3)
    np.testing.assert_allclose(as_rgb(np.full((1, 1, 3), 51, np.uint8)), np.full((1, 1, 3), 0.2))


def test_tile_places_framed_images_on_a_white_canvas():
    black = np.zeros((2, 2))
    rows = [[Cell(black), Cell(black)], [Cell(np.ones((2, 2, 3)) * 0.5)]]
    tiling = tile(rows, cell=4, gap=3, title_band=5, caption_band=2)
    pitch_y = 5 + 4 + 2 + 3
    assert tiling.canvas.shape == (2 * pitch_y - 3 + 2, 2 * 7 - 3 + 2, 3)
    assert tiling.origins == [[(1, 6), (8, 6)], [(1, 6 + pitch_y)]]
    assert tiling.scales == [[2.0, 2.0], [2.0]]
    # Each 2x2 image is scaled to 4x4 pixels, framed one pixel outside, on white.
    assert (tiling.canvas[6:10, 1:5] == 0).all() and (tiling.canvas[6:10, 8:12] == 0).all()
    assert (tiling.canvas[5, 0:6] == FRAME).all() and (tiling.canvas[10, 0:6] == FRAME).all()
    assert (tiling.canvas[6:10, 0] == FRAME).all() and (tiling.canvas[6:10, 5] == FRAME).all()
    assert (tiling.canvas[:5] == 1).all() and (tiling.canvas[6:10, 6] == 1).all()
    assert (tiling.canvas[20:24, 1:5] == 0.5).all()
    assert (tiling.canvas[20:24, 8:12] == 1).all()  # the shorter row leaves white


def test_tile_keeps_blocks_and_aspect():
    image = np.arange(6, dtype=np.float32).reshape(2, 3) / 5  # 2 rows, 3 columns
    tiling = tile([[Cell(image)]], cell=6, gap=2)
    placed = tiling.canvas[1:5, 1:7, 0]  # 3 columns -> 6 pixels, 2 rows -> 4 pixels
    np.testing.assert_allclose(placed, np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))
    assert tiling.canvas.shape[:2] == (8, 8) and (tiling.canvas[6, 1:7] == 1).all()
    with pytest.raises(ValueError, match=r"at least 2 pixels apart"):
        tile([[Cell(image)]], cell=6, gap=1)


def figure():
    rng = np.random.default_rng(0)
    rows = [[Cell(rng.uniform(0, 1, (8, 8, 3)), title=f"t{i}", caption=f"{i}", box=(-2, 1, 5, 12))
             for i in range(3)], [Cell(rng.integers(0, 255, (8, 8), dtype=np.uint8))]]
    return grid_figure(rows, title="a title\nand a second line", labels=["one", "two\nlines"],
                       cell=32)


def test_grid_figure_draws_the_text_and_sizes_by_pixels():
    fig = figure()
    texts = {t.get_text() for t in fig.texts + fig.axes[0].texts}
    assert {"a title\nand a second line", "one", "two\nlines", "t0", "t2", "0", "2"} <= texts
    assert len(fig.axes[0].patches) == 3  # the boxes
    width, height = fig.get_size_inches() * fig.dpi
    grid = fig.axes[0].get_position()
    assert grid.width * width == pytest.approx(3 * 38 - 6 + 2)
    assert grid.height * height == pytest.approx(2 * (14 + 32 + 14 + 6) - 6 + 2)
    plt.close(fig)


def test_save_figure_writes_the_same_bytes_twice_and_no_temporary_file(tmp_path):
    first = save_figure(figure(), tmp_path / "a.png")
    second = save_figure(figure(), tmp_path / "b" / "a.png")
    assert first.read_bytes()[:8] == PNG
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "a.png", "b"]
    pdf_a = save_figure(figure(), tmp_path / "c.pdf")
    pdf_b = save_figure(figure(), tmp_path / "d.pdf")
    assert pdf_a.read_bytes()[:5] == b"%PDF-" and pdf_a.read_bytes() == pdf_b.read_bytes()
    assert not plt.get_fignums()  # closed after saving
