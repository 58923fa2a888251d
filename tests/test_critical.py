"""Steps to a target, the critical batch size and best-rate scaling, on problems whose truth
is known: hand-made progress records and simulated steps-to-target studies."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_imports import PACKAGE, imports_of

from linbench import critical
from linbench.critical import (
    bootstrap_critical_batch,
    fit_critical_batch,
    rate_scaling,
    steps_to_target,
)
from linbench.losses import softmax_loss
from linbench.noise import gradient_noise_scale

FULL_BATCH = 45_000
SIZES = np.array([32, 64, 128, 256, 512, 1024, 2048, 4096, FULL_BATCH], dtype=float)
S_MIN, B_CRIT = 200.0, 500.0


def true_steps(sizes=SIZES, s_min=S_MIN, b_crit=B_CRIT):
    return s_min * (1 + b_crit / sizes)


def study(rng, n_seeds, *, sigma=0.1, sigma_seed=0.1, s_min=S_MIN, b_crit=B_CRIT):
    """One simulated study: every seed runs every batch size; the steps to the target are the
    model's times a seed factor shared by all its runs times a factor per run (log-normal,
    mean 1)."""
    seed_factor = rng.normal(0, sigma_seed, (n_seeds, 1))
    run_factor = rng.normal(0, sigma, (n_seeds, SIZES.size))
    steps = true_steps(s_min=s_min, b_crit=b_crit) * np.exp(
        seed_factor + run_factor - (sigma**2 + sigma_seed**2) / 2
    )
    return pd.DataFrame(
        {
            "seed": np.repeat(np.arange(n_seeds), SIZES.size),
            "batch_size": np.tile(SIZES, n_seeds),
            "steps": steps.ravel(),
        }
    )


def test_critical_imports_no_plotting_or_workflow():
    """A pipeline module of numbers: numpy, pandas and scipy only (so reports and sanity
    checks can import it cheaply)."""
    internal, external = imports_of(Path(critical.__file__), PACKAGE, "linbench")
    assert not internal
    assert external <= {"__future__", "math", "numbers", "collections", "numpy", "pandas", "scipy"}


# ----------------------------------------------------------------------------- steps_to_target


def records(objective, steps=(1, 2, 4, 8, 16), batch=32, seconds_per_step=0.1):
    steps = np.asarray(steps, dtype=float)
    return pd.DataFrame(
        {
            "step": steps,
            "images": batch * steps,
            "seconds": seconds_per_step * steps,
            "objective": objective,
        }
    )


def test_crossing_is_interpolated_in_log_step():
    history = records([2.0, 1.5, 1.0, 0.8, 0.5])
    # 1.25 is halfway from 1.5 (step 2) to 1.0 (step 4): halfway in log step is 2 sqrt(2)
    out = steps_to_target(history, 1.25)
    assert out["step"] == pytest.approx(2 * math.sqrt(2), rel=1e-12)
    assert out["images"] == pytest.approx(32 * 2 * math.sqrt(2), rel=1e-12)
    assert out["seconds"] == pytest.approx(0.2 * math.sqrt(2), rel=1e-12)
    # not the arithmetic midpoint: a linear interpolation would give step 3
    assert out["step"] != pytest.approx(3.0, rel=1e-3)


def test_target_met_exactly_first_record_and_never():
    history = records([2.0, 1.5, 1.0, 0.8, 0.5])
    at_record = {"step": 4, "images": 128, "seconds": 0.4}
    assert steps_to_target(history, 1.0) == pytest.approx(at_record)
    assert steps_to_target(history, 3.0) == {"step": 1.0, "images": 32.0, "seconds": 0.1}
    never = steps_to_target(history, 0.1)
    assert set(never) == {"step", "images", "seconds"}
    assert all(math.isnan(v) for v in never.values())


def test_first_crossing_counts_when_the_objective_is_noisy():
    """The objective dips below the target, rises again and falls: the first dip counts."""
    history = records([2.0, 1.2, 1.4, 0.9, 0.5])
    t = (2.0 - 1.3) / (2.0 - 1.2)
    assert steps_to_target(history, 1.3)["step"] == pytest.approx(2**t, rel=1e-12)


def test_diverged_records_never_reach():
    history = records([2.0, 1.5, np.nan, np.nan, np.nan])
    assert math.isnan(steps_to_target(history, 1.0)["step"])


def test_a_record_at_zero_is_interpolated_linearly():
    """A record at step 0 (the initial objective) has no log: that quantity goes linear."""
    history = records([2.3, 2.0, 1.0], steps=(0, 1, 2))
    out = steps_to_target(history, 2.15)
    assert out["step"] == pytest.approx(0.5)
    assert out["seconds"] == pytest.approx(0.05)
    assert steps_to_target(history, 1.5)["step"] == pytest.approx(math.sqrt(2))


def test_steps_to_target_bad_input():
    good = records([2.0, 1.5, 1.0, 0.8, 0.5])
    with pytest.raises(ValueError, match="history must be a pandas DataFrame"):
        steps_to_target(good.to_dict(), 1.0)
    with pytest.raises(ValueError, match=r"history lacks column\(s\) \['seconds'\]"):
        steps_to_target(good.drop(columns="seconds"), 1.0)
    with pytest.raises(ValueError, match="history has no records"):
        steps_to_target(good.iloc[:0], 1.0)
    with pytest.raises(ValueError, match="target"):
        steps_to_target(good, math.nan)
    with pytest.raises(ValueError, match="target"):
        steps_to_target(good, "1.0")
    with pytest.raises(ValueError, match="target"):
        steps_to_target(good, True)
    assert steps_to_target(good, np.float32(1.0))["step"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="step must increase"):
        steps_to_target(good.iloc[::-1], 1.0)
    with pytest.raises(ValueError, match="history must be numbers"):
        steps_to_target(good.assign(seconds="fast"), 1.0)
    bad = good.copy()
    bad.loc[2, "images"] = -1
    with pytest.raises(ValueError, match="finite and >= 0"):
        steps_to_target(bad, 1.0)


# ----------------------------------------------------------------------------- fit_critical_batch


def test_fit_recovers_a_noise_free_model_exactly():
    out = fit_critical_batch(SIZES, true_steps())
    assert out["S_min"] == pytest.approx(S_MIN, rel=1e-9)
    assert out["B_crit"] == pytest.approx(B_CRIT, rel=1e-9)
    assert out["E_min"] == pytest.approx(S_MIN * B_CRIT, rel=1e-9)


def test_e_min_is_the_limit_of_small_batches():
    """E = B S = E_min (1 + B / B_crit): the work at the smallest batches approaches E_min."""
    sizes = np.array([1, 2, 4, 1000, 10_000, 100_000], dtype=float)
    steps = true_steps(sizes)
    out = fit_critical_batch(sizes, steps)
    assert sizes[0] * steps[0] == pytest.approx(out["E_min"] * (1 + 1 / B_CRIT))


def test_fit_recovers_the_truth_from_noisy_seeds():
    """5 seeds, 10 % noise per run and per seed: within 10 % of the truth (S_min,
    E_min move with the seed factor; B_crit, their ratio, does not)."""
    df = study(np.random.default_rng(0), 5)
    out = fit_critical_batch(df["batch_size"], df["steps"])
    assert out["B_crit"] == pytest.approx(B_CRIT, rel=0.1)
    assert out["S_min"] == pytest.approx(S_MIN, rel=0.1)
    assert out["E_min"] == pytest.approx(S_MIN * B_CRIT, rel=0.1)


def test_replicates_enter_through_their_mean_in_any_order():
    df = study(np.random.default_rng(1), 4)
    out = fit_critical_batch(df["batch_size"], df["steps"])
    shuffled = df.sample(frac=1, random_state=0)
    assert fit_critical_batch(shuffled["batch_size"], shuffled["steps"]) == pytest.approx(out)
    means = df.groupby("batch_size")["steps"].mean()
    assert fit_critical_batch(means.index, means.to_numpy()) == pytest.approx(out)


def test_relative_weights_beat_ordinary_least_squares(monkeypatch):
    """Break the weighting on purpose (one unweighted least-squares pass): over 200 studies
    with multiplicative noise, log B_crit errs clearly more."""

    def errors():
        rng = np.random.default_rng(2)
        out = []
        for _ in range(200):
            df = study(rng, 3, sigma=0.2)
            out.append(math.log(fit_critical_batch(df["batch_size"], df["steps"])["B_crit"]))
        return np.sqrt(np.mean((np.array(out) - math.log(B_CRIT)) ** 2))

    weighted = errors()
    good = critical._fit_line
    monkeypatch.setattr(
        critical, "_fit_line", lambda u, means, counts: good(u, means, counts * means**2)
    )
    monkeypatch.setattr(critical, "MAX_ITERATIONS", 1)
    assert errors() > 1.5 * weighted


def test_boundaries_no_gain_and_no_saturation():
    # steps grow with the batch: bigger batches save nothing, B_crit = 0
    flat = fit_critical_batch([32, 256, 2048, 4096], [100, 110, 120, 125])
    assert flat["B_crit"] == 0.0 and flat["E_min"] == 0.0
    assert flat["S_min"] == pytest.approx(np.mean([100, 110, 120, 125]), rel=0.05)
    # perfect scaling to the largest batch: S = 1e5 / B, no S_min, B_crit = inf
    sizes = np.array([32, 256, 2048, 4096.0])
    steep = fit_critical_batch(sizes, 1e5 / sizes)
    assert steep["S_min"] == 0.0 and math.isinf(steep["B_crit"])
    assert steep["E_min"] == pytest.approx(1e5)


def test_fit_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="at least 3 distinct sizes"):
        fit_critical_batch([32, 64, 32, 64], [10, 5, 11, 6])
    with pytest.raises(ValueError, match=r"steps must be finite and > 0.*never reached"):
        fit_critical_batch([32, 64, 128], [10, np.nan, 3])
    with pytest.raises(ValueError, match="batch_sizes must be finite and > 0"):
        fit_critical_batch([0, 64, 128], [10, 5, 3])
    with pytest.raises(ValueError, match="steps must be finite and > 0"):
        fit_critical_batch([32, 64, 128], [10, -5, 3])
    with pytest.raises(ValueError, match="one length"):
        fit_critical_batch([32, 64, 128], [10, 5])
    with pytest.raises(ValueError, match=r"batch_sizes must be numbers.*not 'all'"):
        fit_critical_batch([32, 64, "all"], [10, 5, 3])


# ----------------------------------------------------------------------------- bootstrap


def coverage(n_seeds, interval, studies=200):
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(studies):
        out = bootstrap_critical_batch(study(rng, n_seeds), interval=interval, n_resamples=1000)
        hits += out["B_crit_low"] <= B_CRIT <= out["B_crit_high"]
    return hits / studies


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_log_t_interval_covers_the_true_critical_batch(n_seeds):
    """200 simulated studies: the 95 % interval covers B_crit = 500 in 92-98 % of them
    (measured: 0.97 with 3 seeds, 0.955 with 5)."""
    assert 0.92 <= coverage(n_seeds, "log_t") <= 0.98


def test_percentile_interval_is_too_narrow_with_three_seeds():
    """Why it is not the default: with 3 seeds (10 distinct resamples) it covers B_crit in
    about 3 studies of 4 (measured: 0.735)."""
    assert coverage(3, "percentile") < 0.85


def test_bootstrap_point_estimate_and_reproducibility():
    df = study(np.random.default_rng(4), 5)
    out = bootstrap_critical_batch(df)
    fit = fit_critical_batch(df["batch_size"], df["steps"])
    assert {k: out[k] for k in fit} == pytest.approx(fit)
    for name in ("S_min", "E_min", "B_crit"):
        assert out[f"{name}_low"] < out[name] < out[f"{name}_high"]
    assert (out["n_seeds"], out["n_batch_sizes"]) == (5, SIZES.size)
    assert bootstrap_critical_batch(df) == out
    assert bootstrap_critical_batch(df, seed=1)["B_crit_low"] != out["B_crit_low"]
    wide = bootstrap_critical_batch(df, confidence=0.99)
    assert wide["B_crit_low"] < out["B_crit_low"] and wide["B_crit_high"] > out["B_crit_high"]


def test_bootstrap_without_saturation_reaches_infinity():
    """Perfect scaling in every seed: B_crit = inf, and its interval is open to the top."""
    rng = np.random.default_rng(5)
    sizes = np.array([32, 128, 512, 2048.0])
    rows = [
        {"seed": s, "batch_size": b, "steps": 1e5 / b * f}
        for s, f in enumerate(np.exp(rng.normal(0, 0.1, 3)))
        for b in sizes
    ]
    out = bootstrap_critical_batch(pd.DataFrame(rows))
    assert math.isinf(out["B_crit"]) and math.isinf(out["B_crit_high"])


def test_bootstrap_bad_input_names_the_argument():
    df = study(np.random.default_rng(6), 3)
    with pytest.raises(ValueError, match="df must be a pandas DataFrame"):
        bootstrap_critical_batch(df.to_dict())
    with pytest.raises(ValueError, match=r"df lacks column\(s\) \['steps'\]"):
        bootstrap_critical_batch(df.drop(columns="steps"))
    with pytest.raises(ValueError, match="df must give every seed every batch size"):
        bootstrap_critical_batch(df.iloc[1:])
    with pytest.raises(ValueError, match="more than one row"):
        bootstrap_critical_batch(pd.concat([df, df.iloc[:1]]))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        bootstrap_critical_batch(df[df["seed"] == 0])
    with pytest.raises(ValueError, match=r"df\.batch_size must hold at least 3 distinct sizes"):
        bootstrap_critical_batch(df[df["batch_size"] <= 64])
    nan = df.copy()
    nan.loc[4, "steps"] = np.nan
    with pytest.raises(ValueError, match=r"df\.steps must be finite and > 0.*never reached"):
        bootstrap_critical_batch(nan)
    text = df.astype({"batch_size": object})
    text.loc[text["batch_size"] == FULL_BATCH, "batch_size"] = "all"
    with pytest.raises(ValueError, match=r"df\.batch_size must be numbers"):
        bootstrap_critical_batch(text)
    with pytest.raises(ValueError, match="interval"):
        bootstrap_critical_batch(df, interval="bca")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_critical_batch(df, confidence=95.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_critical_batch(df, n_resamples=10)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_critical_batch(df, n_resamples=2000.0)
    assert bootstrap_critical_batch(df, n_resamples=np.int64(200), confidence=np.float64(0.9))


# ----------------------------------------------------------------------------- rate_scaling


def test_exact_linear_scaling():
    sizes = [32, 128, 512, 2048, FULL_BATCH]
    out = rate_scaling({b: 0.01 * b / 32 for b in sizes})
    assert out["slope"] == pytest.approx(1.0, rel=1e-12)
    assert out["slope_high"] - out["slope_low"] == pytest.approx(0, abs=1e-9)
    assert out["intercept"] == pytest.approx(math.log10(0.01 / 32))
    assert out["n_points"] == 5


def test_square_root_scaling_on_a_half_decade_grid():
    """Best rates that follow sqrt(B) but are picked from rates a half-decade apart, per seed
    with a little jitter: the interval holds 0.5 and excludes 1."""
    rng = np.random.default_rng(7)
    sizes = np.repeat([32, 64, 128, 256, 512, 1024, 2048, 4096, FULL_BATCH], 3)
    log_rate = -3 + 0.5 * np.log10(sizes) + rng.normal(0, 0.1, sizes.size)
    on_grid = 10 ** (np.round(2 * log_rate) / 2)
    out = rate_scaling(pd.DataFrame({"batch_size": sizes, "learning_rate": on_grid, "seed": 0}))
    assert out["sqrt_in_interval"] and not out["linear_in_interval"]
    assert out["slope_low"] < 0.5 < out["slope_high"] < 1
    assert out["n_points"] == sizes.size


def test_interval_is_the_t_interval():
    """Three points, one degree of freedom: the half-width is 12.706 standard errors."""
    out = rate_scaling({10: 1.0, 100: 30.0, 1000: 100.0})
    fit = stats.linregress([1, 2, 3], np.log10([1.0, 30.0, 100.0]))
    assert out["slope_high"] - out["slope"] == pytest.approx(12.7062047 * fit.stderr, rel=1e-6)


def test_rate_scaling_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="best_rates must be a DataFrame or a mapping"):
        rate_scaling([(32, 0.1), (64, 0.2), (128, 0.4)])
    with pytest.raises(ValueError, match=r"best_rates lacks column\(s\) \['learning_rate'\]"):
        rate_scaling(pd.DataFrame({"batch_size": [32, 64, 128], "lr": [1, 2, 3]}))
    with pytest.raises(ValueError, match="at least 3 distinct sizes"):
        rate_scaling({32: 0.1, 64: 0.2})
    with pytest.raises(ValueError, match=r"best_rates\.learning_rate must be finite and > 0"):
        rate_scaling({32: 0.1, 64: 0.0, 128: 0.4})
    with pytest.raises(ValueError, match=r"best_rates\.batch_size must be finite and > 0"):
        rate_scaling({-32: 0.1, 64: 0.2, 128: 0.4})
    with pytest.raises(ValueError, match="confidence"):
        rate_scaling({32: 0.1, 64: 0.2, 128: 0.4}, confidence=1.0)
    with pytest.raises(ValueError, match=r"best_rates\.batch_size must be numbers"):
        rate_scaling({32: 0.1, 64: 0.2, "all": 0.4})


# ----------------------------------------------------------------------------- real SGD


def sgd_records(X, y, batch, rates, seeds, stop_at, max_steps=2000, n_records=60):
    """Minibatch SGD on the softmax loss (batches drawn with replacement; batch >= N is
    full-batch gradient descent), every seed x rate at once, from W = 0, b = 0. Progress
    records at log-spaced steps, as the sweep writes them; stops once every run is at or
    below `stop_at` or diverged. Returns a DataFrame seed, rate, step, images, seconds
    (= steps here), objective."""
    n, dim = X.shape
    classes = int(y.max()) + 1
    W = np.zeros((len(seeds), len(rates), dim, classes))
    b = np.zeros((len(seeds), len(rates), classes))
    lr = np.asarray(rates, dtype=float)[None, :, None]
    gens = [np.random.default_rng(k) for k in seeds]
    log_spaced = np.round(np.logspace(0, np.log10(max_steps), n_records)).astype(int)
    checks = set(log_spaced.tolist())
    rows = []
    for step in range(1, max_steps + 1):
        if batch >= n:
            idx = np.broadcast_to(np.arange(n), (len(seeds), n))
        else:
            idx = np.stack([g.integers(0, n, batch) for g in gens])
        Xb, onehot = X[idx][:, None], np.eye(classes)[y[idx]][:, None]  # (S, 1, B, D|C)
        p = Xb @ W + b[:, :, None, :]
        p = np.exp(p - p.max(-1, keepdims=True))
        ds = (p / p.sum(-1, keepdims=True) - onehot) / idx.shape[1]
        W -= lr[..., None] * (np.swapaxes(Xb, -1, -2) @ ds)
        b -= lr * ds.sum(2)
        if step in checks:
            with np.errstate(over="ignore", invalid="ignore"):
                s = X @ W + b[..., None, :]  # (S, R, N, C)
                s -= s.max(-1, keepdims=True)
                true = np.take_along_axis(s, y[None, None, :, None], -1)[..., 0]
                objective = (np.log(np.exp(s).sum(-1)) - true).mean(-1)
            for i, k in enumerate(seeds):
                for j, r in enumerate(rates):
                    rows.append((k, r, step, step * min(batch, n), float(step), objective[i, j]))
            if np.all((objective <= stop_at) | ~np.isfinite(objective)):
                break
    return pd.DataFrame(rows, columns=["seed", "rate", "step", "images", "seconds", "objective"])


def test_real_sgd_critical_batch_grows_as_the_target_tightens_and_meets_b_simple():
    """The whole chain on genuinely noisy SGD (softmax, 2,000 examples, 8 features, 3
    classes): log-spaced records -> steps_to_target -> each batch size at its best rate
    (fewest mean steps over 3 seeds) -> bootstrap_critical_batch, for targets 20 % and 10 %
    of the way from F* to the zero model's ln 3. McCandlish et al.'s two claims hold:
    B_crit grows as the target tightens, and the noise scale B_simple at the weights where
    full-batch gradient descent reaches the target tracks it within an order of magnitude
    (measured: B_crit 15.8 [6.3, 39] and 45 [28, 73], B_simple 52 and 276; B_simple exceeds
    B_crit here, as McCandlish et al. expect when the Hessian is not isotropic). The problem
    is easy (full-batch gradient descent needs 1-2 steps, S_min = 1.0 and 1.3), so the
    small batches carry the fit."""
    rng = np.random.default_rng(0)
    means = rng.normal(0, 1.0, (3, 8))
    y = rng.integers(0, 3, 2000)
    X = means[y] + rng.normal(0, 1, (2000, 8))

    def gd_to(target, rate=4.0, steps=10_000):
        W, b = np.zeros((8, 3)), np.zeros(3)
        for _ in range(steps):
            value, dW, db = softmax_loss(W, b, X, y)
            if value <= target:
                break
            W, b = W - rate * dW, b - rate * db
        return value, W, b

    f_star = gd_to(0.0, steps=5000)[0]
    targets = [f_star + frac * (math.log(3) - f_star) for frac in (0.2, 0.1)]
    sizes, rates, seeds = [4, 16, 64, 256, 1024, 2000], 2.0 ** np.arange(-2, 4), [0, 1, 2]
    records = {B: sgd_records(X, y, B, rates, seeds, stop_at=min(targets)) for B in sizes}

    found = []
    for target in targets:
        rows = []
        for B in sizes:
            runs = records[B].groupby(["seed", "rate"])
            steps = {key: steps_to_target(h, target)["step"] for key, h in runs}
            steps = pd.Series(steps).unstack()  # seed x rate
            best = steps.mean(axis=0).idxmin()
            rows += [{"seed": k, "batch_size": B, "steps": steps.loc[k, best]} for k in seeds]
        fit = bootstrap_critical_batch(pd.DataFrame(rows))
        _, W, b = gd_to(target)
        b_simple = gradient_noise_scale(W, b, X, y, loss="softmax")["B_simple"]
        found.append((fit, b_simple))
    (loose, b_simple_loose), (tight, b_simple_tight) = found
    assert tight["B_crit"] > loose["B_crit"] and b_simple_tight > b_simple_loose
    assert tight["B_crit_low"] > loose["B_crit"] / 2
    for fit, b_simple in found:
        assert fit["B_crit_low"] < fit["B_crit"] < fit["B_crit_high"]
        assert fit["B_crit"] / 2 < b_simple < 10 * fit["B_crit"]
