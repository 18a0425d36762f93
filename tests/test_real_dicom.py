"""Loading real DICOM files from the ecosystem's own test corpora (pydicom, nibabel)."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.pixels import apply_modality_lut

import radimt
from radimt.dicom import read_volume
from radimt.errors import DicomReadError, MissingSliceError, MixedOrientationError, MixedStudyError
from tests.conftest import PYDICOM_DATA

DICOMDIR_TESTS = PYDICOM_DATA / "dicomdirtests"


def _sitk_series(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_real_ct_series_geometry_and_pixels_equal_simpleitk():
    folder = DICOMDIR_TESTS / "98892001" / "CT5N"  # 5 extension-less slices, stored in reverse order
    series = [s for s in radimt.scan(folder) if s.role == "ct"]
    assert len(series) == 1 and series[0].n_images == 5
    ours, ref = read_volume(series[0]), _sitk_series(folder)
    assert ours.GetSize() == ref.GetSize()
    np.testing.assert_allclose(ours.GetSpacing(), ref.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(ours.GetOrigin(), ref.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(ours.GetDirection(), ref.GetDirection(), atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref))



@pytest.mark.parametrize("chunk_bytes", [1, None])
def test_real_ct_whole_statistics_streamed_equal_simpleitks_volume(monkeypatch, chunk_bytes):
    """A real CT's rescale (int16 stored, intercept -1024) keeps the streamed statistics integer
    sums: a slice at a time or ~1 MB at a time, the mean and SD of SimpleITK's own volume."""
    from radimt.dicom import focus

    folder = DICOMDIR_TESTS / "98892001" / "CT5N"
    [series] = [s for s in radimt.scan(folder) if s.role == "ct"]
    assert {(f.slope, f.intercept) for f in series.frames} == {(1.0, -1024.0)}
    if chunk_bytes is not None:
        monkeypatch.setattr(focus, "_CHUNK_BYTES", chunk_bytes)  # every slice a chunk of its own
    mean, sd = focus.series_statistics(series)
    exact = sitk.GetArrayFromImage(_sitk_series(folder)).astype(np.int64)
    n, total, squares = exact.size, int(exact.sum()), int((exact * exact).sum())
    assert mean == total / n
    assert sd == pytest.approx(np.sqrt((squares * n - total * total) / (n * (n - 1))), rel=1e-15)

def test_scan_reads_extensionless_files_and_skips_dicomdir_and_text():
    from radimt.dicom.scan import scan_files

    stacks, skipped = scan_files(DICOMDIR_TESTS)
    reasons = {p.path.rsplit("/", 1)[-1]: p.reason for p in skipped}
    assert "DICOMDIR" in reasons["DICOMDIR"]
    assert "not DICOM" in reasons["README.txt"]
    # The TINY_ALPHA files are DICOM objects without an image.
    assert any("no image" in p.reason for p in skipped if "TINY_ALPHA" in p.path)
    numbers = {(s.modality, s.series_number) for s in stacks}
    assert {("CT", 5), ("CT", 2), ("MR", 700), ("CR", 1)} <= numbers


def test_real_series_with_a_gap_reports_missing_slices():
    # pydicom's CT2 holds 4 of an original series' slices: one 202 mm away from the other three.
    study = radimt.load_study(DICOMDIR_TESTS / "77654033" / "CT2")
    with pytest.raises(MissingSliceError, match=r"series 2 'Routine Brain'.*17106"):
        _ = study.ct


def test_real_multi_orientation_series_is_refused_as_one_volume():
    # MR series 2 of 98892003 is a three-plane pilot: forced to be the T1, it must not load.
    # The folder holds three studies of one patient, two with such a pilot: one must be chosen.
    with pytest.raises(MixedStudyError, match="3 studies in one folder both supply t1"):
        radimt.load_study(DICOMDIR_TESTS / "98892003", roles={"t1": "FAST PILOT"})
    first = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.133"
    study = radimt.load_study(DICOMDIR_TESTS / "98892003", roles={"t1": "FAST PILOT"}, study_uid=first)
    with pytest.raises(MixedOrientationError, match="orientations"):
        _ = study.t1


@pytest.mark.parametrize(
    "variant",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_expb.dcm",
    ],
)
def test_compressed_and_other_syntaxes_decode_to_the_same_pixels(variant, tmp_path):
    ref_series = radimt.scan(PYDICOM_DATA / "MR_small.dcm")[0]
    series = radimt.scan(PYDICOM_DATA / variant)[0]
    ref, ours = read_volume(ref_series), read_volume(series)
    assert ours.GetSize() == ref.GetSize() == (64, 64, 1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref))
    np.testing.assert_allclose(ours.GetOrigin(), ref.GetOrigin())


def test_uncompressed_fast_path_equals_pydicom_decoding():
    series = radimt.scan(PYDICOM_DATA / "CT_small.dcm")[0]
    assert series.first.header.pixel_offset is not None  # read straight from the file
    ds = pydicom.dcmread(PYDICOM_DATA / "CT_small.dcm")
    expected = apply_modality_lut(ds.pixel_array, ds)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(series))[0], expected)


def test_truncated_real_file_is_named(tmp_path):
    shutil.copy(PYDICOM_DATA / "MR_truncated.dcm", tmp_path / "slice")
    series = radimt.scan(tmp_path)
    with pytest.raises(DicomReadError, match=r"slice.*truncated"):
        read_volume(series[0])


def test_real_siemens_diffusion_b_values_from_private_header(siemens_dwi_dir):
    study = radimt.load_study(siemens_dwi_dir)
    assert [s.role for s in study.series] == ["dwi", "dwi"]
    dwi = study.dwi
    np.testing.assert_array_equal(dwi.b_values, [0.0, 1000.0])
    # Siemens mosaics: 48 slices of 128x128 tiled in one 896x896 image (pixels blanked by nibabel).
    assert [im.GetSize() for im in dwi.images] == [(128, 128, 48)] * 2
    assert dwi.series[1].gradient == pytest.approx((0.99997449, 0.00505012, -0.00505012))


def test_real_colour_images_become_grey():
    for name in ("examples_ybr_color.dcm", "examples_palette.dcm", "SC_rgb_rle_2frame.dcm"):
        path = PYDICOM_DATA / name
        ds = pydicom.dcmread(path)
        from radimt.dicom.header import read_frames
        from radimt.dicom.pixels import decode_file

        header = read_frames(str(path))[0].header
        grey = decode_file(str(path), header, name)
        assert grey.shape == (int(ds.get("NumberOfFrames", 1)), ds.Rows, ds.Columns)
        assert grey.dtype == np.float32 and 0 <= grey.min() and grey.max() <= 255
    # Pure red RGB (255, 0, 0) has BT.601 luma 0.299 * 255.
    header = read_frames(str(PYDICOM_DATA / "SC_rgb_rle_2frame.dcm"))[0].header
    grey = decode_file(str(PYDICOM_DATA / "SC_rgb_rle_2frame.dcm"), header, "rgb")
    assert grey[0, 0, 0] == pytest.approx(0.299 * 255, abs=0.01)
