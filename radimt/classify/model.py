"""The model: a leakage-safe scikit-learn pipeline, its hyper-parameters chosen by inner
cross-validation, Platt-recalibrated probabilities; training on all cases and prediction.

Every data-dependent step (imputation, near-zero-variance and correlated-feature removal,
ComBat harmonisation, scaling, feature selection, the model) sits inside one
:class:`sklearn.pipeline.Pipeline`, so cross-validation refits all of them in every training
fold: nothing is learned from the samples a fold is tested on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy.linalg.blas import dsyrk
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from radimt.classify.config import ModelConfig
from radimt.classify.data import BATCH_COLUMN, Dataset, numeric_column, refuse_infinite, smallest_class
from radimt.classify.harmonisation import ComBat
from radimt.classify.statistics import binary_auc
from radimt.errors import ClassifierError
from radimt.io.tables import ID_COLUMNS

log = logging.getLogger(__name__)


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Drop the later of every pair of features correlated above ``threshold`` (|Pearson r|)."""

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> CorrelationFilter:  # noqa: N803
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

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.asarray(X, float)[:, self.support_]

    def get_support(self) -> np.ndarray:
        return self.support_


class DropBatch(TransformerMixin, BaseEstimator):
    """Remove the batch column when no harmonisation uses it."""

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> DropBatch:  # noqa: N803
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.asarray(X, float)[:, :-1]


def _l1_logistic(random_state: int) -> LogisticRegression:
    """An L1-penalised logistic regression, spelled for the installed scikit-learn (1.8 moved
    the penalty into ``l1_ratio``)."""
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
        grid["select__k"] = ["all"]  # replaced per fold by k_grid (it depends on the fold's width)
    return pipeline, grid


def k_grid(n_features: int, config: ModelConfig) -> list:
    k = min(config.n_features, n_features)
    return sorted({max(1, k // 2), k})


def cv_splitter(
    config: ModelConfig, splits: int, groups: np.ndarray | None, seed: int
) -> StratifiedKFold | StratifiedGroupKFold:
    if groups is not None:
        return StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)


def selected_features(fitted: Pipeline, names: list[str]) -> list[str]:
    """Feature names that reach the model in a fitted pipeline."""
    kept = np.asarray(names)
    for step in ("variance", "decorrelate", "select"):
        kept = kept[fitted.named_steps[step].get_support()]
    return kept.tolist()


def grid_probabilities(
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


def inner_search(
    pipeline: Pipeline, grid: dict[str, list], X: np.ndarray, y: np.ndarray, splits: list
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The grid point with the best mean inner-fold ROC AUC, every candidate's mean AUC (in
    ``ParameterGrid(grid)`` order), and the chosen point's out-of-fold probabilities of the
    positive class (binary problems; empty otherwise).

    The choice of ``GridSearchCV(scoring="roc_auc")`` (same candidates in ``ParameterGrid``
    order, same AUCs; tested against it) without its cost: every step is fitted once per
    distinct setting (:func:`grid_probabilities`), not once per grid point, and the chosen
    point's held-out probabilities, which Platt scaling needs, are kept rather than fitted
    again. Equal mean AUCs go to the first candidate in grid order (the stronger penalty, the
    fewer features), where GridSearchCV lets the last bits of a float sum decide.
    """
    binary = len(np.unique(y)) == 2
    candidates = list(ParameterGrid(grid))
    scores = np.full((len(candidates), len(splits)), np.nan)
    held_out = np.full((len(candidates), len(y)), np.nan)
    for s, (train, test) in enumerate(splits):
        probabilities = grid_probabilities(pipeline.steps, candidates, X[train], y[train], X[test])
        for c, proba in enumerate(probabilities):
            if binary:
                held_out[c, test] = proba[:, 1]
                scores[c, s] = binary_auc(y[test], proba[:, 1])
            else:
                scores[c, s] = roc_auc_score(y[test], proba, multi_class="ovr", labels=np.unique(y))
    means = scores.mean(axis=1)
    if np.isnan(means).all():
        raise ClassifierError("no grid point could be scored on the inner folds (a class missing?)")
    best = int(np.nanargmax(np.round(means, 12)))  # means equal but for float rounding are ties
    return candidates[best], means, held_out[best] if binary else np.empty(0)


def fit_with_inner_search(
    pipeline: Pipeline,
    grid: dict[str, list[Any]],
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    groups: np.ndarray | None,
    train: np.ndarray,
    config: ModelConfig,
    seed: int,
) -> Pipeline | PlattCalibrated:
    """The pipeline fitted on ``train`` with the grid point its inner folds choose (Platt
    recalibrated on the inner folds' held-out probabilities when ``config`` says so)."""
    inner_groups = groups[train] if groups is not None else None
    inner = cv_splitter(config, config.inner_splits, inner_groups, seed)
    n_kept = X.shape[1] - 1
    grid = {**grid, **({"select__k": k_grid(n_kept, config)} if "select__k" in grid else {})}
    X_train, y_train = X[train], y[train]
    splits = list(inner.split(X_train, y_train, inner_groups))
    params, _, scores = inner_search(pipeline, grid, X_train, y_train, splits)
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
    platt = LogisticRegression(C=100.0).fit(logit(scores)[:, None], y)
    slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    return (slope, intercept) if slope > 0 else (1.0, 0.0)


def logit(p: np.ndarray) -> np.ndarray:
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
    def named_steps(self) -> Any:
        return self._fitted().named_steps

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        p = self._fitted().predict_proba(X)[:, 1]
        q = 1 / (1 + np.exp(-(self.slope * logit(p) + self.intercept)))
        return np.column_stack([1 - q, q])

    def _fitted(self) -> Pipeline:
        if self.pipeline is None:
            raise ClassifierError("PlattCalibrated holds no fitted pipeline")
        return self.pipeline


def train(data: Dataset, config: ModelConfig | None = None) -> Pipeline:
    """Fit the pipeline on all cases (hyper-parameters chosen by cross-validation)."""
    config = config or ModelConfig()
    _, units = smallest_class(data)
    if units < 2:
        raise ClassifierError(f"the smallest class has {units} independent unit(s); two are needed")
    if units < config.inner_splits:
        log.warning("inner folds reduced from %d to %d (the smallest class)", config.inner_splits, units)
        config = replace(config, inner_splits=units)
    pipeline, grid = build_pipeline(config)
    X, y = data.X.to_numpy(float), data.y
    everything = np.arange(len(y))
    fitted = fit_with_inner_search(pipeline, grid, X, y, data.groups, everything, config, config.random_state)
    fitted.feature_names_ = list(data.X.columns)
    fitted.classes_names_ = list(data.classes)
    fitted.harmonize_ = config.harmonize
    fitted.batch_levels_ = list(data.batch_levels) if config.harmonize else []
    fitted.threshold_ = float(config.threshold)  # the card says it too; predict checks they agree
    return fitted


#: What ``predict`` does with a site the harmonised model never saw.
UNKNOWN_SITE = ("refuse", "unharmonised")


def probability_column(class_name: str) -> str:
    """The column of a class's probability, a plain identifier: ``probability_not_IMT``."""
    return "probability_" + re.sub(r"\W+", "_", str(class_name)).strip("_")


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
    columns = {n: numeric_column(table[n], n, clinical=False)[0] for n in names}
    refuse_infinite({n: v.reset_index(drop=True) for n, v in columns.items()})
    X = pd.DataFrame(columns)
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
        out[probability_column(name)] = proba[:, i]
    return out
