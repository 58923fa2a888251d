"""The whole workflow on a tiny archive served over HTTP on 127.0.0.1.

One module-scoped run of the full grid is shared by the tests that inspect it and
then changed step by step (rerun, forcerun, a new learning rate), so the order of the
tests in this file matters and pytest runs them in file order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_cifar_archive, serve_directory
from workflow_utils import SNAKEFILE, plan, snakemake

pytestmark = pytest.mark.workflow

ARCHIVE = "cifar-10-binary.tar.gz"


# Gradient descent beside SGD, every run recording its progress: 12 cells.
OPTIMIZER = {
    "features": ["hog"],
    "loss": ["softmax"],
    "regularizer": ["none"],
    "strength": {"none": [0]},
    "batch_size": [8, 32, "all"],
    "learning_rate": [0.01, 0.1],
    "seed": [0, 1],
    "progress": True,
}
SWEEP_CELLS = 8


def grid_config(url: str, md5: str, optimizer: dict | None = OPTIMIZER, **grid) -> dict:
    return {
        "data": {"url": url, "md5": md5, "val_size": 40},
        "features": {"shards": 2},
        "grid": {
            "sweep": {
                "features": ["hog"],
                "train_size": ["all"],
                "loss": ["svm", "softmax"],
                "regularizer": ["none", "l2"],
                "strength": {"none": [0], "l2": [1.0e-3]},
                "batch_size": [16],
                "learning_rate": [0.01, 1.0e6],  # 1e6 diverges: a result, not a failure
                "seed": [0],
                **grid,
            },
            "optimizer": optimizer,
            "regimes": None,
        },
        "train": {"epochs": 3, "min_images_seen": 0},
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    src = tmp_path_factory.mktemp("served")
    md5 = make_cifar_archive(src / ARCHIVE, n_train_per_class=16, n_test_per_class=6)
    with serve_directory(src) as base:
        yield src, f"{base}/{ARCHIVE}", md5


@pytest.fixture(scope="module")
def study(served, tmp_path_factory):
    """A complete run of the small grid; returns (workdir, config)."""
    _, url, md5 = served
    workdir = tmp_path_factory.mktemp("study")
    config = grid_config(url, md5)
    run = snakemake(workdir, "--cores", "2", config=config)
    assert run.returncode == 0, run.output[-3000:]
    (workdir / "console.txt").write_text(run.output)  # what the user saw
    return workdir, config


def train_jobs(due: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The training jobs in a plan, as (rule, group folder): a rule train_<sub-grids> has
    one job per bundle, and its cells live in results/runs/<group>/<model>."""
    return sorted(
        {
            (rule, str(Path(path).parents[3].relative_to("results/runs")))
            for rule, paths in due.items()
            if rule.startswith("train_")
            for path in paths
        }
    )


def cell_dir(workdir: Path, loss="svm", reg="none", strength="0", lr="0.01") -> Path:
    cell = f"n~all/loss~{loss}/batch~16/seed~0/reg~{reg}/strength~{strength}/lr~{lr}"
    return workdir / "results/runs/features~hog" / cell


# ----------------------------------------------------------------------------- data half


def test_prepared_data(study):
    workdir, _ = study
    summary = json.loads((workdir / "results/data/splits.json").read_text())
    assert summary["sizes"] == {"train": 120, "val": 40, "test": 60}
    assert set(summary["counts"]["test"].values()) == {6}
    images = np.load(workdir / "results/data/train_images.npy")
    assert images.shape == (120, 32, 32, 3) and images.dtype == np.uint8
    assert (workdir / "logs/download.log").read_text().count("downloaded") >= 1


def test_every_cell_has_outputs_and_diverged_cell_is_recorded(study):
    workdir, _ = study
    cells = sorted((workdir / "results/runs").glob("**/metrics.json"))
    assert len(cells) == SWEEP_CELLS + 12
    for path in cells:
        files = {p.name for p in path.parent.iterdir()}
        assert {"history.csv", "progress.csv", "weights.npz"} <= files
    # Training stops only on inf/nan: with L2, lr 1e6 multiplies W by about -2000 per step
    # and overflows in the first epochs; without a penalty it does not overflow.
    diverged = json.loads(
        (cell_dir(workdir, reg="l2", strength="0.001", lr="1000000") / "metrics.json").read_text()
    )
    assert diverged["status"] == "diverged" and diverged["diverged"] is True
    assert diverged["epochs_run"] == diverged["diverged_epoch"] <= 3
    good = json.loads((cell_dir(workdir) / "metrics.json").read_text())
    assert good["status"] == "ok" and good["diverged"] is False and good["epochs_run"] == 3
    assert good["train_acc"] > 0.3  # the synthetic classes are learnable


def test_report_tables_match_cells(study):
    workdir, _ = study
    runs = pd.read_csv(workdir / "results/reports/runs.csv")
    assert len(runs) == SWEEP_CELLS + 12
    metrics = json.loads(
        (cell_dir(workdir, loss="softmax", reg="l2", strength="0.001") / "metrics.json").read_text()
    )
    row = runs[(runs.loss == "softmax") & (runs.regularizer == "l2") & (runs.learning_rate == 0.01)]
    assert row.test_acc.item() == metrics["test_acc"]


def test_the_console_shows_progress_one_line_per_job_and_where_the_answer_is(study):
    """The default profile's console: every job in one line (its rule's message), the
    progress after each, no list of files, and a closing note naming the results."""
    workdir, _ = study
    console = (workdir / "console.txt").read_text()
    lines = console.splitlines()
    assert max(map(len, lines)) < 300, max(lines, key=len)[:300]  # no list of ~200 files
    done = re.findall(r"^(\d+) of (\d+) steps \(\d+%\) done$", console, re.M)
    assert done and done[-1][0] == done[-1][1] and len(done) == int(done[-1][1])
    group = "features~hog/n~all/loss~svm/batch~16/seed~0"
    assert f"Train 4 cells in one pass -> results/runs/{group}/ (train_sweep)" in console
    assert len(console) < 400 * len(done) + 3000, len(console)
    note = console[console.index("linbench: done.") :]
    for path in ("results/reports/summary.md", "results/reports/figures/", "results/report.html"):
        assert path in note, note
    assert "snakemake --report results/report.html" in note


def test_second_run_has_nothing_to_do(study):
    workdir, config = study
    run = snakemake(workdir, "--cores", "2", "-n", config=config)
    assert run.returncode == 0 and "Nothing to be done" in run.output, run.output[-2000:]


def test_forcerun_one_cell_reruns_it_and_its_aggregation_only(study):
    workdir, config = study
    target = cell_dir(workdir) / "metrics.json"
    before = target.read_text()
    other = cell_dir(workdir, loss="softmax") / "metrics.json"
    other_mtime = other.stat().st_mtime_ns
    force = ("--forcerun", str(target.relative_to(workdir)))
    due = plan(workdir, *force, config=config)
    assert len(train_jobs(due)) == 1, due  # the cell's bundle
    assert str(target.relative_to(workdir)) in due[train_jobs(due)[0][0]]
    assert "aggregate" in due, due
    assert not {"download", "prepare", "extract_features", "gather_features"} & set(due)
    run = snakemake(workdir, "--cores", "2", *force, config=config)
    assert run.returncode == 0, run.output[-3000:]
    assert other.stat().st_mtime_ns == other_mtime
    # Same inputs and seed: bit-identical result, except the wall-clock time.
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "train_seconds"}  # noqa: E731
    assert strip(target.read_text()) == strip(before)


def test_adding_a_learning_rate_runs_only_the_bundles_it_joins(study):
    workdir, config = study
    config = json.loads(json.dumps(config))
    config["grid"]["sweep"]["learning_rate"].append(0.1)
    # One bundle per loss (4 cells each, train.bundle_size 48): the new rate's cells join
    # them, so both bundle jobs run again, and nothing upstream.
    due = plan(workdir, config=config)
    assert len(train_jobs(due)) == 2, due
    assert not {"download", "prepare", "extract_features", "gather_features"} & set(due)
    run = snakemake(workdir, "--cores", "2", config=config)
    assert run.returncode == 0, run.output[-3000:]
    assert len(pd.read_csv(workdir / "results/reports/runs.csv")) == SWEEP_CELLS + 4 + 12


def test_narrowing_the_grid_by_overlay(study):
    workdir, config = study
    due = plan(workdir, "--config", "grid={sweep: {regularizer: [l2]}}", config=config)
    # Only the L2 cells are wanted; they exist, so only the tables and figures are redone.
    assert not train_jobs(due) and "aggregate" in due, due


def test_report_html(study):
    workdir, config = study
    run = snakemake(workdir, "--report", "results/report.html", config=config)
    assert run.returncode == 0, run.output[-3000:]
    html = workdir / "results/report.html"
    assert html.stat().st_size > 50_000
    # Every caption is valid RST: docutils would print a warning and embed it in the page.
    assert "WARNING/" not in run.output and "ERROR/" not in run.output, run.output[-3000:]
    assert "System Message" not in html.read_text()


def chromium_dom(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """`page` loaded in headless Chromium: the DOM after its scripts ran, and the console
    messages of level warning or error (Chromium logs them to stderr)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run does)")
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,1000",
        "--virtual-time-budget=10000",  # let the report's scripts render before the dump
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [
        line
        for line in proc.stderr.splitlines()
        if re.search(r":(ERROR|WARNING|FATAL):CONSOLE", line) or "Uncaught" in line
    ]
    return proc.stdout, console


def rendered(dom: str) -> str:
    """The DOM without its scripts: what the page shows, not the data its scripts hold."""
    return re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)


def test_report_opens_on_the_answer_in_chromium(study, tmp_path):
    """The report is a JavaScript app: load it as a reader would, and check that it runs
    without a console error and that its first page shows the answer table."""
    workdir, _ = study
    dom, console = chromium_dom(workdir / "results/report.html", tmp_path)
    assert console == [], console
    page = rendered(dom)
    assert re.search(r'<h1 class="title">The answer</h1>', page), page[:3000]
    table = page[page.index('<h1 class="title">The answer</h1>') :]
    table = table[: table.index("</table>")]
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", table, re.S)
    ]
    assert "best regularizer" in cells and "svm" in cells and "softmax" in cells, cells
    # Snakemake centres its first page vertically, so a tall page would hide its top (the
    # answer) above the scroll range; the page's own style puts it at the top.
    assert "{align-items: flex-start;}" in page
    # The menu lists the categories, the answer's first.
    menu = re.findall(r">(\d) ([A-Z][a-z]+(?: [a-z]+)?)</span>", page)
    assert menu and menu[0] == ("1", "The answer"), menu


def test_chromium_check_sees_a_broken_report(study, tmp_path):
    """The check fails when the page throws, and when the first page has no answer."""
    workdir, _ = study
    html = (workdir / "results/report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace("</body>", "<script>null.answer;</script></body>", 1))
    _, console = chromium_dom(broken, tmp_path)
    assert any("Uncaught" in line for line in console), console
    no_answer = tmp_path / "no_answer.html"
    no_answer.write_text(html.replace("The answer", "Some numbers"))
    dom, _ = chromium_dom(no_answer, tmp_path)
    assert '<h1 class="title">The answer</h1>' not in rendered(dom)


@pytest.mark.parametrize("configfile", [None, "config/learned.yaml"])
def test_the_study_has_a_readable_number_of_rules(tmp_path, configfile):
    """A handful of training rules with a {group} wildcard, not one rule per bundle: the
    rule graph and `--list-rules` show the study's shape."""
    args = ["--list-rules"]
    if configfile:
        args += ["--configfile", str(SNAKEFILE.parent / configfile)]
    run = snakemake(tmp_path, *args)
    assert run.returncode == 0, run.output[-2000:]
    rules = [line for line in run.output.splitlines() if line and " " not in line]
    training = [rule for rule in rules if rule.startswith("train_")]
    # one rule per figure (16), a handful per stage, a handful of training rules
    assert 20 <= len(rules) <= 35 and 1 <= len(training) <= 8, rules


# ----------------------------------------------------------------------------- bad input


def failing_run(served, tmp_path, config_changes=None, archive=None, md5=None):
    _, url, good_md5 = served
    if archive is not None:
        url = str(archive)
    config = grid_config(url, md5 or good_md5)
    for section, values in (config_changes or {}).items():
        config[section].update(values)
    run = snakemake(tmp_path, "--cores", "1", "results/data/splits.json", config=config)
    assert run.returncode != 0
    assert "Traceback" not in run.output
    leftovers = (
        [p for p in (tmp_path / "results/data").glob("*")]
        if (tmp_path / "results/data").exists()
        else []
    )
    assert leftovers == [], leftovers
    return run


def test_wrong_md5_fails_cleanly(served, tmp_path):
    run = failing_run(served, tmp_path, md5="0" * 32)
    assert "checksum mismatch" in run.output
    # The quiet console still shows a failed job, and its log (show-failed-logs).
    assert "Error in rule download:" in run.output
    assert "Logfile logs/download.log:" in run.output and "linbench: done." not in run.output
    assert not (tmp_path / "resources" / ARCHIVE).exists()
    assert [p.name for p in (tmp_path / "resources").glob("*")] == []


def test_truncated_archive_fails_cleanly(tmp_path, served):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes((served[0] / ARCHIVE).read_bytes()[:5000])
    import hashlib

    run = failing_run(served, tmp_path, archive=cut, md5=hashlib.md5(cut.read_bytes()).hexdigest())
    assert "truncated or corrupt archive" in run.output


def test_malicious_member_fails_cleanly(tmp_path, served):
    evil = tarfile.TarInfo("../../etc/cron.d/evil")
    evil.size = 3
    path = tmp_path / "evil.tar.gz"
    md5 = make_cifar_archive(path, 2, 1, extra_members=[evil])
    run = failing_run(served, tmp_path, archive=path, md5=md5)
    assert "unsafe member path" in run.output


def test_bad_labels_fail_cleanly(tmp_path, served):
    path = tmp_path / "bad.tar.gz"
    md5 = make_cifar_archive(path, 4, 1, bad_label=True)
    run = failing_run(served, tmp_path, archive=path, md5=md5)
    assert "outside 0..9" in run.output


@pytest.mark.parametrize(
    ("arg", "key"),
    [
        ("grid={sweep: {learning_rate: [-0.1]}}", "grid.sweep.learning_rate[0]"),
        ("grid={sweep: {batch_size: [0]}}", "grid.sweep.batch_size[0]"),
        ("grid={regimes: {regularizer: [l3]}}", "grid.regimes.regularizer[0]"),
        ("grid={regimes: {train_size: [0]}}", "grid.regimes.train_size[0]"),
        ("grid={regimes: {train_size: [99999]}}", "grid.regimes.train_size[0]"),
        ("grid={regimes: {features: [sift]}}", "grid.regimes.features: 'sift'"),
        ("data={md5: xyz}", "data.md5"),
        ("grid={sweep: {bogus: 1}}", "grid.sweep.bogus: unknown key"),
        ("grid={regularizer: [l2]}", "grid.regularizer: the grid is a set of named sub-grids"),
        ("train={divergence_factor: 1000}", "train.divergence_factor: removed"),
    ],
)
def test_invalid_config_stops_with_one_clear_line(tmp_path, arg, key):
    run = snakemake(tmp_path, "-n", "--config", arg)
    assert run.returncode != 0
    assert key in run.output and "Traceback" not in run.output, run.output[-2000:]


# ----------------------------------------------------------------------------- interruption


def test_sigkill_midway_is_resumed_by_the_documented_commands(served, tmp_path):
    """Killed with SIGKILL, a run is resumed by `snakemake --unlock`, then the same command:
    only the jobs the kill left unfinished run again (the default profile sets
    rerun-incomplete), and no file is left half-written."""
    _, url, md5 = served
    config = grid_config(url, md5, None, learning_rate=[0.01, 0.03, 0.1, 0.3], seed=[0, 1])
    config["train"]["epochs"] = 40
    config["train"]["bundle_size"] = 2  # 16 jobs, so that some finish before the kill
    (tmp_path / "overlay.yaml").write_text(json.dumps(config))
    # The README's command; the default profile is found beside the Snakefile.
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path)]
    cmd += ["--configfile", str(tmp_path / "overlay.yaml")]
    proc = subprocess.Popen(
        [*cmd, "--cores", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until some, not all, cells are done
        if len(list((tmp_path / "results/runs").glob("**/metrics.json"))) >= 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {
        p: p.stat().st_mtime_ns for p in (tmp_path / "results/runs").glob("**/metrics.json")
    }
    assert 8 <= len(done_before) < 32

    # The killed run's lock stays (Snakemake cannot know it is dead): --unlock removes it.
    unlock = subprocess.run([*cmd, "--unlock"], capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    run = subprocess.run([*cmd, "--cores", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    cells = list((tmp_path / "results/runs").glob("**/metrics.json"))
    assert len(cells) == 32
    # Finished jobs are not redone. The (at most 2, --cores 2) jobs running at the kill are,
    # even those that had written their cells: Snakemake had not seen them end.
    redone = [p for p, mtime in done_before.items() if p.stat().st_mtime_ns != mtime]
    assert len(redone) <= 2 * config["train"]["bundle_size"], redone
    for path in cells:  # and nothing is corrupt
        json.loads(path.read_text())
        np.load(path.parent / "weights.npz")["W"]
    assert not list((tmp_path / "results").glob("**/.*.tmp*"))
    shutil.rmtree(tmp_path / "results")
