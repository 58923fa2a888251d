"""Intervals, paired tests and the generated answer, on cases whose truth is known."""

from __future__ import annotations

import math

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


def test_several_seeds_use_the_paired_bootstrap():
    rng = np.random.default_rng(0)
    base = rng.random((3, 1000)) < 0.4
    same = stats.paired_difference(base, base)
    assert same.verdict == "indistinguishable" and same.difference == 0
    better = base | (rng.random((3, 1000)) < 0.1)
    result = stats.paired_difference(better, base)
    assert result.method.startswith("paired bootstrap")
    assert result.verdict == "better" and result.low > 0


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
    assert sentences[0].startswith("**l1** hurt in 1 of 1: softmax (-3.0 pts [")
    assert sentences[1].startswith("**l2** helped in 1 of 1") and "+3.0 pts" in sentences[1]
    assert sentences[2].startswith("**dropout** made no difference at 95 % in 1 of 1")


def test_the_summary_opens_with_the_answer_table():
    from linbench.summary import summarize

    runs, predictions = answer_grid()
    text = summarize(runs, LABELS, predictions.get)
    assert text.index("## What each regularizer buys") < text.index("## How to read")
    table = text.split("## What each regularizer buys\n", 1)[1].split("\n\n")[1]
    row = table.splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # loss, best regularizer (by validation), strength, gain [95 %], verdict
    assert cells[:3] == ["softmax", "l2", "λ = 0.01"]
    assert cells[3].startswith("+3.0 pts [") and cells[4] == "better"


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
