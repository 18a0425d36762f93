"""Real-world DICOM quirks: Siemens mosaics, private creators, vendor spacing fields, sparse
enhanced grids, ultrasound regions, projection radiography conventions, set-aside objects."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset

import radimt
from radimt.dicom import read_planar, read_volume
from radimt.synth.studies import write_mr_study
from radimt.synth.writer import (
    Grid,
    SeriesSpec,
    write_mammogram,
    write_ultrasound,
    write_volume,
)
from tests.conftest import keep_enhanced_frames, small_spec


def test_siemens_mosaic_is_unpacked_where_nibabel_puts_it(siemens_dwi_dir, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel's "experimental readers" notice
        from nibabel.nicom import dicomwrappers

    # The real file's header (CSA, positions) with a pattern written into its blank pixels.
    ds = pydicom.dcmread(siemens_dwi_dir / "siemens_dwi_1000.dcm")
    rows, cols = ds.Rows, ds.Columns
    pattern = (np.arange(rows * cols, dtype=np.uint32).reshape(rows, cols) % 4001).astype(np.uint16)
    ds.PixelData = pattern.tobytes()
    path = tmp_path / "mosaic.dcm"
    ds.save_as(path)
    [series] = radimt.scan(path)
    assert (series.n_images, series.rows, series.columns) == (48, 128, 128) and series.b_value == 1000
    volume = read_volume(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(path))
        theirs = wrapper.get_unscaled_data()  # (row, column, slice)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(volume), theirs.transpose(2, 0, 1))
    for index in [(0, 0, 0), (17, 5, 10), (127, 127, 47)]:
        col, row, k = index
        expected = wrapper.affine @ [row, col, k, 1]
        np.testing.assert_allclose(volume.TransformIndexToPhysicalPoint(index), expected[:3], atol=1e-3)


@pytest.mark.parametrize(
    ("group", "creator", "element", "vr", "value"),
    [
        (0x0043, "GEMS_IDEN_01", 0x39, "IS", [1000000800, 8, 0, 0]),
        (0x2001, "SPI-P Release 1", 0x03, "FL", 800.0),
    ],
)
def test_vendor_b_value_tags_count_only_under_their_creator(tmp_path, group, creator, element, vr, value):
    spec = SeriesSpec("q", "t2", 3, "t2_tse", "MR", {"EchoTime": 90}, frame_of_reference="mr")
    grid = Grid((8, 8, 3), (1.0, 1.0, 3.0), (0.0, 0.0, 0.0))
    for path in write_volume(str(tmp_path), spec, np.ones((3, 8, 8), np.uint16), grid):
        ds = pydicom.dcmread(path)
        ds.private_block(group, creator, create=True).add_new(element, vr, value)
        ds.save_as(path)
    [series] = radimt.scan(tmp_path)
    assert series.b_value is None and series.role == "t2"


def test_slice_spacing_ignores_ge_spacing_between_slices(tmp_path):
    grid = Grid((8, 8, 6), (1.0, 1.0, 3.5), (0.0, 0.0, 0.0))
    spec = SeriesSpec("q", "t2", 2, "t2_fse", "MR", {"EchoTime": 90, "SpacingBetweenSlices": "0.5"})
    write_volume(str(tmp_path), spec, np.ones((6, 8, 8), np.uint16), grid)  # SliceThickness 3.5, gap 0.5
    [series] = radimt.scan(tmp_path)
    assert read_volume(series).GetSpacing()[2] == pytest.approx(3.5)


def test_sparse_enhanced_grid_keeps_the_complete_time_points(tmp_path):
    spec = small_spec(dce_layout="enhanced")
    write_mr_study(str(tmp_path), spec)
    n = spec.grid.size[2]
    # Last phase: 4 of 12 slices.
    keep_enhanced_frames(
        next(tmp_path.glob("MR/dce_enhanced.dcm")), lambda i: not (i // n == 5 and i % n >= 4)
    )
    study = radimt.load_study(tmp_path)
    assert len(study.dce.phases) == 5
    [partial] = [s for s in study.series if "incomplete" in s.note]
    assert partial.role == "other" and "4 of 12 slice positions" in partial.note


def test_ultrasound_regions_seed_choice_and_pixel_spacing_agreement(tmp_path):
    frames = np.full((1, 120, 200), 100.0)
    spec = SeriesSpec("q", "us", 40, "US dual", "US")
    path = write_ultrasound(
        str(tmp_path / "us.dcm"), spec, frames, pixel_spacing_mm=0.1, region=(0, 0, 99, 119)
    )
    ds = pydicom.dcmread(path)
    second = Dataset()
    for key, value in ds.SequenceOfUltrasoundRegions[0].items():
        second[key] = value
    second.RegionLocationMinX0, second.RegionLocationMaxX1 = 100, 199
    second.RegionLocationMaxY1 = 59  # a smaller region with another calibration
    second.PhysicalDeltaX = second.PhysicalDeltaY = 0.02
    ds.SequenceOfUltrasoundRegions.append(second)
    ds.PixelSpacing = ["0.2", "0.2"]
    ds.save_as(path)
    [series] = radimt.scan(tmp_path)
    left = read_planar(series)
    assert left.image.GetSpacing() == pytest.approx((0.1, 0.1))  # the largest region
    right = read_planar(series, point=(150, 30))
    assert right.image.GetSpacing() == pytest.approx((0.2, 0.2))  # the region holding the seed
    assert "agrees with" in right.spacing_note and "disagrees" in left.spacing_note


def test_mammography_processing_intent_and_voi_lut_ignored(tmp_path):
    image = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30) % 4096
    for i, processing in enumerate((False, True)):
        spec = SeriesSpec("q", f"mg{i}", 30 + i, f"L CC {i}", "MG")
        path = write_mammogram(
            str(tmp_path / f"mg{i}.dcm"),
            spec,
            image,
            pixel_spacing_mm=0.1,
            laterality="L",
            view="CC",
            monochrome1=False,
            for_processing=processing,
        )
        ds = pydicom.dcmread(path)
        ds.WindowCenter, ds.WindowWidth = "1000", "200"
        ds.save_as(path)
    study = radimt.load_study(tmp_path)
    notes = sorted(s.note for s in study.series_for("mg"))
    assert notes == ["mammogram (FOR PRESENTATION)", "mammogram (FOR PROCESSING)"]
    for mg in study.mg:  # raw stored values after rescale, the window is not applied
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mg.image), image)


def test_presentation_states_and_overlays_are_listed_not_used(tmp_path):
    spec = small_spec(extras=True)
    write_mr_study(str(tmp_path), spec)
    pr = Dataset()
    pr.file_meta = pydicom.dataset.FileMetaDataset()
    pr.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    pr.file_meta.MediaStorageSOPClassUID = pr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"
    pr.file_meta.MediaStorageSOPInstanceUID = pr.SOPInstanceUID = pydicom.uid.generate_uid()
    pr.Modality, pr.SeriesInstanceUID, pr.SeriesNumber = "PR", pydicom.uid.generate_uid(), 500
    pr.save_as(tmp_path / "pr.dcm", enforce_file_format=True)
    t2_file = next(tmp_path.glob("MR/t2/*"))
    ds = pydicom.dcmread(t2_file)
    ds.add_new(0x60000010, "US", ds.Rows)  # an overlay plane beside the image
    ds.add_new(0x60000011, "US", ds.Columns)
    ds.add_new(0x60003000, "OW", b"\0" * (ds.Rows * ds.Columns // 8))
    ds.save_as(t2_file)
    from radimt.dicom.scan import scan_files

    stacks, skipped = scan_files(tmp_path)
    assert any("PR" in k.reason and k.path.endswith("pr.dcm") for k in skipped)
    study = radimt.load_study(tmp_path)
    assert study.t2.GetSize() == tuple(spec.grid.size)
    set_aside = {s.description: s.note for s in study.series if s.role == "other"}
    assert "localizer" in set_aside and "Screen Save" in set_aside
