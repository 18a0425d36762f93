"""Masks in and out: NIfTI/NRRD (SimpleITK), DICOM SEG (highdicom), RTSTRUCT (read)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pydicom
import SimpleITK as sitk
from matplotlib.path import Path as PolygonPath

from radimt._version import __version__
from radimt.dicom.geometry import VolumeGeometry, order_slices
from radimt.dicom.header import Frame
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.uids import derived_uid
from radimt.errors import FrameOfReferenceError, MaskError
from radimt.grids import FRAME_OF_REFERENCE_KEY, SERIES_UID_KEY, check_frame_of_reference, same_grid
from radimt.io.atomic import atomic_path
from radimt.io.deidentify import deidentify
from radimt.segment import resample_mask

if TYPE_CHECKING:
    import highdicom as hd

log = logging.getLogger(__name__)

#: Patient/study attributes a SEG must copy (type 2: present, possibly empty).
_PATIENT_SEX = ("M", "F", "O", "")
_TYPE2_SOURCE_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
MASK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def _suffix_ok(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(MASK_SUFFIXES)


def write_mask(mask: sitk.Image, path: str | os.PathLike[str]) -> None:
    """Write a mask as NIfTI (``.nii``/``.nii.gz``) or NRRD (``.nrrd``), atomically, compressed."""
    if not _suffix_ok(path):
        raise MaskError(f"{path}: write masks as .nii.gz, .nii or .nrrd")
    with atomic_path(path) as tmp:
        if mask.GetPixelID() != sitk.sitkUInt8:  # a cast copies, even to the same type
            mask = sitk.Cast(mask, sitk.sitkUInt8)
        sitk.WriteImage(mask, tmp, useCompression=True)


def read_mask(
    path: str | os.PathLike[str],
    reference: sitk.Image | None = None,
    *,
    label: int | None = None,
    label_channel: int | None = None,
) -> sitk.Image:
    """Read a NIfTI/NRRD mask as uint8 (1 inside).

    Inside is any non-zero value, or only ``label`` when given (a label map with several
    lesions, as pyradiomics' ``Label``); ``label_channel`` picks the component of a vector
    mask (pyradiomics' ``Label_channel``, default 0). With ``reference``, the mask is checked to
    lie on its grid; a mask on another grid of the same patient space is carried over with
    :func:`radimt.resample_mask` (nearest neighbour).
    """
    try:
        mask = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise MaskError(f"{path}: cannot read this mask ({str(exc).splitlines()[0]})") from None
    mask = _three_dimensions_at_most(mask, path, reference)
    if mask.GetNumberOfComponentsPerPixel() > 1:
        mask = sitk.VectorIndexSelectionCast(mask, label_channel or 0)
    mask = sitk.Cast(mask != 0 if label is None else mask == label, sitk.sitkUInt8)
    if reference is not None and not same_grid(mask, reference):
        mask = resample_mask(mask, reference, method="nearest")
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        what = "the mask is empty" if label is None else f"the mask holds no voxel of label {label}"
        raise MaskError(f"{path}: {what}" + (" on the reference grid" if reference else ""))
    inside = "non-zero voxels" if label is None else f"voxels of label {label}"
    return _with_source(mask, None, path, f"label image ({inside})", "SimpleITK")


def read_dicom_mask(
    path: str | os.PathLike[str], reference: sitk.Image, segment: int | str | None = None
) -> sitk.Image:
    """A DICOM SEG segment or an RTSTRUCT ROI, by the object's Modality (see
    :func:`read_dicom_seg` and :func:`read_rtstruct`); ``segment`` names the segment or ROI and
    may be left out when the object holds one."""
    try:
        modality = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["Modality"]).get(
            "Modality"
        )
    except Exception as exc:  # noqa: BLE001 - any parse failure is a named error
        raise MaskError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    if modality == "RTSTRUCT":
        return read_rtstruct(path, reference, segment)
    if modality in ("SEG", None):
        return read_dicom_seg(path, reference, segment)
    return read_mask_image(path, reference)


def read_mask_image(path: str | os.PathLike[str], reference: sitk.Image) -> sitk.Image:
    """A binary DICOM image on a 2D image's pixel grid as its mask (non-zero inside): the ROI
    masks archives ship as images (CBIS-DDSM's "ROI mask images", Secondary Captures of the full
    mammogram's size)."""
    try:
        ds = pydicom.dcmread(str(path))
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a named error
        raise MaskError(f"{path}: not a readable DICOM mask image ({type(exc).__name__}: {exc})") from None
    if reference.GetDimension() != 2 or pixels.ndim != 2:
        raise MaskError(
            f"{path}: a DICOM image used as a mask must be one 2D frame on a 2D image (a mammogram); "
            "give a 3D mask as DICOM SEG, RTSTRUCT, NIfTI or NRRD"
        )
    if pixels.shape != tuple(reference.GetSize()[::-1]):
        raise MaskError(
            f"{path}: the mask image is {pixels.shape[1]}x{pixels.shape[0]} pixels, the image "
            f"{reference.GetSize()[0]}x{reference.GetSize()[1]}: not a mask of this image (a cropped "
            "lesion image is not a mask)"
        )
    values = np.unique(pixels)
    if values.size > 2:
        raise MaskError(
            f"{path}: the image holds {values.size} values, not a binary mask (0 and one other); "
            "is it a cropped lesion image?"
        )
    if not np.any(pixels):
        raise MaskError(f"{path}: the mask image is empty")
    mask = sitk.GetImageFromArray((pixels > 0).astype(np.uint8))
    mask.CopyInformation(reference)
    kind = str(ds.get("SeriesDescription", "") or ds.get("Modality", "image"))
    return _with_source(mask, ds, path, f"binary image ({kind})", "non-zero pixels, pixel for pixel")


def _three_dimensions_at_most(
    mask: sitk.Image, path: str | os.PathLike[str], reference: sitk.Image | None
) -> sitk.Image:
    """A 2D or 3D mask (a 4D file with one volume is that volume); anything else is refused
    before its values are compared, naming the file and both dimensions."""
    size = mask.GetSize()
    if mask.GetDimension() == 4 and size[3] == 1:
        mask = sitk.Extract(mask, [*size[:3], 0], [0, 0, 0, 0])
    wanted = reference.GetDimension() if reference is not None else None
    if mask.GetDimension() > 3:
        shape = "×".join(str(n) for n in size)
        for_what = f" for a {wanted}D image" if wanted else ""
        raise MaskError(
            f"{path}: a {mask.GetDimension()}D mask ({shape} voxels){for_what}; radimt reads 2D or 3D "
            "masks: save the lesion's mask as one 3D volume (one label per lesion)"
        )
    if wanted is not None and mask.GetDimension() != wanted:
        raise MaskError(
            f"{path}: a {mask.GetDimension()}D mask for a {wanted}D image; give the mask of this "
            "image's own grid"
        )
    return mask


def write_dicom_seg(
    mask: sitk.Image,
    series: SeriesInfo,
    path: str | os.PathLike[str],
    *,
    label: str = "lesion",
    series_number: int = 9001,
    keep_phi: bool = False,
    pseudonym: str = "anonymous",
    reproducible: bool = False,
) -> None:
    """Write a binary DICOM SEG that references ``series``, so viewers open it over the images.

    The mask must lie on the series' own grid (use :func:`radimt.resample_mask` first). The
    SEG carries the source images' study and series UIDs, as the standard requires for it to be
    displayed with them. Its own UIDs (series, instance, dimension organisation) are new,
    globally unique UIDs (highdicom's generator) on every call; with ``reproducible=True`` they
    are derived from the source series, the label and the mask's voxels instead, so the same
    inputs give the same bytes and another mask other UIDs (for tests and archived pipelines
    that compare files).

    Unless ``keep_phi``, the SEG is de-identified by the DICOM PS3.15 Basic Application Level
    Confidentiality Profile with the Retain UIDs Option (:mod:`radimt.io.deidentify`);
    PatientName and PatientID become ``pseudonym`` and the SEG goes into a new research study
    (the source's series and images are still referenced). With ``keep_phi`` it files into the
    source's study.
    """
    import highdicom as hd  # 0.2 s to import: only when a SEG is read or written
    from pydicom.sr.codedict import codes  # 80 ms: likewise

    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=_algorithm("radimt seeded region growing"),
    )
    _write_segmentation(
        mask,
        [description],
        series,
        path,
        label=label,
        kind="segmentation",
        series_number=series_number,
        keep_phi=keep_phi,
        pseudonym=pseudonym,
        reproducible=reproducible,
    )


def _algorithm(name: str) -> hd.AlgorithmIdentificationSequence:
    import highdicom as hd  # 0.2 s to import: only when a SEG is read or written
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(
        name=name, family=codes.cid7162.NeighborhoodAnalysis, version=__version__
    )


#: The kinetic map's segments: delayed curve type, CAD colours (blue, yellow, red) in CIELab.
KINETIC_SEGMENTS = (
    ("persistent", "Persistent delayed phase (type I)", (32.3, 79.2, -107.9)),
    ("plateau", "Plateau delayed phase (type II)", (97.1, -21.6, 94.5)),
    ("washout", "Washout delayed phase (type III)", (53.2, 80.1, 67.2)),
)


def write_kinetic_map_seg(
    kinetic_map: sitk.Image,
    series: SeriesInfo,
    path: str | os.PathLike[str],
    *,
    label: str = "kinetic map",
    keep_phi: bool = False,
    pseudonym: str = "anonymous",
    reproducible: bool = False,
) -> None:
    """Write a CAD-style kinetic colour map as a DICOM SEG over the DCE phase ``series``: one
    segment per delayed curve type (persistent, plateau, washout), coloured as breast CAD
    systems colour them (blue, yellow, red), so OHIF and 3D Slicer overlay it on the DCE.

    ``kinetic_map`` holds 1, 2, 3 for the three types (0 elsewhere) on the series' grid
    (:attr:`radimt.propose.Proposal.kinetic_map`). De-identification as for
    :func:`write_dicom_seg`.
    """
    import highdicom as hd  # 0.2 s to import: only when a SEG is read or written
    from pydicom.sr.codedict import codes

    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,  # enhancing breast tissue, by curve
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=_algorithm(f"radimt kinetic map: {meaning}"),
            display_color=hd.color.CIELabColor(*lab),
        )
        for number, (name, meaning, lab) in enumerate(KINETIC_SEGMENTS, start=1)
    ]
    _write_segmentation(
        kinetic_map,
        descriptions,
        series,
        path,
        label=label,
        kind="kinetic map",
        series_number=9003,
        keep_phi=keep_phi,
        pseudonym=pseudonym,
        reproducible=reproducible,
    )


def _write_segmentation(
    labels: sitk.Image,
    descriptions: Sequence[hd.seg.SegmentDescription],
    series: SeriesInfo,
    path: str | os.PathLike[str],
    *,
    label: str,
    kind: str,
    series_number: int,
    keep_phi: bool,
    pseudonym: str,
    reproducible: bool,
) -> None:
    """A BINARY DICOM SEG of ``labels`` (segment numbers, 0 = none) over ``series``."""
    import highdicom as hd  # 0.2 s to import: only when a SEG is read or written

    frames, geometry = order_slices(series.frames, series.label)
    if not same_grid(labels, _grid_image(geometry)):
        raise MaskError(
            f"the mask is not on the grid of {series.label}; carry it over with "
            "radimt.resample_mask(mask, reference) before writing DICOM SEG"
        )
    array = sitk.GetArrayFromImage(labels).astype(np.uint8)
    if len(descriptions) == 1:
        array = (array > 0).astype(np.uint8)
    if reproducible:  # from the source series, the label and the mask: never one UID for two masks
        content = hashlib.sha256(array.tobytes()).hexdigest()[:16]
        series_uid, instance_uid, dimension_uid = (
            derived_uid(series.series_uid, "seg", label, content, *part)
            for part in ((), ("instance",), ("dimensions",))
        )
    else:
        series_uid, instance_uid, dimension_uid = hd.UID(), hd.UID(), hd.UID()
    sources = source_headers(frames)
    if len(sources) == 1 and len(frames) > 1:  # one multi-frame source: frames in file order
        pixel = np.zeros_like(array)
        for k, f in enumerate(frames):
            pixel[f.index] = array[k]
        source_images = list(sources.values())
    else:
        source_images = [sources[f.path] for f in frames]
        pixel = array
    first = next(iter(sources.values()))
    seg = hd.seg.Segmentation(
        source_images=source_images,
        pixel_array=pixel,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=list(descriptions),
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer="radimt",
        manufacturer_model_name="radimt",
        software_versions=__version__,
        device_serial_number="0",
        series_description=series_description(kind, label),
        omit_empty_frames=False,
        content_date=_date(first, "ContentDate", "SeriesDate", "StudyDate"),
        content_time=_time(first, "ContentTime", "SeriesTime", "StudyTime"),
    )
    # Dated by its source, not by the clock: no acquisition-independent date leaks, and with
    # reproducible UIDs the same inputs give the same bytes.
    seg.InstanceCreationDate, seg.InstanceCreationTime = seg.ContentDate, seg.ContentTime
    for item in seg.get("ContributingEquipmentSequence") or []:
        if "ContributionDateTime" in item:
            item.ContributionDateTime = f"{seg.ContentDate}{seg.ContentTime}"
    for element in seg.iterall():
        if element.keyword == "DimensionOrganizationUID":
            element.value = dimension_uid
    if not keep_phi:
        deidentify(seg, pseudonym)
        seg.SeriesDescription = series_description(kind, label)  # radimt's own words
    with atomic_path(path) as tmp:
        seg.save_as(tmp)


def series_description(kind: str, label: str) -> str:
    """What a radimt DICOM result is, for a PACS list (at most 64 characters, the LO limit):
    ``radimt lesion segmentation: imt_case lesion 1``."""
    return f"radimt lesion {kind}: {label}"[:64]


def source_headers(frames: Sequence[Frame]) -> dict[str, pydicom.Dataset]:
    """The headers of the files behind ``frames`` (by path, in order), ready for highdicom to
    copy their patient and study modules into a derived object (SEG, SR): type 2 attributes that
    exports often drop are added empty, and a PatientSex that is not M, F or O becomes empty
    (highdicom refuses it, and a derived object must not fail for it)."""
    sources: dict[str, pydicom.Dataset] = {}
    for f in frames:
        if f.path not in sources:
            source = pydicom.dcmread(f.path, stop_before_pixels=True)
            for keyword in _TYPE2_SOURCE_ATTRIBUTES:
                if keyword not in source:
                    setattr(source, keyword, "")
            if str(source.PatientSex) not in _PATIENT_SEX:
                log.warning("%s: PatientSex %r is not M, F or O; left empty", f.path, source.PatientSex)
                source.PatientSex = ""
            sources[f.path] = source
    return sources


def _date(ds: pydicom.Dataset, *keywords: str) -> str:
    return next((str(ds.get(k)) for k in keywords if ds.get(k)), "19700101")


def _time(ds: pydicom.Dataset, *keywords: str) -> str:
    return next((str(ds.get(k)) for k in keywords if ds.get(k)), "000000")


def _grid_image(geometry: VolumeGeometry) -> sitk.Image:
    """An empty image with a series' geometry (no pixel data read)."""
    image = sitk.Image(list(geometry.size), sitk.sitkUInt8)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    return image


def _segment_number(
    names: dict[int, str], segment: int | str | None, path, background: str | None = None
) -> int:
    """The segment (or ROI) number ``segment`` names: a number, or a label naming exactly one.

    ``background`` is the label of a LABELMAP SEG's segment 0, which is not a segment.
    """
    if background is not None and (
        segment == 0 or (isinstance(segment, str) and segment.lower() == background.lower())
    ):
        raise MaskError(
            f"{path}: segment 0 '{background}' is this LABELMAP SEG's background, not a segment; "
            f"segments are {_listing(names)}"
        )
    if segment is None:
        if len(names) != 1:
            raise MaskError(f"{path}: {len(names)} segments ({_listing(names)}); say which one")
        return next(iter(names))
    if isinstance(segment, int) and segment in names:
        return segment
    if isinstance(segment, str):
        matching = [n for n, name in names.items() if name.lower() == segment.lower()]
        if len(matching) > 1:
            numbers = ", ".join(str(n) for n in matching)
            raise MaskError(
                f"{path}: label {segment!r} names segments {numbers}; give the number of the one meant"
            )
        if matching:
            return matching[0]
    raise MaskError(f"{path}: no segment {segment!r}; segments are {_listing(names)}")


def _listing(names: dict[int, str], shown: int = 10) -> str:
    listed = [f"{n} '{name}'" for n, name in sorted(names.items())]
    more = f", and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more


def _segment_labels(ds: pydicom.Dataset) -> dict[int, str]:
    """Segment number -> label, in one pass over the Segment Sequence (a SEG may declare
    thousands: looking each number up again would cost the square of their count)."""
    return {int(item.SegmentNumber): str(item.get("SegmentLabel", "")) for item in ds.SegmentSequence}


def read_dicom_seg(
    path: str | os.PathLike[str], reference: sitk.Image, segment: int | str | None = None
) -> sitk.Image:
    """One segment of a DICOM SEG as a uint8 mask on ``reference``'s grid.

    highdicom reads the SEG as a volume. A SEG highdicom cannot index (archive SEGs whose
    dimension index holds the plane position only, as dcm4che wrote TCIA's) is read by each
    frame's own plane position and segment number instead. On a 2D ``reference`` (MG, US, CR)
    the segment's one frame is the mask, pixel for pixel. FRACTIONAL segments are inside where
    the fraction is at least 0.5 (IBSI's partial-volume rule). A LABELMAP SEG's segment 0 is its
    background, not a segment. :func:`mask_source` tells which producer wrote the SEG and how it
    was read.

    Parameters
    ----------
    path
        The SEG file.
    reference
        The image the mask is wanted on (usually the series the SEG references).
    segment
        Segment number or label; may be left out when the SEG holds one segment.
    """
    try:
        ds = pydicom.dcmread(str(path))
        if ds.get("Modality") != "SEG" or "SegmentSequence" not in ds:
            raise ValueError("no Segment Sequence: not a Segmentation object")
        names = _segment_labels(ds)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a named error
        raise MaskError(f"{path}: not a readable DICOM SEG ({type(exc).__name__}: {exc})") from None
    if "TotalPixelMatrixRows" in ds:
        raise MaskError(f"{path}: a SEG of a whole-slide microscopy image; radimt reads radiology images")
    background = names.pop(0, None)  # a LABELMAP's segment 0
    number = _segment_number(names, segment, path, background)
    check_frame_of_reference(reference, str(ds.get("FrameOfReferenceUID", "")) or None, what="segmentation")
    kind = str(ds.get("SegmentationType", "BINARY")).upper()
    if reference.GetDimension() == 2:
        mask, reading = _seg_on_planar(ds, number, reference, path), "the segment's 2D frame, pixel for pixel"
    else:
        try:
            image, reading = _seg_volume(ds, number), "highdicom volume"
        except Exception as exc:  # noqa: BLE001 - highdicom cannot index it: the frames say where they lie
            log.info(
                "%s: highdicom cannot read it as a volume (%s); placing its frames by position", path, exc
            )
            try:
                image, reading = _seg_by_frame_positions(ds, number), "frames placed by their plane positions"
            except MaskError as why:
                raise MaskError(
                    f"{path}: segment {number} does not form a regular volume ({exc}; "
                    f"by frame positions: {why})"
                ) from None
        mask = (
            resample_mask(image, reference, method="nearest")
            if not same_grid(image, reference)
            else _tagged(image, reference)
        )
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise MaskError(
            f"{path}: segment {number} '{names[number]}' has no voxel inside the reference image "
            "(it lies elsewhere in the patient, or is empty); read it onto the series it was drawn on"
        )
    fraction = " (fractions of at least 0.5)" if kind == "FRACTIONAL" else ""
    return _with_source(
        mask, ds, path, f"DICOM SEG {kind}{fraction}, segment {number} '{names[number]}'", reading
    )


#: The metadata key of a mask read from a file: where it came from, as JSON (see mask_source).
MASK_SOURCE_KEY = "radimt_mask_source"


def _with_source(
    mask: sitk.Image, ds: pydicom.Dataset | None, path: str | os.PathLike[str], what: str, reading: str
) -> sitk.Image:
    source = {"file": os.path.basename(os.fspath(path)), "object": what, "reading": reading}
    if ds is not None:
        source["producer"] = " ".join(
            str(ds.get(k, "")).strip() for k in ("Manufacturer", "ManufacturerModelName") if ds.get(k)
        )
        source["software"] = "\\".join(str(v) for v in _values(ds.get("SoftwareVersions")))
    mask.SetMetaData(MASK_SOURCE_KEY, json.dumps(source))
    return mask


def _values(value: object) -> list[object]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]


def mask_source(mask: sitk.Image) -> dict[str, str]:
    """Where a mask read by radimt came from: the file, the object (SEG type and segment, or
    RTSTRUCT ROI), its producer and software, and how it was read; ``{}`` for other masks.

    Examples
    --------
    >>> mask_source(sitk.Image(2, 2, sitk.sitkUInt8))
    {}
    """
    if not mask.HasMetaDataKey(MASK_SOURCE_KEY):
        return {}
    return dict(json.loads(mask.GetMetaData(MASK_SOURCE_KEY)))


def _seg_volume(ds: pydicom.Dataset, number: int) -> sitk.Image:
    """A segment as highdicom assembles it (its own grid); fractions of at least 0.5 inside."""
    import highdicom as hd  # 0.2 s to import: only when a SEG is read or written

    seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    volume = seg.get_volume(segment_numbers=[number], combine_segments=False, dtype=np.float32)
    array = np.asarray(volume.array)[..., 0]
    affine = np.asarray(volume.affine, float)
    columns = [affine[:3, 2], affine[:3, 1], affine[:3, 0]]  # x = column, y = row, z = slice
    spacing = [float(np.linalg.norm(c)) for c in columns]
    image = sitk.GetImageFromArray((array >= 0.5).astype(np.uint8))
    image.SetSpacing(spacing)
    image.SetOrigin(affine[:3, 3].tolist())
    image.SetDirection(
        np.column_stack([c / s for c, s in zip(columns, spacing, strict=True)]).ravel().tolist()
    )
    return image


def _seg_on_planar(ds: pydicom.Dataset, number: int, reference: sitk.Image, path) -> sitk.Image:
    """A segment of a SEG on a 2D image (MG, US, CR): its one frame, which must have the
    image's rows and columns."""
    frames = _segment_frames(ds, number)
    if len(frames) != 1:
        raise MaskError(
            f"{path}: segment {number} has {len(frames)} frames; a mask on a 2D image has one "
            "(read a multi-frame SEG onto its 3D series)"
        )
    frame = frames[0][1]
    if frame.shape != tuple(reference.GetSize()[::-1]):
        raise MaskError(
            f"{path}: the segment's frame is {frame.shape[1]}x{frame.shape[0]} pixels, the image "
            f"{reference.GetSize()[0]}x{reference.GetSize()[1]}: not a SEG of this image"
        )
    mask = sitk.GetImageFromArray(frame.astype(np.uint8))
    mask.CopyInformation(reference)
    return mask


def _segment_frames(ds: pydicom.Dataset, number: int) -> list[tuple[int, np.ndarray]]:
    """The frames of one segment, (frame index, inside) each: BINARY non-zero, FRACTIONAL at
    least half the maximum, LABELMAP equal to the segment number."""
    kind = str(ds.get("SegmentationType", "BINARY")).upper()
    pixels = np.asarray(ds.pixel_array)
    pixels = pixels.reshape(-1, *pixels.shape[-2:])
    maximum = float(ds.get("MaximumFractionalValue") or 1) if kind == "FRACTIONAL" else 1.0
    out = []
    for i in range(pixels.shape[0]):
        if kind == "LABELMAP":
            out.append((i, pixels[i] == number))
            continue
        ident = _frame_item(ds, i, "SegmentIdentificationSequence")
        if ident is None or int(ident.ReferencedSegmentNumber) != number:
            continue
        out.append((i, pixels[i] >= 0.5 * maximum if kind == "FRACTIONAL" else pixels[i] > 0))
    return out


def _frame_item(ds: pydicom.Dataset, i: int, group: str) -> pydicom.Dataset | None:
    """Frame ``i``'s item of a functional group: its own, else the shared one."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    for owner in (per_frame[i] if i < len(per_frame) else None, shared[0] if shared else None):
        if owner is not None and owner.get(group):
            return owner.get(group)[0]
    return None


def _seg_by_frame_positions(ds: pydicom.Dataset, number: int) -> sitk.Image:
    """A segment built from its frames' Plane Position, Plane Orientation and Pixel Measures,
    without any dimension index: frames lie on a regular lattice along the plane normal
    (missing planes are empty)."""
    frames = _segment_frames(ds, number)
    positions = []
    orientation, spacing = None, None
    for i, _ in frames:
        plane, orient, measures = (
            _frame_item(ds, i, g)
            for g in ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence")
        )
        if plane is None or orient is None or measures is None:
            raise MaskError(f"frame {i + 1} has no plane position, orientation or pixel spacing")
        this = np.asarray(orient.ImageOrientationPatient, float)
        if orientation is not None and not np.allclose(this, orientation, atol=1e-4):
            raise MaskError("its frames lie in planes of different orientations")
        orientation, spacing = this, measures
        positions.append(np.asarray(plane.ImagePositionPatient, float))
    if not frames or orientation is None or spacing is None:
        raise MaskError(f"no frame of segment {number}")
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    points = np.asarray(positions)
    depth = points @ normal
    in_plane = points - np.outer(depth, normal)
    if np.abs(in_plane - in_plane[0]).max() > 1e-2:
        raise MaskError("its frames are shifted within their planes")
    levels = np.unique(np.round(depth, 3))
    steps = np.diff(levels)
    if steps.size:
        step = float(steps.min())
        ratios = steps / step
        if np.abs(ratios - np.round(ratios)).max() > 1e-2:
            raise MaskError(f"its planes are not evenly spaced ({sorted(set(np.round(steps, 3)))} mm apart)")
    else:
        step = float(spacing.get("SpacingBetweenSlices") or spacing.get("SliceThickness") or 1.0)
    slices = np.round((depth - levels[0]) / step).astype(int)
    rows, cols = frames[0][1].shape
    volume = np.zeros((int(slices.max()) + 1, rows, cols), np.uint8)
    for k, (_, inside) in zip(slices, frames, strict=True):
        volume[k] |= inside.astype(np.uint8)
    pixel = [float(v) for v in spacing.PixelSpacing]  # row spacing (between rows), column spacing
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((pixel[1], pixel[0], step))
    image.SetOrigin(points[int(np.argmin(depth))].tolist())
    image.SetDirection(np.column_stack([row, column, normal]).ravel().tolist())
    return image


def _tagged(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    out = sitk.Cast(mask, sitk.sitkUInt8)
    out.CopyInformation(reference)
    if reference.HasMetaDataKey(FRAME_OF_REFERENCE_KEY):
        out.SetMetaData(FRAME_OF_REFERENCE_KEY, reference.GetMetaData(FRAME_OF_REFERENCE_KEY))
    return out


def read_rtstruct(
    path: str | os.PathLike[str], reference: sitk.Image, roi: int | str | None = None
) -> sitk.Image:
    """One ROI of an RT Structure Set, rasterised onto ``reference`` (3D) as a uint8 mask.

    Closed planar contours are filled on the slice they lie in (even-odd rule, so holes drawn
    as inner contours stay holes). Contours must lie in ``reference``'s slice planes. ``roi``
    (number or name) may be left out when the set holds one ROI. A structure set whose
    FrameOfReferenceUID differs from the image's is read when it names the image's own series
    as the one drawn on (rt-utils wrote such sets before 2023), with a warning and a note in
    :func:`mask_source`.
    """
    try:
        ds = pydicom.dcmread(str(path), force=True)
        names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    except Exception as exc:  # noqa: BLE001 - any parse failure is a named error
        raise MaskError(f"{path}: not a readable RT Structure Set ({type(exc).__name__}: {exc})") from None
    if "ROIContourSequence" not in ds:
        raise MaskError(f"{path}: not an RT Structure Set (no ROIContourSequence)")
    number = _segment_number(names, roi, path)
    frames = {
        int(r.ROINumber): str(r.get("ReferencedFrameOfReferenceUID", "")) for r in ds.StructureSetROISequence
    }
    reading = "closed planar contours filled on their slices (even-odd rule)"
    if frames.get(number):
        try:
            check_frame_of_reference(reference, frames[number], what=f"ROI '{names[number]}'")
        except FrameOfReferenceError:
            series = reference.GetMetaData(SERIES_UID_KEY) if reference.HasMetaDataKey(SERIES_UID_KEY) else ""
            if not series or series not in _referenced_series(ds):
                raise
            note = (
                f"its FrameOfReferenceUID {frames[number]} is not the image's "
                f"{reference.GetMetaData(FRAME_OF_REFERENCE_KEY)}, but it names this very series "
                f"({series}) as the one drawn on, as rt-utils wrote them before 2023: accepted"
            )
            log.warning("%s: %s", path, note)
            reading += f"; {note}"
    contours = next((c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number), None)
    where = f"{path}: ROI '{names[number]}'"
    closed = [
        _contour_points(c, n, where)
        for n, c in enumerate(contours.get("ContourSequence") or [] if contours is not None else [], 1)
        if str(c.get("ContourGeometricType", "")).upper() == "CLOSED_PLANAR"
    ]
    if not closed:
        raise MaskError(f"{where} holds no closed planar contours")
    mask = _rasterise(closed, reference, where)
    return _with_source(mask, ds, path, f"RTSTRUCT ROI {number} '{names[number]}'", reading)


def _referenced_series(ds: pydicom.Dataset) -> set[str]:
    """The SeriesInstanceUIDs a structure set says its contours were drawn on."""
    return {
        str(series.SeriesInstanceUID)
        for frame in ds.get("ReferencedFrameOfReferenceSequence") or []
        for study in frame.get("RTReferencedStudySequence") or []
        for series in study.get("RTReferencedSeriesSequence") or []
        if "SeriesInstanceUID" in series
    }


def _contour_points(contour: pydicom.Dataset, n: int, where: str) -> np.ndarray:
    """A contour's ContourData as (n, 3) LPS points, or a MaskError naming the contour."""
    try:
        values = np.asarray(contour.get("ContourData") or [], float).ravel()
    except (TypeError, ValueError) as exc:
        raise MaskError(
            f"{where}, contour {n}: ContourData holds values that are not numbers ({exc})"
        ) from None
    if values.size == 0 or values.size % 3:
        raise MaskError(
            f"{where}, contour {n}: ContourData holds {values.size} numbers, not x, y, z triples; "
            "the structure set is damaged: export it again from the tool that drew it"
        )
    if not np.isfinite(values).all():
        raise MaskError(
            f"{where}, contour {n}: a ContourData value is not a finite number "
            f"({values[~np.isfinite(values)][0]}); export the structure set again"
        )
    return values.reshape(-1, 3)


def _to_index(reference: sitk.Image, points: np.ndarray) -> np.ndarray:
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    return (np.linalg.solve(direction, (points - reference.GetOrigin()).T).T) / reference.GetSpacing()


def _rasterise(contours: Sequence[np.ndarray], reference: sitk.Image, label: str) -> sitk.Image:
    if reference.GetDimension() != 3:
        raise MaskError(f"{label}: RTSTRUCT contours need a 3D reference image")
    size = reference.GetSize()
    mask = np.zeros(size[::-1], bool)
    placed = 0
    for points in contours:
        index = _to_index(reference, points)
        k = int(round(float(index[:, 2].mean())))
        if np.abs(index[:, 2] - k).max() > 0.5:
            raise FrameOfReferenceError(
                f"{label}: a contour does not lie in one slice plane of the reference image; "
                "rasterise it onto the series it was drawn on"
            )
        if not 0 <= k < size[2]:
            continue
        lo = np.maximum(np.floor(index[:, :2].min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(index[:, :2].max(axis=0)).astype(int) + 1, np.array(size[:2]))
        if np.any(hi <= lo):
            continue
        xs, ys = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]))
        inside = PolygonPath(index[:, :2]).contains_points(np.column_stack([xs.ravel(), ys.ravel()]))
        block = mask[k, lo[1] : hi[1], lo[0] : hi[0]]
        block ^= inside.reshape(block.shape)
        placed += 1
    if not placed or not mask.any():
        raise MaskError(f"{label}: no contour falls inside the reference image")
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return _tagged(image, reference)
