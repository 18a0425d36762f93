"""Separate IMT from its mimics: a leakage-safe scikit-learn pipeline, nested cross-validation,
honest metrics with confidence intervals, safe persistence (skops) and prediction.

Every data-dependent step (imputation, near-zero-variance and correlated-feature removal,
ComBat harmonisation, scaling, feature selection, the model) sits inside one
:class:`sklearn.pipeline.Pipeline`, so cross-validation refits all of them in every training
fold: nothing is learned from the samples a fold is tested on.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.linalg.blas import dsyrk
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from radimt._version import __version__
from radimt.errors import ClassifierError
from radimt.harmonize import ComBat
from radimt.io.tables import ID_COLUMNS

log = logging.getLogger(__name__)

#: Ordinal encodings of the categorical kinetic columns (BI-RADS order of suspicion).
ORDINALS = {
    "curve_type": {"I": 1, "II": 2, "III": 3},
    "initial_phase": {"slow": 1, "medium": 2, "fast": 3},
    "delayed_phase": {"persistent": 1, "plateau": 2, "washout": 3},
}
BATCH_COLUMN = "__batch__"
#: BI-RADS assessment categories as numbers (4a < 4 = 4b < 4c), for clinical columns.
BIRADS = {
    **{str(k): float(k) for k in range(4)},
    **{"4a": 4.25, "4": 4.5, "4b": 4.5, "4c": 4.75, "5": 5.0, "6": 6.0},
}
#: How the columns radimt writes begin: a table with any of them is a radimt features table, and
#: only these columns (plus the clinical ones the user names) are predictors.
FEATURE_PREFIXES = (
    "lesion_",
    "kinetic_",
    "adc_",
    "dwi_",
    "dce_",
    "t1_",
    "t2_",
    "ct_",
    "mg_",
    "us_",
    "image_",
    "original_",
    "log-sigma-",
    "wavelet-",
)


@dataclass(frozen=True)
class ModelConfig:
    """How to build and evaluate the classifier.

    Attributes
    ----------
    model
        ``logistic`` (penalised logistic regression, default), ``random_forest`` or
        ``gradient_boosting``.
    selector
        ``univariate`` (ANOVA F, the best ``n_features``) or ``l1`` (L1-penalised logistic).
    n_features
        Features kept by the univariate selector (small cohorts want few).
    positive
        The positive class for binary problems (IMT versus the rest).
    multiclass
        Keep every label as its own class instead of positive-versus-rest.
    harmonize
        Column (``site`` or ``scanner``) to harmonise by with ComBat inside each training fold.
    outer_splits, inner_splits, repeats
        Nested cross-validation: outer folds (repeated), inner folds for hyper-parameters.
    n_permutations, n_bootstrap
        Permutation-test repetitions (each runs the whole nested procedure, so the default is
        a modest 20: the smallest p it can give is 1/21), bootstrap resamples for confidence
        intervals (of patients when the table has a group column).
    clinical
        Columns besides radimt's features to use as predictors (``age``, ``birads``).
    calibration
        ``platt`` (default): binary probabilities are recalibrated in every fold by Platt
        scaling on the inner folds' out-of-fold scores, so they are probabilities despite the
        class weighting; ``none`` leaves the model's scores as they are (then they are scores).
    """

    model: str = "logistic"
    selector: str = "univariate"
    n_features: int = 10
    positive: str = "IMT"
    multiclass: bool = False
    harmonize: str | None = None
    correlation_threshold: float = 0.95
    outer_splits: int = 5
    inner_splits: int = 5
    repeats: int = 10
    n_permutations: int = 20
    n_bootstrap: int = 1000
    threshold: float = 0.5
    random_state: int = 0
    n_jobs: int = 1
    clinical: tuple[str, ...] = ()
    calibration: str = "platt"


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Drop the later of every pair of features correlated above ``threshold`` (|Pearson r|)."""

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X, y=None):  # noqa: N803
        X = np.asarray(X, float)
        keep = np.ones(X.shape[1], bool)
        if X.shape[1] > 1:
            # |Pearson r| of every pair from one symmetric product (BLAS syrk: the upper
            # triangle only) of the centred, unit-length columns; a constant column
            # correlates with nothing (r = 0, as a NaN from corrcoef would be).
            centred = X - X.mean(axis=0)
            norms = np.sqrt(np.einsum("ij,ij->j", centred, centred))
            centred *= np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            gram = dsyrk(1.0, centred.T, trans=0)  # zeros below the diagonal
            np.fill_diagonal(gram, 0.0)
            np.abs(gram, out=gram)
            above = gram > self.threshold
            paired = np.flatnonzero(above.any(axis=1))  # few rows: nonzero only over them
            rows, cols = np.nonzero(above[paired])
            rows = paired[rows]  # ascending, each row's partners in column order
            # Greedy, in column order: a kept feature drops every later one it correlates with.
            starts = np.flatnonzero(np.diff(rows, prepend=-1))
            partners = np.split(cols, starts[1:]) if rows.size else []
            for j, later_ones in zip(rows[starts], partners, strict=True):
                if keep[j]:
                    keep[later_ones] = False
        self.support_ = keep
        return self

    def transform(self, X):  # noqa: N803
        return np.asarray(X, float)[:, self.support_]

    def get_support(self) -> np.ndarray:
        return self.support_


class DropBatch(TransformerMixin, BaseEstimator):
    """Remove the batch column when no harmonisation uses it."""

    def fit(self, X, y=None):  # noqa: N803
        return self

    def transform(self, X):  # noqa: N803
        return np.asarray(X, float)[:, :-1]


@dataclass
class Dataset:
    """A feature table ready for modelling."""

    X: pd.DataFrame
    y: np.ndarray
    classes: list[str]
    groups: np.ndarray | None
    ids: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)
    converted: dict[str, str] = field(default_factory=dict)
    batch_levels: list[str] = field(default_factory=list)  # site names, in the batch column's codes
    sites: np.ndarray | None = None  # each case's site (the harmonisation or ``site`` column)


def load_table(
    table: str | os.PathLike[str] | pd.DataFrame,
    config: ModelConfig,
    label: str = "label",
    group: str = "group",
) -> Dataset:
    """Features, labels and groups from a features table (``features.csv`` of a batch run).

    Predictors are radimt's feature columns (names starting as in ``FEATURE_PREFIXES``) and the
    ``clinical`` columns of ``config``; a table without any radimt column (another tool's) uses
    every numeric column but the identifiers. Columns left out or converted (kinetic classes and
    BI-RADS as ordinal numbers) are listed in ``Dataset.dropped`` and ``Dataset.converted``.

    Raises
    ------
    ClassifierError
        No label column, blank labels, one class only, missing groups, a clinical column that is
        absent or holds text radimt cannot order (each listing the rows or values).
    """
    frame = table if isinstance(table, pd.DataFrame) else read_features(table)
    if label not in frame:
        raise ClassifierError(
            f"no label column {label!r} in the table; columns start {list(frame.columns)[:6]}"
        )
    blank = frame[label].isna() | (frame[label].astype(str).str.strip() == "")
    if blank.any():
        raise ClassifierError(
            f"{int(blank.sum())} row(s) without a label (table lines {_lines(blank)}); label every "
            "case or remove the unlabelled rows — a blank is not the negative class"
        )
    labels = frame[label].astype(str).str.strip()
    if labels.nunique() < 2:
        raise ClassifierError(
            f"the label column holds one class only ({labels.iloc[0]!r}); nothing to separate"
        )
    if config.multiclass:
        classes = sorted(labels.unique())
        y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    else:
        if config.positive not in set(labels):
            raise ClassifierError(f"no {config.positive!r} among the labels {sorted(set(labels))}")
        classes = [f"not {config.positive}", config.positive]
        y = (labels == config.positive).astype(int).to_numpy()
    groups = None
    if group in frame:
        missing = frame[group].isna() | (frame[group].astype(str).str.strip() == "")
        if missing.any():
            raise ClassifierError(
                f"{int(missing.sum())} row(s) without a {group!r} (table lines {_lines(missing)}); "
                "every lesion needs its patient, or lesions of one patient would be split between "
                "training and test"
            )
        groups = frame[group].astype(str).to_numpy()
    absent = [c for c in config.clinical if c not in frame]
    if absent:
        raise ClassifierError(f"clinical column(s) {absent} are not in the table")
    id_columns = [c for c in (*ID_COLUMNS, label, group) if c in frame]
    radimt_table = any(str(c).startswith(FEATURE_PREFIXES) for c in frame.columns if c not in id_columns)
    features, dropped, converted = {}, {}, {}
    for column in frame.columns:
        if column in id_columns or column == config.harmonize:
            continue
        clinical = column in config.clinical
        if str(column).startswith("diagnostics_"):
            dropped[column] = "pyradiomics diagnostics, not a feature"
            continue
        if radimt_table and not clinical and not str(column).startswith(FEATURE_PREFIXES):
            dropped[column] = "not a radimt feature column (name it with --clinical to use it)"
            continue
        values, encoding = _numeric(frame[column], column, clinical)
        if encoding:
            converted[column] = encoding
        if values.isna().all():
            dropped[column] = "no numeric values"
            continue
        features[column] = values
    if not features:
        raise ClassifierError("no numeric feature columns in the table (NaN-only or text only)")
    X = pd.DataFrame(features)
    if config.harmonize and config.harmonize not in frame:
        raise ClassifierError(f"no column {config.harmonize!r} to harmonise by")
    batch_values = (
        frame[config.harmonize].astype(str) if config.harmonize else pd.Series(["all"] * len(frame))
    )
    codes, levels = pd.factorize(batch_values)
    site_column = config.harmonize or ("site" if "site" in frame else None)
    sites = frame[site_column].astype(str).to_numpy() if site_column else None
    X[BATCH_COLUMN] = codes.astype(float)
    return Dataset(
        X=X,
        y=y,
        classes=classes,
        groups=groups,
        ids=frame[id_columns].copy(),
        dropped=dropped,
        converted=converted,
        batch_levels=[str(v) for v in levels],
        sites=sites,
    )


def _lines(rows: pd.Series) -> str:
    """Table line numbers (header = line 1) of the true rows, the first ten."""
    lines = [str(i + 2) for i in np.flatnonzero(rows.to_numpy())]
    return ", ".join(lines[:10]) + (", ..." if len(lines) > 10 else "")


def _numeric(values: pd.Series, column: str, clinical: bool) -> tuple[pd.Series, str]:
    """A column as numbers, and how text was encoded ('' when it was numeric already)."""
    kind = next((k for k in ORDINALS if column.endswith(k)), None)
    if kind is not None:
        order = ", ".join(f"{k}={v}" for k, v in ORDINALS[kind].items())
        return values.map(ORDINALS[kind]).astype(float), f"ordinal ({order})"
    numbers = pd.to_numeric(values, errors="coerce")
    text = values.notna() & numbers.isna()
    if not text.any():
        return numbers, ""
    words = values[text].astype(str).str.strip().str.lower()
    if set(words) <= set(BIRADS):
        order = ", ".join(f"{k}={v:g}" for k, v in BIRADS.items())
        encoded = values.astype(str).str.strip().str.lower().map(BIRADS).astype(float)
        return encoded, f"BI-RADS ordinal ({order})"
    if clinical:
        raise ClassifierError(
            f"clinical column {column!r} holds text radimt cannot order ({sorted(set(words))[:8]}); "
            "encode it as numbers"
        )
    return numbers, ""


def _l1_logistic(random_state: int) -> LogisticRegression:
    """An L1-penalised logistic regression, spelled for the installed scikit-learn (1.8 moved
    the penalty into ``l1_ratio``)."""
    import sklearn

    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    common = {"solver": "liblinear", "C": 0.5, "class_weight": "balanced", "random_state": random_state}
    if (major, minor) >= (1, 8):
        return LogisticRegression(l1_ratio=1.0, **common)
    return LogisticRegression(penalty="l1", **common)


def build_pipeline(config: ModelConfig) -> tuple[Pipeline, dict[str, list]]:
    """The full pipeline and the hyper-parameter grid the inner cross-validation searches."""
    steps: list[tuple[str, Any]] = [("harmonize", ComBat() if config.harmonize else DropBatch())]
    steps += [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("variance", VarianceThreshold(1e-10)),
        ("decorrelate", CorrelationFilter(config.correlation_threshold)),
        ("scale", StandardScaler()),
    ]
    if config.selector == "univariate":
        steps.append(("select", SelectKBest(f_classif, k="all")))
    elif config.selector == "l1":
        l1 = _l1_logistic(config.random_state)
        steps.append(("select", SelectFromModel(l1, max_features=config.n_features)))
    else:
        raise ClassifierError(f"unknown selector {config.selector!r}: univariate or l1")
    if config.model == "logistic":
        # Newton-Cholesky: the exact optimiser for few features (the selector keeps at most
        # n_features), 2.3x faster than L-BFGS here; L-BFGS for the multinomial model.
        model = LogisticRegression(
            C=1.0,
            class_weight="balanced",
            max_iter=2000,
            random_state=config.random_state,
            solver="lbfgs" if config.multiclass else "newton-cholesky",
        )
        grid: dict[str, list[Any]] = {"model__C": [0.01, 0.1, 1.0]}
    elif config.model == "random_forest":
        model = RandomForestClassifier(
            n_estimators=200, class_weight="balanced", random_state=config.random_state, min_samples_leaf=2
        )
        grid = {"model__max_depth": [3, None]}
    elif config.model == "gradient_boosting":
        model = GradientBoostingClassifier(random_state=config.random_state)
        grid = {"model__learning_rate": [0.05, 0.1]}
    else:
        raise ClassifierError(f"unknown model {config.model!r}: logistic, random_forest or gradient_boosting")
    steps.append(("model", model))
    pipeline = Pipeline(steps)
    if config.selector == "univariate":
        grid["select__k"] = ["all"]  # replaced per fold by _k_grid (it depends on the fold's width)
    return pipeline, grid


def _k_grid(n_features: int, config: ModelConfig) -> list:
    k = min(config.n_features, n_features)
    return sorted({max(1, k // 2), k})


def _cv(config: ModelConfig, splits: int, groups, seed: int):
    if groups is not None:
        return StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)


def _smallest_class(data: Dataset) -> tuple[int, int]:
    """Cases of the smallest class, and its independent units (patients when grouped)."""
    counts = np.bincount(data.y)
    smallest_class = int(np.flatnonzero(counts == counts[counts > 0].min())[0])
    smallest = int(counts[smallest_class])
    if data.groups is None:
        return smallest, smallest
    return smallest, len(set(data.groups[data.y == smallest_class]))


def _check_sizes(data: Dataset, config: ModelConfig) -> tuple[int, str]:
    """Inner folds that every outer training set can fill with each class, and why if fewer.

    Returns the inner split count to use and a note ('' when it is ``inner_splits``).

    Raises
    ------
    ClassifierError
        The smallest class cannot fill the outer folds, or its outer training sets cannot fill
        two inner folds; the message says how many cases are needed.
    """
    smallest, units = _smallest_class(data)
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


def selected_features(fitted: Pipeline, names: list[str]) -> list[str]:
    """Feature names that reach the model in a fitted pipeline."""
    kept = np.asarray(names)
    for step in ("variance", "decorrelate", "select"):
        kept = kept[fitted.named_steps[step].get_support()]
    return kept.tolist()


def _grid_probabilities(
    steps: list[tuple[str, Any]],
    candidates: list[dict[str, Any]],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
) -> list[np.ndarray]:
    """``predict_proba(X_test)`` of the pipeline ``steps`` fitted on the training rows at each
    grid candidate, as ``Pipeline(steps).set_params(**candidate).fit(...)`` would give it.

    A step is fitted once per distinct setting of its own parameters and the earlier steps'
    (a tree over the steps): preprocessing the grid does not touch is fitted once, a univariate
    selector once per ``k``, only the model once per candidate.
    """
    results: list[np.ndarray] = [np.empty(0)] * len(candidates)

    def own(candidate: dict[str, Any], step: str) -> dict[str, Any]:
        prefix = f"{step}__"
        return {k[len(prefix) :]: v for k, v in candidate.items() if k.startswith(prefix)}

    def descend(depth: int, members: list[int], X_fit: np.ndarray, X_new: np.ndarray) -> None:
        name, step = steps[depth]
        settings: dict[str, list[int]] = {}
        for c in members:
            settings.setdefault(repr(sorted(own(candidates[c], name).items())), []).append(c)
        for group in settings.values():
            fitted = clone(step).set_params(**own(candidates[group[0]], name))
            if depth == len(steps) - 1:
                proba = fitted.fit(X_fit, y_train).predict_proba(X_new)
                for c in group:
                    results[c] = proba
            else:
                X_next = fitted.fit_transform(X_fit, y_train)
                descend(depth + 1, group, X_next, fitted.transform(X_new))

    descend(0, list(range(len(candidates))), X_train, X_test)
    return results


def _inner_search(
    pipeline: Pipeline, grid: dict[str, list], X: np.ndarray, y: np.ndarray, splits: list
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The grid point with the best mean inner-fold ROC AUC, every candidate's mean AUC (in
    ``ParameterGrid(grid)`` order), and the chosen point's out-of-fold probabilities of the
    positive class (binary problems; empty otherwise).

    The choice of ``GridSearchCV(scoring="roc_auc")`` (same candidates in ``ParameterGrid``
    order, same AUCs; tested against it) without its cost: every step is fitted once per
    distinct setting (:func:`_grid_probabilities`), not once per grid point, and the chosen
    point's held-out probabilities, which Platt scaling needs, are kept rather than fitted
    again. Equal mean AUCs go to the first candidate in grid order (the stronger penalty, the
    fewer features), where GridSearchCV lets the last bits of a float sum decide.
    """
    binary = len(np.unique(y)) == 2
    candidates = list(ParameterGrid(grid))
    scores = np.full((len(candidates), len(splits)), np.nan)
    held_out = np.full((len(candidates), len(y)), np.nan)
    for s, (train, test) in enumerate(splits):
        probabilities = _grid_probabilities(pipeline.steps, candidates, X[train], y[train], X[test])
        for c, proba in enumerate(probabilities):
            if binary:
                held_out[c, test] = proba[:, 1]
                scores[c, s] = _binary_auc(y[test], proba[:, 1])
            else:
                scores[c, s] = roc_auc_score(y[test], proba, multi_class="ovr", labels=np.unique(y))
    means = scores.mean(axis=1)
    if np.isnan(means).all():
        raise ClassifierError("no grid point could be scored on the inner folds (a class missing?)")
    best = int(np.nanargmax(np.round(means, 12)))  # means equal but for float rounding are ties
    return candidates[best], means, held_out[best] if binary else np.empty(0)


def _fit_fold(pipeline, grid, X, y, groups, train, config, seed):
    """The pipeline fitted on ``train`` with the grid point its inner folds choose (Platt
    recalibrated on the inner folds' held-out probabilities when ``config`` says so)."""
    inner_groups = groups[train] if groups is not None else None
    inner = _cv(config, config.inner_splits, inner_groups, seed)
    n_kept = X.shape[1] - 1
    grid = {**grid, **({"select__k": _k_grid(n_kept, config)} if "select__k" in grid else {})}
    X_train, y_train = X[train], y[train]
    splits = list(inner.split(X_train, y_train, inner_groups))
    params, _, scores = _inner_search(pipeline, grid, X_train, y_train, splits)
    best = clone(pipeline).set_params(**params).fit(X_train, y_train)
    if config.calibration != "platt" or len(np.unique(y)) != 2:
        return best
    # Platt scaling learnt from the inner folds' out-of-fold scores of the chosen pipeline: the
    # class weighting that helps the fit distorts its probabilities; this maps them back to
    # observed frequencies without touching the outer test fold.
    slope, intercept = platt_scaling(scores, y_train)
    return PlattCalibrated(best, slope, intercept)


def platt_scaling(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of ``sigmoid(slope * logit(p) + intercept)`` fitted to held-out
    scores, or the identity (1, 0) when the scores carry no signal (a slope <= 0).

    With no signal the ranking is never flipped, and the training prevalence is not predicted
    either: folds would get constants anti-correlated with their test folds' prevalence, and the
    pooled out-of-fold AUC falls below 0.5 under the null (benchmarks/bench_ci_coverage.py:
    headline mean 0.476 and 10/20 intervals covering 0.5 that way; 0.519 and 16/20 with the
    identity). The class-balanced scores are left as they are.
    """
    platt = LogisticRegression(C=100.0).fit(_logit(scores)[:, None], y)
    slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    return (slope, intercept) if slope > 0 else (1.0, 0.0)


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


class PlattCalibrated(BaseEstimator):
    """A fitted pipeline whose probabilities go through a logistic recalibration
    ``sigmoid(slope * logit(p) + intercept)`` learnt on held-out (inner-fold) scores."""

    def __init__(self, pipeline: Pipeline | None = None, slope: float = 1.0, intercept: float = 0.0):
        self.pipeline = pipeline
        self.slope = slope
        self.intercept = intercept

    @property
    def named_steps(self):
        return self.pipeline.named_steps

    def predict_proba(self, X):  # noqa: N803
        p = self.pipeline.predict_proba(X)[:, 1]
        q = 1 / (1 + np.exp(-(self.slope * _logit(p) + self.intercept)))
        return np.column_stack([1 - q, q])


def evaluate(
    data: Dataset,
    config: ModelConfig = ModelConfig(),
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
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
    inner_splits, note = _check_sizes(data, config)
    inner_config = replace(config, inner_splits=inner_splits)
    per_repeat, selection, n_folds = _cross_validate(data, inner_config, progress)
    y, groups = data.y, data.groups
    binary = len(data.classes) == 2
    probabilities = np.nanmean(per_repeat, axis=0)
    metrics = _metrics(y, probabilities, binary, config, groups)
    repeat_auc = np.array([_auc(y, per_repeat[r], binary) for r in range(config.repeats)])
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
        metrics["permutation_p_value"], null = _permutation_test(
            progress, data, inner_config, metrics["roc_auc"]
        )
        metrics["permutation_auc_mean"] = float(null.mean())
        metrics["permutation_auc_sd"] = float(null.std(ddof=1)) if len(null) > 1 else 0.0
        metrics["permutations"] = config.n_permutations
    frequency = {k: v / n_folds for k, v in sorted(selection.items(), key=lambda kv: (-kv[1], kv[0]))}
    n_classes = len(data.classes)
    return {
        "metrics": metrics,
        "per_repeat_auc": repeat_auc.tolist(),
        "selection_frequency": frequency,
        "probabilities": probabilities,
        "y": y,
        "classes": data.classes,
        "n_cases": int(len(y)),
        "n_patients": int(len(set(groups))) if groups is not None else int(len(y)),
        "n_features": int(data.X.shape[1] - 1),
        "class_counts": {
            c: int(n) for c, n in zip(data.classes, np.bincount(y, minlength=n_classes), strict=True)
        },
        "config": asdict(config),
        "inner_splits_used": inner_splits,
        "notes": [note] if note else [],
        "dropped_columns": dict(data.dropped),
        "converted_columns": dict(data.converted),
        "grouped": groups is not None,
        "decision_curve": decision_curve(y, probabilities[:, 1]) if binary else [],
        "cohort": cohort_counts(data),
        "missing_data": missing_data(data),
    }


def cohort_counts(data: Dataset) -> list[dict[str, Any]]:
    """Cases and patients per class, and per site and class when the table names sites (the
    TRIPOD "participants" table): one row per (site, class), site ``"all"`` for the totals."""
    frame = pd.DataFrame(
        {
            "class": [data.classes[k] for k in data.y],
            "patient": data.groups if data.groups is not None else np.arange(len(data.y)).astype(str),
            "site": data.sites if data.sites is not None else "all",
        }
    )
    rows = []
    for site in ["all"] if data.sites is None else ["all", *sorted(set(data.sites))]:
        part = frame if site == "all" else frame[frame.site == site]
        for name in data.classes:
            members = part[part["class"] == name]
            rows.append(
                {"site": site, "class": name, "cases": len(members), "patients": members.patient.nunique()}
            )
    return rows


def missing_data(data: Dataset) -> dict[str, Any]:
    """Missing predictor values before imputation (imputed in-fold by the training median):
    complete cases and, per predictor with any value missing, how many."""
    X = data.X.drop(columns=[BATCH_COLUMN])
    missing = X.isna().sum()
    missing = missing[missing > 0].sort_values(ascending=False, kind="stable")
    return {
        "complete_cases": int((~X.isna().any(axis=1)).sum()),
        "cases": len(X),
        "by_predictor": {str(c): int(n) for c, n in missing.items()},
    }


def decision_curve(y: np.ndarray, p: np.ndarray, thresholds=None) -> list[dict[str, float]]:
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


def _cross_validate(
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
        outer = _cv(config, config.outer_splits, groups, seed)
        folds += [(repeat, train, test, seed) for train, test in outer.split(X, y, groups)]

    def run(repeat, train, test, seed):
        fitted = _fit_fold(pipeline, grid, X, y, groups, train, config, seed)
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


def _auc(y, proba, binary) -> float:
    if binary:
        return _binary_auc(y, proba[:, 1])
    return float(roc_auc_score(y, proba, multi_class="ovr"))


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney U statistic (ties count one half): roc_auc_score's value,
    fast enough for thousands of bootstrap resamples."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bootstrap_indices(y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator):
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
            [_auc(y[idx], per_repeat[r, idx], binary) for r in range(repeats)]
            for idx in (next(resamples) for _ in range(config.n_bootstrap))
        ]
    )
    aucs = [_auc(y, per_repeat[r], binary) for r in range(repeats)]
    headline = float(np.mean(aucs))
    low, high = np.nanpercentile(values, [2.5, 97.5], axis=0).mean(axis=1)
    se = float(np.nanmean(np.nanstd(values, axis=0, ddof=1)))
    spread = float(np.std(aucs, ddof=1)) if repeats > 1 else 0.0
    stretch = math.sqrt(1 + spread**2 / (repeats * se**2)) if se > 0 else 1.0
    return max(0.0, headline - stretch * (headline - low)), min(1.0, headline + stretch * (high - headline))


def _bootstrap_ci(statistic, y, groups, config: ModelConfig) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(indices)`` over ``n_bootstrap`` resamples."""
    rng = np.random.default_rng(config.random_state)
    resamples = _bootstrap_indices(y, groups, rng)
    values = [statistic(next(resamples)) for _ in range(config.n_bootstrap)]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def _metrics(
    y: np.ndarray, proba: np.ndarray, binary: bool, config: ModelConfig, groups: np.ndarray | None = None
) -> dict[str, float]:
    """Metrics of one set of probabilities, with bootstrap CIs (patients when ``groups``)."""
    out: dict[str, float] = {"roc_auc": _auc(y, proba, binary)}
    if config.n_bootstrap:
        out["roc_auc_pooled_ci_low"], out["roc_auc_pooled_ci_high"] = _bootstrap_ci(
            lambda idx: _auc(y[idx], proba[idx], binary), y, groups, config
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
        out["pr_auc_ci_low"], out["pr_auc_ci_high"] = _bootstrap_ci(
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


def _permutation_test(
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
        per_repeat, _, _ = _cross_validate(replace(data, y=y), serial, None)
        return float(np.mean([_auc(y, per_repeat[r], len(data.classes) == 2) for r in range(config.repeats)]))

    aucs: list[float] = []
    parallel = Parallel(n_jobs=config.n_jobs, return_as="generator")
    for auc in parallel(delayed(statistic)(y) for y in shuffles):
        aucs.append(auc)
        if progress is not None:
            folds = config.repeats * config.outer_splits
            progress(f"permutation {len(aucs)} ({folds} folds)", weight=folds)
    null = np.array(aucs)
    return float((1 + np.sum(null >= observed)) / (1 + len(null))), null


def _shuffle(y: np.ndarray, groups, rng) -> np.ndarray:
    if groups is None:
        return rng.permutation(y)
    # Shuffle labels between patients, keeping each patient's lesions together.
    unique = pd.unique(groups)
    label_of = {g: y[groups == g][0] for g in unique}
    permuted = dict(zip(unique, rng.permutation([label_of[g] for g in unique]), strict=True))
    return np.array([permuted[g] for g in groups])


# -- training, persistence, prediction ---------------------------------------------------------

#: Types a model file may hold beyond skops' defaults: radimt's own steps, and what the
#: pipeline itself references. Anything else is refused before loading.
TRUSTED = [
    "radimt.classify.CorrelationFilter",
    "radimt.classify.DropBatch",
    "radimt.classify.PlattCalibrated",
    "radimt.harmonize.ComBat",
    "numpy.dtype",
    "sklearn.feature_selection._univariate_selection.f_classif",
]


def train(data: Dataset, config: ModelConfig = ModelConfig()) -> Pipeline:
    """Fit the pipeline on all cases (hyper-parameters chosen by cross-validation)."""
    _, units = _smallest_class(data)
    if units < 2:
        raise ClassifierError(f"the smallest class has {units} independent unit(s); two are needed")
    if units < config.inner_splits:
        log.warning("inner folds reduced from %d to %d (the smallest class)", config.inner_splits, units)
        config = replace(config, inner_splits=units)
    pipeline, grid = build_pipeline(config)
    X, y = data.X.to_numpy(float), data.y
    everything = np.arange(len(y))
    fitted = _fit_fold(pipeline, grid, X, y, data.groups, everything, config, config.random_state)
    fitted.feature_names_ = list(data.X.columns)
    fitted.classes_names_ = list(data.classes)
    fitted.harmonize_ = config.harmonize
    fitted.batch_levels_ = list(data.batch_levels) if config.harmonize else []
    return fitted


def save_model(model: Pipeline, path: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Save with skops (no pickle) and write the model card beside it (``.card.json``)."""
    import skops.io as sio

    from radimt.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        sio.dump(model, tmp)
    with atomic_path(str(path) + ".card.json") as tmp, open(tmp, "w") as fh:
        json.dump(card, fh, indent=2, sort_keys=True, default=str)


def load_model(path: str | os.PathLike[str]) -> Pipeline:
    """Load a skops model, refusing any type outside scikit-learn, numpy and radimt's own."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - not a skops file, or a damaged one
        raise ClassifierError(f"{path}: not a readable radimt model ({type(exc).__name__}: {exc})") from None
    unknown = [t for t in untrusted if t not in TRUSTED]
    if unknown:
        raise ClassifierError(f"{path}: refusing to load a model with unknown types {unknown}")
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001
        raise ClassifierError(f"{path}: the model file is damaged ({type(exc).__name__}: {exc})") from None


_RESTORE = "restore the card written by radimt train, or train the model again"


def load_model_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The card ``radimt train`` wrote beside a model (``<model>.card.json``); ``{}`` if absent.

    Raises
    ------
    ClassifierError
        The card is not JSON, not a mapping, or its threshold is not a probability.
    """
    card_path = f"{path}.card.json"
    try:
        with open(card_path) as fh:
            card = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClassifierError(f"{card_path}: the model card cannot be read ({exc}); {_RESTORE}") from None
    if not isinstance(card, dict):
        raise ClassifierError(f"{card_path}: the model card is not a mapping; {_RESTORE}")
    threshold = card.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ClassifierError(f"{card_path}: threshold {threshold!r} is not a probability; {_RESTORE}")
    return card


def read_features(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A features table (CSV) with study and lesion ids kept as text.

    Raises
    ------
    ClassifierError
        The file is missing, unreadable or not a CSV table.
    """
    try:
        return pd.read_csv(path, dtype={"study_id": str, "lesion_id": str})
    except FileNotFoundError:
        raise ClassifierError(f"{path}: no such features file; give the features.csv of a batch") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ClassifierError(f"{path}: not a readable features table ({exc})") from None


#: What ``predict`` does with a site the harmonised model never saw.
UNKNOWN_SITE = ("refuse", "unharmonised")


def predict(model: Pipeline, table: pd.DataFrame, unknown_site: str = "refuse") -> pd.DataFrame:
    """Probabilities per case; the table must hold every feature the model was trained on.

    A model harmonised by site (ComBat) needs the site column: each case is harmonised as its
    own site. A site not seen in training is refused, unless ``unknown_site="unharmonised"``:
    those cases keep their raw feature values (no site correction), as the ``harmonised_as``
    column says.
    """
    if unknown_site not in UNKNOWN_SITE:
        raise ClassifierError(f"unknown_site {unknown_site!r}: use one of {UNKNOWN_SITE}")
    names = [n for n in model.feature_names_ if n != BATCH_COLUMN]
    missing = [n for n in names if n not in table]
    if missing:
        raise ClassifierError(f"{len(missing)} feature column(s) the model needs are missing: {missing[:10]}")
    X = pd.DataFrame({n: _numeric(table[n], n, clinical=False)[0] for n in names})
    site_column = getattr(model, "harmonize_", None)
    out = table[[c for c in ID_COLUMNS if c in table]].copy()
    if site_column:
        if site_column not in table:
            raise ClassifierError(
                f"the model was harmonised by {site_column!r} (ComBat); the table needs that column"
            )
        levels = list(model.batch_levels_)
        sites = table[site_column].astype(str)
        unseen = sorted(set(sites) - set(levels))
        if unseen and unknown_site == "refuse":
            raise ClassifierError(
                f"{site_column} {unseen} not seen in training (sites {levels}): ComBat cannot harmonise "
                "them; retrain with these sites, or predict with --unknown-site unharmonised to use "
                "their raw values (stated in the output)"
            )
        X[BATCH_COLUMN] = [float(levels.index(v)) if v in levels else -1.0 for v in sites]
        out["harmonised_as"] = [v if v in levels else "not harmonised (unseen site)" for v in sites]
    else:
        X[BATCH_COLUMN] = 0.0
    proba = model.predict_proba(X.to_numpy(float))
    for i, name in enumerate(model.classes_names_):
        out[f"probability_{name}"] = proba[:, i]
    return out


def model_card(
    data: Dataset, config: ModelConfig, model: Pipeline, evaluation: dict | None
) -> dict[str, Any]:
    """Training summary, features, versions and metrics, saved beside the model."""
    import sklearn

    names = [c for c in data.X.columns if c != BATCH_COLUMN]
    return {
        "radimt": __version__,
        "scikit-learn": sklearn.__version__,
        "config": asdict(config),
        "classes": data.classes,
        "class_counts": {c: int(n) for c, n in zip(data.classes, np.bincount(data.y), strict=True)},
        "n_cases": int(len(data.y)),
        "features_in": names,
        "features_used": selected_features(model, names),
        "columns_dropped": dict(data.dropped),
        "columns_converted": dict(data.converted),
        "harmonized_by": config.harmonize,
        "sites": list(data.batch_levels) if config.harmonize else [],
        "threshold": config.threshold,
        "probabilities": (
            "Platt-recalibrated in every fold on the inner folds' out-of-fold scores"
            if config.calibration == "platt"
            else "the model's scores, not recalibrated (class-weighted: not probabilities)"
        ),
        "metrics": (evaluation or {}).get("metrics", {}),
        "warning": "Trained on the data given (radimt's own cohort is synthetic); not a diagnostic device.",
    }
