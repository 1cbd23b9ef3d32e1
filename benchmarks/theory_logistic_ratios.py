"""Item 3 of the cross-entropy theory: does the square-loss rule equalise cross-entropy
class errors? Theory only (no randomness): for each (pi_+, ||mu||, d/n) prints the
square-loss equalising ratio (2 pi_- - delta)/(2 pi_+ - delta), the cross-entropy class
errors at that ratio, the cross-entropy equalising ratio and the worst-class and
balanced optima. Usage: python benchmarks/theory_logistic_ratios.py
"""

from lastlayer.theory import (equalizing_ratio, logistic_errors, optimal_ratio,
                              optimal_weight_ratio, separability_threshold)

print("| pi_+ | \\|\\|mu\\|\\| | d/n (/ delta*) | square rule | CE errors at square rule "
      "| CE equalising | CE worst-class opt. | CE balanced opt. |")
print("|---|---|---|---|---|---|---|---|")
for pi in (0.05, 0.1, 0.2, 0.3):
    for s in (0.8, 1.5):
        thr = separability_threshold(pi, mean_norm=s)
        for frac in (0.25, 0.6):
            delta = frac * thr
            rs = optimal_weight_ratio(pi, delta)
            p = logistic_errors(pi, delta, weight_ratio=rs, mean_norm=s)
            rc = equalizing_ratio(pi, delta, mean_norm=s)
            w = optimal_ratio(pi, delta, mean_norm=s, objective="worst")["weight_ratio"]
            b = optimal_ratio(pi, delta, mean_norm=s, objective="balanced")["weight_ratio"]
            print(f"| {pi} | {s} | {delta:.4f} ({frac}) | {rs:.3g} | {p.error_pos:.3f} / "
                  f"{p.error_neg:.3f} | {rc:.3g} | {w:.3g} | {b:.3g} |", flush=True)
