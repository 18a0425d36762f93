"""Bad input gets a RadimtError naming the series/file and what to do, never a wrong volume."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.errors import (
    DicomReadError,
    DuplicateSliceError,
    MissingSliceError,
    MixedOrientationError,
    NonUniformSpacingError,
    TimingError,
)
from radimt.synth.studies import write_mr_study
from radimt.synth.writer import Grid, SeriesSpec, write_volume
from tests.conftest import small_spec

GRID = Grid((16, 16, 10), (1.0, 1.0, 3.0), (0.0, 0.0, 0.0))


def _t2(folder: Path) -> list[Path]:
    spec = SeriesSpec("bad", "t2", 7, "t2_tse", "MR", {"EchoTime": 90}, frame_of_reference="mr")
    volume = (np.arange(10)[:, None, None] * 10 + np.zeros((10, 16, 16))).astype(np.uint16)
    paths = write_volume(str(folder), spec, volume, GRID)
    return sorted((Path(p) for p in paths), key=lambda p: pydicom.dcmread(p).InstanceNumber)


def test_good_series_loads_with_slices_in_order(tmp_path):
    _t2(tmp_path)
    t2 = radimt.load_study(tmp_path).t2
    assert t2.GetSize() == (16, 16, 10) and t2.GetSpacing() == pytest.approx((1, 1, 3))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(t2)[:, 0, 0], np.arange(10) * 10)


def test_truncated_file(tmp_path):
    paths = _t2(tmp_path)
    data = paths[4].read_bytes()
    paths[4].write_bytes(data[: len(data) - 200])
    with pytest.raises(DicomReadError, match=rf"series 7 't2_tse'.*{paths[4].name}.*truncated"):
        _ = radimt.load_study(tmp_path).t2


def test_missing_pixel_data(tmp_path):
    paths = _t2(tmp_path)
    ds = pydicom.dcmread(paths[3])
    del ds.PixelData
    ds.save_as(paths[3])
    with pytest.raises(DicomReadError, match=rf"{paths[3].name}: no pixel data"):
        _ = radimt.load_study(tmp_path).t2


def test_missing_slice(tmp_path):
    paths = _t2(tmp_path)
    paths[5].unlink()
    with pytest.raises(MissingSliceError, match=r"series 7 't2_tse'.*about 1 slice\(s\) missing"):
        _ = radimt.load_study(tmp_path).t2


def test_duplicate_slice_with_another_uid(tmp_path):
    paths = _t2(tmp_path)
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "copy")
    with pytest.raises(DuplicateSliceError, match="duplicated slice position"):
        _ = radimt.load_study(tmp_path).t2


def test_identical_copy_of_a_file_is_dropped(tmp_path):
    paths = _t2(tmp_path)
    os.makedirs(tmp_path / "again")
    shutil.copy(paths[2], tmp_path / "again" / "x")
    assert radimt.load_study(tmp_path).t2.GetSize() == (16, 16, 10)


def test_mixed_orientations_in_one_series(tmp_path):
    paths = _t2(tmp_path)
    ds = pydicom.dcmread(paths[6])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(paths[6])
    with pytest.raises(MixedOrientationError, match=r"series 7.*orientations"):
        _ = radimt.load_study(tmp_path).t2


def test_non_uniform_spacing(tmp_path):
    paths = _t2(tmp_path)
    ds = pydicom.dcmread(paths[6])
    z = float(ds.ImagePositionPatient[2])
    ds.ImagePositionPatient[2] = z + 1.2  # 40 % of a step
    ds.save_as(paths[6])
    with pytest.raises(NonUniformSpacingError, match="tolerance 10%"):
        _ = radimt.load_study(tmp_path).t2


def test_rounded_positions_are_one_uniform_volume(tmp_path):
    paths = _t2(tmp_path)
    rng = np.random.default_rng(1)
    for p in paths:  # jitter of ±1 % of the step, as rounding scanners write
        ds = pydicom.dcmread(p)
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + rng.uniform(-0.03, 0.03)
        ds.save_as(p)
    t2 = radimt.load_study(tmp_path).t2
    assert t2.GetSpacing()[2] == pytest.approx(3.0, abs=0.02)


def test_non_dicom_and_empty_files_are_skipped(tmp_path):
    _t2(tmp_path / "series")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "junk.bin").write_bytes(os.urandom(4096))
    study = radimt.load_study(tmp_path)
    reasons = {Path(s.path).name: s.reason for s in study.skipped}
    assert reasons["empty"] == "empty file"
    assert reasons["notes.txt"].startswith("not DICOM") and reasons["junk.bin"].startswith("not DICOM")
    assert study.t2.GetSize() == (16, 16, 10)


def test_missing_folder():
    with pytest.raises(DicomReadError, match="no such file or folder"):
        radimt.load_study("/nonexistent/study")


def test_dce_phases_without_distinct_times(tmp_path):
    write_mr_study(str(tmp_path), small_spec(dce_layout="per_phase"))
    for path in tmp_path.glob("MR/dce*/*"):
        ds = pydicom.dcmread(path)
        ds.AcquisitionTime = ds.SeriesTime = ds.ContentTime = "100000"
        ds.save_as(path)
    study = radimt.load_study(tmp_path)
    with pytest.raises(TimingError, match="will not guess"):
        _ = study.dce
    assert study.t2 is not None  # the rest of the study still loads


def test_dce_times_against_temporal_positions(tmp_path):
    write_mr_study(str(tmp_path), small_spec(dce_layout="single"))
    for path in tmp_path.glob("MR/dce/*"):
        ds = pydicom.dcmread(path)
        if ds.TemporalPositionIdentifier == 3:
            ds.TriggerTime = "1000000"
        ds.save_as(path)
    with pytest.raises(TimingError, match="do not increase"):
        _ = radimt.load_study(tmp_path).dce
