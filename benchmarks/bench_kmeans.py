r"""Benchmark the kmeans feature block: speed and memory, then accuracy of our classifiers.

Works on the prepared arrays (``results/data/{split}_{images,labels}.npy``, default
``/work/data/results/data``). Three parts:

``features``  fit a dictionary on the training split and extract + standardise the
    features of every split into a scratch directory (cached: reused by ``accuracy``).
    Extraction runs in `--cores` worker processes of one BLAS thread each, as the
    workflow's shard jobs do.
``speed``  in one run: the dictionary fit, our extraction of `--images` images on
    `--cores` workers, and a plain im2col + numpy reference of the same recipe (all
    distances of a chunk of images, then the triangle, then pooling by slicing) on
    `--reference-images` images in one process, one thread. Reports wall times, CPU
    per image of both and their ratio, and the peak memory (max RSS) of the jobs.
``accuracy``  train softmax and SVM with :func:`linbench.train.train` on the cached
    features, pick the better by validation accuracy, report its test accuracy.
``paper_svm``  the paper's own classifier on the cached features, as a reference: a
    one-vs-all squared-hinge SVM (C = 100) by L-BFGS (scipy) on train + validation.

    python benchmarks/bench_kmeans.py speed --images 60000             # ~4 min
    python benchmarks/bench_kmeans.py accuracy --iterations 30 --whitening-epsilon 0.5 \
        --mirror --power 0.5                                # ~7 min, then ~2 on reruns
    python benchmarks/bench_kmeans.py accuracy --iterations 30 --whitening-epsilon 0.5 \
        --mirror --power 0.5 --losses softmax \
        --append /work/data/results/features/hog                        # kmeans + hog
    python benchmarks/bench_kmeans.py accuracy --iterations 30 --whitening-epsilon 0.5 \
        --mirror --power 0.5 --centroids 400
    python benchmarks/bench_kmeans.py accuracy                         # the paper's recipe
    python benchmarks/bench_kmeans.py paper_svm              # ... and classifier, ~6 min

``accuracy`` extracts (``features``) first when the scratch folder of that recipe lacks
the features; the training defaults are the settings of ``config/learned.yaml`` (L2 1e-4
and 3e-4, batch 256, rates 0.01 and 0.03, momentum 0.9, rate x 0.5 every 8 epochs, 60
epochs).

Results go to ``benchmarks/out/bench_kmeans_<part>.json`` (and are printed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

import numpy as np  # noqa: E402

from linbench.features import resolve_block, shard_bounds  # noqa: E402
from linbench.kmeans import (  # noqa: E402
    KMeansDictionary,
    fit_dictionary,
    image_patches,
    normalize_patches,
)
from linbench.names import CLASS_NAMES, SPLITS  # noqa: E402

DATA = Path("/work/data/results/data")
SCRATCH = Path("/tmp/features-scratch")
OUT = ROOT / "benchmarks/out"


def block_for(args: argparse.Namespace) -> dict:
    return resolve_block(
        {
            "block": "kmeans",
            "centroids": args.centroids,
            "patches": args.patches,
            "iterations": args.iterations,
            "stride": args.stride,
            "whitening_epsilon": args.whitening_epsilon,
        }
    )


def child(*argv: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, __file__, *argv], env=env)


def wait_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"worker failed: {proc.args}")


def peak_children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# --------------------------------------------------------------------------- workers


def worker_fit(args: argparse.Namespace) -> None:
    images = np.load(args.data / "train_images.npy", mmap_mode="r")
    start = time.perf_counter()
    dictionary = fit_dictionary(images, block_for(args), progress_every=0)
    dictionary.save(args.dictionary)
    print(f"fit: {time.perf_counter() - start:.1f} s, objective {dictionary.objective.round(4)}")


def worker_encode(args: argparse.Namespace) -> None:
    dictionary = KMeansDictionary.load(args.dictionary)
    images = np.load(args.data / f"{args.split}_images.npy", mmap_mode="r")
    stop = min(args.stop, len(images))
    features = np.empty((stop - args.start, dictionary.dimension), dtype=np.float32)
    for first in range(args.start, stop, 32):
        last = min(first + 32, stop)
        features[first - args.start : last - args.start] = dictionary.encode(
            np.asarray(images[first:last]), mirror=args.mirror, power=args.power
        )
    np.save(args.out_file, features)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(f"{args.out_file}.peak_mib").write_text(f"{peak:.1f}\n")


def reference_encode(dictionary: KMeansDictionary, images: np.ndarray, chunk: int = 50):
    """The same recipe, plainly: im2col of a chunk, all distances, triangle, slice pooling."""
    c = dictionary.centroids.astype(np.float32)
    c_norms = (c * c).sum(axis=1)
    mean, whitening = dictionary.mean.astype(np.float32), dictionary.whitening.astype(np.float32)
    out = []
    for start in range(0, len(images), chunk):
        patches = image_patches(
            np.asarray(images[start : start + chunk]), dictionary.patch_size, dictionary.stride
        )
        n, rows, cols, d = patches.shape
        x = normalize_patches(patches.reshape(-1, d)) - mean
        x = x @ whitening
        z = np.sqrt(np.maximum((x * x).sum(1)[:, None] - 2 * x @ c.T + c_norms, 0))
        f = np.maximum(0, z.mean(axis=1, keepdims=True) - z).reshape(n, rows, cols, -1)
        hr, hc = (rows + 1) // 2, (cols + 1) // 2
        quads = [f[:, :hr, :hc], f[:, :hr, hc:], f[:, hr:, :hc], f[:, hr:, hc:]]
        out.append(np.concatenate([q.sum(axis=(1, 2)) for q in quads], axis=1))
    return np.concatenate(out)


# --------------------------------------------------------------------------- parts


def extract_split(args, dictionary_path: Path, split: str, n: int, folder: Path) -> list[Path]:
    """Encode images [0, n) of `split` on `args.cores` worker processes; their files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, procs = [], []
    for i in range(args.cores):
        start, stop = shard_bounds(n, args.cores, i)
        paths.append(folder / f"{split}_{i}.npy")
        procs.append(
            child(
                "_encode",
                f"--data={args.data}",
                f"--dictionary={dictionary_path}",
                f"--split={split}",
                f"--start={start}",
                f"--stop={stop}",
                f"--out-file={paths[-1]}",
                f"--power={args.power}",
                *(["--mirror"] if args.mirror else []),
                threads=1,
            )
        )
    wait_all(procs)
    return paths


def part_features(args: argparse.Namespace) -> dict:
    from linbench.standardize import Standardizer

    folder = feature_folder(args)
    folder.mkdir(parents=True, exist_ok=True)
    dictionary_path = folder / "dictionary.npz"
    timings = {}
    if not dictionary_path.exists():
        start = time.perf_counter()
        wait_all([child("_fit", *fit_argv(args, dictionary_path), threads=args.cores)])
        timings["fit_wall"] = time.perf_counter() - start
    parts = {}
    for split in SPLITS:
        if (folder / f"{split}_X.npy").exists():
            continue
        n = len(np.load(args.data / f"{split}_labels.npy"))
        start = time.perf_counter()
        paths = extract_split(args, dictionary_path, split, n, folder / "raw")
        timings[f"{split}_wall"] = time.perf_counter() - start
        parts[split] = [np.load(p, mmap_mode="r") for p in paths]
        print(f"{split}: {n} images in {timings[f'{split}_wall']:.1f} s", flush=True)
    if parts:
        if "train" not in parts:
            raise SystemExit(f"{folder}: remove it; train features must be refitted with the rest")
        stats = Standardizer.fit(parts["train"])
        for split, split_parts in parts.items():
            stats.save_transformed(folder / f"{split}_X.npy", split_parts)
    return {"folder": str(folder), "timings": timings, "peak_child_mib": peak_children_mib()}


def feature_folder(args: argparse.Namespace) -> Path:
    """Scratch folder of one feature recipe (cached features are reused only by it)."""
    mirror = "_mirror" if args.mirror else ""
    return args.scratch / (
        f"k{args.centroids}_n{args.patches}_it{args.iterations}_s{args.stride}"
        f"_eps{args.whitening_epsilon}{mirror}_p{args.power}"
    )


def fit_argv(args: argparse.Namespace, dictionary_path: Path) -> list[str]:
    return [
        f"--data={args.data}",
        f"--dictionary={dictionary_path}",
        f"--centroids={args.centroids}",
        f"--patches={args.patches}",
        f"--iterations={args.iterations}",
        f"--stride={args.stride}",
        f"--whitening-epsilon={args.whitening_epsilon}",
    ]


def part_speed(args: argparse.Namespace) -> dict:
    folder = args.scratch / f"speed_k{args.centroids}"
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    dictionary_path = folder / "dictionary.npz"
    load_before = os.getloadavg()[0]

    start = time.perf_counter()
    wait_all([child("_fit", *fit_argv(args, dictionary_path), threads=args.cores)])
    fit_wall = time.perf_counter() - start
    fit_peak = peak_children_mib()

    images = np.load(args.data / "train_images.npy", mmap_mode="r")
    n = args.images
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Train images first, then test images, as many as asked (the workflow's 60,000).
    paths = extract_split(args, dictionary_path, "train", min(n, len(images)), folder / "raw")
    if n > len(images):
        paths += extract_split(args, dictionary_path, "test", n - len(images), folder / "raw")
    ours_wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    encode_peak = max(float(Path(f"{p}.peak_mib").read_text()) for p in paths)

    dictionary = KMeansDictionary.load(dictionary_path)
    sample = np.asarray(images[: args.reference_images])
    cpu = time.process_time()
    reference = reference_encode(dictionary, sample)
    ref_cpu = time.process_time() - cpu
    ours_sample = np.load(paths[0], mmap_mode="r")[: args.reference_images]
    agree = float(np.abs(reference - ours_sample).max() / np.abs(reference).max())
    ref_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "images": n,
        "cores": args.cores,
        "centroids": args.centroids,
        "stride": args.stride,
        "patches": args.patches,
        "iterations": args.iterations,
        "fit_wall_seconds": fit_wall,
        "extract_wall_seconds": ours_wall,
        "total_wall_seconds": fit_wall + ours_wall,
        "ours_cpu_ms_per_image": 1e3 * ours_cpu / n,
        "reference_images": args.reference_images,
        "reference_cpu_ms_per_image": 1e3 * ref_cpu / args.reference_images,
        "speedup_cpu_per_image": (ref_cpu / args.reference_images) / (ours_cpu / n),
        "max_relative_difference_to_reference": agree,
        "peak_mib": {"fit": fit_peak, "extract_worker": encode_peak, "reference": ref_peak},
        "load_average_before": load_before,
    }
    print(
        f"fit {fit_wall:.1f} s wall; extraction of {n} images on {args.cores} workers "
        f"{ours_wall:.1f} s wall ({result['ours_cpu_ms_per_image']:.2f} ms CPU/image); "
        f"reference {result['reference_cpu_ms_per_image']:.2f} ms CPU/image -> "
        f"{result['speedup_cpu_per_image']:.2f}x; peak MiB {result['peak_mib']}"
    )
    return result


def part_accuracy(args: argparse.Namespace) -> dict:
    from linbench.regularizers import make_regularizer
    from linbench.train import accuracy, train

    folder = feature_folder(args)
    if not (folder / "test_X.npy").exists():
        part_features(args)
    X = {s: np.load(folder / f"{s}_X.npy", mmap_mode="r") for s in SPLITS}
    y = {s: np.load(args.data / f"{s}_labels.npy").astype(np.int64) for s in SPLITS}
    if args.append:  # another standardised feature set, e.g. HOG: a kmeans + hog set
        X = {s: np.hstack([X[s], np.load(args.append / f"{s}_X.npy")]) for s in SPLITS}
    X["train"] = np.asarray(X["train"])  # minibatches gather random rows
    runs = []
    for loss, learning_rate, strength in itertools.product(
        args.losses, args.learning_rates, args.strengths
    ):
        result = train(
            X["train"],
            y["train"],
            X["val"],
            y["val"],
            loss=loss,
            regularizer=make_regularizer(args.regularizer, strength),
            batch_size=args.batch_size,
            learning_rate=learning_rate,
            epochs=args.epochs,
            seed=0,
            momentum=args.momentum,
            lr_decay=args.lr_decay,
            lr_decay_every_images=args.lr_decay_every * len(y["train"]),  # epochs -> images
        )
        run = {
            "loss": loss,
            "learning_rate": learning_rate,
            "strength": strength,
            "train_acc": result.train_acc,
            "val_acc": result.val_acc,
            "test_acc": accuracy(result.W, result.b, X["test"], y["test"]),
            "seconds": result.seconds,
            "val_by_epoch": [round(h["val_acc"], 4) for h in result.history],
        }
        runs.append(run)
        print(json.dumps(run), flush=True)
    best = max(runs, key=lambda r: r["val_acc"])
    settings = {
        k: getattr(args, k)
        for k in (
            "centroids",
            "regularizer",
            "strengths",
            "batch_size",
            "learning_rates",
            "whitening_epsilon",
            "iterations",
            "mirror",
            "power",
            "momentum",
            "lr_decay",
            "lr_decay_every",
            "epochs",
            "append",
        )
    }
    settings["append"] = str(settings["append"]) if settings["append"] else None
    print(
        f"best by validation: {best['loss']} at rate {best['learning_rate']}, "
        f"strength {best['strength']}: "
        f"val {best['val_acc']:.4f} test {best['test_acc']:.4f}"
    )
    return {"settings": settings, "runs": runs, "best": best}


def part_paper_svm(args: argparse.Namespace) -> dict:
    """The paper's classifier on the cached features, as a reference for ours.

    Coates et al. train a one-vs-all squared-hinge SVM, ``0.5 |theta|^2 + C mean(margin^2)``
    with C = 100 and a bias column, by L-BFGS, on all 50,000 training images: here on the
    train and validation splits together (45,000 + 5,000), tested on the test split.
    """
    from scipy.optimize import minimize

    folder = feature_folder(args)
    if not (folder / "test_X.npy").exists():
        part_features(args)

    def with_bias(x: np.ndarray) -> np.ndarray:
        return np.hstack([x, np.ones((len(x), 1), dtype=np.float32)])

    X = with_bias(np.vstack([np.load(folder / f"{s}_X.npy") for s in ("train", "val")]))
    y = np.concatenate([np.load(args.data / f"{s}_labels.npy") for s in ("train", "val")])
    X_test, y_test = (
        with_bias(np.load(folder / "test_X.npy")),
        np.load(args.data / "test_labels.npy"),
    )
    classes = len(CLASS_NAMES)
    signs = np.where(y[:, None] == np.arange(classes), 1.0, -1.0).astype(np.float32)
    C, m, d = args.svm_c, len(X), X.shape[1]

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        theta = w.reshape(d, classes)
        margin = np.maximum(0, 1 - signs * (X @ theta.astype(np.float32)))
        loss = 0.5 * float(w @ w) + C * float(np.square(margin, dtype=np.float64).sum()) / m
        grad = theta - (2 * C / m) * (X.T @ (margin * signs)).astype(np.float64)
        return loss, grad.ravel()

    start = time.perf_counter()
    fit = minimize(
        objective,
        np.zeros(d * classes),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": args.svm_iterations},
    )
    theta = fit.x.reshape(d, classes)
    result = {
        "folder": str(folder),
        "C": C,
        "lbfgs_iterations": int(fit.nit),
        "converged": bool(fit.success),
        "train_images": m,
        "train_acc": float(((X @ theta).argmax(axis=1) == y).mean()),
        "test_acc": float(((X_test @ theta).argmax(axis=1) == y_test).mean()),
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "part", choices=["features", "speed", "accuracy", "paper_svm", "_fit", "_encode"]
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--scratch", type=Path, default=SCRATCH)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--centroids", type=int, default=1600)
    parser.add_argument("--patches", type=int, default=400_000)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--whitening-epsilon", type=float, default=0.1)
    parser.add_argument("--mirror", action="store_true", help="the block's mirror: true")
    parser.add_argument("--power", type=float, default=1.0, help="the block's power")
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--reference-images", type=int, default=200)
    # accuracy
    parser.add_argument("--losses", nargs="+", default=["softmax", "svm"])
    parser.add_argument("--regularizer", default="l2")
    parser.add_argument("--strengths", type=float, nargs="+", default=[1e-4, 3e-4])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[0.01, 0.03])
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--lr-decay", type=float, default=0.5)
    parser.add_argument("--lr-decay-every", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--svm-c", type=float, default=100.0, help="paper_svm: C")
    parser.add_argument("--svm-iterations", type=int, default=1000, help="paper_svm: L-BFGS")
    parser.add_argument(
        "--append", type=Path, help="folder of standardised {split}_X.npy to append (HOG)"
    )
    # workers
    parser.add_argument("--dictionary", type=Path)
    parser.add_argument("--split")
    parser.add_argument("--start", type=int)
    parser.add_argument("--stop", type=int)
    parser.add_argument("--out-file", type=Path)
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/out/...)")
    args = parser.parse_args()

    if args.part.startswith("_"):
        {"_fit": worker_fit, "_encode": worker_encode}[args.part](args)
        return
    parts = {
        "features": part_features,
        "speed": part_speed,
        "accuracy": part_accuracy,
        "paper_svm": part_paper_svm,
    }
    result = parts[args.part](args)
    out = args.out or OUT / f"bench_kmeans_{args.part}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
