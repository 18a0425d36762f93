"""Read only the part of a volume a lesion needs: the slices and rows and columns of a box.

A clinical breast DCE is six 512x512x160 phases (480 MB); a lesion's segmentation, kinetics and
features look at a box around it. :func:`read_focused` reads the slices that cross the box and
keeps its rows and columns, on the same grid (its origin moved to the box's first voxel), so
every later step works on the box. What does need the whole image, pyradiomics' ``normalize``
(a z-score over the whole image), gets the whole image's mean and standard deviation streamed
from the files a few slices at a time (:func:`whole_statistics`), and a mask goes back onto the
full grid with :func:`on_full_grid` for the files a user keeps (NIfTI, DICOM SEG).
"""

from __future__ import annotations

import itertools
import math
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import SimpleITK as sitk

from radimt.dicom.geometry import VolumeGeometry, order_slices
from radimt.dicom.pixels import allocate, read_rows_into
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.volume import (
    buffer_dtype,
    check_rescale,
    integer_rescale,
    read_frames_into,
    rescaled,
    slice_buffer,
    tag_provenance,
)
from radimt.errors import SeedError
from radimt.grids import FOCUS_KEY, focus_of, paste_in_place

#: Stored bytes read at a time when streaming the statistics of a series of integers: a slice
#: or a few, so that every pass over them (rescale, subtraction, sums) stays in the core's own
#: cache. A DCE phase's and T2's statistics took 210-225 ms in chunks of 16 slices of 512x512,
#: 150-165 ms in chunks of 2, and 250 against 160 ms beside a second process doing the same.
#: Integer sums are exact, so the chunks cannot change them.
_CHUNK_BYTES = 1 << 20
#: Slices read at a time for a float-rescaled series: float sums change in their last bits with
#: their grouping, so these keep the grouping their numbers were first computed with.
_FLOAT_CHUNK = 16
_WHOLE_KEY = "radimt|whole_statistics"


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in patient LPS mm."""

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]

    @classmethod
    def around(cls, points: Sequence[Sequence[float]], radius_mm: float | Sequence[float]) -> Box:
        """The smallest box holding every point, grown by ``radius_mm`` on each side (one value,
        or one per axis)."""
        array = np.asarray(points, float).reshape(-1, 3)
        lower = array.min(axis=0) - np.asarray(radius_mm, float)
        upper = array.max(axis=0) + np.asarray(radius_mm, float)
        return cls(tuple(map(float, lower)), tuple(map(float, upper)))  # type: ignore[arg-type]

    def corners(self) -> np.ndarray:
        """The box's eight corners (LPS mm), one per row."""
        return np.array(list(itertools.product(*zip(self.lower, self.upper, strict=True))), float)


def geometry_of(series: SeriesInfo) -> VolumeGeometry:
    """The full volume's grid, from the headers alone."""
    return order_slices(series.frames, series.label)[1]


def _continuous_index(geometry: VolumeGeometry, points: np.ndarray) -> np.ndarray:
    """Points (LPS mm, one per row) as continuous voxel indices (x, y, z) of a volume's grid."""
    direction = np.asarray(geometry.direction, float).reshape(3, 3)
    return (points - np.asarray(geometry.origin)) @ direction / np.asarray(geometry.spacing)


def index_range(geometry: VolumeGeometry, box: Box) -> tuple[list[int], list[int]]:
    """First index and size (x, y, z) of the voxels whose centres the box may reach, clipped to
    the volume (one voxel more on each side, for interpolation at the box's faces)."""
    index = _continuous_index(geometry, box.corners())
    size = np.asarray(geometry.size)
    first = np.clip(np.floor(index.min(axis=0)).astype(int) - 1, 0, size)
    last = np.clip(np.ceil(index.max(axis=0)).astype(int) + 2, 0, size)
    return first.tolist(), np.maximum(last - first, 0).tolist()


def holds(geometry: VolumeGeometry, point: Sequence[float]) -> bool:
    """Whether a point (LPS mm) lies in a volume."""
    index = _continuous_index(geometry, np.asarray(point, float))
    return bool(np.all(index >= -0.5) and np.all(index <= np.asarray(geometry.size) - 0.5))


def covered_fraction(geometry: VolumeGeometry, box: Box) -> float:
    """The share of a volume's voxels that lie in ``box`` (1.0 when the box holds it all)."""
    _, size = index_range(geometry, box)
    return math.prod(size) / max(math.prod(geometry.size), 1)


def read_focused(series: SeriesInfo, box: Box) -> sitk.Image:
    """The part of a stack inside ``box`` as a 3D image on the stack's own grid.

    The same values as :func:`radimt.dicom.volume.read_volume` cut to the box (its slices read
    alone), tagged so that :func:`whole_statistics` gives the whole volume's mean and SD.

    Raises
    ------
    SeriesAssemblyError, DicomReadError, SeedError
        As :func:`~radimt.dicom.volume.read_volume`; a box outside the volume is refused.
    """
    frames, geometry = order_slices(series.frames, series.label)
    check_rescale(frames, series.label)
    first, size = index_range(geometry, box)
    if min(size) == 0:
        raise SeedError(f"{series.label}: the lesion's region lies outside this series' volume")
    (i0, j0, k0), (ni, nj, nk) = first, size
    chosen = frames[k0 : k0 + nk]
    band = allocate((nk, nj, chosen[0].columns), buffer_dtype(chosen[0]), series.label, chosen[0].path)
    stored = read_rows_into(chosen, band, j0, series.label)  # only the box's rows are read
    cut = np.ascontiguousarray(stored[:, :, i0 : i0 + ni])
    del stored, band
    image = sitk.GetImageFromArray(rescaled(cut, chosen))
    image.SetSpacing(geometry.spacing)
    image.SetDirection(geometry.direction)
    direction = np.asarray(geometry.direction, float).reshape(3, 3)
    offset = direction @ (np.asarray(first, float) * np.asarray(geometry.spacing))
    image.SetOrigin(tuple(float(v) for v in np.asarray(geometry.origin) + offset))
    tag_provenance(image, frames[0].header)
    image.SetMetaData(FOCUS_KEY, f"{i0} {j0} {k0}|{' '.join(map(str, geometry.size))}")
    attach_whole_statistics(image, lambda: series_statistics(series))
    return image


def inside_focus(image: sitk.Image, box: Box) -> bool:
    """Whether the voxels of ``box`` are all in ``image`` as far as its whole volume has them (an
    image read whole holds everything it can)."""
    focus = focus_of(image)
    if focus is None:
        return True
    first, full = focus
    index = (
        np.array([image.TransformPhysicalPointToContinuousIndex(c.tolist()) for c in box.corners()]) + first
    )
    low = np.clip(np.floor(index.min(axis=0)), 0, np.asarray(full) - 1)
    high = np.clip(np.ceil(index.max(axis=0)), 0, np.asarray(full) - 1)
    return bool(np.all(low >= first) and np.all(high <= np.asarray(first) + np.asarray(image.GetSize()) - 1))


def on_full_grid(mask: sitk.Image, series: SeriesInfo) -> sitk.Image:
    """A mask made on a focused image, pasted into an empty image of the series' full grid."""
    full = _blank_grid(geometry_of(series), mask.GetPixelID())
    _paste_mask(full, mask)
    return full


def _blank_grid(geometry: VolumeGeometry, pixel_id: int) -> sitk.Image:
    """An empty image of ``geometry``'s grid."""
    full = sitk.Image(list(geometry.size), pixel_id)
    full.SetSpacing(geometry.spacing)
    full.SetOrigin(geometry.origin)
    full.SetDirection(geometry.direction)
    return full


def _paste_mask(full: sitk.Image, mask: sitk.Image) -> list[int]:
    """``mask`` pasted into ``full`` where it lies, with its metadata in place of ``full``'s
    (but for what belongs to a focused image); returns the index it was pasted at."""
    for key in full.GetMetaDataKeys():
        full.EraseMetaData(key)
    for key in mask.GetMetaDataKeys():
        if key not in (_WHOLE_KEY, FOCUS_KEY):
            full.SetMetaData(key, mask.GetMetaData(key))
    start = list(full.TransformPhysicalPointToIndex(mask.GetOrigin()))
    paste_in_place(full, mask, start)
    return start


#: The blank whole grid :func:`write_on_full_grid` pastes into, kept between calls (one grid:
#: a study's lesions share it), and the lock that gives it to one caller at a time.
_KEPT_GRID: dict[tuple, sitk.Image] = {}
_KEPT_GRID_LOCK = threading.Lock()


def write_on_full_grid(mask: sitk.Image, series: SeriesInfo, write: Callable[[sitk.Image], None]) -> None:
    """``write(on_full_grid(mask, series))``, without making the whole grid anew each time.

    A blank image of the series' whole grid is kept between calls: the mask is pasted into it,
    written, and its region blanked again. A new 512x512x160 image cost ~35 ms of first touches
    of fresh memory (the mask file's whole grid, for every lesion); the kept one costs its
    region. ``write`` must not keep the image it is given. The image is dropped if anything
    fails, so a half-done paste never reaches another call. One grid is kept (the last one asked
    for: 42 MB for a 512x512x160 series) until the process ends or another grid replaces it.
    """
    geometry = geometry_of(series)
    key = (geometry.size, geometry.spacing, geometry.origin, geometry.direction, mask.GetPixelID())
    with _KEPT_GRID_LOCK:
        full = _KEPT_GRID.pop(key, None)
        _KEPT_GRID.clear()  # one grid kept, the last one asked for
        if full is None:
            full = _blank_grid(geometry, mask.GetPixelID())
        start = _paste_mask(full, mask)
        write(full)
        paste_in_place(full, sitk.Image(mask.GetSize(), mask.GetPixelID()), start)  # blank again
        _KEPT_GRID[key] = full  # only after a clean round: a failure above drops it


# -- whole-image statistics of focused images ---------------------------------------------------

#: Statistics by key, computed when first asked for; an entry goes with the image it was made for.
_REGISTRY: dict[str, Callable[[], tuple[float, float]]] = {}


def attach_whole_statistics(image: sitk.Image, compute: Callable[[], tuple[float, float]]) -> None:
    """Let :func:`whole_statistics` give ``compute()`` (once) for ``image``."""
    key = uuid.uuid4().hex
    image.SetMetaData(_WHOLE_KEY, key)
    _REGISTRY[key] = cache(compute)
    weakref.finalize(image, _REGISTRY.pop, key, None)


def whole_statistics(image: sitk.Image) -> tuple[float, float] | None:
    """Mean and sample SD of the whole volume a focused image was cut from; ``None`` for an
    image read whole (its own statistics are the whole volume's)."""
    if not image.HasMetaDataKey(_WHOLE_KEY):
        return None
    compute = _REGISTRY.get(image.GetMetaData(_WHOLE_KEY))
    if compute is None:  # never: an entry lives as long as the image that carries its key
        raise RuntimeError("a focused image's whole-volume statistics are gone")
    return compute()


def is_focused(image: sitk.Image) -> bool:
    """Whether ``image`` was cut from a larger volume (:func:`read_focused` and images made from
    such with their whole statistics attached)."""
    return image.HasMetaDataKey(_WHOLE_KEY)


def _streamed(series: SeriesInfo) -> Iterator[np.ndarray]:
    """A series' values after rescale (integers when exact, else float32), a few slices at a time."""
    frames, _ = order_slices(series.frames, series.label)
    first, stored_type = frames[0], buffer_dtype(frames[0])
    if integer_rescale(frames, stored_type):
        step = max(1, _CHUNK_BYTES // (first.rows * first.columns * stored_type.itemsize))
    else:
        step = _FLOAT_CHUNK
    for start in range(0, len(frames), step):
        chunk = frames[start : start + step]
        stored = read_frames_into(chunk, slice_buffer(chunk[0], len(chunk), series.label), series.label)
        yield rescaled(stored, chunk)


#: Integers below this in magnitude are summed exactly in int64 (their squares over a chunk of
#: slices stay far below 2**63); larger ones as float64.
_EXACT_SQUARES = 1 << 20
#: float32 holds every integer up to this exactly (a float32 subtraction of two is exact).
_FLOAT32_EXACT = 1 << 24


def _moments(chunks: Iterable[np.ndarray]) -> tuple[float, float]:
    """Mean and sample SD (n - 1, as SimpleITK's StatisticsImageFilter and so pyradiomics'
    normalize) of all values: integers summed exactly, other values as float64."""
    total: int | float = 0
    squares: int | float = 0
    count = 0
    for values in chunks:
        flat = values.ravel()
        count += flat.size
        if flat.size == 0:
            continue
        if flat.dtype.kind in "iu" and max(-int(flat.min()), int(flat.max())) < _EXACT_SQUARES:
            total += int(flat.sum(dtype=np.int64))
            squares += int(np.einsum("i,i->", flat, flat, dtype=np.int64))
            continue
        wide = flat.astype(np.float64)
        total += float(wide.sum())
        squares += float(wide @ wide)
    if count == 0:
        return 0.0, 0.0
    if isinstance(total, int) and isinstance(squares, int):  # exact: one rounding at the end
        variance = (squares * count - total * total) / (count * max(count - 1, 1))
        return total / count, math.sqrt(max(variance, 0.0))
    mean = total / count
    return mean, math.sqrt(max((squares - total * mean) / max(count - 1, 1), 0.0))


def series_statistics(series: SeriesInfo, scale: float = 1.0) -> tuple[float, float]:
    """Mean and sample SD of a whole series' values (as float32 times ``scale``, the way
    :attr:`radimt.dicom.study.Study.adc` scales them), a few slices at a time."""
    if scale == 1.0:
        return _moments(_streamed(series))
    factor = np.float32(scale)  # as SimpleITK multiplies a float32 image: in float32
    return _moments(v.astype(np.float32) * factor for v in _streamed(series))


def difference_statistics(later: SeriesInfo, earlier: SeriesInfo) -> tuple[float, float]:
    """Mean and sample SD of ``later - earlier`` (a subtraction) over the whole volume."""
    pairs = zip(_streamed(later), _streamed(earlier), strict=True)
    return _moments(_difference(a, b) for a, b in pairs)


def _difference(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``later - earlier`` with the values :func:`radimt.segment.subtraction`'s float32 gives:
    as integers when both are integers float32 holds exactly."""
    small = all(
        v.dtype.kind in "iu" and max(abs(int(v.min())), abs(int(v.max()))) < _FLOAT32_EXACT
        for v in (later, earlier)
    )
    if small:
        return later.astype(np.int32) - earlier.astype(np.int32)
    return later.astype(np.float32) - earlier.astype(np.float32)
