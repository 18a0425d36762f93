"""Slice geometry: order slices along the slice normal and check they form one regular volume.

Tolerances (stated once, used everywhere):

- Orientation: direction cosines of all slices agree within ``ORIENTATION_TOLERANCE``; row and
  column cosines are unit vectors at right angles within ``ORTHONORMAL_TOLERANCE`` (real scanners
  stay below 1e-6; a sheared or hand-edited orientation would load as a distorted volume).
- Slice spacing comes only from ImagePositionPatient projected on the slice normal (never from
  SliceThickness or SpacingBetweenSlices, which some vendors fill with the gap between slices).
- Uniformity: every slice lies within ``UNIFORM_TOLERANCE`` (10 %) of one slice step from a
  least-squares uniform grid. Positions rounded by the scanner (steps varying by ~1 %) pass.
- A step larger than ``MISSING_STEP_RATIO`` (1.5) times the median step means missing slices.
- Two images closer than ``DUPLICATE_RATIO`` (1 %) of the median step are duplicates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radimt.dicom.header import Frame
from radimt.errors import (
    DuplicateSliceError,
    MissingSliceError,
    MixedOrientationError,
    NonUniformSpacingError,
    SeriesAssemblyError,
)

ORIENTATION_TOLERANCE = 1e-4
ORTHONORMAL_TOLERANCE = 1e-3
UNIFORM_TOLERANCE = 0.10
MISSING_STEP_RATIO = 1.5
DUPLICATE_RATIO = 0.01
SHEAR_TOLERANCE = 0.10  # in-plane drift of slice origins, as a fraction of the pixel size


@dataclass(frozen=True)
class VolumeGeometry:
    """Where a stack of slices sits in patient space (LPS, mm), in SimpleITK's terms."""

    size: tuple[int, int, int]  # columns, rows, slices
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 3x3 row-major; columns are the x, y, z axes


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal (row cosines × column cosines) of a slice orientation."""
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    if norm < 1e-6:
        raise SeriesAssemblyError(f"degenerate ImageOrientationPatient {tuple(orientation)}")
    return normal / norm


def order_slices(frames: Sequence[Frame], label: str) -> tuple[list[Frame], VolumeGeometry]:
    """Sort the frames of one stack along the slice normal and derive the volume geometry.

    Parameters
    ----------
    frames
        The frames of one stack (one orientation, matrix, phase, b-value, echo).
    label
        How to name the series in error messages (number, description, folder).

    Raises
    ------
    SeriesAssemblyError
        A subclass saying what is wrong: mixed orientations, duplicated or missing slices,
        uneven spacing, or missing position attributes.
    """
    if not frames:
        raise SeriesAssemblyError(f"{label}: no images")
    first = frames[0]
    if first.orientation is None or any(f.position is None for f in frames):
        raise SeriesAssemblyError(
            f"{label}: ImagePositionPatient/ImageOrientationPatient missing or unusable (not finite "
            "numbers, or parallel row and column cosines), so the slices cannot be placed in "
            "space; export the series with its geometry attributes"
        )
    orient = np.array([f.orientation for f in frames], float)
    if np.abs(orient - orient[0]).max() > ORIENTATION_TOLERANCE:
        kinds = {tuple(np.round(o, 3)) for o in orient}
        raise MixedOrientationError(
            f"{label}: slices in {len(kinds)} orientations in one series; split the series or "
            "force the role onto a single-orientation series"
        )
    _check_orthonormal(first.orientation, label)
    if first.pixel_spacing is None:
        raise SeriesAssemblyError(f"{label}: PixelSpacing missing; the pixel size is unknown")
    if not all(np.isfinite(first.pixel_spacing)) or min(first.pixel_spacing) <= 0:
        raise SeriesAssemblyError(
            f'{label}: PixelSpacing {first.pixel_spacing} is not a positive size ("0\\0" means '
            "unknown); the pixel size cannot be known, re-export the series with its calibration"
        )
    normal = slice_normal(first.orientation)
    positions = np.array([f.position for f in frames], float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    frames = [frames[i] for i in order]
    along, positions = along[order], positions[order]

    if len(frames) > 1:
        frames, along, positions = _drop_exact_copies(frames, along, positions, label)
    row_spacing, col_spacing = first.pixel_spacing
    if len(frames) == 1:
        # One slice: its thickness is the only extent there is (1 mm when not given).
        thickness = first.header.slice_thickness
        z_spacing = float(thickness) if thickness and thickness > 0 else 1.0
    else:
        drift = positions - np.outer(along - along[0], normal) - positions[0]
        if np.abs(drift).max() > SHEAR_TOLERANCE * min(row_spacing, col_spacing):
            tilt = first.header.gantry_tilt
            cause = (
                f"gantry tilt {tilt:g}° (GantryDetectorTilt)"
                if tilt
                else "a sheared stack: gantry tilt without GantryDetectorTilt, or a broken export"
            )
            raise SeriesAssemblyError(
                f"{label}: slice origins drift {np.abs(drift).max():.1f} mm within the slice plane "
                f"over the series: {cause}. radimt does not resample tilted acquisitions; "
                "reconstruct the series without tilt, or convert it with dcm2niix (which corrects "
                "the tilt) and give the NIfTI as the image"
            )
        z_spacing = _check_steps(frames, along, label)
    row, col = np.asarray(first.orientation[:3]), np.asarray(first.orientation[3:6])
    direction = np.column_stack([row, col, normal])
    geometry = VolumeGeometry(
        size=(first.columns, first.rows, len(frames)),
        spacing=(float(col_spacing), float(row_spacing), float(z_spacing)),
        origin=tuple(float(x) for x in positions[0]),  # type: ignore[arg-type]
        direction=tuple(float(x) for x in direction.ravel()),
    )
    return list(frames), geometry


def _check_orthonormal(orientation: Sequence[float], label: str) -> None:
    """Row and column cosines must be unit vectors at right angles (see the module's tolerances)."""
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    lengths = float(np.linalg.norm(row)), float(np.linalg.norm(col))
    dot = float(row @ col) / max(lengths[0] * lengths[1], 1e-12)
    off_unit = max(abs(lengths[0] - 1), abs(lengths[1] - 1))
    if off_unit > ORTHONORMAL_TOLERANCE or abs(dot) > ORTHONORMAL_TOLERANCE:
        raise SeriesAssemblyError(
            f"{label}: ImageOrientationPatient {tuple(round(x, 4) for x in orientation)} is not two unit "
            f"vectors at right angles (lengths {lengths[0]:.4f}, {lengths[1]:.4f}; cosine between "
            f"them {dot:.4f}); the header is corrupt or hand-edited, re-export the series"
        )


def _drop_exact_copies(
    frames: Sequence[Frame], along: np.ndarray, positions: np.ndarray, label: str
) -> tuple[list[Frame], np.ndarray, np.ndarray]:
    """Remove a second copy of the very same image: same SOPInstanceUID and frame, and a
    byte-identical file. Two files that share a SOPInstanceUID but differ are an error: which
    one is the image the scanner made cannot be told."""
    seen: dict[tuple[str, int], Frame] = {}
    keep = []
    for i, f in enumerate(frames):
        key = (f.header.sop_instance_uid, f.index)
        if f.header.sop_instance_uid and key in seen:
            other = seen[key]
            if other.path == f.path or _same_bytes(other.path, f.path):
                continue
            raise DuplicateSliceError(
                f"{label}: {other.path} and {f.path} carry the same SOPInstanceUID "
                f"{f.header.sop_instance_uid} but different content; keep only the right one "
                "(a re-processed copy exported beside the original?)"
            )
        seen[key] = f
        keep.append(i)
    return [frames[i] for i in keep], along[keep], positions[keep]


def _same_bytes(a: str, b: str, chunk: int = 1 << 20) -> bool:
    """Whether two files hold the same bytes."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if x != y:
                return False
            if not x:
                return True


def _check_steps(frames: Sequence[Frame], along: np.ndarray, label: str) -> float:
    steps = np.diff(along)
    positive = steps[steps > 0]
    median = float(np.median(positive)) if positive.size else 0.0
    duplicate = steps <= max(DUPLICATE_RATIO * median, 1e-4)
    if duplicate.any():
        i = int(np.flatnonzero(duplicate)[0])
        raise DuplicateSliceError(
            f"{label}: {int(duplicate.sum())} duplicated slice position(s), e.g. "
            f"{frames[i].path} and {frames[i + 1].path} both at {along[i]:.3f} mm along the normal; "
            "remove the extra copies or split the series (several phases/echoes without tags "
            "that tell them apart)"
        )
    gaps = steps > MISSING_STEP_RATIO * median
    if gaps.any():
        i = int(np.flatnonzero(gaps)[0])
        missing = int(round(steps[i] / median)) - 1
        raise MissingSliceError(
            f"{label}: about {max(missing, 1)} slice(s) missing between {frames[i].path} "
            f"({along[i]:.3f} mm) and {frames[i + 1].path} ({along[i + 1]:.3f} mm), step "
            f"{steps[i]:.3f} mm against {median:.3f} mm elsewhere; re-export the complete series"
        )
    k = np.arange(along.size)
    slope, intercept = np.polyfit(k, along, 1)
    residual = np.abs(along - (intercept + slope * k)).max()
    if residual > UNIFORM_TOLERANCE * slope:
        raise NonUniformSpacingError(
            f"{label}: slice positions deviate up to {residual:.3f} mm from a uniform "
            f"{slope:.3f} mm grid (tolerance {UNIFORM_TOLERANCE:.0%} of a step); the series has "
            "uneven spacing and cannot be one volume without resampling"
        )
    return round(float(slope), 6)
