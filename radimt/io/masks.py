"""Masks in and out: NIfTI/NRRD (SimpleITK), DICOM SEG (highdicom), RTSTRUCT (read)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from matplotlib.path import Path as PolygonPath
from pydicom.sr.codedict import codes

from radimt._version import __version__
from radimt.dicom.geometry import VolumeGeometry, order_slices
from radimt.dicom.header import Frame
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.uids import derived_uid
from radimt.errors import FrameOfReferenceError, MaskError
from radimt.grids import FRAME_OF_REFERENCE_KEY, check_frame_of_reference, same_grid
from radimt.io.atomic import atomic_path
from radimt.io.deidentify import deidentify
from radimt.segment import resample_mask

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
        sitk.WriteImage(sitk.Cast(mask, sitk.sitkUInt8), tmp, useCompression=True)


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
    return mask


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


def _segment_number(names: dict[int, str], segment: int | str | None, path) -> int:
    if segment is None:
        if len(names) != 1:
            raise MaskError(f"{path}: {len(names)} segments ({_listing(names)}); say which one")
        return next(iter(names))
    if isinstance(segment, int) and segment in names:
        return segment
    for number, name in names.items():
        if isinstance(segment, str) and name.lower() == segment.lower():
            return number
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
    frame's own plane position and segment number instead. FRACTIONAL segments are inside
    where the fraction is at least 0.5.

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
    number = _segment_number(names, segment, path)
    check_frame_of_reference(reference, str(ds.get("FrameOfReferenceUID", "")) or None, what="segmentation")
    try:
        image = _seg_volume(ds, number)
    except Exception as exc:  # noqa: BLE001 - highdicom cannot index it: the frames say where they lie
        log.info("%s: highdicom cannot read it as a volume (%s); placing its frames by position", path, exc)
        try:
            image = _seg_by_frame_positions(ds, number)
        except MaskError as why:
            raise MaskError(
                f"{path}: segment {number} does not form a regular volume ({exc}; by frame positions: {why})"
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
    return mask


def _seg_volume(ds: pydicom.Dataset, number: int) -> sitk.Image:
    """A segment as highdicom assembles it (its own grid)."""
    seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    volume = seg.get_volume(segment_numbers=[number], combine_segments=True, dtype=np.uint8)
    affine = np.asarray(volume.affine, float)
    columns = [affine[:3, 2], affine[:3, 1], affine[:3, 0]]  # x = column, y = row, z = slice
    spacing = [float(np.linalg.norm(c)) for c in columns]
    image = sitk.GetImageFromArray((np.asarray(volume.array) > 0).astype(np.uint8))
    image.SetSpacing(spacing)
    image.SetOrigin(affine[:3, 3].tolist())
    image.SetDirection(
        np.column_stack([c / s for c, s in zip(columns, spacing, strict=True)]).ravel().tolist()
    )
    return image


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
    kind = str(ds.get("SegmentationType", "BINARY")).upper()
    if kind not in ("BINARY", "FRACTIONAL"):
        raise MaskError(f"a {kind} SEG needs its dimension index")
    frames = np.asarray(ds.pixel_array)
    frames = frames.reshape(-1, *frames.shape[-2:])
    positions, chosen = [], []
    orientation, spacing = None, None
    for i in range(frames.shape[0]):
        ident = _frame_item(ds, i, "SegmentIdentificationSequence")
        if ident is None or int(ident.ReferencedSegmentNumber) != number:
            continue
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
        chosen.append(i)
    if not chosen or orientation is None or spacing is None:
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
    rows, cols = frames.shape[-2:]
    volume = np.zeros((int(slices.max()) + 1, rows, cols), np.uint8)
    maximum = float(ds.get("MaximumFractionalValue") or 1) if kind == "FRACTIONAL" else 1.0
    for k, i in zip(slices, chosen, strict=True):
        inside = frames[i] >= 0.5 * maximum if kind == "FRACTIONAL" else frames[i] > 0
        volume[k] |= inside.astype(np.uint8)
    pixel = [float(v) for v in spacing.PixelSpacing]  # row spacing (between rows), column spacing
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((pixel[1], pixel[0], step))
    first = int(np.argmin(depth))
    image.SetOrigin(points[first].tolist())
    image.SetDirection(np.column_stack([row, column, normal]).ravel().tolist())
    return image


def _tagged(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    out = sitk.Cast(mask, sitk.sitkUInt8)
    out.CopyInformation(reference)
    if reference.HasMetaDataKey(FRAME_OF_REFERENCE_KEY):
        out.SetMetaData(FRAME_OF_REFERENCE_KEY, reference.GetMetaData(FRAME_OF_REFERENCE_KEY))
    return out


def read_rtstruct(path: str | os.PathLike[str], reference: sitk.Image, roi: int | str) -> sitk.Image:
    """One ROI of an RT Structure Set, rasterised onto ``reference`` (3D) as a uint8 mask.

    Closed planar contours are filled on the slice they lie in (even-odd rule, so holes drawn
    as inner contours stay holes). Contours must lie in ``reference``'s slice planes.
    """
    ds = pydicom.dcmread(str(path), force=True)
    if "ROIContourSequence" not in ds:
        raise MaskError(f"{path}: not an RT Structure Set (no ROIContourSequence)")
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    number = _segment_number(names, roi, path)
    frames = {
        int(r.ROINumber): str(r.get("ReferencedFrameOfReferenceUID", "")) for r in ds.StructureSetROISequence
    }
    if frames.get(number):
        check_frame_of_reference(reference, frames[number], what=f"ROI '{names[number]}'")
    contours = next((c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number), None)
    where = f"{path}: ROI '{names[number]}'"
    closed = [
        _contour_points(c, n, where)
        for n, c in enumerate(contours.get("ContourSequence") or [] if contours is not None else [], 1)
        if str(c.get("ContourGeometricType", "")).upper() == "CLOSED_PLANAR"
    ]
    if not closed:
        raise MaskError(f"{where} holds no closed planar contours")
    return _rasterise(closed, reference, where)


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
