"""Effective-dimension estimators against hand-made spectra."""

import numpy as np
import pytest

from lastlayer.dimension import (effective_dimension, participation_ratio,
                                 participation_ratio_from_spectrum, pca_dimension,
                                 pca_dimension_from_spectrum)


def test_pca_dimension_counts_dominant_directions():
    rng = np.random.default_rng(0)
    scales = np.r_[np.full(6, 10.0), np.full(34, 1e-3)]
    X = rng.standard_normal((500, 40)) * scales
    assert pca_dimension(X, 0.99) == 6
    assert pca_dimension(X, 1.0) == 40


def test_pca_dimension_from_spectrum_exact():
    ev = np.array([5.0, 3.0, 1.5, 0.5])  # cumulative 0.5, 0.8, 0.95, 1.0
    assert pca_dimension_from_spectrum(ev, 0.8) == 2
    assert pca_dimension_from_spectrum(ev, 0.81) == 3
    assert pca_dimension_from_spectrum(ev, 0.95) == 3
    assert pca_dimension_from_spectrum(np.zeros(3)) == 0


def test_participation_ratio_equal_variances():
    assert np.isclose(participation_ratio_from_spectrum(np.ones(7)), 7.0)
    assert np.isclose(participation_ratio_from_spectrum([1.0, 0, 0]), 1.0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20000, 5))
    assert abs(participation_ratio(X) - 5.0) < 0.05


def test_within_class_centering_removes_mean_directions():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 200)
    X = 0.01 * rng.standard_normal((400, 10))
    X[:, 0] += 50.0 * y  # one direction carried only by the class means
    assert pca_dimension(X, 0.99) == 1
    assert pca_dimension(X, 0.99, y=y) > 1


def test_dispatch_and_errors():
    X = np.random.default_rng(3).standard_normal((50, 4))
    assert effective_dimension(X, "pca99") == pca_dimension(X)
    with pytest.raises(ValueError, match="'method' parameter"):
        effective_dimension(X, "nope")
    with pytest.raises(ValueError, match="'variance' parameter"):
        pca_dimension(X, 1.5)
