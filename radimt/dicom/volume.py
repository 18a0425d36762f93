"""Turn stacks into SimpleITK images: 3D volumes (MR, CT) and 2D planar images (MG, US)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radimt.dicom.geometry import order_slices
from radimt.dicom.header import SECONDARY_CAPTURE_PREFIX, FileHeader, Frame, UltrasoundRegion
from radimt.dicom.pixels import allocate, decode_file, read_frames_into, stored_dtype
from radimt.dicom.scan import SeriesInfo
from radimt.errors import DicomReadError

log = logging.getLogger(__name__)


def check_rescale(frames: Sequence[Frame], label: str) -> None:
    """RescaleSlope must be finite and non-zero, RescaleIntercept finite, on every frame."""
    for f in frames:
        if not (np.isfinite(f.slope) and f.slope != 0 and np.isfinite(f.intercept)):
            raise DicomReadError(
                f"{label}: {f.path}: RescaleSlope {f.slope} / RescaleIntercept {f.intercept} cannot "
                "map stored values to real ones (the slope must be finite and non-zero, the "
                "intercept finite); the header is corrupt, re-export the series"
            )


def integer_rescale(frames: Sequence[Frame], stored: np.dtype) -> bool:
    """Whether the frames' rescale keeps their stored values (of type ``stored``) integers:
    integer storage, one integer slope, integer intercepts (:func:`rescaled` keeps such values
    integers when they fit in int32)."""
    slopes = np.array([f.slope for f in frames], float)
    intercepts = np.array([f.intercept for f in frames], float)
    return bool(
        np.issubdtype(stored, np.integer)
        and np.all(slopes == slopes[0])
        and float(slopes[0]).is_integer()
        and np.all(intercepts == np.round(intercepts))
    )


def rescaled(stored: np.ndarray, frames: Sequence[Frame]) -> np.ndarray:
    """Apply RescaleSlope/Intercept per frame, keeping integers when the result is exact."""
    slopes = np.array([f.slope for f in frames], float)
    intercepts = np.array([f.intercept for f in frames], float)
    if np.all(slopes == 1) and np.all(intercepts == 0):
        return stored
    if integer_rescale(frames, stored.dtype):
        lo = float(stored.min()) * slopes[0] + intercepts.min()
        hi = float(stored.max()) * slopes[0] + intercepts.max()
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                out: np.ndarray = stored.astype(dtype)
                if slopes[0] != 1:
                    out *= dtype(slopes[0])
                out += intercepts.astype(dtype)[:, None, None]
                return out
    out = stored.astype(np.float32)  # type: ignore[assignment]
    out *= slopes.astype(np.float32)[:, None, None]
    out += intercepts.astype(np.float32)[:, None, None]
    return out


def buffer_dtype(frame: Frame) -> np.dtype:
    """The dtype a frame's stored values are read into (float32 grey for colour images)."""
    header = frame.header
    colour = header.samples_per_pixel == 3 or header.photometric == "PALETTE COLOR"
    return np.dtype(np.float32) if colour else stored_dtype(header)


def slice_buffer(frame: Frame, n: int, label: str) -> np.ndarray:
    """A new array for ``n`` slices of ``frame``'s size and stored type."""
    return allocate((n, frame.rows, frame.columns), buffer_dtype(frame), label, frame.path)


def read_volume(series: SeriesInfo) -> sitk.Image:
    """Assemble one stack into a 3D image in patient LPS coordinates, values after rescale.

    Slices are ordered along the slice normal and the slice spacing comes from their positions;
    see :mod:`radimt.dicom.geometry` for the checks and tolerances.

    Raises
    ------
    SeriesAssemblyError, DicomReadError
        With the series and file named, when the slices do not make one volume or a file's pixel
        data is missing or broken.
    """
    frames, geometry = order_slices(series.frames, series.label)
    check_rescale(frames, series.label)
    headers = {(f.rows, f.columns, f.header.bits_allocated) for f in frames}
    if len(headers) > 1:
        raise DicomReadError(f"{series.label}: images differ in matrix or bit depth: {sorted(headers)}")
    stored = read_frames_into(frames, slice_buffer(frames[0], len(frames), series.label), series.label)
    values = rescaled(stored, frames)
    del stored
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    tag_provenance(image, frames[0].header)
    return image


def tag_provenance(image: sitk.Image, header: FileHeader) -> None:
    """Record frame of reference, series and modality on the image (SimpleITK metadata)."""
    if header.frame_of_reference_uid:
        image.SetMetaData("0020|0052", header.frame_of_reference_uid)
    image.SetMetaData("0020|000e", header.series_uid)
    image.SetMetaData("0008|0060", header.modality)


# -- planar images ------------------------------------------------------------------------


@dataclass
class PlanarImage:
    """A 2D image (mammogram view, ultrasound frame) with what a reader needs to know.

    Attributes
    ----------
    image
        2D SimpleITK image, spacing in mm, higher values always brighter.
    series
        The stack it came from.
    laterality, view
        ``"L"``/``"R"`` and ``"CC"``/``"MLO"``/... for mammograms, when the header says.
    spacing_source
        Which attribute gave the pixel size (e.g. ``"PixelSpacing"``,
        ``"ImagerPixelSpacing/magnification"``, ``"UltrasoundRegion"``).
    presentation_intent
        ``"FOR PROCESSING"`` or ``"FOR PRESENTATION"`` for digital mammograms.
    frames
        For a cine loop: all frames as a 3D image (x, y, frame), else ``None``.
    frame_time_ms
        Time between cine frames, when given.
    region
        The ultrasound region whose deltas gave the spacing.
    spacing_note
        For ultrasound with both PixelSpacing and region deltas: whether they agree.

    Examples
    --------
    >>> import tempfile, radimt
    >>> from radimt.synth.studies import write_mammograms
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_mammograms(folder, "example")
    >>> cc = radimt.load_study(folder).mg[0]
    >>> cc.view, cc.laterality, cc.image.GetSpacing()
    ('CC', 'L', (0.25, 0.25))
    """

    image: sitk.Image
    series: SeriesInfo
    laterality: str | None = None
    view: str | None = None
    spacing_source: str = ""
    presentation_intent: str | None = None
    frames: sitk.Image | None = None
    frame_time_ms: float | None = None
    region: UltrasoundRegion | None = None
    spacing_note: str = ""


def _valid_pair(pair: tuple[float, float] | None) -> tuple[float, float] | None:
    """A (row, column) spacing, or ``None`` when absent or zero (``"0\\0"`` means unknown)."""
    if pair is None or min(pair) <= 0:
        return None
    return pair


def projection_spacing(header: FileHeader) -> tuple[tuple[float, float], str]:
    """Pixel spacing (row, column) of a projection radiograph and which attribute gave it.

    PixelSpacing (calibrated at the patient) wins; otherwise ImagerPixelSpacing (at the
    detector), divided by EstimatedRadiographicMagnificationFactor when present.
    """
    pixel = _valid_pair(header.pixel_spacing)
    if pixel is not None:
        return pixel, "PixelSpacing"
    imager = _valid_pair(header.imager_pixel_spacing)
    if imager is not None:
        if header.magnification and header.magnification > 0:
            factor = header.magnification
            return (imager[0] / factor, imager[1] / factor), "ImagerPixelSpacing/magnification"
        return imager, "ImagerPixelSpacing"
    raise DicomReadError(
        f"{header.path}: neither PixelSpacing nor ImagerPixelSpacing is set, so the pixel size "
        "is unknown; radimt will not measure in pixels. Export the image with its spacing"
    )


def ultrasound_spacing(
    header: FileHeader, point: tuple[float, float] | None = None
) -> tuple[tuple[float, float], str, UltrasoundRegion | None]:
    """Pixel spacing (row, column) of an ultrasound image and where it came from.

    Among the 2D tissue regions (RegionSpatialFormat 1) with physical deltas in cm, the one
    holding ``point`` (column, row in pixels; e.g. the seed) gives the spacing, else the
    largest. PixelSpacing is the fallback when no region is calibrated.
    """
    regions = [r for r in header.us_regions if r.delta_x_mm and r.delta_y_mm]
    tissue = [r for r in regions if r.spatial_format == 1] or regions
    if tissue:
        holding = [
            r for r in tissue if point is not None and r.x0 <= point[0] <= r.x1 and r.y0 <= point[1] <= r.y1
        ]
        region = max(holding or tissue, key=lambda r: r.area)
        return (region.delta_y_mm, region.delta_x_mm), "UltrasoundRegion", region  # type: ignore[return-value]
    pixel = _valid_pair(header.pixel_spacing)
    if pixel is not None:
        return pixel, "PixelSpacing", None
    raise DicomReadError(
        f"{header.path}: no SequenceOfUltrasoundRegions with physical deltas and no PixelSpacing, "
        "so the pixel size is unknown; export the ultrasound image with its calibration"
    )


def _invert_monochrome1(values: np.ndarray, header: FileHeader, frame: Frame) -> np.ndarray:
    """MONOCHROME1 stores dark as high: flip within the stored range so higher is brighter."""
    signed = header.pixel_representation == 1
    lo_stored = -(2 ** (header.bits_stored - 1)) if signed else 0
    hi_stored = 2 ** (header.bits_stored - 1) - 1 if signed else 2**header.bits_stored - 1
    lo = lo_stored * frame.slope + frame.intercept
    hi = hi_stored * frame.slope + frame.intercept
    flipped = (lo + hi) - values.astype(np.float64)
    if np.issubdtype(values.dtype, np.integer) and float(lo + hi).is_integer():
        info = np.iinfo(values.dtype)
        if info.min <= flipped.min() and flipped.max() <= info.max:
            return flipped.astype(values.dtype)
    return flipped.astype(np.float32)


#: The spacing source of an image read in pixels (the header gives no pixel size).
IN_PIXELS = "none: sizes in pixels (the header gives no pixel size)"
#: Metadata key set on an image whose spacing is 1 pixel, not 1 mm.
PIXEL_UNITS_KEY = "radimt_pixel_units"
#: Metadata key naming where a 2D image's pixel size came from (``spacing_source``).
SPACING_SOURCE_KEY = "radimt_spacing_source"


def spacing_source(image: sitk.Image) -> str:
    """Where a 2D image read by radimt took its pixel size from ('' for other images)."""
    return image.GetMetaData(SPACING_SOURCE_KEY) if image.HasMetaDataKey(SPACING_SOURCE_KEY) else ""


def in_pixels(image: sitk.Image) -> bool:
    """Whether ``image``'s spacing is in pixels (digitised film without a pixel size)."""
    return image.HasMetaDataKey(PIXEL_UNITS_KEY)


def read_planar(
    series: SeriesInfo, point: tuple[float, float] | None = None, spacing_mm: float | None = None
) -> PlanarImage:
    """Read a mammogram, projection radiograph or ultrasound image (all frames of one file).

    ``point`` (column, row in pixels), e.g. the seed, picks the ultrasound region whose
    calibration applies when an image holds several. A projection image without a pixel size
    takes ``spacing_mm`` (the digitiser's sampling, which the user knows), else, for digitised
    film (CBIS-DDSM), spacing 1 with ``spacing_source`` :data:`IN_PIXELS` (see
    :func:`in_pixels`); other images without one are refused.
    """
    header = series.first.header
    if header.problem:
        raise DicomReadError(f"{series.label}: {header.path}: {header.problem}; re-export this file")
    spacing_note = ""
    if header.modality == "US":
        spacing, source, region = ultrasound_spacing(header, point)
        pixel = _valid_pair(header.pixel_spacing)
        if pixel is not None and source == "UltrasoundRegion":
            agree = np.allclose(pixel, spacing, rtol=0.01)
            spacing_note = (
                f"PixelSpacing {pixel} {'agrees with' if agree else 'disagrees with'} the region's "
                f"deltas {tuple(round(x, 5) for x in spacing)} mm; the region's are used"
            )
            if not agree:
                log.warning("%s: %s", series.label, spacing_note)
    else:
        region = None
        try:
            spacing, source = projection_spacing(header)
        except DicomReadError:
            if spacing_mm is not None:
                spacing, source = (spacing_mm, spacing_mm), f"given ({spacing_mm:g} mm; the header has none)"
            elif header.sop_class_uid.startswith(SECONDARY_CAPTURE_PREFIX):
                spacing, source = (1.0, 1.0), IN_PIXELS
            else:
                raise
    frames = sorted(series.frames, key=lambda f: f.index)
    check_rescale(frames, series.label)
    if header.pixel_offset is not None:
        stored = read_frames_into(frames, slice_buffer(frames[0], len(frames), series.label), series.label)
    else:
        stored = decode_file(header.path, header, series.label)
    values = rescaled(stored, frames)
    if header.photometric == "MONOCHROME1":
        values = _invert_monochrome1(values, header, frames[0])
    sitk_spacing = (float(spacing[1]), float(spacing[0]))
    image = sitk.GetImageFromArray(values[0])
    image.SetSpacing(sitk_spacing)
    tag_provenance(image, header)
    image.SetMetaData(SPACING_SOURCE_KEY, source)
    if source == IN_PIXELS:
        image.SetMetaData(PIXEL_UNITS_KEY, "1")
    cine = None
    if values.shape[0] > 1:
        cine = sitk.GetImageFromArray(values)
        cine.SetSpacing(sitk_spacing + ((header.frame_time_ms or 1.0),))
    return PlanarImage(
        image=image,
        series=series,
        laterality=header.laterality,
        view=header.view,
        spacing_source=source,
        presentation_intent=header.presentation_intent,
        frames=cine,
        frame_time_ms=header.frame_time_ms,
        region=region,
        spacing_note=spacing_note,
    )
