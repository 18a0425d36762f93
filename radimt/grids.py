"""Whether two images share a voxel grid and a frame of reference, masks checked against the
image they belong to, and the lesion's box: what a per-lesion computation needs of a volume,
whatever the field of view."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from radimt.errors import FrameOfReferenceError, MaskError

#: SimpleITK metadata keys radimt sets on images it reads, and copies onto masks.
FRAME_OF_REFERENCE_KEY = "0020|0052"
SERIES_UID_KEY = "0020|000e"
MODALITY_KEY = "0008|0060"
#: On an image cut from a larger volume: its first voxel's index in that volume, then the
#: volume's size (``"i j k|nx ny nz"``); see :mod:`radimt.dicom.focus`.
FOCUS_KEY = "radimt|focus"

#: Two grids are the same when sizes are equal and spacing, origin and direction agree within these.
SPACING_TOLERANCE_MM = 1e-3
ORIGIN_TOLERANCE_MM = 1e-2
DIRECTION_TOLERANCE = 1e-4


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """Whether two images share size, spacing, origin and direction (within the tolerances)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=SPACING_TOLERANCE_MM)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=ORIGIN_TOLERANCE_MM)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=DIRECTION_TOLERANCE)
    )


def mask_on(image: sitk.Image, mask: sitk.Image, what: str = "the mask") -> np.ndarray:
    """The mask as a boolean array (z, y, x), after checking it lies on ``image``'s grid.

    Raises
    ------
    MaskError
        The mask is on another grid (with the hint to carry it over), or empty.
    """
    if not same_grid(image, mask):
        origins = [tuple(round(o, 2) for o in x.GetOrigin()) for x in (mask, image)]
        raise MaskError(
            f"{what} is not on the image's grid (size {mask.GetSize()} vs {image.GetSize()}, origin "
            f"{origins[0]} vs {origins[1]}); carry it over with radimt.resample_mask(mask, image)"
        )
    inside = sitk.GetArrayViewFromImage(mask) > 0  # a new array: no copy of the mask first
    if not inside.any():
        raise MaskError(f"{what} is empty")
    return inside


def nonzero_box(labels: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of the non-zero voxels, found with one reduction per axis (no full-size
    temporary): the first axis over the whole array, the others over the slab it bounds only;
    ``None`` when there are none."""
    if labels.ndim == 0:
        return () if labels.item() else None
    if labels.size == 0:
        return None
    if labels.flags.c_contiguous:  # one pass over contiguous rows: the fastest reduction
        present = np.flatnonzero(_any_along(labels.reshape(labels.shape[0], -1), 1))
    else:
        present = np.flatnonzero(_any_along(labels, tuple(range(1, labels.ndim))))
    if not present.size:
        return None
    box = [slice(int(present[0]), int(present[-1]) + 1)]
    slab = labels[box[0]]
    for axis in range(1, labels.ndim):
        other = tuple(a for a in range(labels.ndim) if a != axis)
        present = np.flatnonzero(_any_along(slab, other))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)


def _any_along(values: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """Whether any value is non-zero along ``axis`` (its maximum for booleans and unsigned
    integers, a mask's types: a quarter of ``any``'s time, which casts every value to bool)."""
    return np.asarray(values.max(axis=axis) if values.dtype.kind in "bu" else values.any(axis=axis))


def nonzero_indices(labels: np.ndarray, *, positive: bool = False) -> np.ndarray:
    """``np.argwhere(labels)`` (``np.argwhere(labels > 0)`` with ``positive``), searched in the
    non-zero voxels' bounding box only: (n, ndim) array indices, in the same (C) order."""
    box = nonzero_box(labels)
    if box is None:
        return np.empty((0, labels.ndim), dtype=np.intp)
    inside = labels[box] > 0 if positive else labels[box]
    return np.argwhere(inside) + np.array([b.start for b in box], dtype=np.intp)


def lesion_box(image: sitk.Image, mask: sitk.Image, margin_mm: float, what: str = "the mask"):
    """``image`` cut to the mask's bounding box plus ``margin_mm`` (clipped to the image), and
    the mask on that cut as a boolean array (z, y, x).

    The cost follows the lesion: nothing of the size of the field of view is allocated. The
    image may be a region of the mask's grid (a map computed on the lesion's box): same spacing
    and direction, origin on the grid. Voxels of the box outside ``image`` are left out.

    Raises
    ------
    MaskError
        The mask is empty, on another grid, or its lesion lies outside ``image``.
    """
    if not (
        np.allclose(image.GetSpacing(), mask.GetSpacing(), atol=SPACING_TOLERANCE_MM)
        and np.allclose(image.GetDirection(), mask.GetDirection(), atol=DIRECTION_TOLERANCE)
    ):
        raise MaskError(
            f"{what} is not on the image's grid (spacing {mask.GetSpacing()} vs {image.GetSpacing()}); "
            "carry it over with radimt.resample_mask(mask, image)"
        )
    labels = sitk.GetArrayViewFromImage(mask)
    box = nonzero_box(labels)
    if box is None:
        raise MaskError(f"{what} is empty")
    # Where the mask's index 0 lies in the image's index space (an integer offset).
    offset = np.asarray(image.TransformPhysicalPointToContinuousIndex(mask.GetOrigin()))[::-1]
    if np.abs(offset - np.round(offset)).max() > ORIGIN_TOLERANCE_MM / min(image.GetSpacing()):
        raise MaskError(f"{what} is not on the image's grid (origins off the voxel grid)")
    offset = np.round(offset).astype(int)
    spacing = image.GetSpacing()[::-1]
    shape = sitk.GetArrayViewFromImage(image).shape
    lower, upper = [], []
    for axis, b in enumerate(box):
        pad = math.ceil(margin_mm / spacing[axis] - 1e-9)
        lower.append(max(b.start + offset[axis] - pad, 0))
        upper.append(min(b.stop + offset[axis] + pad, shape[axis]))
    if any(lo >= hi for lo, hi in zip(lower, upper, strict=True)):
        raise MaskError(f"{what}: the lesion lies outside the image")
    size = [int(hi - lo) for lo, hi in zip(lower, upper, strict=True)][::-1]
    cut = sitk.RegionOfInterest(image, size, [int(lo) for lo in lower][::-1])
    region = tuple(slice(lo - o, hi - o) for lo, hi, o in zip(lower, upper, offset, strict=True))
    inside = np.zeros(tuple(hi - lo for lo, hi in zip(lower, upper, strict=True)), bool)
    source = tuple(slice(max(r.start, 0), min(r.stop, n)) for r, n in zip(region, labels.shape, strict=True))
    target = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(source, region, strict=True))
    inside[target] = labels[source] > 0
    return cut, inside


def paste_in_place(target: sitk.Image, block: sitk.Image, start: Sequence[int]) -> sitk.Image:
    """``block`` written into ``target`` from index ``start`` on, in place (SimpleITK's slice
    assignment; ``sitk.Paste`` would copy the whole target once more); returns ``target``."""
    target[tuple(slice(int(a), int(a) + n) for a, n in zip(start, block.GetSize(), strict=True))] = block
    return target


def independent_copy(image: sitk.Image) -> sitk.Image:
    """A copy of ``image`` (pixels, geometry and metadata) sharing no pixel buffer with it: what
    another thread may read while this one goes on using ``image`` (SimpleITK images share
    their buffer between copies until one is written to, which no two threads may race on)."""
    copy = sitk.Image(image)
    copy.MakeUnique()
    for key in image.GetMetaDataKeys():
        copy.SetMetaData(key, image.GetMetaData(key))
    return copy


def copy_reference_metadata(source: sitk.Image, target: sitk.Image) -> None:
    """Copy radimt's provenance metadata (frame of reference, series, modality, focus box)."""
    for key in (FRAME_OF_REFERENCE_KEY, SERIES_UID_KEY, MODALITY_KEY, FOCUS_KEY):
        if source.HasMetaDataKey(key):
            target.SetMetaData(key, source.GetMetaData(key))


def same_frame_of_reference(image: sitk.Image, frame_of_reference: str | None) -> bool:
    """Whether a point or mask from ``frame_of_reference`` may be used on ``image`` (either one
    unknown counts as the same)."""
    if not frame_of_reference or not image.HasMetaDataKey(FRAME_OF_REFERENCE_KEY):
        return True
    own = image.GetMetaData(FRAME_OF_REFERENCE_KEY)
    return not own or own == frame_of_reference


def check_frame_of_reference(image: sitk.Image, frame_of_reference: str | None, what: str = "seed") -> None:
    """Refuse a point or mask from another frame of reference than ``image``'s."""
    if not same_frame_of_reference(image, frame_of_reference):
        own = image.GetMetaData(FRAME_OF_REFERENCE_KEY)
        raise FrameOfReferenceError(
            f"the {what} is in frame of reference {frame_of_reference}, the image in {own}: "
            "coordinates do not carry over between them without a registration"
        )


def focus_of(image: sitk.Image) -> tuple[list[int], list[int]] | None:
    """For an image cut from a larger volume, its first voxel's index there and that volume's
    size; ``None`` for an image that is its whole volume."""
    if not image.HasMetaDataKey(FOCUS_KEY):
        return None
    first, size = image.GetMetaData(FOCUS_KEY).split("|")
    return [int(v) for v in first.split()], [int(v) for v in size.split()]
