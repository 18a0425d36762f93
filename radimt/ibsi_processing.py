"""IBSI-1 intensity processing of a region of interest: re-segmentation, then discretisation.

Definitions from the IBSI reference manual (Zwanenburg et al. 2020, chapter 2):

- The **morphological mask** is the ROI as delineated; morphology is measured on it.
- The **intensity mask** is the morphological mask after re-segmentation: voxels outside the
  re-segmentation range ``[low, high]`` (closed; either bound may be left open) are removed,
  then, with outlier filtering, voxels outside ``mean ± k SD`` of what remains. Every
  intensity-based family is computed on it.
- **Interpolation** (optional, first): onto a grid of the new spacing whose centre is the
  original grid's centre (IBSI's grid-centre alignment: n_new = ⌈n s / s_new⌉ voxels per axis),
  the image by trilinear (or cubic B-spline) interpolation (intensities optionally rounded, as
  for CT), the mask by trilinear interpolation kept where ≥ 0.5; points beyond the outer voxel
  centres take the nearest voxel's value.
- **Fixed bin size** ``w`` (FBS): level = ⌊(x − x_min) / w⌋ + 1, where x_min is the lower bound
  of the re-segmentation range when there is one and the intensity mask's minimum otherwise.
- **Fixed bin number** ``N_g`` (FBN): level = ⌊N_g (x − x_min) / (x_max − x_min)⌋ + 1, and N_g
  for x = x_max, with x_min and x_max the intensity mask's extremes.

The digital phantom's configuration is the default: bin size 1 from the ROI minimum, no
re-segmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radimt.errors import FeatureError

#: Image interpolators of IBSISettings.interpolation.
INTERPOLATORS = {"linear": sitk.sitkLinear, "cubic": sitk.sitkBSpline}


@dataclass(frozen=True)
class IBSISettings:
    """How an ROI's intensities are re-segmented and discretised for IBSI features.

    Attributes
    ----------
    bin_width
        Fixed bin size (FBS), in the image's units (HU for CT). The default when neither
        ``bin_width`` nor ``bin_count`` is given is 1 (the digital phantom's configuration).
    bin_count
        Fixed bin number (FBN).
    resegment_range
        ``(low, high)``: intensities kept in the intensity mask (closed interval); ``None``
        leaves that side open, e.g. ``(-500, None)``.
    outlier_sigma
        Keep intensities within this many standard deviations of the mean (3 in the IBSI
        benchmark), computed after range re-segmentation.
    spacing
        Interpolate to this voxel spacing (x, y, z in mm) first; ``None`` for an axis keeps it
        (``(2, 2, None)``: in-plane only, for 2D aggregation). No interpolation by default.
    round_intensities
        Round interpolated intensities to whole numbers (CT's Hounsfield units).
    interpolation
        ``"linear"`` (trilinear, default) or ``"cubic"`` (cubic B-spline, IBSI's tricubic
        spline) for the image; the mask is always interpolated linearly and kept where ≥ 0.5.
    ivh_bin_width, ivh_bin_count
        The intensity-volume histogram's own discretisation (IBSI gives it one apart from the
        texture families'): bins of this width from the lower re-segmentation bound (else the
        ROI minimum), intensities read as bin centres; or this many bins between the ROI's
        extremes. Neither: the intensities themselves when they are whole numbers (CT's HU),
        else 1,000 bins (IBSI's choice for continuous intensities).
    """

    bin_width: float | None = None
    bin_count: int | None = None
    resegment_range: tuple[float | None, float | None] | None = None
    outlier_sigma: float | None = None
    spacing: tuple[float | None, float | None, float | None] | None = None
    round_intensities: bool = False
    interpolation: str = "linear"
    ivh_bin_width: float | None = None
    ivh_bin_count: int | None = None

    def __post_init__(self) -> None:
        if self.bin_width is not None and self.bin_count is not None:
            raise FeatureError("give bin_width (fixed bin size) or bin_count (fixed bin number), not both")
        if self.bin_width is None and self.bin_count is None:
            object.__setattr__(self, "bin_width", 1.0)
        if self.bin_width is not None and not (math.isfinite(self.bin_width) and self.bin_width > 0):
            raise FeatureError(f"bin_width must be a positive number, not {self.bin_width!r}")
        count = self.bin_count
        if count is not None and (isinstance(count, bool) or int(count) != count or count < 1):
            raise FeatureError(f"bin_count must be a positive whole number, not {self.bin_count!r}")
        if self.resegment_range is not None:
            low, high = self.resegment_range
            if low is not None and high is not None and not low <= high:
                raise FeatureError(f"resegment_range {self.resegment_range} is empty: low exceeds high")
        if self.outlier_sigma is not None and not self.outlier_sigma > 0:
            raise FeatureError(f"outlier_sigma must be positive, not {self.outlier_sigma!r}")
        if self.ivh_bin_width is not None and self.ivh_bin_count is not None:
            raise FeatureError("give ivh_bin_width or ivh_bin_count for the IVH, not both")
        ivh_width, ivh_count = self.ivh_bin_width, self.ivh_bin_count
        if ivh_width is not None and not (math.isfinite(ivh_width) and ivh_width > 0):
            raise FeatureError(f"ivh_bin_width must be a positive number, not {ivh_width!r}")
        whole = ivh_count is None or (not isinstance(ivh_count, bool) and int(ivh_count) == ivh_count)
        if not whole or (ivh_count is not None and ivh_count < 2):
            raise FeatureError(f"ivh_bin_count must be a whole number of at least 2, not {ivh_count!r}")
        if self.interpolation not in INTERPOLATORS:
            raise FeatureError(f"interpolation {self.interpolation!r}: use one of {sorted(INTERPOLATORS)}")
        spacing = self.spacing
        if spacing is not None and (
            len(spacing) != 3 or any(v is not None and not (math.isfinite(v) and v > 0) for v in spacing)
        ):
            raise FeatureError(f"spacing must be three positive mm values (None keeps one), not {spacing!r}")

    def describe(self) -> str:
        """One line for reports: ``FBS 25, re-segmentation [-500, 400], outliers 3 SD``."""
        parts = [f"FBS {self.bin_width:g}" if self.bin_count is None else f"FBN {self.bin_count}"]
        if self.resegment_range is not None:
            low, high = ("" if v is None else f"{v:g}" for v in self.resegment_range)
            parts.append(f"re-segmentation [{low or '-inf'}, {high or 'inf'}]")
        if self.outlier_sigma is not None:
            parts.append(f"outliers {self.outlier_sigma:g} SD")
        if self.spacing is not None:
            grid = " x ".join("kept" if v is None else f"{v:g}" for v in self.spacing)
            how = f"{self.interpolation} to {grid} mm" + (", rounded" if self.round_intensities else "")
            parts.insert(0, f"interpolated ({how})")
        return ", ".join(parts)


def interpolate(
    image: sitk.Image, mask: sitk.Image, settings: IBSISettings
) -> tuple[sitk.Image, sitk.Image]:
    """Image and mask on the grid of ``settings.spacing`` aligned on the original grid's centre
    (unchanged when ``settings.spacing`` is None)."""
    if settings.spacing is None:
        return image, mask
    old_spacing = np.asarray(image.GetSpacing(), float)
    old_size = np.asarray(image.GetSize(), int)
    wanted = settings.spacing
    new_spacing = np.array([o if n is None else n for o, n in zip(old_spacing, wanted, strict=True)])
    new_size = np.ceil(old_size * old_spacing / new_spacing - 1e-9).astype(int)
    # First new voxel centre, along each axis from the first old one: the grids share a centre.
    shift = (old_spacing * (old_size - 1) - new_spacing * (new_size - 1)) / 2
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin()) + direction @ shift

    def resample(source: sitk.Image, interpolator: int) -> sitk.Image:
        resampler = sitk.ResampleImageFilter()
        resampler.SetOutputSpacing([float(v) for v in new_spacing])
        resampler.SetSize([int(v) for v in new_size])
        resampler.SetOutputOrigin([float(v) for v in origin])
        resampler.SetOutputDirection(image.GetDirection())
        resampler.SetInterpolator(interpolator)
        resampler.SetUseNearestNeighborExtrapolator(True)
        resampler.SetOutputPixelType(sitk.sitkFloat64)
        return resampler.Execute(sitk.Cast(source, sitk.sitkFloat64))

    new_image = resample(image, INTERPOLATORS[settings.interpolation])
    if settings.round_intensities:
        new_image = sitk.Round(new_image)
    new_mask = sitk.Cast(resample(mask > 0, sitk.sitkLinear) >= 0.5, sitk.sitkUInt8)
    return new_image, new_mask


def intensity_mask(values: np.ndarray, roi: np.ndarray, settings: IBSISettings) -> np.ndarray:
    """The ROI after re-segmentation (range, then outliers); a new boolean array.

    Raises
    ------
    FeatureError
        Re-segmentation leaves no voxel (the range misses the ROI's intensities).
    """
    keep = np.asarray(roi, bool).copy()
    if settings.resegment_range is not None:
        low, high = settings.resegment_range
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    if settings.outlier_sigma is not None and keep.any():
        kept = values[keep].astype(np.float64)
        mean, sd = kept.mean(), kept.std()
        keep &= np.abs(values - mean) <= settings.outlier_sigma * sd
    if not keep.any():
        raise FeatureError(
            f"re-segmentation ({settings.describe()}) leaves no voxel of the "
            f"{int(np.count_nonzero(roi))}-voxel ROI; check the range against the image's units"
        )
    return keep


def discretise(values: np.ndarray, mask: np.ndarray, settings: IBSISettings) -> np.ndarray:
    """Grey levels 1, 2, ... of the voxels in ``mask`` (0 elsewhere), by fixed bin size or
    fixed bin number as ``settings`` say."""
    levels = np.zeros(values.shape, np.int64)
    kept = values[mask].astype(np.float64)
    if settings.bin_count is not None:
        low, high = kept.min(), kept.max()
        if high == low:
            levels[mask] = 1
        else:
            scaled = np.floor(settings.bin_count * (kept - low) / (high - low)).astype(np.int64) + 1
            levels[mask] = np.minimum(scaled, settings.bin_count)
        return levels
    assert settings.bin_width is not None
    low_bound = settings.resegment_range[0] if settings.resegment_range is not None else None
    origin = low_bound if low_bound is not None else kept.min()
    levels[mask] = np.floor((kept - origin) / settings.bin_width).astype(np.int64) + 1
    return levels
