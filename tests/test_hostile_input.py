"""Hostile input gets a named error (issue #12), checked on real GE MR slices where a header can
be mutated: non-finite or absurd seeds, manifests without rows, zero or negative PixelSpacing,
memory and time bombs, pixel data that disagrees with its header, sheared orientations,
non-finite rescale, float pixel data."""

from __future__ import annotations

import math
import shutil

import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.dicom import read_planar, read_volume
from radimt.dicom.header import read_frames
from radimt.errors import DicomReadError, MixedStudyError, SeedError, SeriesAssemblyError
from radimt.pipeline.manifest import ManifestError, read_manifest
from tests.conftest import SAMPLE_DICOM
from tests.test_real_corpus import REAL


def _image() -> sitk.Image:
    image = sitk.Image(20, 20, 10, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 2.0))
    return image


@pytest.mark.parametrize(
    "seed",
    [(math.nan, 0.0, 0.0), (0.0, math.inf, 0.0), (0.0, 0.0, -math.inf), (1e300, 0.0, 0.0), ("x", 0, 0)],
)
@pytest.mark.parametrize("as_index", [False, True])
def test_bad_seed_is_a_seed_error(seed, as_index):
    with pytest.raises(SeedError, match=r"non-finite|outside the image|not a list of numbers"):
        radimt.segment_from_seed(_image(), seed, seed_is_index=as_index)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_manifest_refuses_non_finite_seeds_naming_the_line(tmp_path, value):
    (tmp_path / "s").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"study_id,path,seed_x,seed_y,seed_z\na,s,1,2,3\nb,s,{value},2,3\n")
    with pytest.raises(ManifestError, match=rf"line 3: seed_x '{value}' is not a finite number"):
        read_manifest(manifest)


def test_manifest_with_a_header_and_no_rows_is_refused(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("study_id,path,seed_x,seed_y,seed_z\n")
    with pytest.raises(ManifestError, match="no rows"):
        read_manifest(manifest)


def _ge_slices(folder, edit, count: int = 2) -> list:
    """The first ``count`` real GE b0 slices, each edited by ``edit(dataset)``, saved in ``folder``."""
    paths = []
    for path in sorted((REAL / "ge_dwi").glob("i*"))[:count]:
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(folder / path.name)
        paths.append(folder / path.name)
    shutil.copy(REAL / "ge_dwi" / "LICENSE", folder / "LICENSE")
    return paths


def _series(folder):
    (series,) = radimt.scan(folder)
    return series


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # pydicom's note on writing "nan"
@pytest.mark.parametrize("spacing", [["0", "0"], ["-0.5", "0.5"], ["nan", "1"]])
def test_zero_or_negative_pixel_spacing_on_mr_is_named(tmp_path, spacing):
    _ge_slices(tmp_path, lambda ds: setattr(ds, "PixelSpacing", spacing))
    with pytest.raises(SeriesAssemblyError, match=r"PixelSpacing .* is not a positive size"):
        read_volume(_series(tmp_path))


def test_unedited_ge_slices_load(tmp_path):
    """The edits below are the only thing wrong with the files they break."""
    _ge_slices(tmp_path, lambda ds: None)
    assert read_volume(_series(tmp_path)).GetSize() == (256, 256, 2)


def test_compressed_image_declaring_terabytes_is_refused_before_allocation(tmp_path):
    def bomb(ds):
        ds.compress(pydicom.uid.RLELossless)
        ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000

    _ge_slices(tmp_path, bomb, count=1)
    with pytest.raises(DicomReadError, match=r"1000 x 65535 x 65535 .*GiB decoded\), more than the"):
        read_planar(_series(tmp_path))  # a cine loop


def test_memory_budget_is_a_setting(tmp_path, monkeypatch):
    _ge_slices(tmp_path, lambda ds: None)
    monkeypatch.setenv("RADIMT_MAX_IMAGE_GB", "0.0001")  # 105 kB: less than two 256x256 slices
    with pytest.raises(DicomReadError, match="raise RADIMT_MAX_IMAGE_GB"):
        read_volume(_series(tmp_path))


@pytest.mark.parametrize("native", [True, False])
def test_absurd_number_of_frames_costs_one_record(tmp_path, native):
    def bomb(ds):
        if not native:
            ds.compress(pydicom.uid.RLELossless)
        ds.NumberOfFrames = 2147483647

    (path,) = _ge_slices(tmp_path, bomb, count=1)
    frames = read_frames(str(path))
    assert len(frames) == 1
    assert "NumberOfFrames 2147483647 cannot fit in a file" in frames[0].header.problem
    with pytest.raises(DicomReadError, match="NumberOfFrames 2147483647 cannot fit"):
        read_volume(_series(tmp_path))


def test_bits_allocated_that_disagrees_with_the_pixel_data_is_refused(tmp_path):
    def eight_bit(ds):
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    _ge_slices(tmp_path, eight_bit)
    with pytest.raises(DicomReadError, match=r"pixel data holds 131072 bytes but .* declare 65536"):
        read_volume(_series(tmp_path))


def test_pixel_data_longer_by_a_pad_byte_loads(tmp_path):
    def odd(ds):  # 8-bit 255 x 255: 65025 bytes declared, 65026 stored (even length)
        ds.PixelData = (ds.pixel_array[:255, :255] // 8).astype("u1").tobytes() + b"\0"
        ds.Rows = ds.Columns = 255
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0

    _ge_slices(tmp_path, odd)
    assert read_volume(_series(tmp_path)).GetSize() == (255, 255, 2)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize(
    "orientation",
    [[1, 0, 0, 0.71, 0.71, 0], [1, 0, 0, 0, 2, 0], [1, 0, 0, 0, "nan", 1], [1, 0, 0, 1, 0, 0]],
)
def test_unusable_orientation_is_refused(tmp_path, orientation):
    _ge_slices(tmp_path, lambda ds: setattr(ds, "ImageOrientationPatient", orientation))
    with pytest.raises(SeriesAssemblyError, match=r"ImageOrientationPatient .*(not two unit|unusable)"):
        read_volume(_series(tmp_path))


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize(
    "keyword, value", [("RescaleSlope", "nan"), ("RescaleIntercept", "inf"), ("RescaleSlope", "0")]
)
def test_non_finite_or_zero_rescale_is_refused(tmp_path, keyword, value):
    _ge_slices(tmp_path, lambda ds: setattr(ds, keyword, value))
    with pytest.raises(DicomReadError, match=r"RescaleSlope .* cannot map stored values"):
        read_volume(_series(tmp_path))


def test_float_pixel_data_is_named_not_called_missing(tmp_path):
    def to_float(ds):
        ds.FloatPixelData = ds.pixel_array.astype("<f4").tobytes()
        del ds.PixelData
        ds.BitsAllocated = ds.BitsStored = 32
        del ds.HighBit, ds.PixelRepresentation

    _ge_slices(tmp_path, to_float)
    series = _series(tmp_path)
    assert series.role == "other" and series.note.startswith("float pixel data (FloatPixelData")
    with pytest.raises(DicomReadError, match="float pixel data .* integer Pixel Data only"):
        read_volume(series)


# -- one folder, one patient; a role from one study ---------------------------------------------


def _copy_t2(study: str, target, **edits) -> str:
    """Copy a sample study's T2 series into ``target``/``study``, editing every header."""
    folder = target / study
    folder.mkdir(parents=True)
    for path in sorted((SAMPLE_DICOM / study / "MR" / "t2").iterdir()):
        ds = pydicom.dcmread(path)
        for keyword, value in edits.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / path.name)
    return str(ds.StudyInstanceUID)


def test_two_patients_in_one_folder_are_refused(tmp_path):
    _copy_t2("carcinoma_washout", tmp_path)
    _copy_t2("fibroadenoma_persistent", tmp_path)
    listing = r"2 patients in one folder \(patient 1: series 2; patient 2: series 2b\)"
    with pytest.raises(MixedStudyError, match=listing):
        radimt.load_study(tmp_path)


def test_two_studies_of_one_patient_supplying_one_role_are_refused_or_chosen(tmp_path):
    same = {"PatientID": "P1", "PatientName": "Anon"}
    first = _copy_t2("carcinoma_washout", tmp_path, **same)
    second = _copy_t2("fibroadenoma_persistent", tmp_path, **same)
    with pytest.raises(MixedStudyError, match=r"2 studies in one folder both supply t2 .*study_uid"):
        radimt.load_study(tmp_path)
    for uid, source in ((first, "carcinoma_washout"), (second, "fibroadenoma_persistent")):
        study = radimt.load_study(tmp_path, study_uid=uid)
        assert [s.key for s in study.series] == ["2"] and study.chosen_series("t2").first.path.count(source)
        assert len(study.skipped) == 24 and "another study" in study.skipped[0].reason
    with pytest.raises(MixedStudyError, match="no images of study"):
        radimt.load_study(tmp_path, study_uid="1.2.3")


def test_exams_of_one_patient_in_other_modalities_load_together(tmp_path):
    """The published case's shape: MRI and CT of one patient, each its own study."""
    shutil.copytree(SAMPLE_DICOM / "imt_case" / "MR" / "t2", tmp_path / "MR")
    shutil.copytree(SAMPLE_DICOM / "imt_case" / "CT", tmp_path / "CT")
    for path in (tmp_path / "CT").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.save_as(path)
    study = radimt.load_study(tmp_path)
    assert study.roles == ["t2", "ct"]
