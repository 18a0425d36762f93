"""What a feature table must not hide: per-lesion warnings and columns that carry no information.

A mistake that leaves every number in place but makes a family of them meaningless (a bin width
that puts a whole ROI into one grey level, a feature constant over the cohort) is worse than a
failure: it goes silently into a model. The batch collects such findings here, prints them at
the end, writes them to ``run.json`` and shows them in the report; each lesion's own are in its
``qc_warnings`` column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from radimt.pipeline.record import LesionRecord

#: The warning of a role whose lesion has too few grey levels for texture (radimt.features').
FEW_GREY_LEVELS = "few grey levels"


@dataclass
class TableQuality:
    """Findings about a whole features table.

    Attributes
    ----------
    warnings
        One entry per (role, kind) of lesion warning: how many lesions, the range of what was
        measured (grey levels), an example message.
    constant_columns
        Numeric feature columns with one value in every lesion that has one (at least two
        lesions): they cannot separate anything.
    """

    warnings: list[dict[str, Any]] = field(default_factory=list)
    constant_columns: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The findings as sentences (what the batch prints and the report shows)."""
        out = [
            f"{w['role']}: {w['lesions']} lesion(s) with {w['grey_levels']} grey level(s) ({w['binning']}, "
            f"intensities {w['intensities']}): texture features cannot vary between lesions with fewer "
            f"than {w['minimum']}; choose a bin width of about (intensity range / 32) in this image's "
            "units, or a bin count"
            if w["kind"] == FEW_GREY_LEVELS
            else f"{w['role']}: {w['lesions']} lesion(s): {w['kind']} (e.g. {w['example']})"
            for w in self.warnings
        ]
        if self.constant_columns:
            shown = ", ".join(self.constant_columns[:8])
            more = f" and {len(self.constant_columns) - 8} more" if len(self.constant_columns) > 8 else ""
            out.append(
                f"{len(self.constant_columns)} feature column(s) hold one value in every lesion "
                f"(they cannot separate lesions): {shown}{more}"
            )
        return out


def lesion_warnings(record: LesionRecord) -> list[dict[str, Any]]:
    """The warnings a lesion's analysis recorded (``provenance["warnings"]``)."""
    found = (record.provenance or {}).get("warnings", [])
    return [dict(w) for w in found if isinstance(w, Mapping)]


def warning_text(warnings: Sequence[Mapping[str, Any]]) -> str:
    """A lesion's warnings in one cell: ``adc: 1 grey level (bin width 25)``."""
    return "; ".join(
        f"{w.get('role', '?')}: {w.get('grey_levels')} grey level(s) ({w.get('binning')})"
        if w.get("kind") == FEW_GREY_LEVELS
        else f"{w.get('role', '?')}: {w.get('message', '')}"
        for w in warnings
    )


def table_quality(records: Sequence[LesionRecord], rows: Sequence[Mapping[str, Any]]) -> TableQuality:
    """Collect the lesions' warnings by role and kind, and find constant numeric columns."""
    from radimt.features import MIN_GREY_LEVELS

    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        for warning in lesion_warnings(record):
            key = (str(warning.get("role", "?")), str(warning.get("kind", "")))
            grouped.setdefault(key, []).append(warning)
    summary = []
    for (role, kind), found in sorted(grouped.items()):
        if kind != FEW_GREY_LEVELS:
            summary.append(
                {
                    "role": role,
                    "kind": kind,
                    "lesions": len(found),
                    "example": str(found[0].get("message", "")),
                }
            )
            continue
        levels = sorted({int(w.get("grey_levels", 0)) for w in found})
        span = str(levels[0]) if len(levels) == 1 else f"{levels[0]}-{levels[-1]}"
        ranges = [w["intensity_range"] for w in found if len(w.get("intensity_range") or []) == 2]
        low = min((r[0] for r in ranges), default=float("nan"))
        high = max((r[1] for r in ranges), default=float("nan"))
        summary.append(
            {
                "role": role,
                "kind": kind,
                "lesions": len(found),
                "grey_levels": span,
                "binning": ", ".join(sorted({str(w.get("binning", "")) for w in found})),
                "minimum": MIN_GREY_LEVELS,
                "intensities": f"{low:.4g} to {high:.4g}",
                "example": str(found[0].get("message", "")),
            }
        )
    return TableQuality(warnings=summary, constant_columns=constant_columns(rows))


#: Columns that are not features (identity, status, the reference role's name...).
_NOT_FEATURES = {"lesion_reference_role"}


def constant_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Numeric columns whose values (at least two, missing ones aside) are all equal, sorted."""
    values: dict[str, set[float]] = {}
    counts: dict[str, int] = {}
    varied: set[str] = set()
    for row in rows:
        for column, value in row.items():
            if column in varied or column in _NOT_FEATURES or isinstance(value, (bool, str)) or value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isnan(number):
                continue
            seen = values.setdefault(column, set())
            seen.add(round(number, 12))
            counts[column] = counts.get(column, 0) + 1
            if len(seen) > 1:
                varied.add(column)
    return sorted(c for c, seen in values.items() if c not in varied and counts[c] >= 2)
