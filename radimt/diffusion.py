"""Diffusion: ADC maps fitted from DWI, and ADC statistics in a lesion.

ADC values are in 10⁻³ mm²/s throughout.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radimt.dicom.roles import B0_MAX
from radimt.dicom.study import DWI, Study
from radimt.errors import DiffusionError
from radimt.grids import copy_reference_metadata, lesion_box, mask_on

#: The unit of ADC values in column names: µm²/ms, which is exactly 10⁻³ mm²/s (the unit
#: radiologists quote ADC in), spelled so a column name stays a plain identifier.
ADC_UNIT_SUFFIX = "um2_ms"


def adc_map(
    dwi: DWI,
    *,
    exclude_between: tuple[float, float] | None = (B0_MAX, 200.0),
    signal_floor: float | None = None,
    floor_fraction: float = 0.05,
) -> sitk.Image:
    """Fit an ADC map (10⁻³ mm²/s) from two or more b-values by log-linear least squares.

    Parameters
    ----------
    dwi
        ``study.dwi``: images per b-value on one grid.
    exclude_between
        b-values strictly inside this open interval are left out (default 10 < b < 200 s/mm²,
        where perfusion inflates the apparent diffusion; b ≤ 10, the "b0" scanners write as 0,
        0.001 or 5, is kept); ``None`` keeps every b-value.
    signal_floor
        Voxels whose lowest-b signal is below this are noise: their ADC is set to 0. By default
        ``floor_fraction`` of the 99th percentile of the lowest-b image.

    Notes
    -----
    With exactly two b-values the fit is the closed form ``ln(S_low / S_high) / (b_high - b_low)``.
    Negative fits (noise) are clipped to 0.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> fitted = radimt.adc_map(study.dwi)                    # from b 0 and 800
    >>> lesion = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> stats = radimt.adc_stats(fitted, radimt.resample_mask(lesion, fitted))
    >>> round(stats["adc_median_um2_ms"], 2), truth["adc"]["lesion_1e-3_mm2_s"]
    (0.85, 0.85)
    """
    b = np.asarray(dwi.b_values, float)
    keep = np.ones(b.shape, bool)
    if exclude_between is not None:
        lo, hi = exclude_between
        keep &= ~((b > lo) & (b < hi))
    if keep.sum() < 2 or len(np.unique(b[keep])) < 2:
        raise DiffusionError(
            f"ADC needs two or more distinct b-values; have {b.tolist()} (using {b[keep].tolist()} after "
            f"excluding {exclude_between}); pass exclude_between=None to keep them all"
        )
    images = [dwi.images[i] for i in np.flatnonzero(keep)]
    used = b[keep]
    signal = np.stack([sitk.GetArrayViewFromImage(im).astype(np.float64) for im in images])
    low = signal[int(np.argmin(used))]
    floor = signal_floor
    if floor is None:
        positive = low[low > 0]
        floor = floor_fraction * float(np.percentile(positive, 99)) if positive.size else np.inf
    valid = np.all(signal > 0, axis=0) & (low >= floor)
    logs = np.log(np.where(signal > 0, signal, 1.0))
    centred_b = used - used.mean()
    slope = np.tensordot(centred_b, logs - logs.mean(axis=0), axes=(0, 0)) / float((centred_b**2).sum())
    adc = np.where(valid, np.clip(-slope * 1e3, 0.0, None), 0.0).astype(np.float32)
    out = sitk.GetImageFromArray(adc)
    out.CopyInformation(images[0])
    copy_reference_metadata(images[0], out)
    out.SetMetaData("radimt|adc_b_values", "\\".join(f"{x:g}" for x in used))
    return out


def study_adc(study: Study, *, fit: bool = False, **options) -> sitk.Image | None:
    """The study's ADC map: the scanner's when present (unless ``fit=True``), else fitted (once
    per study and options; the fitted map is kept on the study).

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> adc = radimt.study_adc(study)           # the scanner's map, stored in 10⁻⁶ mm²/s
    >>> adc is study.adc, truth["adc"]["stored_units"]
    (True, 'micro')
    """
    if not fit and study.adc is not None:
        return study.adc
    if study.dwi is None:
        return None
    if study.focus is not None:  # the fit's noise floor comes from the whole lowest-b image
        return study_adc(study.whole(), fit=True, **options)
    key = ("adc_map", repr(sorted(options.items())))
    if key not in study.derived:
        study.derived[key] = adc_map(study.dwi, **options)
    return study.derived[key]


def adc_stats(
    adc: sitk.Image,
    mask: sitk.Image,
    *,
    dwi_image: sitk.Image | None = None,
    reference_mask: sitk.Image | None = None,
    darkest_voxels: int = 3,
) -> dict[str, float]:
    """ADC statistics in a lesion (10⁻³ mm²/s), CSV-ready (``adc_*`` keys).

    Parameters
    ----------
    adc
        ADC map (scanner or fitted), 10⁻³ mm²/s; voxels equal to 0 (masked noise) are ignored.
    mask
        Lesion mask on the ADC grid.
    dwi_image
        A DWI image (usually the highest b) on the same grid, for the relative DWI signal.
    reference_mask
        Reference region (e.g. normal fibroglandular tissue) for ``adc_dwi_signal_ratio``.
    darkest_voxels
        Minimum size of the neighbourhood whose mean is the lowest-ADC region value (EUSOBI:
        a small ROI in the darkest part of the lesion).

    Returns
    -------
    dict
        mean, median, min, p5, p10, p25, sd, ``min_region_mean`` (mean of the darkest
        neighbourhood of at least ``darkest_voxels`` voxels), voxel count, and
        ``dwi_signal_ratio`` when a DWI image and reference region are given.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> lesion = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> stats = radimt.adc_stats(study.adc, radimt.resample_mask(lesion, study.adc))
    >>> round(stats["adc_median_um2_ms"], 2), stats["adc_min_region_mean_um2_ms"] < stats["adc_median_um2_ms"]
    (0.85, True)
    """
    # On the lesion's box: every voxel the statistics and the 3x3x3 neighbourhoods see is inside
    # the mask, so nothing outside the box can change them (the cost follows the lesion).
    box, inside = lesion_box(adc, mask, 0.0, "the lesion mask")
    values_all = sitk.GetArrayFromImage(box).astype(np.float64)
    usable = inside & (values_all > 0)
    if not usable.any():
        raise DiffusionError("no usable ADC values in the mask (all masked as noise or zero)")
    values = values_all[usable]
    p5, p10, p25 = np.percentile(values, [5, 10, 25])
    kernel = np.ones((3,) * values_all.ndim)
    counts = ndimage.convolve(usable.astype(np.float64), kernel, mode="constant")
    sums = ndimage.convolve(np.where(usable, values_all, 0.0), kernel, mode="constant")
    eligible = usable & (counts >= darkest_voxels)
    region = float((sums[eligible] / counts[eligible]).min()) if eligible.any() else float(values.min())
    unit = ADC_UNIT_SUFFIX
    out = {
        f"adc_mean_{unit}": float(values.mean()),
        f"adc_median_{unit}": float(np.median(values)),
        f"adc_min_{unit}": float(values.min()),
        f"adc_p5_{unit}": float(p5),
        f"adc_p10_{unit}": float(p10),
        f"adc_p25_{unit}": float(p25),
        f"adc_sd_{unit}": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        f"adc_min_region_mean_{unit}": region,
        "adc_voxels": int(values.size),
    }
    if dwi_image is not None and reference_mask is not None:
        signal = sitk.GetArrayViewFromImage(dwi_image)
        lesion = signal[mask_on(dwi_image, mask, "the lesion mask")]
        reference = signal[mask_on(dwi_image, reference_mask, "the reference mask")]
        out["adc_dwi_signal_ratio"] = (
            float(lesion.mean() / reference.mean()) if reference.mean() > 0 else np.nan
        )
    return out
