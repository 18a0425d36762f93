"""Models on disk without pickle (skops, only trusted types) and the card beside each."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

import numpy as np
import sklearn
import skops.io as sio
from sklearn.pipeline import Pipeline

from radimt._version import __version__
from radimt.classify.config import ModelConfig
from radimt.classify.data import BATCH_COLUMN, Dataset
from radimt.classify.model import selected_features
from radimt.errors import ClassifierError
from radimt.io.atomic import atomic_path

#: Types a model file may hold beyond skops' defaults: radimt's own steps, and what the
#: pipeline itself references. Anything else is refused before loading.
TRUSTED = [
    "radimt.classify.model.CorrelationFilter",
    "radimt.classify.model.DropBatch",
    "radimt.classify.model.PlattCalibrated",
    "radimt.classify.harmonisation.ComBat",
    # where radimt 0.1 kept them (still importable from the package)
    "radimt.classify.CorrelationFilter",
    "radimt.classify.DropBatch",
    "radimt.classify.PlattCalibrated",
    "numpy.dtype",
    "sklearn.feature_selection._univariate_selection.f_classif",
]


def save_model(model: Pipeline, path: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Save with skops (no pickle) and write the model card beside it (``.card.json``)."""
    with atomic_path(path) as tmp:
        sio.dump(model, tmp)
    with atomic_path(str(path) + ".card.json") as tmp, open(tmp, "w") as fh:
        json.dump(card, fh, indent=2, sort_keys=True, default=str)


def load_model(path: str | os.PathLike[str]) -> Pipeline:
    """Load a skops model, refusing any type outside scikit-learn, numpy and radimt's own."""
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


def model_card(
    data: Dataset, config: ModelConfig, model: Pipeline, evaluation: dict | None
) -> dict[str, Any]:
    """Training summary, features, versions and metrics, saved beside the model."""
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
        "rows_excluded": list(data.excluded),
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
