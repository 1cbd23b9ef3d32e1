"""Validation-free selection of the loss, the weights and alpha (``loss="auto"``).

The layer of :class:`lastlayer.LastLayerClassifier` above the fit pipeline of
:mod:`lastlayer._fit`. Every candidate configuration of the plan (square or
cross-entropy loss; the theory weights, the ratio of priors, post-hoc logit
adjustment) is fitted on the shared sufficient statistics with its own alpha, and
scored by leave-one-out from the retraining data alone:

- square loss: exact leave-one-out predictions ``t_i - e_i / (1 - h_ii)`` of the
  weighted ridge at the candidate's alpha (:func:`lastlayer._core.loo.loo_path`);
- cross-entropy: approximate leave-one-out logits (one Newton step from the full
  fit, Rad & Maleki 2020; :func:`lastlayer._core.logistic.alo_logits`);
- logit adjustment: the same logits minus ``tau`` times the log class priors, with
  ``tau`` in :data:`LOGIT_TAUS` chosen by the same leave-one-out estimate.

Each candidate's per-unit (class, or group) leave-one-out accuracy estimates the
test accuracy of that unit (shrunk toward one half; read off the leave-one-out
margins with two classes, :func:`criterion`); the candidate with the best estimate
of the target metric (worst unit by default) is kept, ties to the theory's choice
(listed first; :func:`choose`). The fitted estimator reports every candidate in ``selection_``
and the kept layer's per-unit estimates with standard errors in
``loo_class_accuracy_``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.stats
from threadpoolctl import threadpool_limits

from ._core.logistic import alo_logits
from ._core.loo import gcv_decisions, gcv_decisions_many, loo_decisions, loo_path
from ._core.ridge import weighted_rows
from ._core.stats import centre_stats, covariance_spectrum
from ._fit import (
    Data,
    RowStats,
    check_not_constant,
    fit_layer,
    make_oracle,
    row_space_spectrum,
    select,
    tuned_score,
)
from ._progress import PhaseLog

__all__ = ["Evaluation", "choose", "criterion", "evaluation_order", "fit_selected",
           "loo_scores", "margin_accuracy", "selection_attributes", "unit_accuracy"]

@dataclass(frozen=True)
class Evaluation:
    """One fitted candidate and its leave-one-out record."""

    plan: object           # the candidate's Plan
    choice: object         # _fit.Choice
    layer: object          # _fit.Layer (with the post-hoc bias already applied)
    hits: np.ndarray | None     # (U,) sample-weighted correct per unit
    rows: np.ndarray | None     # (U,) sample weight per unit
    estimate: float             # the metric's leave-one-out estimate (nan if none)
    tau: float = 0.0            # strength of the post-hoc logit adjustment (0: none)

    @property
    def name(self):
        p = self.plan
        return f"{p.loss}/{p.weighting}" + (f"+{p.adjust}" if p.adjust else "")


#: Above this many ``n d^2`` flops, square-loss candidates whose alpha is chosen by
#: GCV (``n > 10 d``) are scored with GCV's average leverages (:func:`gcv_decisions`)
#: instead of a pass for the exact ones; below it (every problem of the selection
#: suite) leave-one-out is exact.
EXACT_LOO_FLOPS = 2e9


def _gcv_scored(data, plan):
    """Whether :func:`loo_scores` scores this candidate with GCV's average leverages
    (square loss, alpha by GCV, in memory, above :data:`EXACT_LOO_FLOPS`)."""
    if not data.in_memory or plan.subset_solver is not None:
        return False
    n, d = data.X.shape
    return plan.loss == "square" and plan.alpha_criterion == "gcv" and n * d * d > \
        EXACT_LOO_FLOPS


def loo_scores(params, data, design, plan, oracle, layer, path=None):
    """Leave-one-out scores (n, K) of a fitted configuration, or None when it has
    no leave-one-out estimate (out-of-core rows, averaged subsets). ``path``: the
    two-unit weight path the layer's weights were read off, at its alpha (its
    factorisation gives the exact decisions without another one)."""
    if not data.in_memory or plan.subset_solver is not None:
        return None
    D, K = design, design.n_classes
    cell_w = layer.unit_weight[D.unit_of_cell]
    active = oracle.n_active(cell_w)
    n, d = data.X.shape
    if _gcv_scored(data, plan):
        # n > 10 d, where alpha is chosen by GCV too: average leverages (O(n d m))
        # instead of the exact ones (another O(n d^2) pass over the rows)
        return gcv_decisions(data.X, D.cell_idx, cell_w, D.cell_targets, D.sample_weight,
                             layer.W, layer.b, layer.df)
    if plan.loss == "square" and path is not None and path.alpha == layer.alpha:
        rho = float(layer.unit_weight[1] / layer.unit_weight[0])
        return path.loo_decisions(data.X, D.cell_idx, D.sample_weight, rho, data.X.dtype)
    if plan.loss == "square" and d <= active and oracle.stats is not None:
        # d <= rows: from the statistics (the eigendecomposition that chose alpha),
        # the rows in blocks (no float64 copy of X)
        return loo_decisions(data.X, D.cell_idx, cell_w, D.cell_targets, D.sample_weight,
                             layer.alpha, oracle.stats, oracle.loo_spectrum(cell_w),
                             data.X.dtype)
    X64 = np.asarray(data.X, dtype=np.float64)
    if plan.loss == "square":
        T = D.cell_targets
        rows = weighted_rows(X64, D.cell_idx, cell_w, T, D.sample_weight)
        gram = None
        if X64.shape[1] <= rows.Z.shape[0]:
            gram = centre_stats(oracle.stats, cell_w, np.zeros((D.n_cells, 1))).C
        path = loo_path(rows, np.array([layer.alpha]), gram, return_decision=True)
        return path["loo_decision"][0]
    row_w = D.sample_weight * cell_w[D.cell_idx]
    # the objective's n is the sum of sample weights; the row basis is the fit's
    return alo_logits(X64, D.y_idx, K, row_w, layer.alpha, float(D.sample_weight.sum()),
                      layer.W, layer.b, oracle.logistic_rows())


def _log_prior(design):
    return np.log(design.class_mass / design.class_mass.sum())


def unit_accuracy(scores, design):
    """Sample-weighted correct predictions of ``scores`` and sample weight, per unit."""
    correct = np.argmax(scores, axis=1) == design.y_idx
    sw, U = design.sample_weight, design.unit_names.size
    hits = np.bincount(design.unit_labels, weights=sw * correct, minlength=U)
    rows = np.bincount(design.unit_labels, weights=sw, minlength=U)
    return hits, rows


def shrunk_accuracy(hits, rows):
    """Per-unit accuracy with one pseudo-success and one pseudo-failure (the
    posterior mean under a uniform prior): a class of 3 rows is never "perfect"."""
    return (hits + 1.0) / (rows + 2.0)


def margin_accuracy(scores, design, rows):
    """Per-unit accuracy read off the leave-one-out *margins* (two classes).

    With the margin ``m_i`` of the true class over the other, each unit's accuracy is
    ``Phi(mean_u(m) / s)`` with ``s`` the pooled within-unit standard deviation: the
    Gaussian model's accuracy ``1 - Q(margin / r)`` (docs/theory.md section 3). It
    uses how far each row is from the boundary, not only its side, so a minority of
    four rows gives a usable estimate. Returned as expected hits (times ``rows``); None when
    some leave-one-out score is not finite (an interpolating fit).
    """
    n = scores.shape[0]
    y, sw, u, U = design.y_idx, design.sample_weight, design.unit_labels, rows.size
    if not np.all(np.isfinite(scores)):  # interpolating rows (h_ii = 1): no margin
        return None
    m = scores[np.arange(n), y] - scores[np.arange(n), 1 - y]
    mu = np.bincount(u, weights=sw * m, minlength=U) / rows
    var = (sw * (m - mu[u]) ** 2).sum() / max(sw.sum() - U, 1.0)
    return rows * scipy.stats.norm.cdf(mu / max(np.sqrt(var), np.finfo(float).tiny))


def criterion(scores, design, metric):
    """The estimate of ``metric`` from leave-one-out ``scores``, and the raw per-unit
    counts ``(hits, rows)``: shrunk accuracies per unit, from the margins with two
    classes as the two units (:func:`margin_accuracy`), from the counts otherwise."""
    hits, rows = unit_accuracy(scores, design)
    binary = design.n_classes == 2 and rows.size == 2  # (measured there; docs/selection.md)
    smooth = margin_accuracy(scores, design, rows) if binary else None
    smooth = hits if smooth is None else smooth
    return metric_estimate(smooth, rows, metric, design.target), hits, rows


def metric_estimate(hits, rows, metric, target):
    """The target metric from per-unit leave-one-out counts. Units of target share 0
    are left out of the worst and the balanced accuracy: the target says they do not
    occur where the layer is used (and the weightings that follow it ignore them)."""
    acc = shrunk_accuracy(hits, rows)
    if metric == "target":
        return float(target @ acc)
    acc = acc[np.asarray(target) > 0]
    if metric == "balanced":
        return float(acc.mean())
    return float(acc.min())


def choose(evaluations):
    """Index of the kept candidate: the highest estimate; ties keep the earlier
    candidate (the theory's choice is first)."""
    best = 0
    for i, ev in enumerate(evaluations[1:], start=1):
        if np.isfinite(ev.estimate) and ev.estimate > evaluations[best].estimate:
            best = i
    return best


#: Strengths ``tau`` of post-hoc logit adjustment (scores minus ``tau`` log priors)
#: compared by leave-one-out, the published ``tau = 1`` first (Menon et al. 2021).
LOGIT_TAUS = (1.0, 1.5, 2.0, 0.5)


def _best_adjustment(scores, design, metric):
    """The ``tau`` of :data:`LOGIT_TAUS` whose adjusted leave-one-out scores have the
    best estimate (ties keep the earlier), and those scores."""
    best = None
    for tau in LOGIT_TAUS:
        adj = scores - tau * _log_prior(design)
        est = criterion(adj, design, metric)[0]
        if best is None or est > best[0]:
            best = (est, tau, adj)
    return best[1], best[2]


def _adjusted(layer, design, tau):
    """The layer with ``-tau log prior`` folded into its intercept."""
    if not tau:
        return layer
    b = layer.b - tau * _log_prior(design)
    K = design.n_classes
    intercept = np.array([b[1] - b[0]]) if K == 2 else b.copy()
    return replace(layer, intercept=intercept, b=b)


def _evaluate(params, data, design, plan, stats, spectrum, rng, score, cache, space=None,
              log=None, data64=None, spectra=None, defer=False):
    """Fit one candidate (reusing the weights chosen for its weighting) and score it;
    cross-entropy candidates use ``data64``, the rows in float64 (made once); the
    candidates share ``spectra``, the leave-one-out eigendecompositions by weights.
    ``defer``: a candidate scored with GCV's average leverages is returned unscored
    (estimate nan, no hits), for one pass over the rows with the others
    (:func:`_score_deferred`)."""
    params_c = plan.params(params)
    data_c = data64 if plan.loss == "logistic" and data64 is not None else data
    oracle = make_oracle(data_c, design, plan, stats, space, spectra)
    if plan.loss == "square":  # ridge leave-one-out on the oracle's rows (row space: exact)
        data_c = oracle.data
    key = (plan.weighting, plan.alpha_criterion)
    if key not in cache:
        cache[key] = select(params_c, design, plan, oracle, spectrum, rng, score, log)
    choice = cache[key]
    path = choice.weighting.path
    if path is not None:  # used here at most: do not hold its p x p arrays longer
        choice = cache[key] = replace(choice, weighting=replace(choice.weighting, path=None))
        if plan.loss != "square":  # nor through a cross-entropy fit, which does not read it
            path = None
    with log.phase(lambda: f"layer: {plan.loss} loss, {plan.weighting} weights at "
                           f"alpha={layer.alpha:.4g}"):
        layer = fit_layer(params_c, design, plan, oracle, choice, log)
    if defer and _gcv_scored(data_c, plan):
        return Evaluation(plan, choice, layer, None, None, float("nan"))  # scored later
    scores = loo_scores(params_c, data_c, design, plan, oracle, layer, path)
    return _scored(plan, choice, layer, scores, design)


def _scored(plan, choice, layer, scores, design):
    """The :class:`Evaluation` of a fitted candidate from its leave-one-out scores
    (None: no estimate), with its post-hoc logit adjustment chosen on them."""
    tau = 0.0
    if plan.adjust == "logit":
        tau = 1.0
        if scores is not None:
            tau, scores = _best_adjustment(scores, design, plan.metric)
        layer = _adjusted(layer, design, tau)
    if scores is None:
        return Evaluation(plan, choice, layer, None, None, float("nan"), tau)
    est, hits, rows = criterion(scores, design, plan.metric)
    return Evaluation(plan, choice, layer, hits, rows, est, tau)


def fit_selected(params, data, design, plan, stats, random_state=None, validation=None,
                 log=None):
    """Fit every candidate of ``plan`` (or its one configuration), keep the best by
    leave-one-out; returns ``(kept Evaluation, all Evaluations)``. ``log`` (a
    :class:`lastlayer._progress.PhaseLog`) reports the phases on stderr."""
    log = log or PhaseLog(0)
    if plan.selection_skipped:
        log.info(f"not compared: {plan.selection_skipped}")
    rng = np.random.default_rng(random_state if not isinstance(
        random_state, np.random.RandomState) else random_state.randint(2**31))
    plans = plan.candidates or (plan,)
    space = None
    if isinstance(stats, RowStats):  # n < d: ridge fits in the span of the rows, r < n
        space, stats = stats.space, stats.stats
    with threadpool_limits(limits=plan.solve_threads, user_api="blas"):
        if space is None:
            spectrum = covariance_spectrum(data.X, stats)
            check_not_constant(data, stats, spectrum)
        else:
            spectrum = row_space_spectrum(space, design)
        score = None
        if plans[0].weighting == "tuned":
            oracle = make_oracle(data, design, plans[0], stats, space)
            score = tuned_score(plans[0].params(params), design, plans[0], oracle, rng,
                                validation)
        cache = {}
        data64 = None  # one float64 copy of float32 rows, shared by cross-entropy candidates
        if any(p.loss == "logistic" for p in plans) and data.in_memory \
                and data.X.dtype != np.float64:
            data64 = Data(X=np.asarray(data.X, dtype=np.float64))
        spectra = {}
        defer = len(plans) > 1 and space is None  # the candidates' rows are data's
        done = {i: _evaluate(params, data, design, plans[i], stats, spectrum, rng, score,
                             cache, space, log, data64, spectra, defer)
                for i in evaluation_order(plans)}
        evaluations = [done[i] for i in range(len(plans))]
        if defer:
            evaluations = _score_deferred(evaluations, data, design)
    kept = choose(evaluations)
    return evaluations[kept], evaluations


def evaluation_order(plans):
    """The order in which to fit the candidates ``plans`` (indices): those of the
    ``optimal`` weighting last, the others as listed. The others' weights and alphas
    start from (or are) the start weights', whose ``d x d`` eigendecomposition the
    first of them computes and the rest read; an ``optimal`` candidate lets it go
    before it builds a weight path (:func:`lastlayer._fit.select`), so fitted first it
    would leave the others one more eigendecomposition to make. The order changes no
    result: the candidates draw nothing from ``random_state`` but ``downsample``
    (never a candidate) and share only deterministic computations."""
    return sorted(range(len(plans)), key=lambda i: plans[i].weighting == "optimal")


def _score_deferred(evaluations, data, design):
    """Score the candidates :func:`_evaluate` left unscored (GCV's average leverages)
    in one pass over the rows (:func:`gcv_decisions_many`); the others as they are."""
    todo = [i for i, ev in enumerate(evaluations)
            if ev.hits is None and _gcv_scored(data, ev.plan)]
    if not todo:
        return evaluations
    D = design
    fits = [(evaluations[i].layer.unit_weight[D.unit_of_cell], evaluations[i].layer.W,
             evaluations[i].layer.b, evaluations[i].layer.df) for i in todo]
    all_scores = gcv_decisions_many(data.X, D.cell_idx, D.cell_targets, D.sample_weight,
                                    fits)
    out = list(evaluations)
    for i, sc in zip(todo, all_scores):
        ev = evaluations[i]
        out[i] = _scored(ev.plan, ev.choice, ev.layer, sc, design)
    return out


def selection_attributes(kept, evaluations):
    """The fitted attributes of the selection: ``loss_``, ``weighting_``,
    ``selection_`` (one JSON-ready dict per candidate) and the kept layer's per-unit
    leave-one-out accuracy with its binomial standard error (one pseudo-count each
    way, so never 0 for tiny units); None where there is no leave-one-out."""
    table = [{"candidate": ev.name, "loss": ev.plan.loss, "alpha": float(ev.layer.alpha),
              "logit_adjustment": ev.tau,
              "estimate": None if not np.isfinite(ev.estimate) else ev.estimate,
              "loo_accuracy": None if ev.hits is None else (ev.hits / ev.rows).tolist(),
              "kept": ev is kept} for ev in evaluations]
    out = {"loss_": kept.plan.loss, "weighting_": kept.name.split("/", 1)[1],
           "selection_": table, "loo_class_accuracy_": None, "loo_class_accuracy_se_": None}
    if kept.hits is not None:
        shrunk = (kept.hits + 1.0) / (kept.rows + 2.0)
        out["loo_class_accuracy_"] = kept.hits / kept.rows
        out["loo_class_accuracy_se_"] = np.sqrt(shrunk * (1 - shrunk) / (kept.rows + 2.0))
    return out
