"""Separate IMT from its mimics: a leakage-safe scikit-learn pipeline, nested cross-validation,
honest metrics with confidence intervals, safe persistence (skops) and prediction.

- :mod:`~radimt.classify.data`: feature tables to predictors, labels, patients and sites;
- :mod:`~radimt.classify.model`: the pipeline, its inner hyper-parameter search, training,
  prediction;
- :mod:`~radimt.classify.validation`: nested cross-validation and the permutation test;
- :mod:`~radimt.classify.statistics`: AUCs, bootstrap intervals, calibration, net benefit;
- :mod:`~radimt.classify.persistence`: model files (skops) and their cards;
- :mod:`~radimt.classify.harmonisation`: ComBat inside the pipeline.
"""

from radimt.classify.config import ModelConfig
from radimt.classify.data import Dataset, excluded_lines, load_table, read_features
from radimt.classify.harmonisation import ComBat
from radimt.classify.model import (
    UNKNOWN_SITE,
    CorrelationFilter,
    DropBatch,
    PlattCalibrated,
    build_pipeline,
    platt_scaling,
    predict,
    probability_column,
    selected_features,
    train,
)
from radimt.classify.persistence import TRUSTED, load_model, load_model_card, model_card, save_model
from radimt.classify.statistics import calibration, decision_curve, repeat_interval
from radimt.classify.validation import Evaluation, evaluate
from radimt.errors import ClassifierError

__all__ = [
    "TRUSTED",
    "UNKNOWN_SITE",
    "ClassifierError",
    "ComBat",
    "CorrelationFilter",
    "Dataset",
    "DropBatch",
    "Evaluation",
    "ModelConfig",
    "PlattCalibrated",
    "build_pipeline",
    "calibration",
    "decision_curve",
    "evaluate",
    "excluded_lines",
    "load_model",
    "load_model_card",
    "load_table",
    "model_card",
    "platt_scaling",
    "predict",
    "probability_column",
    "read_features",
    "repeat_interval",
    "save_model",
    "selected_features",
    "train",
]
