"""The package's imports point down its layers and never go round in a circle.

The layers are the README's code map ("The code") and /work/shared/DESIGN.md: names ->
numpy core -> pipeline and reports. A module may import its own layer and the layers
below; the numpy core and the names import no pandas, plotting or Snakemake, so a student
can read them alone and a training job starts fast. Every import counts, also one inside a
function or under ``TYPE_CHECKING``: a lazy import still makes a circle.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workflow" / "linbench"

# The one place the layers are written down for the code (the README's code map says the
# same in words; test_readme_code_map_lists_the_same_layers keeps the two together).
# Sub-packages are named by their folder: every module inside is in that layer.
LAYERS: dict[str, tuple[str, ...]] = {
    "names": ("names",),
    "numpy core": (
        "losses",
        "regularizers",
        "train",
        "bundle",
        "outcome",
        "subsets",
        "hog",
        "color",
        "kmeans",
        "features",
        "standardize",
        "data",
        "io",
        "errors",
        "noise",
    ),
    "pipeline and reports": (
        "config",
        "grid",
        "cell",
        "report",
        "stats",
        "compare",
        "summary",
        "aggregate",
        "plots",
        "templates",
        "sanity",
        "text",
        "scripting",
        "critical",
        "optimizer",
    ),
}
# Third-party packages each layer may import (the standard library is always allowed).
ALLOWED_EXTERNAL: dict[str, frozenset[str]] = {
    "names": frozenset(),
    "numpy core": frozenset({"numpy", "skimage", "pooch"}),
    "pipeline and reports": frozenset(
        {
            "numpy",
            "pandas",
            "matplotlib",
            "PIL",
            "seaborn",
            "skimage",
            "scipy",
            "yaml",
            "jsonschema",
        }
    ),
}
LAYER_ORDER = list(LAYERS)


def module_name(path: Path, package: Path) -> str:
    """``plots/style.py`` -> ``plots.style``; ``plots/__init__.py`` -> ``plots``."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: Path, top: str) -> tuple[set[str], set[str]]:
    """The package modules and the external top-level packages `path` imports.

    A name imported from a package module (``from . import train``, ``from .. import x``)
    counts as that module when such a file exists, else as the package itself.
    """
    me = module_name(path, package)
    # The package a relative import starts from: a module's own folder.
    here = me.split(".")[:-1] if path.name != "__init__.py" else me.split(".") if me else []
    internal: set[str] = set()
    external: set[str] = set()
    known = {module_name(p, package) for p in package.rglob("*.py")}

    def add_internal(parts: list[str], names: list[str]) -> None:
        base = ".".join(parts)
        for name in names:
            candidate = f"{base}.{name}" if base else name
            internal.add(candidate if candidate in known else base)

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                first, *rest = alias.name.split(".")
                if first == top:
                    internal.add(".".join(rest))
                else:
                    external.add(first)
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                parts = here[: len(here) - (node.level - 1)] if node.level > 1 else list(here)
                if node.module:
                    parts = [*parts, *node.module.split(".")]
                add_internal(parts, names)
            elif node.module is not None:
                first, *rest = node.module.split(".")
                if first == top:
                    add_internal(rest, names)
                elif first != "__future__":
                    external.add(first)
    internal.discard(me)
    internal.discard("")  # `from linbench import x` where x is not a module: the package root
    return internal, external


def import_graph(package: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Module -> package modules it imports, and module -> external packages it imports."""
    graph: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        if not name:
            continue  # the package's __init__ re-exports names; it is nobody's dependency
        graph[name], external[name] = imports_of(path, package, package.name)
    return graph, external


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer_of(module: str, layers: dict[str, tuple[str, ...]]) -> str | None:
    """The layer of `module` (``plots.style`` is in the layer of ``plots``)."""
    for layer, members in layers.items():
        if module in members or module.split(".")[0] in members:
            return layer
    return None


def layer_violations(
    graph: dict[str, set[str]],
    external: dict[str, set[str]],
    layers: dict[str, tuple[str, ...]] = LAYERS,
    allowed: dict[str, frozenset[str]] = ALLOWED_EXTERNAL,
) -> list[str]:
    """Every import that points up a layer or reaches a third-party package its layer may
    not use, and every module no layer lists, one readable line each."""
    order = list(layers)
    problems = []
    for module in sorted(graph):
        mine = layer_of(module, layers)
        if mine is None:
            problems.append(f"{module}: in no layer; add it to LAYERS and the README's code map")
            continue
        for target in sorted(graph[module]):
            theirs = layer_of(target, layers)
            if theirs is not None and order.index(theirs) > order.index(mine):
                problems.append(f"{module} ({mine}) imports {target} ({theirs}): points up")
        stdlib = sys.stdlib_module_names
        for name in sorted(external[module] - stdlib - allowed[mine]):
            problems.append(f"{module} ({mine}) imports {name}, not allowed in its layer")
    return problems


# ------------------------------------------------------------------------ the package


def test_the_package_has_no_import_circle():
    graph, _ = import_graph(PACKAGE)
    assert "report" in graph and "summary" in graph["aggregate"]  # the walk sees the package
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_import_points_down_a_layer():
    graph, external = import_graph(PACKAGE)
    assert layer_violations(graph, external) == []


def test_readme_code_map_lists_the_same_layers():
    """The README's code map names every module in the layer LAYERS gives it."""
    readme = (ROOT / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in LAYERS:
            rows[cells[0]] = set(re.findall(r"`([a-z_]+)(?:\.\*)?`", cells[1]))
    assert rows.keys() == LAYERS.keys(), "the README's code map table lost a layer"
    for layer, members in LAYERS.items():
        assert rows[layer] == set(members), f"README code map, layer {layer!r}"


# ---------------------------------------------------------- the checks, broken on purpose


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "linbench"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_lazy_import_circle_is_found(tmp_path):
    package = write_package(
        tmp_path,
        {
            "report.py": "def f():\n    from .summary import summarize\n",
            "summary.py": "from .compare import x\n",
            "compare.py": "from linbench.report import choose\n",
        },
    )
    graph, _ = import_graph(package)
    assert find_cycle(graph) == ["compare", "report", "summary", "compare"]


def test_sub_package_and_relative_imports_resolve(tmp_path):
    package = write_package(
        tmp_path,
        {
            "names.py": "",
            "plots/__init__.py": "from .style import save\n",
            "plots/style.py": "from ..names import X\nfrom .. import names\n",
            "sanity/run.py": "from .. import train as training\nimport linbench.plots.style\n",
            "train.py": "",
        },
    )
    graph, _ = import_graph(package)
    assert graph["plots"] == {"plots.style"}
    assert graph["plots.style"] == {"names"}
    assert graph["sanity.run"] == {"train", "plots.style"}
    assert find_cycle(graph) is None


def test_an_upward_import_and_a_plotting_import_in_the_core_are_refused(tmp_path):
    package = write_package(
        tmp_path,
        {
            "names.py": "import numpy\n",
            "losses.py": "import pandas as pd\nfrom .report import choose\n",
            "report.py": "import pandas\nfrom .losses import svm_loss\n",
            "newcomer.py": "",
        },
    )
    graph, external = import_graph(package)
    layers = {"names": ("names",), "numpy core": ("losses",), "pipeline and reports": ("report",)}
    assert layer_violations(graph, external, layers) == [
        "losses (numpy core) imports report (pipeline and reports): points up",
        "losses (numpy core) imports pandas, not allowed in its layer",
        "names (names) imports numpy, not allowed in its layer",
        "newcomer: in no layer; add it to LAYERS and the README's code map",
    ]
    assert find_cycle(graph) == ["losses", "report", "losses"]


@pytest.mark.parametrize("module", ["report", "summary", "compare"])
def test_the_report_modules_import_alone(module):
    """Each of the three that once imported each other loads in a fresh interpreter."""
    import subprocess

    code = f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r}); import linbench.{module}"
    subprocess.run([sys.executable, "-c", code], check=True)
