"""Radiomic features: a pyradiomics wrapper that crops before filtering, per-modality presets.

pyradiomics validates, normalises and filters the whole image before it looks at the mask.
For a lesion of a few hundred voxels in a 512×512×160 volume that is seconds of work on voxels
that never reach a feature. :func:`extract_features` crops image and mask to the lesion's
bounding box plus a margin that keeps every filter exact, then hands the crop to pyradiomics.

Margin rules (per side, in mm, the largest that applies):

- always: pyradiomics' own ``padDistance`` (5 voxels) + 1 voxel;
- resampling enabled: radimt computes the very grid pyradiomics would resample the whole image
  onto (mask box + ``padDistance`` new voxels, aligned to the full image), resamples only that
  from a crop holding it plus 16 original voxels (the B-spline prefilter's influence decays
  like 0.27^d: below 1e-8 at 16 voxels), and gives pyradiomics the resampled grid;
- LoG on the original grid: ``10 σ`` + 2 voxels. SimpleITK's recursive Gaussian feels an
  image border like ``exp(-d/σ)``; at 10 σ the features agree with the uncropped computation
  to better than 1e-7 relative (measured: 8 σ gives ~1e-6);
- wavelet: 8 voxels. pyradiomics' wavelet transform wraps around the image border, so its
  values can depend on the field of view; radimt defines wavelet features on this padded crop,
  which makes them independent of the field of view. ``benchmarks/bench_features.py`` reports
  their deviation from the full-volume values (none on its 512×512×160 case).

Whole-image intensity normalisation (``normalize: true``) is computed on the full image with
the very statistics pyradiomics uses (SimpleITK's mean and sigma) and applied to the crop.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import yaml

from radimt.dicom.focus import whole_statistics
from radimt.errors import FeatureError, MaskError
from radimt.grids import focus_of, nonzero_box, nonzero_indices, same_grid
from radimt.ibsi_filters import FilterSettings, filter_response
from radimt.io.yamlfiles import safe_load

log = logging.getLogger(__name__)

PRESETS = ("mr", "adc", "ct", "mg", "us", "ibsi")
LOG_MARGIN_SIGMAS = 10.0
BSPLINE_MARGIN_VOXELS = 16
WAVELET_MARGIN_VOXELS = 8
MIN_VOXELS = 2


class FeatureRow(dict):
    """Feature name -> value, with ``provenance`` (versions, settings, mask size, image hash)
    and, for a lesion's row, the ``kinetic_curve`` behind its ``kinetic_*`` columns and the
    ``masks`` it was measured with, per role."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.provenance: dict[str, Any] = {}
        self.kinetic_curve: Any = None  # a radimt.KineticCurve (features does not import kinetics)
        self.masks: dict[Any, sitk.Image] = {}  # role -> mask on that role's image


def params_dir() -> Path:
    """Where the preset parameter files live (``pipelines/params`` of the checkout or install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "pipelines" / "params", Path(sys.prefix) / "share" / "radimt" / "params"):
        if candidate.is_dir():
            return candidate
    raise FeatureError("radimt's parameter files (pipelines/params) are missing from this installation")


@lru_cache(maxsize=32)
def _read_yaml(path: str) -> str:
    return Path(path).read_text()


@lru_cache(maxsize=32)
def _parsed_yaml(text: str) -> Any:
    return safe_load(text)  # every lesion asks for the same few presets: parsed once, copied


def load_params(preset: str | os.PathLike[str]) -> dict[str, Any]:
    """A pyradiomics parameter set: a preset name (``mr``, ``adc``, ``ct``, ``mg``, ``us``,
    ``ibsi``) or the path of a user's own pyradiomics YAML, used unchanged."""
    name = os.fspath(preset)
    path = Path(name) if name.endswith((".yaml", ".yml")) else params_dir() / f"{name}.yaml"
    if not path.is_file():
        raise FeatureError(
            f"unknown feature preset {name!r}: use one of {PRESETS} or a pyradiomics YAML file"
        )
    try:
        params = copy.deepcopy(_parsed_yaml(_read_yaml(str(path)))) or {}
    except yaml.YAMLError as exc:
        raise FeatureError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(params, dict):
        raise FeatureError(
            f"{path}: a pyradiomics parameter file is a mapping, not a {type(params).__name__}"
        )
    unknown = set(params) - {"imageType", "featureClass", "setting", "voxelSetting"}
    if unknown:
        raise FeatureError(f"{path}: unknown top-level keys {sorted(unknown)} (pyradiomics parameter file)")
    return {
        "imageType": dict(params.get("imageType") or {"Original": {}}),
        "featureClass": dict(params.get("featureClass") or {}),
        "setting": dict(params.get("setting") or {}),
    }


#: radimt's bound beyond pyradiomics' schema: texture matrices grow with the square of the bin
#: count (a GLCM of 1,024 levels is 8 MB per direction; 10⁹ bins would never finish).
MAX_BIN_COUNT = 1024


def validate_params(params: Mapping[str, Any], where: str) -> None:
    """Check a pyradiomics parameter set before any work: image type names (with the closest
    known one), bin width and count, then pyradiomics' own schema.

    Raises
    ------
    FeatureError
        Naming ``where`` (the file, or the pipeline and role) and the problem.

    Examples
    --------
    >>> validate_params({"imageType": {"Orignal": {}}, "setting": {"binWidth": 25}}, "params.yaml")
    Traceback (most recent call last):
    ...
    radimt.errors.FeatureError: params.yaml: unknown image type 'Orignal' (did you mean Original?); ...
    """
    import difflib

    import pykwalify.core
    import pykwalify.errors
    from radiomics import getImageTypes, getParameterValidationFiles

    known = getImageTypes()
    for name in params.get("imageType") or {}:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            types = ", ".join(known)
            raise FeatureError(f"{where}: unknown image type {name!r}{hint}; image types are {types}")
    setting = params.get("setting") or {}
    width, count = setting.get("binWidth"), setting.get("binCount")
    if width is not None and not (_is_number(width) and width > 0):
        raise FeatureError(f"{where}: binWidth {width!r} must be a number above 0 (in the image's units)")
    if count is not None and not (_is_number(count, whole=True) and 1 <= count <= MAX_BIN_COUNT):
        raise FeatureError(f"{where}: binCount {count!r} must be a whole number from 1 to {MAX_BIN_COUNT}")
    schema, functions = getParameterValidationFiles()
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)  # the error is ours to say, once
    checker = pykwalify.core.Core(
        source_data=_plain(dict(params)), schema_files=[schema], extensions=[functions]
    )
    try:
        checker.validate(raise_exception=True)
    except pykwalify.errors.SchemaError as exc:
        problems = [str(e) for e in checker.validation_errors] or [str(exc.msg)]
        listed = "; ".join(problems[:3])
        raise FeatureError(f"{where}: not a valid pyradiomics parameter set ({listed})") from None
    except (ValueError, TypeError) as exc:  # pyradiomics' own checks (feature classes, wavelets...)
        first = str(exc).splitlines()[0]
        raise FeatureError(f"{where}: not a valid pyradiomics parameter set ({first})") from None


def _ibsi_log_sigmas(params: dict[str, Any], what: str) -> list[float]:
    """The sigmas (mm) of an IBSI-2 LoG under ``preset="ibsi"``, taken out of the image types
    pyradiomics runs (its LoG scales the response by sigma²; IBSI 2's does not)."""
    sigmas = (params["imageType"].pop("LoG") or {}).get("sigma", params["setting"].get("sigma"))
    if not sigmas or not all(_is_number(s) and s > 0 for s in sigmas):
        raise FeatureError(f"{what}: LoG needs its sigma values in mm (imageType LoG: {{sigma: [1.0, 3.0]}})")
    return [float(s) for s in sigmas]


def _is_number(value: object, whole: bool = False) -> bool:
    kinds = (int,) if whole else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(float(value))  # type: ignore[arg-type]


def _refuse_what_ibsi_defines_otherwise(params: dict[str, Any]) -> None:
    """Under ``preset="ibsi"``, refuse the pyradiomics settings whose results IBSI defines
    differently, each with where IBSI's definition is computed instead.

    pyradiomics bins from w⌊min / w⌋ (IBSI: from the ROI minimum or the re-segmentation bound),
    resamples onto its own grid (IBSI: centre-aligned), and scales the LoG response by σ²
    (IBSI-2: not). Bin width 1 on whole-number intensities, fixed bin number, wavelets and the
    aggregation settings agree with IBSI and are kept.
    """
    setting, problems = params["setting"], []
    if setting.get("binWidth", 25) != 1 and setting.get("binCount") is None:
        problems.append(
            f"binWidth {setting.get('binWidth', 25)} (pyradiomics bins from w*floor(min/w); give "
            "IBSISettings(bin_width=...))"
        )
    if setting.get("resegmentRange") is not None:
        problems.append("resegmentRange (give IBSISettings(resegment_range=..., outlier_sigma=...))")
    if setting.get("resampledPixelSpacing"):
        problems.append("resampledPixelSpacing (its grid is not IBSI's; give IBSISettings(spacing=...))")
    if problems:
        raise FeatureError(
            "preset 'ibsi' follows IBSI, where pyradiomics differs on: " + "; ".join(problems)
            + ". Compute IBSI features with radimt.ibsi.ibsi_features(image, mask, IBSISettings(...)), "
            "or pyradiomics' own with a pyradiomics-compatible preset (mr, adc, ct, mg, us) or YAML"
        )


def _check_inputs(image: sitk.Image, mask: sitk.Image, what: str) -> np.ndarray:
    """Check the mask fits the image and holds enough voxels; return their (z, y, x) indices."""
    if not same_grid(image, mask):
        raise MaskError(
            f"{what}: the mask's geometry differs from the image's (size {mask.GetSize()} vs "
            f"{image.GetSize()}, origin {tuple(round(o, 2) for o in mask.GetOrigin())} vs "
            f"{tuple(round(o, 2) for o in image.GetOrigin())}); carry it over with radimt.resample_mask"
        )
    labels = sitk.GetArrayViewFromImage(mask)
    box = nonzero_box(labels)
    nonzero = np.nonzero(labels[box]) if box else (np.empty(0, int),) * labels.ndim
    nonzero = tuple(
        n + (b.start if box else 0) for n, b in zip(nonzero, box or [slice(0)] * labels.ndim, strict=True)
    )
    count = int(nonzero[0].size)
    if count == 0:
        raise MaskError(f"{what}: the mask is empty (or lies off the image); nothing to measure")
    if count < MIN_VOXELS:
        raise MaskError(f"{what}: the mask holds {count} voxel; radiomic features need at least {MIN_VOXELS}")
    return np.stack(nonzero, axis=1)


def _margin_mm(params: Mapping[str, Any], spacing: Sequence[float]) -> float:
    setting = params["setting"]
    voxel = max(spacing)
    pad = int(setting.get("padDistance", 5))
    margin = (pad + 1) * voxel
    image_types = params["imageType"]
    if "LoG" in image_types:
        sigmas = (image_types["LoG"] or {}).get("sigma", setting.get("sigma", [1.0]))
        margin = max(margin, LOG_MARGIN_SIGMAS * max(float(s) for s in sigmas) + 2 * voxel)
    if "Wavelet" in image_types:
        margin = max(margin, WAVELET_MARGIN_VOXELS * voxel)
    return margin


def _use_image_types(
    params: dict[str, Any], image_types: Sequence[str] | Mapping[str, Any] | None
) -> None:
    """Replace a parameter set's image types: a mapping as given, names with the preset's own
    settings for them; ``None`` keeps the preset's."""
    if image_types is None:
        return
    if isinstance(image_types, Mapping):
        params["imageType"] = {k: dict(v or {}) for k, v in image_types.items()}
    else:
        kept = params["imageType"]
        params["imageType"] = {name: dict(kept.get(name) or {}) for name in image_types}


def context_mm(
    preset: str | os.PathLike[str],
    image_types: Sequence[str] | Mapping[str, Any] | None = None,
    voxel_mm: float = 1.0,
    largest_side_mm: float | None = None,
) -> float:
    """How far beyond a mask's bounding box :func:`extract_features` reads the image (mm) along
    an axis on which the images' voxel side is at most ``voxel_mm``; ``largest_side_mm``: their
    largest side along any axis (default ``voxel_mm``).

    Resampled (the presets' way): the resampling grid's padding and the interpolation margin;
    the filters then run on that grid alone, so their reach adds nothing. Not resampled: the
    filters' reach, the crop they run on (set by the largest side)."""
    params = load_params(preset)
    _use_image_types(params, image_types)
    setting = params["setting"]
    target = [float(v) for v in setting.get("resampledPixelSpacing") or []]
    if not target or setting.get("interpolator", "sitkBSpline") is None:
        return _margin_mm(params, [max(voxel_mm, largest_side_mm or 0.0)])
    grid = max([voxel_mm, *target])
    return (int(setting.get("padDistance", 5)) + 1) * grid + BSPLINE_MARGIN_VOXELS * voxel_mm


def crop_to_lesion(
    image: sitk.Image, mask: sitk.Image, margin_mm: float, voxels: np.ndarray | None = None
) -> tuple[sitk.Image, sitk.Image]:
    """Image and mask cut to the mask's bounding box plus ``margin_mm`` (clipped to the image)."""
    idx = nonzero_indices(sitk.GetArrayViewFromImage(mask)) if voxels is None else voxels
    lo, hi = idx.min(axis=0)[::-1], idx.max(axis=0)[::-1]
    pad = np.array([math.ceil(margin_mm / s) for s in image.GetSpacing()])
    lo = np.maximum(lo - pad, 0)
    hi = np.minimum(hi + pad + 1, image.GetSize())
    size, start = (hi - lo).tolist(), lo.tolist()
    return sitk.RegionOfInterest(image, size, start), sitk.RegionOfInterest(mask, size, start)


def pyradiomics_grid(
    mask: sitk.Image,
    voxels: np.ndarray,
    setting: Mapping[str, Any],
    focus: tuple[list[int], list[int]] | None = None,
) -> sitk.Image:
    """The (empty) grid pyradiomics' ``resampleImage`` would resample the whole image onto.

    Same rules as pyradiomics: the mask's bounding box plus ``padDistance`` voxels of the new
    spacing, aligned to the full image's index space, clipped to the image. ``focus`` (the
    first index of a cut image in its whole volume, and that volume's size) makes the grid the
    one the whole volume would give.
    """
    dim = mask.GetDimension()
    spacing = np.array(mask.GetSpacing())
    shift = np.asarray(focus[0] if focus else [0] * dim)
    size = np.array(focus[1] if focus else mask.GetSize())
    idx = voxels[:, ::-1] + shift
    lo, extent = idx.min(axis=0), idx.max(axis=0) - idx.min(axis=0) + 1
    target = np.array([float(s) for s in setting["resampledPixelSpacing"]], float)
    if target.size != dim:
        raise FeatureError(
            f"resampledPixelSpacing {target.tolist()} has {target.size} values; the image is {dim}D"
        )
    target = np.where(target == 0, spacing, target)
    target = np.where(extent != 1, target, spacing)
    pad = int(setting.get("padDistance", 5))
    ratio = spacing / target
    lower = np.floor((lo - 0.5) * ratio - pad)
    upper = np.ceil((lo + extent - 0.5) * ratio + pad)
    lower = np.where(lower < 0, 0, lower)
    upper = np.minimum(upper, np.ceil(size * ratio) - 1)
    new_size = np.array(upper - lower + 1, dtype=int)
    origin_index = 0.5 * (target - spacing) / spacing + lower / ratio - shift
    grid = sitk.Image([int(n) for n in new_size], sitk.sitkUInt8)
    grid.SetSpacing(target.tolist())
    grid.SetDirection(mask.GetDirection())
    grid.SetOrigin(mask.TransformContinuousIndexToPhysicalPoint(origin_index.tolist()))
    return grid


def crop_around(image: sitk.Image, mask: sitk.Image, grid: sitk.Image, margin_voxels: int):
    """Image and mask cut to the region ``grid`` covers, plus ``margin_voxels`` original voxels."""
    dim = grid.GetDimension()
    corners = (
        np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in grid.GetSize()], indexing="ij")).reshape(dim, -1).T
    )
    points = [grid.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners]
    index = np.array([image.TransformPhysicalPointToContinuousIndex(p) for p in points])
    lo = np.maximum(np.floor(index.min(axis=0)).astype(int) - margin_voxels, 0)
    hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + margin_voxels + 1, image.GetSize())
    size, start = (hi - lo).tolist(), lo.tolist()
    return sitk.RegionOfInterest(image, size, start), sitk.RegionOfInterest(mask, size, start)


def _resample_onto(image: sitk.Image, mask: sitk.Image, grid: sitk.Image, setting: Mapping[str, Any]):
    interpolator = setting.get("interpolator", "sitkBSpline")
    if isinstance(interpolator, str):
        interpolator = getattr(sitk, interpolator, sitk.sitkBSpline)
    out_image = sitk.Resample(image, grid, sitk.Transform(), interpolator, 0.0, image.GetPixelID())
    out_mask = sitk.Resample(mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID())
    return out_image, out_mask


def _normalise_like_pyradiomics(
    full: sitk.Image, crop: sitk.Image, setting: Mapping[str, Any]
) -> tuple[sitk.Image, dict[str, Any]]:
    """pyradiomics' normalisation (z-score over the whole image, outliers clipped, scaled) applied
    to the crop, and what was done (for the provenance)."""
    whole = whole_statistics(full)  # a focused image: the statistics of the volume it was cut from
    if whole is None:
        stats = sitk.StatisticsImageFilter()
        stats.Execute(full)
        mean, sigma = stats.GetMean(), stats.GetSigma()
    else:
        mean, sigma = whole
    values = (sitk.GetArrayFromImage(crop).astype(np.float64) - mean) / (sigma if sigma > 0 else 1.0)
    outliers = setting.get("removeOutliers")
    if outliers is not None:
        values = np.clip(values, -float(outliers), float(outliers))
    values *= float(setting.get("normalizeScale", 1))
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(crop)
    done = {
        "by": "radimt, as pyradiomics' normalize would (z-score over the whole image)",
        "mean": float(mean),
        "sd": float(sigma),
        "scale": float(setting.get("normalizeScale", 1)),
        "remove_outliers": outliers,
    }
    return out, done


def _extractor(params: Mapping[str, Any]):
    """A pyradiomics extractor for ``params``, built once per parameter set (pyradiomics spends
    ~40 ms validating parameters)."""
    wanted = {key: params[key] for key in ("imageType", "featureClass", "setting")}
    with _EXTRACTOR_LOCK:  # pyradiomics validates parameters with a YAML parser threads cannot share
        return _cached_extractor(json.dumps(_plain(wanted), sort_keys=True))


_EXTRACTOR_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _cached_extractor(params_json: str):
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)  # its INFO chatter, whatever the root level
    return featureextractor.RadiomicsFeatureExtractor(json.loads(params_json))


def extract_features(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    preset: str | os.PathLike[str] = "mr",
    image_types: Mapping[str, Mapping] | Sequence[str] | None = None,
    feature_classes: Mapping[str, Sequence[str] | None] | Sequence[str] | None = None,
    crop: bool = True,
    what: str = "lesion",
    **settings: Any,
) -> FeatureRow:
    """Radiomic features of a lesion with pyradiomics, cropped first so filters stay exact.

    Parameters
    ----------
    image, mask
        The image and a mask on its grid (non-zero = lesion).
    preset
        ``mr``, ``adc``, ``ct``, ``mg``, ``us``, or a pyradiomics YAML path: pyradiomics'
        definitions. ``ibsi``: the IBSI digital phantom's configuration, where pyradiomics agrees
        with IBSI; settings for which it does not are refused (see
        :func:`radimt.ibsi.ibsi_features` for IBSI's definitions under any settings).
    image_types
        Replace the preset's image types, e.g. ``["Original", "LoG", "Wavelet"]`` or
        ``{"LoG": {"sigma": [1.0]}}``.
    feature_classes
        Replace the preset's feature classes, e.g. ``["firstorder", "glcm"]``.
    crop
        Crop before filtering (default). ``False`` runs pyradiomics on the whole image.
    what
        How to name the lesion and series in error messages.
    **settings
        pyradiomics settings overriding the preset's (``binWidth=...``, ``force2D=...``).

    Returns
    -------
    FeatureRow
        ``{"original_firstorder_Mean": ..., "log-sigma-1-0-mm-3D_glcm_Contrast": ...}`` as
        floats, with pyradiomics' diagnostics and radimt's own in ``.provenance``.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> early = radimt.subtraction(study.dce)
    >>> mask = radimt.segment_from_seed(early, truth["seed_lps"])
    >>> features = radimt.extract_features(early, mask, preset="mr", image_types=["Original"])
    >>> round(features["original_shape_Sphericity"], 2), "original_glcm_Contrast" in features
    (0.84, True)
    """
    params = load_params(preset)
    params["setting"].update(settings)
    params["setting"]["label"] = 1
    asked = {k: _plain(v) for k, v in params["setting"].items()}  # before radimt takes some over
    _use_image_types(params, image_types)
    if feature_classes is not None:
        if isinstance(feature_classes, Mapping):
            params["featureClass"] = {k: (list(v) if v else None) for k, v in feature_classes.items()}
        else:
            params["featureClass"] = {name: params["featureClass"].get(name) for name in feature_classes}
    if os.fspath(preset) == "ibsi":
        _refuse_what_ibsi_defines_otherwise(params)
    voxels = _check_inputs(image, mask, what)
    work_image, work_mask = image, mask
    setting = params["setting"]
    resampled = (
        setting.get("resampledPixelSpacing") and setting.get("interpolator", "sitkBSpline") is not None
    )
    margin = _margin_mm(
        params, setting.get("resampledPixelSpacing") if resampled and crop else image.GetSpacing()
    )
    if crop:
        if resampled:
            grid = pyradiomics_grid(mask, voxels, setting, focus_of(image))
            work_image, work_mask = crop_around(image, mask, grid, BSPLINE_MARGIN_VOXELS)
        else:
            work_image, work_mask = crop_to_lesion(image, mask, margin, voxels)
    work_mask = sitk.Cast(work_mask > 0, sitk.sitkUInt8)  # any non-zero label is the lesion
    preprocessing: dict[str, Any] = {}  # what radimt did itself, in pyradiomics' stead
    if setting.get("normalize"):
        work_image, preprocessing["normalised"] = _normalise_like_pyradiomics(image, work_image, setting)
        setting["normalize"] = False
    if crop and resampled:
        work_image, work_mask = _resample_onto(work_image, work_mask, grid, setting)
        preprocessing["resampled"] = {
            "spacing_mm": [float(v) for v in setting.pop("resampledPixelSpacing")],
            "interpolator": str(setting.get("interpolator", "sitkBSpline")),
            "grid": "pyradiomics' own (the mask's bounding box at the new spacing, origin kept)",
        }
    ibsi_log = os.fspath(preset) == "ibsi" and "LoG" in params["imageType"]
    sigmas = _ibsi_log_sigmas(params, what) if ibsi_log else []
    try:
        raw = dict(_extractor(params).execute(work_image, work_mask, label=1))
        for sigma in sigmas:  # IBSI-2's LoG (no sigma² scaling), then pyradiomics on its response
            log_filter = FilterSettings("log", boundary="mirror", sigma_mm=sigma)
            response = filter_response(sitk.Cast(work_image, sitk.sitkFloat64), log_filter)
            original = {**params, "imageType": {"Original": {}}}
            for key, value in _extractor(original).execute(response, work_mask, label=1).items():
                if key.startswith("original_"):
                    raw[f"log-ibsi-sigma-{sigma:g}-mm-3D_{key[len('original_') :]}"] = value
    except (ValueError, RuntimeError, IndexError) as exc:
        raise FeatureError(f"{what}: pyradiomics could not compute features ({exc})") from exc
    row = FeatureRow()
    diagnostics: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("diagnostics_"):
            diagnostics[key[len("diagnostics_") :]] = _plain(value)
        else:
            row[key] = float(value)
    levels = grey_levels(work_image, work_mask, setting)
    row.provenance = {
        "preset": os.fspath(preset),
        "settings": asked,
        "settings_given_to_pyradiomics": {k: _plain(v) for k, v in params["setting"].items()},
        "radimt_preprocessing": preprocessing,
        "grey_levels": levels,
        "image_types": params["imageType"],
        "crop_margin_mm": margin if crop else None,
        "crop_size": list(work_image.GetSize()),
        "mask_voxels": int(len(voxels)),
        "image_sha256": hashlib.sha256(sitk.GetArrayViewFromImage(work_image).tobytes()).hexdigest(),
        "pyradiomics": diagnostics,
    }
    if levels < MIN_GREY_LEVELS and _has_texture(params):
        row.provenance["warnings"] = [few_grey_levels(what, levels, setting, work_image, work_mask)]
    return row


#: Fewer grey levels than this in a ROI after discretisation, and its texture features (GLCM,
#: GLRLM, GLSZM, GLDM, NGTDM) hardly vary between lesions: their matrices have at most 8 x 8
#: cells, and with one level every texture feature is a constant (0, 1 or -3e-16). IBSI and
#: pyradiomics' documentation advise a discretisation of some 16 to 128 levels (pyradiomics:
#: a bin width that gives 30-130 bins; Leijenaar et al., Sci Rep 2015).
MIN_GREY_LEVELS = 8
_TEXTURE = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")


def grey_levels(image: sitk.Image, mask: sitk.Image, setting: Mapping[str, Any]) -> int:
    """Grey levels the ROI holds after pyradiomics' discretisation (``binWidth`` or ``binCount``
    as pyradiomics bins them), on the image pyradiomics is given.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> adc = sitk.GetImageFromArray(np.linspace(0.5, 2.5, 1000).reshape(10, 10, 10))  # 10⁻³ mm²/s
    >>> mask = sitk.GetImageFromArray(np.ones((10, 10, 10), np.uint8))
    >>> grey_levels(adc, mask, {"binWidth": 25}), grey_levels(adc, mask, {"binWidth": 0.05})
    (1, 41)
    """
    from radiomics import imageoperations

    values = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0].astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0
    low, high = [*(setting.get("resegmentRange") or []), None, None][:2]
    if low is not None and setting.get("resegmentMode", "absolute") == "absolute":
        values = values[(values >= low) & (values <= (high if high is not None else np.inf))]
    if values.size == 0:
        return 0
    width, count = setting.get("binWidth", 25), setting.get("binCount")
    edges = imageoperations.getBinEdges(values, binWidth=width, binCount=count)
    return int(np.unique(np.digitize(values, edges)).size)


def _has_texture(params: Mapping[str, Any]) -> bool:
    classes = params.get("featureClass") or {}
    return not classes or any(name in classes for name in _TEXTURE)


def few_grey_levels(
    what: str, levels: int, setting: Mapping[str, Any], image: sitk.Image, mask: sitk.Image
) -> dict[str, Any]:
    """The warning for a ROI with fewer than :data:`MIN_GREY_LEVELS` grey levels: what, how many,
    the intensity range and the discretisation that gave them, and what to do."""
    values = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0]
    low, high = (float(values.min()), float(values.max())) if values.size else (float("nan"),) * 2
    if setting.get("binCount"):
        binning = f"bin count {setting['binCount']}"
    else:
        binning = f"bin width {setting.get('binWidth', 25):g}"
    message = (
        f"{what}: {levels} grey level(s) in the ROI ({binning} over intensities {low:.4g} to {high:.4g}); "
        f"texture features need at least {MIN_GREY_LEVELS} to vary between lesions: choose a bin width "
        f"of about (range / 32) in this image's units, or a bin count"
    )
    return {
        "kind": "few grey levels",
        "grey_levels": levels,
        "binning": binning,
        "intensity_range": [low, high],
        "message": message,
    }


def pyradiomics_case(
    image_path: str,
    mask_path: str,
    params: str | os.PathLike[str] | Mapping[str, Any],
    *,
    label: int | None = None,
    label_channel: int | None = None,
    what: str = "case",
) -> tuple[dict[str, float], dict[str, Any]]:
    """One row of a pyradiomics batch, computed by pyradiomics exactly as its own batch does.

    The image and mask files are read by pyradiomics itself and nothing is cropped, so values
    and diagnostics equal pyradiomics' batch output. ``params`` is a parameter file (used
    unchanged, so even the order of its settings in the diagnostics is pyradiomics') or a
    parameter mapping. ``label`` is the mask value to measure (``None``: the parameters'
    ``label`` setting, else 1), ``label_channel`` the component of a vector mask.

    Returns
    -------
    features, diagnostics
        ``{"original_firstorder_Mean": ...}`` as floats, and the ``diagnostics_*`` entries
        (without the prefix) as pyradiomics gives them.
    """
    extractor = (
        _file_extractor(str(Path(params).resolve()))
        if isinstance(params, (str, os.PathLike))
        else _extractor(params)
    )
    try:
        raw = extractor.execute(image_path, mask_path, label, label_channel)
    except (ValueError, RuntimeError, IndexError) as exc:
        raise FeatureError(f"{what}: pyradiomics could not compute features ({exc})") from exc
    features, diagnostics = {}, {}
    for key, value in raw.items():
        if key.startswith("diagnostics_"):
            diagnostics[key[len("diagnostics_") :]] = value
        else:
            features[key] = float(value)
    return features, diagnostics


@lru_cache(maxsize=8)
def _file_extractor(path: str):
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    return featureextractor.RadiomicsFeatureExtractor(path)


def _plain(value: Any) -> Any:
    """JSON-friendly version of a pyradiomics diagnostic or setting."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
