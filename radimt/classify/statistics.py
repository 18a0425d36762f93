"""The numbers an evaluation reports: AUCs (Mann-Whitney), patient bootstrap intervals, the
headline's interval over repeats, threshold metrics, calibration and net benefit."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from radimt.classify.config import ModelConfig


def auc(y: np.ndarray, proba: np.ndarray, binary: bool) -> float:
    if binary:
        return binary_auc(y, proba[:, 1])
    return float(roc_auc_score(y, proba, multi_class="ovr"))


def binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney U statistic (ties count one half): roc_auc_score's value,
    fast enough for thousands of bootstrap resamples."""
    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bootstrap_indices(
    y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Endless bootstrap resamples: of patients (all their lesions together) when ``groups``
    is given, else of lesions within each class. Resamples with one class only are skipped."""
    if groups is None:
        by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
        while True:
            yield np.concatenate([rng.choice(rows, len(rows)) for rows in by_class])
    members = pd.Series(np.arange(len(y))).groupby(groups).apply(np.asarray).tolist()
    while True:
        idx = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        if len(np.unique(y[idx])) > 1:
            yield idx


def repeat_interval(
    y: np.ndarray, per_repeat: np.ndarray, groups: np.ndarray | None, config: ModelConfig, binary: bool
) -> tuple[float, float]:
    """95 % CI of the headline AUC (the mean of the repeats' out-of-fold AUCs).

    Each repeat's AUC varies with the patients sampled, which a patient bootstrap of that
    repeat's predictions measures (standard error ``se``), and with the split into folds, whose
    models differ: the repeats' own spread ``s`` measures that. The headline averages ``R``
    splits of one sample of patients, so its variance is ``se² + s² / R``. The interval is each
    repeat's bootstrap percentile interval averaged over repeats (keeping the AUC's skew), its
    sides stretched about the headline by ``sqrt(1 + s² / (R se²))``, within [0, 1].

    Not a bootstrap of the mean over repeats: the repeats test the same patients, so their mean
    is no more precise about new patients than one repeat is. On random labels (40 patients x 3
    lesions, benchmarks/bench_ci_coverage.py, 10 repeats) one repeat's bootstrap SE is 0.10
    and the bootstrap SE of the mean 0.07; over 120 data sets this interval contains 0.5 in
    114 (95.0 %, width 0.40), the bootstrap of the mean in 112 (width 0.29).
    """
    rng = np.random.default_rng(config.random_state)
    resamples = _bootstrap_indices(y, groups, rng)
    repeats = per_repeat.shape[0]
    values = np.array(
        [
            [auc(y[idx], per_repeat[r, idx], binary) for r in range(repeats)]
            for idx in (next(resamples) for _ in range(config.n_bootstrap))
        ]
    )
    aucs = [auc(y, per_repeat[r], binary) for r in range(repeats)]
    headline = float(np.mean(aucs))
    low, high = np.nanpercentile(values, [2.5, 97.5], axis=0).mean(axis=1)
    se = float(np.nanmean(np.nanstd(values, axis=0, ddof=1)))
    spread = float(np.std(aucs, ddof=1)) if repeats > 1 else 0.0
    stretch = math.sqrt(1 + spread**2 / (repeats * se**2)) if se > 0 else 1.0
    return max(0.0, headline - stretch * (headline - low)), min(1.0, headline + stretch * (high - headline))


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float], y: np.ndarray, groups: np.ndarray | None, config: ModelConfig
) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(indices)`` over ``n_bootstrap`` resamples."""
    rng = np.random.default_rng(config.random_state)
    resamples = _bootstrap_indices(y, groups, rng)
    values = [statistic(next(resamples)) for _ in range(config.n_bootstrap)]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def threshold_metrics(
    y: np.ndarray, proba: np.ndarray, binary: bool, config: ModelConfig, groups: np.ndarray | None = None
) -> dict[str, float]:
    """Metrics of one set of probabilities, with bootstrap CIs (patients when ``groups``)."""
    out: dict[str, float] = {"roc_auc": auc(y, proba, binary)}
    if config.n_bootstrap:
        out["roc_auc_pooled_ci_low"], out["roc_auc_pooled_ci_high"] = bootstrap_ci(
            lambda idx: auc(y[idx], proba[idx], binary), y, groups, config
        )
    if not binary:
        return out
    p = proba[:, 1]
    predicted = (p >= config.threshold).astype(int)
    sensitivity = float(np.mean(predicted[y == 1] == 1))
    specificity = float(np.mean(predicted[y == 0] == 0))
    out.update(
        pr_auc=float(average_precision_score(y, p)),
        balanced_accuracy=(sensitivity + specificity) / 2,
        sensitivity=sensitivity,
        specificity=specificity,
        brier=float(brier_score_loss(y, p)),
        threshold=config.threshold,
        prevalence=float(y.mean()),
    )
    if config.n_bootstrap:
        out["pr_auc_ci_low"], out["pr_auc_ci_high"] = bootstrap_ci(
            lambda idx: float(average_precision_score(y[idx], p[idx])), y, groups, config
        )
    out["calibration_slope"], out["calibration_intercept"] = calibration(y, p)
    return out


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic regression of outcome on logit p) and intercept (calibration
    in the large: the intercept with the slope fixed at 1)."""
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    logit = np.log(clipped / (1 - clipped))
    design = np.column_stack([np.ones_like(logit), logit])
    slope = _logistic_fit(design, y)[1]
    intercept = _logistic_fit(design[:, :1], y, offset=logit)[0]
    return float(slope), float(intercept)


def _logistic_fit(design: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """Unpenalised logistic regression by Newton–Raphson (a few parameters, no regularisation)."""
    beta = np.zeros(design.shape[1])
    offset = np.zeros(len(y)) if offset is None else offset
    for _ in range(100):
        q = 1 / (1 + np.exp(-(design @ beta + offset)))
        gradient = design.T @ (y - q)
        hessian = design.T @ (design * (q * (1 - q))[:, None])
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            break
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def decision_curve(
    y: np.ndarray, p: np.ndarray, thresholds: np.ndarray | None = None
) -> list[dict[str, float]]:
    """Net benefit (Vickers & Elkin 2006) of acting on ``p >= t``, of acting on everyone, and
    of acting on no one (0), per threshold probability t: TP/n - FP/n * t / (1 - t)."""
    thresholds = np.round(np.arange(0.05, 0.55, 0.05), 2) if thresholds is None else thresholds
    n, prevalence = len(y), float(np.mean(y))
    rows = []
    for t in thresholds:
        act = p >= t
        tp, fp = np.sum(act & (y == 1)) / n, np.sum(act & (y == 0)) / n
        rows.append(
            {
                "threshold": float(t),
                "net_benefit_model": float(tp - fp * t / (1 - t)),
                "net_benefit_all": float(prevalence - (1 - prevalence) * t / (1 - t)),
            }
        )
    return rows
