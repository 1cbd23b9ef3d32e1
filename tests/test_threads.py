"""BLAS threads of a fit: the free CPUs, not counting this process's own threads."""

import io
import threading

import numpy as np
import pytest

from lastlayer import _fit


@pytest.fixture
def machine(monkeypatch):
    """A fake 2-CPU machine whose /proc/loadavg reports ``state["running"]`` tasks."""
    state = {"running": 1}
    real_open = open

    def fake_open(path, *a, **k):
        if path == "/proc/loadavg":
            return io.StringIO(f"1.0 1.0 1.0 {state['running']}/100 1234\n")
        return real_open(path, *a, **k)

    monkeypatch.setattr(_fit.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(_fit, "threadpool_info",
                        lambda: [{"user_api": "blas", "num_threads": 2}])
    return state


@pytest.mark.parametrize("running, own, free", [(1, 1, 2), (2, 1, 1), (2, 2, 2), (3, 2, 1),
                                                (5, 1, 1)])
def test_free_threads_count_only_other_processes(machine, monkeypatch, running, own, free):
    machine["running"] = running
    monkeypatch.setattr(_fit, "_own_running_threads", lambda: own)
    assert _fit.free_blas_threads() == free


def test_own_running_threads_sees_a_busy_thread():
    # a second thread of this process busy in NumPy (GIL released) is counted
    if not _fit.os.path.isdir("/proc/self/task"):
        pytest.skip("no /proc")
    stop = threading.Event()
    A = np.random.default_rng(0).standard_normal((300, 300))

    def spin():
        while not stop.is_set():
            A @ A

    t = threading.Thread(target=spin)
    t.start()
    try:
        seen = max(_fit._own_running_threads() for _ in range(500))
    finally:
        stop.set()
        t.join()
    assert seen >= 2


def test_the_free_threads_are_read_once_a_fit(monkeypatch):
    # every candidate of the selection gets the same reading of the machine, taken
    # once when the plan is resolved (each reading scans the BLAS libraries and this
    # process's threads)
    from lastlayer import LastLayerClassifier

    calls = []
    real = _fit.free_blas_threads
    monkeypatch.setattr(_fit, "free_blas_threads", lambda: calls.append(1) or real())
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 6)), np.repeat([0, 1, 2], [70, 30, 20])
    m = LastLayerClassifier().fit(X, y)
    assert len(m.plan_["candidates"]) >= 3
    assert len(calls) == 1
    assert len({(c["stats_threads"], c["solve_threads"]) for c in m.plan_["candidates"]}) == 1
