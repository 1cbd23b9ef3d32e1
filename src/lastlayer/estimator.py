"""``LastLayerClassifier``: a scikit-learn classifier over the functional core."""

from __future__ import annotations

import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits

from . import solvers
from .dimension import SPECTRAL_DIMENSIONS
from .weights import (
    WEIGHTINGS,
    Weighting,
    WeightingProblem,
    compute_weighting,
    normalise_weights,
)

__all__ = ["LastLayerClassifier"]

_LOSSES = ("square", "logistic")
_SOLVERS = ("auto", "primal", "dual")
_PRECISIONS = ("auto", "float64", "float32")
_DIMS = ("pca99", "participation_ratio", "df", "d")
_SMALL_PROBLEM = 512
#: Statistics passes of at least this many multiply-adds (n d^2) use every BLAS thread.
_MULTITHREAD_FLOPS = 2**30
#: alpha="auto" searches ``lambda_max * ALPHA_GRID``, with ``lambda_max`` the largest
#: eigenvalue of the feature covariance, so the choice is invariant to feature scale.
ALPHA_GRID = np.logspace(-8, 1, 46)
#: Above this many rows per feature, alpha="auto" uses GCV from the sufficient
#: statistics instead of exact leave-one-out (which costs a pass over the rows).
GCV_ROWS_PER_FEATURE = 10


def _is_out_of_core(X):
    """Inputs fitted from sufficient statistics without loading all rows.

    Arrays (memory-mapped ones included) are fitted in memory; wrap a memmap in
    :func:`lastlayer.outofcore.as_source` (or pass its ``.npy`` path) to stream it.
    """
    if isinstance(X, (str, os.PathLike)) or callable(X):
        return True
    from .outofcore import FeatureSource, _is_dask_array
    return isinstance(X, FeatureSource) or _is_dask_array(X)


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x)


def _labels_1d(values, name, n):
    arr = column_or_1d(values, warn=True)
    if arr.shape[0] != n:
        raise ValueError(
            f"'{name}' has {arr.shape[0]} entries but X has {n} samples; they must match.")
    kinds = {type(v).__name__ for v in arr.tolist()} if arr.dtype == object else set()
    if len({"str" if k in ("str", "str_") else "num" for k in kinds}) > 1:
        raise ValueError(f"'{name}' mixes label types ({sorted(kinds)}); use one type.")
    return arr


class LastLayerClassifier(ClassifierMixin, BaseEstimator):
    r"""Retrain a last linear layer with loss weights chosen from the data.

    With square loss (the default, one-hot targets ``e_y``) the fitted layer solves

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
    weighting : str or dict or array-like, default="optimal"
        A name in :data:`lastlayer.weights.WEIGHTINGS` -- ``"none"``,
        ``"balanced"`` (ratio of priors), ``"sqrt"``, ``"effective_number"``,
        ``"upsample"``, ``"downsample"`` (averaged balanced subsets, as DFR),
        ``"optimal_theory"`` (closed form with an effective dimension, see
        ``dim``), ``"optimal"`` (data-driven: every class gets its target share of
        the degrees of freedom) or ``"tuned"`` (grid search on validation data or
        internal CV) -- or explicit weights: a dict ``{label: weight}`` (labels
        missing from it weigh 1) or an array in ``classes_`` (or ``groups_``) order.
    loss : {"square", "logistic"}, default="square"
        With ``"logistic"``, the weights of the data-dependent schemes
        (``"optimal"``, ``optimal_theory`` with ``dim="df"``) come from the
        square-loss leverage rule at the square-loss leave-one-out alpha (for
        non-separable data the weights act through a similar fixed point,
        theory.md section 7); alpha itself is then chosen for the logistic fit.
    alpha : "auto" or float >= 0, default="auto"
        Ridge of the objective above. ``"auto"`` chooses it from the retraining data
        alone, on a grid scaled by the largest eigenvalue of the feature covariance:
        exact leave-one-out for square loss (generalised cross-validation from the
        sufficient statistics when ``n > 10 d``, where the two agree to O(d/n)
        and GCV needs no extra pass over the rows), approximate leave-one-out
        cross-entropy for logistic loss. Weights and alpha are chosen in two
        alternating rounds (alpha for the weights, weights for the alpha).
    target : dict or array-like, default=None
        Target mixture over classes (or groups); default uniform (balanced).
    dim : {"pca99", "participation_ratio", "df", "d"} or float, default="pca99"
        Effective dimension for ``weighting="optimal_theory"``.
    max_leverage : float in (0, 1), default=0.95
        Infeasible regime (some class can not carry its share of the degrees of
        freedom, ``n_c <= df p*_c``): the most constrained class is given this
        average leverage instead of an infinite weight (``feasible_`` is False).
    n_subsets : int, default=10
        Subsets averaged by ``weighting="downsample"``.
    cv : int, default=3
        Folds of the internal cross-validation of ``weighting="tuned"`` when no
        validation data is passed to :meth:`fit`.
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
        Precision of the Gram products in the sufficient statistics of an
        in-memory square-loss fit on the CPU. ``"float32"`` shifts the rows by a
        centre and multiplies in float32 with float64 accumulation (about twice as
        fast, and no float64 copy of float32 features); the layer then agrees with
        the float64 fit to about ``1e-7`` times the condition number of the ridge
        system. ``"auto"``: float32 for float32 features (as networks emit them),
        float64 otherwise. Everything after the statistics runs in float64; logistic
        loss, ``device`` and out-of-core sources always use float64.

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
    solver_ : str
    precision_ : str
        Precision the statistics were accumulated in.
    weighting_info_ : dict
    n_features_in_ : int
    """

    def __init__(self, weighting="optimal", *, loss="square", alpha="auto", target=None,
                 dim="pca99", max_leverage=0.95, n_subsets=10, cv=3, solver="auto",
                 random_state=None, device=None, precision="auto"):
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

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        name = type(self).__name__
        w = self.weighting
        if isinstance(w, str):
            if w not in WEIGHTINGS:
                raise ValueError(
                    f"The 'weighting' parameter of {name} must be one of {sorted(WEIGHTINGS)}, "
                    f"a dict of per-class weights or an array of them. Got {w!r} instead.")
        elif not isinstance(w, dict) and np.ndim(w) != 1:
            raise ValueError(
                f"The 'weighting' parameter of {name} must be one of {sorted(WEIGHTINGS)}, "
                f"a dict of per-class weights or an array of them. Got {w!r} instead.")
        if self.loss not in _LOSSES:
            raise ValueError(f"The 'loss' parameter of {name} must be one of {list(_LOSSES)}. "
                             f"Got {self.loss!r} instead.")
        if not (self.alpha == "auto" if isinstance(self.alpha, str)
                else _is_real(self.alpha) and self.alpha >= 0):
            raise ValueError(f"The 'alpha' parameter of {name} must be 'auto' or a float in "
                             f"the range [0, inf). Got {self.alpha!r} instead.")
        if not (self.dim in _DIMS if isinstance(self.dim, str)
                else _is_real(self.dim) and self.dim >= 0):
            raise ValueError(f"The 'dim' parameter of {name} must be one of {list(_DIMS)} or "
                             f"a float in the range [0, inf). Got {self.dim!r} instead.")
        if not (_is_real(self.max_leverage) and 0 < self.max_leverage < 1):
            raise ValueError(f"The 'max_leverage' parameter of {name} must be a float in the "
                             f"range (0, 1). Got {self.max_leverage!r} instead.")
        for p, lo in (("n_subsets", 1), ("cv", 2)):
            v = getattr(self, p)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < lo:
                raise ValueError(f"The '{p}' parameter of {name} must be an int in the range "
                                 f"[{lo}, inf). Got {v!r} instead.")
        if self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"The 'device' parameter of {name} must be None or a torch device "
                             f"string such as 'cuda'. Got {self.device!r} instead.")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"The 'precision' parameter of {name} must be one of "
                             f"{list(_PRECISIONS)}. Got {self.precision!r} instead.")
        if self.solver not in _SOLVERS:
            raise ValueError(f"The 'solver' parameter of {name} must be one of "
                             f"{list(_SOLVERS)}. Got {self.solver!r} instead.")

    def _unit_vector(self, spec, labels, what, default):
        """Map a dict keyed by label, or an array in label order, to an array."""
        U = len(labels)
        if spec is None:
            return np.full(U, default, dtype=float)
        if isinstance(spec, dict):
            known = {lab.item() if hasattr(lab, "item") else lab: i for i, lab in enumerate(labels)}
            unknown = [k for k in spec if k not in known]
            if unknown:
                raise ValueError(f"The '{what}' dict names labels not in the data: {unknown!r}. "
                                 f"Known labels: {list(known)!r}.")
            out = np.full(U, default, dtype=float)
            for k, v in spec.items():
                out[known[k]] = v
        else:
            out = np.asarray(spec, dtype=float).ravel()
            if out.size != U:
                raise ValueError(f"The '{what}' parameter must have {U} entries (one per label "
                                 f"{list(labels)!r}). Got {out.size} entries instead.")
        if not np.all(np.isfinite(out)):
            raise ValueError(f"The '{what}' parameter must be finite. Got {out.tolist()!r}.")
        return out

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
            :class:`lastlayer.outofcore.FeatureSource` (e.g. ``as_source(memmap,
            y=y)``), the path of an ``.npy`` file or of a directory of ``.npz`` /
            ``.parquet`` shards, or a callable returning an iterable of ``(X, y)``
            chunks (called once per pass).
        y : array-like of shape (n_samples,)
            Labels; may be omitted for sources that carry them (shards, chunks).
        groups : array-like of shape (n_samples,), optional
            Group labels: weights are then per group, with ``target`` over groups
            (worst-group setting of DFR).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative; multiplies the loss weight of each sample.
        X_val, y_val, groups_val : optional
            Validation data, used only by ``weighting="tuned"``.

        Returns
        -------
        self
        """
        self._check_params()
        if _is_out_of_core(X):
            try:
                return self._fit_out_of_core(X, y, groups, sample_weight)
            finally:
                self.__dict__.pop("_fit_ctx", None)
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), ensure_min_samples=2,
                             y_numeric=False)
        self.precision_ = (self.precision if self.precision != "auto" else
                           "float32" if X.dtype == np.float32 else "float64")
        if self.precision_ == "float64" or self.device is not None or self.loss != "square":
            self.precision_ = "float64"
            X = np.asarray(X, dtype=np.float64)
        try:
            return self._fit(X, y, groups, sample_weight, X_val, y_val, groups_val)
        finally:
            self.__dict__.pop("_fit_ctx", None)  # drop the references to X

    def _fit(self, X, y, groups, sample_weight, X_val, y_val, groups_val):
        n, d = X.shape
        lab = self._prepare_labels(y, groups, sample_weight, n)
        # The O(n d^2) statistics use every BLAS thread unless the pass is short; the
        # rest of a small problem runs on one thread: faster, and much faster when
        # other processes share the cores (oversubscribed OpenBLAS threads spin).
        with threadpool_limits(limits=1 if n * d * d < _MULTITHREAD_FLOPS else None,
                               user_api="blas"):
            stats = self._statistics(X, lab)
        if self._all_constant(X, stats):
            raise ValueError("Every feature of X is constant: there is nothing to fit.")
        self.solver_ = ("dual" if d + 1 > n else "primal") if self.solver == "auto" else self.solver
        self._fit_ctx = dict(X=X, source=None, cell_idx=lab["cell_idx"], sw=lab["sw"],
                             stats=stats, targets=lab["cell_targets"])
        with threadpool_limits(limits=1 if min(n, d) <= _SMALL_PROBLEM else None,
                               user_api="blas"):
            return self._fit_core(lab, stats, self._spectrum(X, stats), X_val, y_val,
                                  groups_val)

    @staticmethod
    def _all_constant(X, stats):
        """Every column constant; the exact check runs only when the statistics say
        every variance is at round-off level."""
        N = stats.weight_sums.sum()
        mean = stats.sums.sum(axis=0) / N
        var = np.einsum("jii->i", stats.grams) / N - mean**2
        if np.any(var > 1e-8 * (mean**2 + np.finfo(float).tiny)):
            return False
        return bool(np.all(np.ptp(X, axis=0) == 0))

    def _fit_out_of_core(self, X, y, groups, sample_weight):
        """Fit from a FeatureSource, dask array, memmap, ``.npy``/shard path or chunk
        callable: sufficient statistics in one pass, leave-one-out in one more."""
        from . import outofcore
        name = type(self).__name__
        if self.loss != "square":
            raise ValueError(f"{name} fits out-of-core data with loss='square' only; "
                             f"got loss={self.loss!r}. Load the data in memory for logistic.")
        if (isinstance(self.weighting, str) and self.weighting in ("downsample", "tuned")
                or self.solver == "dual"):
            raise ValueError(f"{name}: weighting={self.weighting!r} / solver={self.solver!r} "
                             "need the rows in memory; out-of-core data supports the "
                             "weightings that work from sufficient statistics.")
        self.precision_ = "float64"
        src = outofcore.as_source(X, y=y, groups=groups)
        y, groups = src.labels()
        n, d = src.n_samples, src.n_features
        if y is None:
            raise ValueError(f"{name}.fit needs labels: pass y, or a source that carries them.")
        lab = self._prepare_labels(y, groups, sample_weight, n)
        if d + 1 > n:
            raise ValueError(f"Out-of-core fitting needs more rows than features; got "
                             f"n={n}, d={d}. Fit in memory (the dual solver) instead.")
        self.n_features_in_ = d
        self.__dict__.pop("feature_names_in_", None)
        if isinstance(src, outofcore.DaskSource):
            stats = outofcore.dask_statistics(X, lab["cell_idx"], lab["J"], lab["sw"])
        elif self.device is not None:
            stats = outofcore.torch_statistics(src, lab["cell_idx"], lab["J"], lab["sw"],
                                               device=self.device)
        else:
            stats = outofcore.streaming_statistics(src, lab["cell_idx"], lab["J"], lab["sw"])
        spectrum = self._spectrum(None, stats)
        if spectrum.max() <= 0:
            raise ValueError("Every feature of X is constant: there is nothing to fit.")
        self.solver_ = "primal"
        self._fit_ctx = dict(X=None, source=src, dask_X=X if isinstance(
            src, outofcore.DaskSource) else None, cell_idx=lab["cell_idx"], sw=lab["sw"],
            stats=stats, targets=lab["cell_targets"])
        return self._fit_core(lab, stats, spectrum, None, None, None)

    def _statistics(self, X, lab):
        if self.device is None:
            return solvers.sufficient_statistics(X, lab["cell_idx"], lab["J"], lab["sw"],
                                                 precision=self.precision_)
        from .outofcore import torch_statistics
        return torch_statistics(X, lab["cell_idx"], lab["J"], lab["sw"], device=self.device)

    def _prepare_labels(self, y, groups, sample_weight, n):
        """Classes, cells (solver) and units (weighting) from the labels."""
        y = _labels_1d(y, "y", n)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        K = self.classes_.size
        if K < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"y has 1 class: {self.classes_.tolist()!r}.")
        sw = self._sample_weight(sample_weight, n)
        mass = np.bincount(y_idx, weights=sw, minlength=K)
        if np.any(mass <= 0):
            empty = self.classes_[mass <= 0].tolist()
            raise ValueError(f"Class(es) {empty!r} have no samples with positive weight; every "
                             f"class needs at least one sample.")
        if groups is not None:
            g = _labels_1d(groups, "groups", n)
            self.groups_, g_idx = np.unique(g, return_inverse=True)
            G = self.groups_.size
            keys, cell_idx = np.unique(y_idx * G + g_idx, return_inverse=True)
            cell_class, unit_of_cell, unit_labels = keys // G, keys % G, g_idx
            unit_names = self.groups_
        else:
            self.__dict__.pop("groups_", None)
            cell_idx, cell_class = y_idx, np.arange(K)
            unit_of_cell, unit_labels, unit_names = np.arange(K), y_idx, self.classes_
        U = unit_names.size
        unit_counts = np.bincount(unit_labels, weights=sw, minlength=U)
        if np.any(unit_counts <= 0):
            raise ValueError(f"Group(s) {unit_names[unit_counts <= 0].tolist()!r} have no "
                             f"samples with positive weight.")
        target = self._unit_vector(self.target, unit_names, "target", 1.0 / U)
        if np.any(target < 0) or target.sum() <= 0:
            raise ValueError(f"The 'target' parameter must be non-negative with a positive sum. "
                             f"Got {target.tolist()!r} instead.")
        return dict(y_idx=y_idx, K=K, sw=sw, mass=mass, cell_idx=cell_idx,
                    cell_class=cell_class, unit_of_cell=unit_of_cell, unit_labels=unit_labels,
                    unit_names=unit_names, U=U, unit_counts=unit_counts,
                    target=target / target.sum(), cell_targets=np.eye(K)[cell_class],
                    J=cell_class.size, grouped=groups is not None)

    def _fit_core(self, lab, stats, spectrum, X_val, y_val, groups_val):
        """Choose weights and alpha, fit the layer; shared by in-memory and streaming."""
        X = self._fit_ctx["X"]
        d = stats.sums.shape[1]
        K, J, U = lab["K"], lab["J"], lab["U"]
        y_idx, sw, mass = lab["y_idx"], lab["sw"], lab["mass"]
        cell_idx, cell_class = lab["cell_idx"], lab["cell_class"]
        unit_of_cell, unit_labels = lab["unit_of_cell"], lab["unit_labels"]
        unit_names, unit_counts, target = lab["unit_names"], lab["unit_counts"], lab["target"]
        rng = np.random.default_rng(self.random_state if not isinstance(
            self.random_state, np.random.RandomState) else self.random_state.randint(2**31))

        self.effective_dim_ = float(SPECTRAL_DIMENSIONS["pca99"](spectrum))
        self._alphas = max(float(spectrum.max()), np.finfo(float).tiny) * ALPHA_GRID
        problem = WeightingProblem(unit_counts=unit_counts, target=target,
                                   unit_of_cell=unit_of_cell, n_features=d,
                                   X=X, unit_labels=unit_labels, spectrum=spectrum,
                                   stats=stats, cell_targets=lab["cell_targets"],
                                   random_state=rng)

        alpha_fixed = None if self.alpha == "auto" else float(self.alpha)
        problem.alpha = 0.0 if alpha_fixed is None else alpha_fixed

        def leverage(cell_w):  # at the alpha the weights are being chosen for
            sol = self._ridge(cell_w, problem.alpha)
            return sol.cell_leverage, sol.df

        problem.leverage = leverage

        explicit = not isinstance(self.weighting, str)
        if explicit:
            unit_w = self._unit_vector(self.weighting, unit_names, "weighting", 1.0)
            if np.any(unit_w <= 0):
                raise ValueError(f"The 'weighting' weights must be positive. Got "
                                 f"{unit_w.tolist()!r} instead.")
        scheme = None if explicit else self.weighting
        options = self._scheme_options(scheme)
        if scheme == "tuned":
            problem.score = self._make_score(X_val, y_val, groups_val, unit_of_cell, cell_class,
                                             cell_idx, unit_labels, rng)

        def choose_weights(alpha):
            problem.alpha = alpha
            if explicit:
                return Weighting(normalise_weights(unit_w, unit_counts))
            return compute_weighting(scheme, problem, **options)

        # Square-loss alpha: leave-one-out (GCV when n > 10 d), alternating once with
        # the weights.
        if alpha_fixed is not None:
            alpha_sq = alpha_fixed
            weighting = choose_weights(alpha_sq)
        elif scheme == "tuned":
            # The expensive baseline searches alpha jointly with the weights.
            weighting = compute_weighting(scheme, problem, alphas=self._alphas[::5], **options)
            alpha_sq = weighting.alpha
        else:
            start = (np.ones(U) if scheme == "none"
                     else normalise_weights(target / unit_counts, unit_counts))
            alpha_sq = self._loo_alpha(start[unit_of_cell])
            weighting = choose_weights(alpha_sq)
            if not np.allclose(weighting.weights, start, rtol=1e-9):
                alpha2 = self._loo_alpha(weighting.weights[unit_of_cell])
                if alpha2 != alpha_sq:
                    alpha_sq = alpha2
                    weighting = choose_weights(alpha_sq)
            if scheme == "optimal" and weighting.info.get("capped"):
                alpha_sq, weighting = self._raise_alpha_until_feasible(alpha_sq, weighting,
                                                                      choose_weights)
        unit_w = weighting.weights
        cell_w = unit_w[unit_of_cell]

        if self.loss == "square":
            self.alpha_ = float(alpha_sq)
            if weighting.subsets:
                W, b = self._average(
                    [self._ridge(np.ones(J), self.alpha_, rows) for rows in weighting.subsets])
                sol = self._ridge(cell_w, self.alpha_)
            else:
                sol = self._ridge(cell_w, self.alpha_)
                W, b = sol.coef, sol.intercept
        else:
            row_w = sw * cell_w[cell_idx]
            if alpha_fixed is not None:
                self.alpha_ = alpha_fixed
            elif weighting.alpha is not None and scheme == "tuned":
                self.alpha_ = float(weighting.alpha)
            else:
                self.alpha_ = float(solvers.logistic_alpha_alo(
                    X, y_idx, K, row_w, alphas=self._alphas[::3])[0])
            if weighting.subsets:
                fits = [solvers.solve_logistic(X[r], y_idx[r], K, sw[r], self.alpha_)
                        for r in weighting.subsets]
                W, b = self._average(fits)
            else:
                fit = solvers.solve_logistic(X, y_idx, K, row_w, self.alpha_)
                W, b = fit.coef, fit.intercept
            sol = self._ridge(cell_w, alpha_sq)
        self.df_ = float(sol.df)
        self.feasible_ = bool(weighting.feasible)
        self.weighting_info_ = dict(weighting.info)
        if weighting.df is not None:
            self.weighting_info_.setdefault("df_used", float(weighting.df))
        cls_mass = np.bincount(cell_class, weights=np.bincount(cell_idx, weights=sw,
                                                                minlength=J) * cell_w,
                               minlength=K)
        self.class_weight_ = cls_mass / mass
        if lab["grouped"]:
            self.group_weight_ = unit_w.copy()
        else:
            self.__dict__.pop("group_weight_", None)
        if K == 2:
            self.coef_ = (W[:, 1] - W[:, 0])[None, :]
            self.intercept_ = np.array([b[1] - b[0]])
        else:
            self.coef_ = np.ascontiguousarray(W.T)
            self.intercept_ = np.asarray(b, dtype=float).copy()
        return self

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _sample_weight(sample_weight, n):
        if sample_weight is None:
            return np.ones(n)
        sw = np.asarray(sample_weight, dtype=float)
        if sw.ndim == 0:
            sw = np.full(n, float(sw))
        sw = column_or_1d(sw)
        if sw.shape[0] != n:
            raise ValueError(f"sample_weight.shape == ({sw.shape[0]},), expected ({n},)!")
        if not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise ValueError("Negative values in data passed to `sample_weight`: sample "
                             "weights must be finite and non-negative.")
        if sw.sum() <= 0:
            raise ValueError("The sample weights sum to zero: nothing to fit.")
        return sw

    def _scheme_options(self, scheme):
        if scheme in ("optimal",):
            return {"max_leverage": self.max_leverage}
        if scheme == "optimal_theory":
            return {"dim": self.dim, "max_leverage": self.max_leverage}
        if scheme == "downsample":
            return {"n_subsets": self.n_subsets}
        return {}

    @staticmethod
    def _spectrum(X, stats):
        """Eigenvalues of the (sample-weighted) feature covariance."""
        if X is not None and X.shape[1] > X.shape[0]:
            n = X.shape[0]
            Xc = X - X.mean(axis=0, dtype=np.float64)
            return np.linalg.eigvalsh(Xc @ Xc.T) / n
        N = stats.weight_sums.sum()
        mean = stats.sums.sum(axis=0) / N
        cov = stats.grams.sum(axis=0) / N - np.outer(mean, mean)
        return np.linalg.eigvalsh(cov)

    def _ridge(self, cell_w, alpha, rows=None):
        c = self._fit_ctx
        if rows is None:
            X, cells, sw, stats = c["X"], c["cell_idx"], c["sw"], c["stats"]
        else:
            X, cells, sw = c["X"][rows], c["cell_idx"][rows], c["sw"][rows]
            stats = None
        dual = self.solver_ == "dual" or (rows is not None and X.shape[1] + 1 > X.shape[0]
                                          and self.solver == "auto")
        if dual:
            return solvers.solve_ridge_dual(X, cells, cell_w, alpha, c["targets"], sw)
        if stats is None:
            stats = solvers.sufficient_statistics(X, cells, c["targets"].shape[0], sw)
        return solvers.solve_ridge(stats, cell_w, alpha, c["targets"])

    def _loo_alpha(self, cell_w):
        c = self._fit_ctx
        stats = c["stats"]
        if stats.n_rows.sum() > GCV_ROWS_PER_FEATURE * stats.sums.shape[1]:
            # n >> d: leverages are O(d/n) and GCV, computed from the statistics
            # alone, equals leave-one-out to that order -- no extra pass over rows.
            from .paths import select_alpha_gcv
            return float(select_alpha_gcv(stats, cell_w, c["targets"], self._alphas)[0])
        if c["source"] is not None:  # out-of-core: one more pass over the rows
            from . import outofcore
            args = (c["stats"], c["cell_idx"], cell_w, c["targets"], self._alphas, c["sw"])
            out = (outofcore.dask_loo_path(c["dask_X"], *args) if c["dask_X"] is not None
                   else outofcore.streaming_loo_path(c["source"], *args))
            return float(self._alphas[solvers._argmin_prefer_last(out["loo_mse"],
                                                                  out["alphas"])])
        best, _ = solvers.select_alpha_loo(c["X"], c["cell_idx"], cell_w, c["targets"],
                                           alphas=self._alphas, sample_weight=c["sw"],
                                           stats=stats)
        return float(best)

    def _raise_alpha_until_feasible(self, alpha, weighting, choose_weights):
        """Smallest grid alpha above ``alpha`` whose equal-share weights need no cap.

        In the infeasible regime (a class cannot carry its share of df at the
        leave-one-out alpha) a larger ridge lowers df until equal shares fit, instead
        of leaning on a capped, very large weight. df falls as alpha grows, so the
        search bisects the grid. Keeps the capped solution if no alpha helps.
        """
        grid = self._alphas[self._alphas > alpha]
        lo, hi, best = 0, grid.size - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            wt = choose_weights(float(grid[mid]))
            if wt.info.get("capped"):
                lo = mid + 1
            else:
                best, hi = (float(grid[mid]), wt), mid - 1
        if best is None:
            return alpha, weighting
        best[1].info["alpha_raised_from"] = float(alpha)
        return best

    @staticmethod
    def _average(fits):
        W = np.mean([f.coef for f in fits], axis=0)
        b = np.mean([f.intercept for f in fits], axis=0)
        return W, b

    def _make_score(self, X_val, y_val, groups_val, unit_of_cell, cell_class, cell_idx,
                    unit_labels, rng):
        """Score hook for ``tuned``: worst-unit accuracy on validation data or CV."""
        c = self._fit_ctx
        K = self.classes_.size
        loss = self.loss

        def layer(cell_w, alpha, rows=None):
            if loss == "square":
                sol = self._ridge(cell_w, alpha, rows)
                return sol.coef, sol.intercept
            r = slice(None) if rows is None else rows
            y_idx = cell_class[c["cell_idx"][r]]
            fit = solvers.solve_logistic(c["X"][r], y_idx, K,
                                         c["sw"][r] * cell_w[c["cell_idx"][r]], alpha)
            return fit.coef, fit.intercept

        def worst(pred_idx, true_idx, units):
            return min(np.mean(pred_idx[units == u] == true_idx[units == u])
                       for u in np.unique(units))

        if X_val is not None:
            if y_val is None:
                raise ValueError("X_val was given without y_val.")
            Xv = validate_data(self, X_val, dtype=np.float64, reset=False)
            yv = _labels_1d(y_val, "y_val", Xv.shape[0])
            unknown = np.setdiff1d(yv, self.classes_)
            if unknown.size:
                raise ValueError(f"y_val has classes not seen in y: {unknown.tolist()!r}.")
            yv_idx = np.searchsorted(self.classes_, yv)
            if groups_val is not None:
                uv = np.searchsorted(self.groups_, _labels_1d(groups_val, "groups_val",
                                                              Xv.shape[0]))
            else:
                uv = yv_idx

            def score(unit_w, alpha):
                W, b = layer(unit_w[unit_of_cell], alpha)
                return worst(np.argmax(Xv @ W + b, axis=1), yv_idx, uv)
            return score

        # Internal stratified CV: folds dealt round-robin within each cell.
        n = c["X"].shape[0]
        fold = np.empty(n, dtype=int)
        for j in np.unique(cell_idx):
            rows = rng.permutation(np.flatnonzero(cell_idx == j))
            fold[rows] = np.arange(rows.size) % self.cv
        y_all = cell_class[cell_idx]

        def score(unit_w, alpha):
            pred = np.empty(n, dtype=int)
            for f in range(self.cv):
                test = fold == f
                W, b = layer(unit_w[unit_of_cell], alpha, np.flatnonzero(~test))
                pred[test] = np.argmax(c["X"][test] @ W + b, axis=1)
            return worst(pred, y_all, unit_labels)
        return score

    # ---------------------------------------------------------------- predict
    def decision_function(self, X):
        """Scores: shape (n_samples,) for two classes (positive = ``classes_[1]``),
        else (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if self.classes_.size == 2 else scores

    def predict(self, X):
        """Predicted class labels."""
        s = self.decision_function(X)
        idx = (s > 0).astype(int) if s.ndim == 1 else np.argmax(s, axis=1)
        return self.classes_[idx]

    def _has_proba(self):
        return self.loss == "logistic"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities (``loss="logistic"`` only)."""
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
        """Per-class (and per-group) accuracy report as a JSON-ready dict."""
        from .metrics import classification_report
        return classification_report(np.asarray(y), self.predict(X), groups=groups)
