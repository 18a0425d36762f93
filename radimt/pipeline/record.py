"""What a batch keeps of one finished lesion: the typed record behind ``result.json``.

The worker writes it (last, atomically, after the mask and figures); the runner reads it to
resume and to assemble the tables; the report reads it to show the lesion. One dataclass, so
the three cannot drift apart by key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from radimt.io.atomic import atomic_path

RESULT = "result.json"
ERROR = "error.json"


@dataclass
class LesionRecord:
    """One finished lesion, as ``lesions/<study>/<lesion>/result.json`` holds it.

    Attributes
    ----------
    row
        The lesion's features (one row of features.csv, without the identifying columns).
    curves
        The time-intensity curves as table rows (kinetics.csv).
    figures
        File names of the figures in the lesion's folder.
    provenance
        Per-role feature diagnostics and the roles left out with why.
    fingerprint
        Digest of the manifest row, the configuration and radimt's version that made it.
    checksum
        Cheap digest of the study folder it was made from.
    seconds
        Wall seconds for the lesion.
    stage_seconds
        Wall seconds per stage (the study's stages shared by its lesions, then its own).
    """

    row: dict[str, Any]
    curves: list[dict[str, Any]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    checksum: str = ""
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LesionRecord:
        """A record from :meth:`to_json`'s data (keys it does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, folder: Path) -> None:
        """Write ``folder/result.json`` atomically."""
        write_json(folder / RESULT, self.to_json())

    @classmethod
    def read(cls, folder: Path) -> LesionRecord | None:
        """The record in ``folder``, or ``None`` when there is none or it cannot be read."""
        try:
            return cls.from_json(json.loads((folder / RESULT).read_text()))
        except (OSError, json.JSONDecodeError, TypeError):
            return None


@dataclass
class LesionStatus:
    """How one lesion of a batch ended, as a worker reports it to the runner.

    Attributes
    ----------
    study_id, lesion_id
        The lesion.
    status
        ``done`` or ``failed``.
    reason
        Why it failed (``''`` when done).
    seconds
        Wall seconds for the lesion.
    study_seconds
        Wall seconds for its whole study (shared by the study's lesions).
    """

    study_id: str
    lesion_id: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    study_seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (sorted keys, numpy values as plain numbers)."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True, default=_jsonable)
        fh.write("\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
