"""Benchmark linbench.train on CIFAR-10 HOG features: accuracy, grid guidance and speed.

Parts (``--part``, default all):

- ``lr``: every loss x batch size x learning rate, no regularizer, `--epochs` epochs: which
  learning rates are too small, good, or diverge, and how long a run takes.
- ``reg``: every regularizer x strength at the best learning rate of each loss x batch size:
  which strengths show the regularizer's character (sparsity, shrinkage, bounded columns)
  without destroying accuracy.
- ``decay``: step decay of the learning rate (two schedules) at the best learning rate
  and 3x it, no regularizer: constant-rate SGD ends in noise, decay settles it.
- ``sklearn``: LogisticRegression and LinearSVC on the same features, as a reference.
- ``speed``: `train` (every regularizer) vs a minimal inline numpy SGD loop, per batch size,
  in the same process, medians over `--repeats`; reports ours / minimal.
- ``bundle``: the bundle trainer on the 48 models of one bundle of the default study (8
  regularizer/strength pairs x 6 learning rates, per-epoch evaluation on 5,000 training and
  the 5,000 validation images) vs the minimal loop, per loss and batch size, interleaved in
  one run, medians over `--repeats`: cost per model-epoch, as a share of the minimal loop's
  epoch (issue 13 targets: <= 0.3x at batch >= 128, <= 0.25x at batch 32; PASS/FAIL is
  printed), over `--bundle-epochs` (default 20, as the study), and peak memory.

The best softmax and SVM runs of ``lr`` + ``reg`` + ``decay`` (chosen by validation
accuracy) give the test accuracies. Results go to ``benchmarks/out/bench_train_{part}.json``;
the summary tables at the end use the latest results of every part, so parts can be rerun
alone.

Features: ``results/features/hog/{train,val,test}_X.npy`` (+ ``_y``) if the pipeline made
them; otherwise HOG is computed here from the archive (grayscale, 9 orientations, 8x8
cells, 2x2 blocks, L2-Hys: 324 dims; train = 45,000 of a stratified split seeded with 0,
val = 5,000, test = 10,000; standardised with train statistics) and cached in
``benchmarks/out/hog/``.

    .venv/bin/python benchmarks/bench_train.py                 # everything, ~20 min (LinearSVC: ~8)
    .venv/bin/python benchmarks/bench_train.py --part speed --repeats 9
    .venv/bin/python benchmarks/bench_train.py --part bundle --repeats 3
    .venv/bin/python benchmarks/bench_train.py --part summary  # tables of the saved results
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from linbench.bundle import Model, train_bundle  # noqa: E402
from linbench.io import save_npy, write_json  # noqa: E402
from linbench.regularizers import make_regularizer  # noqa: E402
from linbench.train import accuracy, train, weight_stats  # noqa: E402

LOSS_NAMES = ("svm", "softmax")
BATCH_SIZES = (32, 128, 512, 2048)
LEARNING_RATES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
# strength per regularizer: lambda for the penalties, radius c for max_norm, keep p for dropout
STRENGTHS = {
    "none": (0.0,),
    "l1": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    "l2": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    "elastic_net": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    "max_norm": (0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
    "dropout": (0.25, 0.5, 0.75, 0.9),
}
# step decay (lr_decay, lr_decay_every): halve every 4 epochs; divide by 10 after 10 epochs
DECAY_SCHEDULES = ((0.5, 4), (0.1, 10))
SPEED_STRENGTH = {
    "none": 0.0,
    "l1": 1e-3,
    "l2": 1e-3,
    "elastic_net": 1e-3,
    "max_norm": 0.5,
    "dropout": 0.5,
}
HOG_PARAMS = {
    "orientations": 9,
    "pixels_per_cell": (8, 8),
    "cells_per_block": (2, 2),
    "block_norm": "L2-Hys",
}


# ----------------------------------------------------------------------------- data


def load_features(features_dir: Path, archive: Path, cache: Path) -> dict[str, tuple]:
    """{split: (X float32 (N, 324), y int64 (N,))} for train, val and test."""
    for folder in (features_dir, cache):
        if all((folder / f"{s}_X.npy").exists() for s in ("train", "val", "test")):
            print(f"features: {folder}")
            return {
                s: (np.load(folder / f"{s}_X.npy", mmap_mode="r"), np.load(folder / f"{s}_y.npy"))
                for s in ("train", "val", "test")
            }
    if not archive.is_file():
        sys.exit(f"bench_train: no features in {features_dir} or {cache}, no archive {archive}")
    print(f"features: computing HOG from {archive} (cached in {cache})")
    images, labels = read_cifar10(archive)
    from sklearn.model_selection import train_test_split

    train_idx, val_idx = train_test_split(
        np.arange(len(labels["train"])), test_size=5000, stratify=labels["train"], random_state=0
    )
    splits = {
        "train": (images["train"][train_idx], labels["train"][train_idx]),
        "val": (images["train"][val_idx], labels["train"][val_idx]),
        "test": (images["test"], labels["test"]),
    }
    start = time.perf_counter()
    features = {s: hog_features(x) for s, (x, _) in splits.items()}
    print(f"  HOG of 60,000 images: {time.perf_counter() - start:.1f} s")
    mean = features["train"].mean(axis=0)
    std = features["train"].std(axis=0)
    std[std == 0] = 1.0
    for s, (_, y) in splits.items():
        save_npy(cache / f"{s}_X.npy", ((features[s] - mean) / std).astype(np.float32))
        save_npy(cache / f"{s}_y.npy", y.astype(np.int64))
    return load_features(features_dir, archive, cache)


def read_cifar10(archive: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) of the binary archive's train and test."""
    images, labels = {"train": [], "test": []}, {"train": [], "test": []}
    with tarfile.open(archive) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = Path(member.name).name
            if not name.endswith(".bin"):
                continue
            split = "test" if name.startswith("test") else "train"
            raw = np.frombuffer(tar.extractfile(member).read(), dtype=np.uint8)
            records = raw.reshape(-1, 1 + 3072)
            labels[split].append(records[:, 0].astype(np.int64))
            images[split].append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return (
        {s: np.concatenate(v) for s, v in images.items()},
        {s: np.concatenate(v) for s, v in labels.items()},
    )


def hog_features(images: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray
    from skimage.feature import hog

    return np.stack([hog(rgb2gray(im), **HOG_PARAMS) for im in images]).astype(np.float32)


# ----------------------------------------------------------------------------- runs


def run_one(
    data: dict,
    loss: str,
    reg: str,
    strength: float,
    batch_size: int,
    lr: float,
    epochs: int,
    lr_decay: float = 1.0,
    lr_decay_every: int = 0,
) -> dict:
    (X, y), (Xv, yv), (Xt, yt) = data["train"], data["val"], data["test"]
    result = train(
        X,
        y,
        Xv,
        yv,
        loss=loss,
        regularizer=make_regularizer(reg, strength),
        batch_size=batch_size,
        learning_rate=lr,
        epochs=epochs,
        seed=0,
        lr_decay=lr_decay,
        lr_decay_every_images=lr_decay_every * len(y),  # every this many epochs
    )
    return {
        "loss": loss,
        "regularizer": reg,
        "strength": strength,
        "batch_size": batch_size,
        "learning_rate": lr,
        "lr_decay": lr_decay,
        "lr_decay_every": lr_decay_every,
        "diverged": result.diverged,
        "diverged_epoch": result.diverged_epoch,
        "epochs_run": result.epochs_run,
        "first_epoch_loss": result.history[0]["train_loss"],
        "final_loss": result.final_loss,
        "train_acc": result.train_acc,
        "val_acc": result.val_acc,
        "test_acc": accuracy(result.W, result.b, Xt, yt),
        "seconds": result.seconds,
        **weight_stats(result.W),
    }


def part_lr(data: dict, epochs: int) -> list[dict]:
    rows = []
    for loss in LOSS_NAMES:
        for batch_size in BATCH_SIZES:
            for lr in LEARNING_RATES:
                rows.append(run_one(data, loss, "none", 0.0, batch_size, lr, epochs))
                _print_run(rows[-1])
    return rows


def part_reg(data: dict, epochs: int, lr_rows: list[dict]) -> list[dict]:
    rows = []
    for loss in LOSS_NAMES:
        for batch_size in BATCH_SIZES:
            runs = [r for r in lr_rows if r["loss"] == loss and r["batch_size"] == batch_size]
            lr = max(runs, key=lambda r: r["val_acc"])["learning_rate"]
            for reg, strengths in STRENGTHS.items():
                for strength in strengths if reg != "none" else ():
                    rows.append(run_one(data, loss, reg, strength, batch_size, lr, epochs))
                    _print_run(rows[-1])
    return rows


def part_decay(data: dict, epochs: int, lr_rows: list[dict]) -> list[dict]:
    rows = []
    for loss in LOSS_NAMES:
        for batch_size in BATCH_SIZES:
            runs = [r for r in lr_rows if r["loss"] == loss and r["batch_size"] == batch_size]
            best_lr = max(runs, key=lambda r: r["val_acc"])["learning_rate"]
            for lr in (best_lr, 3 * best_lr):
                for lr_decay, every in DECAY_SCHEDULES:
                    rows.append(
                        run_one(data, loss, "none", 0.0, batch_size, lr, epochs, lr_decay, every)
                    )
                    _print_run(rows[-1])
    return rows


def part_sklearn(data: dict) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    (X, y), (Xv, yv), (Xt, yt) = data["train"], data["val"], data["test"]
    X, Xv, Xt = (np.asarray(a, dtype=np.float64) for a in (X, Xv, Xt))
    rows = []
    for name, make in (
        ("LogisticRegression", lambda C: LogisticRegression(C=C, max_iter=1000)),
        ("LinearSVC", lambda C: LinearSVC(C=C, max_iter=5000)),
    ):
        for C in (0.01, 0.1, 1.0):
            start = time.perf_counter()
            model = make(C).fit(X, y)
            rows.append(
                {
                    "model": name,
                    "C": C,
                    "val_acc": float(model.score(Xv, yv)),
                    "test_acc": float(model.score(Xt, yt)),
                    "seconds": time.perf_counter() - start,
                }
            )
            print(
                f"  {name:18s} C={C:<5g} val {rows[-1]['val_acc']:.4f} "
                f"test {rows[-1]['test_acc']:.4f}  {rows[-1]['seconds']:.1f} s"
            )
    return rows


# ----------------------------------------------------------------------------- speed


def minimal_sgd(X, y, Xv, yv, loss, batch_size, lr, epochs, seed, evaluate=True):
    """The reference: the least code that trains the same model with the same math and work
    (loss value per step, per-epoch accuracies unless `evaluate` is False)."""
    rng = np.random.default_rng(seed)
    n, dim = X.shape
    W = 1e-3 * rng.standard_normal((dim, 10), dtype=X.dtype)
    b = np.zeros(10, dtype=X.dtype)
    for _ in range(epochs):
        order = rng.permutation(n)
        batch_losses = []
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            Xb, yb = X[idx], y[idx]
            m = len(idx)
            rows = np.arange(m)
            s = Xb @ W + b
            if loss == "softmax":
                s -= s.max(axis=1, keepdims=True)
                e = np.exp(s)
                z = e.sum(axis=1, keepdims=True)
                batch_losses.append(float(np.mean(np.log(z[:, 0]) - s[rows, yb])))
                g = e / z
                g[rows, yb] -= 1
            else:
                margins = np.maximum(0, s - s[rows, yb][:, None] + 1.0)
                margins[rows, yb] = 0
                batch_losses.append(float(margins.sum()) / m)
                g = (margins > 0).astype(s.dtype)
                g[rows, yb] = -g.sum(axis=1)
            g /= m
            W -= lr * (Xb.T @ g)
            b -= lr * g.sum(axis=0)
        if evaluate:  # what train() records per epoch
            np.mean(batch_losses)
            np.mean(np.argmax(X @ W + b, axis=1) == y)
            np.mean(np.argmax(Xv @ W + b, axis=1) == yv)
    return W, b


def part_speed(data: dict, epochs: int, repeats: int) -> list[dict]:
    (X, y), (Xv, yv) = data["train"], data["val"]
    lr = 1e-3
    rows = []
    for loss in LOSS_NAMES:
        for batch_size in BATCH_SIZES:
            times: dict[str, list[float]] = {}
            for _ in range(repeats):
                # interleaved, so that drifts in machine load hit every variant alike
                for variant in ("minimal", "minimal_no_eval", *SPEED_STRENGTH):
                    start = time.perf_counter()
                    if variant.startswith("minimal"):
                        minimal_sgd(
                            X,
                            y,
                            Xv,
                            yv,
                            loss,
                            batch_size,
                            lr,
                            epochs,
                            0,
                            evaluate=variant == "minimal",
                        )
                    else:
                        train(
                            X,
                            y,
                            Xv,
                            yv,
                            loss=loss,
                            batch_size=batch_size,
                            learning_rate=lr,
                            regularizer=make_regularizer(variant, SPEED_STRENGTH[variant]),
                            epochs=epochs,
                            seed=0,
                        )
                    times.setdefault(variant, []).append(time.perf_counter() - start)
            median = {k: statistics.median(v) for k, v in times.items()}
            for variant in SPEED_STRENGTH:
                rows.append(
                    {
                        "loss": loss,
                        "batch_size": batch_size,
                        "regularizer": variant,
                        "seconds": median[variant],
                        "minimal_seconds": median["minimal"],
                        "minimal_no_eval_seconds": median["minimal_no_eval"],
                        "ratio": median[variant] / median["minimal"],
                        "ratio_no_eval": median[variant] / median["minimal_no_eval"],
                    }
                )
            print(
                f"  {loss:8s} batch {batch_size:5d}: minimal {median['minimal']:.3f} s, "
                + ", ".join(f"{v} {median[v] / median['minimal']:.2f}x" for v in SPEED_STRENGTH)
            )
    return rows


# ----------------------------------------------------------------------------- bundle


def sweep_composition() -> tuple[tuple[tuple[str, float], ...], tuple[float, ...]]:
    """The default study's sweep (config/config.yaml): its (regularizer, strength) pairs and
    learning rates; one bundle holds every pair at every rate, for one loss, batch size and
    seed."""
    import yaml

    sweep = yaml.safe_load((ROOT / "config/config.yaml").read_text())["grid"]["sweep"]
    models = tuple((reg, float(s)) for reg in sweep["regularizer"] for s in sweep["strength"][reg])
    return models, tuple(float(lr) for lr in sweep["learning_rate"])


BUNDLE_MODELS, BUNDLE_RATES = sweep_composition()


def bundle_target(batch_size: int) -> float:
    """Issue 13's target for a bundle's cost per model-epoch, as a share of the minimal loop's
    epoch (with its per-epoch evaluation)."""
    return 0.25 if batch_size < 128 else 0.30


def run_bundle(data: dict, loss: str, batch_size: int, epochs: int) -> float:
    (X, y), (Xv, yv) = data["train"], data["val"]
    models = [
        Model(make_regularizer(reg, strength), lr)
        for reg, strength in BUNDLE_MODELS
        for lr in BUNDLE_RATES
    ]
    start = time.perf_counter()
    train_bundle(
        X,
        y,
        Xv,
        yv,
        models,
        loss=loss,
        batch_size=batch_size,
        epochs=epochs,
        seed=0,
        history_train_images=5000,
    )
    return time.perf_counter() - start


def peak_memory_mb(data_dir: Path, loss: str, batch_size: int, epochs: int) -> float:
    """Peak resident memory (MB) of a fresh process that trains one bundle, as a job does."""
    import resource
    import subprocess

    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
        "sys.argv.pop(1); import bench_train as b; "
        "d = {s: (np.load(f'{sys.argv[1]}/{s}_X.npy', mmap_mode='r'), "
        "np.load(f'{sys.argv[1]}/{s}_y.npy')) for s in ('train', 'val')}; "
        f"b.run_bundle(d, {loss!r}, {batch_size}, {epochs})"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(data_dir)], check=True
    )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def part_bundle(data: dict, epochs: int, repeats: int, data_dir: Path) -> list[dict]:
    (X, y), (Xv, yv) = data["train"], data["val"]
    k = len(BUNDLE_MODELS) * len(BUNDLE_RATES)
    rows = []
    for loss in LOSS_NAMES:
        for batch_size in BATCH_SIZES:
            times: dict[str, list[float]] = {"minimal": [], "minimal_no_eval": [], "bundle": []}
            for _ in range(repeats):  # interleaved: drifts in machine load hit all alike
                for variant in times:
                    start = time.perf_counter()
                    if variant == "bundle":
                        run_bundle(data, loss, batch_size, epochs)
                    else:
                        evaluate = variant == "minimal"
                        minimal_sgd(X, y, Xv, yv, loss, batch_size, 1e-3, epochs, 0, evaluate)
                    times[variant].append(time.perf_counter() - start)
            median = {v: statistics.median(t) for v, t in times.items()}
            model_epoch = median["bundle"] / (k * epochs)
            rows.append(
                {
                    "loss": loss,
                    "batch_size": batch_size,
                    "models": k,
                    "bundle_seconds": median["bundle"],
                    "model_epoch_ms": 1000 * model_epoch,
                    "minimal_epoch_ms": 1000 * median["minimal"] / epochs,
                    "minimal_no_eval_epoch_ms": 1000 * median["minimal_no_eval"] / epochs,
                    "ratio": model_epoch / (median["minimal"] / epochs),
                    "ratio_no_eval": model_epoch / (median["minimal_no_eval"] / epochs),
                    "epochs": epochs,
                    "target": bundle_target(batch_size),
                }
            )
            r = rows[-1]
            print(
                f"  {loss:8s} batch {batch_size:5d}: bundle of {k} {r['model_epoch_ms']:.2f} ms "
                f"per model-epoch, minimal {r['minimal_epoch_ms']:.1f} ms per epoch "
                f"({r['minimal_no_eval_epoch_ms']:.1f} without evaluation): {r['ratio']:.3f}x "
                f"({r['ratio_no_eval']:.3f}x), target <= {r['target']:.2f}x: {_verdict(r)}"
            )
    if data_dir is not None:
        mb = peak_memory_mb(data_dir, "softmax", 32, 1)
        print(f"  peak memory of a process training one bundle of {k} (1 epoch): {mb:.0f} MB")
        rows.append({"peak_memory_mb": mb, "models": k})
    return rows


# ----------------------------------------------------------------------------- report


def _print_run(r: dict) -> None:
    flag = f"DIVERGED@{r['diverged_epoch']}" if r["diverged"] else ""
    print(
        f"  {r['loss']:8s} {r['regularizer']:11s} {r['strength']:<7g} bs {r['batch_size']:5d} "
        f"lr {r['learning_rate']:<6g} loss {r['first_epoch_loss']:9.3g} -> {r['final_loss']:9.3g} "
        f"train {r['train_acc']:.3f} val {r['val_acc']:.3f} test {r['test_acc']:.3f} "
        f"l1 {r['w_l1']:8.3g} l2 {r['w_l2']:7.3g} small {r['w_small_share']:.2f} "
        f"maxcol {r['w_max_col_norm']:6.3g} {r['seconds']:5.1f}s {flag}"
    )


def print_lr_table(rows: list[dict]) -> None:
    print("\nvalidation accuracy, no regularizer (D = diverged):")
    for loss in LOSS_NAMES:
        print(f"{loss:8s} " + "".join(f"{lr:>9g}" for lr in LEARNING_RATES) + "   s/run")
        for bs in BATCH_SIZES:
            runs = {
                r["learning_rate"]: r for r in rows if r["loss"] == loss and r["batch_size"] == bs
            }
            cells = "".join(
                f"{'D' if runs[lr]['diverged'] else '':>3s}{runs[lr]['val_acc']:6.3f}"
                for lr in LEARNING_RATES
            )
            seconds = statistics.median(r["seconds"] for r in runs.values() if not r["diverged"])
            print(f"  bs {bs:4d}" + cells + f"  {seconds:6.2f}")


def print_reg_table(rows: list[dict], lr_rows: list[dict]) -> None:
    print("\nregularizers at the best lr per batch size: val acc at batch 32 / 128 / 512 / 2048,")
    print("and what the regularizer acts on (w_small_share, w_l2, w_max_col_norm) at batch 128")
    base = [dict(r, strength=0.0) for r in lr_rows]
    for loss in LOSS_NAMES:
        for reg, strengths in STRENGTHS.items():
            for strength in strengths:
                pool = base if reg == "none" else rows
                runs = {
                    r["batch_size"]: r
                    for r in pool
                    if (r["loss"], r["regularizer"], r["strength"]) == (loss, reg, strength)
                }
                if reg == "none":  # the best lr of each batch size
                    runs = {
                        bs: max(
                            (r for r in base if (r["loss"], r["batch_size"]) == (loss, bs)),
                            key=lambda r: r["val_acc"],
                        )
                        for bs in BATCH_SIZES
                    }
                if len(runs) < len(BATCH_SIZES):
                    continue
                accs = " ".join(f"{runs[bs]['val_acc']:.3f}" for bs in BATCH_SIZES)
                r = runs[128]
                print(
                    f"  {loss:8s} {reg:11s} {strength:<7g} {accs}   small {r['w_small_share']:.2f}"
                    f"  l2 {r['w_l2']:5.2f}  maxcol {r['w_max_col_norm']:5.2f}"
                )


def print_best(rows: list[dict], sk_rows: list[dict]) -> None:
    print("\nbest by validation accuracy (lr decay: factor/every epochs):")
    for loss in LOSS_NAMES:
        best = max((r for r in rows if r["loss"] == loss), key=lambda r: r["val_acc"])
        print(
            f"  {loss:8s} {best['regularizer']} {best['strength']:g}, bs {best['batch_size']}, "
            f"lr {best['learning_rate']:g}, decay {best.get('lr_decay', 1):g}/"
            f"{best.get('lr_decay_every', 0)}: val {best['val_acc']:.4f} "
            f"test {best['test_acc']:.4f}"
        )
    for name in ("LogisticRegression", "LinearSVC"):
        runs = [r for r in sk_rows if r["model"] == name]
        if runs:
            best = max(runs, key=lambda r: r["val_acc"])
            print(
                f"  {name} C={best['C']:g}: val {best['val_acc']:.4f} test {best['test_acc']:.4f}"
            )


def print_speed_table(rows: list[dict]) -> None:
    print(
        "\nspeed, ours / minimal loop (both evaluate train+val once per epoch; "
        "in brackets: / minimal without evaluation):"
    )
    for loss in LOSS_NAMES:
        print(f"{loss:8s} {'minimal s':>10s}" + "".join(f"{v:>16s}" for v in SPEED_STRENGTH))
        for bs in BATCH_SIZES:
            runs = {
                r["regularizer"]: r for r in rows if r["loss"] == loss and r["batch_size"] == bs
            }
            cells = "".join(
                f"{runs[v]['ratio']:>9.2f} ({runs[v]['ratio_no_eval']:.2f})" for v in SPEED_STRENGTH
            )
            print(f"  bs {bs:4d} {runs['none']['minimal_seconds']:9.3f}" + cells)


def _verdict(row: dict) -> str:
    """PASS or FAIL of a bundle row against its issue-13 target."""
    return "PASS" if row["ratio"] <= row.get("target", bundle_target(row["batch_size"])) else "FAIL"


def print_bundle_table(rows: list[dict]) -> None:
    epochs = {r["epochs"] for r in rows if "epochs" in r}
    print(
        "\nbundle of 48 (one bundle of the default study), cost per model-epoch / the minimal "
        "loop's epoch (with per-epoch evaluation; in brackets: without)"
        + (f", {', '.join(map(str, sorted(epochs)))} epochs" if epochs else "")
        + "; targets <= 0.25x at batch 32, <= 0.30x at batch >= 128:"
    )
    for r in rows:
        if "peak_memory_mb" in r:
            print(f"  peak memory of a bundle process: {r['peak_memory_mb']:.0f} MB")
            continue
        print(
            f"  {r['loss']:8s} bs {r['batch_size']:4d}: {r['model_epoch_ms']:6.2f} ms vs "
            f"{r['minimal_epoch_ms']:6.1f} ms  {r['ratio']:.3f}x ({r['ratio_no_eval']:.3f}x)  "
            f"{_verdict(r)}"
        )


PARTS = ("lr", "reg", "decay", "sklearn", "speed", "bundle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part", choices=("all", *PARTS, "summary"), default="all", help="summary: tables only"
    )
    parser.add_argument(
        "--archive", type=Path, default=Path("/work/shared/cifar10/cifar-10-binary.tar.gz")
    )
    parser.add_argument("--features", type=Path, default=ROOT / "results/features/hog")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per accuracy run")
    parser.add_argument("--speed-epochs", type=int, default=3, help="epochs per speed run")
    parser.add_argument(
        "--bundle-epochs",
        type=int,
        default=20,
        help="epochs per bundle run (the study's 20: the final full-training-set evaluation "
        "is amortised over them)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="speed repeats (median)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (grid uses 1)")
    args = parser.parse_args()

    data = load_features(args.features, args.archive, args.out / "hog")
    data_dirs = [d for d in (args.features, args.out / "hog") if (d / "train_X.npy").exists()] or [
        None
    ]
    data = {s: (X, np.asarray(y)) for s, (X, y) in data.items()}
    out = {p: args.out / f"bench_train_{p}.json" for p in PARTS}

    def rows(part: str) -> list[dict]:
        """The rows of an earlier (or this) run of `part`, [] if there is none."""
        return json.loads(out[part].read_text()) if out[part].exists() else []

    with threadpool_limits(limits=args.threads):
        for part in {"all": PARTS, "summary": ()}.get(args.part, (args.part,)):
            if part in ("reg", "decay") and not rows("lr"):
                sys.exit(f"bench_train: --part {part} needs --part lr first (no {out['lr']})")
            print(f"\n== {part}")
            result = {
                "lr": lambda: part_lr(data, args.epochs),
                "reg": lambda: part_reg(data, args.epochs, rows("lr")),
                "decay": lambda: part_decay(data, args.epochs, rows("lr")),
                "sklearn": lambda: part_sklearn(data),
                "speed": lambda: part_speed(data, args.speed_epochs, args.repeats),
                "bundle": lambda: part_bundle(
                    data, args.bundle_epochs, args.repeats, data_dir=data_dirs[0]
                ),
            }[part]()
            write_json(out[part], result)

    # The summary uses every part's latest results, so parts can be (re)run one at a time.
    if rows("lr"):
        print_lr_table(rows("lr"))
    if rows("reg"):
        print_reg_table(rows("reg"), rows("lr"))
    if rows("speed"):
        print_speed_table(rows("speed"))
    if rows("bundle"):
        print_bundle_table(rows("bundle"))
    if rows("lr"):
        print_best(rows("lr") + rows("reg") + rows("decay"), rows("sklearn"))


if __name__ == "__main__":
    main()
