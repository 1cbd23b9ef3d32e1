"""lastlayer: last-layer retraining with loss weights that are right the first time.

The functional core lives in :mod:`lastlayer.theory`, :mod:`lastlayer.weights`,
:mod:`lastlayer.dimension`, :mod:`lastlayer.solvers` and :mod:`lastlayer.metrics`;
:class:`LastLayerClassifier` and the ``lastlayer`` command are thin layers over it.
Optional extras: :mod:`lastlayer.torch` (``lastlayer[torch]``),
:mod:`lastlayer.plots` (``lastlayer[plots]``), dask input (``lastlayer[dask]``).
"""

from importlib.metadata import PackageNotFoundError, version

from .estimator import LastLayerClassifier
from .exceptions import (
    FeatureOutlierWarning,
    LastLayerWarning,
    NotConvergedWarning,
    SmallClassWarning,
    UnseenLabelWarning,
    ZeroTargetWarning,
)
from .theory import binary_errors, optimal_class_weights
from .weights import WEIGHTINGS

try:
    __version__ = version("lastlayer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["FeatureOutlierWarning", "LastLayerClassifier", "LastLayerWarning",
           "NotConvergedWarning", "SmallClassWarning", "UnseenLabelWarning", "WEIGHTINGS",
           "ZeroTargetWarning", "__version__", "binary_errors", "optimal_class_weights"]
