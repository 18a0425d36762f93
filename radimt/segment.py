"""Seeded lesion segmentation, DCE subtraction, and mask transfer between series.

The segmentation is an adaptive half-maximum region growing, bounded around the seed:

1. Crop a box around the seed (first small, enlarged only if the lesion reaches its border,
   never beyond ``max_diameter_mm`` from the seed): nothing touches the rest of the volume.
2. Smooth (Gaussian; a median filter first for ultrasound speckle).
3. Lesion level = median in a small ball at the seed; noise = robust spread of neighbour
   differences. Grow the connected region above ``lesion - 2.5 noise`` (SimpleITK
   ConnectedThreshold), fill holes.
4. Background level = median of a ring just outside the region. The boundary is put where the
   intensity crosses ``background + tolerance x (lesion - background)`` (0.5: half-way, which is
   where a voxel half inside the lesion sits), the region regrown from the seed, and steps 3-4
   repeated until the region settles. Lesion level is then the median of the region's core.
5. Guard against leaks: a region reaching farther than ``max_diameter_mm`` from the seed is
   retried with a tighter tolerance and a morphological opening that cuts thin bridges; if it
   still leaks, :class:`SegmentationError` says so rather than returning a breast-sized mask.

Dark lesions (hypoechoic on ultrasound, low ADC) are handled by the ``polarity`` option.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import SimpleITK as sitk

from radimt.dicom.focus import attach_whole_statistics, difference_statistics, is_focused
from radimt.dicom.study import DCE
from radimt.errors import MaskError, SeedError, SegmentationError
from radimt.grids import (
    FRAME_OF_REFERENCE_KEY,
    check_frame_of_reference,
    copy_reference_metadata,
    independent_copy,
    nonzero_box,
    nonzero_indices,
    paste_in_place,
)
from radimt.options import Range, check_fields, unknown_names


@dataclass(frozen=True)
class SegmentOptions:
    """Options of :func:`segment_from_seed`; every field can be passed as a keyword.

    Attributes
    ----------
    tolerance
        Where the boundary sits between background (0) and lesion (1) intensity; 0.5 is
        half-way. Larger values give tighter masks.
    max_diameter_mm
        The largest lesion expected. The search never reaches farther than this from the seed;
        a region that does is a leak.
    smoothing_mm
        Gaussian sigma before growing; ``None`` means 0.75 of the smallest voxel spacing.
    median_radius
        Median filter radius in pixels before smoothing (0 = none); for speckle.
    polarity
        ``"bright"`` (enhancing lesion, CT, mammography), ``"dark"`` (ultrasound, ADC) or
        ``"auto"`` (compare the seed with its surroundings).
    seed_radius_mm
        Radius of the ball at the seed that gives the first lesion level.
    min_contrast
        Lesion-to-background difference required, in standard deviations of the image noise
        (estimated from differences between neighbouring voxels of the unsmoothed image).
    fill_holes
        Fill enclosed holes (necrotic or cystic centres) in the final mask.
    opening_mm
        Radius of a morphological opening applied to the grown region, which cuts thin bridges
        into neighbouring structures (0 = none). Retries after a leak open more.

    Examples
    --------
    >>> import radimt
    >>> radimt.SegmentOptions(tolerance=0.6).polarity
    'bright'
    >>> radimt.SegmentOptions(polarity="up")
    Traceback (most recent call last):
    ...
    radimt.errors.OptionError: SegmentOptions: polarity: 'up' is not one of bright, dark, auto
    """

    tolerance: float = 0.5
    max_diameter_mm: float = 50.0
    smoothing_mm: float | None = None
    median_radius: int = 0
    polarity: str = "bright"
    seed_radius_mm: float = 1.5
    min_contrast: float = 3.0
    fill_holes: bool = True
    opening_mm: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, SEGMENT_RANGES, {"polarity": POLARITIES})


#: Allowed ranges of the numeric :class:`SegmentOptions`, (low, high) inclusive.
SEGMENT_RANGES: dict[str, Range] = {
    "tolerance": (0.0, 1.0),
    "max_diameter_mm": (1e-3, None),
    "smoothing_mm": (0.0, None),
    "median_radius": (0, 20),
    "seed_radius_mm": (1e-3, None),
    "min_contrast": (0.0, None),
    "opening_mm": (0.0, None),
}
#: What ``polarity`` may be.
POLARITIES = ("bright", "dark", "auto")

#: Defaults per modality (``modality=`` in :func:`segment_from_seed`).
PRESETS: dict[str, SegmentOptions] = {
    "mr": SegmentOptions(),
    "ct": SegmentOptions(),
    "mg": SegmentOptions(smoothing_mm=0.8, opening_mm=1.0),
    # Speckle is multiplicative and strong: its per-pixel spread is close to the lesion contrast.
    "us": SegmentOptions(
        polarity="dark", median_radius=2, smoothing_mm=0.3, seed_radius_mm=1.5, min_contrast=1.0
    ),
    "adc": SegmentOptions(polarity="dark"),
    "dwi": SegmentOptions(),
}

FIRST_CROP_MM = 20.0  # the first crop's radius; enlarged when the lesion reaches its border
_MAX_ITERATIONS = 6
RING_MM = 3.0  # the band outside a region whose statistics decide where it stops


def subtraction(dce: DCE, phase: int = 1, baseline: int = 0) -> sitk.Image:
    """Subtraction image ``phases[phase] - phases[baseline]`` as float32, on the DCE grid.

    The early subtraction (``phase=1``) is the default reference for segmenting an enhancing
    breast lesion. It is computed once per DCE and pair of phases (kept in ``dce.derived``):
    segmentation, features and overlays of a lesion share one image, so copy it before
    changing it in place.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> early = radimt.subtraction(study.dce, phase=1)
    >>> early.GetPixelIDTypeAsString(), early.GetSize() == study.dce.phases[0].GetSize()
    ('32-bit float', True)
    """
    if not 0 <= phase < len(dce.phases) or not 0 <= baseline < len(dce.phases):
        raise SegmentationError(f"DCE has {len(dce.phases)} phases; no phase {phase} or baseline {baseline}")
    key = ("subtraction", phase, baseline)
    if key not in dce.derived:
        # One float32 buffer, subtracted in numpy's small casting chunks: no float copies of
        # the two phases (they would triple the memory of the subtraction at clinical size).
        difference = np.subtract(
            sitk.GetArrayViewFromImage(dce.phases[phase]),
            sitk.GetArrayViewFromImage(dce.phases[baseline]),
            dtype=np.float32,
        )
        out = sitk.GetImageFromArray(difference)
        del difference
        out.CopyInformation(dce.phases[phase])
        copy_reference_metadata(dce.phases[phase], out)
        if is_focused(dce.phases[phase]):  # the whole volume's subtraction, streamed when asked for
            later, earlier = dce.series[phase], dce.series[baseline]
            attach_whole_statistics(out, lambda: difference_statistics(later, earlier))
        dce.derived[key] = out
    return dce.derived[key]


def segment_options(modality: str, overrides: Mapping[str, Any]) -> SegmentOptions:
    """The :class:`SegmentOptions` of a modality preset with ``overrides``, each value checked.

    Raises
    ------
    SegmentationError, TypeError, OptionError
        An unknown preset, an unknown option, a value of the wrong type or out of range.
    """
    if modality.lower() not in PRESETS:
        raise SegmentationError(f"unknown modality preset {modality!r}; use one of {sorted(PRESETS)}")
    unknown = unknown_names(overrides, SegmentOptions)
    if unknown:
        known = sorted(f.name for f in fields(SegmentOptions))
        raise TypeError(f"unknown segmentation option(s) {unknown}; options are {known}")
    return replace(PRESETS[modality.lower()], **overrides)


def seed_index(image: sitk.Image, seed: Sequence[float], seed_is_index: bool = False) -> tuple[int, ...]:
    """The voxel index of a seed given in LPS mm (or as an index), checked to be in the image."""
    dim = image.GetDimension()
    if len(seed) != dim:
        raise SeedError(f"seed {tuple(seed)} has {len(seed)} coordinates; the image is {dim}D")
    try:
        values = [float(s) for s in seed]
    except (TypeError, ValueError):
        raise SeedError(f"seed {tuple(seed)} is not a list of numbers") from None
    if not all(math.isfinite(x) for x in values):
        raise SeedError(
            f"seed {tuple(seed)} has a non-finite coordinate (nan or inf); give a point in the image"
        )
    continuous = values if seed_is_index else image.TransformPhysicalPointToContinuousIndex(values)
    size = image.GetSize()

    def inside(index: Sequence[float]) -> bool:
        return all(math.isfinite(c) and 0 <= round(c) < n for c, n in zip(index, size, strict=True))

    if not inside(continuous):
        where = "index" if seed_is_index else "point (LPS mm)"
        hint = "check the seed's coordinate system (LPS, not RAS) and the series it belongs to"
        if not seed_is_index and len(values) == 3:
            flipped = (-values[0], -values[1], values[2])  # RAS (3D Slicer, OHIF) -> LPS
            if inside(image.TransformPhysicalPointToContinuousIndex(flipped)):
                hint = (
                    f"its RAS reading {flipped} is inside: the seed looks like RAS coordinates (as 3D "
                    "Slicer shows them); give LPS (x and y negated), or read Slicer markups with read_seeds"
                )
        raise SeedError(
            f"seed {where} {tuple(seed)} lies outside the image (voxel "
            f"{tuple(round(float(c), 1) for c in continuous)}, size {size}); {hint}"
        )
    return tuple(int(round(c)) for c in continuous)


def _radius_voxels(image: sitk.Image, mm: float) -> list[int]:
    return [max(1, int(math.ceil(mm / s))) for s in image.GetSpacing()]


def _crop(
    image: sitk.Image, index: Sequence[int], radius_mm: float
) -> tuple[sitk.Image, tuple[int, ...], bool]:
    """A box of ``radius_mm`` around ``index``; also whether it was clipped by the image edge."""
    radius = _radius_voxels(image, radius_mm)
    lower = [max(0, i - r) for i, r in zip(index, radius, strict=True)]
    upper = [min(n, i + r + 1) for i, r, n in zip(index, radius, image.GetSize(), strict=True)]
    size = [u - lo for u, lo in zip(upper, lower, strict=True)]
    roi = sitk.RegionOfInterest(image, size, lower)
    return roi, tuple(i - lo for i, lo in zip(index, lower, strict=True)), size == list(image.GetSize())


def _ball(
    shape: tuple[int, ...], centre: Sequence[int], spacing: Sequence[float], radius_mm: float
) -> np.ndarray:
    """Boolean ball (array order) of ``radius_mm`` around ``centre`` (SimpleITK index order)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre[::-1], spacing[::-1], strict=True))
    return np.asarray(dist2 <= radius_mm**2)


def _noise_sigma(values: np.ndarray) -> float:
    """Robust noise SD from differences of neighbours along the fastest axis (MAD estimator)."""
    diff = np.diff(values, axis=-1).ravel()  # its own array: the medians below reorder it in place
    centre = np.median(diff, overwrite_input=True)
    mad = np.median(np.abs(np.subtract(diff, centre, out=diff), out=diff), overwrite_input=True)
    return float(1.4826 * mad / math.sqrt(2)) or 1e-6


def _grow(image: sitk.Image, index: Sequence[int], threshold: float, fill: bool) -> sitk.Image:
    region = sitk.ConnectedThreshold(
        image, seedList=[tuple(int(i) for i in index)], lower=float(threshold), upper=1e30
    )
    # a hole lies inside the region's box: filled there, with a background frame around it
    return _near_region(region, [1] * region.GetDimension(), sitk.BinaryFillhole) if fill else region


def _region_window(region: sitk.Image, pad: Sequence[int]) -> tuple[list[int], list[int]] | None:
    """Index and size (x, y, z) of the region's bounding box grown by ``pad`` voxels per axis,
    clipped to the image; ``None`` for an empty region."""
    box = nonzero_box(sitk.GetArrayViewFromImage(region))
    if box is None:
        return None
    size = region.GetSize()
    start = [max(0, b.start - p) for b, p in zip(reversed(box), pad, strict=True)]
    stop = [min(n, b.stop + p) for b, p, n in zip(reversed(box), pad, size, strict=True)]
    return start, [b - a for a, b in zip(start, stop, strict=True)]


def _window_slices(window: tuple[list[int], list[int]]) -> tuple[slice, ...]:
    start, size = window
    return tuple(slice(a, a + n) for a, n in zip(reversed(start), reversed(size), strict=True))


def _near_region(
    region: sitk.Image, pad: Sequence[int], operation: Callable[[sitk.Image], sitk.Image]
) -> sitk.Image:
    """``operation(region)`` computed in the region's box grown by ``pad`` voxels per axis and
    pasted back: the same image for operations that change nothing more than ``pad - 1`` voxels
    from the region (a dilation by ``pad - 1``, an opening, a hole filling with ``pad`` 1), at
    the cost of the lesion's box instead of the whole crop."""
    window = _region_window(region, pad)
    if window is None or window[1] == list(region.GetSize()):
        return operation(region)
    start, size = window
    near = operation(sitk.RegionOfInterest(region, size, start))
    blank = sitk.Image(region.GetSize(), near.GetPixelID())
    blank.CopyInformation(region)
    return paste_in_place(blank, near, start)


def _ring_stats(values: np.ndarray, region: sitk.Image) -> tuple[float, float] | None:
    """Median and robust SD of a ring (1 voxel to ``RING_MM`` outside the region)."""
    radius = _radius_voxels(region, RING_MM)
    window = _region_window(region, [r + 1 for r in radius])  # all the ring can reach
    if window is None:
        return None
    near = sitk.RegionOfInterest(region, window[1], window[0])
    inner = sitk.BinaryDilate(near, [1] * region.GetDimension())
    outer = sitk.BinaryDilate(near, radius)
    ring = sitk.GetArrayViewFromImage(outer).astype(bool) & ~sitk.GetArrayViewFromImage(inner).astype(bool)
    if not ring.any():
        return None
    samples = values[_window_slices(window)][ring]
    median = float(np.median(samples))
    return median, 1.4826 * float(np.median(np.abs(samples - median)))


def _core_median(values: np.ndarray, region: sitk.Image) -> float:
    window = _region_window(region, [2] * region.GetDimension())  # the erosion looks 1 voxel out
    if window is None:
        return float("nan")
    near = sitk.RegionOfInterest(region, window[1], window[0])
    core = sitk.GetArrayFromImage(sitk.BinaryErode(near, [1] * region.GetDimension())).astype(bool)
    if core.sum() < 3:
        core = sitk.GetArrayViewFromImage(near).astype(bool)
    return float(np.median(values[_window_slices(window)][core]))


def _reach_mm(region: np.ndarray, centre: Sequence[int], spacing: Sequence[float]) -> float:
    """Largest distance (mm) of a region voxel from the seed."""
    pts = np.argwhere(region)
    if not len(pts):
        return 0.0
    delta = (pts - np.asarray(centre[::-1])) * np.asarray(spacing[::-1])
    return float(np.sqrt((delta**2).sum(axis=1)).max())


def _touches_border(region: np.ndarray) -> bool:
    return any(np.take(region, i, axis=a).any() for a in range(region.ndim) for i in (0, -1))


def _prepare(roi: sitk.Image, opts: SegmentOptions) -> sitk.Image:
    image = roi if roi.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(roi, sitk.sitkFloat32)
    if opts.median_radius > 0:
        image = sitk.Median(image, [opts.median_radius] * image.GetDimension())
    sigma = opts.smoothing_mm if opts.smoothing_mm is not None else 0.75 * min(image.GetSpacing())
    if sigma > 0:
        image = sitk.SmoothingRecursiveGaussian(image, sigma)
    if opts.polarity == "dark":
        image = -image
    return image


def _delineate(
    roi: sitk.Image,
    seed: tuple[int, ...],
    opts: SegmentOptions,
    tolerance: float,
    opening_mm: float,
    noise: float,
) -> sitk.Image:
    """One adaptive half-maximum segmentation in a cropped ROI: the region grown from the seed."""
    values = sitk.GetArrayViewFromImage(roi)  # read only, while ``roi`` lives
    spacing = roi.GetSpacing()
    seed_ball = _ball(values.shape, seed, spacing, max(opts.seed_radius_mm, min(spacing)))
    lesion = float(np.median(values[seed_ball]))
    spread = 1.4826 * float(np.median(np.abs(values[seed_ball] - lesion)))
    # The first region must hold the seed voxel itself, however noisy or textured it is.
    start = min(lesion - 2.5 * max(noise, spread), float(values[tuple(seed[::-1])]))
    region = _grow(roi, seed, start, opts.fill_holes)
    background = None
    previous = None
    for _ in range(_MAX_ITERATIONS):
        ring = _ring_stats(values, region)
        if ring is None:
            break
        background, _ = ring
        if lesion - background < opts.min_contrast * noise:
            raise SegmentationError(
                f"the seed does not lie in a lesion that stands out from its surroundings "
                f"(lesion {lesion:.4g}, background {background:.4g}, noise {noise:.3g}); "
                "move the seed into the lesion or segment on an image where it is visible"
            )
        threshold = background + tolerance * (lesion - background)
        region = _grow(roi, seed, min(threshold, float(values[tuple(seed[::-1])])), opts.fill_holes)
        # The opening's ball in voxels per axis: none along an axis coarser than the opening
        # (a 1 mm opening must not take away whole 2 mm slices of a small lesion).
        radius = [int(round(opening_mm / sp)) for sp in spacing]
        if any(radius):
            opening = functools.partial(sitk.BinaryMorphologicalOpening, kernelRadius=radius)
            opened = _near_region(region, [r + 1 for r in radius], opening)
            region = _keep_seed_component(opened, seed)
        current = sitk.GetArrayViewFromImage(region).astype(bool)
        if not current.any():
            break
        lesion = _core_median(values, region)
        if previous is not None and np.count_nonzero(current ^ previous) <= 0.01 * current.sum():
            break
        previous = current.copy()
    return region


def _keep_seed_component(region: sitk.Image, seed: Sequence[int]) -> sitk.Image:
    labels = sitk.ConnectedComponent(region)
    arr = sitk.GetArrayViewFromImage(labels)
    label = int(arr[tuple(seed[::-1])])
    if label == 0:  # the opening removed the seed voxel: take the component nearest to it
        pts = np.argwhere(arr > 0)
        if not len(pts):
            return region * 0
        nearest = pts[np.argmin(((pts - np.asarray(seed[::-1])) ** 2).sum(axis=1))]
        label = int(arr[tuple(nearest)])
    out = sitk.Cast(labels == label, sitk.sitkUInt8)
    out.CopyInformation(region)
    return out


def segment_from_seed(
    image: sitk.Image,
    seed: Sequence[float],
    *,
    seed_is_index: bool = False,
    modality: str = "mr",
    frame_of_reference: str | None = None,
    **options,
) -> sitk.Image:
    """Delineate the lesion around one seed point.

    Parameters
    ----------
    image
        3D (MR phase or subtraction, DWI, ADC, CT) or 2D (mammogram, ultrasound) image.
    seed
        A point in patient LPS mm, or a voxel index with ``seed_is_index=True``.
    modality
        Defaults to use: ``mr``, ``ct``, ``mg``, ``us``, ``adc`` or ``dwi`` (see ``PRESETS``).
    frame_of_reference
        FrameOfReferenceUID the seed was given in, if known; refused when it differs from the
        image's.
    **options
        Any field of :class:`SegmentOptions` (``tolerance``, ``max_diameter_mm``, ...).

    Returns
    -------
    SimpleITK.Image
        uint8 mask (1 = lesion) on the image's grid, never empty.

    Raises
    ------
    SeedError
        The seed is not finite numbers, has the wrong number of coordinates, or lies outside the
        image.
    FrameOfReferenceError
        ``frame_of_reference`` is not the image's.
    SegmentationError
        No lesion stands out at the seed (in air or plain tissue, a constant or noise-only image:
        the region would fill the image), the lesion is no larger than the seed ball, or the
        region leaks beyond ``max_diameter_mm``.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> truth["diameter_mm"], round(radimt.longest_diameter_mm(mask), 1)   # 2.5 mm slices
    (14.0, 15.9)
    """
    opts = segment_options(modality, options)
    check_frame_of_reference(image, frame_of_reference)
    index = seed_index(image, seed, seed_is_index)
    full = image
    if opts.polarity == "auto":
        opts = replace(opts, polarity=_polarity(full, index, opts))
    radius = min(FIRST_CROP_MM, opts.max_diameter_mm)
    # A region that leaks is tried again tighter: a higher threshold and an opening that cuts the
    # thin bridges (a vessel leaving the lesion); last, the tighter threshold alone, for a lesion
    # too small to survive the opening.
    attempts = [
        (opts.tolerance, opts.opening_mm),
        (min(0.75, opts.tolerance + 0.15), max(opts.opening_mm, 1.0)),
        (min(0.85, opts.tolerance + 0.25), max(opts.opening_mm, 2.0)),
        (min(0.85, opts.tolerance + 0.25), opts.opening_mm),
    ]
    attempts = list(dict.fromkeys(attempts))
    reach = 0.0
    emptied = False
    for tolerance, opening_mm in attempts:
        while True:
            roi_raw, local_seed, whole = _crop(full, index, radius)
            roi = _prepare(roi_raw, opts)
            raw = sitk.GetArrayViewFromImage(roi_raw)  # read only
            noise = _noise_sigma(raw if raw.dtype == np.float32 else raw.astype(np.float32))
            region = _delineate(roi, local_seed, opts, tolerance, opening_mm, noise)
            mask = sitk.GetArrayViewFromImage(region).astype(bool)
            reaches_edge = _touches_border(mask) and not whole
            if reaches_edge and radius < opts.max_diameter_mm:
                radius = opts.max_diameter_mm  # the lesion is larger than the first box
                continue
            break
        if not mask.any():
            emptied = True
            continue
        if whole and mask.all():
            raise SegmentationError(
                "the region grown from the seed fills the whole image: nothing at the seed stands out "
                "from its surroundings (a constant or noise-only image?); check the seed and the image"
            )
        reach = _reach_mm(mask, local_seed, roi.GetSpacing())
        if reach <= opts.max_diameter_mm and not reaches_edge:
            _check_larger_than_seed_ball(mask, local_seed, roi.GetSpacing(), opts)
            return _paste(full, roi_raw, region)
    if emptied and reach == 0.0:
        raise SegmentationError(
            "nothing could be grown from the seed (an opening removed everything around it); "
            "move the seed into the lesion's body or lower opening_mm"
        )
    raise SegmentationError(
        f"the region grown from the seed leaks into surrounding tissue (reaches {reach:.0f} mm from "
        f"the seed, more than max_diameter_mm={opts.max_diameter_mm:g}, even with a tighter "
        "tolerance); place the seed in the lesion's brightest part, segment on the subtraction "
        "image, or raise max_diameter_mm if the lesion really is that large"
    )


def _check_larger_than_seed_ball(
    mask: np.ndarray, seed: Sequence[int], spacing: Sequence[float], opts: SegmentOptions
) -> None:
    """A region that is only (part of) the seed ball was not delineated: the ball's median set the
    lesion level, so a lesion smaller than the ball cannot be told from it."""
    radius = max(opts.seed_radius_mm, min(spacing))
    ball = _ball(mask.shape, seed, spacing, radius)
    if not np.any(mask & ~ball):
        raise SegmentationError(
            f"the lesion at the seed is no larger than the seed ball ({radius:g} mm, "
            f"{int(ball.sum())} voxels), so it cannot be delineated from it: lower seed_radius_mm, "
            "use a finer image, or give a mask"
        )


def _polarity(image: sitk.Image, index: Sequence[int], opts: SegmentOptions) -> str:
    roi, seed, _ = _crop(image, index, opts.max_diameter_mm / 2)
    values = sitk.GetArrayViewFromImage(roi).astype(np.float32)
    ball = _ball(values.shape, seed, roi.GetSpacing(), max(opts.seed_radius_mm, min(roi.GetSpacing())))
    return "bright" if np.median(values[ball]) >= np.median(values) else "dark"


def _paste(full: sitk.Image, roi: sitk.Image, region: sitk.Image) -> sitk.Image:
    mask = sitk.Image(full.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(full)
    start = full.TransformPhysicalPointToIndex(roi.GetOrigin())
    paste_in_place(mask, sitk.Cast(region, sitk.sitkUInt8), start)
    copy_reference_metadata(full, mask)
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise SegmentationError("segmentation produced an empty mask")
    return mask


def resample_mask(
    mask: sitk.Image, reference: sitk.Image, *, method: str = "partial", threshold: float | None = None
) -> sitk.Image:
    """Carry a mask onto another image's grid by physical coordinates.

    Parameters
    ----------
    mask
        uint8 mask (any grid, spacing, orientation).
    reference
        The image whose grid the mask should take.
    method
        ``"nearest"``: nearest-neighbour lookup of the mask at each target voxel centre.
        ``"partial"``: the fraction of each target voxel covered by the mask (sampled on a 3×
        finer sub-grid inside each target voxel), then thresholded. This is the one to use
        between grids of different resolution.
    threshold
        Coverage fraction that counts as inside. ``None`` (default) keeps the volume: the
        voxels with the highest coverage are taken until they add up to the covered volume
        (a fixed 0.5 loses a few percent on small convex lesions).

    Raises
    ------
    FrameOfReferenceError
        When both images carry different FrameOfReferenceUIDs.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> on_adc = radimt.resample_mask(mask, study.adc)      # by physical coordinates
    >>> on_adc.GetSize() == study.adc.GetSize(), round(radimt.mask_volume_mm3(on_adc))
    (True, 1380)
    """
    if mask.HasMetaDataKey(FRAME_OF_REFERENCE_KEY):
        check_frame_of_reference(reference, mask.GetMetaData(FRAME_OF_REFERENCE_KEY), what="mask")
    if mask.GetDimension() != reference.GetDimension():
        raise MaskError(f"a {mask.GetDimension()}D mask cannot go onto a {reference.GetDimension()}D image")
    binary = sitk.Cast(_around_lesion(mask) > 0, sitk.sitkUInt8)
    if method == "nearest":
        out = sitk.Resample(binary, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    elif method == "partial":
        out = _partial_volume_resample(binary, reference, threshold)
    else:
        raise MaskError(f"unknown resampling method {method!r}: use 'nearest' or 'partial'")
    out.CopyInformation(reference)
    copy_reference_metadata(reference, out)
    return out


def _around_lesion(mask: sitk.Image) -> sitk.Image:
    """The mask cut to its non-zero box plus one voxel of background (an empty mask whole): what
    resampling reads of it, so moving a lesion costs the lesion, not the field of view."""
    labels = sitk.GetArrayViewFromImage(mask)
    box = nonzero_box(labels)
    if box is None:
        return mask
    lower = [max(b.start - 1, 0) for b in box]
    upper = [min(b.stop + 1, n) for b, n in zip(box, labels.shape, strict=True)]
    size = [int(hi - lo) for lo, hi in zip(lower, upper, strict=True)][::-1]
    return sitk.RegionOfInterest(mask, size, [int(lo) for lo in lower][::-1])


def lesion_cut(mask: sitk.Image) -> sitk.Image:
    """What :func:`resample_mask` reads of ``mask``, as an image of its own: the mask cut to
    its non-zero box plus one voxel of background, with its provenance (frame of reference,
    series); :func:`resample_mask` gives the same result from it as from ``mask``. For another
    thread to carry while this one goes on using ``mask``."""
    cut = _around_lesion(mask)
    if cut is mask:  # empty: nothing to cut to
        return independent_copy(mask)
    copy_reference_metadata(mask, cut)
    return cut


def _volume_preserving(fraction: np.ndarray) -> np.ndarray:
    """The voxels with the highest coverage, as many as the covered volume holds."""
    count = int(round(float(fraction.sum())))
    flat = fraction.ravel()
    order = np.argsort(-flat, kind="stable")
    inside = np.zeros(flat.shape, bool)
    inside[order[:count]] = True
    return inside.reshape(fraction.shape) & (fraction > 0)


def _partial_volume_resample(
    mask: sitk.Image, reference: sitk.Image, threshold: float | None, factor: int = 3
) -> sitk.Image:
    dim = reference.GetDimension()
    out = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    out.CopyInformation(reference)
    points = _bounding_corners(mask)
    if points is None:
        return out
    cont = np.array([reference.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in points])
    lower = np.maximum(np.floor(cont.min(axis=0)).astype(int) - 1, 0)
    upper = np.minimum(np.ceil(cont.max(axis=0)).astype(int) + 2, np.array(reference.GetSize()))
    if np.any(upper <= lower):
        return out
    size = upper - lower
    spacing = np.array(reference.GetSpacing())
    direction = np.array(reference.GetDirection()).reshape(dim, dim)
    fine_spacing = spacing / factor
    # The fine grid's first sample sits at the centre of the first sub-voxel of voxel `lower`.
    first = np.array(reference.TransformContinuousIndexToPhysicalPoint((lower - 0.5 + 0.5 / factor).tolist()))
    fine = sitk.Image((size * factor).tolist(), sitk.sitkFloat32)
    fine.SetSpacing(fine_spacing.tolist())
    fine.SetDirection(direction.ravel().tolist())
    fine.SetOrigin(first.tolist())
    sampled = sitk.Resample(sitk.Cast(mask, sitk.sitkFloat32), fine, sitk.Transform(), sitk.sitkLinear, 0.0)
    arr = sitk.GetArrayViewFromImage(sampled)
    shape = []
    for n in size[::-1]:
        shape += [int(n), factor]
    fraction = arr.reshape(shape).mean(axis=tuple(range(1, 2 * dim, 2)))
    if threshold is None:
        inside = _volume_preserving(fraction)
    else:
        inside = fraction >= threshold
    block = sitk.GetImageFromArray(inside.astype(np.uint8))
    return paste_in_place(out, block, lower.tolist())


def _bounding_corners(mask: sitk.Image) -> np.ndarray | None:
    idx = nonzero_indices(sitk.GetArrayViewFromImage(mask), positive=True)
    if not len(idx):
        return None
    lo, hi = idx.min(axis=0)[::-1] - 1, idx.max(axis=0)[::-1] + 1
    dim = mask.GetDimension()
    corners = np.array(np.meshgrid(*[(lo[d], hi[d]) for d in range(dim)], indexing="ij")).reshape(dim, -1).T
    return np.array([mask.TransformContinuousIndexToPhysicalPoint(c.astype(float).tolist()) for c in corners])
