"""Real files from pydicom-data: every codec against an independent decoder or its uncompressed twin."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

import radimt
from radimt.dicom import read_planar, read_volume
from radimt.dicom.header import read_frames
from radimt.dicom.pixels import decode_file


def _grey(name: str) -> np.ndarray:
    path = get_testdata_file(name)
    header = read_frames(path)[0].header
    return decode_file(path, header, name)


@pytest.mark.parametrize("name", ["JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm"])
def test_jpeg_lossless_equals_simpleitk_gdcm_decoding(name):
    ours = _grey(name)[0]
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(get_testdata_file(name)))
    np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))


@pytest.mark.parametrize(
    ("compressed", "reference"),
    [
        ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
        ("US1_J2KR.dcm", "US1_UNCR.dcm"),
        ("emri_small_RLE.dcm", "emri_small.dcm"),
        ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
        ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),
    ],
)
def test_lossless_variants_decode_to_the_uncompressed_pixels(compressed, reference):
    np.testing.assert_array_equal(_grey(compressed), _grey(reference))


def test_enhanced_ct_frames_are_placed_at_their_positions():
    path = get_testdata_file("eCT_Supplemental.dcm")
    [series] = radimt.scan(path)
    assert series.role == "ct" and series.n_images == 2
    volume = read_volume(series)
    ds = pydicom.dcmread(path)
    hu = sitk.GetArrayViewFromImage(volume)
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        position = [float(x) for x in item.PlanePositionSequence[0].ImagePositionPatient]
        index = volume.TransformPhysicalPointToIndex(position)
        assert index[:2] == (0, 0)
        groups = item if "PixelValueTransformationSequence" in item else ds.SharedFunctionalGroupsSequence[0]
        rescale = groups.PixelValueTransformationSequence[0]
        expected = ds.pixel_array[i] * float(rescale.RescaleSlope) + float(rescale.RescaleIntercept)
        np.testing.assert_array_equal(hu[index[2]], expected)
    # A right-handed frame: the slice axis is row cosines x column cosines.
    direction = np.array(volume.GetDirection()).reshape(3, 3)
    assert np.linalg.det(direction) == pytest.approx(1.0)


def test_real_ultrasound_regions_and_16_bit_palette():
    for name in ("JPGLosslessP14SV1_1s_1f_8b.dcm", "gdcm-US-ALOKA-16.dcm"):
        path = get_testdata_file(name)
        [series] = radimt.scan(path)
        assert series.role == "us"
        image = read_planar(series)
        region = pydicom.dcmread(path, stop_before_pixels=True).SequenceOfUltrasoundRegions
        largest = max(
            region,
            key=lambda r: (
                (r.RegionLocationMaxX1 - r.RegionLocationMinX0)
                * (r.RegionLocationMaxY1 - r.RegionLocationMinY0)
            ),
        )
        assert image.spacing_source == "UltrasoundRegion"
        assert image.image.GetSpacing() == pytest.approx(
            (10 * largest.PhysicalDeltaX, 10 * largest.PhysicalDeltaY)
        )
        grey = sitk.GetArrayViewFromImage(image.image)
        assert 0 <= grey.min() and grey.max() <= 255 and grey.std() > 1


def test_real_uncalibrated_images_refuse_to_guess_a_pixel_size():
    # RG1 is a CR image whose PixelSpacing is "0\\0"; US1 is ultrasound without regions.
    for name in ("RG1_UNCR.dcm", "US1_UNCR.dcm"):
        [series] = radimt.scan(get_testdata_file(name))
        with pytest.raises(radimt.RadimtError, match="pixel size is unknown"):
            read_planar(series)
