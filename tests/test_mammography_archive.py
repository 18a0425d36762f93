"""Digitised film mammograms in CBIS-DDSM's layout: four views filed as four "patients", no
pixel size, view and side only in PatientOrientation and PatientID, ROI masks and cropped lesions
as further Secondary Captures (radimt.synth.archive writes them as the collection does)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.errors import MaskError, MixedStudyError
from radimt.pipeline.runner import run_batch
from radimt.synth.archive import write_cbis_ddsm_case
from tests.conftest import REPO


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cbis") / "P_00173"
    truth = write_cbis_ddsm_case(str(folder))
    return folder, truth


def _key(folder: Path, side: str, view: str) -> str:
    [series] = [
        s
        for s in radimt.scan(folder)
        if s.role == "mg" and (s.first.header.laterality, s.first.header.view) == (side, view)
    ]
    return series.key


def test_four_film_views_scan_as_four_mammograms_of_one_patient(case):
    folder, _ = case
    found = {(s.role, s.first.header.laterality, s.first.header.view): s.note for s in radimt.scan(folder)}
    views = sorted(k[1:] for k in found if k[0] == "mg")
    assert views == [("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")]
    note = found[("mg", "L", "CC")]
    assert "digitised film mammogram (Secondary Capture, ConversionType WSD)" in note
    assert "view CC from PatientOrientation" in note and "laterality L from PatientID" in note
    others = [s.note for s in radimt.scan(folder) if s.role == "other"]
    assert any("ROI mask" in n for n in others) and any("cropped lesion image" in n for n in others)
    study = radimt.load_study(folder)  # four "patients" and four studies: one patient's views
    assert len(study.mg) == 4
    assert {p.spacing_source for p in study.mg} == {"none: sizes in pixels (the header gives no pixel size)"}


def test_two_real_patients_are_still_refused(tmp_path):
    write_cbis_ddsm_case(str(tmp_path / "both"), patient="P_00173")
    write_cbis_ddsm_case(str(tmp_path / "both"), patient="P_00999", seed=1)
    with pytest.raises(MixedStudyError, match="2 patients"):
        radimt.load_study(tmp_path / "both")


def test_a_true_screen_capture_stays_set_aside(tmp_path):
    write_cbis_ddsm_case(str(tmp_path / "c"))
    path = next((tmp_path / "c").glob("*_LEFT_CC/full.dcm"))
    ds = pydicom.dcmread(path)
    del ds.ConversionType
    ds.SeriesDescription = "report page"
    ds.save_as(path)
    notes = {s.note for s in radimt.scan(path.parent)}
    assert notes == {"secondary capture (a copy of a screen, not an acquisition)"}


def _manifest(tmp_path: Path, folder: Path, series: str, **lesion: str) -> Path:
    row = {"study_id": "P_00173", "path": str(folder), "lesion_id": "1", "seed_series": series, **lesion}
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    return path


def _row(out: Path) -> dict[str, str]:
    with open(out / "features.csv", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    return row


def test_a_lesion_from_its_roi_mask_has_sizes_in_pixels_and_pyradiomics_features(case, tmp_path):
    folder, truth = case
    series = _key(folder, "L", "CC")
    manifest = _manifest(tmp_path, folder, series, mask=truth["mask"]["file"])
    pipeline = REPO / "pipelines" / "mammography.yaml"
    run_batch(manifest, pipeline, tmp_path / "out", show_progress=False)
    row = _row(tmp_path / "out")
    assert row["status"] == "done", row["error"]
    pixels = int(truth["mask"]["pixels"].astype(bool).sum())
    assert float(row["lesion_area_px2"]) == pixels and int(row["lesion_voxels"]) == pixels
    assert "lesion_area_mm2" not in row and "lesion_longest_diameter_mm" not in row
    assert float(row["lesion_longest_diameter_px"]) == pytest.approx(
        truth["views"]["LEFT_CC"]["diameter_px"], rel=0.1
    )
    # pyradiomics on the same files, read as SimpleITK reads them (spacing 1: no pixel size)
    from radiomics import featureextractor

    from radimt.features import load_params

    image = sitk.ReadImage(truth["views"]["LEFT_CC"]["file"])[:, :, 0]
    mask = sitk.ReadImage(truth["mask"]["file"])[:, :, 0] > 0
    mask.CopyInformation(image)
    extractor = featureextractor.RadiomicsFeatureExtractor(load_params("mg"))
    theirs = {
        k: v
        for k, v in extractor.execute(
            sitk.Cast(image, sitk.sitkFloat32), sitk.Cast(mask, sitk.sitkUInt8)
        ).items()
        if not k.startswith("diagnostics_")
    }
    assert len(theirs) > 50
    for name, value in theirs.items():
        assert float(row[f"mg_{name}"]) == pytest.approx(float(value), rel=1e-6, abs=1e-9), name


def test_a_lesion_from_a_seed_and_the_digitisers_spacing(case, tmp_path):
    folder, truth = case
    centre = truth["views"]["LEFT_CC"]["centre_rc"]
    series = _key(folder, "L", "CC")
    manifest = _manifest(tmp_path, folder, series, seed_i=str(centre[1]), seed_j=str(centre[0]))
    pipeline = REPO / "pipelines" / "mammography.yaml"
    run_batch(manifest, pipeline, tmp_path / "px", show_progress=False)
    in_pixels = _row(tmp_path / "px")
    assert in_pixels["status"] == "done", in_pixels["error"]
    grown = sitk.GetArrayFromImage(
        sitk.ReadImage(tmp_path / "px" / "lesions" / "P_00173" / "1" / "mask.nii.gz")
    )
    outline = truth["mask"]["pixels"] > 0  # the archive's own ROI mask of this mass
    dice = 2 * np.logical_and(grown > 0, outline).sum() / ((grown > 0).sum() + outline.sum())
    assert dice > 0.8  # a soft-edged mass: the region reaches a little past the outline
    assert float(in_pixels["lesion_area_px2"]) == (grown > 0).sum()
    run_batch(manifest, pipeline, tmp_path / "mm", show_progress=False, mg_spacing_mm=0.05)
    in_mm = _row(tmp_path / "mm")
    assert float(in_mm["lesion_area_mm2"]) == pytest.approx(float(in_pixels["lesion_area_px2"]) * 0.0025)
    result = (tmp_path / "mm" / "lesions" / "P_00173" / "1" / "result.json").read_text()
    assert "given (0.05 mm; the header has none)" in result


def test_the_view_must_be_named_when_a_folder_holds_several(case, tmp_path):
    folder, truth = case
    centre = truth["views"]["LEFT_CC"]["centre_rc"]
    manifest = _manifest(tmp_path, folder, "", seed_i=str(centre[1]), seed_j=str(centre[0]))
    run_batch(manifest, REPO / "pipelines" / "mammography.yaml", tmp_path / "out", show_progress=False)
    row = _row(tmp_path / "out")
    assert row["status"] == "failed" and "4 mg images" in row["error"] and "seed_series" in row["error"]


def test_a_cropped_lesion_image_is_not_a_mask(case):
    folder, truth = case
    [series] = [s for s in radimt.scan(folder) if s.key == _key(folder, "L", "CC")]
    image = radimt.dicom.read_planar(series).image
    with pytest.raises(MaskError, match="not a mask of this image"):
        radimt.io.read_dicom_mask(truth["crop"]["file"], image)
