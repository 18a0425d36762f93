"""Models on disk without pickle (skops, only trusted types) and the card beside each."""

from __future__ import annotations

import hashlib
import json
import logging
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

log = logging.getLogger(__name__)

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
    """Save with skops (no pickle) and write the model card beside it (``.card.json``), with
    the SHA-256 of the model file (``model_sha256``) so a card is never read for another model."""
    with atomic_path(path) as tmp:
        sio.dump(model, tmp)
        digest = _sha256(tmp)
    with atomic_path(str(path) + ".card.json") as tmp, open(tmp, "w") as fh:
        json.dump({**card, "model_sha256": digest}, fh, indent=2, sort_keys=True, default=str)


def _sha256(path: str | os.PathLike[str]) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


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


def load_model_card(path: str | os.PathLike[str], model: Pipeline | None = None) -> dict[str, Any]:
    """The card ``radimt train`` wrote beside a model (``<model>.card.json``); ``{}`` if absent.

    With ``model`` (as :func:`load_model` read it from ``path``), the card must be this model's:
    its ``model_sha256`` that of the file, its classes, features and threshold the model's own.

    Raises
    ------
    ClassifierError
        The card is not JSON, not a mapping, its threshold is not a probability, or it
        disagrees with the model (edited, or written for another model).
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
    if model is not None:
        _check_card(card, model, path, card_path)
    return card


def _check_card(card: dict[str, Any], model: Pipeline, path: str | os.PathLike[str], card_path: str) -> None:
    """Refuse a card that is not the model's: another model's digest, or classes, features or a
    threshold the model does not have (a card edited by hand changes every prediction)."""
    digest = card.get("model_sha256")
    if digest is None:
        log.warning(
            "%s: the model card has no model digest (an earlier radimt wrote it); not checked",
            card_path,
        )
    elif digest != _sha256(path):
        raise ClassifierError(
            f"{card_path}: the model card was written for another model than {path}; {_RESTORE}"
        )
    names = [n for n in getattr(model, "feature_names_", []) if n != BATCH_COLUMN]
    for key, own in (
        ("classes", list(getattr(model, "classes_names_", []))),
        ("features_in", names),
        ("threshold", getattr(model, "threshold_", None)),
    ):
        if key in card and own not in (None, []) and card[key] != own:
            raise ClassifierError(
                f"{card_path}: the model card's {key} ({_short(card[key])}) is not the model's "
                f"({_short(own)}): the card was edited; {_RESTORE}"
            )


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


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
