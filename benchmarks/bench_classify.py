"""Classifier benchmark: ``evaluate`` with its defaults (nested cross-validation, 5 outer x 5
inner folds, 10 repeats, in-fold Platt calibration, patient bootstrap, and the permutation test
that reruns the whole procedure) on 150 lesions x 1,500 features (synthetic, two informative),
parallel folds on 2 cores; then the same without the permutation test.

Target: within 2 minutes with the defaults. Prints the times, their ratio and the AUC.

Run: ``python benchmarks/bench_classify.py [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from radimt.classify import ModelConfig, evaluate, load_table


def table(n: int = 150, p: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array(["IMT"] * (n // 4) + ["carcinoma"] * (n - n // 4))
    frame = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i:04d}" for i in range(p)])
    frame["f0000"] += 1.2 * (labels == "IMT")
    frame["f0001"] -= 0.8 * (labels == "IMT")
    frame.insert(0, "label", labels)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    data = load_table(table(), ModelConfig())
    rows = []
    for name, config in (
        ("defaults, no permutation test", ModelConfig(n_permutations=0, n_jobs=args.jobs)),
        ("defaults (20 permutations)", ModelConfig(n_jobs=args.jobs)),
    ):
        start = time.perf_counter()
        result = evaluate(data, config)
        rows.append((name, time.perf_counter() - start, result.metrics))
        print(f"{name}: {rows[-1][1]:.1f} s", flush=True)
    print(f"\nevaluate, 150 lesions x 1,500 features, {args.jobs} jobs")
    print(f"{'run':<32} {'seconds':>8}  ROC AUC (95% CI)")
    for name, seconds, m in rows:
        print(
            f"{name:<32} {seconds:>8.1f}  {m['roc_auc']:.3f} "
            f"({m['roc_auc_ci_low']:.3f}-{m['roc_auc_ci_high']:.3f})"
        )
    ratio = rows[1][1] / rows[0][1]
    print(f"target <= 120 s with the defaults; with the permutation test {ratio:.1f}x one run")


if __name__ == "__main__":
    main()
