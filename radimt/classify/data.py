"""Feature tables in: predictors, labels, patients and sites, with every column left out or
converted said (radimt's features.csv, or another tool's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from radimt.classify.config import ModelConfig
from radimt.errors import ClassifierError
from radimt.io.tables import ID_COLUMNS

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


@dataclass
class Dataset:
    """A feature table ready for modelling (``excluded``: the table's rows left out, and why)."""

    X: pd.DataFrame
    y: np.ndarray
    classes: list[str]
    groups: np.ndarray | None
    ids: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)
    converted: dict[str, str] = field(default_factory=dict)
    excluded: list[dict[str, str]] = field(default_factory=list)
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
    frame, excluded = _usable_rows(frame)
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
    id_columns = [c for c in (*ID_COLUMNS, *ROW_COLUMNS, label, group) if c in frame]
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
        values, encoding = numeric_column(frame[column], column, clinical)
        if encoding:
            converted[column] = encoding
        if values.isna().all():
            dropped[column] = "no numeric values"
            continue
        features[column] = values
    if not features:
        raise ClassifierError("no numeric feature columns in the table (NaN-only or text only)")
    refuse_infinite(features)
    X = pd.DataFrame(features).reset_index(drop=True)
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
        ids=frame[id_columns].reset_index(drop=True),
        dropped=dropped,
        converted=converted,
        excluded=excluded,
        batch_levels=[str(v) for v in levels],
        sites=sites,
    )


#: Columns of a radimt features table that describe a row and never predict: how its analysis
#: ended (``status``: done, failed, not processed), why, what to check, and the reviewer's verdict.
ROW_COLUMNS = ("status", "error", "qc_warnings", "review_status")


def _usable_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """The rows a model may learn from, and the others with why: a lesion whose analysis did not
    finish (``status`` other than done) or that a reviewer rejected (``review_status``)."""
    frame = frame.reset_index(drop=True)  # row i is table line i + 2, as messages say
    keep = pd.Series(True, index=frame.index)
    reasons = pd.Series("", index=frame.index)
    if "status" in frame:
        status = _text(frame["status"]).str.strip()
        bad = status.ne("done")
        error = _text(frame["error"]) if "error" in frame else ""
        reasons[bad] = (status + ": " + error)[bad].str.rstrip(": ")
        keep &= ~bad
    if "review_status" in frame:
        rejected = _text(frame["review_status"]).str.strip().eq("rejected") & keep
        reasons[rejected] = "rejected in review"
        keep &= ~rejected
    excluded = [
        {
            "line": str(i + 2),
            "study_id": str(frame.at[i, "study_id"]) if "study_id" in frame else "",
            "lesion_id": str(frame.at[i, "lesion_id"]) if "lesion_id" in frame else "",
            "reason": str(reasons[i]),
        }
        for i in frame.index[~keep]
    ]
    return frame[keep], excluded  # the index keeps the table's line numbers


def refuse_infinite(columns: dict[str, pd.Series]) -> None:
    """Refuse feature values of ±infinity, naming each column and its table lines (a series'
    index is the row's position in the table, header = line 1).

    An infinite feature is a fault of the analysis that made it (a ratio over a zero), not a
    large number: no imputation or scaling can use it, and scikit-learn stops on it.
    """
    found = []
    for column, values in columns.items():
        infinite = pd.Series(np.isinf(values.to_numpy(float)), index=values.index)
        if infinite.any():
            found.append(f"{column}: infinite at line {_lines(infinite).replace(', ', ', line ')}")
    if found:
        raise ClassifierError(
            "feature values of ±infinity (" + "; ".join(found[:10]) + "): find why the analysis "
            "produced them, or blank those cells (a blank is imputed and said so)"
        )


def excluded_lines(excluded: list[dict[str, str]]) -> list[str]:
    """Rows left out, one sentence each (``study a lesion 1 (line 3): failed: SeedError: ...``)."""
    return [
        f"study {e['study_id']} lesion {e['lesion_id']} (line {e['line']}): {e['reason']}" for e in excluded
    ]


def _text(column: pd.Series) -> pd.Series:
    """A column as text, empty cells as '' (an all-empty column reads as float NaN)."""
    return column.astype(object).where(column.notna(), "").astype(str)


def _lines(rows: pd.Series) -> str:
    """Table line numbers (header = line 1) of the true rows, the first ten."""
    lines = [str(i + 2) for i in rows.index[rows.to_numpy()]]
    return ", ".join(lines[:10]) + (", ..." if len(lines) > 10 else "")


def numeric_column(values: pd.Series, column: str, clinical: bool) -> tuple[pd.Series, str]:
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


def smallest_class(data: Dataset) -> tuple[int, int]:
    """Cases of the smallest class, and its independent units (patients when grouped)."""
    counts = np.bincount(data.y)
    smallest_class = int(np.flatnonzero(counts == counts[counts > 0].min())[0])
    smallest = int(counts[smallest_class])
    if data.groups is None:
        return smallest, smallest
    return smallest, len(set(data.groups[data.y == smallest_class]))


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
