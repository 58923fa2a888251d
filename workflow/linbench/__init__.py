"""linbench: linear classifiers on CIFAR-10 HOG features, in numpy.

The numpy core (`losses`, `regularizers`, `train`) imports nothing but numpy, so a
student can read and reuse it alone; `data`, `features` and `report` hold the I/O,
feature extraction and plotting around it.
"""

__version__ = "0.1.0"

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
