"""linbench: linear classifiers on CIFAR-10 features, in numpy.

Three layers, imports pointing down only:

- `names`: every name and default (standard library only);
- the numpy core (`losses`, `regularizers`, `train`, `data`, `features`): numpy and
  scikit-image, no pandas, no plotting, so a student can read and reuse it alone;
- pipeline and reports: `grid` and `cell` (config -> cells, run a cell), `report`
  (runs.csv, history.csv, settings and choosing), `stats` (intervals and paired tests),
  `compare` (each regularizer against none), `summary` (summary.md), `plots` (the figures,
  one module per what they show) and `templates` (learned-template figures), `sanity`.
"""

__version__ = "0.1.0"

# Re-exported: `data` imports it from the package.
from .names import CLASS_NAMES

__all__ = ["CLASS_NAMES", "__version__"]
