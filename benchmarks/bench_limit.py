"""The bundle trainer against the machine's limit (issue 21): useful flops / sgemm, per phase.

For each of the default study's bundle compositions (below), on synthetic float32 data of
the right widths, one BLAS thread:

- the *useful* work of a training step is 4 x B x D x C flops per model (the scores
  ``X_batch @ W`` and the weight gradient ``X_batch.T @ dS``, 2 B D C each);
- *sgemm* is those two products for all K models at once, ``X_batch @ W_all`` (B, D) @
  (D, K*C) and ``X_batch.T @ dS`` (D, B) @ (B, K*C), timed alone on the same shapes in the
  same run: what this machine can do for that work;
- the trainer's rate is the useful work of every step over the time of
  :func:`linbench.bundle.train_bundle` (its evaluation included, as a study job runs it: the
  history's evaluations on HISTORY_VAL_IMAGES validation and HISTORY_TRAIN_IMAGES training
  images as ``cell.evaluation_interval`` schedules them, the final accuracies on every
  image, the final gradient noise scale over every training image);
- ``ratio`` = trainer rate / sgemm rate, and ``train``: the same without the evaluation's
  and the noise scale's time (issue 21: >= 0.60 at 1,600 and 1,774 features, >= 0.50 at
  324). A run here is 2 epochs of 10,000 images, so its final passes over every image weigh
  far more than in a study job: ``train`` and the eval share below are the numbers to read;
- the per-phase profile times the bundle's functions by wrapping them (the products, the
  loss and its gradient over the scores, penalties and steps, dropout masks and masked
  products, evaluation, the final noise scale, minibatch gather); ``bookkeeping`` is the
  rest (bias gradient, the Python loop);
- the evaluation's share of training (issue 21: <= 5 %), and that of the final noise-scale
  pass apart: the time per image scored and per training step measured here, projected to
  each training-set size of the regimes sub-grid with the study's schedule (epochs from
  ``min_images_seen``, evaluations from ``cell.evaluation_interval``, the final passes);
- a step's *floor* and the *ceiling* it sets: each part of a step timed alone in a tight
  loop, in the forms that keep train's operations (:func:`floor_seconds`), and sgemm's time
  over their sum: what this trainer could reach with nothing at all between its parts.

The compositions: the regimes bundle of each loss (config/config.yaml ``grid.regimes``: every
regularizer setting at every rate, 66 models, 63 trained: early stopping shares no
regularizer's columns) at 324, 1,600 and 1,774 features, the same without its dropout
models, the sweep bundle at batch 32 and 128, the ``optimizer`` bundle (none and l2 0.1 x 11
rates) at batch 32 and 128 and as full-batch gradient descent on 45,000 x 324 (10 steps).

Times are CPU times of this process (one BLAS thread): on a machine shared with other jobs
they count the work done, not the waiting. Medians over ``--repeats`` interleaved runs.
Results: ``benchmarks/out/bench_limit.json``.

    .venv/bin/python benchmarks/bench_limit.py                     # ~2 min
    .venv/bin/python benchmarks/bench_limit.py --only regimes --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from linbench import bundle as bundle_module  # noqa: E402
from linbench.bundle import Model, train_bundle  # noqa: E402
from linbench.cell import (  # noqa: E402
    HISTORY_TRAIN_IMAGES,
    HISTORY_VAL_IMAGES,
    evaluation_interval,
)
from linbench.io import write_json  # noqa: E402
from linbench.names import TRAIN_DEFAULTS  # noqa: E402
from linbench.regularizers import make_regularizer  # noqa: E402
from linbench.scripting import reuse_freed_memory  # noqa: E402
from linbench.subsets import training_epochs  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_train import sweep_composition  # noqa: E402

C = 10
VAL_IMAGES = 5000
TRAIN_IMAGES = 10000
"""Training images of a regimes or sweep run here (2 epochs: 156 steps at batch 128)."""
FULL_IMAGES = 45000
"""The optimizer sub-grid trains on every training image (45,000 on CIFAR-10)."""
REGIMES_SIZES = (500, 5000, FULL_IMAGES)
"""The regimes sub-grid's training-set sizes (for the evaluation's share of training)."""
# Feature widths of the default study's sets: hog, kmeans (400 centroids x 4), hog_fine.
WIDTHS = {"hog": 324, "kmeans": 1600, "hog_fine": 1774}
# The lead's `optimizer` sub-grid (batch size and learning rate), used when this checkout's
# config/config.yaml does not have it yet.
OPTIMIZER_FALLBACK = {
    "regularizer": ["none", "l2"],
    "strength": {"none": [0], "l2": [0.1]},
    "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0],
}


def subgrid_models(name: str) -> list[Model]:
    """One bundle of the default study's sub-grid `name` (config/config.yaml): every
    (regularizer, strength) at every learning rate, in the grid's order (rate by rate, so
    that the bundle's own sorting is exercised as a job's is)."""
    import yaml

    grid = yaml.safe_load((ROOT / "config/config.yaml").read_text())["grid"]
    sub = grid.get(name) or (OPTIMIZER_FALLBACK if name == "optimizer" else None)
    pairs = [(r, float(s)) for r in sub["regularizer"] for s in sub["strength"][r]]
    return [
        Model(make_regularizer(r, s), float(lr), early_stopping=r == "early_stopping")
        for lr in sub["learning_rate"]
        for r, s in pairs
    ]


def compositions() -> dict[str, dict]:
    """name -> {group, models, loss, batch_size, dim, train_images, epochs}."""
    out = {}
    regimes = subgrid_models("regimes")
    for loss in ("softmax", "svm"):
        for features, dim in WIDTHS.items():
            out[f"regimes {loss} {features}"] = {
                "group": "regimes",
                "models": regimes,
                "loss": loss,
                "batch_size": 128,
                "dim": dim,
                "train_images": TRAIN_IMAGES,
            }
    # What the dropout models (one keep probability each: masks and masked products) cost.
    for features in ("hog", "kmeans"):
        out[f"regimes softmax {features} no dropout"] = {
            **out[f"regimes softmax {features}"],
            "group": "regimes without dropout",
            "models": [m for m in regimes if m.regularizer.name != "dropout"],
        }
    sweep_models, sweep_rates = sweep_composition()
    for batch_size in (32, 128):
        out[f"sweep softmax hog batch {batch_size}"] = {
            "group": "sweep",
            "models": [
                Model(make_regularizer(r, s), lr) for r, s in sweep_models for lr in sweep_rates
            ],
            "loss": "softmax",
            "batch_size": batch_size,
            "dim": WIDTHS["hog"],
            "train_images": TRAIN_IMAGES,
        }
    optimizer = subgrid_models("optimizer")
    for batch_size in (32, 128):
        out[f"optimizer softmax hog batch {batch_size}"] = {
            "group": "optimizer",
            "models": optimizer,
            "loss": "softmax",
            "batch_size": batch_size,
            "dim": WIDTHS["hog"],
            "train_images": TRAIN_IMAGES,
        }
    # gradient descent: one step per epoch over all 45,000 images (the products are wide
    # and tall: this one should run at sgemm's speed)
    out["full-batch softmax hog"] = {
        "group": "full-batch",
        "models": optimizer,
        "loss": "softmax",
        "batch_size": FULL_IMAGES,
        "dim": WIDTHS["hog"],
        "train_images": FULL_IMAGES,
        "epochs": 10,
    }
    return out


def synthetic(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised-looking float32 features with some class signal, and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    centres = 0.3 * rng.standard_normal((C, dim), dtype=np.float32)
    X = rng.standard_normal((n, dim), dtype=np.float32)
    X += centres[y]
    return X, y


def sgemm_seconds(batch: int, dim: int, columns: int, repeats: int = 5) -> float:
    """Median time of the two products of a step on these shapes, for all models at once."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, dim), dtype=np.float32)
    W = rng.standard_normal((dim, columns), dtype=np.float32)
    dS = rng.standard_normal((batch, columns), dtype=np.float32)
    per_call = []
    for _ in range(repeats):
        calls, start = 0, time.process_time()
        while time.process_time() - start < 0.05 or calls < 3:
            X @ W
            X.T @ dS
            calls += 1
        per_call.append((time.process_time() - start) / calls)
    return statistics.median(per_call)


# ----------------------------------------------------------------------------- profile

PHASES = (
    (bundle_module._Stack, "scores", "products"),
    (bundle_module._Stack, "weight_gradient", "products"),
    (bundle_module, "random_uint16", "dropout masks"),
    (bundle_module._Stack, "masked_inputs", "dropout masks"),
    (bundle_module._Stack, "gather", "minibatch gather"),
    (bundle_module, "svm_losses", "loss and its gradient"),
    (bundle_module, "softmax_losses", "loss and its gradient"),
    (bundle_module._Stack, "update", "penalties, step, projections"),
    (bundle_module, "_accuracies", "evaluation"),
    (bundle_module, "progress_record", "noise scale"),
)
"""(module or class, attribute, phase): the functions of a step the profile times. The
products include the dropout models' own (masked) products: one per keep probability."""


class Profile:
    """Wraps the PHASES functions with timers while active; nested calls count once."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth = 0
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> Profile:
        for owner, name, phase in PHASES:
            if name not in vars(owner):
                continue
            original = vars(owner)[name]
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(original, phase))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _timed(self, function, phase: str):
        if isinstance(function, staticmethod):
            return staticmethod(self._timed(function.__func__, phase))

        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.process_time() - start
                self._depth -= 1

        return timed


def evaluations(train_images: int, epochs: int, interval: int) -> int:
    """History evaluations of a run: every `interval`-th epoch and the last."""
    return len([e for e in range(1, epochs + 1) if e % interval == 0 or e == epochs])


def run(comp: dict, data: dict, epochs: int, profile: bool) -> tuple[float, dict[str, float]]:
    X, y, Xv, yv = data[comp["dim"]]
    n = comp["train_images"]
    study_epochs = training_epochs(n, TRAIN_DEFAULTS["epochs"], TRAIN_DEFAULTS["min_images_seen"])
    prof = Profile()
    start = time.process_time()
    with prof if profile else _nothing():
        train_bundle(
            X[:n],
            y[:n],
            Xv,
            yv,
            comp["models"],
            loss=comp["loss"],
            batch_size=comp["batch_size"],
            epochs=epochs,
            seed=0,
            history_train_images=HISTORY_TRAIN_IMAGES,
            history_val_images=HISTORY_VAL_IMAGES,
            eval_every=evaluation_interval(n, study_epochs),
        )
    return time.process_time() - start, dict(prof.seconds)


def floor_seconds(comp: dict, data: dict, repeats: int = 5) -> dict[str, float]:
    """What a step of this composition costs at least while every model keeps train's
    operations: each part of it timed alone, in a tight loop (median of `repeats`), with
    nothing between the parts to evict their data from the caches. The parts: the products
    in the forms that allows (the models without dropout in one wide product, each keep
    probability's models in their own on their own masked inputs: the bundle's ``scores``
    and ``weight_gradient``); the loss and its gradient over the scores; the dropout bits
    and masked inputs; the penalties, the step and the projections, train's operations in
    train's order (the bundle's ``update``). Empty for gradient descent (one step a run)."""
    b, d = comp["batch_size"], comp["dim"]
    if b > TRAIN_IMAGES:
        return {}
    X = data[d][0][:b]
    y = data[d][1][:b]
    models = list(dict.fromkeys(bundle_module._as_trained(m) for m in comp["models"]))
    W0 = 1e-3 * np.random.default_rng(0).standard_normal((d, C), dtype=np.float32)
    stack = bundle_module._Stack(models, W0, b)
    rng = np.random.default_rng(0)
    dropout = any(p is not None for p, _ in stack.inputs)
    losses_of = (
        bundle_module.softmax_losses if comp["loss"] == "softmax" else bundle_module.svm_losses
    )
    uniform = bundle_module.random_uint16(X.shape, rng) if dropout else None
    X_inputs = stack.masked_inputs(X, uniform)
    S = stack.scores(X_inputs).copy()
    work = np.empty_like(S)
    # weights and a gradient of a trained model's size; every update starts from them (the
    # penalties would otherwise shrink the weights call by call, towards slow subnormals)
    Wt0 = 0.05 * rng.standard_normal(stack.Wt.shape, dtype=np.float32)
    dWt0 = 1e-3 * rng.standard_normal(stack.Wt.shape, dtype=np.float32)
    dWt, db, step_losses = np.empty_like(dWt0), np.zeros_like(stack.b), np.ones(stack.k)

    def reset() -> None:
        np.copyto(stack.Wt, Wt0)
        np.copyto(dWt, dWt0)

    def update() -> None:
        reset()
        stack.update(dWt, db, step_losses)

    def masks() -> None:
        stack.masked_inputs(X, bundle_module.random_uint16(X.shape, rng))

    def loss() -> None:
        np.copyto(work, S)
        losses_of(work, y, stack.k)

    def seconds(part) -> float:
        per_call = []
        for _ in range(repeats):
            calls, start = 0, time.process_time()
            while time.process_time() - start < 0.05 or calls < 3:
                part()
                calls += 1
            per_call.append((time.process_time() - start) / calls)
        return statistics.median(per_call)

    floor = {
        "products": seconds(lambda: stack.weight_gradient(X_inputs, stack.scores(X_inputs))),
        "loss": seconds(loss) - seconds(lambda: np.copyto(work, S)),
    }
    if dropout:
        floor["masks"] = seconds(masks)
    floor["penalties and step"] = seconds(update) - seconds(reset)
    return floor


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def measure(name: str, comp: dict, data: dict, epochs: int, repeats: int) -> dict:
    epochs = comp.get("epochs", epochs)
    k, b, d, n = len(comp["models"]), comp["batch_size"], comp["dim"], comp["train_images"]
    steps = epochs * math.ceil(n / b)
    useful = 4 * n * d * C * k * epochs  # every image of every epoch, once per model
    times, gemm, phases = [], [], []
    for _ in range(repeats):  # interleaved: drifts in machine load hit both alike
        times.append(run(comp, data, epochs, profile=False)[0])
        gemm.append(sgemm_seconds(b, d, k * C, repeats=3))
    profiled, phase_seconds = run(comp, data, epochs, profile=True)
    phases = {p: s / profiled for p, s in phase_seconds.items()}
    phases["bookkeeping"] = 1 - sum(phases.values())
    seconds, sgemm_step = statistics.median(times), statistics.median(gemm)
    rate, sgemm_rate = useful / seconds, 4 * b * d * C * k / sgemm_step
    # the same, training alone (the profile's shares of evaluation and of the final noise
    # scale over every training image, a pass like an evaluation's, taken out)
    not_training = phases.get("evaluation", 0.0) + phases.get("noise scale", 0.0)
    train_rate = useful / (seconds * (1 - not_training))
    # evaluation: its time per image scored, and its share of training in the study. A run
    # scores, per history evaluation, HISTORY_TRAIN_IMAGES training and HISTORY_VAL_IMAGES
    # validation images, and at the end every validation image (the returned weights'
    # accuracy). The final noise scale is a pass of its own over every training image (a
    # product, the loss and a second product: the final training accuracy comes with it).
    study_epochs = training_epochs(n, TRAIN_DEFAULTS["epochs"], TRAIN_DEFAULTS["min_images_seen"])

    def scored_rows(size: int, run_epochs: int, interval: int) -> int:
        history = evaluations(size, run_epochs, interval) * (
            min(size, HISTORY_TRAIN_IMAGES) + HISTORY_VAL_IMAGES
        )
        return history + VAL_IMAGES

    eval_seconds = phases.get("evaluation", 0.0) * seconds
    noise_seconds = phases.get("noise scale", 0.0) * seconds
    eval_per_row = eval_seconds / scored_rows(n, epochs, evaluation_interval(n, study_epochs))
    noise_per_row = noise_seconds / n
    train_step = (seconds - eval_seconds - noise_seconds) / steps
    share, noise_share = {}, {}
    for size in REGIMES_SIZES if comp["group"] == "regimes" else ():
        size_epochs = training_epochs(
            size, TRAIN_DEFAULTS["epochs"], TRAIN_DEFAULTS["min_images_seen"]
        )
        training = size_epochs * math.ceil(size / b) * train_step
        rows = scored_rows(size, size_epochs, evaluation_interval(size, size_epochs))
        share[size] = rows * eval_per_row / training
        noise_share[size] = size * noise_per_row / training
    floor = floor_seconds(comp, data)
    row = {
        "name": name,
        "group": comp["group"],
        "loss": comp["loss"],
        "models": k,
        "batch_size": b,
        "dim": d,
        "train_images": n,
        "epochs": epochs,
        "seconds": seconds,
        "gflops": rate / 1e9,
        "sgemm_gflops": sgemm_rate / 1e9,
        "ratio": rate / sgemm_rate,
        "ratio_training": train_rate / sgemm_rate,
        "phases": phases,
        "eval_share_by_train_size": share,
        "noise_scale_share_by_train_size": noise_share,
        "floor_step_seconds": floor,
        "train_step_seconds": train_step,
        "ceiling": sgemm_step / sum(floor.values()) if floor else None,
    }
    print(
        f"  {name:34s} K={k:2d} B={b:5d} D={d:4d}: {row['gflops']:6.1f} GFLOP/s vs sgemm "
        f"{row['sgemm_gflops']:6.1f}: ratio {row['ratio']:.2f} "
        f"(training alone {row['ratio_training']:.2f})",
        flush=True,
    )
    print("      " + ", ".join(f"{p} {100 * s:.0f}%" for p, s in phases.items()), flush=True)
    if share:
        print(
            "      evaluation / training by train size: "
            + ", ".join(f"{s}: {100 * v:.1f}%" for s, v in share.items())
            + "; the final noise scale: "
            + ", ".join(f"{s}: {100 * v:.1f}%" for s, v in noise_share.items()),
            flush=True,
        )
    if floor:
        print(
            f"      a step {1e3 * train_step:.2f} ms, its floor "
            f"{1e3 * sum(floor.values()):.2f} ms ("
            + ", ".join(f"{p} {1e3 * t:.2f}" for p, t in floor.items())
            + f"): ceiling {row['ceiling']:.2f} of sgemm",
            flush=True,
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs of 10,000 images per run (not GD: 10 steps)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="run the compositions whose name has this")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/bench_limit.json")
    args = parser.parse_args()
    reuse_freed_memory()  # as a training job does (workflow/scripts/train_bundle.py)
    comps = {k: v for k, v in compositions().items() if args.only in k}
    data = {}
    for dim in sorted({c["dim"] for c in comps.values()}):
        n = max(c["train_images"] for c in comps.values() if c["dim"] == dim)
        X, y = synthetic(n + VAL_IMAGES, dim)
        data[dim] = (X[:n], y[:n], X[n:], y[n:])
    rows = []
    with threadpool_limits(limits=1):
        for name, comp in comps.items():
            rows.append(measure(name, comp, data, args.epochs, args.repeats))
    write_json(args.out, rows)
    header = f"{'GFLOP/s':>8s} {'sgemm':>7s} {'ratio':>6s} {'train':>6s}  target"
    print(f"\n{'composition':34s} {header}")
    for r in rows:
        target = "" if r["group"] != "regimes" else (">= 0.50" if r["dim"] < 1000 else ">= 0.60")
        print(
            f"{r['name']:34s} {r['gflops']:8.1f} {r['sgemm_gflops']:7.1f} {r['ratio']:6.2f} "
            f"{r['ratio_training']:6.2f}  "
            f"{target}"
        )


if __name__ == "__main__":
    main()
