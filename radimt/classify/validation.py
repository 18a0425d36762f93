"""Nested cross-validation with honest metrics, and the permutation test of the whole procedure."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from radimt.classify.config import ModelConfig
from radimt.classify.data import BATCH_COLUMN, Dataset, cohort_counts, missing_data, smallest_class
from radimt.classify.model import build_pipeline, cv_splitter, fit_with_inner_search, selected_features
from radimt.classify.statistics import auc, decision_curve, repeat_interval, threshold_metrics
from radimt.errors import ClassifierError


@dataclass
class Evaluation:
    """What :func:`evaluate` found, as the report and the command line read it.

    Attributes
    ----------
    metrics
        ``roc_auc`` (the headline: mean of the per-repeat AUCs) with ``roc_auc_ci_low/high``,
        ``roc_auc_per_repeat_sd/min/max``, ``roc_auc_pooled`` (of the probabilities averaged
        over repeats) and, for binary problems, PR AUC, balanced accuracy, sensitivity,
        specificity, Brier score, calibration slope and intercept; ``permutation_p_value`` with
        the null's mean and SD.
    per_repeat_auc
        Each repeat's out-of-fold AUC.
    selection_frequency
        Share of outer folds that selected each feature (most often first).
    probabilities, y
        Out-of-fold probabilities averaged over repeats (cases x classes), and the labels.
    classes
        Class names in the order of the probability columns.
    n_cases, n_patients, n_features
        Cases, independent units (patients when grouped) and candidate predictors.
    class_counts
        Cases per class.
    config
        The :class:`ModelConfig` used, as a mapping.
    inner_splits_used
        Inner folds (fewer than asked when the smallest class could not fill them; see notes).
    notes
        What was changed from the configuration, and why.
    dropped_columns, converted_columns
        Table columns left out, and text columns encoded as ordinals, with why and how.
    excluded_rows
        Table rows left out (lesions that failed, were not processed or were rejected in
        review), with why.
    grouped
        Whether folds and bootstraps kept each patient's lesions together.
    decision_curve
        Net benefit per threshold (binary problems).
    cohort
        Cases and patients per class (and site): the TRIPOD participants table.
    missing_data
        Missing predictor values before imputation.
    """

    metrics: dict[str, float]
    per_repeat_auc: list[float]
    selection_frequency: dict[str, float]
    probabilities: np.ndarray
    y: np.ndarray
    classes: list[str]
    n_cases: int
    n_patients: int
    n_features: int
    class_counts: dict[str, int]
    config: dict[str, Any]
    inner_splits_used: int
    notes: list[str] = field(default_factory=list)
    dropped_columns: dict[str, str] = field(default_factory=dict)
    converted_columns: dict[str, str] = field(default_factory=dict)
    excluded_rows: list[dict[str, str]] = field(default_factory=list)
    grouped: bool = False
    decision_curve: list[dict[str, float]] = field(default_factory=list)
    cohort: list[dict[str, Any]] = field(default_factory=list)
    missing_data: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Every field but the per-case probabilities and labels, JSON-ready (evaluation.json)."""
        return {k: v for k, v in asdict(self).items() if k not in ("probabilities", "y")}


def check_sizes(data: Dataset, config: ModelConfig) -> tuple[int, str]:
    """Inner folds that every outer training set can fill with each class, and why if fewer.

    Returns the inner split count to use and a note ('' when it is ``inner_splits``).

    Raises
    ------
    ClassifierError
        The smallest class cannot fill the outer folds, or its outer training sets cannot fill
        two inner folds; the message says how many cases are needed.
    """
    smallest, units = smallest_class(data)
    outer = config.outer_splits
    if units < outer:
        raise ClassifierError(
            f"the smallest class has {smallest} case(s) ({units} independent units) for "
            f"{outer} outer folds; use fewer folds (outer_splits) or more cases"
        )
    in_training = units - math.ceil(units / outer)  # the fewest a training set can hold
    if in_training >= config.inner_splits:
        return config.inner_splits, ""
    if in_training < 2:
        needed = next(n for n in range(2, 10_000) if n - math.ceil(n / outer) >= 2)
        raise ClassifierError(
            f"the smallest class has {units} independent units: an outer training set holds "
            f"{in_training}, too few for two inner folds; {needed} are needed with {outer} outer folds"
        )
    note = (
        f"inner folds reduced from {config.inner_splits} to {in_training}: the smallest class has "
        f"{units} independent units, so an outer training set holds {in_training} of them"
    )
    return in_training, note


def evaluate(
    data: Dataset,
    config: ModelConfig | None = None,
    progress: Callable[..., None] | None = None,
) -> Evaluation:
    """Nested cross-validation with honest metrics.

    Outer: stratified K-fold repeated ``repeats`` times (grouped by patient when the table has a
    ``group`` column, so no patient is on both sides of a split); inner: hyper-parameters (fewer
    inner folds, stated in ``notes``, when the smallest class cannot fill them).

    The headline ``roc_auc`` is the mean over repeats of each repeat's out-of-fold AUC, with its
    spread (``roc_auc_per_repeat_sd``) and a 95 % CI (:func:`repeat_interval`: each repeat's
    bootstrap interval, resampling patients — the group column — when there is one and lesions
    otherwise, averaged over repeats and stretched for their spread). ``roc_auc_pooled`` is the
    AUC of the probabilities averaged over repeats (an ensemble; labelled as such); the
    threshold metrics, PR AUC, Brier score and calibration are computed on those averaged probabilities. The
    permutation test runs this same procedure (same repeats) on shuffled labels and compares
    the same statistic. ``progress``, when given, is called as ``progress(name)`` after each
    outer fold and as ``progress(name, weight=folds)`` after each permutation (which reruns
    all ``repeats x outer_splits`` folds), so a display can estimate the time left.
    """
    config = config or ModelConfig()
    inner_splits, note = check_sizes(data, config)
    inner_config = replace(config, inner_splits=inner_splits)
    per_repeat, selection, n_folds = cross_validate(data, inner_config, progress)
    y, groups = data.y, data.groups
    binary = len(data.classes) == 2
    probabilities = np.nanmean(per_repeat, axis=0)
    metrics = threshold_metrics(y, probabilities, binary, config, groups)
    repeat_auc = np.array([auc(y, per_repeat[r], binary) for r in range(config.repeats)])
    metrics["roc_auc_pooled"] = metrics.pop("roc_auc")
    metrics["roc_auc"] = float(repeat_auc.mean())
    metrics["roc_auc_per_repeat_sd"] = float(repeat_auc.std(ddof=1)) if config.repeats > 1 else 0.0
    metrics["roc_auc_per_repeat_min"], metrics["roc_auc_per_repeat_max"] = (
        float(repeat_auc.min()),
        float(repeat_auc.max()),
    )
    if config.n_bootstrap:
        metrics["roc_auc_ci_low"], metrics["roc_auc_ci_high"] = repeat_interval(
            y, per_repeat, groups, config, binary
        )
    if config.n_permutations:
        metrics["permutation_p_value"], null = permutation_test(
            progress, data, inner_config, metrics["roc_auc"]
        )
        metrics["permutation_auc_mean"] = float(null.mean())
        metrics["permutation_auc_sd"] = float(null.std(ddof=1)) if len(null) > 1 else 0.0
        metrics["permutations"] = config.n_permutations
    frequency = {k: v / n_folds for k, v in sorted(selection.items(), key=lambda kv: (-kv[1], kv[0]))}
    n_classes = len(data.classes)
    return Evaluation(
        metrics=metrics,
        per_repeat_auc=repeat_auc.tolist(),
        selection_frequency=frequency,
        probabilities=probabilities,
        y=y,
        classes=list(data.classes),
        n_cases=int(len(y)),
        n_patients=int(len(set(groups))) if groups is not None else int(len(y)),
        n_features=int(data.X.shape[1] - 1),
        class_counts={
            c: int(n) for c, n in zip(data.classes, np.bincount(y, minlength=n_classes), strict=True)
        },
        config=asdict(config),
        inner_splits_used=inner_splits,
        notes=[note] if note else [],
        dropped_columns=dict(data.dropped),
        excluded_rows=list(data.excluded),
        converted_columns=dict(data.converted),
        grouped=groups is not None,
        decision_curve=decision_curve(y, probabilities[:, 1]) if binary else [],
        cohort=cohort_counts(data),
        missing_data=missing_data(data),
    )


def cross_validate(
    data: Dataset, config: ModelConfig, progress: Callable[..., None] | None
) -> tuple[np.ndarray, dict[str, int], int]:
    """Out-of-fold probabilities per repeat (repeats x cases x classes), how often each feature
    was selected, and the number of outer folds."""
    X, y, groups = data.X.to_numpy(float), data.y, data.groups
    names = [c for c in data.X.columns if c != BATCH_COLUMN]
    pipeline, grid = build_pipeline(config)
    folds = []
    for repeat in range(config.repeats):
        seed = config.random_state + repeat
        outer = cv_splitter(config, config.outer_splits, groups, seed)
        folds += [(repeat, train, test, seed) for train, test in outer.split(X, y, groups)]

    def run(
        repeat: int, train: np.ndarray, test: np.ndarray, seed: int
    ) -> tuple[int, np.ndarray, np.ndarray, list[str]]:
        fitted = fit_with_inner_search(pipeline, grid, X, y, groups, train, config, seed)
        return repeat, test, fitted.predict_proba(X[test]), selected_features(fitted, names)

    per_repeat = np.full((config.repeats, len(y), len(data.classes)), np.nan)
    selection: dict[str, int] = {}
    parallel = Parallel(n_jobs=config.n_jobs, return_as="generator")
    for done, (repeat, test, proba, chosen) in enumerate(
        parallel(delayed(run)(*fold) for fold in folds), start=1
    ):
        per_repeat[repeat, test] = proba
        for name in chosen:
            selection[name] = selection.get(name, 0) + 1
        if progress is not None:
            progress(f"fold {done}")
    return per_repeat, selection, len(folds)


def permutation_test(
    progress: Callable[..., None] | None, data: Dataset, config: ModelConfig, observed: float
) -> tuple[float, np.ndarray]:
    """p = (1 + #{statistic with shuffled labels >= observed}) / (1 + n), and the statistic of
    every permutation (the procedure's null distribution).

    Each permutation runs the very procedure of :func:`evaluate` (``config`` as evaluate used
    it: same repeats, folds and inner search) on labels shuffled between patients, and takes the
    same statistic: the mean of the per-repeat AUCs.
    """
    rng = np.random.default_rng(config.random_state + 10_000)
    shuffles = [_shuffle(data.y, data.groups, rng) for _ in range(config.n_permutations)]
    serial = replace(config, n_jobs=1)  # permutations run side by side, each one's folds in turn

    def statistic(y: np.ndarray) -> float:
        per_repeat, _, _ = cross_validate(replace(data, y=y), serial, None)
        return float(np.mean([auc(y, per_repeat[r], len(data.classes) == 2) for r in range(config.repeats)]))

    aucs: list[float] = []
    parallel = Parallel(n_jobs=config.n_jobs, return_as="generator")
    for value in parallel(delayed(statistic)(y) for y in shuffles):
        aucs.append(value)
        if progress is not None:
            folds = config.repeats * config.outer_splits
            progress(f"permutation {len(aucs)} ({folds} folds)", weight=folds)
    null = np.array(aucs)
    return float((1 + np.sum(null >= observed)) / (1 + len(null))), null


def _shuffle(y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if groups is None:
        return rng.permutation(y)
    # Shuffle labels between patients, keeping each patient's lesions together.
    unique = pd.unique(groups)
    label_of = {g: y[groups == g][0] for g in unique}
    permuted = dict(zip(unique, rng.permutation([label_of[g] for g in unique]), strict=True))
    return np.array([permuted[g] for g in groups])
