"""How the classifier is built and evaluated: one frozen set of choices."""

from __future__ import annotations

from dataclasses import dataclass


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
