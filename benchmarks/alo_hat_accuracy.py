"""Agreement of the two hat-block methods of the multinomial ALO on random problems.

``alo_cross_entropy`` reads each row's (K-1) x (K-1) block of the inverse Hessian
either off the explicit ``p (K - 1)``-wide Hessian or from one factorisation per class
and a Woodbury capacitance (``_class_block_hat``, which declines below a reciprocal
condition number ``HAT_RCOND``). This script draws random problems (rows at least the
columns, as after the row space; some zero weights; random, often saturated,
probabilities; alpha from 1e-6 to 3), reports how often the class-block method
declines and its largest disagreement with the explicit Hessian (relative to the
largest block entry), and with ``--reference K`` checks the K worst cases against a
40-digit mpmath inverse of the Hessian (slow: only small problems are checked).

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/alo_hat_accuracy.py --draws 4000 --seed 7 \\
        --reference 3
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg
from _record import write_rows


def problem(seed, K, d, extra, scale, alpha):
    from lastlayer._core.logistic import augment, logsumexp_rows

    rng = np.random.default_rng(seed)
    n = d + 1 + extra
    Xa = augment(rng.standard_normal((n, d)) * rng.uniform(0.1, 10))
    r = rng.uniform(0.2, 3.0, n) * (rng.random(n) > 0.1)
    Z = Xa @ (scale * rng.standard_normal((d + 1, K)))
    P = np.exp(Z - logsumexp_rows(Z)[:, None])
    E = scipy.linalg.null_space(np.ones((1, K)))
    Ep = P @ E
    Lr = np.einsum("ik,ka,kb->iab", P, E, E) - Ep[:, :, None] * Ep[:, None, :]
    return Xa, r, P, E, Lr, alpha, float(n)


def reference_blocks(Xa, r, Lr, alpha, n_norm, digits=40):
    """The blocks from the Hessian on 1-perp inverted in ``digits``-digit arithmetic."""
    import mpmath

    mpmath.mp.dps = digits
    n, p1 = Xa.shape
    k1 = Lr.shape[1]
    H = np.zeros((p1, k1, p1, k1), dtype=object)
    H[...] = mpmath.mpf(0)
    for i in np.flatnonzero(r > 0):
        x = [mpmath.mpf(float(v)) for v in Xa[i]]
        w = mpmath.mpf(float(r[i]))
        for a in range(p1):
            for b in range(p1):
                for k in range(k1):
                    for l in range(k1):
                        H[a, k, b, l] += w * x[a] * x[b] * mpmath.mpf(float(Lr[i, k, l]))
    Hm = mpmath.matrix(H.reshape(p1 * k1, p1 * k1).tolist())
    for j in range((p1 - 1) * k1):
        Hm[j, j] += mpmath.mpf(2.0 * alpha * n_norm)
    Hi = np.array((Hm ** -1).tolist(), dtype=object).reshape(p1, k1, p1, k1)
    M = np.zeros((n, k1, k1))
    for i in range(n):
        x = np.array([mpmath.mpf(float(v)) for v in Xa[i]], dtype=object)
        for k in range(k1):
            for l in range(k1):
                M[i, k, l] = float(x @ Hi[:, k, :, l] @ x)
    return M


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=4000, help="random problems (default 4000)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the draws (default 7)")
    ap.add_argument("--reference", type=int, default=0,
                    help="check this many of the worst cases (at most 200 coefficients) "
                         "against a 40-digit inverse (default 0; needs mpmath)")
    ap.add_argument("--out", default="", help="JSON output path ('' for none, the default)")
    args = ap.parse_args(argv)
    for option, value, least in (("--draws", args.draws, 1), ("--reference", args.reference, 0)):
        if value < least:
            ap.error(f"{option} must be at least {least}. Got {value}.")

    from lastlayer._core.logistic import HAT_RCOND, _class_block_hat, _hat_blocks

    rng = np.random.default_rng(args.seed)
    rows, declined = [], 0
    for _ in range(args.draws):
        spec = dict(seed=int(rng.integers(2**31)), K=int(rng.integers(3, 9)),
                    d=int(rng.integers(1, 41)), extra=int(rng.integers(0, 41)),
                    scale=float(rng.uniform(0.05, 6)), alpha=float(10 ** rng.uniform(-6, 0.5)))
        Xa, r, P, E, Lr, alpha, n_norm = problem(**spec)
        fast = _class_block_hat(Xa, r, P, E, alpha, n_norm)
        if fast is None:
            declined += 1
            continue
        ref = _hat_blocks(Xa, r, Lr, alpha, n_norm)
        scale = np.abs(ref).max()
        rows.append({**spec, "disagreement": float(np.abs(fast - ref).max() / scale)})
    rows.sort(key=lambda row: -row["disagreement"])
    worst = f"{rows[0]['disagreement']:.2g} of the largest block entry" if rows else "none"
    print(f"{args.draws} draws (seed {args.seed}), HAT_RCOND {HAT_RCOND:g}: class blocks "
          f"declined {declined}; largest disagreement with the explicit Hessian {worst}",
          flush=True)
    checked = 0
    for row in rows:
        if checked >= args.reference:
            break
        if (row["d"] + 1) * (row["K"] - 1) > 200:
            continue
        Xa, r, P, E, Lr, alpha, n_norm = problem(**{k: row[k] for k in
                                                    ("seed", "K", "d", "extra", "scale",
                                                     "alpha")})
        exact = reference_blocks(Xa, r, Lr, alpha, n_norm)
        s = np.abs(exact).max()
        row["hessian_error"] = float(np.abs(_hat_blocks(Xa, r, Lr, alpha, n_norm)
                                            - exact).max() / s)
        row["class_blocks_error"] = float(np.abs(_class_block_hat(Xa, r, P, E, alpha, n_norm)
                                                 - exact).max() / s)
        checked += 1
        print(f"  K = {row['K']}, d = {row['d']}, n = {row['d'] + 1 + row['extra']}: "
              f"disagreement {row['disagreement']:.2g}; against 40 digits: explicit "
              f"Hessian {row['hessian_error']:.2g}, class blocks "
              f"{row['class_blocks_error']:.2g}", flush=True)
    if args.out:
        write_rows(args.out, "benchmarks/alo_hat_accuracy.py", rows[:50], seed=args.seed,
                   draws=args.draws, declined=declined, hat_rcond=HAT_RCOND)


if __name__ == "__main__":
    main()
