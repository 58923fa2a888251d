"""Learned templates: weights mapped back to pixels and HOG cells, and the figure's layout."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from skimage.feature import hog

from linbench.errors import LinbenchError
from linbench.features import block_slices, describe_blocks, pixel_features, resolve_blocks
from linbench.report import RUN_COLUMNS
from linbench.templates import (
    HOG_TILE_CELL,
    hog_cell_weights,
    hog_glyphs,
    pixel_template,
    plot_templates,
    templates_figure,
)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
HOG = {"orientations": 9, "pixels_per_cell": [8, 8], "cells_per_block": [2, 2]}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pixel_template_undoes_pixel_features():
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    template = pixel_template(pixel_features(image)[0], (32, 32, 3))
    pixels = image[0].astype(float)
    expected = np.round(255 * (pixels - pixels.min()) / (pixels.max() - pixels.min()))
    np.testing.assert_array_equal(template, expected)


@pytest.mark.parametrize("cells_per_block", [[2, 2], [1, 3], [3, 2]])
def test_hog_cell_weights_average_the_positive_entries_of_each_cell(cells_per_block):
    params = {**HOG, "cells_per_block": cells_per_block}
    b_row, b_col = cells_per_block
    n_blocks_row, n_blocks_col = 4 - b_row + 1, 4 - b_col + 1
    w = np.random.default_rng(1).standard_normal(n_blocks_row * n_blocks_col * b_row * b_col * 9)
    # Reference: walk skimage's feature order (block row, block col, cell row in block,
    # cell col in block, orientation) and collect each entry under its cell.
    entries = {}
    index = 0
    for br in range(n_blocks_row):
        for bc in range(n_blocks_col):
            for i in range(b_row):
                for j in range(b_col):
                    for o in range(9):
                        entries.setdefault((br + i, bc + j, o), []).append(max(w[index], 0))
                        index += 1
    expected = np.zeros((4, 4, 9))
    for (r, c, o), values in entries.items():
        expected[r, c, o] = np.mean(values)
    np.testing.assert_allclose(hog_cell_weights(w, params, (32, 32, 3)), expected)


def test_hog_glyphs_draw_what_skimage_draws():
    # With 1x1-cell blocks and L1 norm, each feature is a cell's histogram divided by its
    # total: skimage's picture (from the raw histogram) is ours times one factor per cell.
    image = np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)
    features, picture = hog(
        image,
        orientations=9,
        pixels_per_cell=(8, 8),
        cells_per_block=(1, 1),
        block_norm="L1",
        visualize=True,
    )
    cells = hog_cell_weights(features, {**HOG, "cells_per_block": [1, 1]}, (32, 32))
    ours = hog_glyphs(cells, (8, 8))
    assert ours.shape == picture.shape
    for r in range(4):
        for c in range(4):
            theirs, mine = (
                picture[8 * r : 8 * r + 8, 8 * c : 8 * c + 8],
                ours[8 * r : 8 * r + 8, 8 * c : 8 * c + 8],
            )
            assert mine.sum() > 0
            np.testing.assert_allclose(theirs, mine * (theirs.sum() / mine.sum()), atol=1e-9)


def test_hog_glyph_runs_along_the_edge():
    # Bin 0 holds gradients pointing along the columns (a vertical edge): its line is vertical.
    cells = np.zeros((1, 1, 9))
    cells[0, 0, 0] = 1.0
    rows, cols = np.nonzero(hog_glyphs(cells, (32, 32)))
    assert np.ptp(rows) > 5 * np.ptp(cols)


# --------------------------------------------------------------------------- figure


def make_inputs(tmp_path, blocks):
    """runs.csv, weights, info.json and splits.json of a tiny grid on feature set `mix`."""
    blocks = resolve_blocks(blocks)
    dimension = block_slices(blocks)[-1][1]
    info = {"dimension": dimension, "image_shape": [32, 32, 3], "blocks": describe_blocks(blocks)}
    (tmp_path / "info.json").write_text(json.dumps(info))
    (tmp_path / "splits.json").write_text(json.dumps({"classes": CLASSES}))
    rng = np.random.default_rng(3)
    # (regularizer, learning rate, val acc, test acc, diverged)
    cells = [
        ("none", 0.01, 0.40, 0.40, False),
        ("l1", 0.01, 0.41, 0.39, False),
        ("l2", 0.01, 0.45, 0.40, False),  # best validation accuracy: chosen
        ("l2", 0.1, 0.42, 0.47, False),  # best test accuracy: must not be chosen
        ("max_norm", 0.1, np.nan, np.nan, True),
    ]
    rows, weights = [], []
    for reg, lr, val, test, diverged in cells:
        cell_dir = tmp_path / f"runs/{reg}/{lr}"
        cell_dir.mkdir(parents=True)
        np.savez(cell_dir / "weights.npz", W=rng.standard_normal((dimension, 10)), b=np.zeros(10))
        weights.append(str(cell_dir / "weights.npz"))
        row = dict.fromkeys(RUN_COLUMNS, 0)
        row.update(
            features="mix",
            loss="svm",
            regularizer=reg,
            strength=0.001 if reg != "none" else 0,
            batch_size=128,
            learning_rate=lr,
            seed=0,
            epochs=5,
            epochs_run=5,
            status="diverged" if diverged else "ok",
            diverged=diverged,
            val_acc=val,
            test_acc=test,
            cell_dir=str(cell_dir),
        )
        rows.append(row)
    pd.DataFrame(rows, columns=list(RUN_COLUMNS)).to_csv(tmp_path / "runs.csv", index=False)
    return weights


def test_template_figure_has_a_tile_per_block_regularizer_and_class(tmp_path):
    blocks = [{"block": "color_hist"}, {"block": "hog"}, {"block": "pixels"}]
    weights = make_inputs(tmp_path, blocks)
    path = tmp_path / "templates_mix_svm.png"
    layout = plot_templates(
        tmp_path / "runs.csv",
        weights,
        tmp_path / "info.json",
        tmp_path / "splits.json",
        features="mix",
        loss="svm",
        path=path,
    )
    # Pixels rows, then HOG rows; regularizers in grid order; color_hist has no picture.
    assert layout.shape == (2 * 4, 10)
    assert [(r.block, r.regularizer) for r in layout.rows[:4]] == [
        ("pixels", "none"),
        ("pixels", "l1"),
        ("pixels", "l2"),
        ("pixels", "max_norm"),
    ]
    assert layout.omitted == ["color_hist"]
    chosen = {r.regularizer: r.cell for r in layout.rows if r.block == "hog"}
    assert chosen["l2"]["learning_rate"] == 0.01  # by validation, not test, accuracy
    assert chosen["max_norm"] is None  # every cell diverged: a labelled empty row
    for row in layout.rows:
        if row.tiles is not None:
            side = 4 * HOG_TILE_CELL  # 4 x 4 cells of 8 pixels, drawn larger
            shape = (32, 32, 3) if row.block == "pixels" else (side, side)
            assert [t.shape for t in row.tiles] == [shape] * 10

    assert path.read_bytes()[:8] == PNG_MAGIC
    assert matplotlib.image.imread(path).ndim == 3
    fig = templates_figure(layout, "test")
    assert len(fig.axes) == 8 * 10
    assert [ax.get_title() for ax in fig.axes[:10]] == CLASSES


def test_hog_block_after_another_block_is_read_at_its_columns(tmp_path):
    # One positive weight: the HOG block's first feature (block (0, 0), its top-left cell,
    # orientation 0). Read at the wrong offset, it would light another cell.
    blocks = [{"block": "color_hist", "bins": 10}, {"block": "hog"}]
    weights = make_inputs(tmp_path, blocks)
    for path in weights:
        W = np.full((10 + 324, 10), -1.0)
        W[10] = 1.0
        np.savez(path, W=W, b=np.zeros(10))
    layout = plot_templates(
        tmp_path / "runs.csv",
        weights,
        tmp_path / "info.json",
        tmp_path / "splits.json",
        features="mix",
        loss="svm",
        path=tmp_path / "t.png",
    )
    tile = layout.rows[0].tiles[0]
    cell = tile.shape[0] // 4
    assert tile[:cell, :cell].max() == 1.0
    tile[:cell, :cell] = 0
    assert tile.max() == 0


def test_weights_of_another_feature_set_are_a_clear_error(tmp_path):
    weights = make_inputs(tmp_path, [{"block": "hog"}])
    np.savez(weights[0], W=np.zeros((5, 10)), b=np.zeros(10))
    with pytest.raises(LinbenchError, match=r"weights.npz: W has shape \(5, 10\)"):
        plot_templates(
            tmp_path / "runs.csv",
            weights,
            tmp_path / "info.json",
            tmp_path / "splits.json",
            features="mix",
            loss="svm",
            path=tmp_path / "t.png",
        )
    assert not (tmp_path / "t.png").exists()
