"""Figures of lastlayer.plots build, carry the expected artists and save as PNG."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from lastlayer import plots  # noqa: E402
from lastlayer.theory import SimulationResult, optimal_weight_ratio  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_sim(e_pos, e_neg, spread=0.01, repeats=5, seed=0):
    rng = np.random.default_rng(seed)
    errors = np.column_stack([e_pos + spread * rng.standard_normal(repeats),
                              e_neg + spread * rng.standard_normal(repeats)])
    return SimulationResult.from_errors(np.clip(errors, 0, 1))


def _labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def _errorbar_count(ax):
    return sum(type(c).__name__ == "ErrorbarContainer" for c in ax.containers)


def test_errors_vs_ratio_ridgeless_with_simulation(tmp_path):
    sim = {1.0: _fake_sim(0.4, 0.05), 9.0: _fake_sim(0.15, 0.09), 33.0: _fake_sim(0.14, 0.14)}
    fig = plots.plot_errors_vs_ratio(0.1, 0.15, mean_norm=1.5, simulation=sim)
    ax, = fig.axes
    labels = _labels(ax)
    assert ax.get_xscale() == "log"
    # Two theory curves, three vertical markers, and the two simulated series.
    assert sum("theory" in lab for lab in labels) == 2
    assert any(lab.startswith("ratio of priors (9)") for lab in labels)
    assert any(lab.startswith("equal errors (33)") for lab in labels)
    assert any(lab.startswith("worst-class optimum (22.") for lab in labels)
    assert _errorbar_count(ax) == 2
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert [c.get_label() for c in bars] == ["minority, simulation (±1 SE)",
                                             "majority, simulation (±1 SE)"]
    assert [list(c.lines[0].get_xdata()) for c in bars] == [[1.0, 9.0, 33.0]] * 2
    # Vertical markers sit at the right x.
    eq = next(line for line in ax.get_lines() if line.get_label().startswith("equal errors"))
    assert eq.get_xdata()[0] == pytest.approx(optimal_weight_ratio(0.1, 0.15))
    out = plots.save_figure(fig, tmp_path / "errors.png")
    assert os.path.getsize(out) > 1000
    assert open(out, "rb").read(8) == PNG_MAGIC


def test_errors_vs_ratio_with_ridge_and_custom_ratios():
    ratios = np.geomspace(1, 100, 25)
    fig = plots.plot_errors_vs_ratio(0.2, 0.3, ridge=0.1, ratios=ratios)
    ax, = fig.axes
    curves = [line for line in ax.get_lines() if "theory" in line.get_label()]
    assert len(curves) == 2 and all(len(c.get_xdata()) == 25 for c in curves)
    assert len(ax.get_lines()) == 5  # 2 curves + priors + equal errors + optimum
    assert _errorbar_count(ax) == 0


def test_errors_vs_ratio_infeasible_has_no_equalising_marker():
    fig = plots.plot_errors_vs_ratio(0.1, 0.3)  # d/n >= 2 pi_+
    ax, = fig.axes
    labels = _labels(ax)
    assert not any(lab.startswith("equal errors") for lab in labels)
    assert len(ax.get_lines()) == 4
    assert "no finite" in ax.get_title()


def test_optimal_ratio_vs_dim():
    priors = [0.1, 0.2, 0.3]
    deltas = np.linspace(0.01, 0.5, 30)
    fig = plots.plot_optimal_ratio_vs_dim(priors, deltas)
    ax, = fig.axes
    labels = _labels(ax)
    assert ax.get_yscale() == "log"
    assert sum(lab.startswith("optimal") for lab in labels) == 3
    assert sum(lab.startswith("ratio of priors") for lab in labels) == 3
    # Feasibility limits 0.2 and 0.4 are inside the range, 0.6 is not.
    limits = [line for line in ax.get_lines() if line.get_label().startswith("limit")]
    assert sorted(line.get_xdata()[0] for line in limits) == pytest.approx([0.2, 0.4])
    # Beyond the limit the optimal curve is not drawn (NaN).
    curve = next(line for line in ax.get_lines() if line.get_label() == r"optimal, $\pi_+$=0.1")
    y = np.asarray(curve.get_ydata(), float)
    assert np.all(np.isnan(y[deltas >= 0.2])) and np.all(np.isfinite(y[deltas < 0.2]))


def test_weighting_vs_downsampling(tmp_path):
    ns = [200, 400, 800, 1600]
    sim = {"downsampling": {400: _fake_sim(0.3, 0.3), 800: _fake_sim(0.25, 0.24)},
           "optimal weighting": {400: _fake_sim(0.2, 0.21)}}
    fig = plots.plot_weighting_vs_downsampling(0.1, 40, ns, mean_norm=1.5, simulation=sim)
    ax, = fig.axes
    theory = [line for line in ax.get_lines() if line.get_label().endswith("theory")]
    assert [line.get_label() for line in theory] == [
        "optimal weighting, theory", "ratio of priors, theory", "no weighting, theory",
        "downsampling, theory"]
    assert all(len(line.get_xdata()) == 4 for line in theory)
    assert _errorbar_count(ax) == 2
    # Optimal weighting is the lowest curve everywhere.
    ys = np.array([line.get_ydata() for line in theory])
    assert np.all(ys[0] <= ys[1:].min(axis=0) + 1e-12)
    out = plots.save_figure(fig, tmp_path / "sub" / "down.png")
    assert os.path.getsize(out) > 1000


def test_weighting_vs_downsampling_rejects_unknown_method():
    with pytest.raises(ValueError, match="'simulation'.*'bogus'"):
        plots.plot_weighting_vs_downsampling(0.1, 40, [200, 400],
                                             simulation={"bogus": {}})


def test_bad_input_names_parameter():
    with pytest.raises(ValueError, match="'minority_prior'.*1.5"):
        plots.plot_errors_vs_ratio(1.5, 0.2)
    with pytest.raises(ValueError, match="'ratios'"):
        plots.plot_errors_vs_ratio(0.2, 0.2, ratios=[1.0, -2.0])
    with pytest.raises(ValueError, match="'dim_ratios'"):
        plots.plot_optimal_ratio_vs_dim([0.1], [0.1, -0.2])
    with pytest.raises(ValueError, match="'ns'"):
        plots.plot_weighting_vs_downsampling(0.1, 40, [1])


def test_save_figure_is_atomic_and_leaves_no_temp_files(tmp_path):
    fig = plots.plot_optimal_ratio_vs_dim([0.2], [0.1, 0.2])
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    plots.save_figure(fig, target)
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    # A failing save leaves the old file in place and no temporary behind.
    with pytest.raises(ValueError):
        plots.save_figure(fig, tmp_path / "fig.notaformat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    svg = plots.save_figure(fig, tmp_path / "fig.svg")
    assert b"<svg" in open(svg, "rb").read(400)


def test_no_pyplot_state_is_touched():
    import matplotlib

    backend = matplotlib.get_backend()
    plots.plot_optimal_ratio_vs_dim([0.2], [0.1, 0.2])
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r'pip install "lastlayer\[plots\]"'):
        plots.plot_optimal_ratio_vs_dim([0.2], [0.1, 0.2])
