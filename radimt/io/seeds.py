"""Seed points from CSV files and 3D Slicer markups (converted to LPS)."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from radimt.errors import SeedFileError

#: RAS (3D Slicer) = diag(-1, -1, 1) · LPS (DICOM/ITK).
RAS_TO_LPS = (-1.0, -1.0, 1.0)


@dataclass(frozen=True)
class Seed:
    """A seed point: LPS millimetres, or a voxel index of a named series.

    Attributes
    ----------
    point
        (x, y, z) in LPS mm, or (i, j, k) when ``is_index``.
    is_index
        Whether ``point`` is a voxel index.
    label
        The lesion's name or id (``""`` when none was given).
    series
        The series the index refers to (SeriesNumber or ``"5.2"``), when given.
    """

    point: tuple[float, ...]
    is_index: bool = False
    label: str = ""
    series: str | None = None


def _pick(row: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def read_seeds_csv(path: str | os.PathLike[str]) -> list[Seed]:
    """Seeds from a CSV with ``x,y,z`` (LPS mm) or ``i,j,k`` (voxel index) columns.

    ``seed_x``/``seed_i`` spellings (as in batch manifests) work too; optional columns:
    ``label`` or ``lesion_id``, and ``series`` or ``seed_series`` for indices.
    """
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    seeds = []
    for n, row in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        lps = [_pick(row, a, f"seed_{a}") for a in "xyz"]
        index = [_pick(row, a, f"seed_{a}") for a in "ijk"]
        label = _pick(row, "label", "lesion_id", "name") or ""
        try:
            if None not in lps:
                seeds.append(Seed(tuple(float(v or "") for v in lps), False, label))
            elif None not in index:
                series = _pick(row, "series", "seed_series")
                seeds.append(Seed(tuple(float(v or "") for v in index), True, label, series))
            else:
                raise SeedFileError(f"{path}, line {n}: give x,y,z (LPS mm) or i,j,k (voxel index)")
        except ValueError as exc:
            raise SeedFileError(f"{path}, line {n}: seed coordinates must be numbers ({exc})") from None
    if not seeds:
        raise SeedFileError(f"{path}: no seeds found")
    return seeds


def read_slicer_markups(path: str | os.PathLike[str]) -> list[Seed]:
    """Seeds from a 3D Slicer markups file (``.mrk.json``), converted to LPS.

    Slicer writes control points in RAS unless ``coordinateSystem`` says ``LPS``; RAS points
    are negated in x and y. Positions must be three finite numbers in either system.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except RecursionError:
        raise SeedFileError(f"{path}: JSON nested too deeply to be a markups file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SeedFileError(f"{path}: not a readable markups JSON file ({exc})") from None
    if not isinstance(doc, dict):
        raise SeedFileError(
            f"{path}: a markups file is a JSON object with a 'markups' list, not a {type(doc).__name__}"
        )
    markups = doc.get("markups", [])
    if not isinstance(markups, list) or not all(isinstance(m, dict) for m in markups):
        raise SeedFileError(f"{path}: markups is a list of objects (as 3D Slicer writes it)")
    seeds = []
    for markup in markups:
        system = str(markup.get("coordinateSystem", "RAS")).upper()
        if system not in ("RAS", "LPS"):
            raise SeedFileError(f"{path}: unknown coordinateSystem {system!r} (RAS or LPS)")
        points = markup.get("controlPoints", [])
        if not isinstance(points, list):
            raise SeedFileError(f"{path}: controlPoints is a list of objects (as 3D Slicer writes it)")
        for i, point in enumerate(points, start=1):
            if not isinstance(point, dict):
                raise SeedFileError(f"{path}: control point {i} is not an object")
            position = _position(point.get("position"), f"{path}: control point {i}")
            if system == "RAS":
                position = (-position[0], -position[1], position[2])  # RAS -> LPS
            seeds.append(Seed(position, False, str(point.get("label", ""))))
    if not seeds:
        raise SeedFileError(f"{path}: no control points in this markups file")
    return seeds


def _position(value: object, where: str) -> tuple[float, float, float]:
    """Three finite numbers (JSON numbers, not text), or a SeedFileError naming the point."""
    if not isinstance(value, list) or len(value) != 3:
        raise SeedFileError(f"{where} has no 3D position (three numbers)")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise SeedFileError(f"{where}: position {value!r} must be three numbers (not text or null)")
    if not all(math.isfinite(v) for v in value):
        raise SeedFileError(f"{where}: position {value!r} must be three finite numbers")
    x, y, z = (float(v) for v in value)
    return x, y, z


def read_seeds(path: str | os.PathLike[str]) -> list[Seed]:
    """Seeds from a CSV or a 3D Slicer ``.json`` markups file, by extension."""
    if str(path).lower().endswith(".json"):
        return read_slicer_markups(path)
    return read_seeds_csv(path)
