"""Masks from every producer: DICOM SEG and RTSTRUCT as highdicom, dcmqi, PixelMed, MIM, rt-utils
and archives (dcm4che) write them, read onto their images and compared with an independent
reading (each frame where its plane position says; each contour filled scan line by scan line).

The files are real (tests/data/masks, with their licences; the rest of
../shared/realdata/masks_other_tools when present)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.dicom import read_planar, read_volume
from radimt.errors import FrameOfReferenceError, MaskError
from radimt.io import mask_source, read_dicom_mask, read_dicom_seg, read_rtstruct

MASKS = Path(__file__).parent / "data" / "masks"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "masks_other_tools"


def _volume(folder: Path) -> sitk.Image:
    [series] = radimt.scan(folder)
    return read_volume(series)


# -- an independent reading ------------------------------------------------------------------


def _frame_item(ds: pydicom.Dataset, i: int, group: str):
    for owner in (ds.PerFrameFunctionalGroupsSequence[i], ds.SharedFunctionalGroupsSequence[0]):
        if group in owner:
            return owner[group].value[0]
    return None


def _frames_by_position(ds: pydicom.Dataset, number: int, reference: sitk.Image) -> np.ndarray:
    """The segment's voxels on ``reference``: every frame of it (by its Segment Identification,
    or its label values in a LABELMAP) copied where its Plane Position lies on the reference."""
    kind = ds.SegmentationType
    pixels = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    out = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    for i, frame in enumerate(pixels):
        if kind == "LABELMAP":
            inside = frame == number
        else:
            if int(_frame_item(ds, i, "SegmentIdentificationSequence").ReferencedSegmentNumber) != number:
                continue
            limit = 0.5 * float(ds.MaximumFractionalValue) if kind == "FRACTIONAL" else 0.5
            inside = frame >= limit
        position = [float(v) for v in _frame_item(ds, i, "PlanePositionSequence").ImagePositionPatient]
        col, row, k = np.round(reference.TransformPhysicalPointToContinuousIndex(position)).astype(int)
        if 0 <= k < out.shape[0]:  # a frame of a slice the reference series does not hold
            out[k, row : row + ds.Rows, col : col + ds.Columns] |= inside
    return out


def _scanline_fill(points: np.ndarray, reference: sitk.Image) -> tuple[int, np.ndarray]:
    """A closed contour filled on its slice: pixel centres between pairs of edge crossings of
    each row (even-odd), in the reference's index space."""
    index = np.array([reference.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in points])
    k = int(round(index[:, 2].mean()))
    width, height = reference.GetSize()[:2]
    plane = np.zeros((height, width), bool)
    x0, y0 = index[:, 0], index[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for row in range(height):
        crossing = (y0 <= row) != (y1 <= row)
        xs = np.sort(
            x0[crossing]
            + (row - y0[crossing]) * (x1[crossing] - x0[crossing]) / (y1[crossing] - y0[crossing])
        )
        for left, right in zip(xs[::2], xs[1::2], strict=True):
            columns = np.arange(max(0, int(np.ceil(left))), min(width, int(np.floor(right)) + 1))
            plane[row, columns[(columns >= left) & (columns <= right)]] ^= True
    return k, plane


def _rtstruct_reading(ds: pydicom.Dataset, number: int, reference: sitk.Image) -> np.ndarray:
    out = np.zeros(sitk.GetArrayViewFromImage(reference).shape, bool)
    [roi] = [c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number]
    for contour in roi.ContourSequence:
        k, plane = _scanline_fill(np.asarray(contour.ContourData, float).reshape(-1, 3), reference)
        if 0 <= k < out.shape[0]:
            out[k] ^= plane
    return out.astype(np.uint8)


# -- what each producer writes (vendored files) ----------------------------------------------


def test_a_true_fractional_seg_is_read_as_fractions_from_one_half():
    """highdicom's FRACTIONAL SEG with values up to 128/255: combined as uint8 it was refused,
    and rounded it would be empty."""
    path = MASKS / "highdicom" / "seg_image_ct_true_fractional.dcm"
    reference = _volume(MASKS / "highdicom" / "images_CT2_contig")
    mask = read_dicom_seg(path, reference)
    expected = _frames_by_position(pydicom.dcmread(path), 1, reference)
    assert expected.sum() > 0
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), expected)
    assert "FRACTIONAL (fractions of at least 0.5)" in mask_source(mask)["object"]


def test_a_2d_seg_on_a_cr_image_is_read_pixel_for_pixel():
    path = MASKS / "highdicom" / "seg_image_cr_binary.dcm"
    [series] = radimt.scan(MASKS / "highdicom" / "images_CR1")
    image = read_planar(series).image
    mask = read_dicom_seg(path, image)
    assert mask.GetDimension() == 2
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), pydicom.dcmread(path).pixel_array > 0)
    wrong = sitk.Image(20, 16, sitk.sitkUInt8)
    with pytest.raises(MaskError, match="16x16 pixels, the image 20x16"):
        read_dicom_seg(path, wrong)


def test_a_labelmap_background_is_not_a_segment():
    """dcmqi's sparse LABELMAP lists segment 0 'Background'; asking for it returned the liver."""
    path = MASKS / "dcmqi" / "sparse-labelmap-ppv5.dcm"
    reference = _volume(MASKS / "dcmqi" / "24x38x3" / "image")
    liver = read_dicom_seg(path, reference)  # the one real segment, without naming it
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(liver), _frames_by_position(pydicom.dcmread(path), 1, reference)
    )
    for background in (0, "Background"):
        with pytest.raises(MaskError, match=r"segment 0 'Background' is this LABELMAP SEG's background"):
            read_dicom_seg(path, reference, background)


def test_a_seg_read_onto_a_reference_elsewhere_in_the_patient_is_refused():
    path = MASKS / "highdicom" / "seg_image_ct_true_fractional.dcm"
    reference = _volume(MASKS / "highdicom" / "images_CT2_contig")
    reference.SetOrigin([v + 300.0 for v in reference.GetOrigin()])
    with pytest.raises(MaskError, match="has no voxel inside the reference image"):
        read_dicom_seg(path, reference)


def test_a_label_shared_by_two_segments_is_refused(tmp_path):
    ds = pydicom.dcmread(MASKS / "highdicom" / "seg_image_ct_binary_overlap.dcm")
    for item in ds.SegmentSequence:
        item.SegmentLabel = "lesion"
    ds.save_as(tmp_path / "shared_label.dcm")
    reference = _volume(MASKS / "highdicom" / "images_CT2_contig")
    with pytest.raises(MaskError, match=r"label 'lesion' names segments 1, 2; give the number"):
        read_dicom_seg(tmp_path / "shared_label.dcm", reference, "lesion")
    assert sitk.GetArrayFromImage(read_dicom_seg(tmp_path / "shared_label.dcm", reference, 2)).sum() > 0


def _rt_utils_ct(series_uid: str) -> sitk.Image:
    """The grid of rt-utils' two-slice CT (its headers: 512x512, 0.488281 mm, z = 60 and 65 mm)."""
    reference = sitk.Image(512, 512, 2, sitk.sitkUInt8)
    reference.SetSpacing((0.488281, 0.488281, 5.0))
    reference.SetOrigin((-125.0, -125.0, 60.0))
    reference.SetMetaData("0020|0052", "1.2.840.113619.2.405.3.84541899.902.1605198123.912.6060.1")
    reference.SetMetaData("0020|000e", series_uid)
    return reference


def test_an_rtstruct_with_a_new_frame_of_reference_over_its_own_series_is_read_and_said():
    path = MASKS / "rt-utils" / "rt.dcm"
    own = "2.16.840.1.114362.1.11940992.23790159890.563423471.893.88"
    mask = read_rtstruct(path, _rt_utils_ct(own))
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(mask), _rtstruct_reading(pydicom.dcmread(path), 1, _rt_utils_ct(own))
    )
    source = mask_source(mask)
    assert source["producer"] == "Qurit Lab rt-utils" and "names this very series" in source["reading"]
    with pytest.raises(FrameOfReferenceError):
        read_rtstruct(path, _rt_utils_ct("1.2.3.4"))  # another series: coordinates cannot carry over


def test_the_producer_and_the_reading_path_are_said(tmp_path):
    image = _volume(MASKS / "dcmqi" / "24x38x3" / "image")
    seg = mask_source(read_dicom_mask(MASKS / "dcmqi" / "sparse-labelmap-ppv5.dcm", image))
    assert seg["producer"].startswith("QIICR") and seg["reading"] == "highdicom volume"
    assert seg["object"] == "DICOM SEG LABELMAP, segment 1 'Liver'"
    (tmp_path / "ge.dcm").write_bytes(gzip.decompress((MASKS / "ge_breast_seg" / "seg.dcm.gz").read_bytes()))
    reference = sitk.Image(256, 256, 60, sitk.sitkUInt8)  # the GE DCE grid (its headers)
    reference.SetSpacing((0.703125, 0.703125, 2.0))
    reference.SetOrigin((157.800003, -106.699997, 78.0))
    reference.SetDirection((0, 0, -1, 1, 0, 0, 0, -1, 0))
    archive = mask_source(read_dicom_mask(tmp_path / "ge.dcm", reference))
    assert archive["producer"].startswith("GE MEDICAL SYSTEMS")
    assert archive["reading"] == "frames placed by their plane positions"


# -- every file of masks_other_tools onto its images -----------------------------------------

SEG_CASES = [  # (SEG, its images, segment) - images None: the SEG's own frames' grid
    ("highdicom/seg_image_ct_binary.dcm", "highdicom/images_CT2_contig", 1),
    ("highdicom/seg_image_ct_binary_fractional.dcm", "highdicom/images_CT2_contig", 1),
    ("highdicom/seg_image_ct_true_fractional.dcm", "highdicom/images_CT2_contig", 1),
    ("highdicom/seg_image_ct_binary_overlap.dcm", "highdicom/images_CT2_contig", 1),
    ("highdicom/seg_image_ct_binary_overlap.dcm", "highdicom/images_CT2_contig", 2),
    ("highdicom/seg_image_ct_binary_single_frame.dcm", "highdicom/images_CT_small", 1),
    ("dcmqi/23x38x3/seg/label.seg", "dcmqi/23x38x3/image", 1),
    ("dcmqi/24x38x3/seg/label.seg", "dcmqi/24x38x3/image", 1),
    ("dcmqi/sparse-labelmap-ppv5.dcm", "dcmqi/24x38x3/image", 1),
    ("dcmqi/liver.dcm", None, 1),
    *(("dcmqi/partial_overlaps.dcm", None, n) for n in range(1, 6)),
    ("pydicom/liver_1frame.dcm", None, 1),
    ("ibsi_digital_phantom_seg/dicom/mask/mask.dcm", "ibsi_digital_phantom_seg/dicom/image", 1),
]


def _own_grid(ds: pydicom.Dataset) -> sitk.Image:
    """A grid through the SEG's own frames (for SEGs shipped without their images)."""
    orientation = np.asarray(_frame_item(ds, 0, "PlaneOrientationSequence").ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array(
        [
            _frame_item(ds, i, "PlanePositionSequence").ImagePositionPatient
            for i in range(int(ds.get("NumberOfFrames", 1)))
        ],
        float,
    )
    depths = np.unique(np.round(positions @ normal, 3))
    measures = _frame_item(ds, 0, "PixelMeasuresSequence")
    step = float(np.diff(depths).min()) if depths.size > 1 else float(measures.SliceThickness)
    grid = sitk.Image(
        int(ds.Columns), int(ds.Rows), int(round((depths[-1] - depths[0]) / step)) + 1, sitk.sitkUInt8
    )
    row, column = (float(v) for v in measures.PixelSpacing)
    grid.SetSpacing((column, row, step))
    grid.SetOrigin(positions[int(np.argmin(positions @ normal))].tolist())
    grid.SetDirection(np.column_stack([orientation[:3], orientation[3:], normal]).ravel().tolist())
    return grid


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/realdata/masks_other_tools is not here")
@pytest.mark.parametrize(("seg", "images", "segment"), SEG_CASES, ids=[f"{c[0]}#{c[2]}" for c in SEG_CASES])
def test_every_shared_seg_gives_the_independent_reading(seg, images, segment):
    ds = pydicom.dcmread(SHARED / seg)
    reference = _volume(SHARED / images) if images else _own_grid(ds)
    mask = read_dicom_seg(SHARED / seg, reference, segment)
    expected = _frames_by_position(ds, segment, reference)
    assert expected.sum() > 0
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), expected)
    assert mask_source(mask)["producer"]


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/realdata/masks_other_tools is not here")
@pytest.mark.parametrize(
    ("rtstruct", "roi"),
    [("rt-utils/mock_data/rt.dcm", 1), *(("rt-utils/dummy_rt.dcm", n) for n in (1, 2, 3, 4))],
)
def test_every_shared_rtstruct_gives_the_scanline_fill(rtstruct, roi):
    """rt-utils' and MIM's structure sets on rt-utils' CT, voxel for voxel (MIM's contours reach
    one plane past the CT's two slices)."""
    reference = _volume(SHARED / "rt-utils" / "mock_data")
    mask = read_rtstruct(SHARED / rtstruct, reference, roi)
    expected = _rtstruct_reading(pydicom.dcmread(SHARED / rtstruct), roi, reference)
    assert expected.sum() > 0
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), expected)


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/realdata/masks_other_tools is not here")
def test_a_slide_microscopy_seg_is_refused_by_name():
    reference = _volume(SHARED / "highdicom" / "images_CT2_contig")
    with pytest.raises(MaskError, match="whole-slide microscopy"):
        read_dicom_seg(SHARED / "highdicom" / "seg_image_sm_control_labelmap.dcm", reference, 1)
