"""Asymptotic per-class errors of weighted margin-loss classifiers (cross-entropy).

Model (as for the square loss, theory.md sections 1 and 3): ``x | y = c ~ N(mu_c, I_d)``
with labels ``y = +1`` (positive, usually the minority, prior ``pi_+``) and
``y = -1``; ``n_c = pi_c n`` and ``d / n -> delta``. The fitted layer minimises

    (1/n) sum_i omega_{y_i} l(y_i (w^T x_i + b)) + lambda ||w||^2

with an unpenalised intercept ``b`` and a convex margin loss ``l``:
``l(t) = log(1 + exp(-t))`` (binary cross-entropy, "logistic") or
``l(t) = (1 - t)^2`` (the square loss with targets +1/-1, for which
:func:`lastlayer.theory.binary_errors` is the closed form).

The scalar fixed point (convex Gaussian min-max theorem; Thrampoulidis et al.,
Deng-Kammoun-Thrampoulidis 2019, Kini et al. 2021, Stromberg-Thrampoulidis-Sankar
2025 Theorem 1 for a general convex loss). With ``Delta = mu_+ - mu_-``,
``D = ||Delta||^2`` and ``m_c = mu_c^T Delta`` the in-span weights are
``w_par = alpha Delta`` and the noise component has norm ``sigma``; the margin of a
class-c training point behaves like ``P_c = a_c + r G`` with ``G ~ N(0, 1)``,

    a_+ = alpha m_+ + b,   a_- = -(alpha m_- + b),   r^2 = alpha^2 D + sigma^2.

Let ``x_c = prox_{gamma omega_c l}(P_c)`` (the proximal point of the scaled loss) and
``phi_c = omega_c l'(x_c) = (P_c - x_c) / gamma``. The four unknowns
``(alpha, b, sigma, gamma)`` solve

    (E1)  gamma^2 sum_c pi_c E[phi_c^2]                       = delta sigma^2
    (E2)  pi_+ E[phi_+]                                        = pi_- E[phi_-]
    (E3)  gamma sum_c pi_c E[omega_c l''(x_c) / (1 + gamma omega_c l''(x_c))]
              + 2 lambda gamma                                 = delta
    (E4)  alpha                                                = -gamma pi_+ E[phi_+] / delta

(stationarity of the scalar min-max in tau, b, sigma and w_par; E3 uses Stein's lemma).
The per-class test errors are ``e_c = Q(a_c / r)``. For the square loss ``2 gamma`` is
the ``k`` of theory.md section 2 and E1-E4 are the closed form of section 3.

Expectations over ``G`` use Gauss-Hermite quadrature; the proximal points use a
safeguarded (bracketed) Newton iteration; the 4 x 4 system in
``(log alpha, b, log sigma, log gamma)`` is solved by a damped Newton method (central-
difference Jacobian, backtracking on the residual norm) started from the square-loss
closed form, then Powell's hybrid method, then a continuation in ``delta``. A failure
is reported (``RuntimeError``), never hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq, minimize_scalar, root
from scipy.special import expit, ndtr
from scipy.stats import norm

from .._validation import check_int, check_real
from ._binary import binary_errors, check_means, weights_from_ratio

__all__ = [
    "LogisticWeights",
    "MarginLossPrediction",
    "SeparableDataError",
    "ThresholdResult",
    "equalizing_ratio",
    "estimate_mean_norm",
    "logistic_class_weights",
    "logistic_errors",
    "margin_loss_errors",
    "optimal_ratio",
    "separability_threshold",
    "simulate_logistic",
    "sklearn_C",
    "theory_summary",
    "weights_summary",
]

LOSSES = ("logistic", "square")
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class SeparableDataError(ValueError):
    """The ridgeless logistic minimiser does not exist: the data are separable."""


# ----------------------------------------------------------------- quadrature
@lru_cache(maxsize=8)
def gauss_hermite(n_nodes):
    """Nodes and weights with ``sum_j w_j f(z_j) ~ E f(G)``, ``G ~ N(0, 1)``."""
    z, w = np.polynomial.hermite_e.hermegauss(int(n_nodes))
    return z, w / math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------- losses
def loss_value(loss, t):
    """The margin loss ``l(t)``."""
    t = np.asarray(t, dtype=float)
    if loss == "logistic":
        return np.logaddexp(0.0, -t)
    return (1.0 - t) ** 2


def loss_derivatives(loss, t):
    """``(l'(t), l''(t))``."""
    t = np.asarray(t, dtype=float)
    if loss == "logistic":
        s = expit(-t)
        return -s, s * (1.0 - s)
    return -2.0 * (1.0 - t), np.full_like(t, 2.0)


def prox(loss, p, c, *, tol=1e-13, max_iter=100):
    """Proximal point ``argmin_x c l(x) + (x - p)^2 / 2`` (elementwise, ``c > 0``).

    Square loss: closed form ``(p + 2c) / (1 + 2c)``. Logistic loss: the root of
    ``h(x) = x - p - c sigmoid(-x)``, which is increasing (``h' = 1 + c l''(x) >= 1``),
    convex for ``x < 0`` and concave for ``x > 0`` (``l''`` is even and decreasing in
    ``|x|``). Newton started at ``x = 0`` therefore moves monotonically to the root: from
    the right on the convex side when the root is ``<= 0`` (``h(0) = -p - c/2 >= 0``), from
    the left on the concave side otherwise. It cannot overshoot or cycle. It stops when
    ``|h| <= tol (1 + |p| + c)`` (the size of the terms of ``h``) or a step no longer
    moves ``x`` by more than a few rounding units.

    Raises
    ------
    RuntimeError
        If the iteration has not met the tolerance after ``max_iter`` steps.
    """
    p = np.asarray(p, dtype=float)
    c = np.broadcast_to(np.asarray(c, dtype=float), p.shape)
    if loss == "square":
        return (p + 2.0 * c) / (1.0 + 2.0 * c)
    x = np.zeros_like(p)
    scale = 1.0 + np.abs(p) + c
    for _ in range(max_iter):
        s = expit(-x)
        h = x - p - c * s
        step = h / (1.0 + c * s * (1.0 - s))
        x = x - step
        if np.all((np.abs(h) <= tol * scale) | (np.abs(step) <= 1e-15 * (1.0 + np.abs(x)))):
            # one more (quadratically convergent) step polishes x to rounding level, so
            # that the moments are smooth enough for finite-difference Jacobians
            s = expit(-x)
            return x - (x - p - c * s) / (1.0 + c * s * (1.0 - s))
    raise RuntimeError("The logistic proximal Newton iteration did not converge.")


# ----------------------------------------------------------------- results
@dataclass(frozen=True)
class MarginLossPrediction:
    """Theory's prediction for a weighted margin-loss classifier on two Gaussian classes.

    Attributes
    ----------
    error_pos, error_neg : float
        Test error of the positive and negative class (``nan`` when separable).
    worst_class_error, balanced_error : float
        ``max`` and mean of the two.
    loss : str
        ``"logistic"`` or ``"square"``.
    alpha : float
        Scale of the in-span weights ``w_par = alpha (mu_+ - mu_-)``.
    intercept : float
        Asymptotic intercept ``b``.
    sigma : float
        Norm of the noise component of ``w`` (orthogonal to the means).
    norm : float
        ``r = ||w|| = sqrt(alpha^2 D + sigma^2)``.
    gamma : float
        Proximal parameter of the fixed point (``k / 2`` of theory.md section 2 for
        the square loss).
    margins : ndarray of shape (2,)
        ``(a_+, a_-)``, the mean test margin of each class; ``e_c = Q(a_c / r)``.
    separability_threshold : float
        ``delta*`` (:func:`separability_threshold`) for these priors and means.
    separable : bool
        True when ``ridge == 0`` and ``delta >= delta*``: no minimiser exists (its norm
        diverges, its direction tends to the max-margin classifier, which does not
        depend on the weights); errors are ``nan`` then.
    residual : float
        Largest absolute residual of the scaled equations E1-E4 at the returned point.
    n_nodes : int
        Gauss-Hermite nodes used.
    """

    error_pos: float
    error_neg: float
    worst_class_error: float
    balanced_error: float
    loss: str
    alpha: float
    intercept: float
    sigma: float
    norm: float
    gamma: float
    margins: np.ndarray = field(repr=False)
    separability_threshold: float
    separable: bool
    residual: float
    n_nodes: int

    def as_dict(self):
        """JSON-ready dict of every field (``nan`` becomes ``None``)."""
        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                out[key] = [None if not np.isfinite(v) else float(v) for v in value]
            elif isinstance(value, (bool, str, int)) and not isinstance(value, float):
                out[key] = value
            else:
                out[key] = None if not math.isfinite(value) else float(value)
        return out

    def _start(self):
        return np.array([math.log(self.alpha), self.intercept, math.log(self.sigma),
                         math.log(self.gamma)])


@dataclass(frozen=True)
class ThresholdResult:
    """Result of :func:`separability_threshold` with ``details=True``.

    ``cosine`` is the cosine between the max-margin direction at the threshold and
    ``Delta`` and ``intercept`` its intercept (for ``||w|| = 1``).
    """

    threshold: float
    cosine: float
    intercept: float


# ----------------------------------------------------------------- inputs



def _weights(pi_pos, weights, weight_ratio):
    if weights is not None and weight_ratio is not None:
        raise ValueError("Pass either 'weights' or 'weight_ratio', not both.")
    if weights is None:
        rho = 1.0 if weight_ratio is None else check_real(
            weight_ratio, "weight_ratio", 0.0, None, closed="neither")
        return weights_from_ratio(pi_pos, rho)
    omega = np.asarray(weights, dtype=float).ravel()
    if omega.shape != (2,) or not np.all(np.isfinite(omega)) or np.any(omega <= 0):
        raise ValueError(
            "The 'weights' parameter must be two positive finite floats "
            f"(omega_pos, omega_neg). Got {np.asarray(weights).tolist()!r} instead.")
    return omega


# ----------------------------------------------------------------- separability
def _sq_hinge_moment(t):
    """``f(t) = E[(t - G)_+^2] = (1 + t^2) Phi(t) + t phi(t)``."""
    return (1.0 + t * t) * ndtr(t) + t * math.exp(-0.5 * t * t) / _SQRT_2PI


def separability_threshold(minority_prior, *, mean_norm=None, mean_pos=None, mean_neg=None,
                           details=False):
    """Ratio ``delta* = d / n`` above which the two Gaussian classes are separable.

    By Gordon's comparison (as in Candes-Sur 2020 and Deng-Kammoun-Thrampoulidis 2019,
    here with an intercept and two possibly asymmetric means), the training set is
    linearly separable with high probability iff ``delta > delta*`` with

        delta* = min_{0 <= c < 1, b}  [ pi_+ f(-(c m_+ / sqrt(D) + b))
                                        + pi_- f(c m_- / sqrt(D) + b) ] / (1 - c^2),

    ``f(t) = E[(t - G)_+^2]``, ``m_c = mu_c^T Delta``, ``D = ||Delta||^2`` (``c`` is the
    cosine between ``w`` and ``Delta``). The loss weights play no part: separability is
    a property of the sample. ``delta* <= 1/2`` (Cover's bound, reached for ``mu = 0``
    and balanced priors) and it decreases with the mean separation and the imbalance.
    For ``ridge = 0`` the weighted logistic minimiser exists iff ``delta < delta*``.

    The objective is a ratio of a convex function and a positive concave one, hence
    quasi-convex; it is minimised by nested bounded Brent searches (``b`` inside ``c``).

    Returns
    -------
    float, or :class:`ThresholdResult` when ``details=True``.
    """
    pi_pos = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    mu_p, mu_n = check_means(mean_pos, mean_neg, mean_norm)
    dvec = mu_p - mu_n
    D = float(dvec @ dvec)
    sD = math.sqrt(D)
    mp = float(mu_p @ dvec) / sD if D > 0 else 0.0
    mn = float(mu_n @ dvec) / sD if D > 0 else 0.0
    res = _threshold(pi_pos, mp, mn)
    return res if details else res.threshold


@lru_cache(maxsize=256)
def _threshold(pi_pos, mp, mn):
    pi_neg = 1.0 - pi_pos

    def numerator(c, b):
        return pi_pos * _sq_hinge_moment(-(c * mp + b)) + pi_neg * _sq_hinge_moment(c * mn + b)

    def best_b(c):
        # convex in b; the minimiser lies where the two (monotone) terms balance
        res = minimize_scalar(lambda b: numerator(c, b), bracket=(-1.0, 1.0),
                              method="brent", options={"xtol": 1e-12})
        return res.x, res.fun

    def ratio(c):
        return best_b(c)[1] / (1.0 - c * c)

    if mp == mn:
        c = 0.0
    else:
        res = minimize_scalar(ratio, bounds=(0.0, 1.0 - 1e-9), method="bounded",
                              options={"xatol": 1e-11})
        c = float(res.x) if res.fun <= ratio(0.0) else 0.0
    b, val = best_b(c)
    return ThresholdResult(float(val / (1.0 - c * c)), float(c), float(b))


# ----------------------------------------------------------------- fixed point
class _System:
    """The scaled equations E1-E4 in ``theta = (log alpha, b, log sigma, log gamma)``."""

    def __init__(self, loss, pi, omega, delta, lam, mu_p, mu_n, n_nodes):
        self.loss = loss
        self.pi = pi
        self.omega = omega
        self.delta = delta
        self.lam = lam
        dvec = mu_p - mu_n
        self.D = float(dvec @ dvec)
        self.m = np.array([float(mu_p @ dvec), float(mu_n @ dvec)])
        self.z, self.wq = gauss_hermite(n_nodes)

    def unpack(self, theta):
        la, b, ls, lg = (float(v) for v in theta)
        return math.exp(la), b, math.exp(ls), math.exp(lg)

    def margins(self, alpha, b):
        return np.array([alpha * self.m[0] + b, -(alpha * self.m[1] + b)])

    def moments(self, theta):
        alpha, b, sigma, gamma = self.unpack(theta)
        a = self.margins(alpha, b)
        r = math.sqrt(alpha * alpha * self.D + sigma * sigma)
        P = a[:, None] + r * self.z[None, :]          # (2, nodes)
        c = gamma * self.omega[:, None]
        x = prox(self.loss, P, c)
        phi = (P - x) / gamma
        _, d2 = loss_derivatives(self.loss, x)
        q = c * d2
        e_phi = (phi @ self.wq)
        e_phi2 = (phi * phi) @ self.wq
        e_curv = (self.omega[:, None] * d2 / (1.0 + q)) @ self.wq
        return alpha, b, sigma, gamma, a, r, e_phi, e_phi2, e_curv

    def residual(self, theta):
        try:
            alpha, b, sigma, gamma, a, r, e_phi, e_phi2, e_curv = self.moments(theta)
        except (OverflowError, RuntimeError, FloatingPointError, ValueError):
            return np.full(4, 1e6)
        la, ls = float(theta[0]), float(theta[2])
        pi = self.pi
        s1 = gamma * gamma * float(pi @ e_phi2)
        r1 = math.log(s1) - math.log(self.delta) - 2.0 * ls if s1 > 0 else 1e6
        scale = float(pi @ np.abs(e_phi)) + 1e-300
        r2 = (pi[0] * e_phi[0] - pi[1] * e_phi[1]) / scale
        s3 = gamma * float(pi @ e_curv) + 2.0 * self.lam * gamma
        r3 = math.log(s3) - math.log(self.delta)
        s4 = -gamma * pi[0] * e_phi[0] / self.delta
        r4 = math.log(s4) - la if s4 > 0 else 1e6 * (1.0 - s4)
        return np.array([r1, r2, r3, r4])


def _square_start(pi_pos, delta, omega, lam, mu_p, mu_n):
    """``theta`` of the square-loss closed form (the documented starting point)."""
    pred = binary_errors(pi_pos, delta, weights=omega, ridge=lam, mean_pos=mu_p, mean_neg=mu_n)
    alpha = max(pred.alpha, 1e-3)
    gamma = pred.k / 2.0 if math.isfinite(pred.k) else 1.0
    sigma = pred.sigma if math.isfinite(pred.sigma) and pred.sigma > 0 else 1.0
    return np.array([math.log(alpha), pred.intercept, math.log(sigma), math.log(gamma)])


def _jacobian(system, theta, h=1e-6):
    """Central-difference Jacobian of the residual (4 x 4)."""
    J = np.empty((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        J[:, j] = (system.residual(theta + e) - system.residual(theta - e)) / (2.0 * h)
    return J


def _damped_newton(system, theta, tol, max_iter=60, max_step=2.0):
    """Newton on E1-E4 with a central-difference Jacobian, steps capped at ``max_step``
    (a factor ``e^2`` in alpha, sigma, gamma) and halved until ``||R||`` decreases."""
    r = system.residual(theta)
    f = float(np.linalg.norm(r))
    for _ in range(max_iter):
        if np.max(np.abs(r)) <= tol:
            break
        J = _jacobian(system, theta)
        if not np.all(np.isfinite(J)):
            break
        try:
            step = np.linalg.solve(J, -r)
        except np.linalg.LinAlgError:
            try:
                step = np.linalg.lstsq(J, -r, rcond=None)[0]
            except np.linalg.LinAlgError:
                break
        big = float(np.max(np.abs(step)))
        if not np.isfinite(big):
            break
        if big > max_step:
            step *= max_step / big
        t = 1.0
        while t > 1e-8:
            trial = theta + t * step
            rt = system.residual(trial)
            ft = float(np.linalg.norm(rt))
            if ft < (1.0 - 1e-4 * t) * f:
                theta, r, f = trial, rt, ft
                break
            t *= 0.5
        else:
            break
    return theta, float(np.max(np.abs(r)))


def _solve(system, start, tol):
    """Damped Newton from ``start``, then Powell's hybrid method as a second try."""
    theta, res = _damped_newton(system, np.asarray(start, dtype=float), tol)
    if res <= tol:
        return theta, res, True
    sol = root(system.residual, start, method="hybr",
               options={"xtol": 1e-13, "maxfev": 4000, "factor": 0.1})
    res2 = float(np.max(np.abs(system.residual(sol.x))))
    if res2 < res:
        theta, res = sol.x, res2
    return theta, res, res <= tol


def margin_loss_errors(minority_prior, dim_ratio, weights=None, *, weight_ratio=None,
                       ridge=0.0, loss="logistic", mean_pos=None, mean_neg=None,
                       mean_norm=None, n_nodes=201, on_separable="raise", start=None,
                       tol=1e-9):
    """Predict the per-class test errors of a weighted margin-loss linear classifier.

    The classifier minimises ``(1/n) sum_i omega_{y_i} l(y_i (w^T x_i + b))
    + lambda ||w||^2`` (unpenalised intercept ``b``) with ``l(t) = log(1 + exp(-t))``
    (``loss="logistic"``, binary cross-entropy) or ``l(t) = (1 - t)^2``
    (``loss="square"``: the same fit as :func:`lastlayer.theory.binary_errors`, which
    is its closed form), in the limit ``n, d -> inf``, ``d / n -> delta``; see the
    module docstring for the fixed point E1-E4 that is solved.

    Parameters
    ----------
    minority_prior : float in (0, 1)
        Prior ``pi_+`` of the positive class.
    dim_ratio : float > 0
        ``delta = d / n``.
    weights : array-like of shape (2,), optional
        Loss weights ``(omega_+, omega_-)`` exactly as in the objective (their scale
        matters only when ``ridge > 0``).
    weight_ratio : float > 0, optional
        Alternative to ``weights``: ``rho = omega_+ / omega_-`` normalised by
        :func:`lastlayer.theory.weights_from_ratio` (mean weight one). Default 1.
    ridge : float >= 0, default=0
        ``lambda``.
    loss : {"logistic", "square"}, default="logistic"
    mean_pos, mean_neg : array-like, optional
        Class means (any common length, ``mean_pos != mean_neg``). Default: antipodal
        means of norm ``mean_norm`` (default 1).
    n_nodes : int in [8, 300], default=201
        Gauss-Hermite nodes for the expectations over ``G``. The integrands vary on a
        scale ``~ 1 / r`` in ``G``, and ``r = ||w||`` grows without bound as ``delta``
        approaches the separability threshold without ridge; 121 nodes leave relative
        errors near ``1e-4`` at ``0.9 delta*`` (enough to stall the solver), 201 do not.
    on_separable : {"raise", "flag"}, default="raise"
        Logistic loss, ``ridge == 0`` and ``delta >= delta*``
        (:func:`separability_threshold`): the data are separable, the minimiser does
        not exist (its norm diverges and its direction tends to the max-margin
        classifier, where the weights stop mattering). ``"raise"`` raises
        :class:`SeparableDataError`; ``"flag"`` returns a prediction with
        ``separable=True`` and ``nan`` errors.
    start : array-like of shape (4,), optional
        Starting ``(log alpha, b, log sigma, log gamma)``. Default: the square-loss
        closed form for the same problem (which is the exact answer for
        ``loss="square"``, so the solver is started away from it there: at
        ``alpha``, ``sigma``, ``gamma`` times 2 and ``b + 0.1``).
    tol : float, default=1e-9
        Largest accepted residual of the scaled equations.

    Returns
    -------
    MarginLossPrediction

    Raises
    ------
    SeparableDataError
        See ``on_separable``.
    RuntimeError
        When neither the direct solve nor the continuation in ``delta`` (12
        geometric steps from ``delta / 20``; without ridge 16 steps geometric in the
        distance ``delta* - delta`` to the separability threshold) reaches ``tol``.
        Without ridge this happens close to the threshold (in a sweep over
        pi_+ in {0.05, 0.1, 0.2, 0.3, 0.5}, ||mu|| in {0.5, 1, 1.5, 2.5}, rho in
        {0.1, 1, 7, 50, 1000} and delta / delta* in {0.1, 0.5, 0.9, 0.97}: 30 of 400
        failed, all at delta / delta* >= 0.9), where the norm of the minimiser diverges.
        With ridge no systematic sweep was completed; every ridge configuration of the
        tests and of benchmarks/theory_grid_logistic.py converged.
    """
    pi_pos = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    lam = check_real(ridge, "ridge", 0.0, None)
    if loss not in LOSSES:
        raise ValueError(f"The 'loss' parameter must be one of {LOSSES}. Got {loss!r}.")
    if on_separable not in ("raise", "flag"):
        raise ValueError(
            f"The 'on_separable' parameter must be 'raise' or 'flag'. Got {on_separable!r}.")
    n_nodes = check_int(n_nodes, "n_nodes", 8, 300)
    omega = _weights(pi_pos, weights, weight_ratio)
    mu_p, mu_n = check_means(mean_pos, mean_neg, mean_norm)
    dvec = mu_p - mu_n
    if float(dvec @ dvec) == 0.0:
        raise ValueError("The class means coincide: every classifier has error 1/2 "
                         "on one class at least; the fixed point is degenerate.")
    pi = np.array([pi_pos, 1.0 - pi_pos])
    thr = separability_threshold(pi_pos, mean_pos=mu_p, mean_neg=mu_n)
    nan = float("nan")
    if loss == "logistic" and lam == 0.0 and delta >= thr:
        if on_separable == "raise":
            raise SeparableDataError(
                f"d/n = {delta:g} is at or above the separability threshold {thr:.4g} for "
                f"pi_+ = {pi_pos:g} and these means: without ridge the weighted logistic "
                "minimiser does not exist (||w|| diverges; gradient descent tends to the "
                "max-margin direction, which does not depend on the weights). Use ridge > 0.")
        return MarginLossPrediction(nan, nan, nan, nan, loss, math.inf, nan, math.inf, math.inf,
                                    math.inf, np.array([nan, nan]), thr, True, nan, n_nodes)
    if loss == "square" and lam == 0.0 and delta >= 1.0:
        raise ValueError("The square-loss fixed point needs ridge > 0 when d/n >= 1; "
                         "use lastlayer.theory.binary_errors for the interpolation limit.")

    system = _System(loss, pi, omega, delta, lam, mu_p, mu_n, n_nodes)
    if start is None:
        theta0 = _square_start(pi_pos, delta, omega, lam, mu_p, mu_n)
        if loss == "square":
            theta0 = theta0 + np.array([math.log(2.0), 0.1, math.log(2.0), math.log(2.0)])
    else:
        theta0 = np.asarray(start, dtype=float).ravel()
        if theta0.shape != (4,) or not np.all(np.isfinite(theta0)):
            raise ValueError("'start' must be four finite floats.")
    theta, res, ok = _solve(system, theta0, tol)
    if not ok:
        # Continuation: from delta / 20 (close to the population problem, where the
        # square-loss start is good) up to delta, warm-starting each step.
        path = delta * np.geomspace(0.05, 1.0, 12)
        if loss == "logistic" and lam == 0.0:
            # the solution's norm grows like 1 / (delta* - delta): steps geometric in
            # the distance to the threshold, denser near it
            path = thr - np.geomspace(thr - path[0], thr - delta, 16)
        th = _square_start(pi_pos, path[0], omega, lam, mu_p, mu_n)
        for dj in path:
            sub = _System(loss, pi, omega, float(dj), lam, mu_p, mu_n, n_nodes)
            th, res, ok = _solve(sub, th, tol)
        theta = th
    if not ok:
        raise RuntimeError(
            f"The {loss} fixed point did not converge (residual {res:.3g} > tol {tol:g}) for "
            f"pi_+={pi_pos:g}, delta={delta:g}, ridge={lam:g}, weights={omega.tolist()}"
            + (f"; the separability threshold is {thr:.4g}" if loss == "logistic" else "")
            + ". Close to the threshold the solution's norm diverges; try ridge > 0.")
    alpha, b, sigma, gamma, a, r, *_ = system.moments(theta)
    e = norm.sf(a / r)
    return MarginLossPrediction(
        error_pos=float(e[0]), error_neg=float(e[1]), worst_class_error=float(e.max()),
        balanced_error=float(e.mean()), loss=loss, alpha=alpha, intercept=b, sigma=sigma,
        norm=r, gamma=gamma, margins=a, separability_threshold=thr, separable=False,
        residual=res, n_nodes=n_nodes)


def logistic_errors(minority_prior, dim_ratio, weights=None, **kwargs):
    """:func:`margin_loss_errors` with ``loss="logistic"`` (weighted cross-entropy)."""
    kwargs.pop("loss", None)
    return margin_loss_errors(minority_prior, dim_ratio, weights, loss="logistic", **kwargs)


# ----------------------------------------------------------------- simulation
def sklearn_C(ridge, n):
    """scikit-learn's ``C`` for the objective of :func:`margin_loss_errors`.

    ``(1/n) sum_i omega_i l_i + lambda ||w||^2`` times ``1 / (2 lambda)`` is
    ``C sum_i omega_i l_i + ||w||^2 / 2`` with ``C = 1 / (2 n lambda)`` (sklearn's
    ``LogisticRegression`` objective with ``sample_weight = omega``, intercept
    unpenalised with the lbfgs solver); ``lambda = 0`` is ``C = inf`` (no penalty).
    """
    lam = check_real(ridge, "ridge", 0.0, None)
    return math.inf if lam == 0.0 else 1.0 / (2.0 * int(n) * lam)


def simulate_logistic(minority_prior, dim_ratio, weights, *, ridge=0.0, n=1500,
                      mean_pos=None, mean_neg=None, mean_norm=1.0, repeats=20, seed=0,
                      tol=1e-10, max_iter=20000):
    """Monte Carlo reference: weighted logistic regression fitted by scikit-learn.

    Samples ``x | c ~ N(mu_c, I_d)`` (``d = round(dim_ratio n)``, class counts as in
    :func:`lastlayer.theory.simulate_binary`), fits
    ``sklearn.linear_model.LogisticRegression(C=sklearn_C(ridge, n), tol=tol,
    solver="lbfgs")`` with ``sample_weight = omega_{y_i}`` (exactly the objective of
    :func:`margin_loss_errors`) and returns the exact Gaussian test errors of the fitted
    ``(w, b)``: ``e_+ = Q((w^T mu_+ + b) / ||w||)``, ``e_- = Q(-(w^T mu_- + b) / ||w||)``.
    Repeat ``r`` uses the r-th stream spawned from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    SimulationResult with columns (positive, negative).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from ._simulate import SimulationResult

    pi_pos = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    lam = check_real(ridge, "ridge", 0.0, None)
    n = check_int(n, "n", 4)
    repeats = check_int(repeats, "repeats", 1)
    d = max(1, int(round(delta * n)))
    mp, mn = check_means(mean_pos, mean_neg, mean_norm)
    mu = np.zeros((2, max(d, mp.size)))
    mu[0, : mp.size] = mp
    mu[1, : mn.size] = mn
    mu = mu[:, :d] if mp.size <= d else mu
    # counts as in simulate_binary: floor, the leftover sample to the larger remainder
    n_pos = int(math.floor(pi_pos * n))
    if n - n_pos - math.floor((1 - pi_pos) * n) > 0 and pi_pos * n - n_pos >= (1 - pi_pos) * n - math.floor((1 - pi_pos) * n):
        n_pos += 1
    n_neg = n - n_pos
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"n={n} leaves a class with no samples for pi_+={pi_pos}.")
    y = np.r_[np.zeros(n_pos, int), np.ones(n_neg, int)]
    labels = np.where(y == 0, 1, -1)
    s = np.asarray(weights, float)[y]
    rngs = np.random.default_rng(seed).spawn(repeats)
    errors = np.empty((repeats, 2))
    for r, rng in enumerate(rngs):
        X = mu[y] + rng.standard_normal((y.size, mu.shape[1]))
        clf = LogisticRegression(C=sklearn_C(lam, n), tol=tol, max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            clf.fit(X, labels, sample_weight=s)
        w = clf.coef_[0]
        b = float(clf.intercept_[0])
        if clf.classes_[1] != 1:  # pragma: no cover - classes_ is sorted: (-1, 1)
            w, b = -w, -b
        nw = float(np.linalg.norm(w))
        errors[r, 0] = norm.sf((mu[0] @ w + b) / nw)
        errors[r, 1] = norm.sf(-(mu[1] @ w + b) / nw)
    return SimulationResult.from_errors(errors)


# ----------------------------------------------------------------- optimal weights
def _errors_at(pi, delta, rho, lam, mu_p, mu_n, loss, start=None):
    return margin_loss_errors(pi, delta, weight_ratio=rho, ridge=lam, loss=loss,
                              mean_pos=mu_p, mean_neg=mu_n, start=start)


def _ratio_scan(pi, delta, lam, mu_p, mu_n, loss, bounds, n_grid):
    """Predictions along a log-spaced grid of ratios, warm-started along the grid.

    Ratios whose fixed point fails to converge are skipped (``None``)."""
    grid = np.geomspace(bounds[0], bounds[1], n_grid)
    preds = []
    prev = None
    for rho in grid:
        try:
            p = _errors_at(pi, delta, float(rho), lam, mu_p, mu_n, loss,
                           None if prev is None else prev._start())
        except RuntimeError:
            try:
                p = _errors_at(pi, delta, float(rho), lam, mu_p, mu_n, loss)
            except RuntimeError:
                p = None
        preds.append(p)
        prev = p if p is not None else prev
    return grid, preds


def equalizing_ratio(minority_prior, dim_ratio, *, ridge=0.0, loss="logistic",
                     mean_norm=None, mean_pos=None, mean_neg=None, bounds=(1e-3, 1e4)):
    """Weight ratio ``rho = omega_+ / omega_-`` at which the two class errors are equal.

    Weights are ``weights_from_ratio(pi_+, rho)`` (mean one). ``e_+ - e_-`` is scanned on
    a log grid over ``bounds`` (41 points) and the first sign change refined by Brent's
    method on ``log rho``. Returns ``math.inf`` (``0.0``) when ``e_+ > e_-`` (``<``) on
    the whole range (no finite equalising ratio there), and raises
    :class:`SeparableDataError` in the separable regime (``ridge == 0``,
    ``delta >= delta*``), where the weights have no effect.
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    mu_p, mu_n = check_means(mean_pos, mean_neg, mean_norm)
    grid, preds = _ratio_scan(pi, dim_ratio, ridge, mu_p, mu_n, loss, bounds, 41)
    diff = [None if p is None else p.error_pos - p.error_neg for p in preds]
    ok = [i for i, v in enumerate(diff) if v is not None]
    if not ok:
        raise RuntimeError("The fixed point failed at every ratio of the scan.")
    for i, j in zip(ok[:-1], ok[1:]):
        if diff[i] == 0.0:
            return float(grid[i])
        if diff[i] * diff[j] < 0:
            start = {"v": preds[i]._start()}

            def f(u):
                p = _errors_at(pi, dim_ratio, math.exp(u), ridge, mu_p, mu_n, loss,
                               start["v"])
                start["v"] = p._start()
                return p.error_pos - p.error_neg

            u = brentq(f, math.log(grid[i]), math.log(grid[j]), xtol=1e-10, rtol=1e-12)
            return math.exp(u)
    return math.inf if diff[ok[-1]] > 0 else 0.0


def optimal_ratio(minority_prior, dim_ratio, *, ridge=0.0, loss="logistic",
                  objective="worst", mean_norm=None, mean_pos=None, mean_neg=None,
                  bounds=(1e-3, 1e4)):
    """Ratio minimising the theory's worst-class (``"worst"``) or balanced error.

    Log grid of 41 ratios over ``bounds``, then bounded Brent on ``log rho`` between
    the grid neighbours of the best point. Returns a dict with ``weight_ratio``,
    ``error``, ``prediction`` and ``at_bound`` (optimum at an end of ``bounds``).
    """
    if objective not in ("worst", "balanced"):
        raise ValueError(
            f"The 'objective' parameter must be one of 'worst', 'balanced'. Got {objective!r}.")
    key = "worst_class_error" if objective == "worst" else "balanced_error"
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    mu_p, mu_n = check_means(mean_pos, mean_neg, mean_norm)
    grid, preds = _ratio_scan(pi, dim_ratio, ridge, mu_p, mu_n, loss, bounds, 41)
    vals = np.array([math.inf if p is None else getattr(p, key) for p in preds])
    i = int(np.argmin(vals))
    if not np.isfinite(vals[i]):
        raise RuntimeError("The fixed point failed at every ratio of the scan.")
    lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, grid.size - 1)])

    def f(u):
        try:
            return getattr(_errors_at(pi, dim_ratio, math.exp(u), ridge, mu_p, mu_n, loss,
                                      preds[i]._start()), key)
        except RuntimeError:
            return math.inf

    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
    u = float(res.x) if res.fun <= vals[i] else math.log(grid[i])
    pred = _errors_at(pi, dim_ratio, math.exp(u), ridge, mu_p, mu_n, loss, preds[i]._start())
    L, H = math.log(bounds[0]), math.log(bounds[1])
    return {"weight_ratio": math.exp(u), "error": getattr(pred, key), "prediction": pred,
            "at_bound": bool(u - L < 0.05 or H - u < 0.05)}


# ----------------------------------------------------------------- data-driven inputs
def estimate_mean_norm(X, y, positive=None):
    """Debiased estimate of ``||mu||`` (half the distance between two class means).

    For ``x | c ~ N(mu_c, v I_d)`` with ``n_c`` samples per class,
    ``E ||xbar_+ - xbar_-||^2 = ||mu_+ - mu_-||^2 + d v (1/n_+ + 1/n_-)``. With
    ``v_hat`` the pooled within-class variance per coordinate (``ddof`` one per class),
    the estimate is

        ||mu||_hat = (1/2) sqrt( max(||xbar_+ - xbar_-||^2 / v_hat - d (1/n_+ + 1/n_-), 0) ),

    in units of the noise standard deviation, as the theory's ``mean_norm`` (antipodal
    means, unit noise) expects. For anisotropic features it is the separation in units
    of the average per-coordinate noise variance, a heuristic.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,)
        Two distinct labels.
    positive : label, optional
        Label of the positive class (default: the less frequent one).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError("X must be 2-D and y of length X.shape[0].")
    labels, counts = np.unique(y, return_counts=True)
    if labels.size != 2 or np.any(counts < 2):
        raise ValueError("y must hold exactly two labels with at least two samples each.")
    if positive is None:
        positive = labels[int(np.argmin(counts))]
    mask = y == positive
    Xp, Xn = X[mask], X[~mask]
    n_p, n_n = Xp.shape[0], Xn.shape[0]
    d = X.shape[1]
    diff = Xp.mean(axis=0) - Xn.mean(axis=0)
    ss = ((Xp - Xp.mean(axis=0)) ** 2).sum() + ((Xn - Xn.mean(axis=0)) ** 2).sum()
    v = ss / ((n_p + n_n - 2) * d)
    D = float(diff @ diff) / v - d * (1.0 / n_p + 1.0 / n_n)
    return 0.5 * math.sqrt(max(D, 0.0))


@dataclass(frozen=True)
class LogisticWeights:
    """Result of :func:`logistic_class_weights`.

    Attributes
    ----------
    weights : ndarray of shape (2,)
        ``(omega_+, omega_-)`` in the order of ``counts``, mean weight over samples one.
    weight_ratio : float
        ``omega_+ / omega_-`` (class 0 over class 1).
    objective : str
        ``"equalize"``, ``"worst"`` or ``"balanced"``: what was optimised.
    feasible : bool
        False when no finite ratio equalises the errors (then the worst-class optimum
        was returned) or the data are separable (then equal weights were returned).
    separable : bool
        ``ridge == 0`` and ``d / n >= delta*``: the weights do not matter.
    message : str
    """

    weights: np.ndarray
    weight_ratio: float
    objective: str
    feasible: bool
    separable: bool
    separability_threshold: float
    message: str = ""

    def as_dict(self):
        return {"class_weights": self.weights.tolist(), "weight_ratio": self.weight_ratio,
                "objective": self.objective, "feasible": self.feasible,
                "separable": self.separable,
                "separability_threshold": self.separability_threshold,
                "message": self.message}


def logistic_class_weights(counts, dim, mean_norm, *, ridge=0.0, objective="equalize"):
    """Theory-based class weights for weighted logistic regression (two classes).

    Plugs ``pi_+ = n_0 / n``, ``delta = dim / n`` and the antipodal mean norm (e.g.
    :func:`estimate_mean_norm`) into :func:`equalizing_ratio` (``"equalize"``) or
    :func:`optimal_ratio` (``"worst"``, ``"balanced"``). Class 0 plays the role of the
    positive class. Weights are scaled to mean one over samples, as ``ridge`` expects.

    When no finite ratio equalises the errors, the worst-class optimum is returned
    (``feasible=False``); when the data are separable (``ridge == 0``,
    ``delta >= delta*``) equal weights are returned (``separable=True``).
    """
    from .._validation import check_counts

    n_g = check_counts(counts).astype(float)
    if n_g.size != 2:
        raise ValueError("logistic_class_weights handles two classes.")
    dim = check_real(dim, "dim", 0.0, None, closed="neither")
    s = check_real(mean_norm, "mean_norm", 0.0, None, closed="neither")
    if objective not in ("equalize", "worst", "balanced"):
        raise ValueError("The 'objective' parameter must be one of 'equalize', 'worst', "
                         f"'balanced'. Got {objective!r}.")
    n = float(n_g.sum())
    pi = n_g[0] / n
    delta = dim / n
    thr = separability_threshold(pi, mean_norm=s)
    if ridge == 0 and delta >= thr:
        return LogisticWeights(np.ones(2), 1.0, objective, False, True, thr,
                               f"d/n = {delta:.4g} >= separability threshold {thr:.4g}: "
                               "the ridgeless logistic fit diverges to the max-margin "
                               "classifier, where weights do not matter; equal weights.")
    feasible = True
    message = ""
    if objective == "equalize":
        rho = equalizing_ratio(pi, delta, ridge=ridge, mean_norm=s)
        if not (0.0 < rho < math.inf):
            feasible = False
            objective = "worst"
            message = ("No finite weight ratio equalises the class errors; returned the "
                       "worst-class optimum.")
    if objective != "equalize":
        rho = optimal_ratio(pi, delta, ridge=ridge, mean_norm=s, objective=objective)[
            "weight_ratio"]
    return LogisticWeights(weights_from_ratio(pi, rho), float(rho), objective, feasible,
                           False, thr, message)


# ----------------------------------------------------------------- CLI payloads
def _simulation_payload(loss, pi, dim_ratio, w, ridge, n, mean_norm, repeats, seed):
    """The ``simulation`` entry of :func:`theory_summary`."""
    if loss == "square":
        from ._simulate import simulate_binary as sim_fn
    else:
        sim_fn = simulate_logistic
    sim = sim_fn(pi, dim_ratio, w, ridge=ridge, n=n, mean_norm=mean_norm, repeats=repeats,
                 seed=seed)
    return {"n": n, "repeats": repeats, "seed": seed,
            "error_minority": float(sim.mean[0]), "error_minority_sem": float(sim.sem[0]),
            "error_majority": float(sim.mean[1]), "error_majority_sem": float(sim.sem[1])}


def theory_summary(minority_prior, dim_ratio, *, loss="square", mean_norm=1.0, ridge=0.0,
                   weight_ratio=1.0, simulate=0, n=1500, seed=0):
    """The dict ``lastlayer theory --json`` prints, for ``loss`` in {square, logistic}.

    Keys as documented in docs/cli.md: the configuration, ``weights``,
    ``error_minority``/``error_majority``, ``worst_class_error``, ``balanced_error``,
    ``ratio_of_priors``, ``equalizing_weight_ratio`` (``None`` if infeasible),
    ``equalizing_feasible``, ``worst_class_optimal_ratio``/``_error``,
    ``balanced_optimal_ratio``/``_error``, ``details`` and, with ``simulate > 0``,
    ``simulation``; plus ``loss``, ``separability_threshold`` (``delta*``, both losses)
    and ``separable``. For ``loss="logistic"`` the errors are
    :func:`logistic_errors`, the equalising ratio :func:`equalizing_ratio` and the
    simulation :func:`simulate_logistic`; additionally ``square_rule_ratio`` (the
    square-loss equalising ratio) and ``errors_at_square_rule`` (cross-entropy errors
    there). In the separable regime (logistic, ``ridge == 0``, ``delta >= delta*``)
    every error and ratio is ``None`` and ``separable`` is True.
    """
    import math as _m

    from ._optimal import numerical_optimal_ratio, optimal_class_weights, optimal_weight_ratio

    if loss not in LOSSES:
        raise ValueError(f"The 'loss' parameter must be one of {LOSSES}. Got {loss!r}.")
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    w = weights_from_ratio(pi, weight_ratio)
    thr = separability_threshold(pi, mean_norm=mean_norm)
    base = {"loss": loss, "minority_prior": pi, "dim_ratio": dim_ratio,
            "mean_norm": mean_norm, "ridge": ridge, "weight_ratio": weight_ratio,
            "weights": w.tolist(), "ratio_of_priors": (1 - pi) / pi,
            "separability_threshold": thr}
    if loss == "square":
        pred = binary_errors(pi, dim_ratio, weight_ratio=weight_ratio, ridge=ridge,
                             mean_norm=mean_norm)
        if ridge == 0:
            rho_eq = optimal_weight_ratio(pi, dim_ratio)
        else:
            nn = 10_000
            n_pos = max(1, round(pi * nn))
            opt = optimal_class_weights([n_pos, nn - n_pos], dim_ratio * nn, ridge=ridge,
                                        fit_intercept=False)
            rho_eq = float(opt.weights[0] / opt.weights[1]) if opt.feasible else _m.inf
        worst = numerical_optimal_ratio(pi, dim_ratio, ridge=ridge, mean_norm=mean_norm,
                                        objective="worst")
        bal = numerical_optimal_ratio(pi, dim_ratio, ridge=ridge, mean_norm=mean_norm,
                                      objective="balanced")
        extra = {}
    else:
        pred = logistic_errors(pi, dim_ratio, weights=w, ridge=ridge, mean_norm=mean_norm,
                               on_separable="flag")
        if pred.separable:
            none = dict.fromkeys(["error_minority", "error_majority", "worst_class_error",
                                  "balanced_error", "equalizing_weight_ratio",
                                  "worst_class_optimal_ratio", "worst_class_optimal_error",
                                  "balanced_optimal_ratio", "balanced_optimal_error",
                                  "square_rule_ratio", "errors_at_square_rule"])
            return {**base, **none, "equalizing_feasible": False, "separable": True,
                    "details": pred.as_dict()}
        rho_eq = equalizing_ratio(pi, dim_ratio, ridge=ridge, mean_norm=mean_norm)
        if rho_eq == 0.0:
            rho_eq = _m.inf
        worst = optimal_ratio(pi, dim_ratio, ridge=ridge, mean_norm=mean_norm,
                              objective="worst")
        bal = optimal_ratio(pi, dim_ratio, ridge=ridge, mean_norm=mean_norm,
                            objective="balanced")
        rho_sq = optimal_weight_ratio(pi, dim_ratio) if ridge == 0 else equalizing_ratio(
            pi, dim_ratio, ridge=ridge, mean_norm=mean_norm, loss="square")
        at_sq = None
        if 0.0 < rho_sq < _m.inf:
            p_sq = logistic_errors(pi, dim_ratio, weight_ratio=rho_sq, ridge=ridge,
                                   mean_norm=mean_norm)
            at_sq = [p_sq.error_pos, p_sq.error_neg]
        extra = {"square_rule_ratio": rho_sq if 0.0 < rho_sq < _m.inf else None,
                 "errors_at_square_rule": at_sq}
    payload = {
        **base,
        "error_minority": pred.error_pos, "error_majority": pred.error_neg,
        "worst_class_error": pred.worst_class_error, "balanced_error": pred.balanced_error,
        "equalizing_weight_ratio": rho_eq if _m.isfinite(rho_eq) else None,
        "equalizing_feasible": bool(_m.isfinite(rho_eq)),
        "worst_class_optimal_ratio": worst["weight_ratio"],
        "worst_class_optimal_error": worst["error"],
        "balanced_optimal_ratio": bal["weight_ratio"],
        "balanced_optimal_error": bal["error"],
        "separable": False, **extra,
        "details": pred.as_dict(),
    }
    if simulate:
        payload["simulation"] = _simulation_payload(loss, pi, dim_ratio, w, ridge, n,
                                                    mean_norm, simulate, seed)
    return payload


def weights_summary(counts, dim, *, loss="square", mean_norm=None, ridge=0.0, target=None,
                    max_leverage=0.95, fit_intercept=True, objective="equalize"):
    """The dict ``lastlayer weights --json`` prints, for ``loss`` in {square, logistic}.

    ``loss="square"``: :func:`lastlayer.theory.optimal_class_weights` (any number of
    classes) with ``counts``, ``dim``, ``ridge``, ``target``, ``class_weights``,
    ``feasible``, ``df``, ``leverage``, ``infeasible_classes``, ``capped``, ``message``
    and ``ratio_of_priors_weights``. ``loss="logistic"`` (two classes, balanced
    target, needs ``mean_norm``): :func:`logistic_class_weights` with keys ``counts``,
    ``dim``, ``ridge``, ``mean_norm``, ``class_weights``, ``weight_ratio``,
    ``objective``, ``feasible``, ``separable``, ``separability_threshold``, ``message``,
    ``ratio_of_priors_weights`` and ``square_rule_weights`` (the square-loss weights for
    the same counts, for comparison). Both carry ``loss``.
    """
    from ._optimal import optimal_class_weights

    if loss not in LOSSES:
        raise ValueError(f"The 'loss' parameter must be one of {LOSSES}. Got {loss!r}.")
    counts = [int(c) for c in counts]
    n = float(sum(counts))
    tgt = (np.full(len(counts), 1 / len(counts)) if target is None
           else np.asarray(target, float) / np.sum(target))
    ratio = tgt / np.asarray(counts, float)
    ratio = ratio * n / float(np.asarray(counts) @ ratio)
    sq = optimal_class_weights(counts, dim, ridge=ridge, target=target,
                               fit_intercept=fit_intercept, max_leverage=max_leverage)
    if loss == "square":
        return {"loss": loss, "counts": counts, "dim": dim, "ridge": ridge,
                "target": tgt.tolist(), **sq.as_dict(),
                "ratio_of_priors_weights": ratio.tolist()}
    if target is not None and not np.allclose(tgt, 0.5):
        raise ValueError("loss='logistic' supports the balanced target only.")
    if mean_norm is None:
        raise ValueError("loss='logistic' needs 'mean_norm' (see estimate_mean_norm).")
    lw = logistic_class_weights(counts, dim, mean_norm, ridge=ridge, objective=objective)
    return {"loss": loss, "counts": counts, "dim": dim, "ridge": ridge, "mean_norm": mean_norm,
            **lw.as_dict(), "ratio_of_priors_weights": ratio.tolist(),
            "square_rule_weights": sq.weights.tolist()}
