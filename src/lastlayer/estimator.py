"""``LastLayerClassifier``: a scikit-learn classifier over the fit pipeline.

The estimator checks its parameters and inputs once, hands them to the pipeline of
:mod:`lastlayer._fit` (prepare -> resolve -> statistics -> select -> fit_layer) and
copies the result onto fitted attributes. It holds no algorithm of its own.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._fit import (
    ALPHA_GRID,
    GCV_ROWS_PER_FEATURE,
    Data,
    Validation,
    check_design,
    check_values,
    prepare,
    resolve,
    scheme_name,
    statistics,
)
from ._progress import PhaseLog
from ._select import fit_selected, selection_attributes
from ._validation import (
    check_estimator_rows,
    check_fit_labels,
    check_fit_sample_weight,
    check_params,
    check_validation_rows,
    estimator_parameter_table,
    warn_unseen_labels,
)
from .weights import WEIGHTINGS

__all__ = ["ALPHA_GRID", "GCV_ROWS_PER_FEATURE", "LastLayerClassifier"]

_LOSSES = ("auto", "square", "logistic")
_METRICS = ("worst", "balanced", "target")
_SOLVERS = ("auto", "primal", "dual")
_PRECISIONS = ("auto", "float64", "float32")
_DIMS = ("pca99", "participation_ratio", "df", "d")
_PARAMETERS = estimator_parameter_table({**WEIGHTINGS, "auto": None}, _LOSSES, _SOLVERS,
                                        _PRECISIONS, _DIMS, _METRICS)


class LastLayerClassifier(ClassifierMixin, BaseEstimator):
    r"""Retrain a last linear layer with loss weights chosen from the data.

    With square loss (one-hot targets ``e_y``; ``loss="auto"`` chooses) the layer solves

    .. math::

        \min_{W, b}\ \frac{1}{n} \sum_i s_i\, \omega_{u(i)}\,
        \lVert e_{y_i} - W^\top x_i - b \rVert^2 + \alpha \lVert W \rVert_F^2,
        \qquad n = \sum_i s_i,

    where ``s_i`` are sample weights, ``u(i)`` is the sample's class (or group,
    when ``groups`` are passed to :meth:`fit`) and the loss weights ``omega`` are
    scaled to mean one over samples (``sum_i s_i omega_{u(i)} = n``). With
    ``loss="logistic"`` the squared error is replaced by the multinomial
    cross-entropy ``-log softmax(W^T x_i + b)_{y_i}``.

    Parameters
    ----------
    weighting : "auto", str, dict or array-like, default="auto"
        ``"auto"``: chosen by leave-one-out with the loss (docs/selection.md; with
        an explicit ``loss``, ``"optimal"``). Or a name in
        :data:`lastlayer.weights.WEIGHTINGS` -- ``"none"``,
        ``"balanced"`` (ratio of priors), ``"sqrt"``, ``"effective_number"``,
        ``"upsample"``, ``"downsample"`` (averaged balanced subsets, as DFR),
        ``"optimal_theory"`` (closed form with an effective dimension, see
        ``dim``), ``"optimal"`` (data-driven: every class gets its target share of
        the degrees of freedom), ``"optimal_logistic"`` (the cross-entropy theory's
        ratio, two classes) or ``"tuned"`` (grid search on validation data or
        internal CV) -- or explicit weights: a dict ``{label: weight}`` (labels
        missing from it weigh 1) or an array in ``classes_`` (or ``groups_``) order.
    loss : {"auto", "square", "logistic"}, default="auto"
        ``"auto"``: square or cross-entropy, with the weights and alpha, kept by
        the best leave-one-out estimate of ``metric`` among a few theory-guided
        candidates (``selection_``). With ``"logistic"``, the weights of the data-dependent schemes
        (``"optimal"``, ``optimal_theory`` with ``dim="df"``) come from the
        square-loss leverage rule at the square-loss leave-one-out alpha (for
        non-separable data the weights act through a similar fixed point,
        docs/theory.md section 7); alpha itself is then chosen for the logistic fit.
    alpha : "auto" or float >= 0, default="auto"
        Ridge of the objective above. ``"auto"`` chooses it from the retraining data
        alone, on a grid scaled by the largest eigenvalue of the feature covariance:
        exact leave-one-out for square loss (generalised cross-validation from the
        sufficient statistics when ``n > 10 d``, where the two agree to O(d/n)
        and GCV needs no extra pass over the rows), approximate leave-one-out
        cross-entropy for logistic loss. Weights and alpha are chosen in two
        alternating rounds (alpha for the weights, weights for the alpha).
    target : dict or array-like, default=None
        Target mixture over classes (or groups), normalised to sum to one; default uniform.
    metric : {"worst", "balanced", "target"}, default="worst"
        What the selection maximises: the worst unit's, the mean or the
        ``target``-weighted leave-one-out accuracy.
    dim : {"pca99", "participation_ratio", "df", "d"} or float, default="pca99"
        Effective dimension for ``weighting="optimal_theory"``.
    max_leverage : float in (0, 1), default=0.95
        Infeasible regime (some class can not carry its share of the degrees of
        freedom, ``n_c <= df p*_c``): the most constrained class is given this
        average leverage instead of an infinite weight (``feasible_`` is False).
    n_subsets : int, default=10
        Subsets averaged by ``weighting="downsample"``.
    cv : int, CV splitter or iterable of (train, test) index arrays, default=3
        CV of ``weighting="tuned"`` without validation data: an int of stratified folds,
        or a splitter (given ``groups``) or splits used as given (``check_cv``).
    solver : {"auto", "primal", "dual"}, default="auto"
        Square loss: ``"primal"`` solves from per-class sufficient statistics
        (``d x d``), ``"dual"`` in the ``n x n`` kernel; ``"auto"`` takes the smaller.
    random_state : int, Generator or None, default=None
        Seeds the subsets of ``"downsample"`` and the folds of ``"tuned"``.
    device : str or None, default=None
        Where the sufficient statistics (the ``O(n d^2)`` part of a square-loss
        fit) are computed: None with NumPy, or a torch device such as ``"cuda"``
        (float64 on the device; needs ``lastlayer[torch]``). A CUDA device that is
        not available raises a RuntimeError.
    precision : {"auto", "float64", "float32"}, default="auto"
        Precision of the Gram products in the sufficient statistics of a
        square-loss fit on the CPU (in memory, streamed from files, or dask).
        ``"float32"`` shifts the rows by a centre and multiplies in float32 with
        float64 accumulation (about twice as fast, no float64 copy of float32
        features); the layer agrees with the float64 fit to about ``1e-7`` times
        the condition number of the ridge system. ``"auto"``: float32 for float32
        features (as stored, for files), else float64 (always for cross-entropy).
    verbose : bool or int, default=0
        ``>= 1``: a timed line per phase of :meth:`fit` (statistics, alpha, weights,
        layer) on stderr. Errors and warnings: docs/cli.md, "Errors and warnings".

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    class_weight_ : ndarray of shape (n_classes,)
        Loss weight per class in ``classes_`` order (with groups: the sample-weighted
        mean weight of the class's samples).
    group_weight_ : ndarray of shape (n_groups,)
        Loss weight per group in ``groups_`` order (only when fitted with groups).
    groups_ : ndarray of shape (n_groups,)
    alpha_ : float
    df_ : float
        Trace of the weighted hat matrix of the square-loss fit (intercept included).
    effective_dim_ : float
        Principal components holding 99% of the feature variance.
    feasible_ : bool
    solver_, precision_ : str
        Solver of the full fit; precision the statistics were accumulated in.
    weighting_info_ : dict
    loss_, weighting_ : str
        The loss and weighting fitted (``"none+logit"``: post-hoc logit adjustment).
    selection_ : list of dict
        Every candidate: ``candidate``, ``loss``, ``alpha``, ``estimate``,
        ``loo_accuracy`` (per unit), ``logit_adjustment``, ``kept``.
    loo_class_accuracy_, loo_class_accuracy_se_ : ndarray of shape (n_units,)
        Leave-one-out accuracy of the fitted layer per class (per group when fitted
        with groups) and its binomial standard error (in memory, no subsets).
    plan_ : dict
        Every "auto" resolved (``Plan`` in ``lastlayer/_fit.py``), with the candidates.
    n_features_in_ : int
    """

    def __init__(self, weighting="auto", *, loss="auto", alpha="auto", target=None,
                 dim="pca99", max_leverage=0.95, n_subsets=10, cv=3, solver="auto",
                 random_state=None, device=None, precision="auto", metric="worst",
                 verbose=0):
        self.weighting = weighting
        self.loss = loss
        self.alpha = alpha
        self.target = target
        self.dim = dim
        self.max_leverage = max_leverage
        self.n_subsets = n_subsets
        self.cv = cv
        self.solver = solver
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.metric = metric
        self.verbose = verbose

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None, groups=None, sample_weight=None, X_val=None, y_val=None,
            groups_val=None):
        """Choose the loss weights (and alpha) and fit the layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or out-of-core features
            Penultimate-layer features of the retraining set. Also accepted, and
            fitted from sufficient statistics in bounded memory (square loss,
            weightings that need no row subsets): a dask array (computed with dask,
            under a ``dask.distributed`` client if one is active), a
            :class:`lastlayer.sources.FeatureSource` (e.g. ``as_source(memmap,
            y=y)``), the path of an ``.npy`` file or of a directory of ``.npz`` /
            ``.parquet`` shards, or a callable returning an iterable of ``(X, y)``
            chunks (called once per pass).
        y : array-like of shape (n_samples,)
            Labels; may be omitted for sources that carry them (shards, chunks).
        groups : array-like of shape (n_samples,), optional
            Group labels: weights are then per group, with ``target`` over groups
            (worst-group setting of DFR).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative frequency weights on each row's loss (2 counts as two rows).
        X_val, y_val, groups_val : optional
            Validation data, used only by ``weighting="tuned"``.

        Returns
        -------
        self
        """
        params = self.get_params()
        check_params(type(self).__name__, params, _PARAMETERS)
        from .sources import is_out_of_core

        if is_out_of_core(X):
            data, y, groups, kind = self._out_of_core_data(X, y, groups)
            n, d, dtype = data.n_samples, data.n_features, data.dtype
            data = Data(source=data, dask_X=X if kind == "dask" else None)
        else:
            X, y = check_estimator_rows(self, X, y, ensure_min_samples=2)
            (n, d), dtype, kind = X.shape, X.dtype, "memory"
        design = self._design(y, groups, sample_weight, n)
        validation = None
        if X_val is not None and scheme_name(self.weighting) == "tuned":
            validation = Validation(*check_validation_rows(self, X_val, y_val, groups_val,
                                                           design.groups))
        params = check_design(design, params, X, y, groups, kind)
        plan = resolve(params, n, d, dtype, kind, design, validation is not None)
        if kind == "memory":  # float32 features stay float32 only for float32 statistics
            check_values(X, params, plan)
            data = Data(X=X if plan.precision == "float32" else
                             np.asarray(X, dtype=np.float64))
        stats = statistics(data, design, plan, self.device, log := PhaseLog(self.verbose))
        kept, evaluations = fit_selected(params, data, design, plan, stats,
                                         self.random_state, validation, log)
        self._set_selection(kept, evaluations, design)
        return self._set_fitted(plan, kept.choice, kept.layer, design)

    def _out_of_core_data(self, X, y, groups):
        """The source of out-of-core ``X`` and its labels; refuse what needs rows."""
        from .sources import DaskSource, as_source

        name = type(self).__name__
        if self.loss == "logistic":
            raise ValueError(f"{name} fits out-of-core data with loss='square' only; "
                             f"got loss={self.loss!r}. Load the data in memory for logistic.")
        if (isinstance(self.weighting, str) and self.weighting in ("downsample", "tuned")
                or self.solver == "dual"):
            raise ValueError(f"{name}: weighting={self.weighting!r} / solver={self.solver!r} "
                             "need the rows in memory; out-of-core data supports the "
                             "weightings that work from sufficient statistics.")
        src = as_source(X, y=y, groups=groups)
        y, groups = src.labels()
        if y is None:
            raise ValueError(f"{name}.fit needs labels: pass y, or a source that carries them.")
        n, d = src.n_samples, src.n_features
        if d + 1 > n:
            raise ValueError(f"Out-of-core fitting needs more rows than features; got "
                             f"n={n}, d={d}. Fit in memory (the dual solver) instead.")
        self.n_features_in_ = d
        self.__dict__.pop("feature_names_in_", None)
        return src, y, groups, "dask" if isinstance(src, DaskSource) else "stream"

    def _design(self, y, groups, sample_weight, n):
        y = check_fit_labels(y, "y", n)
        check_classification_targets(y)
        sw = check_fit_sample_weight(sample_weight, n)
        g = None if groups is None else check_fit_labels(groups, "groups", n)
        design = prepare(y, g, sw, self.target)
        self.classes_ = design.classes
        if design.groups is not None:
            self.groups_ = design.groups
        else:
            self.__dict__.pop("groups_", None)
        return design

    def _set_selection(self, kept, evaluations, design):
        """``loss_``, ``weighting_``, ``selection_`` and the leave-one-out estimates."""
        for name, value in selection_attributes(kept, evaluations).items():
            if value is None:
                self.__dict__.pop(name, None)
            else:
                setattr(self, name, value)

    def _set_fitted(self, plan, choice, layer, design):
        weighting = choice.weighting
        self.plan_ = plan.as_dict()
        self.precision_, self.solver_ = plan.precision, plan.solver
        self.effective_dim_ = choice.effective_dim
        self.alpha_, self.df_ = layer.alpha, layer.df
        self.feasible_ = bool(weighting.feasible)
        self.weighting_info_ = dict(weighting.info)
        if weighting.df is not None:
            self.weighting_info_.setdefault("df_used", float(weighting.df))
        self.class_weight_ = layer.class_weight
        if design.groups is not None:
            self.group_weight_ = layer.unit_weight
        else:
            self.__dict__.pop("group_weight_", None)
        self.coef_, self.intercept_ = layer.coef, layer.intercept
        return self

    # ---------------------------------------------------------------- predict
    def decision_function(self, X):
        """Scores: shape (n_samples,) for two classes (positive = ``classes_[1]``),
        else (n_samples, n_classes)."""
        check_is_fitted(self)
        X = check_estimator_rows(self, X, dtype=np.float64, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if self.classes_.size == 2 else scores

    def predict(self, X):
        """Predicted class labels."""
        s = self.decision_function(X)
        idx = (s > 0).astype(int) if s.ndim == 1 else np.argmax(s, axis=1)
        return self.classes_[idx]

    def _has_proba(self):
        return getattr(self, "loss_", self.loss) == "logistic"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities (when the fitted loss ``loss_`` is cross-entropy)."""
        s = self.decision_function(X)
        if s.ndim == 1:
            s = np.c_[np.zeros_like(s), s]
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s)
        return p / p.sum(axis=1, keepdims=True)

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def report(self, X, y, groups=None):
        """Per-class (and per-group) accuracy report as a JSON-ready dict (labels unseen
        in training warn: UnseenLabelWarning)."""
        from .metrics import classification_report
        pred = self.predict(X)
        warn_unseen_labels(y, self.classes_)
        return classification_report(np.asarray(y), pred, groups=groups)
