"""Effective-dimension estimators for the closed-form weights (docs/theory.md sections 0 and 6).

The closed forms of :mod:`lastlayer.theory` take a dimension ``d`` (or degrees of
freedom ``df``). Real penultimate features are far from isotropic, so the number that
belongs there is an *effective* dimension. Three estimators, one registry:

- ``"pca99"``: number of principal components holding 99% of the variance (the
  heuristic used in "Thumb on the Scale");
- ``"participation_ratio"``: ``(tr Sigma)^2 / tr(Sigma^2)`` of the sample covariance;
- ``"df"``: trace of the hat matrix of the fitted ridge (exact for ridge, ``d + 1``
  for a full-rank ridgeless fit), supplied by the caller from the solver.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_real

__all__ = [
    "DIMENSIONS",
    "SPECTRAL_DIMENSIONS",
    "effective_dimension",
    "participation_ratio",
    "participation_ratio_from_spectrum",
    "pca_dimension",
    "pca_dimension_from_spectrum",
]


def _centred_spectrum(X, within_class=None):
    X = np.asarray(X, dtype=float)
    if within_class is not None:
        y = np.asarray(within_class)
        Xc = X.copy()
        for c in np.unique(y):
            m = y == c
            Xc[m] -= X[m].mean(axis=0)
    else:
        Xc = X - X.mean(axis=0)
    # Singular values of the centred data: eigenvalues of the covariance up to 1/n.
    s = np.linalg.svd(Xc, compute_uv=False)
    return s**2


def pca_dimension(X, variance=0.99, *, y=None):
    """Number of principal components holding ``variance`` of the feature variance.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    variance : float in (0, 1], default=0.99
    y : array-like of shape (n_samples,), optional
        If given, centre each class on its own mean (within-class covariance, the
        noise covariance of docs/theory.md section 6) instead of on the overall mean.

    Returns
    -------
    int, between 1 and ``min(n_samples, n_features)``; 0 for constant features.
    """
    return pca_dimension_from_spectrum(_centred_spectrum(X, y), variance)


def pca_dimension_from_spectrum(eigenvalues, variance=0.99):
    """:func:`pca_dimension` from covariance eigenvalues (any common scale)."""
    v = check_real(variance, "variance", 0.0, 1.0, closed="right")
    ev = np.sort(np.clip(np.asarray(eigenvalues, dtype=float), 0.0, None))[::-1]
    total = ev.sum()
    if total <= 0:
        return 0
    frac = np.cumsum(ev) / total
    return int(min(np.searchsorted(frac, v - 1e-12) + 1, ev.size))


def participation_ratio(X, *, y=None):
    """Participation ratio ``(tr Sigma)^2 / tr(Sigma^2)`` of the (centred) features.

    Equals ``r`` for ``r`` equal-variance directions; a real number in
    ``[1, rank]`` (0 for constant features).
    """
    return participation_ratio_from_spectrum(_centred_spectrum(X, y))


def participation_ratio_from_spectrum(eigenvalues):
    """:func:`participation_ratio` from covariance eigenvalues."""
    ev = np.clip(np.asarray(eigenvalues, dtype=float), 0.0, None)
    s2 = float(np.sum(ev**2))
    return 0.0 if s2 == 0 else float(ev.sum() ** 2 / s2)


DIMENSIONS = {
    "pca99": pca_dimension,
    "participation_ratio": participation_ratio,
}

#: The same estimators from covariance eigenvalues (e.g. from sufficient statistics).
SPECTRAL_DIMENSIONS = {
    "pca99": pca_dimension_from_spectrum,
    "participation_ratio": participation_ratio_from_spectrum,
}


def effective_dimension(X, method="pca99", **kwargs):
    """Dispatch to an estimator in :data:`DIMENSIONS` by name."""
    if method not in DIMENSIONS:
        raise ValueError(
            f"The 'method' parameter must be one of {sorted(DIMENSIONS)}. Got {method!r} instead."
        )
    return DIMENSIONS[method](X, **kwargs)
