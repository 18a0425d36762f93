"""Write synthetic images as valid DICOM files (MR, CT, enhanced MR, MG, US).

Everything is deterministic: UIDs are derived from names, times from a fixed study clock, so the
same call writes the same bytes. No patient data: the names are synthetic.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from radimt.dicom.uids import derived_uid

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MG_PRESENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING_STORAGE = "1.2.840.10008.5.1.4.1.1.1.2.1"
US_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_DATE = "20240315"


def clock(seconds: float) -> str:
    """TM value for ``seconds`` after 09:00:00 on the study day."""
    total = 9 * 3600 + seconds
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}{int(m):02d}{s:09.6f}"


@dataclass(frozen=True)
class Grid:
    """A 3D voxel grid in patient LPS millimetres (SimpleITK conventions)."""

    size: tuple[int, int, int]  # x (columns), y (rows), z (slices)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.direction, float).reshape(3, 3)

    def physical(self, index: Sequence[float]) -> np.ndarray:
        """LPS position of a (continuous) voxel index (x, y, z)."""
        return np.asarray(self.origin) + self.matrix @ (np.asarray(index, float) * self.spacing)

    def index(self, point: Sequence[float]) -> np.ndarray:
        """Continuous voxel index (x, y, z) of an LPS point."""
        return np.linalg.solve(self.matrix, np.asarray(point, float) - self.origin) / self.spacing

    def coordinates(self) -> np.ndarray:
        """LPS coordinates of every voxel, shape (z, y, x, 3)."""
        zi, yi, xi = np.meshgrid(*(np.arange(n) for n in self.size[::-1]), indexing="ij")
        idx = np.stack([xi, yi, zi], axis=-1) * np.asarray(self.spacing)
        return idx @ self.matrix.T + np.asarray(self.origin)


@dataclass
class SeriesSpec:
    """What a series says about itself, beyond its pixels."""

    study_id: str
    name: str
    number: int
    description: str
    modality: str = "MR"
    attrs: Mapping[str, Any] = field(default_factory=dict)
    frame_of_reference: str | None = None

    @property
    def series_uid(self) -> str:
        return derived_uid(self.study_id, "series", self.name)


def _base(spec: SeriesSpec, sop_class: str, sop_uid: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(derived_uid("radimt", "implementation"))
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = clock(0)
    ds.Modality = spec.modality
    ds.Manufacturer = "radimt synthetic"
    ds.PatientName = f"Synthetic^{spec.study_id}"
    ds.PatientID = f"SYN-{spec.study_id}"
    ds.PatientSex = "F"
    ds.PatientBirthDate = ""
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyInstanceUID = derived_uid(spec.study_id, "study")
    ds.SeriesInstanceUID = spec.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = spec.number
    ds.SeriesDescription = spec.description
    ds.BodyPartExamined = "BREAST"
    if spec.frame_of_reference is not None:
        ds.FrameOfReferenceUID = derived_uid(spec.study_id, "for", spec.frame_of_reference)
    for key, value in spec.attrs.items():
        if isinstance(key, str):
            setattr(ds, key, value)
    return ds


#: What the IODs ask of every image radimt synthesises beyond its pixels, per modality (PS3.3:
#: the General Series, Frame of Reference and modality image modules). Type 2 attributes that a
#: synthetic acquisition has no value for are present and empty, as the standard allows; MR's
#: ScanningSequence "RM" is the defined term for research mode. A series' own attributes win.
_IOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "MR": {
        "ScanningSequence": "RM",
        "SequenceVariant": "NONE",
        "ScanOptions": "",
        "MRAcquisitionType": "",
        "EchoTrainLength": "",
        "RepetitionTime": "",
        "EchoTime": "",
        "PatientPosition": "HFP",  # breast MRI is done prone
        "Laterality": "",
        "PositionReferenceIndicator": "",
    },
    "CT": {
        "AcquisitionNumber": "",
        "PatientPosition": "HFS",
        "Laterality": "",
        "PositionReferenceIndicator": "",
    },
    "US": {"Laterality": "", "PatientOrientation": ""},
    "OT": {"Laterality": "", "PatientOrientation": ""},
}


def _complete_iod(ds: Dataset, modality: str) -> None:
    for keyword, value in _IOD_DEFAULTS.get(modality, {}).items():
        if keyword not in ds:
            setattr(ds, keyword, value)


def _breast_region(laterality: str | None = None) -> DicomSequence:
    """AnatomicRegionSequence for a breast (SCT 76752008; with its laterality when known)."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "76752008", "SCT", "Breast"
    if laterality in ("L", "R"):
        side = Dataset()
        side.CodeValue, side.CodingSchemeDesignator = (
            ("7771000", "SCT") if laterality == "L" else ("24028007", "SCT")
        )
        side.CodeMeaning = "Left" if laterality == "L" else "Right"
        item.ModifierCodeSequence = DicomSequence([side])  # type: ignore[assignment]
    return DicomSequence([item])


#: SCT codes of the mammographic views (PS3.16 CID 4014).
_VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}


def _pixel_module(ds: Dataset, array: np.ndarray, bits_stored: int | None = None) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = ds.get("PhotometricInterpretation", "MONOCHROME2")
    ds.Rows, ds.Columns = array.shape[-2:]
    ds.BitsAllocated = array.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if np.issubdtype(array.dtype, np.signedinteger) else 0
    ds.PixelData = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()


def _save(ds: Dataset, path: str, transfer_syntax: str | None = None) -> None:
    if transfer_syntax and transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(transfer_syntax)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _private(ds: Dataset, group: int, creator: str, element: int, vr: str, value: Any) -> None:
    ds.private_block(group, creator, create=True).add_new(element, vr, value)


def add_b_value(ds: Dataset, b_value: float, convention: str) -> None:
    """Record a b-value the way one vendor does: standard, siemens, ge or philips."""
    if convention == "standard":
        ds.add_new(0x00189087, "FD", float(b_value))
    elif convention == "siemens":
        _private(ds, 0x0019, "SIEMENS MR HEADER", 0x0C, "IS", str(int(b_value)))
    elif convention == "ge":  # first value carries the b-value plus GE's 1e9 offset
        _private(ds, 0x0043, "GEMS_PARM_01", 0x39, "IS", [int(b_value) + 1_000_000_000, 8, 0, 0])
    elif convention == "philips":
        _private(ds, 0x2001, "Philips Imaging DD 001", 0x03, "FL", float(b_value))
    else:
        raise ValueError(f"unknown b-value convention {convention!r}")


def write_volume(
    folder: str,
    spec: SeriesSpec,
    volume: np.ndarray,
    grid: Grid,
    *,
    slope: float = 1.0,
    intercept: float = 0.0,
    per_slice: Sequence[Mapping[str, Any]] | None = None,
    sop_class: str | None = None,
    transfer_syntax: str | None = None,
    instance_start: int = 1,
    file_prefix: str = "",
    shuffle_names: bool = True,
) -> list[str]:
    """Write a (z, y, x) array of stored values as one classic single-frame file per slice.

    File names are opaque (as PACS exports often are) and, by default, not in slice order, so
    readers must sort by position.
    """
    sop_class = sop_class or (CT_STORAGE if spec.modality == "CT" else MR_STORAGE)
    rot = grid.matrix
    orientation = [float(x) for x in np.concatenate([rot[:, 0], rot[:, 1]])]
    paths = []
    n = volume.shape[0]
    order = (
        np.random.default_rng(zlib.crc32(spec.name.encode())).permutation(n) if shuffle_names else range(n)
    )
    for k in range(n):
        sop_uid = derived_uid(spec.study_id, spec.name, instance_start + k)
        ds = _base(spec, sop_class, sop_uid)
        ds.ImageType = ds.get("ImageType", ["ORIGINAL", "PRIMARY", "OTHER"])
        ds.InstanceNumber = instance_start + k
        ds.ImagePositionPatient = [f"{v:.4f}" for v in grid.physical((0, 0, k % grid.size[2]))]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.PixelSpacing = [f"{grid.spacing[1]:.6g}", f"{grid.spacing[0]:.6g}"]
        ds.SliceThickness = f"{grid.spacing[2]:.6g}"
        if slope != 1.0 or intercept != 0.0 or spec.modality == "CT":
            ds.RescaleSlope = f"{slope:.6g}"
            ds.RescaleIntercept = f"{intercept:.6g}"
            ds.RescaleType = "HU" if spec.modality == "CT" else "US"
        for key, value in (per_slice[k] if per_slice else {}).items():
            if key == "b_value":
                add_b_value(ds, *value)
            else:
                setattr(ds, key, value)
        _complete_iod(ds, spec.modality)
        _pixel_module(ds, volume[k])
        name = f"{file_prefix}{derived_uid(spec.name, 'file', order[k])[-10:]}"
        path = os.path.join(folder, name)
        _save(ds, path, transfer_syntax)
        paths.append(path)
    return paths


def write_enhanced_mr(
    path: str,
    spec: SeriesSpec,
    volumes: Sequence[np.ndarray],
    grid: Grid,
    *,
    frame_times_s: Sequence[float] | None = None,
    b_values: Sequence[float] | None = None,
) -> str:
    """Write several volumes (phases or b-values) as one Enhanced MR multi-frame file.

    Each frame carries its position, TemporalPositionIndex and acquisition time (or b-value) in
    per-frame functional groups, as scanners exporting enhanced objects do.
    """
    ds = _base(spec, ENHANCED_MR_STORAGE, derived_uid(spec.study_id, spec.name, "enhanced"))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.AcquisitionDateTime = STUDY_DATE + clock(0)
    ds.ContentTime = clock(0)
    rot = grid.matrix
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [grid.spacing[1], grid.spacing[0]]
    measures.SliceThickness = grid.spacing[2]
    shared.PixelMeasuresSequence = DicomSequence([measures])
    orient = Dataset()
    orient.ImageOrientationPatient = [float(x) for x in np.concatenate([rot[:, 0], rot[:, 1]])]
    shared.PlaneOrientationSequence = DicomSequence([orient])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames, per_frame = [], []
    for t, volume in enumerate(volumes):
        for k in range(volume.shape[0]):
            item = Dataset()
            pos = Dataset()
            pos.ImagePositionPatient = [float(v) for v in grid.physical((0, 0, k))]
            item.PlanePositionSequence = DicomSequence([pos])
            content = Dataset()
            content.StackID = "1"
            content.InStackPositionNumber = k + 1
            content.DimensionIndexValues = [t + 1, k + 1]
            if frame_times_s is not None:
                content.TemporalPositionIndex = t + 1
                content.FrameAcquisitionDateTime = STUDY_DATE + clock(frame_times_s[t])
            item.FrameContentSequence = DicomSequence([content])
            if b_values is not None:
                diff = Dataset()
                diff.DiffusionBValue = float(b_values[t])
                diff.DiffusionDirectionality = "ISOTROPIC" if b_values[t] > 0 else "NONE"
                item.MRDiffusionSequence = DicomSequence([diff])
            per_frame.append(item)
            frames.append(volume[k])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.NumberOfFrames = len(frames)
    _pixel_module(ds, np.stack(frames))
    _save(ds, path)
    return path


def write_mammogram(
    path: str,
    spec: SeriesSpec,
    image: np.ndarray,
    *,
    pixel_spacing_mm: float,
    laterality: str,
    view: str,
    monochrome1: bool = True,
    magnification: float | None = 1.1,
    bits_stored: int = 12,
    for_processing: bool = False,
    instance: int = 1,
) -> str:
    """Write a 2D mammogram. ``image`` holds brightness (higher = denser), 0..2**bits_stored-1.

    With ``monochrome1`` the stored values are inverted as MONOCHROME1 requires. Only
    ImagerPixelSpacing is written (spacing at the detector) with the magnification factor, the
    common case for digital mammography, so readers must divide.
    """
    sop = MG_PROCESSING_STORAGE if for_processing else MG_PRESENTATION_STORAGE
    ds = _base(spec, sop, derived_uid(spec.study_id, spec.name, instance))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", ""]
    ds.InstanceNumber = instance
    ds.PresentationIntentType = "FOR PROCESSING" if for_processing else "FOR PRESENTATION"
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    detector = pixel_spacing_mm * (magnification or 1.0)
    ds.ImagerPixelSpacing = [f"{detector:.6g}", f"{detector:.6g}"]
    if magnification:
        ds.EstimatedRadiographicMagnificationFactor = f"{magnification:.6g}"
    top = 2**bits_stored - 1
    stored = (top - image) if monochrome1 else image
    # The DX and mammography image modules (PS3.3 C.8.11, C.8.11.7): stored values are
    # log-exposure-like and presented through an identity (MONOCHROME2) or inverse LUT.
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1 if monochrome1 else 1
    ds.PresentationLUTShape = "INVERSE" if monochrome1 else "IDENTITY"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.OrganExposed = "BREAST"
    ds.PositionerType = "MAMMOGRAPHIC"
    ds.DetectorType = "DIRECT"
    ds.AcquisitionContextSequence = DicomSequence([])
    ds.WindowCenter, ds.WindowWidth = f"{(top + 1) / 2:g}", f"{top + 1:g}"
    ds.AnatomicRegionSequence = _breast_region(laterality)
    code, meaning = _VIEW_CODES.get(view, ("399162004", "cranio-caudal"))
    view_item = Dataset()
    view_item.CodeValue, view_item.CodingSchemeDesignator, view_item.CodeMeaning = code, "SCT", meaning
    view_item.ViewModifierCodeSequence = DicomSequence([])  # type 2 in the mammography module
    ds.ViewCodeSequence = DicomSequence([view_item])
    ds.PatientOrientation = (
        ["P", "L" if laterality == "R" else "R"]
        if view == "CC"
        else ["A", "FR" if laterality == "L" else "FL"]
    )
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    _pixel_module(ds, stored.astype(np.uint16), bits_stored)
    _save(ds, path)
    return path


def write_ultrasound(
    path: str,
    spec: SeriesSpec,
    frames: np.ndarray,
    *,
    pixel_spacing_mm: float,
    region: tuple[int, int, int, int] | None = None,
    colour: str = "RGB",
    frame_time_ms: float = 40.0,
    instance: int = 1,
) -> str:
    """Write grey B-mode frames (n, rows, cols) as an RGB/YBR ultrasound image or cine loop.

    Spacing goes only into SequenceOfUltrasoundRegions (PhysicalDeltaX/Y in cm), as scanners do.
    """
    n, rows, cols = frames.shape
    sop = US_MULTIFRAME_STORAGE if n > 1 else US_STORAGE
    ds = _base(spec, sop, derived_uid(spec.study_id, spec.name, instance))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", ""]
    ds.InstanceNumber = instance
    x0, y0, x1, y1 = region or (0, 0, cols - 1, rows - 1)
    item = Dataset()
    item.RegionSpatialFormat = 1
    item.RegionDataType = 1
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = 3
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = pixel_spacing_mm / 10.0
    item.PhysicalDeltaY = pixel_spacing_mm / 10.0
    ds.SequenceOfUltrasoundRegions = DicomSequence([item])
    rgb = np.repeat(np.clip(frames, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + 6, 0, 255)  # a faint tint, as consoles add
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if n > 1:
        ds.NumberOfFrames = n
        ds.FrameTime = f"{frame_time_ms:.6g}"
        ds.FrameIncrementPointer = 0x00181063
    if colour == "YBR_FULL":
        from pydicom.pixels import convert_color_space

        rgb = convert_color_space(rgb, "RGB", "YBR_FULL")
    ds.PhotometricInterpretation = colour
    _complete_iod(ds, "US")
    ds.PixelData = rgb.tobytes()
    _save(ds, path)
    return path


def write_secondary_capture(path: str, spec: SeriesSpec, image: np.ndarray) -> str:
    """A screenshot-like secondary capture, as PACS exports often carry beside the real series."""
    ds = _base(spec, SC_STORAGE, derived_uid(spec.study_id, spec.name, 1))
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    _complete_iod(ds, "OT")
    _pixel_module(ds, image.astype(np.uint8))
    _save(ds, path)
    return path
