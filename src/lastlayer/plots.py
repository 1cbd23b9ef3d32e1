"""Figures of the asymptotic theory (:mod:`lastlayer.theory`), optionally with simulation.

Every function is pure: it computes from the theory (and from simulation results you
pass in) and returns a new :class:`matplotlib.figure.Figure` drawn on the Agg canvas,
without touching pyplot's global state or the user's backend. Save with
:func:`save_figure`.

Needs the optional extra: ``pip install "lastlayer[plots]"``.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ._validation import check_int, check_real
from .theory import (
    binary_errors,
    downsample_errors,
    numerical_optimal_ratio,
    optimal_class_weights,
    optimal_weight_ratio,
)

__all__ = [
    "plot_accuracy_vs_ratio",
    "plot_compare",
    "plot_errors_vs_ratio",
    "plot_optimal_ratio_vs_dim",
    "plot_weighting_vs_downsampling",
    "plot_worst_vs_n",
    "save_figure",
]

_PLOTS_HINT = 'Install it with: pip install "lastlayer[plots]"'
# Nominal sample size used to turn (prior, d/n) into counts for optimal_class_weights
# when a ridge is present (the weight ratio depends on the ratios only).
_NOMINAL_N = 1_000_000


def _new_figure(figsize=(6.4, 4.4)):
    """A Figure on an Agg canvas (no pyplot, no global backend change)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "lastlayer.plots needs matplotlib, which is not installed. " + _PLOTS_HINT
        ) from err
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _equalising_ratio(minority_prior, dim_ratio, ridge):
    """Error-equalising weight ratio: closed form ridgeless, else optimal_class_weights.

    Returns ``(ratio, note)``; ``ratio`` is ``None`` when no finite ratio equalises
    the errors and ``note`` says why (or that the leverage cap was hit).
    """
    if ridge == 0.0:
        rho = optimal_weight_ratio(minority_prior, dim_ratio)
        if math.isinf(rho) or rho == 0.0:
            return None, "no finite equalising ratio (d/n >= 2 pi_min)"
        return rho, ""
    n_pos = max(1, round(minority_prior * _NOMINAL_N))
    ow = optimal_class_weights((n_pos, _NOMINAL_N - n_pos), dim_ratio * _NOMINAL_N,
                               ridge=ridge, fit_intercept=False)
    rho = float(ow.weights[0] / ow.weights[1])
    if not ow.feasible:
        return None, "no finite equalising ratio"
    note = " (leverage capped)" if getattr(ow, "capped", False) else ""
    return rho, note


def plot_errors_vs_ratio(minority_prior, dim_ratio, *, ridge=0.0, mean_norm=1.0, ratios=None,
                         simulation=None, mean_pos=None, mean_neg=None):
    """Per-class test error against the weight ratio ``rho = omega_+ / omega_-``.

    Theory curves (:func:`lastlayer.theory.binary_errors`, weights at mean one over
    samples) for the minority ("+") and majority ("-") class on a log ``rho`` axis,
    with vertical markers at the error-equalising ratio (closed form when
    ``ridge == 0``, :func:`lastlayer.theory.optimal_class_weights` otherwise), the
    theory's worst-class optimum (:func:`lastlayer.theory.numerical_optimal_ratio`)
    and the ratio of priors ``pi_- / pi_+``.

    Parameters
    ----------
    minority_prior : float in (0, 1)
        ``pi_+``.
    dim_ratio : float > 0
        ``delta = d / n``.
    ridge : float >= 0, default=0
    mean_norm : float, default=1
        Norm of antipodal means (ignored when ``mean_pos``/``mean_neg`` are given).
    ratios : array-like, optional
        Weight ratios at which to draw the theory (default: 240 log-spaced values
        covering the markers).
    simulation : dict of {float: SimulationResult}, optional
        Simulated per-class errors at some ratios (e.g. from
        :func:`lastlayer.theory.simulate_binary`), drawn as points with +-1 SE bars.
    mean_pos, mean_neg : array-like, optional
        Class means (as in :func:`lastlayer.theory.binary_errors`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    lam = check_real(ridge, "ridge", 0.0, None)
    means = dict(mean_norm=mean_norm, mean_pos=mean_pos, mean_neg=mean_neg)
    fig = _new_figure()
    ax = fig.add_subplot()

    prior_ratio = (1.0 - pi) / pi
    rho_eq, eq_note = _equalising_ratio(pi, delta, lam)
    best = numerical_optimal_ratio(pi, delta, ridge=lam, objective="worst", **means)
    marks = [prior_ratio, best["weight_ratio"]] + ([rho_eq] if rho_eq is not None else [])
    if ratios is None:
        extra = list(simulation) if simulation else []
        lo = min([0.5, *marks, *extra]) / 2.0
        hi = max([4.0 * prior_ratio, *marks, *extra]) * 2.0
        ratios = np.geomspace(lo, min(hi, 1e5), 240)
    ratios = np.asarray(ratios, dtype=float).ravel()
    if ratios.size == 0 or np.any(~np.isfinite(ratios)) or np.any(ratios <= 0):
        raise ValueError(
            "The 'ratios' parameter must be positive finite weight ratios. "
            f"Got {ratios.tolist()!r} instead.")
    preds = [binary_errors(pi, delta, weight_ratio=r, ridge=lam, **means) for r in ratios]
    e_pos = np.array([p.error_pos for p in preds])
    e_neg = np.array([p.error_neg for p in preds])
    l_pos, = ax.plot(ratios, e_pos, color="C3", label="minority (+), theory")
    l_neg, = ax.plot(ratios, e_neg, color="C0", label="majority (-), theory")

    if simulation:
        rs = np.array(sorted(simulation), dtype=float)
        res = [simulation[r] for r in sorted(simulation)]
        for c, line, name in ((0, l_pos, "minority"), (1, l_neg, "majority")):
            ax.errorbar(rs, [s.mean[c] for s in res], yerr=[s.sem[c] for s in res],
                        fmt="o", ms=4, capsize=2, color=line.get_color(),
                        label=f"{name}, simulation (±1 SE)")

    ax.axvline(prior_ratio, color="0.4", ls=":", label=f"ratio of priors ({prior_ratio:.3g})")
    if rho_eq is not None:
        ax.axvline(rho_eq, color="k", ls="--", label=f"equal errors ({rho_eq:.3g}){eq_note}")
    ax.axvline(best["weight_ratio"], color="C2", ls="-.",
               label=f"worst-class optimum ({best['weight_ratio']:.3g})")
    ax.set_xscale("log")
    ax.set_xlabel(r"weight ratio $\rho = \omega_+ / \omega_-$")
    ax.set_ylabel("test error")
    title = rf"$\pi_+$={pi:g}, d/n={delta:g}, $\lambda$={lam:g}"
    if rho_eq is None:
        title += f"\n{eq_note}"
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def plot_optimal_ratio_vs_dim(minority_priors, dim_ratios, *, ridge=0.0):
    """Error-equalising weight ratio against ``d / n``, one curve per minority prior.

    Solid: the optimal ratio (``(2 pi_- - delta) / (2 pi_+ - delta)`` when
    ``ridge == 0``, :func:`lastlayer.theory.optimal_class_weights` otherwise);
    dashed: the ratio of priors it tends to as ``delta -> 0``; dotted vertical line:
    the feasibility limit ``delta = 2 pi_+`` beyond which no finite weight
    equalises the errors (ridgeless).

    Parameters
    ----------
    minority_priors : array-like of floats in (0, 1/2)
    dim_ratios : array-like of floats > 0
    ridge : float >= 0, default=0

    Returns
    -------
    matplotlib.figure.Figure
    """
    priors = [check_real(p, "minority_priors", 0.0, 0.5, closed="neither")
              for p in np.atleast_1d(minority_priors)]
    deltas = np.array([check_real(d, "dim_ratios", 0.0, None, closed="neither")
                       for d in np.atleast_1d(dim_ratios)])
    lam = check_real(ridge, "ridge", 0.0, None)
    fig = _new_figure()
    ax = fig.add_subplot()
    for i, pi in enumerate(priors):
        color = f"C{i % 10}"
        rho = []
        for d in deltas:
            r, _ = _equalising_ratio(pi, float(d), lam)
            rho.append(np.nan if r is None else r)
        ax.plot(deltas, rho, color=color, label=rf"optimal, $\pi_+$={pi:g}")
        ax.axhline((1 - pi) / pi, color=color, ls="--", lw=1,
                   label=f"ratio of priors ({(1 - pi) / pi:.3g})")
        if lam == 0.0 and deltas.min() <= 2 * pi <= deltas.max():
            ax.axvline(2 * pi, color=color, ls=":", lw=1,
                       label=rf"limit d/n = 2$\pi_+$ = {2 * pi:g}")
    ax.set_yscale("log")
    ax.set_xlabel("d / n")
    ax.set_ylabel(r"weight ratio $\omega_+ / \omega_-$")
    ax.set_title(rf"Error-equalising weight ratio ($\lambda$={lam:g})")
    ax.legend(fontsize="x-small", ncol=2 if len(priors) > 2 else 1)
    return fig


_METHODS = ("optimal weighting", "ratio of priors", "no weighting", "downsampling")


def _worst_theory(method, pi, delta, lam, means):
    if method == "optimal weighting":
        return numerical_optimal_ratio(pi, delta, ridge=lam, objective="worst",
                                       **means)["error"]
    if method == "ratio of priors":
        return binary_errors(pi, delta, weight_ratio=(1 - pi) / pi, ridge=lam,
                             **means).worst_class_error
    if method == "no weighting":
        return binary_errors(pi, delta, weight_ratio=1.0, ridge=lam, **means).worst_class_error
    return downsample_errors(pi, delta, ridge=lam, **means).worst_class_error


def plot_weighting_vs_downsampling(minority_prior, dim, ns, *, ridge=0.0, mean_norm=1.0,
                                   simulation=None, mean_pos=None, mean_neg=None):
    """Worst-class error against the sample size ``n`` at fixed dimension ``d``.

    Theory curves (``delta = d / n``) for: the theory's worst-class optimal
    weighting (:func:`lastlayer.theory.numerical_optimal_ratio`), the ratio of
    priors, no weighting, and downsampling both classes to ``n_+``
    (:func:`lastlayer.theory.downsample_errors`). Downsampling peaks at
    ``2 n_+ = d``, the interpolation threshold of the balanced subset (error 1/2
    there, ridgeless).

    Parameters
    ----------
    minority_prior : float in (0, 1)
    dim : int >= 1
        Feature dimension ``d``.
    ns : array-like of int
        Retraining sample sizes.
    ridge : float >= 0, default=0
    mean_norm : float, default=1
    simulation : dict of {str: dict of {int: SimulationResult}}, optional
        Per method name (one of the four above), simulated results by ``n``. Drawn
        as the larger of the two per-class mean errors with that class's standard
        error (the mean over repeats of the per-repeat maximum would be biased
        upwards where the two errors are close).
    mean_pos, mean_neg : array-like, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    d = check_int(dim, "dim", 1)
    lam = check_real(ridge, "ridge", 0.0, None)
    ns = np.array([check_int(v, "ns", 2) for v in np.atleast_1d(ns).tolist()])
    means = dict(mean_norm=mean_norm, mean_pos=mean_pos, mean_neg=mean_neg)
    if simulation:
        unknown = sorted(set(simulation) - set(_METHODS))
        if unknown:
            raise ValueError(
                f"The 'simulation' parameter keys must be among {list(_METHODS)}. "
                f"Got {unknown!r} instead.")
    fig = _new_figure()
    ax = fig.add_subplot()
    for i, method in enumerate(_METHODS):
        color = f"C{i}"
        worst = [_worst_theory(method, pi, d / n, lam, means) for n in ns]
        ax.plot(ns, worst, color=color, label=f"{method}, theory")
        sims = (simulation or {}).get(method)
        if sims:
            xs = np.array(sorted(sims))
            ys, es = [], []
            for n in xs:
                s = sims[n]
                c = int(np.argmax(s.mean))
                ys.append(s.mean[c])
                es.append(s.sem[c])
            ax.errorbar(xs, ys, yerr=es, fmt="o", ms=4, capsize=2, color=color,
                        label=f"{method}, simulation (±1 SE)")
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    lo, hi = float(ns.min()), float(ns.max())
    nice = [m * 10**e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1)
            for m in (1, 2, 5)]
    ticks = [t for t in nice if lo <= t <= hi]
    if len(ticks) >= 2:
        ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("retraining samples n")
    ax.set_ylabel("worst-class test error")
    ax.set_title(rf"d={d}, $\pi_+$={pi:g}, $\lambda$={lam:g}")
    ax.legend(fontsize="small")
    return fig


def save_figure(fig, path, **savefig_kwargs):
    """Write ``fig`` to ``path`` atomically (:func:`lastlayer.io.atomic_write_bytes`),
    so readers never see a half-written image.

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``, ...; default PNG).
    Missing parent folders are created. On any error the target is left untouched.
    Extra keyword arguments go to :meth:`matplotlib.figure.Figure.savefig`.
    Returns ``path``.
    """
    import io as _io

    from .io import atomic_write_bytes

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    buf = _io.BytesIO()
    fig.savefig(buf, format=fmt, **savefig_kwargs)
    atomic_write_bytes(path, buf.getvalue())
    return path


# ----------------------------------------------------------- experiments on data


def plot_worst_vs_n(summary, ns, methods, *, title=None, ylabel="worst-class test accuracy"):
    """Worst-class accuracy against the retraining-set size, one line per method
    (:func:`plot_methods_vs_n` with no highlighted method).

    Parameters
    ----------
    summary : dict
        ``{(n, method): (mean, sem, count)}`` as from :func:`lastlayer.demo.summarise`.
    ns : sequence of int
    methods : sequence of str
    """
    return plot_methods_vs_n(summary, ns, methods, title=title, ylabel=ylabel, highlight=())


def plot_accuracy_vs_ratio(sweep, marks=None, *, title=None):
    """Per-class test accuracy against the loss-weight ratio (minority / majority).

    Parameters
    ----------
    sweep : list of dict
        Rows with ``ratio``, ``minority``, ``majority`` (one per repeat and ratio),
        as from :func:`lastlayer.demo.ratio_sweep`.
    marks : dict, optional
        ``{label: ratio}`` drawn as vertical lines (e.g. the ratio of priors and the
        chosen optimum).
    """
    ratios = np.array(sorted({r["ratio"] for r in sweep}))
    fig = _new_figure()
    ax = fig.add_subplot()
    for key, style in (("minority", "-o"), ("majority", "-s")):
        vals = [[r[key] for r in sweep if r["ratio"] == q] for q in ratios]
        mean = np.array([np.mean(v) for v in vals])
        sem = np.array([np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
                        for v in vals])
        ax.errorbar(ratios, mean, yerr=sem, fmt=style, capsize=3, ms=4,
                    label=f"{key} class")
    worst = np.array([np.mean([min(r["minority"], r["majority"]) for r in sweep
                               if r["ratio"] == q]) for q in ratios])
    ax.plot(ratios, worst, "k:", label="worst class (mean)")
    for (label, value), color in zip((marks or {}).items(), ("C2", "C3", "C4", "C5")):
        if value is not None and np.isfinite(value):
            ax.axvline(value, color=color, ls="--", lw=1.2, label=f"{label}: {value:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("loss-weight ratio (minority / majority)")
    ax.set_ylabel("test accuracy (mean ± SE)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def plot_compare(summary, labels, *, title=None):
    """Per-class test accuracy of each weighting (bars, mean ± SE).

    ``summary`` is the ``weightings`` object of ``lastlayer compare --json``.
    """
    names = list(summary)
    K = len(labels)
    fig = _new_figure(figsize=(max(6.4, 1.2 * len(names) + 2), 4.4))
    ax = fig.add_subplot()
    width = 0.8 / K
    x = np.arange(len(names))
    for k, lab in enumerate(labels):
        mean = [summary[m]["per_class_accuracy_mean"][k] for m in names]
        sem = [summary[m]["per_class_accuracy_sem"][k] for m in names]
        ax.bar(x + (k - (K - 1) / 2) * width, mean, width, yerr=sem, capsize=2, label=str(lab))
    worst = [summary[m]["worst_class_accuracy_mean"] for m in names]
    ax.plot(x, worst, "k_", ms=24, mew=2, label="worst class")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20)
    ax.set_ylabel("test accuracy (mean ± SE)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", ncol=min(K + 1, 6))
    return fig


def plot_methods_vs_n(summary, ns, methods, *, title=None,
                      ylabel="worst-class test accuracy", highlight=("optimal",)):
    """Like :func:`plot_worst_vs_n`, for many methods: plain tick labels at ``ns``
    (no minor-tick labels on the log axis), a marker and line style per method, the
    ``highlight`` methods drawn thicker. Missing ``(n, method)`` entries (or NaN) are
    left out of that method's line.

    Parameters
    ----------
    summary : dict
        ``{(n, method): (mean, sem, count)}`` as from :func:`lastlayer.demo.summarise`.
    ns : sequence of int
    methods : sequence of str
    """
    from matplotlib.ticker import NullFormatter

    fig = _new_figure(figsize=(7.2, 4.8))
    ax = fig.add_subplot()
    markers = "osD^v<>ph*xP"
    styles = ("-", "--", "-.", ":")
    for i, m in enumerate(methods):
        pts = [(n, *summary[(n, m)][:2]) for n in ns
               if (n, m) in summary and np.isfinite(summary[(n, m)][0])]
        if not pts:
            continue
        x, mean, sem = (np.array(v, dtype=float) for v in zip(*pts))
        sem = np.where(np.isfinite(sem), sem, 0.0)
        hi = m in highlight
        ax.errorbar(x, mean, yerr=sem, marker=markers[i % len(markers)], capsize=3,
                    ls=styles[i % len(styles)] if not hi else "-", lw=2.6 if hi else 1.2,
                    ms=6 if hi else 4, label=m, zorder=3 if hi else 2)
    ax.set_xscale("log")
    ax.set_xticks(list(ns))
    ax.set_xticklabels([str(n) for n in ns])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("retraining samples n")
    ax.set_ylabel(ylabel + " (mean ± SE)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    return fig
