"""Batch manifests: one row per lesion, validated as a whole before any work starts."""

from __future__ import annotations

import csv
import difflib
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from radimt.analysis import MODALITY_KEYS, ModalitySeed
from radimt.errors import ManifestError, OutputFolderError
from radimt.roles import ROLES, Role, role

RESERVED = {
    "study_id",
    "path",
    "lesion_id",
    "label",
    "seed_x",
    "seed_y",
    "seed_z",
    "seed_i",
    "seed_j",
    "seed_k",
    "seed_series",
    "mask",
    "mask_path",
    "image",
    "id",
    "study_uid",
}

#: A seed for one more modality of the lesion (:class:`radimt.ModalitySeed`):
#: ``<key>_seed_x/_y[/_z]`` in mm or ``<key>_seed_i/_j[/_k]`` as an index, with an optional
#: ``<key>_series``. The key is a role (``us``, ``ct``, ``t2``, ...) or ``mg_<view>``.
MODALITY_SEED_COLUMN = re.compile(r"^(?P<key>[a-z0-9]+(?:_[a-z]+)?)_seed_(?P<axis>[xyzijk])$")


@dataclass(frozen=True)
class LesionTask:
    """One lesion to process: where the study is, how to find the lesion, what to carry along."""

    study_id: str
    lesion_id: str
    path: str
    seed: tuple[float, ...] | None = None
    seed_is_index: bool = False
    seed_series: str | None = None
    mask_path: str | None = None
    image_path: str | None = None  # pyradiomics-style rows: an image file instead of a study
    label: str = ""
    study_uid: str | None = None  # which study to keep when the folder holds several
    mask_label: int | None = None  # pyradiomics rows: the Label column (the mask value to measure)
    label_channel: int | None = None  # pyradiomics rows: Label_channel (vector masks)
    extra: dict[str, str] = field(default_factory=dict)
    modality_seeds: tuple[ModalitySeed, ...] = ()  # seeds on the study's other modalities

    @property
    def safe_study(self) -> str:
        return safe_id(self.study_id)

    @property
    def safe_lesion(self) -> str:
        return safe_id(self.lesion_id)

    def identity(self) -> dict[str, str]:
        """The identifying and passed-through columns for the output row."""
        return {"study_id": self.study_id, "lesion_id": self.lesion_id, "label": self.label, **self.extra}


#: The longest study or lesion id a manifest may give (each becomes a folder name; file
#: systems allow 255 bytes per name).
MAX_ID_LENGTH = 128


def lesion_dir(out: Path, task: LesionTask) -> Path:
    """Where a batch keeps one lesion's outputs: ``OUT/lesions/<study>/<lesion>`` (safe ids)."""
    return Path(out) / "lesions" / task.safe_study / task.safe_lesion


def check_inside(out: Path, folder: Path) -> None:
    """Refuse a folder under ``out`` that leads elsewhere (a symbolic link planted on the way):
    radimt writes only inside its output folder.

    Raises
    ------
    OutputFolderError
        Naming the link and where it leads.
    """
    root = Path(out).resolve()
    path = Path(out)
    for part in folder.relative_to(out).parts:
        path = path / part
        if path.is_symlink() or (path.exists() and not path.resolve().is_relative_to(root)):
            raise OutputFolderError(
                f"{path} leads outside the output folder (to {path.resolve()}); radimt writes only "
                f"inside {out}: remove that link, or choose another --out"
            )


def lesion_folder(out: Path, task: LesionTask) -> Path:
    """:func:`lesion_dir`, created, after :func:`check_inside` (and again once created)."""
    folder = lesion_dir(out, task)
    check_inside(out, folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_inside(out, folder)
    return folder


def safe_id(value: str) -> str:
    """A study or lesion id usable as one path component (no separators, no ``..``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("._")
    return cleaned or "_"


def _number(text: str, what: str, problems: list[str], line: int) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"line {line}: {what} {text!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"line {line}: {what} {text!r} is not a finite number")
        return None
    return value


def read_manifest(
    path: str | os.PathLike[str],
    *,
    keep_columns: Sequence[str] = (),
    reference: Role | str = Role.DCE,
) -> list[LesionTask]:
    """Read and validate a manifest CSV (radimt's, or pyradiomics' ``Image,Mask`` batch file).

    radimt manifests have ``study_id`` and ``path`` (a study folder, relative to the manifest),
    and per lesion a seed (``seed_x,seed_y,seed_z`` in LPS mm — ``seed_z`` empty for 2D — or
    ``seed_i,seed_j[,seed_k]`` with ``seed_series``) or a ``mask`` file, and seeds on other
    modalities (``us_seed_i``...). ``lesion_id``, ``label``, ``group``, ``site`` and ``scanner``
    are carried to the output; any other column only when it is declared in ``keep_columns``
    (``--keep-columns``, or the pipeline's ``keep_columns``): an undeclared column is more often a
    typo (``sead_z``) than data, and is refused up front with the closest known name.
    ``study_uid`` chooses one StudyInstanceUID when a folder holds several studies. A study_id
    names one study: every row of it must give the same path (and study_uid).

    A seed without ``seed_series`` must have the reference role's dimensions (3 coordinates for
    the DCE, CT, MR volumes; 2 for a mammogram or an ultrasound image); a seed on another
    modality, its role's. pyradiomics manifests carry every column, as pyradiomics' batch does.

    Raises
    ------
    ManifestError
        Listing every problem: missing or unknown columns, paths that do not exist, malformed
        seeds, seeds of the wrong dimension, duplicate study/lesion ids.
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc})") from None
    base = path.parent
    if not rows:
        raise ManifestError(f"{path}: the manifest has no rows (only a header?); add one row per lesion")
    if {"Image", "Mask"} <= set(columns):
        return _pyradiomics_rows(path, base, columns, rows)
    missing = [c for c in ("study_id", "path") if c not in columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; a manifest needs study_id and path")
    problems: list[str] = []
    tasks: list[LesionTask] = []
    per_study = Counter(row["study_id"] for row in rows)
    counters: Counter[str] = Counter()
    seed_columns = _modality_seed_columns(columns)
    keep = set(keep_columns)
    extra_columns = [c for c in columns if c not in RESERVED and c not in seed_columns and c != ""]

    def carried(column: str) -> bool:
        return column in CARRIED or column in keep or column.startswith(CANDIDATE_PREFIX)

    for column in extra_columns:
        if not carried(column):
            problems.append(_unknown_column(column))
    extra_columns = [c for c in extra_columns if carried(c)]
    reference_dims = 2 if role(reference).planar else 3
    for line, row in enumerate(rows, start=2):
        study_id = row["study_id"]
        if not study_id:
            problems.append(f"line {line}: empty study_id")
            continue
        study_path = (base / row["path"]).resolve() if row["path"] else None
        if study_path is None or not study_path.exists():
            problems.append(f"line {line}: study folder {row['path']!r} does not exist (relative to {base})")
        counters[study_id] += 1
        lesion_id = row.get("lesion_id") or (str(counters[study_id]) if per_study[study_id] > 1 else "1")
        for name, value in (("study_id", study_id), ("lesion_id", lesion_id)):
            if len(value) > MAX_ID_LENGTH:
                problems.append(
                    f"line {line}: {name} of {len(value)} characters ({value[:24]}...); ids are at most "
                    f"{MAX_ID_LENGTH} characters (each names a folder of the output)"
                )
        seed, is_index, mask_path = _lesion_locator(row, line, base, problems)
        if seed is not None and not row.get("seed_series") and len(seed) != reference_dims:
            problems.append(_wrong_dimensions(line, "seed", seed, is_index, reference, reference_dims))
        tasks.append(
            LesionTask(
                study_id=study_id,
                lesion_id=lesion_id,
                path=str(study_path or ""),
                seed=seed,
                seed_is_index=is_index,
                seed_series=row.get("seed_series") or None,
                mask_path=mask_path,
                label=row.get("label", ""),
                study_uid=row.get("study_uid") or None,
                extra={c: row.get(c, "") for c in extra_columns},
                modality_seeds=_modality_seeds(row, columns, line, problems),
            )
        )
    _check_one_study_per_id(tasks, problems)
    _check_unique(tasks, problems)
    _raise_problems(path, problems)
    return tasks


#: Columns carried into features.csv without being declared: the patient (``group``), ``site`` and
#: ``scanner``, which the classifier's grouping and harmonisation read, and ``review_status``
#: (``radimt review``'s revised manifest; the classifier leaves rejected lesions out).
CARRIED = ("group", "site", "scanner", "review_status")
#: Columns ``radimt propose`` writes about each candidate (score, size, reasons...), carried too.
CANDIDATE_PREFIX = "candidate_"
_DECLARE = (
    "to carry a column of your own into features.csv, declare it "
    "(--keep-columns NAME, or keep_columns in the pipeline)"
)


def _known_columns() -> list[str]:
    keys = [*ROLES, "mg_cc", "mg_mlo"]
    modality = [f"{k}_seed_{a}" for k in keys for a in "xyzijk"] + [f"{k}_series" for k in keys]
    return sorted({*RESERVED, *CARRIED, *modality} - {"image", "id"})  # those two: pyradiomics' manifests


def _unknown_column(column: str) -> str:
    close = difflib.get_close_matches(column, _known_columns(), n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"line 1: unknown column {column!r}{hint}; {_DECLARE}"


def _wrong_dimensions(
    line: int, what: str, seed: tuple[float, ...], is_index: bool, kind: Role | str, expected: int
) -> str:
    axes = ("ijk" if is_index else "xyz")[: len(seed)]
    names = ", ".join(f"{what}_{a}" for a in axes)
    shape = "a 2D image" if expected == 2 else "3D"
    need = "give the third coordinate too" if expected == 3 else "leave the third coordinate empty"
    return f"line {line}: {what} has {len(seed)} coordinate(s) ({names}) but {kind} is {shape}; {need}"


def _raise_problems(path: Path, problems: list[str]) -> None:
    """Every problem of the manifest at once, so one fix-up round is enough."""
    if problems:
        listing = "\n  ".join(problems)
        raise ManifestError(f"{path}: {len(problems)} problem(s), nothing was processed:\n  {listing}")


def _lesion_locator(
    row: dict[str, str], line: int, base: Path, problems: list[str]
) -> tuple[tuple[float, ...] | None, bool, str | None]:
    lps = [row.get(f"seed_{a}", "") for a in "xyz"]
    index = [row.get(f"seed_{a}", "") for a in "ijk"]
    mask = row.get("mask") or row.get("mask_path") or ""
    if mask:
        mask_path = (base / mask).resolve()
        if not mask_path.exists():
            problems.append(f"line {line}: mask file {mask!r} does not exist")
        return None, False, str(mask_path)
    if lps[0] and lps[1]:
        values = [_number(v, f"seed_{a}", problems, line) for v, a in zip(lps, "xyz", strict=True) if v]
        return _all_numbers(values), False, None
    if index[0] and index[1]:
        values = [_number(v, f"seed_{a}", problems, line) for v, a in zip(index, "ijk", strict=True) if v]
        return _all_numbers(values), True, None
    problems.append(f"line {line}: no seed (seed_x,seed_y,seed_z or seed_i,seed_j,seed_k) and no mask")
    return None, False, None


def _all_numbers(values: list[float | None]) -> tuple[float, ...] | None:
    """The values as a seed, or ``None`` when any of them was not a number (already a problem)."""
    numbers = [v for v in values if v is not None]
    return tuple(numbers) if len(numbers) == len(values) else None


def _modality_seed_columns(columns: list[str]) -> set[str]:
    """The per-modality seed columns of a manifest (and their ``<key>_series``)."""
    keys = {m["key"] for c in columns if (m := MODALITY_SEED_COLUMN.match(c)) and m["key"] != "seed"}
    return {c for c in columns if (m := MODALITY_SEED_COLUMN.match(c)) and m["key"] in keys} | {
        f"{k}_series" for k in keys if f"{k}_series" in columns
    }


def _modality_seeds(
    row: dict, columns: list[str], line: int, problems: list[str]
) -> tuple[ModalitySeed, ...]:
    keys = sorted({m["key"] for c in columns if (m := MODALITY_SEED_COLUMN.match(c))})
    seeds = []
    for key in keys:
        values = {a: row.get(f"{key}_seed_{a}", "") for a in "xyzijk"}
        if not any(values.values()):
            continue  # no seed on this modality for this lesion
        kind, _, view = key.partition("_")
        if kind not in ROLES or (view and kind != Role.MG):
            problems.append(f"line {line}: {key}_seed_*: {key!r} is not a modality; {MODALITY_KEYS}")
            continue
        mm, index = "xyz", "ijk"
        axes = mm if values["x"] and values["y"] else index if values["i"] and values["j"] else None
        if axes is None:
            problems.append(
                f"line {line}: {key}: give {key}_seed_x,_y[,_z] (mm) or {key}_seed_i,_j[,_k] (index)"
            )
            continue
        numbers = [_number(values[a], f"{key}_seed_{a}", problems, line) for a in axes if values[a]]
        if None in numbers:
            continue
        seed = tuple(n for n in numbers if n is not None)
        dims = 2 if Role(kind).planar else 3
        if len(seed) != dims:
            problems.append(_wrong_dimensions(line, f"{key}_seed", seed, axes == index, kind, dims))
            continue
        seeds.append(ModalitySeed(key, seed, axes == index, row.get(f"{key}_series") or None))
    return tuple(seeds)


def _check_one_study_per_id(tasks: list[LesionTask], problems: list[str]) -> None:
    """One study_id names one study: the same folder (and study_uid) on every row."""
    first: dict[str, LesionTask] = {}
    for t in tasks:
        seen = first.setdefault(t.study_id, t)
        if (seen.path, seen.study_uid) != (t.path, t.study_uid):
            what = "path" if seen.path != t.path else "study_uid"
            problems.append(
                f"study {t.study_id!r} lesion {t.lesion_id!r}: {what} {getattr(t, what)!r} differs from "
                f"{getattr(seen, what)!r} on its lesion {seen.lesion_id!r}; one study_id is one study"
            )


def _check_unique(tasks: list[LesionTask], problems: list[str]) -> None:
    seen: dict[tuple[str, str], str] = {}
    safe: dict[tuple[str, str], tuple[str, str]] = {}
    for t in tasks:
        key = (t.study_id, t.lesion_id)
        if key in seen:
            problems.append(
                f"study {t.study_id!r} lesion {t.lesion_id!r} appears twice; give each its own lesion_id"
            )
        seen[key] = t.study_id
        folder = (t.safe_study, t.safe_lesion)
        if folder in safe and safe[folder] != key:
            first = safe[folder][0]
            problems.append(f"study ids {first!r} and {t.study_id!r} map to one output folder {folder[0]!r}")
        safe[folder] = key


def _whole(text: str, what: str, problems: list[str], line: int) -> int | None:
    """A whole number from a cell (``None`` when empty), else a problem for the line."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        problems.append(f"line {line}: {what} {text!r} is not a whole number")
        return None


def _pyradiomics_rows(path: Path, base: Path, columns: list[str], rows: list[dict]) -> list[LesionTask]:
    problems: list[str] = []
    tasks = []
    extra_columns = [c for c in columns if c not in {"Image", "Mask", "study_id"}]  # ID too, as pyradiomics
    for line, row in enumerate(rows, start=2):
        image, mask = (base / row["Image"]).resolve(), (base / row["Mask"]).resolve()
        for what, file in (("image", image), ("mask", mask)):
            if not file.exists():
                problems.append(f"line {line}: {what} file {str(file)!r} does not exist")
        study_id = row.get("ID") or row.get("study_id") or f"case{line - 1}"
        label, channel = (_whole(row.get(c, ""), c, problems, line) for c in ("Label", "Label_channel"))
        tasks.append(
            LesionTask(
                study_id=study_id,
                lesion_id=row.get("Label") or "1",
                path=str(image.parent),
                image_path=str(image),
                mask_path=str(mask),
                mask_label=label,
                label_channel=channel,
                extra={"Image": str(image), "Mask": str(mask), **{c: row.get(c, "") for c in extra_columns}},
            )
        )
    _check_unique(tasks, problems)
    _raise_problems(path, problems)
    return tasks
