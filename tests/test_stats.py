"""Intervals, paired tests and the generated answer, on cases whose truth is known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linbench import compare, report, stats
from linbench.names import STATUSES


@pytest.mark.parametrize(
    ("p", "n", "low", "high"),
    # Reference values: Wilson score interval, z = 1.96 (e.g. statsmodels proportion_confint).
    [(0.5, 100, 0.4038, 0.5962), (0.0, 10, 0.0, 0.2775), (0.45, 5000, 0.4362, 0.4638)],
)
def test_wilson_interval_matches_known_values(p, n, low, high):
    got = stats.wilson_interval(p, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_is_nan_without_a_count():
    assert all(math.isnan(x) for x in stats.wilson_interval(0.5, float("nan")))


def test_mcnemar_exact_p_value_by_hand():
    # 10 discordant images, 8 right only by A: p = 2 * P(X <= 2), X ~ Bin(10, 1/2)
    # = 2 * (1 + 10 + 45) / 1024 = 0.109375.
    a = np.array([True] * 8 + [False] * 2 + [True] * 50 + [False] * 40)
    b = np.array([False] * 8 + [True] * 2 + [True] * 50 + [False] * 40)
    a_only, b_only, p = stats.mcnemar_exact(a, b)
    assert (a_only, b_only) == (8, 2)
    assert p == pytest.approx(112 / 1024)
    assert stats.mcnemar_exact(a, a)[2] == 1.0


def unpaired_verdict(a: np.ndarray, b: np.ndarray) -> str:
    """A broken comparison that ignores the pairing: two-proportion z-test."""
    n = len(a)
    pa, pb = a.mean(), b.mean()
    pooled = (pa + pb) / 2
    z = (pa - pb) / math.sqrt(2 * pooled * (1 - pooled) / n)
    return "indistinguishable" if abs(z) < stats.Z95 else ("better" if z > 0 else "worse")


def test_pairing_matters_for_the_verdict():
    # A is right wherever B is, plus 30 more of 2,000 images: 1.5 points, every
    # discordant pair in A's favour. Paired: clearly better; unpaired: within the noise.
    n = 2000
    b = np.zeros(n, dtype=bool)
    b[:900] = True
    a = b.copy()
    a[900:930] = True
    result = stats.paired_difference(a, b)
    assert result.verdict == "better" and result.p_value < 1e-8
    assert result.difference == pytest.approx(0.015)
    assert result.low > 0
    assert unpaired_verdict(a, b) == "indistinguishable"


def test_several_seeds_use_the_two_way_interval_over_seeds_and_images():
    rng = np.random.default_rng(0)
    base = rng.random((3, 1000)) < 0.4
    same = stats.paired_difference(base, base)
    assert same.verdict == "indistinguishable" and same.difference == 0
    better = base | (rng.random((3, 1000)) < 0.1)
    result = stats.paired_difference(better, base)
    assert result.method == stats.SEEDS_AND_IMAGES and result.seeds == 3
    assert result.verdict == "better" and result.low > 0


def expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# Simulated studies whose true gain is known, shaped like the measurements on HOG with 500
# images (issue 19): none's accuracy moves 1-2 points between training draws, the gain of a
# regularizer by 0.4-0.6 points (sd), on 10,000 test images shared by every seed.
IMAGE_SD, GAIN_LOGIT, IMAGE_EFFECT_SD = 2.0, 0.25, 0.6


def simulated_studies(rng, studies: int, seeds: int, images: int, draw_sd: float, gain_sd: float):
    """Correctness (seeds, images) of A (regularized) and B (none) for each simulated study.

    Per image a difficulty and the regularizer's effect on it (logit scale); per seed a
    training draw that shifts both models and the gain; per seed and image one uniform shared
    by A and B (the borderline images a run gets right by luck), so the two are paired.
    """
    for _ in range(studies):
        difficulty = rng.normal(0.0, IMAGE_SD, images)
        effect = rng.normal(GAIN_LOGIT, IMAGE_EFFECT_SD, images)
        draw = rng.normal(0.0, draw_sd, (seeds, 1))
        gain = rng.normal(0.0, gain_sd, (seeds, 1))
        luck = rng.random((seeds, images))
        yield (
            luck < expit(difficulty + effect + draw + gain),
            luck < expit(difficulty + draw),
        )


def true_gain(draw_sd: float, gain_sd: float, draws: int = 2_000_000) -> float:
    """The gain over new test images and new training draws, by a large Monte Carlo."""
    rng = np.random.default_rng(123)
    difficulty = rng.normal(0.0, IMAGE_SD, draws)
    effect = rng.normal(GAIN_LOGIT, IMAGE_EFFECT_SD, draws)
    draw, gain = rng.normal(0.0, draw_sd, draws), rng.normal(0.0, gain_sd, draws)
    return float(np.mean(expit(difficulty + effect + draw + gain) - expit(difficulty + draw)))


def image_only_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The broken design: each image's correctness averaged over seeds, a normal interval
    over images only (what a paired bootstrap over images gives), blind to the draws."""
    per_image = a.mean(axis=0) - b.mean(axis=0)
    half = stats.Z95 * per_image.std(ddof=1) / math.sqrt(len(per_image))
    return per_image.mean() - half, per_image.mean() + half


@pytest.mark.parametrize(
    ("draw_sd", "gain_sd"),
    [(0.08, 0.04), (0.08, 0.015)],
    ids=["gain-spread-0.6pts", "gain-spread-0.3pts"],
)
def test_the_gain_interval_covers_the_true_gain_over_seeds_and_test_images(draw_sd, gain_sd):
    """1,000 simulated studies of 5 seeds x 10,000 test images: the 95 % interval covers the
    true gain in 93-99 % of them; the image-only interval misses it far more often."""
    truth = true_gain(draw_sd, gain_sd)
    rng = np.random.default_rng(1)
    hits, hits_image_only, studies = 0, 0, 1000
    for a, b in simulated_studies(rng, studies, 5, 10_000, draw_sd, gain_sd):
        result = stats.paired_difference(a, b)
        hits += result.low <= truth <= result.high
        low, high = image_only_interval(a, b)
        hits_image_only += low <= truth <= high
    assert 0.93 <= hits / studies <= 0.99
    if gain_sd > 0.03:  # draws that move the gain by 0.6 points: ignoring them shows
        assert hits_image_only / studies < 0.85


def test_two_seeds_still_cover_though_the_interval_is_wider():
    # At all training images no subset is redrawn: seeds differ in SGD noise only.
    truth = true_gain(0.03, 0.01)
    rng = np.random.default_rng(2)
    results = [
        stats.paired_difference(a, b)
        for a, b in simulated_studies(rng, 1000, 2, 10_000, 0.03, 0.01)
    ]
    assert np.mean([r.low <= truth <= r.high for r in results]) >= 0.93
    assert all(r.seeds == 2 and np.isfinite(r.df) for r in results)


# ----------------------------------------------------------------- statuses and choosing


def runs_table(rows: list[dict]) -> pd.DataFrame:
    base = {
        "features": "hog",
        "train_size": 500,
        "loss": "softmax",
        "strength": 0.0,
        "batch_size": 64,
        "learning_rate": 0.1,
        "val_images": 1000,
        "test_images": 1000,
        "train_acc": 0.5,
        "test_acc": 0.4,
        "train_seconds": 1.0,
        "epochs": 5,
        "epochs_run": 5,
    }
    table = pd.DataFrame([{**base, **r} for r in rows])
    table["diverged"] = table["status"] == "diverged"
    table["cell_dir"] = [f"cell{i}" for i in range(len(table))]
    return table


def test_only_settings_ok_on_every_seed_are_chosen_and_k_of_n_is_said():
    runs = runs_table(
        [
            # l2 at lr 0.1: the best validation accuracy, but 1 of 3 seeds diverged.
            {"regularizer": "l2", "strength": 0.01, "seed": 0, "val_acc": 0.6, "status": "ok"},
            {"regularizer": "l2", "strength": 0.01, "seed": 1, "val_acc": 0.6, "status": "ok"},
            {
                "regularizer": "l2",
                "strength": 0.01,
                "seed": 2,
                "val_acc": 0.1,
                "status": "diverged",
            },
            {"regularizer": "none", "seed": 0, "val_acc": 0.4, "status": "ok"},
            {"regularizer": "none", "seed": 1, "val_acc": 0.4, "status": "ok"},
            {"regularizer": "none", "seed": 2, "val_acc": 0.4, "status": "ok"},
        ]
    )
    settings = report.settings_table(runs)
    assert list(settings["eligible"]) == [False, True]
    assert report.choose(settings)["regularizer"].item() == "none"
    assert report.status_words(settings.iloc[0]) == "1 of 3 seeds diverged"
    assert report.status_words(settings.iloc[1]) == "ok"
    assert {f"n_{s}" for s in STATUSES} <= set(settings.columns)
    mixed = settings.iloc[0].copy()
    mixed[["n_ok", "n_diverged", "n_collapsed"]] = [0, 1, 2]
    assert report.status_words(mixed) == "1 of 3 seeds diverged, 2 of 3 collapsed"


# ------------------------------------------------------------------ the answer up front

N_TEST = 2000
LABELS = np.arange(N_TEST) % 10
# Test images each regularizer gets right, against none's first 800: l2 adds 60 (helps
# clearly), l1 loses 60 (hurts), dropout trades 5 for 5 (ties).
RIGHT = {
    "none": np.arange(N_TEST) < 800,
    "l2": np.arange(N_TEST) < 860,
    "l1": np.arange(N_TEST) < 740,
    "dropout": (np.arange(N_TEST) < 795)
    | ((np.arange(N_TEST) >= 1000) & (np.arange(N_TEST) < 1005)),
}
VAL = {"none": 0.40, "l2": 0.43, "l1": 0.37, "dropout": 0.41}
STRENGTH = {"none": 0.0, "l2": 0.01, "l1": 0.001, "dropout": 0.5}


def answer_grid():
    rows = [
        {
            "regularizer": reg,
            "strength": STRENGTH[reg],
            "seed": 0,
            "val_acc": VAL[reg],
            "test_acc": RIGHT[reg].mean(),
            "status": "ok",
            "test_images": N_TEST,
        }
        for reg in ("none", "l1", "l2", "dropout")
    ]
    runs = runs_table(rows)
    runs["cell_dir"] = runs["regularizer"]
    predictions = {reg: np.where(RIGHT[reg], LABELS, (LABELS + 1) % 10) for reg in RIGHT}
    return runs, predictions


def test_comparisons_and_sentences_tell_help_hurt_and_tie_apart():
    runs, predictions = answer_grid()
    settings = report.settings_table(runs)
    table = compare.compare_to_baseline(runs, settings, LABELS, predictions.get)
    verdicts = dict(zip(table["regularizer"], table["verdict"], strict=True))
    assert verdicts == {"l1": "worse", "l2": "better", "dropout": "indistinguishable"}
    l2 = table[table["regularizer"] == "l2"].iloc[0]
    assert l2["difference"] == pytest.approx(0.03) and l2["low"] > 0
    sentences = compare.regularizer_sentences(table)
    assert sentences[0] == "**l1**: of 1 regime, hurt in 1 (-3.0 pts)."
    assert sentences[1] == "**l2**: of 1 regime, helped in 1 (+3.0 pts)."
    assert sentences[2] == "**dropout**: of 1 regime, no difference in 1 (+0.0 pts)."


def test_the_summary_opens_with_the_answer_table():
    from linbench.summary import summarize

    runs, predictions = answer_grid()
    text = summarize(runs, LABELS, predictions.get)
    assert text.index("## What each regularizer buys") < text.index("## How to read")
    table = text.split("## What each regularizer buys\n", 1)[1].split("\n\n")[1]
    row = table.splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # loss, best regularizer (by validation), strength, rate, seeds, gain [95 %], verdict
    assert cells[:5] == ["softmax", "l2", "λ = 0.01", "0.1", "1"]
    assert cells[5].startswith("+3.0 pts [") and cells[6] == "better"


def test_a_broken_comparison_unpaired_would_miss_the_effect():
    _, predictions = answer_grid()
    a = predictions["l2"] == LABELS
    b = predictions["none"] == LABELS
    assert stats.paired_difference(a, b).verdict == "better"
    # 60 more of 2,000 (3 points) is within the unpaired noise? Not here: so check a
    # smaller effect where only the pairing reveals it.
    a_small = b.copy()
    a_small[800:830] = True
    assert stats.paired_difference(a_small, b).verdict == "better"
    assert unpaired_verdict(a_small, b) == "indistinguishable"


@pytest.mark.parametrize("p", [0.0, 1.0, 0.999, 1e-9])
def test_wilson_interval_holds_the_observed_share_even_at_the_edges(p):
    for n in (40, 60, 5000, 10000):
        low, high = stats.wilson_interval(p, n)
        assert 0.0 <= low <= p <= high <= 1.0


def test_regimes_read_from_small_to_large_training_sets_in_grid_order_otherwise():
    rows = [
        {"features": f, "train_size": n, "loss": loss}
        for f in ("hog", "kmeans")
        for n in (45000, 500, 2000)
        for loss in ("svm", "softmax")
    ]
    ordered = compare.regime_sorted(rows, ["features", "train_size", "loss"])
    assert [(r["features"], r["train_size"], r["loss"]) for r in ordered[:4]] == [
        ("hog", 500, "svm"),
        ("hog", 500, "softmax"),
        ("hog", 2000, "svm"),
        ("hog", 2000, "softmax"),
    ]
    assert [r["features"] for r in ordered[6:]] == ["kmeans"] * 6


# ------------------------------------------------------------- like with like, and edges


def mixed_study() -> tuple[pd.DataFrame, dict]:
    """Issue 19's reproducer: the sweep's one-seed cells and the regimes grid's three-seed
    cells in one regime. `none` at lr 0.01 (regimes, 3 seeds) and, in the sweep only, `l2`
    at lr 0.1, batch 32, one seed, with the best validation accuracy of all."""
    rows, predictions = [], {}
    rng = np.random.default_rng(0)
    truth = LABELS
    for seed in (0, 1, 2):
        for reg, strength, val in (("none", 0.0, 0.50), ("l2", 0.01, 0.49)):
            rows.append(
                {
                    "regularizer": reg,
                    "strength": strength,
                    "seed": seed,
                    "val_acc": val,
                    "learning_rate": 0.01,
                    "batch_size": 128,
                    "subgrids": "regimes",
                }
            )
    rows.append(
        {
            "regularizer": "l2",
            "strength": 0.01,
            "seed": 0,
            "val_acc": 0.60,
            "learning_rate": 0.1,
            "batch_size": 32,
            "subgrids": "sweep",
        }
    )
    runs = runs_table([{**r, "status": "ok", "test_images": N_TEST} for r in rows])
    for i, cell in enumerate(runs["cell_dir"]):
        right = rng.random(N_TEST) < (0.6 if runs.loc[i, "subgrids"] == "sweep" else 0.5)
        predictions[cell] = np.where(right, truth, (truth + 1) % 10)
        runs.loc[i, "test_acc"] = right.mean()
    return runs, predictions


def test_the_answer_never_mixes_sub_grids():
    from linbench.summary import answer_comparisons, summarize

    runs, predictions = mixed_study()
    table = answer_comparisons(runs, LABELS, predictions.get)
    (l2,) = table.itertuples()
    # The sweep's one-seed l2 cell (best validation of all) is not in the regimes answer.
    assert (l2.learning_rate, l2.batch_size, l2.seeds) == (0.01, 128, 3)
    text = summarize(runs, LABELS, predictions.get)
    assert "sub-grid `regimes`" in text and "none" in text.split("## How to read")[0]
    # The sweep's sections draw from the sweep alone: its one setting is the best there.
    assert "(sub-grid `sweep`)" in text


def test_settings_that_differ_in_more_than_the_regularizer_are_refused():
    runs, predictions = mixed_study()
    runs["subgrids"] = "regimes"  # pretend one sub-grid, but with another budget for l2
    runs.loc[runs["regularizer"] == "l2", "epochs"] = 99
    settings = report.settings_table(runs)
    with pytest.raises(ValueError, match="differ in 'epochs'"):
        compare.compare_to_baseline(runs, settings, LABELS, predictions.get)
    with pytest.raises(ValueError, match="differ in 'subgrids'"):
        none = runs[runs["regularizer"] == "none"]
        compare.check_like_with_like(none.assign(subgrids="sweep"), none)
    shared = runs[runs["regularizer"] == "none"]
    compare.check_like_with_like(shared.assign(subgrids="sweep;regimes"), shared)  # both hold it


def test_only_common_seeds_are_paired_and_counted():
    runs, predictions = answer_grid()
    extra = runs[runs["regularizer"] == "l2"].assign(seed=1, cell_dir="l2-seed1")
    runs = pd.concat([runs, extra], ignore_index=True)
    predictions = {**predictions, "l2-seed1": predictions["l2"]}
    settings = report.settings_table(runs)
    table = compare.compare_to_baseline(runs, settings, LABELS, predictions.get)
    l2 = table[table["regularizer"] == "l2"].iloc[0]
    assert l2["seeds"] == 1 and l2["method"] == stats.ONE_SEED  # none has seed 0 only


@pytest.mark.parametrize(
    ("value", "tried", "edge"),
    [
        (1.0, [1e-3, 1e-2, 1.0], "high"),
        (1e-3, [1e-3, 1.0], "low"),
        (0.1, [0.01, 0.1, 1], ""),
        (0.5, [0.5], ""),
    ],
)
def test_a_best_value_at_the_edge_of_the_range_is_flagged(value, tried, edge):
    assert compare.edge_of_range(value, tried) == edge


@pytest.mark.parametrize(
    ("reg", "value", "edge"),
    [
        ("l2", 100.0, "strongest"),
        ("l2", 0.1, "weakest"),
        ("dropout", 0.02, "strongest"),
        ("max_norm", 1.0, "weakest"),
        ("dropout", 0.1, ""),
    ],
)
def test_the_strongest_end_depends_on_the_regularizer(reg, value, edge):
    tried = {"l2": [0.1, 1, 100], "dropout": [0.02, 0.1, 0.9], "max_norm": [0.03, 1.0]}[reg]
    assert compare.strength_edge(reg, value, tried) == edge


def test_the_answer_flags_a_strength_at_the_edge():
    from linbench.summary import EDGE_NOTE, summarize

    runs, predictions = answer_grid()
    weaker = runs[runs["regularizer"] == "l2"].assign(
        strength=0.001, val_acc=0.42, cell_dir="l2-weak"
    )
    runs = pd.concat([runs, weaker], ignore_index=True)
    predictions = {**predictions, "l2-weak": predictions["none"]}
    text = summarize(runs, LABELS, predictions.get)
    answer = text.split("## How to read")[0]
    assert "λ = 0.01 (edge: strongest)" in answer and EDGE_NOTE in answer
    assert "best strength the strongest tried in 1" in answer


def test_the_summary_of_the_default_study_is_short():
    """The default config's whole grid, with made-up accuracies: at most 300 lines."""
    import yaml

    from linbench.config import validate_config
    from linbench.grid import expand_grid, subgrids_of
    from linbench.summary import summarize

    root = Path(__file__).resolve().parents[1]
    config = validate_config(
        yaml.safe_load((root / "config/config.yaml").read_text()),
        root / "workflow/schemas/config.schema.yaml",
    )
    cells = expand_grid(config["grid"])
    member = subgrids_of(config["grid"])
    rng = np.random.default_rng(0)
    runs = pd.DataFrame(
        {
            **{k: [getattr(c, k) for c in cells] for k in ("features", "loss", "regularizer")},
            "train_size": [45000 if c.train_size == "all" else c.train_size for c in cells],
            "strength": [c.strength for c in cells],
            "batch_size": [45000 if c.batch_size == "all" else c.batch_size for c in cells],
            "full_batch": [c.batch_size == "all" for c in cells],
            "learning_rate": [c.learning_rate for c in cells],
            "seed": [c.seed for c in cells],
            "status": rng.choice(["ok", "ok", "ok", "diverged"], len(cells)),
            "val_acc": rng.uniform(0.3, 0.6, len(cells)),
            "test_acc": rng.uniform(0.3, 0.6, len(cells)),
            "train_acc": 0.5,
            "train_seconds": 1.0,
            "epochs": 20,
            "epochs_run": 20,
            "val_images": 5000,
            "test_images": 10000,
            "cell_dir": [c.path for c in cells],
            "subgrids": [";".join(member[c.path]) for c in cells],
        }
    )
    runs["diverged"] = runs["status"] == "diverged"
    text = summarize(runs)
    assert len(text.splitlines()) <= 300
    assert text.splitlines()[0] == "# linbench results"
    assert text.index("## What each regularizer buys") < 1500  # on the first screen
