"""Results back to PACS: each lesion's DICOM SR (TID 1500) holds the numbers of its row, points at
its SEG and source series, reads back with highdicom, is de-identified, and passes dciodvfy."""

from __future__ import annotations

import csv
import shutil
import subprocess

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes

from radimt.pipeline.runner import run_batch
from tests.conftest import REPO, SAMPLE_DICOM

PIPELINE = REPO / "pipelines" / "multimodal.yaml"


@pytest.fixture(scope="module")
def lesion(tmp_path_factory):
    out = tmp_path_factory.mktemp("sr") / "out"
    manifest = out.parent / "manifest.csv"
    manifest.write_text(f"study_id,path,seed_x,seed_y,seed_z\nimt,{SAMPLE_DICOM / 'imt_case'},108,0,-10\n")
    summary = run_batch(manifest, PIPELINE, out, seg=True, show_progress=False)
    assert summary.ok
    with open(out / "features.csv", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    return out / "lesions" / "imt" / "1", row


def test_the_report_holds_the_rows_numbers_with_units_and_codes(lesion):
    folder, row = lesion
    report = hd.sr.srread(folder / "sr.dcm")
    assert isinstance(report, hd.sr.Comprehensive3DSR)
    [group] = report.content.get_volumetric_roi_measurement_groups()
    assert group.tracking_identifier == "imt lesion 1"
    measured = {
        (m.name.meaning, m.derivation.meaning if m.derivation else ""): (m.value, m.unit.value)
        for m in group.get_measurements()
    }
    # each to the precision it has (0.1 mm, 0.1 mm³, SER 0.01, ADC 1 µm²/s, IBSI 4 digits)
    assert measured[("Volume", "")] == (round(float(row["lesion_volume_mm3"]), 1), "mm3")
    assert measured[("Long axis", "")] == (round(float(row["lesion_longest_diameter_mm"]), 1), "mm")
    adc_mean = measured[("Apparent Diffusion Coefficient", "Mean")]
    assert adc_mean == (round(1000 * float(row["adc_mean_um2_ms"])), "um2/s")  # 10^-3 mm²/s -> µm²/s
    ser = measured[("Signal enhancement ratio (lesion mean curve)", "")]
    assert ser == (round(float(row["kinetic_ser"]), 2), "1")
    ibsi = {m.name.value: m.value for m in group.get_measurements() if m.name.scheme_designator == "IBSI"}
    assert ibsi["QCFX"] == float(f"{float(row['dce_original_shape_Sphericity']):.4g}")
    raw = pydicom.dcmread(folder / "sr.dcm")
    numbers = [str(e.value) for e in raw.iterall() if e.keyword == "NumericValue"]
    assert numbers and max(len(n.replace("-", "").replace(".", "")) for n in numbers) <= 6, numbers
    evaluations = {q.name.meaning: q.value for q in group.get_qualitative_evaluations()}
    curve = evaluations["Delayed phase curve type (lesion mean curve)"]
    assert row["kinetic_curve_type"] == "II" and curve == codes.DCM.PlateauDelayedPhaseType2Curve
    assert (
        evaluations["Initial phase enhancement (lesion mean curve)"].meaning == row["kinetic_initial_phase"]
    )


def test_the_report_references_the_seg_segment_and_the_source_series(lesion):
    folder, _ = lesion
    seg = pydicom.dcmread(folder / "seg.dcm")
    report = pydicom.dcmread(folder / "sr.dcm")
    [group] = hd.sr.srread(folder / "sr.dcm").content.get_volumetric_roi_measurement_groups()
    items = {item.ValueType: item for item in group.referenced_segment}
    [referenced] = items["IMAGE"].ReferencedSOPSequence
    assert (
        referenced.ReferencedSOPInstanceUID == seg.SOPInstanceUID and referenced.ReferencedSegmentNumber == 1
    )
    source_series = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    assert items["UIDREF"].ConceptNameCodeSequence[0].CodeMeaning == "Source Series for Segmentation"
    assert items["UIDREF"].UID == source_series
    same_study = {
        item.SeriesInstanceUID
        for study in report.CurrentRequestedProcedureEvidenceSequence
        for item in study.ReferencedSeriesSequence
    }
    other_studies = {
        item.SeriesInstanceUID
        for study in report.PertinentOtherEvidenceSequence
        for item in study.ReferencedSeriesSequence
    }
    # research mode: the SR lives in its SEG's (new) study; the images are in their own study
    assert same_study == {seg.SeriesInstanceUID} and other_studies == {source_series}
    assert report.StudyInstanceUID == seg.StudyInstanceUID  # one study in PACS


def test_the_report_is_deidentified_but_its_content_is_kept(lesion):
    folder, _ = lesion
    report = pydicom.dcmread(folder / "sr.dcm")
    assert str(report.PatientName) == "imt" and report.PatientID == "imt"
    assert report.PatientIdentityRemoved == "YES"
    text = str(report)
    assert "Synthetic^" not in text and "SYN-" not in text and "ANONYMIZED" not in text
    assert report.ContentSequence[0].ValueType == "CODE"  # not rewritten by the profile


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed")
def test_sr_and_seg_pass_the_standards_own_iod_check(lesion):
    folder, _ = lesion
    for name in ("seg.dcm", "sr.dcm"):
        done = subprocess.run(["dciodvfy", str(folder / name)], capture_output=True, text=True)
        errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], f"{name}: {errors}"


def _ids(path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.get("SeriesDescription", ""))


@pytest.mark.parametrize("keep_phi", [False, True], ids=["research", "clinical"])
def test_each_mode_is_one_consistent_study_context(tmp_path, keep_phi):
    """research (de-identified): every SEG and SR of a study share the pseudonym and one new
    research study, never the source's (a PACS would see two patients in one study); clinical
    (--keep-phi): the source's patient and study. Each says what it is in SeriesDescription."""
    from radimt.dicom.study import load_study
    from radimt.io.deidentify import research_study_uid

    study = SAMPLE_DICOM / "imt_case"
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        f"study_id,path,lesion_id,seed_x,seed_y,seed_z\nimt,{study},1,108,0,-10\nimt,{study},2,108,0,-10\n"
    )
    out = tmp_path / "out"
    assert run_batch(manifest, PIPELINE, out, seg=True, keep_phi=keep_phi, show_progress=False).ok
    source = load_study(study)
    source_patient = str(pydicom.dcmread(source.series[0].first.path, stop_before_pixels=True).PatientID)
    found = {
        (lesion, name): _ids(out / "lesions" / "imt" / lesion / f"{name}.dcm")
        for lesion in "12"
        for name in ("seg", "sr")
    }
    patients = {patient for patient, _, _ in found.values()}
    studies = {uid for _, uid, _ in found.values()}
    if keep_phi:
        assert patients == {source_patient} and studies == {source.study_uid}
    else:
        assert patients == {"imt"} and studies == {research_study_uid(source.study_uid, "imt")}
        assert source.study_uid not in studies
    assert found[("1", "seg")][2] == "radimt lesion segmentation: imt lesion 1"
    assert found[("2", "sr")][2] == "radimt lesion measurements (TID 1500): imt lesion 2"
