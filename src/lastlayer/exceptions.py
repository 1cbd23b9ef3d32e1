"""Warnings of lastlayer, in one place so that users can filter them.

Every warning lastlayer emits is a :class:`LastLayerWarning` (a ``UserWarning``);
the subclasses say what happened. Errors are plain ``ValueError`` (bad values),
``FileNotFoundError`` / ``OSError`` (files) and ``ImportError`` (missing extras),
with messages that name the parameter or file, what was expected and what was
received. Filter a warning as usual::

    import warnings
    from lastlayer.exceptions import UnseenLabelWarning
    warnings.filterwarnings("ignore", category=UnseenLabelWarning)

or from the shell: ``PYTHONWARNINGS="ignore::UserWarning"``.
"""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "LastLayerWarning",
    "SmallClassWarning",
    "UnseenLabelWarning",
    "ZeroTargetWarning",
    "FeatureOutlierWarning",
    "NotConvergedWarning",
]


class LastLayerWarning(UserWarning):
    """Base class of every warning lastlayer emits."""


class SmallClassWarning(LastLayerWarning):
    """A class (or group) has a single training row. Fitting goes on only where no
    leave-one-out or data-driven weight is involved (a fixed ``alpha`` and a
    weighting that does not read leverages); otherwise fitting raises ValueError."""


class UnseenLabelWarning(LastLayerWarning):
    """Evaluation labels that the layer never saw in training: it cannot predict
    them, so their accuracy is 0 by construction."""


class ZeroTargetWarning(LastLayerWarning):
    """A class (or group) has target share 0: its rows get loss weight 0 and do not
    influence the layer."""


class FeatureOutlierWarning(LastLayerWarning):
    """One feature cell lies far outside the rest of its column (more than
    ``OUTLIER_Z`` standard deviations of the other rows). ``alpha="auto"``
    (leave-one-out or GCV) and the data-driven weights can be dominated by that one
    row; a fixed ``alpha`` or clipped / robustly scaled features avoid it."""


class NotConvergedWarning(LastLayerWarning, ConvergenceWarning):
    """An iterative step stopped short: a cross-entropy fit of the layer (L-BFGS ran
    out of iterations, or ``alpha = 0`` on linearly separable rows, where there is no
    minimiser: the coefficients grow without bound), or the fixed point of the
    ``optimal`` weights with more than two units. The layer is still returned. Also a
    scikit-learn ``ConvergenceWarning``."""
