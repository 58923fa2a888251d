"""Report tables, summary and figures on a small synthetic grid (no training, no Snakemake).

The grid: 2 losses x 2 regularizers x 2 learning rates x 2 seeds, one batch size. Its
accuracies are set by hand so that choosing by validation and choosing by test differ,
a single lucky seed does not win over a better mean, and the highest validation
accuracy of all belongs to a setting whose other seed diverged.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from test_optimizer import make_progress

from linbench import aggregate, plots, report, summary, text
from linbench.errors import LinbenchError
from linbench.grid import Cell
from linbench.io import save_npy, save_npz, write_json, write_text
from linbench.plots import accuracy, regimes, style, training, weights

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STRENGTH = {"none": 0.0, "l2": 0.01}
BATCH = 64
EPOCHS = 4
D, C = 12, 10
# (loss, regularizer, learning rate) -> ([val acc per seed], [test acc per seed])
ACC = {
    # By validation lr 0.01 wins (mean 0.41); lr 0.1 has the better test accuracy.
    ("svm", "none", 0.01): ([0.40, 0.42], [0.30, 0.31]),
    ("svm", "none", 0.1): ([0.38, 0.39], [0.45, 0.46]),
    # Seed 0 of lr 0.01 is the best single cell, but lr 0.1 has the better mean.
    ("svm", "l2", 0.01): ([0.50, 0.30], [0.40, 0.41]),
    ("svm", "l2", 0.1): ([0.42, 0.43], [0.36, 0.37]),
    # Seed 0 of lr 0.1 is the best cell of all, but seed 1 diverged: never chosen.
    ("softmax", "none", 0.01): ([0.44, 0.46], [0.43, 0.44]),
    ("softmax", "none", 0.1): ([0.60, 0.10], [0.58, 0.10]),
    ("softmax", "l2", 0.01): ([0.45, 0.47], [0.41, 0.43]),
    ("softmax", "l2", 0.1): ([0.41, 0.40], [0.39, 0.38]),
}
DIVERGED = ("softmax", "none", 0.1, 1)


VAL_IMAGES, TEST_IMAGES, TRAIN_SIZE = 5000, 200, 1000


def fmt(values: list[float], n: int = VAL_IMAGES) -> str:
    """What the summary must print for these per-seed values (mean ± std [Wilson])."""
    from linbench.stats import wilson_interval

    low, high = wilson_interval(float(np.mean(values)), n)
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f} [{low:.3f}, {high:.3f}]"


def make_cell(root: Path, loss: str, reg: str, lr: float, seed: int) -> Path:
    """Write one cell's metrics.json, history.csv and weights.npz as `rule train` does."""
    cell = Cell("hog", "all", loss, reg, STRENGTH[reg], BATCH, lr, seed)
    folder = root / cell.path
    vals, tests = ACC[(loss, reg, lr)]
    val, test = vals[seed], tests[seed]
    diverged = (loss, reg, lr, seed) == DIVERGED
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.05 if reg == "none" else 0.01, size=(D, C))
    epochs_run = 3 if diverged else EPOCHS
    losses = [2.3 * 0.8**e for e in range(epochs_run)]
    if diverged:
        W[0, 0], W[1, 1] = np.inf, np.nan
        losses = [2.3, 40.0, float("inf")]
    history = ["epoch,train_loss,train_acc,val_acc,seconds"]
    for e, loss_value in enumerate(losses, start=1):
        history.append(f"{e},{loss_value},{val + 0.05},{val if e == epochs_run else 0.2},{0.1 * e}")
    confusion = np.full((C, C), 1) + np.diag(np.full(C, 20))
    stats = {
        "w_l1": None if diverged else float(np.abs(W).sum()),
        "w_l2": None if diverged else float(np.sqrt((W**2).sum())),
        "w_small_share": None if diverged else float(np.mean(np.abs(W) < 1e-3)),
        "w_max_col_norm": None if diverged else float(np.linalg.norm(W, axis=0).max()),
    }
    metrics = {
        "features": "hog",
        "loss": loss,
        "regularizer": reg,
        "strength": STRENGTH[reg],
        "batch_size": BATCH,
        "learning_rate": lr,
        "seed": seed,
        "epochs": EPOCHS,
        "epochs_run": epochs_run,
        "status": "diverged" if diverged else "ok",
        "diverged_epoch": 3 if diverged else None,
        "train_size": TRAIN_SIZE,
        "val_images": VAL_IMAGES,
        "test_images": TEST_IMAGES,
        "train_acc": val + 0.05,
        "val_acc": val,
        "test_acc": test,
        "final_loss": None if diverged else losses[-1],
        "train_seconds": 0.1 * epochs_run + 0.01 * seed,
        **stats,
        "test_confusion": confusion.tolist(),
    }
    save_npz(folder / "weights.npz", W=W, b=np.zeros(C))
    # Right on the first round(test * n) test images (labels: i % C).
    labels = np.arange(TEST_IMAGES) % C
    pred = np.where(np.arange(TEST_IMAGES) < round(test * TEST_IMAGES), labels, (labels + 1) % C)
    save_npy(folder / "test_predictions.npy", pred.astype(np.uint8))
    write_text(folder / "history.csv", "\n".join(history) + "\n")
    write_json(folder / "metrics.json", metrics)
    return folder


@pytest.fixture
def grid(tmp_path: Path) -> list[Path]:
    """The synthetic grid's cell folders, in grid order."""
    return [make_cell(tmp_path, loss, reg, lr, seed) for (loss, reg, lr) in ACC for seed in (0, 1)]


def tables(grid: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = report.load_runs([d / "metrics.json" for d in grid])
    return runs, report.load_history([d / "history.csv" for d in grid], runs)


def md_rows(summary_md: str, section: str, table: int = 0) -> list[list[str]]:
    """The body rows of a Markdown table under `## section` (the first by default)."""
    text = summary_md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in text.split("\n\n") if b.startswith("|")]
    lines = blocks[table].splitlines()
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


# ----------------------------------------------------------------------------- tables


def test_runs_table_has_one_row_per_cell_and_the_cells_values(grid):
    runs, _ = tables(grid)
    assert len(runs) == len(grid) == 16
    assert set(report.RUN_COLUMNS) <= set(runs.columns)
    assert {"status", "train_size", "val_images", "test_images"} <= set(runs.columns)
    assert "test_confusion" not in runs.columns
    for folder, row in zip(grid, runs.itertuples(), strict=True):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert row.val_acc == metrics["val_acc"] and row.test_acc == metrics["test_acc"]
        assert row.learning_rate == metrics["learning_rate"] and row.seed == metrics["seed"]
    div = runs[runs["diverged"]]
    assert len(div) == 1 and div["diverged_epoch"].item() == 3
    assert div[["final_loss", "w_l1", "w_max_col_norm"]].isna().all(axis=None)


def test_history_table_is_tidy_over_all_cells(grid):
    runs, history = tables(grid)
    assert list(history.columns) == [*report.cell_keys(runs), *report.HISTORY_COLUMNS]
    assert len(history) == runs["epochs_run"].sum() == 15 * EPOCHS + 3
    one = history[(history["loss"] == "svm") & (history["learning_rate"] == 0.1)]
    one = one[(one["regularizer"] == "l2") & (one["seed"] == 1)]
    assert one["epoch"].tolist() == [1, 2, 3, 4] and one["val_acc"].iloc[-1] == 0.43
    diverged = history[history["train_loss"] == np.inf]
    assert len(diverged) == 1 and diverged["loss"].item() == "softmax"


def test_written_csv_tables_keep_every_value_exactly(grid, tmp_path):
    out = tmp_path / "reports"
    aggregate.write_tables(
        [d / "metrics.json" for d in grid],
        [d / "history.csv" for d in grid],
        out / "runs.csv",
        out / "history.csv",
        out / "summary.md",
    )
    runs = report.read_runs_csv(out / "runs.csv")
    expected, history = tables(grid)
    pd.testing.assert_frame_equal(runs, expected, check_dtype=False)
    assert len(pd.read_csv(out / "history.csv")) == len(history)
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "runs.csv", "summary.md"]


def test_bad_metrics_file_is_named_in_one_line(grid):
    path = grid[0] / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["val_acc"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(LinbenchError, match=r"metrics\.json: missing key\(s\) val_acc"):
        report.load_runs([path])


# ---------------------------------------------------------------------------- summary


def test_summary_chooses_by_validation_and_reports_test_accuracy(grid):
    runs, _ = tables(grid)
    summary_md = summary.summarize(runs)
    glance = {row[0]: row[1:] for row in md_rows(summary_md, "Best per loss and regularizer")}
    # Columns: svm val, svm test, softmax val, softmax test.
    vals, tests = ACC[("svm", "none", 0.01)]
    assert glance["none"][:2] == [fmt(vals), fmt(tests, TEST_IMAGES)]
    assert (
        fmt(ACC[("svm", "none", 0.1)][1], TEST_IMAGES) not in summary_md
    )  # the better test accuracy
    # Mean over seeds decides: lr 0.1, not the lr 0.01 setting with the best single seed.
    vals, tests = ACC[("svm", "l2", 0.1)]
    assert glance["l2"][:2] == [fmt(vals), fmt(tests, TEST_IMAGES)]
    # A setting with a diverged seed is never chosen, however good its other seed.
    vals, tests = ACC[("softmax", "none", 0.01)]
    assert glance["none"][2:] == [fmt(vals), fmt(tests, TEST_IMAGES)]


def test_summary_best_overall_and_chosen_settings(grid):
    runs, _ = tables(grid)
    summary_md = summary.summarize(runs)
    vals, tests = ACC[("softmax", "l2", 0.01)]
    best = summary_md.split("## Best overall\n", 1)[1].split("\n## ", 1)[0]
    assert "softmax + l2 (λ = 0.01), batch size 64, learning rate 0.01" in best
    assert f"validation accuracy **{fmt(vals)}**" in best
    assert f"test accuracy **{fmt(tests, TEST_IMAGES)}**" in best
    chosen = md_rows(summary_md, "Chosen settings, best first")
    # loss, regularizer, batch, lr, seeds, train, val, test, seconds; best first.
    assert [r[:4] for r in chosen[:2]] == [
        ["softmax", "l2 (λ = 0.01)", "64", "0.01"],
        ["softmax", "none", "64", "0.01"],
    ]
    assert {(r[0], r[1], r[3]) for r in chosen} >= {("svm", "l2 (λ = 0.01)", "0.1")}
    assert all(r[4] == "2" for r in chosen)


def test_summary_lists_the_diverged_cell_with_k_of_n_seeds(grid):
    runs, _ = tables(grid)
    text_md = summary.summarize(runs)
    assert "Of 16 cells: 15 ok, 1 diverged, 0 collapsed, 0 unstable" in text_md
    counts = md_rows(text_md, "Run outcomes", table=0)
    assert counts == [["svm", "0.1", "4", "0", "0", "0"], ["softmax", "0.1", "3", "1", "0", "0"]]
    # The setting with one diverged seed of two is not called "diverged".
    cells = md_rows(text_md, "Run outcomes", table=1)
    assert cells == [["softmax", "none", "64", "0.1", "1 of 2 seeds diverged"]]
    # Learning rate x batch size: softmax at lr 0.1 shows its all-ok l2 setting and the count.
    lr_batch = text_md.split("### softmax\n\n", 1)[1].split("\n\n", 1)[0]
    assert lr_batch.splitlines()[-1].endswith(
        f"| {fmt(ACC[('softmax', 'l2', 0.1)][0])} · 1 diverged |"
    )


def test_single_seed_prints_plain_values(grid):
    runs, _ = tables(grid)
    summary_md = summary.summarize(runs[runs["seed"] == 0])
    assert "±" not in summary_md
    best = summary_md.split("## Best overall\n", 1)[1].split("\n## ", 1)[0]
    # Seed 0 alone: the softmax cell whose seed 1 diverged is now eligible, and best.
    assert "softmax + none, batch size 64, learning rate 0.1" in best
    assert "validation accuracy **0.6000 [0.586, 0.613]**" in best
    assert "test accuracy **0.5800 [0.511, 0.646]**" in best


def test_markdown_table_aligns_columns():
    table = text.markdown_table(
        ["name", "acc"], [["l2", "0.5000"], ["elastic_net", "1"]], [False, True]
    )
    lines = table.splitlines()
    assert lines[1] == "|:------------|-------:|"
    assert lines[3] == "| elastic_net |      1 |"
    assert len({len(line) for line in lines}) == 1


def test_chosen_cell_is_the_best_seed_of_the_chosen_setting(grid):
    runs, _ = tables(grid)
    picked = report.chosen_cells(runs, ["loss", "regularizer"]).set_index(["loss", "regularizer"])
    assert picked.loc[("svm", "l2"), "learning_rate"] == 0.1
    assert picked.loc[("svm", "l2"), "seed"] == 1  # val 0.43 > 0.42
    assert picked.loc[("softmax", "none"), "learning_rate"] == 0.01


# ---------------------------------------------------------------------------- figures


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.01  # not blank


def test_every_figure_is_a_png_even_with_a_diverged_cell(grid, tmp_path):
    out = tmp_path / "reports"
    aggregate.write_tables(
        [d / "metrics.json" for d in grid],
        [d / "history.csv" for d in grid],
        out / "runs.csv",
        out / "history.csv",
        out / "summary.md",
        comparisons_csv=out / "comparisons.csv",
    )
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"classes": CLASSES}))
    inputs = {"runs": str(out / "runs.csv")}
    with_splits = {**inputs, "splits": str(splits)}
    extra = {
        "confusion_matrix": {**with_splits, "metrics": [str(d / "metrics.json") for d in grid]},
        "learning_curves": {**inputs, "history": str(out / "history.csv")},
        "weights": {**inputs, "weights": [str(d / "weights.npz") for d in grid]},
        "gap_vs_size": inputs,
        "answer": {"comparisons": str(out / "comparisons.csv")},
    }
    # The batch size figures read progress records: a synthetic study's (tests/test_optimizer)
    make_progress().assign(subgrids="optimizer").to_csv(out / "progress.csv", index=False)
    progress = ({"progress": str(out / "progress.csv")}, {"targets": [0.1], "subgrid": "optimizer"})
    for name in ("steps_vs_images", "suboptimality", "best_rate"):
        extra[name] = progress
    for name in plots.FIGURES:
        given = extra.get(name, with_splits)
        inputs_, params = given if isinstance(given, tuple) else (given, {})
        plots.draw(name, out / f"{name}.png", inputs_, params)
        assert_png(out / f"{name}.png")
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_time_figure_tells_apart_more_models_than_its_markers(grid, tmp_path):
    # config/learned.yaml trains 2 losses on 4 feature sets: 8 models; the figure once had
    # 6 markers and failed. 14 models (7 sets) take every marker and cycle past them.
    runs, _ = tables(grid)
    names = [f"set{i}" for i in range(7)]
    runs["features"] = [names[i % len(names)] for i in range(len(runs))]
    assert runs.groupby(["features", "loss"]).ngroups > len(style.MODEL_MARKERS)
    accuracy.plot_time_accuracy(runs, tmp_path / "t.png")
    assert_png(tmp_path / "t.png")


def test_figures_cope_when_every_cell_of_a_setting_diverged(grid, tmp_path):
    runs, history = tables(grid)
    # Every softmax + none cell diverged, with NaN accuracy and no weight statistics.
    bad = (runs["loss"] == "softmax") & (runs["regularizer"] == "none")
    runs.loc[bad, ["status", "diverged", "val_acc"]] = ["diverged", True, np.nan]
    runs.loc[bad, ["final_loss", "w_l1", "w_l2", "w_small_share", "w_max_col_norm"]] = np.nan
    history.loc[history["loss"] == "softmax", "train_loss"] = np.inf
    weights_files = {str(d): d / "weights.npz" for d in grid}
    accuracy.plot_val_heatmaps(runs, tmp_path / "h.png")
    accuracy.plot_best_accuracy(runs, tmp_path / "b.png")
    weights.plot_weights(runs, weights_files, tmp_path / "w.png")
    training.plot_learning_curves(runs, history, tmp_path / "c.png")
    accuracy.plot_time_accuracy(runs, tmp_path / "t.png")
    regimes.plot_accuracy_vs_size(runs, tmp_path / "s.png")
    regimes.plot_regularization_path(runs, tmp_path / "p.png")
    regimes.plot_gap_vs_size(runs, tmp_path / "g.png")
    for name in "hbwctspg":
        assert_png(tmp_path / f"{name}.png")


def test_confusion_of_wrong_shape_names_the_file(grid):
    with pytest.raises(LinbenchError, match=r"metrics\.json: test_confusion has shape \(10, 10\)"):
        accuracy.load_confusion(grid[0] / "metrics.json", n_classes=3)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-4, "$10^{-4}$"), (1.0, "$10^{0}$"), (10.0, "$10^{1}$"), (5e-3, "$5\\times10^{-3}$")],
)
def test_learning_rates_print_in_scientific_notation(value, text):
    assert plots.style.fmt_lr(value) == text


def test_summary_when_every_cell_diverged(grid):
    runs, _ = tables(grid)
    runs["status"] = "diverged"
    summary_md = summary.summarize(runs)
    assert "No setting ended `ok` with every seed." in summary_md
    assert "Of 16 cells: 0 ok, 16 diverged" in summary_md
    assert md_rows(summary_md, "Best per loss and regularizer") == [
        ["none", "no ok setting (4 diverged)", "", "no ok setting (4 diverged)", ""],
        ["l2", "no ok setting (4 diverged)", "", "no ok setting (4 diverged)", ""],
    ]


def test_heatmaps_draw_the_full_split_of_the_feature_sets_with_a_rate_batch_grid():
    from linbench.plots.accuracy import heatmap_runs

    rows = [
        {"features": f, "train_size": n, "learning_rate": lr, "batch_size": b}
        for f, n, lr, b in [
            ("hog", 45000, 0.01, 32),
            ("hog", 45000, 0.1, 128),
            ("hog", 500, 0.01, 128),
            ("kmeans", 45000, 0.01, 128),  # one square: a regimes grid
            ("kmeans", 500, 0.01, 128),
        ]
    ]
    drawn = heatmap_runs(pd.DataFrame(rows))
    assert set(drawn["features"]) == {"hog"} and set(drawn["train_size"]) == {45000}
    alone = heatmap_runs(pd.DataFrame(rows[3:]))
    assert list(alone["train_size"]) == [45000]
