"""Mask and seed I/O: NIfTI/NRRD and DICOM SEG round trips, highdicom's SEG, a real RTSTRUCT."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.errors import MaskError
from radimt.io import (
    read_dicom_seg,
    read_mask,
    read_rtstruct,
    read_seeds,
    write_dicom_seg,
    write_mask,
)
from radimt.io.deidentify import research_study_uid
from radimt.segment import segment_from_seed, subtraction
from radimt.synth.studies import write_mr_study
from tests.conftest import PYDICOM_DATA, highdicom_seg, small_spec


@pytest.fixture(scope="module")
def study_with_mask(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seg_study")
    spec = small_spec(noise=4.0)
    write_mr_study(str(folder), spec)
    study = radimt.load_study(folder)
    mask = segment_from_seed(subtraction(study.dce, 1), spec.lesion.centre)
    return study, mask


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_nifti_and_nrrd_round_trip(study_with_mask, tmp_path, suffix):
    _, mask = study_with_mask
    path = tmp_path / f"mask{suffix}"
    write_mask(mask, path)
    back = read_mask(path)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(mask))
    np.testing.assert_allclose(back.GetOrigin(), mask.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(back.GetDirection(), mask.GetDirection(), atol=1e-6)
    assert list(tmp_path.iterdir()) == [path]  # nothing temporary left behind


def test_dicom_seg_round_trip_references_the_source_series(study_with_mask, tmp_path):
    study, mask = study_with_mask
    series = study.dce.series[1]
    path = tmp_path / "lesion.seg.dcm"
    write_dicom_seg(mask, series, path, label="IMT", reproducible=True)
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and ds.SegmentSequence[0].SegmentLabel == "IMT"
    referenced = {
        i.ReferencedSOPInstanceUID for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == {f.header.sop_instance_uid for f in series.frames}
    back = read_dicom_seg(path, study.dce.phases[1])
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(mask))
    write_dicom_seg(mask, series, tmp_path / "again.dcm", label="IMT", reproducible=True)
    assert (tmp_path / "again.dcm").read_bytes() == path.read_bytes()  # deterministic on request
    grown = sitk.BinaryDilate(mask, [1, 1, 1])  # the lesion segmented again, differently
    write_dicom_seg(grown, series, tmp_path / "other.dcm", label="IMT", reproducible=True)
    other = pydicom.dcmread(tmp_path / "other.dcm")
    assert other.SOPInstanceUID != ds.SOPInstanceUID and other.SeriesInstanceUID != ds.SeriesInstanceUID


def test_dicom_seg_gets_new_unique_uids_by_default(study_with_mask, tmp_path):
    """Two SEG objects are two instances: by default each gets fresh UIDs from a UID generator,
    even for the very same mask; the references to the source images stay the same."""
    study, mask = study_with_mask
    series = study.dce.series[1]
    write_dicom_seg(mask, series, tmp_path / "a.dcm")
    write_dicom_seg(mask, series, tmp_path / "b.dcm")
    a, b = (pydicom.dcmread(tmp_path / n) for n in ("a.dcm", "b.dcm"))
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID"):
        assert a[keyword].value != b[keyword].value
        assert len(a[keyword].value) <= 64 and a[keyword].value.is_valid  # a well-formed DICOM UID
    dims = [[e.value for e in ds.iterall() if e.keyword == "DimensionOrganizationUID"] for ds in (a, b)]
    assert dims[0] and set(dims[0]).isdisjoint(dims[1])
    # de-identified: one research study for the study's results, not the source's (see deidentify)
    research = research_study_uid(series.first.header.study_uid, "anonymous")
    assert a.StudyInstanceUID == b.StudyInstanceUID == research


def test_dicom_seg_needs_the_series_grid(study_with_mask, tmp_path):
    study, mask = study_with_mask
    t2_series = study.series_for("t2")[0]
    shifted = sitk.Image(mask)
    shifted.SetOrigin([o + 5 for o in mask.GetOrigin()])
    with pytest.raises(MaskError, match="resample_mask"):
        write_dicom_seg(shifted, t2_series, tmp_path / "x.dcm")


def test_reads_a_seg_written_by_highdicom_itself(tmp_path):
    seg, reference, truth = highdicom_seg(tmp_path, ["tumour", "marker"])  # the marker: voxel (0, 0, 0)
    seg.save_as(tmp_path / "seg.dcm")
    mask = read_dicom_seg(tmp_path / "seg.dcm", reference, segment="tumour")
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), truth)
    with pytest.raises(MaskError, match="2 segments"):
        read_dicom_seg(tmp_path / "seg.dcm", reference)
    reference.SetMetaData("0020|0052", "9.9.9")
    with pytest.raises(radimt.RadimtError, match="frame of reference"):
        read_dicom_seg(tmp_path / "seg.dcm", reference, segment=1)


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def test_real_rtstruct_roi_is_rasterised_to_its_drawn_area():
    path = PYDICOM_DATA / "rtstruct.dcm"  # pydicom's real structure set: ROI 'patient' on 3 planes
    ds = pydicom.dcmread(path, force=True)
    reference = sitk.Image(260, 200, 4, sitk.sitkUInt8)
    reference.SetSpacing((2.0, 2.0, 10.0))
    reference.SetOrigin((-259.0, -199.0, -200.0))
    mask = read_rtstruct(path, reference, "patient")
    arr = sitk.GetArrayViewFromImage(mask)
    contours = ds.ROIContourSequence[0].ContourSequence
    for contour in contours:
        points = np.asarray(contour.ContourData, float).reshape(-1, 3)
        k = int(round((points[0, 2] + 200.0) / 10.0))
        assert arr[k].sum() * 4.0 == pytest.approx(_polygon_area(points), rel=0.02)
    assert arr[3].sum() == 0  # no contour on the fourth plane
    with pytest.raises(MaskError, match="no closed planar contours"):
        read_rtstruct(path, reference, "Isocenter 1")
    with pytest.raises(MaskError, match="no ROI|no segment"):
        read_rtstruct(path, reference, "liver")


def test_seeds_from_csv_and_slicer_markups(tmp_path):
    (tmp_path / "seeds.csv").write_text("lesion_id,x,y,z\n1,10.5,-20,3\n")
    (tmp_path / "index.csv").write_text("label,seed_i,seed_j,seed_k,seed_series\nA,4,5,6,7\n")
    markups = {
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "RAS",
                "controlPoints": [{"label": "F-1", "position": [1, 2, 3]}],
            },
            {
                "type": "Fiducial",
                "coordinateSystem": "LPS",
                "controlPoints": [{"label": "F-2", "position": [1, 2, 3]}],
            },
        ]
    }
    (tmp_path / "seeds.mrk.json").write_text(json.dumps(markups))
    [lps] = read_seeds(tmp_path / "seeds.csv")
    assert lps.point == (10.5, -20.0, 3.0) and not lps.is_index and lps.label == "1"
    [index] = read_seeds(tmp_path / "index.csv")
    assert index.is_index and index.point == (4, 5, 6) and index.series == "7"
    ras, already_lps = read_seeds(tmp_path / "seeds.mrk.json")
    assert ras.point == (-1.0, -2.0, 3.0) and already_lps.point == (1.0, 2.0, 3.0)
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    with pytest.raises(radimt.RadimtError, match="line 2"):
        read_seeds(tmp_path / "bad.csv")


def test_empty_or_unreadable_masks(tmp_path):
    empty = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    write_mask(empty, tmp_path / "empty.nii.gz")
    with pytest.raises(MaskError, match="empty"):
        read_mask(tmp_path / "empty.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(MaskError, match="cannot read"):
        read_mask(tmp_path / "junk.nii.gz")
    with pytest.raises(MaskError, match=".nii.gz"):
        write_mask(empty, tmp_path / "mask.png")
