"""Read one DICOM file's header (never its pixel data) into :class:`Frame` records.

A frame is one 2D image: a classic single-frame file gives one, an enhanced multi-frame MR/CT or
an ultrasound cine loop gives one per frame. Everything the scan, the series splitting and the
volume assembly need is read here, once, so later steps never reopen a file's header.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import struct
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radimt.dicom import values as v
from radimt.errors import NotDicomError

log = logging.getLogger(__name__)

PIXEL_DATA_TAG = 0x7FE00010
FLOAT_PIXEL_TAGS = {0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
NO_PIXEL_DATA = "no pixel data"
FLOAT_PIXEL_DATA = "float pixel data"
#: Smallest number of bytes an encapsulated frame takes (its item tag and length).
MIN_ENCAPSULATED_FRAME_BYTES = 8
NATIVE_LITTLE_ENDIAN = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}

# Private diffusion b-value elements, valid only under their private creator.
SIEMENS_CREATOR = "SIEMENS MR HEADER"
GE_CREATOR = "GEMS_PARM_01"
GE_ACQ_CREATOR = "GEMS_ACQU_01"  # (0019,10BB/BC/BD): diffusion gradient direction
PHILIPS_CREATOR = "Philips Imaging DD 001"
UIH_CREATOR = "Image Private Header"  # United Imaging: (0065,1009) b-value, (0065,1051) mosaic slices
GE_BVALUE_OFFSET = 1_000_000_000  # some GE versions add 1e9 to the b-value


@dataclass(frozen=True)
class UltrasoundRegion:
    """One entry of SequenceOfUltrasoundRegions, with its deltas converted to mm."""

    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int
    delta_x_mm: float | None
    delta_y_mm: float | None

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0 + 1) * max(0, self.y1 - self.y0 + 1)


@dataclass(frozen=True)
class FileHeader:
    """What a file says about all of its frames."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    series_number: int | None
    series_description: str
    modality: str
    frame_of_reference_uid: str | None
    image_type: tuple[str, ...]
    manufacturer: str
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    n_frames: int
    pixel_offset: int | None  # start of native pixel bytes; None -> decode with pydicom
    problem: str | None  # e.g. truncated pixel data; assembly refuses such a file
    repetition_time: float | None = None
    contrast_agent: str | None = None
    laterality: str | None = None
    view: str | None = None
    presentation_intent: str | None = None
    body_part: str | None = None
    pixel_spacing: tuple[float, float] | None = None
    imager_pixel_spacing: tuple[float, float] | None = None
    magnification: float | None = None
    us_regions: tuple[UltrasoundRegion, ...] = ()
    frame_time_ms: float | None = None
    units: str | None = None
    mosaic: tuple[int, int, int] | None = None  # mosaic: (tiles per row, tile rows, tile columns)
    scanning_sequence: tuple[str, ...] = ()
    sequence_name: str = ""  # SequenceName, else PulseSequenceName
    acquisition_contrast: str = ""  # enhanced MR AcquisitionContrast (T1, T2, DIFFUSION, ...)
    has_diffusion_macro: bool = False  # an MR Diffusion Sequence anywhere in the header
    slice_thickness: float | None = None
    contrast_start_time: float | None = None  # ContrastBolusStartTime on the common clock (s)
    acquisition_duration: float | None = None  # AcquisitionDuration (s)
    gantry_tilt: float | None = None  # GantryDetectorTilt (degrees)
    temporal_positions: int | None = None  # NumberOfTemporalPositions
    patient_key: str = ""  # a digest of PatientID (else PatientName): tells patients apart, never shown
    conversion_type: str = ""  # ConversionType of a Secondary Capture (WSD: digitised film)
    laterality_source: str = ""  # the attribute laterality was read from
    view_source: str = ""  # the attribute view was read from
    archive_view_in_id: bool = False  # PatientID ends with _LEFT_CC (CBIS-DDSM): one view, one "patient"


@dataclass(frozen=True)
class Frame:
    """One 2D image: a single-frame file, or one frame of a multi-frame file."""

    header: FileHeader = field(repr=False)
    index: int  # frame number inside the file, 0-based
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None  # row cosines then column cosines (6 values)
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns) in mm
    slope: float
    intercept: float
    temporal_position: int | None
    trigger_time_ms: float | None
    acquisition_time: float | None  # seconds on a common clock
    content_time: float | None
    b_value: float | None
    gradient: tuple[float, float, float] | None
    echo_time: float | None
    stack_id: str | None = None  # enhanced multi-frame StackID
    frame_type: tuple[str, ...] | None = None  # enhanced multi-frame FrameType, when it has one

    @property
    def path(self) -> str:
        return self.header.path

    @property
    def rows(self) -> int:
        """Rows of this 2D image (a tile's, for a Siemens mosaic)."""
        return self.header.mosaic[1] if self.header.mosaic else self.header.rows

    @property
    def columns(self) -> int:
        """Columns of this 2D image (a tile's, for a Siemens mosaic)."""
        return self.header.mosaic[2] if self.header.mosaic else self.header.columns


def _functional(ds: v.HeaderView, per_frame: Dataset | None, keyword: str) -> Dataset | None:
    """The first item of a functional group macro, per-frame first, then shared."""
    for holder in (per_frame, _shared(ds)):
        if holder is not None and keyword in holder:
            seq = holder[keyword].value
            if seq:
                return seq[0]
    return None


def _is_uih(ds: v.HeaderView) -> bool:
    """United Imaging's files: their private block "Image Private Header" means what UIH says."""
    return "UIH" in str(ds.get("Manufacturer", "") or "").upper()


def _has_diffusion_macro(ds: v.HeaderView) -> bool:
    """Whether an MR Diffusion Sequence is present (top level, shared or first per-frame item)."""
    if "MRDiffusionSequence" in ds:
        return True
    shared = _shared(ds)
    if shared is not None and "MRDiffusionSequence" in shared:
        return True
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    return bool(per_frame) and "MRDiffusionSequence" in per_frame[0]


def _shared(ds: v.HeaderView) -> Dataset | None:
    seq = ds.get("SharedFunctionalGroupsSequence")
    return seq[0] if seq else None


def _b_value(ds: v.HeaderView, diffusion: Dataset | None) -> float | None:
    """The diffusion b-value in s/mm², standard tag first, then the vendors' private tags."""
    if diffusion is not None and "DiffusionBValue" in diffusion:
        return v.to_float(diffusion.DiffusionBValue)
    if "DiffusionBValue" in ds:
        return v.to_float(ds.DiffusionBValue)
    siemens = v.to_float(ds.private(0x0019, SIEMENS_CREATOR, 0x0C))
    if siemens is not None:
        return siemens
    ge = v.to_float(ds.private(0x0043, GE_CREATOR, 0x39))
    if ge is not None:
        return ge - GE_BVALUE_OFFSET if ge >= GE_BVALUE_OFFSET else ge
    philips = v.binary_float32(ds.private(0x2001, PHILIPS_CREATOR, 0x03))
    if philips is not None:
        return philips
    if _is_uih(ds):
        return v.to_float(ds.private(0x0065, UIH_CREATOR, 0x09))
    return None


def _gradient(ds: v.HeaderView, diffusion: Dataset | None) -> tuple[float, float, float] | None:
    for holder in (diffusion, ds):
        if holder is None:
            continue
        seq = holder.get("DiffusionGradientDirectionSequence")
        if seq and "DiffusionGradientOrientation" in seq[0]:
            return v.to_floats(seq[0].DiffusionGradientOrientation, 3)  # type: ignore[return-value]
        if "DiffusionGradientOrientation" in holder:
            return v.to_floats(holder.DiffusionGradientOrientation, 3)  # type: ignore[return-value]
    siemens = ds.private(0x0019, SIEMENS_CREATOR, 0x0E)
    if siemens is not None:
        if isinstance(siemens, bytes) and len(siemens) == 24:
            return struct.unpack("<3d", siemens)
        return v.to_floats(siemens, 3)  # type: ignore[return-value]
    ge = [v.to_float(ds.private(0x0019, GE_ACQ_CREATOR, e)) for e in (0xBB, 0xBC, 0xBD)]
    if all(g is not None for g in ge):
        return tuple(ge)  # type: ignore[return-value]
    if _is_uih(ds):
        uih = ds.private(0x0065, UIH_CREATOR, 0x37)
        if isinstance(uih, bytes) and len(uih) == 24:
            return struct.unpack("<3d", uih)
        return v.to_floats(uih, 3) if uih is not None else None  # type: ignore[return-value]
    return None


def _element_tag(raw: bytes, byteorder: str = "<") -> int | None:
    """The tag of the data element whose header starts ``raw``."""
    if len(raw) < 4:
        return None
    group, element = struct.unpack(byteorder + "HH", raw[:4])
    return group << 16 | element


def _not_integer_pixels(tag: int | None) -> str | None:
    """The problem to record when the element after the header is not integer Pixel Data."""
    if tag in FLOAT_PIXEL_TAGS:
        return (
            f"{FLOAT_PIXEL_DATA} ({FLOAT_PIXEL_TAGS[tag]}, e.g. a Parametric Map): radimt reads integer "
            "Pixel Data only; export the map as integer images with RescaleSlope/RescaleIntercept"
        )
    return None if tag == PIXEL_DATA_TAG else NO_PIXEL_DATA


def _pixel_offset(
    raw: bytes, header_end: int, expected: int, file_size: int
) -> tuple[int | None, str | None]:
    """Where native pixel bytes start, from the 12 bytes of the Pixel Data element header at
    ``header_end`` (its tag already checked).

    The element's length must be what Rows, Columns, SamplesPerPixel, BitsAllocated and
    NumberOfFrames declare (plus one pad byte when that is odd): a file whose attributes
    disagree with its pixel data would otherwise load as plausible garbage.
    """
    if len(raw) < 8:
        return None, NO_PIXEL_DATA
    if raw[4:6] in _LONG_VRS:
        length, start = struct.unpack("<I", raw[8:12])[0], header_end + 12
    elif raw[4:6].isalpha() and raw[4:6].isupper():
        length, start = struct.unpack("<H", raw[6:8])[0], header_end + 8
    else:  # implicit VR
        length, start = struct.unpack("<I", raw[4:8])[0], header_end + 8
    if length == 0xFFFFFFFF:
        return None, None  # encapsulated although the syntax says native: let pydicom decide
    if file_size < start + min(length, expected):
        return None, f"pixel data truncated: the file ends after {file_size - start} of {expected} bytes"
    if not expected <= length <= expected + 1:
        return None, (
            f"pixel data holds {length} bytes but Rows x Columns x SamplesPerPixel x BitsAllocated x "
            f"NumberOfFrames declare {expected}: the header does not describe these pixels"
        )
    return start, None


def _probe_pixel_tag(raw: bytes, syntax: str) -> str | None:
    """For encoded syntaxes: only check that a pixel data element follows the header."""
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        return None  # the stream position means nothing in a deflated file
    tags = {_element_tag(raw), _element_tag(raw, ">")}
    if PIXEL_DATA_TAG in tags:
        return None
    return next((p for p in map(_not_integer_pixels, tags) if p != NO_PIXEL_DATA), NO_PIXEL_DATA)


def _frame_capacity(n_frames: int, frame_bytes: int, native: bool, file_size: int) -> tuple[int, str | None]:
    """Bound NumberOfFrames by what the file can hold, before one record is made per frame.

    A native frame takes ``frame_bytes``, an encapsulated one at least its 8-byte item header;
    a file declaring more frames than fit is refused (one record carries the problem), so a
    20 KB file claiming two billion frames costs nothing.
    """
    smallest = frame_bytes if native else MIN_ENCAPSULATED_FRAME_BYTES
    if n_frames < 1:
        return 1, f"NumberOfFrames {n_frames} is not a positive count"
    if smallest and n_frames > file_size // max(smallest, 1):
        return 1, (
            f"NumberOfFrames {n_frames} cannot fit in a file of {file_size} bytes "
            f"({smallest} bytes per frame at least): the header is corrupt"
        )
    return n_frames, None


def _read_dataset(path: str) -> tuple[Dataset, int, int, bytes]:
    """Header dataset, byte position where it stopped, file size, and the next 12 bytes."""
    size = os.path.getsize(path)
    if size == 0:
        raise NotDicomError("empty file")
    with open(path, "rb") as fp:
        ds: Dataset
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
        except InvalidDicomError:
            ds = _read_without_preamble(fp)
        header_end = fp.tell()
        return ds, header_end, size, fp.read(12)


def _read_without_preamble(fp: Any) -> Dataset:
    """Old files lack the 128-byte preamble and 'DICM': accept them only if they look like images."""
    fp.seek(0)
    try:
        with warnings.catch_warnings():  # random bytes make pydicom guess aloud
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "not DICOM"
        raise NotDicomError(f"not DICOM ({exc})") from None
    if "SOPClassUID" not in ds and "Rows" not in ds:
        raise NotDicomError("not DICOM (no DICM prefix and no image attributes)")
    return ds


def _syntax(ds: v.HeaderView) -> str:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax:
        return str(syntax)
    # Files without meta information: pydicom worked the encoding out while reading.
    implicit = getattr(ds, "is_implicit_VR", True)
    return str(ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian)


def _us_regions(ds: v.HeaderView) -> tuple[UltrasoundRegion, ...]:
    regions = []
    for item in ds.get("SequenceOfUltrasoundRegions") or []:

        def delta(unit_kw: str, delta_kw: str, item: Dataset = item) -> float | None:
            unit, value = item.get(unit_kw), v.to_float(item.get(delta_kw))
            if value is None or unit != 3:  # 3 = cm; other units are not spatial
                return None
            return abs(value) * 10.0

        regions.append(
            UltrasoundRegion(
                x0=int(item.get("RegionLocationMinX0", 0)),
                y0=int(item.get("RegionLocationMinY0", 0)),
                x1=int(item.get("RegionLocationMaxX1", 0)),
                y1=int(item.get("RegionLocationMaxY1", 0)),
                spatial_format=int(item.get("RegionSpatialFormat", 0)),
                delta_x_mm=delta("PhysicalUnitsXDirection", "PhysicalDeltaX"),
                delta_y_mm=delta("PhysicalUnitsYDirection", "PhysicalDeltaY"),
            )
        )
    return tuple(regions)


#: SOP classes of Secondary Capture images (1.2.840.10008.5.1.4.1.1.7 and its multi-frame kinds).
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"

#: The CBIS-DDSM convention: each view is filed as its own "patient" whose PatientID ends with the
#: side and view (``Mass-Test_P_00173_LEFT_CC``; ROI masks add the abnormality: ``..._CC_1``).
_ARCHIVE_ID = re.compile(
    r"^(?P<base>.+?)_(?P<side>LEFT|RIGHT)_(?P<view>CC|MLO|ML|LM|XCCL|SIO)(?:_\d+)?$", re.IGNORECASE
)
#: View codes a digitised film may carry in PatientOrientation (CBIS-DDSM: "CC", "MLO").
_VIEW_WORDS = frozenset({"CC", "MLO", "ML", "LM", "XCCL"})


def archive_view_in_id(patient_id: str) -> tuple[str, str, str] | None:
    """(patient, laterality L/R, view) from a PatientID that carries the view, as CBIS-DDSM's
    do (``Mass-Test_P_00173_LEFT_CC`` -> ``('Mass-Test_P_00173', 'L', 'CC')``); else ``None``.

    Examples
    --------
    >>> archive_view_in_id("Calc-Training_P_00005_RIGHT_MLO_1")
    ('Calc-Training_P_00005', 'R', 'MLO')
    >>> archive_view_in_id("P_00005") is None
    True
    """
    match = _ARCHIVE_ID.match(patient_id.strip())
    if match is None:
        return None
    return match["base"], match["side"][0].upper(), match["view"].upper()


def _laterality_and_view(ds: v.HeaderView, modality: str) -> tuple[str | None, str, str | None, str]:
    """Laterality and view with the attribute each came from: the standard attributes first,
    then, for projection images of the breast only, PatientOrientation (a view code written
    there), descriptions, and a PatientID that carries them (CBIS-DDSM)."""
    laterality, laterality_source = None, ""
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(ds.get(keyword, "") or "").strip().upper()
        if value:
            laterality, laterality_source = value, keyword
            break
    view, view_source = _view(ds), ""
    if view:
        view_source = "ViewPosition" if ds.get("ViewPosition") else "ViewCodeSequence"
    if modality not in ("MG", "CR", "DX"):
        return laterality, laterality_source, view, view_source
    archive = archive_view_in_id(str(ds.get("PatientID", "") or ""))
    if view is None:
        orientation = [str(x).strip().upper() for x in v.as_list(ds.get("PatientOrientation"))]
        found = next((x for x in orientation if x in _VIEW_WORDS), None)
        if found:
            view, view_source = found, "PatientOrientation"
    for keyword in ("SeriesDescription", "ImageComments"):
        text = str(ds.get(keyword, "") or "").upper()
        if view is None and (word := re.search(r"\b(MLO|CC|XCCL)\b", text)):
            view, view_source = word.group(1), keyword
        if laterality is None and (side := re.search(r"\b(LEFT|RIGHT)\b", text)):
            laterality, laterality_source = side.group(1)[0], keyword
    if archive is not None:
        if laterality is None:
            laterality, laterality_source = archive[1], "PatientID (CBIS-DDSM convention)"
        if view is None:
            view, view_source = archive[2], "PatientID (CBIS-DDSM convention)"
    return laterality, laterality_source, view, view_source


def _view(ds: v.HeaderView) -> str | None:
    view = str(ds.get("ViewPosition", "") or "").strip().upper()
    if view:
        return view
    seq = ds.get("ViewCodeSequence")
    if seq:
        meaning = str(seq[0].get("CodeMeaning", "")).lower()
        for needle, code in (
            ("medio-lateral oblique", "MLO"),
            ("cranio-caudal", "CC"),
            ("medio-lateral", "ML"),
            ("latero-medial", "LM"),
        ):
            if needle in meaning:
                return code
    return None


def read_frames(path: str) -> list[Frame]:
    """Read one file's header and return its frames.

    Raises
    ------
    NotDicomError
        The file is empty, not DICOM, a DICOMDIR, or carries no image (e.g. a structured report).
    """
    return frames_of(path, *_read_dataset(path))


def frames_of(path: str, dataset: Dataset, header_end: int, size: int, peek: bytes) -> list[Frame]:
    """The frames of a file whose header :func:`_read_dataset` has read (see :func:`read_frames`)."""
    ds = v.HeaderView(dataset)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise NotDicomError("DICOMDIR (a media index, not an image)")
    rows, cols = v.to_int(ds.get("Rows")), v.to_int(ds.get("Columns"))
    modality = str(ds.get("Modality", "") or "").upper()
    if not rows or not cols:
        raise NotDicomError(f"no image in this {modality or 'DICOM'} object ({sop_class or 'no SOP class'})")

    samples = v.to_int(ds.get("SamplesPerPixel")) or 1
    bits = v.to_int(ds.get("BitsAllocated")) or 16
    syntax = _syntax(ds)
    native = syntax in NATIVE_LITTLE_ENDIAN
    frame_bits = rows * cols * samples * bits
    n_frames = v.to_int(ds.get("NumberOfFrames")) or 1
    problem = _not_integer_pixels(_element_tag(peek)) if native else _probe_pixel_tag(peek, syntax)
    if problem is None:
        n_frames, problem = _frame_capacity(n_frames, -(-frame_bits // 8), native, size)
    else:
        n_frames = 1  # no integer pixel data: one record carries the problem
    offset = None
    if problem is None and native:
        expected = -(-frame_bits * n_frames // 8)  # 1-bit images pack eight pixels per byte
        offset, problem = _pixel_offset(peek, header_end, expected, size)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if bits not in (8, 16, 32) or samples != 1 or not photometric.startswith("MONOCHROME"):
        offset = None  # colour, palette and packed-bit images are decoded by pydicom
    intent = ds.get("PresentationIntentType")
    laterality, laterality_source, view, view_source = _laterality_and_view(ds, modality)
    header = FileHeader(
        path=path,
        sop_class_uid=sop_class,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")) or f"no-series-uid:{os.path.dirname(path)}",
        series_number=v.to_int(ds.get("SeriesNumber")),
        series_description=str(ds.get("SeriesDescription", "") or "").strip(),
        modality=modality,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")) or None,
        image_type=tuple(str(t).upper() for t in v.as_list(ds.get("ImageType"))),
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        rows=rows,
        columns=cols,
        samples_per_pixel=samples,
        photometric=photometric,
        bits_allocated=bits,
        bits_stored=v.to_int(ds.get("BitsStored")) or bits,
        pixel_representation=v.to_int(ds.get("PixelRepresentation")) or 0,
        transfer_syntax=syntax,
        n_frames=n_frames,
        pixel_offset=offset,
        problem=problem,
        repetition_time=v.to_float(ds.get("RepetitionTime")),
        contrast_agent=str(ds.get("ContrastBolusAgent", "") or "") or None,
        laterality=laterality,
        laterality_source=laterality_source,
        view=view,
        view_source=view_source,
        presentation_intent=str(intent).upper() if intent else None,
        body_part=str(ds.get("BodyPartExamined", "") or "").upper() or None,
        pixel_spacing=v.to_floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
        imager_pixel_spacing=v.to_floats(ds.get("ImagerPixelSpacing"), 2),  # type: ignore[arg-type]
        magnification=v.to_float(ds.get("EstimatedRadiographicMagnificationFactor")),
        us_regions=_us_regions(ds),
        frame_time_ms=v.to_float(ds.get("FrameTime")),
        units=str(ds.get("Units", "") or ds.get("RescaleType", "") or "") or None,
        scanning_sequence=tuple(str(t).upper() for t in v.as_list(ds.get("ScanningSequence"))),
        sequence_name=str(ds.get("SequenceName", "") or ds.get("PulseSequenceName", "") or "").strip(),
        acquisition_contrast=str(ds.get("AcquisitionContrast", "") or "").strip().upper(),
        has_diffusion_macro=_has_diffusion_macro(ds),
        slice_thickness=v.to_float(ds.get("SliceThickness")),
        contrast_start_time=v.parse_datetime(
            ds.get("AcquisitionDate") or ds.get("SeriesDate") or ds.get("StudyDate"),
            ds.get("ContrastBolusStartTime"),
        ),
        acquisition_duration=v.to_float(ds.get("AcquisitionDuration")),
        gantry_tilt=v.to_float(ds.get("GantryDetectorTilt")),
        temporal_positions=v.to_int(ds.get("NumberOfTemporalPositions")),
        patient_key=_patient_key(ds),
        conversion_type=str(ds.get("ConversionType", "") or "").strip().upper(),
        archive_view_in_id=archive_view_in_id(str(ds.get("PatientID", "") or "")) is not None,
    )
    if "PerFrameFunctionalGroupsSequence" in ds:
        items = len(ds.PerFrameFunctionalGroupsSequence)
        if items != header.n_frames and header.problem is None:
            header = replace(
                header,
                n_frames=min(items, header.n_frames) or 1,
                problem=f"NumberOfFrames {header.n_frames} but {items} per-frame functional group items",
            )
        return _enhanced_frames(ds, header)
    if "MOSAIC" in header.image_type:
        return _mosaic_frames(ds, header)
    if _is_uih(ds) and ds.private(0x0065, UIH_CREATOR, 0x51):
        return _uih_mosaic_frames(ds, header)
    return _classic_frames(ds, header)


def _position(value: Any) -> tuple[float, float, float] | None:
    """ImagePositionPatient, or ``None`` when absent or not three finite numbers."""
    numbers = v.to_floats(value, 3)
    return numbers if numbers is not None and all(math.isfinite(x) for x in numbers) else None  # type: ignore[return-value]


def _orientation(value: Any) -> tuple[float, ...] | None:
    """ImageOrientationPatient, or ``None`` when it cannot orient a plane: absent, not six
    finite numbers, or parallel row and column cosines. (Cosines that are merely not unit length
    or not at right angles are kept, for assembly to refuse with the values.)"""
    numbers = v.to_floats(value, 6)
    if numbers is None or not all(math.isfinite(x) for x in numbers):
        return None
    (a, b, c), (d, e, f) = numbers[:3], numbers[3:]
    normal = (b * f - c * e, c * d - a * f, a * e - b * d)  # plain floats: once per file in a scan
    if math.sqrt(sum(x * x for x in normal)) < 1e-6:
        return None
    return numbers


def _xyz(values: Any) -> tuple[float, float, float]:
    x, y, z = (float(value) for value in values)
    return x, y, z


def _patient_key(ds: v.HeaderView) -> str:
    """A short digest of PatientID (PatientName when there is no ID), "" when both are empty.

    Enough to tell two patients in one folder apart without holding their identifiers. A
    PatientID carrying side and view (CBIS-DDSM: ``..._P_00173_LEFT_CC``) counts without them:
    the four views of one patient, filed as four "patients", are one patient; two patients
    still differ.
    """
    identity = str(ds.get("PatientID", "") or "").strip() or str(ds.get("PatientName", "") or "").strip()
    archive = archive_view_in_id(identity)
    if archive is not None:  # the views of one patient, filed apart (CBIS-DDSM): one patient
        identity = archive[0]
    return hashlib.sha256(identity.encode()).hexdigest()[:12] if identity else ""


def _rescale(ds: v.HeaderView, keyword: str, default: float) -> float:
    """RescaleSlope/Intercept as written (0, NaN and inf kept, for assembly to refuse), else the
    identity's value when absent."""
    value = v.to_float(ds.get(keyword))
    return default if value is None else value


def _classic_frames(ds: v.HeaderView, header: FileHeader) -> list[Frame]:
    acq = v.parse_dt(ds.get("AcquisitionDateTime")) or v.parse_datetime(
        ds.get("AcquisitionDate") or ds.get("SeriesDate"), ds.get("AcquisitionTime")
    )
    content = v.parse_datetime(ds.get("ContentDate") or ds.get("SeriesDate"), ds.get("ContentTime"))
    common: dict[str, Any] = dict(
        instance_number=v.to_int(ds.get("InstanceNumber")),
        position=_position(ds.get("ImagePositionPatient")),
        orientation=_orientation(ds.get("ImageOrientationPatient")),
        pixel_spacing=header.pixel_spacing,
        slope=_rescale(ds, "RescaleSlope", 1.0),
        intercept=_rescale(ds, "RescaleIntercept", 0.0),
        temporal_position=v.to_int(ds.get("TemporalPositionIdentifier")),
        trigger_time_ms=v.to_float(ds.get("TriggerTime")),
        acquisition_time=acq,
        content_time=content,
        b_value=_b_value(ds, None),
        gradient=_gradient(ds, None),
        echo_time=v.to_float(ds.get("EchoTime")),
    )
    return [Frame(header=header, index=i, **common) for i in range(header.n_frames)]


def _mosaic_frames(ds: v.HeaderView, header: FileHeader) -> list[Frame]:
    """A Siemens mosaic (several slices tiled in one image) as one frame per slice.

    nibabel's Siemens wrapper reads the CSA header (number of images, slice normal) and gives
    the volume's affine; each tile k becomes a frame placed at ``affine @ (0, 0, k)``.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel's "experimental readers" notice
        from nibabel.nicom import dicomwrappers

        try:
            wrapper = dicomwrappers.wrapper_from_data(ds.ds)
            tiles, n_slices = int(wrapper.mosaic_size), int(wrapper.n_mosaic)
            affine = np.asarray(wrapper.affine, float)
        except Exception as exc:  # noqa: BLE001 - a mosaic without a readable CSA header
            raise NotDicomError(f"Siemens mosaic without a usable CSA header ({exc})") from None
    tile_rows, tile_cols = header.rows // tiles, header.columns // tiles
    header = replace(header, mosaic=(tiles, tile_rows, tile_cols), n_frames=n_slices)
    # nibabel's affine maps (row, column, slice) indices to patient LPS millimetres.
    row_step, col_step, slice_step = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    row_spacing, col_spacing = float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))
    orientation = tuple(float(x) for x in np.concatenate([col_step / col_spacing, row_step / row_spacing]))
    base = _classic_frames(ds, replace(header, n_frames=1))[0]
    return [
        replace(
            base,
            index=k,
            position=_xyz(affine[:3, 3] + k * slice_step),
            orientation=orientation,
            pixel_spacing=(row_spacing, col_spacing),
        )
        for k in range(n_slices)
    ]


def _uih_mosaic_frames(ds: v.HeaderView, header: FileHeader) -> list[Frame]:
    """A United Imaging "save by slice" mosaic: one image tiling n slices, whose positions and
    times are listed in the private sequence (0065,1051), one item per tile, row by row."""
    items = list(ds.private(0x0065, UIH_CREATOR, 0x51))
    n = len(items)
    tiles = int(np.ceil(np.sqrt(n)))
    tile_rows, tile_cols = header.rows // int(np.ceil(n / tiles)), header.columns // tiles
    if tile_rows < 1 or tile_cols < 1 or header.rows % int(np.ceil(n / tiles)) or header.columns % tiles:
        raise NotDicomError(
            f"United Imaging mosaic of {n} slices does not tile its {header.rows}x{header.columns} image"
        )
    header = replace(header, mosaic=(tiles, tile_rows, tile_cols), n_frames=n)
    base = _classic_frames(ds, replace(header, n_frames=1))[0]
    frames = []
    for k, item in enumerate(items):
        acq = v.parse_dt(item.get("AcquisitionDateTime")) or v.parse_datetime(
            item.get("AcquisitionDate"), item.get("AcquisitionTime")
        )
        frames.append(
            replace(
                base,
                index=k,
                position=_position(item.get("ImagePositionPatient")),
                acquisition_time=acq if acq is not None else base.acquisition_time,
            )
        )
    return frames


def _enhanced_frames(ds: v.HeaderView, header: FileHeader) -> list[Frame]:
    frames = []
    per_frame = ds.PerFrameFunctionalGroupsSequence
    for i in range(header.n_frames):
        item = per_frame[i] if i < len(per_frame) else None
        plane = _functional(ds, item, "PlanePositionSequence")
        orient = _functional(ds, item, "PlaneOrientationSequence")
        measures = _functional(ds, item, "PixelMeasuresSequence")
        content = _functional(ds, item, "FrameContentSequence")
        rescale = _functional(ds, item, "PixelValueTransformationSequence")
        diffusion = _functional(ds, item, "MRDiffusionSequence")
        echo = _functional(ds, item, "MREchoSequence")
        timing = _functional(ds, item, "CardiacSynchronizationSequence")
        frame_type = _functional(ds, item, "MRImageFrameTypeSequence") or _functional(
            ds, item, "CTImageFrameTypeSequence"
        )
        slope = v.to_float(rescale.get("RescaleSlope")) if rescale else None
        intercept = v.to_float(rescale.get("RescaleIntercept")) if rescale else None
        frames.append(
            Frame(
                header=header,
                index=i,
                instance_number=v.to_int(ds.get("InstanceNumber")),
                position=_position(plane.get("ImagePositionPatient")) if plane else None,
                orientation=_orientation(orient.get("ImageOrientationPatient")) if orient else None,
                pixel_spacing=(v.to_floats(measures.get("PixelSpacing"), 2) if measures else None)  # type: ignore[arg-type]
                or header.pixel_spacing,
                slope=slope if slope is not None else _rescale(ds, "RescaleSlope", 1.0),
                intercept=intercept if intercept is not None else _rescale(ds, "RescaleIntercept", 0.0),
                temporal_position=v.to_int(content.get("TemporalPositionIndex")) if content else None,
                trigger_time_ms=v.to_float(timing.get("NominalCardiacTriggerDelayTime")) if timing else None,
                acquisition_time=v.parse_dt(content.get("FrameAcquisitionDateTime")) if content else None,
                content_time=v.parse_dt(content.get("FrameReferenceDateTime")) if content else None,
                b_value=_b_value(ds, diffusion),
                gradient=_gradient(ds, diffusion) if diffusion is not None else None,
                echo_time=v.to_float(echo.get("EffectiveEchoTime"))
                if echo
                else v.to_float(ds.get("EchoTime")),
                stack_id=str(content.get("StackID")) if content and "StackID" in content else None,
                frame_type=tuple(str(t).upper() for t in v.as_list(frame_type.get("FrameType")))
                if frame_type is not None and "FrameType" in frame_type
                else None,
            )
        )
    return frames
