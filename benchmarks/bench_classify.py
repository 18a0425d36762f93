"""Classifier benchmark: nested cross-validation, 5 outer x 5 inner folds, 10 repeats, on
150 lesions x 1,500 features (synthetic, two informative), parallel folds on 2 cores.

Target: within 2 minutes. Prints the time and the AUC (it should find the signal).

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
    config = ModelConfig(
        outer_splits=5, inner_splits=5, repeats=10, n_permutations=0, n_bootstrap=1000, n_jobs=args.jobs
    )
    data = load_table(table(), config)
    start = time.perf_counter()
    result = evaluate(data, config)
    seconds = time.perf_counter() - start
    m = result["metrics"]
    print(f"\nnested CV 5x5 folds x 10 repeats, 150 lesions x 1,500 features, {args.jobs} jobs")
    print(
        f"time {seconds:.1f} s (target <= 120 s); ROC AUC {m['roc_auc']:.3f} "
        f"(95% CI {m['roc_auc_ci_low']:.3f}-{m['roc_auc_ci_high']:.3f})"
    )


if __name__ == "__main__":
    main()
