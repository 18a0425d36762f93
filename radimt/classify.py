"""Separate IMT from its mimics: a leakage-safe scikit-learn pipeline, nested cross-validation,
honest metrics with confidence intervals, safe persistence (skops) and prediction.

Every data-dependent step (imputation, near-zero-variance and correlated-feature removal,
ComBat harmonisation, scaling, feature selection, the model) sits inside one
:class:`sklearn.pipeline.Pipeline`, so cross-validation refits all of them in every training
fold: nothing is learned from the samples a fold is tested on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from radimt.errors import RadimtError
from radimt.harmonize import ComBat
from radimt.io.tables import ID_COLUMNS

#: Ordinal encodings of the categorical kinetic columns (BI-RADS order of suspicion).
ORDINALS = {
    "curve_type": {"I": 1, "II": 2, "III": 3},
    "initial_phase": {"slow": 1, "medium": 2, "fast": 3},
    "delayed_phase": {"persistent": 1, "plateau": 2, "washout": 3},
}
BATCH_COLUMN = "__batch__"


class ClassifierError(RadimtError):
    """The table, labels or model cannot be used as asked."""


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
        Permutation-test repetitions, bootstrap resamples for confidence intervals.
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
    n_permutations: int = 100
    n_bootstrap: int = 1000
    threshold: float = 0.5
    random_state: int = 0
    n_jobs: int = 1


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Drop the later of every pair of features correlated above ``threshold`` (|Pearson r|)."""

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X, y=None):  # noqa: N803
        X = np.asarray(X, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.nan_to_num(np.corrcoef(X, rowvar=False))) if X.shape[1] > 1 else np.zeros((1, 1))
        keep = np.ones(X.shape[1], bool)
        for j in range(X.shape[1]):
            if keep[j]:
                later = np.arange(j + 1, X.shape[1])
                keep[later[corr[j, later] > self.threshold]] = False
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


def load_table(
    table: str | os.PathLike[str] | pd.DataFrame,
    config: ModelConfig,
    label: str = "label",
    group: str = "group",
) -> Dataset:
    """Features, labels and groups from a features table (``features.csv`` of a batch run)."""
    frame = table if isinstance(table, pd.DataFrame) else read_features(table)
    if label not in frame:
        raise ClassifierError(
            f"no label column {label!r} in the table; columns start {list(frame.columns)[:6]}"
        )
    labels = frame[label].astype(str)
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
    id_columns = [c for c in (*ID_COLUMNS, label, group) if c in frame]
    features, dropped = {}, {}
    for column in frame.columns:
        if column in id_columns or column == config.harmonize:
            continue
        values = frame[column]
        kind = next((k for k in ORDINALS if column.endswith(k)), None)
        if kind is not None:
            values = values.map(ORDINALS[kind])
        values = pd.to_numeric(values, errors="coerce")
        if values.isna().all():
            dropped[column] = "no numeric values"
            continue
        features[column] = values
    if not features:
        raise ClassifierError("no numeric feature columns in the table (NaN-only or text only)")
    X = pd.DataFrame(features)
    batch_values = (
        frame[config.harmonize].astype(str) if config.harmonize else pd.Series(["all"] * len(frame))
    )
    if config.harmonize and config.harmonize not in frame:
        raise ClassifierError(f"no column {config.harmonize!r} to harmonise by")
    X[BATCH_COLUMN] = pd.factorize(batch_values)[0].astype(float)
    groups = frame[group].astype(str).to_numpy() if group in frame and frame[group].notna().all() else None
    return Dataset(X=X, y=y, classes=classes, groups=groups, ids=frame[id_columns].copy(), dropped=dropped)


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
        model = LogisticRegression(
            C=1.0, class_weight="balanced", max_iter=2000, random_state=config.random_state
        )
        grid = {"model__C": [0.01, 0.1, 1.0]}
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


def _check_sizes(data: Dataset, config: ModelConfig) -> None:
    counts = np.bincount(data.y)
    smallest = int(counts[counts > 0].min())
    units = len(set(data.groups)) if data.groups is not None else smallest
    if smallest < config.outer_splits or units < config.outer_splits:
        raise ClassifierError(
            f"the smallest class has {smallest} case(s) ({units} independent units) for "
            f"{config.outer_splits} outer folds; use fewer folds (outer_splits) or more cases"
        )


def selected_features(fitted: Pipeline, names: list[str]) -> list[str]:
    """Feature names that reach the model in a fitted pipeline."""
    names = np.asarray(names)
    for step in ("variance", "decorrelate", "select"):
        names = names[fitted.named_steps[step].get_support()]
    return names.tolist()


def _fit_fold(pipeline, grid, X, y, groups, train, config, seed):
    inner_groups = groups[train] if groups is not None else None
    inner = _cv(config, config.inner_splits, inner_groups, seed)
    n_kept = X.shape[1] - 1
    grid = {**grid, **({"select__k": _k_grid(n_kept, config)} if "select__k" in grid else {})}
    search = GridSearchCV(
        clone(pipeline),
        grid,
        cv=inner,
        scoring="roc_auc" if len(np.unique(y)) == 2 else "roc_auc_ovr",
        n_jobs=1,
        error_score="raise",
    )
    search.fit(X[train], y[train], groups=inner_groups)
    return search.best_estimator_


def evaluate(
    data: Dataset,
    config: ModelConfig = ModelConfig(),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Nested cross-validation with honest metrics.

    Outer: stratified K-fold repeated ``repeats`` times (grouped by patient when the table has a
    ``group`` column, so no patient is on both sides of a split); inner: hyper-parameters.
    Out-of-fold probabilities are averaged over repeats per case; metrics are computed on those
    with bootstrap 95 % CIs. A permutation test refits the same procedure on shuffled labels.
    ``progress``, when given, is called with a name after each outer fold and each permutation
    (``repeats × outer_splits + n_permutations`` calls).
    """
    _check_sizes(data, config)
    from joblib import Parallel, delayed

    X, y, groups = data.X.to_numpy(float), data.y, data.groups
    names = [c for c in data.X.columns if c != BATCH_COLUMN]
    pipeline, grid = build_pipeline(config)
    binary = len(data.classes) == 2
    folds = []
    for repeat in range(config.repeats):
        seed = config.random_state + repeat
        outer = _cv(config, config.outer_splits, groups, seed)
        folds += [(repeat, train, test, seed) for train, test in outer.split(X, y, groups)]

    def run(repeat, train, test, seed):
        fitted = _fit_fold(pipeline, grid, X, y, groups, train, config, seed)
        return repeat, test, fitted.predict_proba(X[test]), selected_features(fitted, names)

    results = []
    parallel = Parallel(n_jobs=config.n_jobs, return_as="generator")
    for result in parallel(delayed(run)(*fold) for fold in folds):
        results.append(result)
        if progress is not None:
            progress(f"fold {len(results)}")
    n_classes = len(data.classes)
    sums = np.zeros((len(y), n_classes))
    counts = np.zeros(len(y))
    per_repeat = np.full((config.repeats, len(y), n_classes), np.nan)
    selection: dict[str, int] = {}
    for repeat, test, proba, chosen in results:
        sums[test] += proba
        counts[test] += 1
        per_repeat[repeat, test] = proba
        for name in chosen:
            selection[name] = selection.get(name, 0) + 1
    probabilities = sums / counts[:, None]
    metrics = _metrics(y, probabilities, binary, config)
    repeat_auc = [_auc(y, per_repeat[r], binary) for r in range(config.repeats)]
    metrics["roc_auc_per_repeat_mean"] = float(np.mean(repeat_auc))
    metrics["roc_auc_per_repeat_sd"] = float(np.std(repeat_auc))
    if config.n_permutations:
        metrics["permutation_p_value"], metrics["permutation_auc_mean"] = _permutation_test(
            progress, data, config, metrics["roc_auc"]
        )
    frequency = {k: v / len(folds) for k, v in sorted(selection.items(), key=lambda kv: (-kv[1], kv[0]))}
    return {
        "metrics": metrics,
        "selection_frequency": frequency,
        "probabilities": probabilities,
        "y": y,
        "classes": data.classes,
        "n_cases": int(len(y)),
        "n_features": len(names),
        "class_counts": {
            c: int(n) for c, n in zip(data.classes, np.bincount(y, minlength=n_classes), strict=True)
        },
        "config": asdict(config),
        "grouped": groups is not None,
    }


def _auc(y, proba, binary) -> float:
    if binary:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr"))


def _metrics(y: np.ndarray, proba: np.ndarray, binary: bool, config: ModelConfig) -> dict[str, float]:
    rng = np.random.default_rng(config.random_state)
    out: dict[str, float] = {"roc_auc": _auc(y, proba, binary)}
    boot_auc, boot_ap = [], []
    for _ in range(config.n_bootstrap):
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), np.sum(y == c)) for c in np.unique(y)])
        boot_auc.append(_auc(y[idx], proba[idx], binary))
        if binary:
            boot_ap.append(average_precision_score(y[idx], proba[idx, 1]))
    if config.n_bootstrap:
        out["roc_auc_ci_low"], out["roc_auc_ci_high"] = (
            float(q) for q in np.percentile(boot_auc, [2.5, 97.5])
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
        out["pr_auc_ci_low"], out["pr_auc_ci_high"] = (float(q) for q in np.percentile(boot_ap, [2.5, 97.5]))
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
    progress: Callable[[str], None] | None, data: Dataset, config: ModelConfig, observed: float
) -> tuple[float, float]:
    """p = (1 + #{AUC with shuffled labels >= observed}) / (1 + n), one outer repeat each."""
    rng = np.random.default_rng(config.random_state + 10_000)
    quick = ModelConfig(**{**asdict(config), "repeats": 1, "n_permutations": 0, "n_bootstrap": 0})
    aucs = []
    for _ in range(config.n_permutations):
        shuffled = Dataset(
            X=data.X,
            y=_shuffle(data.y, data.groups, rng),
            classes=data.classes,
            groups=data.groups,
            ids=data.ids,
        )
        aucs.append(evaluate(shuffled, quick)["metrics"]["roc_auc"])
        if progress is not None:
            progress(f"permutation {len(aucs)}")
    aucs = np.array(aucs)
    return float((1 + np.sum(aucs >= observed)) / (1 + len(aucs))), float(aucs.mean())


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
    "radimt.harmonize.ComBat",
    "numpy.dtype",
    "sklearn.feature_selection._univariate_selection.f_classif",
]


def train(data: Dataset, config: ModelConfig = ModelConfig()) -> Pipeline:
    """Fit the pipeline on all cases (hyper-parameters chosen by cross-validation)."""
    _check_sizes(
        data, ModelConfig(**{**asdict(config), "outer_splits": min(config.inner_splits, config.outer_splits)})
    )
    pipeline, grid = build_pipeline(config)
    X, y = data.X.to_numpy(float), data.y
    everything = np.arange(len(y))
    fitted = _fit_fold(pipeline, grid, X, y, data.groups, everything, config, config.random_state)
    fitted.feature_names_ = list(data.X.columns)
    fitted.classes_names_ = list(data.classes)
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


def predict(model: Pipeline, table: pd.DataFrame) -> pd.DataFrame:
    """Probabilities per case; the table must hold every feature the model was trained on."""
    names = [n for n in model.feature_names_ if n != BATCH_COLUMN]
    missing = [n for n in names if n not in table]
    if missing:
        raise ClassifierError(f"{len(missing)} feature column(s) the model needs are missing: {missing[:10]}")
    X = pd.DataFrame(
        {
            n: pd.to_numeric(table[n].map(_ordinal(n)) if _ordinal(n) else table[n], errors="coerce")
            for n in names
        }
    )
    X[BATCH_COLUMN] = 0.0
    proba = model.predict_proba(X.to_numpy(float))
    classes = model.classes_names_
    out = table[[c for c in ID_COLUMNS if c in table]].copy()
    for i, name in enumerate(classes):
        out[f"probability_{name}"] = proba[:, i]
    return out


def _ordinal(name: str) -> dict | None:
    return next((ORDINALS[k] for k in ORDINALS if name.endswith(k)), None)


def model_card(
    data: Dataset, config: ModelConfig, model: Pipeline, evaluation: dict | None
) -> dict[str, Any]:
    """Training summary, features, versions and metrics, saved beside the model."""
    import sklearn

    from radimt import __version__

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
        "threshold": config.threshold,
        "metrics": (evaluation or {}).get("metrics", {}),
        "warning": "Trained on the data given (radimt's own cohort is synthetic); not a diagnostic device.",
    }
