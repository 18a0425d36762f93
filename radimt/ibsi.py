"""IBSI-1 features of an image and its ROI, as the IBSI reference manual defines them
(Zwanenburg et al. 2020), under IBSI's interpolation, re-segmentation and discretisation settings.

:func:`ibsi_features` returns ``{(family, feature, aggregation): value}``:

- morphology and intensity statistics: pyradiomics' shape and first-order values under IBSI
  names, with its known deviations corrected (principal axis lengths with the N−1 covariance;
  excess kurtosis = kurtosis − 3), and the morphology pyradiomics lacks (asphericity,
  centre-of-mass shift, integrated intensity, bounding box, convex hull and ellipsoid densities
  — mesh vertices on the midpoints between inside and outside voxel centres —, Moran's I and
  Geary's C as convolutions with the 1/distance kernel over the ROI's box);
- statistics extras (median absolute deviation, coefficient of variation, quartile coefficient
  of dispersion) and the intensity histogram family on the discretised grey levels (with the
  mode and the largest and smallest histogram gradients);
- local and global intensity peaks: mean intensity in a 1 cm³ sphere (radius 6.2 mm);
- GLCM, GLRLM, GLSZM, NGTDM (:mod:`radimt.ibsi_texture`), NGLDM and GLDZM from radimt's own
  matrices of the grey levels binned once over the whole ROI, in every aggregation (2D per
  slice, 2.5D merged over slices, 3D; averaged or merged over directions);
- the intensity-volume histogram (V10, V90, I10, I90 and differences) with its own
  discretisation (``ivh_bin_width`` / ``ivh_bin_count``; by default none for whole-number
  intensities, 1,000 bins otherwise).

Re-segmentation and discretisation follow :mod:`radimt.ibsi_processing`: morphology uses the
ROI as delineated, every intensity family its re-segmented intensity mask.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy.spatial import ConvexHull

from radimt.features import FeatureError, extract_features, load_params
from radimt.grids import nonzero_box
from radimt.ibsi_filters import FilterSettings, response_in_box
from radimt.ibsi_processing import IBSISettings, discretise, intensity_mask, interpolate
from radimt.ibsi_texture import DEPENDENCE_NAMES, DISTANCE_NAMES, size_features, texture_features
from radimt.measure import boundary_face_points

_UNSET = object()


def mapping() -> list[dict[str, str]]:
    """The pyradiomics-to-IBSI feature mapping shipped with radimt."""
    text = resources.files("radimt").joinpath("data/pyradiomics_to_ibsi_mapping.csv").read_text()
    return [row for row in csv.DictReader(text.splitlines()) if row["ibsi_code"]]


#: IBSI-1 feature families, as the reference tables name them.
FAMILIES = (
    "morphology",
    "local_intensity",
    "statistics",
    "intensity_histogram",
    "intensity_volume_histogram",
    "glcm",
    "glrlm",
    "glszm",
    "gldzm",
    "ngtdm",
    "ngldm",
)


def ibsi_features(
    image: sitk.Image,
    mask: sitk.Image,
    settings: IBSISettings | None = None,
    families: Iterable[str] | None = None,
    filter: FilterSettings | None = None,
    **pyradiomics_settings: Any,
) -> dict[tuple[str, str, str], float]:
    """IBSI-1 feature values keyed by ``(family, feature, aggregation)`` as the IBSI reference
    tables name them (aggregation ``""`` for families without one).

    Parameters
    ----------
    image, mask
        The image and the morphological mask (the ROI as delineated), on one grid
        (interpolated first when ``settings.spacing`` says so).
    settings
        Re-segmentation and discretisation (:class:`radimt.ibsi_processing.IBSISettings`); the
        digital phantom's configuration (bin size 1 from the ROI minimum) by default.
        Morphology uses the mask; every intensity family uses the re-segmented intensity mask
        and, where IBSI discretises, the grey levels binned once over the whole ROI (also for
        the per-slice 2D aggregation).
    families
        IBSI families to compute (``FAMILIES``); all by default.
    filter
        An IBSI-2 filter (:class:`radimt.ibsi_filters.FilterSettings`): the intensity families
        IBSI 2 computes on response maps (statistics and the intensity histogram, the latter
        with a fixed bin number) in its order: interpolation, then filtering, then the
        re-segmentation of the original image's intensities, whose mask the response is read in.

    Raises
    ------
    FeatureError
        An unknown family, a pyradiomics setting that changes the computation, or a
        re-segmentation that leaves no voxel.
    """
    settings = settings if settings is not None else IBSISettings()
    wanted = set(FAMILIES if families is None else families)
    unknown = wanted - set(FAMILIES)
    if unknown:
        raise FeatureError(f"unknown IBSI families {sorted(unknown)}; choose from {list(FAMILIES)}")
    fixed = load_params("ibsi")["setting"]
    changed = {k: v for k, v in pyradiomics_settings.items() if fixed.get(k, _UNSET) != v}
    if changed:
        raise FeatureError(
            f"ibsi_features takes IBSI's settings as settings=IBSISettings(bin_width=..., bin_count=..., "
            f"resegment_range=..., outlier_sigma=...), not as pyradiomics settings {sorted(changed)}. "
            "For pyradiomics features under pyradiomics' settings use "
            "radimt.extract_features(image, mask, preset='ibsi', ...)"
        )
    if filter is not None:
        return _filtered_features(image, mask, settings, filter, wanted if families is not None else None)
    image, mask = interpolate(image, mask, settings)
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    roi = sitk.GetArrayViewFromImage(mask) > 0
    kept = intensity_mask(values, roi, settings)
    levels = discretise(values, kept, settings)
    kept_mask = sitk.GetImageFromArray(kept.astype(np.uint8))
    kept_mask.CopyInformation(mask)

    base = extract_features(
        image, mask, preset="ibsi", feature_classes=["shape", "firstorder"], **pyradiomics_settings
    )
    raw = base if np.array_equal(kept, roi) else extract_features(
        image, kept_mask, preset="ibsi", feature_classes=["firstorder"], **pyradiomics_settings
    )
    # IBSI defines the intensity histogram family on the discretised grey levels, not on the
    # raw intensities: first-order statistics of the level image (pyradiomics' firstorder
    # values are of the image it is given; its own binning only counts the histogram, whose
    # counts do not depend on where its bins start).
    level_image = sitk.GetImageFromArray(levels.astype(np.float64))
    level_image.CopyInformation(image)
    discretised = extract_features(
        level_image, kept_mask, preset="ibsi", feature_classes=["firstorder"], **pyradiomics_settings
    )
    sources = {"morphology": base, "statistics": raw, "intensity_histogram": discretised}
    out = _mapped(sources, ("shape", "firstorder"))
    out.update(_corrected_axes(base, mask))
    out.update(_extra_features(image, roi, kept, levels, base, settings))
    out.update(_matrix_families(levels, kept, roi))
    if wanted & {"glcm", "glrlm", "glszm", "ngtdm"}:
        out.update(texture_features(levels))
    return {key: value for key, value in out.items() if key[0] in wanted}


AXES = {
    "MajorAxisLength": "Major axis length",
    "MinorAxisLength": "Minor axis length",
    "LeastAxisLength": "Least axis length",
}


def _corrected_axes(base: dict[str, float], mask: sitk.Image) -> dict[tuple[str, str, str], float]:
    """Principal axis lengths with the sample (N−1) covariance, as IBSI defines them."""
    n = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    factor = math.sqrt(n / (n - 1)) if n > 1 else 1.0
    return {
        ("morphology", feature, ""): base[f"original_shape_{name}"] * factor
        for name, feature in AXES.items()
        if f"original_shape_{name}" in base
    }


def _voxel_coordinates(grid: sitk.Image, inside: np.ndarray) -> np.ndarray:
    """Physical positions (mm) of the voxels of ``inside`` (an array on ``grid``), in array order."""
    index = np.argwhere(inside)[:, ::-1].astype(float)
    direction = np.asarray(grid.GetDirection()).reshape(3, 3)
    return (index * grid.GetSpacing()) @ direction.T + np.asarray(grid.GetOrigin())


def _dispersion(values: np.ndarray) -> tuple[float, float, float]:
    median = float(np.median(values))
    mad = float(np.mean(np.abs(values - median)))
    mean = float(values.mean())
    cov = float(values.std() / mean) if mean else float("nan")
    q1, q3 = np.percentile(values, [25, 75])
    qcod = float((q3 - q1) / (q3 + q1)) if (q3 + q1) else float("nan")
    return mad, cov, qcod


#: The families IBSI 2 computes on a filter's response map.
FILTERED_FAMILIES = ("statistics", "intensity_histogram")


def _filtered_features(
    image: sitk.Image,
    mask: sitk.Image,
    settings: IBSISettings,
    filter: FilterSettings,
    families: set[str] | None,
) -> dict[tuple[str, str, str], float]:
    """Statistics and intensity histogram of the response map in IBSI 2's order: interpolate,
    filter, re-segment on the original intensities."""
    wanted = set(FILTERED_FAMILIES) if families is None else families
    if wanted - set(FILTERED_FAMILIES):
        raise FeatureError(
            f"IBSI 2 computes {' and '.join(FILTERED_FAMILIES)} on a filter's response map, not "
            f"{sorted(wanted - set(FILTERED_FAMILIES))}"
        )
    if "intensity_histogram" in wanted and settings.bin_count is None:
        raise FeatureError(
            "the intensity histogram of a response map needs a fixed bin number "
            "(IBSISettings(bin_count=...)): a bin width in the image's units means nothing after filtering"
        )
    image, mask = interpolate(image, mask, settings)
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    roi = sitk.GetArrayViewFromImage(mask) > 0
    kept = intensity_mask(values, roi, settings)  # on the original intensities
    spacing = np.asarray(image.GetSpacing()[::-1], float)
    response_values = response_in_box(values, spacing, roi, filter)  # the ROI's box and the kernel's reach
    response = sitk.GetImageFromArray(response_values)
    response.CopyInformation(image)
    levels = discretise(response_values, kept, settings)
    kept_mask = sitk.GetImageFromArray(kept.astype(np.uint8))
    kept_mask.CopyInformation(mask)
    raw = extract_features(response, kept_mask, preset="ibsi", feature_classes=["firstorder"])
    level_image = sitk.GetImageFromArray(levels.astype(np.float64))
    level_image.CopyInformation(image)
    discretised = extract_features(level_image, kept_mask, preset="ibsi", feature_classes=["firstorder"])
    out = _mapped({"statistics": raw, "intensity_histogram": discretised}, ("firstorder",))
    out.update(_dispersion_and_histogram(response_values[kept], levels[kept]))
    return {key: value for key, value in out.items() if key[0] in wanted}


def _mapped(
    sources: Mapping[str, Mapping[str, float]], classes: tuple[str, ...]
) -> dict[tuple[str, str, str], float]:
    """pyradiomics' values under IBSI's names (``sources``: the pyradiomics row per IBSI family)."""
    out: dict[tuple[str, str, str], float] = {}
    for m in mapping():
        key = f"original_{m['pyradiomics_class']}_{m['pyradiomics_feature']}"
        family = m["ibsi_family"]
        if m["pyradiomics_class"] in classes and key in sources.get(family, {}):
            value = sources[family][key]
            out[(family, m["ibsi_feature"], "")] = value - 3.0 if m["transform"] == "minus3" else value
    return out


def _dispersion_and_histogram(
    values: np.ndarray, grey_levels: np.ndarray
) -> dict[tuple[str, str, str], float]:
    """The statistics and intensity-histogram features pyradiomics lacks, from the intensity
    mask's values and their grey levels (1 .. the highest)."""
    stats: dict[str, float] = {}
    hist: dict[str, float] = {}
    mad, cov, qcod = _dispersion(values)
    stats["Intensity-based median absolute deviation"] = mad
    stats["Intensity-based coefficient of variation"] = cov
    stats["Intensity-based quartile coefficient of dispersion"] = qcod
    mad, cov, qcod = _dispersion(grey_levels.astype(float))
    counts = np.bincount(grey_levels)[1:]
    grey = np.arange(1, len(counts) + 1)
    gradient = np.gradient(counts.astype(float)) if len(counts) > 1 else np.zeros(1)
    hist["Intensity histogram mode"] = float(grey[np.argmax(counts)])
    hist["Intensity histogram median absolute deviation"] = mad
    hist["Intensity histogram coefficient of variation"] = cov
    hist["Intensity histogram quartile coefficient of dispersion"] = qcod
    hist["Maximum histogram gradient"] = float(gradient.max())
    hist["Maximum histogram gradient intensity"] = float(grey[np.argmax(gradient)])
    hist["Minimum histogram gradient"] = float(gradient.min())
    hist["Minimum histogram gradient intensity"] = float(grey[np.argmin(gradient)])
    return {
        **{("statistics", name, ""): value for name, value in stats.items()},
        **{("intensity_histogram", name, ""): value for name, value in hist.items()},
    }


def _extra_features(
    image: sitk.Image,
    roi: np.ndarray,
    kept: np.ndarray,
    levels: np.ndarray,
    base: dict[str, float],
    settings: IBSISettings,
) -> dict[tuple[str, str, str], float]:
    """The IBSI features pyradiomics lacks: ``roi`` is the morphological mask, ``kept`` the
    intensity mask, ``levels`` its discretised grey levels."""
    ivh: dict[str, float] = {}
    morph: dict[str, float] = {}
    points = _voxel_coordinates(image, roi)
    values_all = sitk.GetArrayViewFromImage(image).astype(np.float64)
    values = values_all[kept]
    ivh.update(intensity_volume_histogram(values, settings))
    # Local and global intensity peaks: mean intensity (every image voxel, in the ROI or not)
    # in a 1 cm³ sphere around each voxel of the intensity mask.
    peaks = _sphere_means(values_all, kept, image.GetSpacing()[::-1])
    local = {
        "Local intensity peak": float(peaks[values == values.max()].max()),
        "Global intensity peak": float(peaks.max()),
    }
    # Morphology from the surface mesh (vertices at inside/outside voxel midpoints).
    volume, area = base["original_shape_MeshVolume"], base["original_shape_SurfaceArea"]
    mask = sitk.GetImageFromArray(roi.astype(np.uint8))
    mask.CopyInformation(image)
    vertices = boundary_face_points(mask)
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    hull = ConvexHull(vertices)
    # Centre of mass: geometric over the morphological mask, intensity-weighted over the
    # intensity mask.
    kept_points = _voxel_coordinates(image, kept)
    weighted = (kept_points * values[:, None]).sum(axis=0) / values.sum()
    morph["Asphericity"] = float((area**3 / (36 * math.pi * volume**2)) ** (1 / 3) - 1)
    morph["Centre of mass shift"] = float(np.linalg.norm(points.mean(axis=0) - weighted))
    morph["Integrated intensity"] = float(values.mean() * volume)
    morph["Volume density (axis-aligned bounding box)"] = float(volume / np.prod(extent))
    box_area = 2 * (extent[0] * extent[1] + extent[1] * extent[2] + extent[0] * extent[2])
    morph["Area density (axis-aligned bounding box)"] = float(area / box_area)
    morph["Volume density (convex hull)"] = float(volume / hull.volume)
    morph["Area density (convex hull)"] = float(area / hull.area)
    morph["Moran’s I index"], morph["Geary’s C measure"] = _autocorrelation_on_grid(
        kept, values_all, image.GetSpacing()[::-1]
    )
    a, b, c = 2 * np.sqrt(np.sort(np.linalg.eigvalsh(np.cov(points.T, ddof=1)))[::-1])
    morph["Volume density (approximate enclosing ellipsoid)"] = float(volume / (4 * math.pi * a * b * c / 3))
    morph["Area density (approximate enclosing ellipsoid)"] = float(area / _ellipsoid_area(a, b, c))
    out = _dispersion_and_histogram(values, levels[kept])
    for family, features in (
        ("intensity_volume_histogram", ivh),
        ("local_intensity", local),
        ("morphology", morph),
    ):
        out.update({(family, name, ""): value for name, value in features.items()})
    return out


#: IVH bins for intensities that are not whole numbers when IBSISettings names none.
CONTINUOUS_IVH_BINS = 1000


def intensity_volume_histogram(values: np.ndarray, settings: IBSISettings) -> dict[str, float]:
    """V10, V90, I10, I90 and their differences from the intensities of the intensity mask.

    The histogram runs over every level of its range — the re-segmentation range where one is
    set, else the ROI's extremes: whole-number intensities themselves, or the bins of
    ``settings.ivh_bin_width`` (read as their centres) or ``ivh_bin_count`` (read as 1..N).
    ν(g) is the fraction of voxels at level g or above, γ(g) the level's fraction of the range;
    V_x is the largest ν with γ ≥ x and I_x the lowest level with ν ≤ x (the level after the
    range when none is).

    Raises
    ------
    FeatureError
        Intensities that are not whole numbers and no IVH discretisation given.
    """
    low_bound, high_bound = settings.resegment_range or (None, None)
    low = float(values.min()) if low_bound is None else float(low_bound)
    high = float(values.max()) if high_bound is None else float(high_bound)
    whole_numbers = not np.any(np.mod(values, 1) != 0)
    count = settings.ivh_bin_count
    if count is None and settings.ivh_bin_width is None and not whole_numbers:
        count = CONTINUOUS_IVH_BINS
    if count is not None:
        n = int(count)
        top, bottom = float(values.max()), float(values.min())
        scaled = np.floor(n * (values - bottom) / (top - bottom)) if top > bottom else np.zeros(values.shape)
        bins = np.clip(scaled.astype(np.int64) + 1, 1, n)
        grid = np.arange(1, n + 1, dtype=float)
        after = n + 1.0
    elif settings.ivh_bin_width is not None:
        width = float(settings.ivh_bin_width)
        n = int(math.ceil((high - low) / width)) + 1
        bins = np.clip(np.floor((values - low) / width).astype(np.int64) + 1, 1, n)
        grid = low + (np.arange(1, n + 1) - 0.5) * width
        after = grid[-1] + width
    else:
        low, high = math.ceil(low), math.floor(high)
        n = int(high - low) + 1
        bins = (values - low).astype(np.int64) + 1
        grid = np.arange(low, high + 1, dtype=float)
        after = high + 1.0
    counts = np.bincount(bins, minlength=n + 1)[1 : n + 1]
    at_or_above = 1.0 - np.concatenate([[0], np.cumsum(counts)[:-1]]) / values.size
    gamma = (grid - grid[0]) / (grid[-1] - grid[0]) if n > 1 else np.zeros(1)

    def volume_at(fraction: float) -> float:
        return float(at_or_above[gamma >= fraction].max())

    def intensity_at(fraction: float) -> float:
        below = grid[at_or_above <= fraction]
        return float(below.min()) if below.size else float(after)

    v10, v90, i10, i90 = volume_at(0.10), volume_at(0.90), intensity_at(0.10), intensity_at(0.90)
    return {
        "Volume fraction at 10% intensity": v10,
        "Volume fraction at 90% intensity": v90,
        "Intensity at 10% volume": i10,
        "Intensity at 90% volume": i90,
        "Volume fraction difference between intensity fractions": v10 - v90,
        "Intensity fraction difference between volume fractions": i10 - i90,
    }


#: Radius (mm) of the 1 cm³ sphere of the intensity peaks.
PEAK_RADIUS_MM = (3 * 1000.0 / (4 * math.pi)) ** (1 / 3)


def _sphere_means(values: np.ndarray, roi: np.ndarray, spacing, radius: float = PEAK_RADIUS_MM) -> np.ndarray:
    """Mean of the image voxels whose centres lie within ``radius`` mm of each ROI voxel's
    centre (voxels outside the image do not count), in ROI order (``values[roi]``).

    Sums and counts by convolution with the sphere's kernel over the ROI's box plus the radius:
    the cost follows the ROI, not ROI voxels times image voxels.
    """
    from scipy import ndimage

    reach = [int(math.floor(radius / s + 1e-9)) for s in spacing]
    axes = [np.arange(-r, r + 1) * s for r, s in zip(reach, spacing, strict=True)]
    grids = np.meshgrid(*axes, indexing="ij")
    kernel = (sum(g**2 for g in grids) <= radius**2).astype(np.float64)
    box = nonzero_box(roi)
    assert box is not None  # an ROI with voxels
    lower = [max(b.start - r, 0) for b, r in zip(box, reach, strict=True)]
    upper = [min(b.stop + r, n) for b, r, n in zip(box, reach, values.shape, strict=True)]
    region = tuple(slice(lo, hi) for lo, hi in zip(lower, upper, strict=True))
    sums = ndimage.convolve(values[region], kernel, mode="constant", cval=0.0)
    counts = ndimage.convolve(np.ones(sums.shape), kernel, mode="constant", cval=0.0)
    inside = roi[region]
    return (sums[inside] / counts[inside]).astype(np.float64)


def _ellipsoid_area(a: float, b: float, c: float, terms: int = 20) -> float:
    """Surface of an ellipsoid with semi-axes a >= b >= c, by the Legendre series IBSI uses."""
    from numpy.polynomial import legendre

    alpha, beta = math.sqrt(max(0.0, 1 - b**2 / a**2)), math.sqrt(max(0.0, 1 - c**2 / a**2))
    if alpha * beta == 0:
        x = 1.0
    else:
        x = (alpha**2 + beta**2) / (2 * alpha * beta)
    total = 0.0
    for nu in range(terms + 1):
        coefficients = np.zeros(nu + 1)
        coefficients[nu] = 1
        total += (alpha * beta) ** nu / (1 - 4 * nu**2) * float(legendre.legval(x, coefficients))
    return 4 * math.pi * a * b * total


def _autocorrelation(points: np.ndarray, values: np.ndarray, block: int = 256) -> tuple[float, float]:
    """Moran's I and Geary's C with inverse-distance weights over all pairs of ``points``: the
    definition, pair by pair in blocks of ``block`` rows (memory ~ block x n, time ~ n²). The
    reference for :func:`_autocorrelation_on_grid`, which ibsi_features uses.
    """
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    dev = values - values.mean()
    variance = float((dev**2).sum())
    if variance == 0:
        return float("nan"), float("nan")
    squared = (points**2).sum(axis=1)
    w_sum = cross = diff = 0.0
    for start in range(0, n, block):
        rows = slice(start, start + block)
        d2 = squared[rows, None] + squared[None, :] - 2.0 * points[rows] @ points.T
        dist = np.sqrt(np.maximum(d2, 0.0))
        with np.errstate(divide="ignore"):
            weights = np.where(dist > 1e-9, 1.0 / dist, 0.0)
        own = np.arange(start, min(start + block, n))
        weights[own - start, own] = 0.0  # a voxel is not its own neighbour (d² rounds to ~1e-13)
        w_sum += float(weights.sum())
        cross += float(dev[rows] @ weights @ dev)
        diff += float((weights * (values[rows, None] - values[None, :]) ** 2).sum())
    moran = n / w_sum * cross / variance
    geary = (n - 1) / (2 * w_sum) * diff / variance
    return moran, geary


def _autocorrelation_on_grid(
    roi: np.ndarray, image: np.ndarray, spacing: tuple[float, ...]
) -> tuple[float, float]:
    """Moran's I and Geary's C of an ROI on a voxel grid, exactly as :func:`_autocorrelation`
    defines them, with the pair sums as convolutions (FFT) over the ROI's box: seconds instead
    of n² distances (a minute at 125,000 voxels).

    With deviations d (0 outside the ROI), indicator r and kernel k(o) = 1/|o| (mm; k(0) = 0):
    Σ w d d = Σ d (k * d), Σ w = Σ r (k * r), Σ w (x_i - x_j)² = 2 Σ d² (k * r) - 2 Σ d (k * d).
    """
    from scipy.signal import fftconvolve

    box = nonzero_box(roi)
    if box is None:
        return float("nan"), float("nan")
    inside = roi[box]
    values = image[box][inside].astype(np.float64)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    dev_values = values - values.mean()
    variance = float((dev_values**2).sum())
    if variance == 0:
        return float("nan"), float("nan")
    axes = [np.arange(-(size - 1), size) * step for size, step in zip(inside.shape, spacing, strict=True)]
    distance = np.sqrt(sum(g**2 for g in np.meshgrid(*axes, indexing="ij", sparse=True)))
    with np.errstate(divide="ignore"):
        kernel = np.where(distance > 0, 1.0 / np.where(distance > 0, distance, 1.0), 0.0)
    indicator = inside.astype(np.float64)
    dev = np.zeros(inside.shape)
    dev[inside] = dev_values
    near_dev = fftconvolve(dev, kernel, mode="same")[inside]
    near_roi = fftconvolve(indicator, kernel, mode="same")[inside]
    w_sum = float(near_roi.sum())
    cross = float(dev_values @ near_dev)
    diff = 2.0 * float(dev_values**2 @ near_roi) - 2.0 * cross
    moran = n / w_sum * cross / variance
    geary = (n - 1) / (2 * w_sum) * diff / variance
    return moran, geary


# -- texture matrices pyradiomics lacks: NGLDM (complete) and GLDZM --------------------------


def _levels(image: sitk.Image, mask: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Grey levels in the phantom's configuration (bin size 1 from the ROI minimum; 0 outside)
    and the ROI."""
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    roi = sitk.GetArrayViewFromImage(mask) > 0
    return discretise(values, roi, IBSISettings()), roi


def _ngldm(levels: np.ndarray, roi: np.ndarray, in_plane: bool) -> np.ndarray:
    """NGLDM s[i, j]: voxels of level i with j - 1 neighbours (Chebyshev 1) of the same level."""
    counts = np.zeros(levels.shape, int)
    offsets = [o for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]
    if in_plane:
        offsets = [o for o in offsets if o[0] == 1]
    padded_levels = np.pad(levels, 1)
    padded_roi = np.pad(roi, 1)
    inner = tuple(slice(1, -1) for _ in range(3))
    for o in offsets:
        shifted = tuple(slice(1 + d - 1, padded_levels.shape[k] - 1 + d - 1) for k, d in enumerate(o))
        same = padded_roi[shifted] & (padded_levels[shifted] == padded_levels[inner])
        counts += same
    n_levels = int(levels.max())
    matrix = np.zeros((n_levels, len(offsets) + 1))
    np.add.at(matrix, (levels[roi] - 1, counts[roi]), 1)
    return matrix


def _zones(
    levels: np.ndarray, roi: np.ndarray, in_plane: bool, outline: np.ndarray | None = None
) -> np.ndarray:
    """GLDZM x[i, d]: zones (connected voxels of one level in ``roi``) of level i at distance d
    to the edge of ``outline`` (the morphological mask; ``roi`` when not given)."""
    from scipy import ndimage

    if in_plane:
        structure = np.zeros((3, 3, 3), bool)
        structure[1] = True
        taxicab = np.zeros((3, 3, 3), bool)
        taxicab[1] = ndimage.generate_binary_structure(2, 1)
    else:
        structure = np.ones((3, 3, 3), bool)
        taxicab = ndimage.generate_binary_structure(3, 1)
    distance = _edge_distance(roi if outline is None else outline, taxicab)
    zone_levels, zone_distances = [], []
    for level in np.unique(levels[roi]):
        members = roi & (levels == level)
        labels, n = ndimage.label(members, structure=structure)
        if n:
            # Each zone's smallest distance, over this level's voxels only (ndimage.minimum
            # would sort the whole label image once per level: minutes at ~2,000 levels).
            nearest = np.full(n, np.iinfo(np.int64).max)
            np.minimum.at(nearest, labels[members] - 1, distance[members])
            zone_levels.append(np.full(n, level))
            zone_distances.append(nearest)
    found_levels, found_distances = np.concatenate(zone_levels), np.concatenate(zone_distances)
    matrix = np.zeros((int(levels.max()), int(found_distances.max())))
    np.add.at(matrix, (found_levels - 1, found_distances - 1), 1)
    return matrix


def _edge_distance(roi: np.ndarray, connectivity: np.ndarray) -> np.ndarray:
    """Steps (along ``connectivity``) to leave the ROI: 1 for voxels on its edge."""
    from scipy import ndimage

    distance = np.zeros(roi.shape, int)
    current = roi.copy()
    step = 0
    while current.any():
        step += 1
        eroded = ndimage.binary_erosion(current, structure=connectivity, border_value=0)
        distance[current & ~eroded] = step
        current = eroded
    return distance


def _matrix_features(matrix: np.ndarray, n_voxels: int, kind: str) -> dict[str, float]:
    """IBSI features of an NGLDM (grey level x dependence count + 1) or GLDZM (grey level x
    distance) matrix: the 16 features IBSI shares with GLRLM and GLSZM, and NGLDM's energy."""
    if kind == "ngldm":
        out = size_features(matrix, n_voxels, DEPENDENCE_NAMES)
        out["Dependence count energy"] = float(((matrix / matrix.sum()) ** 2).sum())
        return out
    return size_features(matrix, n_voxels, DISTANCE_NAMES)


def texture_matrix_features(
    image: sitk.Image, mask: sitk.Image, settings: IBSISettings | None = None
) -> dict[tuple[str, str, str], float]:
    """NGLDM and GLDZM features in the 3D, 2.5D (slices merged) and 2D (slice mean) aggregations,
    under ``settings`` (the phantom's configuration by default)."""
    settings = settings if settings is not None else IBSISettings()
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    roi = sitk.GetArrayViewFromImage(mask) > 0
    kept = intensity_mask(values, roi, settings)
    return _matrix_families(discretise(values, kept, settings), kept, roi)


def _matrix_families(
    levels: np.ndarray, kept: np.ndarray, roi: np.ndarray
) -> dict[tuple[str, str, str], float]:
    """NGLDM and GLDZM of grey ``levels`` binned once over the intensity mask ``kept`` (also for
    the per-slice aggregations); GLDZM distances run to the edge of the morphological ``roi``."""
    out: dict[tuple[str, str, str], float] = {}
    n = int(kept.sum())
    for family in ("ngldm", "gldzm"):

        def build(k: slice, in_plane: bool, family: str = family) -> np.ndarray:
            if family == "ngldm":
                return _ngldm(levels[k], kept[k], in_plane)
            return _zones(levels[k], kept[k], in_plane, outline=roi[k])

        volume = _matrix_features(build(slice(None), False), n, family)
        out.update({(family, k, "3D"): v for k, v in volume.items()})
        matrices = {k: build(slice(k, k + 1), True) for k in _slices(kept)}
        # Slices reach different zone distances (GLDZM) on a real ROI: merge on the widest.
        width = max([27, *(m.shape[1] for m in matrices.values())])
        merged = np.sum([_pad_to(m, levels, width) for m in matrices.values()], axis=0)
        out.update({(family, k, "2.5D"): v for k, v in _matrix_features(merged, n, family).items()})
        per_slice = [_matrix_features(m, int(kept[k].sum()), family) for k, m in matrices.items()]
        for name in per_slice[0]:
            out[(family, name, "2D")] = float(np.mean([f[name] for f in per_slice]))
    return out


def _slices(roi: np.ndarray) -> list[int]:
    return [k for k in range(roi.shape[0]) if roi[k].any()]


def _pad_to(matrix: np.ndarray, levels: np.ndarray, width: int = 27) -> np.ndarray:
    out = np.zeros((int(levels.max()), max(width, matrix.shape[1])))
    out[: matrix.shape[0], : matrix.shape[1]] = matrix
    return out
