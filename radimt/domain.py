"""Breast-lesion features that pyradiomics does not have.

- **Rim versus core** (DCE enhancement, CT attenuation): the lesion is split by the distance of
  each voxel to its boundary into an outer shell of ``thickness_mm`` (the rim) and the rest
  (the core). Reported: rim mean, core mean, rim − core, and rim / core. Rim enhancement is a
  sign of malignancy in breast MRI; the published IMT case showed heterogeneous rim enhancement
  on CT. A lesion too small to have a core gives NaN for the core values.
- **Margin sharpness**: the mean gradient magnitude (Gaussian derivative, σ = half the smallest
  voxel spacing) on the lesion boundary, divided by the contrast between the lesion and a
  ``ring_mm`` ring outside it. Units 1/mm: a blurred edge of width w gives about 1/w, a sharp
  (circumscribed) margin gives a high value, an infiltrating margin a low one.
- **Kinetic heterogeneity**: the spread of per-voxel peak enhancement (SD, interquartile range,
  coefficient of variation) and of per-voxel SER (SD, interquartile range) within the lesion.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radimt.grids import lesion_box


def rim_core(
    image: sitk.Image, mask: sitk.Image, thickness_mm: float = 2.0, unit: str = ""
) -> dict[str, float]:
    """Mean value in the lesion's outer shell (``thickness_mm``) and in its core.

    Keys ``rim_mean``, ``core_mean``, ``rim_minus_core`` (each ending in ``_<unit>`` when a unit
    of the image's values is given: ``pct``, ``hu``), ``rim_core_ratio`` and ``rim_fraction``.

    Computed on the lesion's box (the depth of a lesion voxel only depends on the lesion), so the
    cost follows the lesion; ``image`` may be a map computed on that box only.
    """
    box, inside = lesion_box(image, mask, 0.0)
    # A shell of outside voxels around the box: the depth is the distance to the nearest one,
    # exactly as on the whole grid (the nearest outside voxel of any lesion voxel is in it).
    padded = np.pad(inside, 1)
    depth = ndimage.distance_transform_edt(padded, sampling=image.GetSpacing()[::-1])[
        tuple(slice(1, -1) for _ in range(inside.ndim))
    ]
    values = sitk.GetArrayViewFromImage(box)
    rim = inside & (depth <= thickness_mm)
    core = inside & (depth > thickness_mm)
    rim_mean = float(values[rim].mean()) if rim.any() else float("nan")
    core_mean = float(values[core].mean()) if core.any() else float("nan")
    ratio = rim_mean / core_mean if core.any() and core_mean != 0 else float("nan")
    suffix = f"_{unit}" if unit else ""
    return {
        f"rim_mean{suffix}": rim_mean,
        f"core_mean{suffix}": core_mean,
        f"rim_minus_core{suffix}": rim_mean - core_mean,
        "rim_core_ratio": ratio,
        "rim_fraction": float(rim.sum() / inside.sum()),
    }


#: Margin of the box margin_sharpness works on, in Gaussian sigmas beyond the ring: the
#: recursive Gaussian feels a border like exp(-d / sigma), below 1e-4 at 10 sigma.
GRADIENT_MARGIN_SIGMAS = 10.0


def margin_sharpness(image: sitk.Image, mask: sitk.Image, ring_mm: float = 3.0) -> float:
    """Mean boundary gradient over lesion-to-surroundings contrast (1/mm); see module notes.

    Computed on the lesion's box plus the ring and the gradient filter's reach, not the whole
    field of view.
    """
    sigma = 0.5 * min(image.GetSpacing())
    margin = ring_mm + GRADIENT_MARGIN_SIGMAS * sigma + max(image.GetSpacing())
    box, inside = lesion_box(image, mask, margin)
    gradient = sitk.GetArrayFromImage(
        sitk.GradientMagnitudeRecursiveGaussian(sitk.Cast(box, sitk.sitkFloat32), sigma)
    )
    structure = ndimage.generate_binary_structure(inside.ndim, 1)
    boundary = inside & ~ndimage.binary_erosion(inside, structure)
    boundary |= ~inside & ndimage.binary_dilation(inside, structure)
    depth_out = ndimage.distance_transform_edt(~inside, sampling=image.GetSpacing()[::-1])
    ring = ~inside & (depth_out <= ring_mm) & (depth_out > 0)
    values = sitk.GetArrayViewFromImage(box)
    contrast = abs(float(values[inside].mean()) - float(values[ring].mean())) if ring.any() else 0.0
    if contrast == 0:
        return float("nan")
    return float(gradient[boundary].mean() / contrast)


def kinetic_heterogeneity(
    peak_enhancement: sitk.Image, ser: sitk.Image, mask: sitk.Image
) -> dict[str, float]:
    """Spread of per-voxel peak enhancement (%) and SER inside the lesion."""
    pe_box, inside = lesion_box(peak_enhancement, mask, 0.0)
    ser_box, _ = lesion_box(ser, mask, 0.0)
    pe = sitk.GetArrayViewFromImage(pe_box)[inside].astype(np.float64)
    ser_values = sitk.GetArrayViewFromImage(ser_box)[inside].astype(np.float64)
    ser_values = ser_values[np.isfinite(ser_values)]
    q1, q3 = np.percentile(pe, [25, 75])
    out = {
        "pe_sd_pct": float(pe.std(ddof=1)) if pe.size > 1 else 0.0,
        "pe_iqr_pct": float(q3 - q1),
        "pe_cov": float(pe.std(ddof=1) / pe.mean()) if pe.size > 1 and pe.mean() else float("nan"),
    }
    if ser_values.size:
        s1, s3 = np.percentile(ser_values, [25, 75])
        out["ser_sd"] = float(ser_values.std(ddof=1)) if ser_values.size > 1 else 0.0
        out["ser_iqr"] = float(s3 - s1)
    return out
