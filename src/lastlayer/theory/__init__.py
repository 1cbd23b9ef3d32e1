"""Asymptotic theory of weighted last-layer retraining and its Monte Carlo check.

See ``docs/theory.md`` (sections 0-8: the model and its closed forms; 9-14: theory against simulation, cross-entropy).
"""

from ._binary import BinaryPrediction, binary_errors, symmetric_means, weights_from_ratio
from ._fixed_point import average_leverage, effective_weights, solve_k
from ._logistic import (
    LogisticWeights,
    MarginLossPrediction,
    SeparableDataError,
    equalizing_ratio,
    estimate_mean_norm,
    logistic_class_weights,
    logistic_errors,
    margin_loss_errors,
    optimal_ratio,
    separability_threshold,
    simulate_logistic,
    sklearn_C,
    theory_summary,
    weights_summary,
)
from ._optimal import (
    OptimalWeights,
    downsample_errors,
    numerical_optimal_ratio,
    optimal_class_weights,
    optimal_weight_ratio,
    water_fill_leverage,
)
from ._simulate import (
    SimulationResult,
    fit_weighted_ridge_reference,
    simulate_binary,
    simulate_multiclass,
)

__all__ = [
    "BinaryPrediction",
    "LogisticWeights",
    "MarginLossPrediction",
    "SeparableDataError",
    "equalizing_ratio",
    "estimate_mean_norm",
    "logistic_class_weights",
    "logistic_errors",
    "margin_loss_errors",
    "optimal_ratio",
    "separability_threshold",
    "simulate_logistic",
    "sklearn_C",
    "OptimalWeights",
    "SimulationResult",
    "average_leverage",
    "binary_errors",
    "downsample_errors",
    "effective_weights",
    "fit_weighted_ridge_reference",
    "numerical_optimal_ratio",
    "optimal_class_weights",
    "optimal_weight_ratio",
    "simulate_binary",
    "simulate_multiclass",
    "solve_k",
    "symmetric_means",
    "water_fill_leverage",
    "theory_summary",
    "weights_from_ratio",
    "weights_summary",
]
