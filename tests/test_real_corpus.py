"""Real scanners' files are the judge: roles, vendor conventions and geometry on the vendored
multi-vendor subset (tests/data/real, BSD-2-Clause dcm_qa sets), with dcm2niix as the oracle for
b-values, geometry and pixels, and real files edited only where a rule needs a case no public
file shows (each such edit is stated)."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

import radimt
from radimt.dicom import read_volume
from radimt.errors import DuplicateSliceError, SeriesAssemblyError
from tests.conftest import NIBABEL_DATA, REPO

REAL = REPO / "tests" / "data" / "real"
#: dcm2niix comes with the test extras (PyPI package), beside this interpreter.
DCM2NIIX = shutil.which("dcm2niix") or shutil.which("dcm2niix", path=str(Path(sys.executable).parent))

#: Expected roles of the vendored studies, written by reading their headers (series key ->
#: (role, b-value or None, a phrase of the reason)).
EXPECTED = {
    "ge_dwi": {  # GE SIGNA Pioneer "Ax DWI TENSOR": EP\SE, b in GEMS_PARM_01, gradients in GEMS_ACQU_01
        "1.1": ("dwi", 0.0, "EPI with b-values 0/1000"),
        **{f"1.{k}": ("dwi", 1000.0, "EPI with b-values 0/1000") for k in range(2, 8)},
    },
    "uih_dti": {  # United Imaging mosaic "save by slice": b only in (0065,1009)
        "12.1": ("dwi", 1.2513, "EPI"),
        "12.2": ("dwi", 929.75, "EPI"),
        "12.3": ("dwi", 929.75, "EPI"),
    },
    "siemens_xa30": {  # Siemens XA30 enhanced: DWI, scanner ADC, TRACEW, TENSOR_B0
        "10.1": ("dwi", 0.0, "DIFFUSION"),
        "10.2": ("dwi", 2500.0, "DIFFUSION"),
        "11": ("adc", None, "ADC"),
        "12": ("dwi", 2500.0, "TRACEW"),
        "16": ("other", 0.0, "derived diffusion map"),
    },
    "siemens_xa10_fmri": {f"6.{k}": ("other", None, "EPI without diffusion") for k in range(1, 5)},
    "siemens_mosaic_fmri": {"2": ("other", None, "EPI without diffusion")},
    "philips_fieldmap": {"801.1": ("other", None, "field map"), "801.2": ("other", None, "field map")},
    "philips_asl": {"1901": ("other", None, "perfusion (ASL)")},
    "ge_ct_tilt": {"2": ("ct", None, "gantry tilt 18.5")},
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_vendored_real_studies_get_the_expected_roles(folder):
    found = {s.key: s for s in radimt.scan(REAL / folder)}
    assert set(found) == set(EXPECTED[folder]), f"{folder}: {sorted(found)}"
    for key, (role, b_value, why) in EXPECTED[folder].items():
        s = found[key]
        assert s.role == role, f"{folder} {key}: {s.role} ({s.note})"
        if b_value is not None:
            assert s.b_value == pytest.approx(b_value, abs=1e-3), key
        assert why in s.note, f"{folder} {key}: {s.note}"


def test_every_vendored_folder_carries_its_licence():
    for folder in REAL.iterdir():
        if folder.is_dir():
            assert (folder / "LICENSE").read_text().startswith("BSD 2-Clause"), folder


# -- dcm2niix as the oracle ----------------------------------------------------------------------


def _run_dcm2niix(folder: Path, out: Path, name: str) -> None:
    """Convert ``folder`` with dcm2niix into ``out`` (uncompressed NIfTI, files named ``name``)."""
    assert DCM2NIIX, "dcm2niix is a test dependency: pip install -e '.[test]'"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [DCM2NIIX, "-z", "n", "-f", name, "-o", str(out), str(folder)], check=True, capture_output=True
    )


def _dcm2niix(folder: Path, out: Path) -> tuple[sitk.Image, np.ndarray]:
    """dcm2niix's reading of one series: the 4D NIfTI (as SimpleITK reads it, in LPS) and b-values."""
    _run_dcm2niix(folder, out, "out")
    image = sitk.ReadImage(str(out / "out.nii"))
    bvals = np.loadtxt(out / "out.bval", ndmin=1) if (out / "out.bval").exists() else np.zeros(1)
    return image, bvals


def _matches_a_volume(ours: sitk.Image, theirs4d: sitk.Image) -> list[int]:
    """Which volumes of dcm2niix's 4D image equal ours voxel for voxel at the same LPS points."""
    hits = []
    for t in range(theirs4d.GetSize()[3]):
        volume = theirs4d[:, :, :, t]
        sampled = sitk.Resample(volume, ours, sitk.Transform(), sitk.sitkNearestNeighbor, -1.0)
        if np.array_equal(sitk.GetArrayFromImage(sampled), sitk.GetArrayFromImage(ours).astype(float)):
            hits.append(t)
    return hits


@pytest.mark.parametrize("folder", ["ge_dwi", "uih_dti"])
def test_diffusion_b_values_geometry_and_pixels_equal_dcm2niix(folder, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(REAL / folder, src, ignore=shutil.ignore_patterns("LICENSE"))
    theirs, bvals = _dcm2niix(src, tmp_path / "out")
    stacks = [s for s in radimt.scan(src) if s.role == "dwi"]
    assert len(stacks) == theirs.GetSize()[3]
    used = set()
    for s in stacks:
        ours = read_volume(s)
        assert ours.GetSize() == theirs.GetSize()[:3]
        np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing()[:3], rtol=1e-5)
        hits = _matches_a_volume(ours, theirs)
        assert len(hits) >= 1, f"{s.key}: no dcm2niix volume equals it"
        assert any(abs(bvals[t] - s.b_value) < 0.01 for t in hits), (s.key, s.b_value, bvals[hits])
        used.update(hits)
    assert used == set(range(theirs.GetSize()[3]))


def test_scanner_adc_equals_the_adc_fitted_from_its_own_dwi():
    # Siemens XA30: b 0 and the trace-weighted b 2500 the scanner made its ADC from.
    study = radimt.load_study(REAL / "siemens_xa30")
    assert study.dwi.b_values.tolist() == [0.0, 2500.0]
    assert [s.key for s in study.dwi.series] == ["10.1", "12"]  # TRACEW preferred to one direction
    fitted = sitk.GetArrayFromImage(radimt.adc_map(study.dwi))
    scanner = sitk.GetArrayFromImage(study.adc)
    both = (fitted > 0) & (scanner > 0)
    assert both.sum() > 50_000
    difference = np.abs(fitted[both] - scanner[both])
    assert np.median(difference) < 0.01  # 10⁻³ mm²/s; the scanner stores integers of 10⁻⁶
    assert np.median(scanner[both]) == pytest.approx(0.733, abs=0.01)


def test_gantry_tilted_ct_is_refused_naming_the_tilt():
    study = radimt.load_study(REAL / "ge_ct_tilt")
    with pytest.raises(SeriesAssemblyError, match=r"gantry tilt 18\.5° .*dcm2niix"):
        _ = study.ct


# -- rules that need a case no public file shows: real files, one stated edit each -----------------


def _edited_copies(src_files, dest: Path, edit) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(src_files):
        ds = pydicom.dcmread(path)
        edit(ds, k)
        ds.save_as(dest / Path(path).name)
    return dest


def _ge_b0_files():
    return sorted(p for p in (REAL / "ge_dwi").iterdir() if p.name != "LICENSE")[:2]


def _ge_dce_phases(folder, intercept_step=None):
    """The real GE b0 slices rewritten as three phases of a 3D FGRE DCE (told apart by
    AcquisitionTime, two minutes apart; with ``intercept_step``, RescaleIntercept 0, step, 2 step)."""
    files = _ge_b0_files()

    def phase_of(ds, k, phase):
        ds.ScanningSequence, ds.SequenceVariant, ds.EchoTime = "GR", "SS\\SP", 2.1
        ds.SeriesDescription = "Ax VIBRANT MPh"
        ds.AcquisitionTime = f"09{phase * 2:02d}00.000"
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{phase}"
        if intercept_step is not None:
            ds.RescaleSlope, ds.RescaleIntercept = 1, intercept_step * phase

    for phase in range(3):
        _edited_copies(files, folder / f"p{phase}", lambda ds, k, p=phase: phase_of(ds, k, p))


def test_ge_three_phase_gradient_echo_is_dce_not_dwi(tmp_path):
    # The two b0 slices of the real GE file carry GE's b-value element 0\8\0\0 under
    # GEMS_PARM_01, as every GE sequence does; as a 3D FGRE with three phases (no temporal tags,
    # told apart by AcquisitionTime only) they are a DCE, never "DWI with b = 0".
    _ge_dce_phases(tmp_path)
    study = radimt.load_study(tmp_path)
    assert {s.role for s in study.series} == {"dce"}, [(s.key, s.role, s.note) for s in study.series]
    assert study.dwi is None
    assert study.dce.times.tolist() == [0.0, 120.0, 240.0]


def test_dce_subtraction_on_real_ge_headers_equals_the_float_difference(tmp_path):
    """The subtraction is made in one float32 buffer from the phases' stored arrays: on real GE
    slices (their own dtype, rescale and geometry; phases told apart by RescaleIntercept) it
    equals the plain float difference voxel for voxel and keeps the DCE's geometry and frame."""
    _ge_dce_phases(tmp_path, intercept_step=37)
    dce = radimt.load_study(tmp_path).dce
    sub = radimt.subtraction(dce, 2)
    expected = sitk.Cast(dce.phases[2], sitk.sitkFloat32) - sitk.Cast(dce.phases[0], sitk.sitkFloat32)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(sub), sitk.GetArrayViewFromImage(expected))
    assert sitk.GetArrayViewFromImage(sub).min() == 74.0 and sub.GetPixelID() == sitk.sitkFloat32
    assert sub.GetOrigin() == dce.phases[2].GetOrigin() and sub.GetDirection() == dce.phases[2].GetDirection()
    assert sub.GetMetaData("0020|0052") == dce.phases[2].GetMetaData("0020|0052")


def test_ge_mpr_imagetype_on_an_original_acquisition_is_not_a_reformat(tmp_path):
    def fse(ds, k):
        ds.ImageType = ["ORIGINAL", "PRIMARY", "MPR"]
        ds.ScanningSequence, ds.EchoTime, ds.SeriesDescription = "SE", 102.0, "Ax T2 FSE"
        del ds[0x0043, 0x1039]

    study = radimt.load_study(_edited_copies(_ge_b0_files(), tmp_path, fse))
    assert [(s.role, s.note) for s in study.series] == [("t2", "T2-weighted (echo time 102 ms)")]


@pytest.mark.parametrize(
    ("image_type", "description", "what"),
    [
        (["DERIVED", "PRIMARY", "DCE", "SER"], "Ax VIBRANT MPh: SER", "SER"),
        (["DERIVED", "PRIMARY", "DCE", "PE1"], "Ax VIBRANT MPh: PE1", "PE1"),
        (["DERIVED", "PRIMARY", "OTHER"], "Ax VIBRANT MPh: SER", "SER"),
    ],
)
def test_scanner_dce_maps_are_never_an_acquisition_role(tmp_path, image_type, description, what):
    def derived(ds, k):
        ds.ImageType, ds.SeriesDescription = image_type, description
        ds.ScanningSequence, ds.EchoTime = "GR", 2.1

    study = radimt.load_study(_edited_copies(_ge_b0_files(), tmp_path, derived))
    (s,) = study.series
    assert s.role == "other" and f"scanner-derived DCE map ({what})" in s.note
    assert study.t1 is None and study.dwi is None


def test_philips_enhanced_mprage_is_t1_and_relabelled_t2_follows_the_echo_time(tmp_path):
    with gzip.open(NIBABEL_DATA / "philips_mprage.dcm.gz") as fp:
        ds = pydicom.dcmread(fp)
    ds.save_as(tmp_path / "mprage.dcm")
    (s,) = radimt.scan(tmp_path / "mprage.dcm")  # TemporalPositionIndex 1 on every frame
    assert s.role == "t1" and "echo time" in s.note
    ds.SeriesDescription = "T2 TSE"
    for item in ds.SharedFunctionalGroupsSequence[0].get("MREchoSequence", []):
        item.EffectiveEchoTime = 100.0
    for frame in ds.PerFrameFunctionalGroupsSequence:
        for item in frame.get("MREchoSequence", []):
            item.EffectiveEchoTime = 100.0
    ds.save_as(tmp_path / "mprage.dcm")
    (s,) = radimt.scan(tmp_path / "mprage.dcm")
    assert s.role == "t2", s.note


def test_same_sop_instance_with_other_pixels_is_refused_identical_copy_dropped(tmp_path):
    study_dir = tmp_path / "s"
    shutil.copytree(REAL / "ge_dwi", study_dir)
    first = sorted(study_dir.glob("i*"))[0]
    shutil.copy(first, study_dir / "copy_of_first")
    study = radimt.load_study(study_dir)
    assert study.dwi.b_values.tolist() == [0.0, 1000.0]
    assert study.dwi.images[0].GetSize() == (256, 256, 2)  # the identical copy is dropped
    ds = pydicom.dcmread(first)
    arr = ds.pixel_array.copy()
    arr[0, 0] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(study_dir / "copy_of_first")
    with pytest.raises(DuplicateSliceError, match="same SOPInstanceUID.*different content"):
        _ = radimt.load_study(study_dir).dwi


def test_two_series_with_one_number_get_distinct_keys(tmp_path):
    def other_series(ds, k):
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".2"
        ds.SOPInstanceUID = ds.SOPInstanceUID + ".2"
        ds.AcquisitionTime = "235959"

    shutil.copytree(REAL / "ge_dwi", tmp_path / "a")
    _edited_copies(_ge_b0_files(), tmp_path / "b", other_series)
    keys = [s.key for s in radimt.scan(tmp_path)]
    assert len(keys) == len(set(keys))
    assert "1.1" in keys and "1b" in keys
    assert radimt.load_study(tmp_path).find("1b").series_uid.endswith(".2")


def test_uncalibrated_ultrasound_beside_a_calibrated_one(tmp_path):
    for name in ("US1_UNCR.dcm", "gdcm-US-ALOKA-16.dcm"):  # pydicom-data: real scanners' files
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.PatientID, ds.StudyInstanceUID = "P1", "1.2.826.0.1.3680043.8.498.7"  # one patient's study
        ds.save_as(tmp_path / name)
    study = radimt.load_study(tmp_path)
    roles = {Path(s.first.path).name: (s.role, s.note) for s in study.series}
    assert roles["US1_UNCR.dcm"][0] == "other" and "without a spatial calibration" in roles["US1_UNCR.dcm"][1]
    assert roles["gdcm-US-ALOKA-16.dcm"][0] == "us"
    (us,) = study.us
    assert us.image.GetSpacing() == pytest.approx((0.3827, 0.3827), abs=1e-4)


def test_single_slice_stack_takes_its_slice_thickness(tmp_path):
    shutil.copy(get_testdata_file("MR2_UNCR.dcm"), tmp_path / "mr.dcm")  # SliceThickness 6
    (s,) = radimt.scan(tmp_path)
    assert read_volume(s).GetSpacing()[2] == pytest.approx(6.0)


# -- the whole shared corpus (../shared/realdata beside the repository, as in CI) -------------------

SHARED = Path(os.environ.get("RADIMT_REALDATA", REPO.parent / "shared" / "realdata"))
TABLE = REAL / "expected_roles_shared.csv"


@pytest.fixture(scope="module")
def shared_corpus(tmp_path_factory) -> Path:
    """The shared real-data corpus with its gzipped files unpacked (read-only source untouched)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared real-data corpus not found at {SHARED} (set RADIMT_REALDATA)")
    out = tmp_path_factory.mktemp("realdata")
    for path in SHARED.rglob("*"):
        if not path.is_file():
            continue
        target = out / path.relative_to(SHARED)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".gz":
            with gzip.open(path) as src, open(target.with_suffix(""), "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            os.symlink(path, target)
    return out


def _table() -> dict[str, list[dict[str, str]]]:
    by_study: dict[str, list[dict[str, str]]] = {}
    with open(TABLE, newline="") as fp:
        for row in csv.DictReader(fp):
            by_study.setdefault(row["study"], []).append(row)
    return by_study


@pytest.mark.realdata
@pytest.mark.parametrize("study", sorted(_table()))
def test_shared_corpus_roles_equal_the_expected_table(shared_corpus, study):
    from radimt.dicom.roles import assign_roles
    from radimt.dicom.scan import scan_files

    rows = _table()[study]
    stacks, skipped = scan_files(shared_corpus / study)
    found = {s.key: s for s in assign_roles(stacks)}
    expected = {r["series"]: r for r in rows if r["role"] != "skipped"}
    assert set(found) == set(expected), f"{study}: found {sorted(found)}"
    for key, row in expected.items():
        s = found[key]
        assert s.role == row["role"], f"{study} {key} ({row['what_it_is']}): {s.role}, {s.note}"
        assert row["reason_contains"] in s.note, f"{study} {key}: {s.note}"
        if row["b_value"]:
            assert s.b_value == pytest.approx(float(row["b_value"]), abs=1e-3), f"{study} {key}"
    for row in rows:
        if row["role"] == "skipped":
            assert any(row["reason_contains"] in item.reason for item in skipped), study


DWI_STUDIES = [
    "dcm_qa_canon_61/In/enh",
    "dcm_qa_ge/In",
    "dcm_qa_philips_dwi/In/cl",
    "dcm_qa_uih/In",
    "dcm_qa_xa30/In/10_DWI_dir80_PA",
    "dicom2nifti/tests/data/philips/dti/002",
    "dicom2nifti/tests/data/philips_enhanced/dti/001",
]


@pytest.mark.realdata
@pytest.mark.parametrize("study", DWI_STUDIES)
def test_shared_corpus_b_values_equal_dcm2niix(shared_corpus, study, tmp_path):
    """Every b-value radimt reads equals one dcm2niix writes, and the same set of them."""
    folder = shared_corpus / study
    stacks = [s for s in radimt.scan(folder) if s.role == "dwi"]
    _run_dcm2niix(folder, tmp_path, "%s_%p")
    theirs = set()
    for bval in tmp_path.glob("*.bval"):
        theirs |= {round(float(b), 2) for b in np.loadtxt(bval, ndmin=1)}
    ours = {round(float(s.b_value), 2) for s in stacks}
    assert ours == theirs, (study, sorted(ours), sorted(theirs))


#: Registry packages' real files (pydicom-data and nibabel are test dependencies; deid-data and
#: OpenREM files when fetched with ../shared/realdata/fetch_registry_files.sh into
#: RADIMT_REGISTRY_FILES): file -> (role, a phrase of the reason).
REGISTRY = {
    "pydicom-data/US1_UNCR.dcm": ("other", "without a spatial calibration"),
    "pydicom-data/gdcm-US-ALOKA-16.dcm": ("us", "ultrasound"),
    "pydicom-data/gdcm-US-ALOKA-16_big.dcm": ("us", "ultrasound"),
    "pydicom-data/RG1_UNCR.dcm": ("other", "not of the breast"),
    "pydicom-data/RG3_UNCR.dcm": ("other", "not of the breast"),
    "pydicom-data/MR2_UNCR.dcm": ("t1", "echo time 27 ms"),
    "pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm": ("other", "reformat"),  # "<MPR Collection>"
    "nibabel/siemens_dwi_0.dcm.gz": ("dwi", "DIFFUSION"),
    "nibabel/siemens_dwi_1000.dcm.gz": ("dwi", "DIFFUSION"),
    "nibabel/philips_mprage.dcm.gz": ("t1", "echo time"),
    "nibabel/0.dcm": ("dwi", "DIFFUSION"),
    "nibabel/1.dcm": ("dwi", "DIFFUSION"),
    "nibabel/slicethickness_empty_string.dcm": ("other", "reformat"),  # "<MIP Range>"
    "deid-data/ultrasounds/GREYSCALE_IMAGE.dcm": ("us", "ultrasound"),
    "deid-data/ultrasounds/GREYSCALE_CINE.dcm": ("us", "ultrasound"),
    "deid-data/ultrasounds/RGB_IMAGE.dcm": ("us", "ultrasound"),
    "deid-data/ultrasounds/ultrasound-multiframe.dcm": ("us", "ultrasound"),
    "deid-data/animals/cat.dcm": ("other", "not of the breast"),
    "openrem/MG-Im-GE_Seno_1_ForPresentation.dcm": ("mg", "FOR PRESENTATION"),
    "openrem/MG-Im-GE_Seno_1_ForProcessing.dcm": ("mg", "FOR PROCESSING"),
    "openrem/MG-Im-GE_Seno_2_ForPresentation.dcm": ("mg", "FOR PRESENTATION"),
    "openrem/MG-Im-GE-SenDS-scaled.dcm": ("mg", "FOR PROCESSING"),
    "openrem/MG-Im-Hologic-PropProj.dcm": ("other", "no pixel data"),
    "openrem/DX-Im-GE_XR220-1.dcm": ("other", "not of the breast"),
    "openrem/DX-Im-Carestream_DRX.dcm": ("other", "no pixel data"),
}


def _registry_file(name: str) -> Path | None:
    package, rest = name.split("/", 1)
    if package == "pydicom-data":
        return Path(get_testdata_file(rest))
    if package == "nibabel":
        return NIBABEL_DATA / rest
    fetched = os.environ.get("RADIMT_REGISTRY_FILES")
    if not fetched:
        return None
    hits = list(Path(fetched).rglob(Path(rest).name))
    return hits[0] if hits else None


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_files_get_the_expected_roles(name, tmp_path):
    path = _registry_file(name)
    if path is None:
        pytest.skip(f"{name}: fetch it with fetch_registry_files.sh and set RADIMT_REGISTRY_FILES")
    if path.suffix == ".gz":
        with gzip.open(path) as src, open(tmp_path / path.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = tmp_path / path.stem
    role, why = REGISTRY[name]
    stacks = radimt.scan(path)
    assert {s.role for s in stacks} == {role}, [(s.key, s.role, s.note) for s in stacks]
    assert all(why in s.note for s in stacks), [s.note for s in stacks]
