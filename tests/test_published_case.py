"""The published case, as shipped in sample_dicom/, loads with every modality and its truth."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

import radimt
from radimt.synth.phantom import lesion_shell
from radimt.synth.studies import write_sample_dicom
from tests.conftest import SAMPLE_DICOM, ball_mean

CASE = SAMPLE_DICOM / "imt_case"


@pytest.fixture(scope="module")
def case():
    return radimt.load_study(CASE), json.loads((CASE / "truth.json").read_text())


def test_case_has_every_modality_with_roles(case):
    study, truth = case
    assert study.roles == ["dce", "dwi", "adc", "t2", "ct", "mg", "us"]
    other = {s.description: s.note for s in study.series if s.role == "other"}
    assert other == {
        "localizer": "localizer/scout",
        "Screen Save": "secondary capture (a copy of a screen, not an acquisition)",
    }
    assert truth["published_case"]["age"] == 52 and truth["lesion"]["diameter_mm"] == 12.0


def test_case_kinetics_medium_plateau(case):
    study, truth = case
    assert truth["kinetics"]["initial_phase"] == "medium" and truth["kinetics"]["kuhl_type"] == "II"
    centre = truth["lesion"]["centre_lps"]
    signal = np.array([ball_mean(p, centre, 3.0) for p in study.dce.phases])
    enhancement = 100 * (signal - signal[0]) / signal[0]
    assert 50 < enhancement[1] < 100  # medium initial enhancement at 90 s
    assert abs(enhancement[-1] - enhancement[1]) / enhancement[1] < 0.10  # plateau


def test_case_low_adc_and_high_dwi(case):
    study, truth = case
    centre = truth["lesion"]["centre_lps"]
    assert ball_mean(study.adc, centre, 3.0) < 1.3
    b800 = study.dwi.images[-1]
    assert study.dwi.b_values.tolist() == [0.0, 800.0]
    assert ball_mean(b800, centre, 3.0) > 2 * ball_mean(b800, (centre[0] - 30, centre[1], centre[2]), 3.0)


def test_case_lesion_placed_in_lower_outer_left_breast(case):
    study, truth = case
    x, _, z = truth["lesion"]["centre_lps"]
    assert x > 90 and z < 0  # left (+x in LPS), lateral to the breast centre, inferior
    t2 = study.t2
    index = t2.TransformPhysicalPointToIndex(truth["lesion"]["centre_lps"])
    assert sitk.GetArrayViewFromImage(t2)[index[::-1]] > 250  # mildly high T2


def test_case_ct_rim_enhances_more_than_core(case):
    study, truth = case
    ct = study.ct
    from radimt.synth.phantom import Lesion, lesion_fraction
    from radimt.synth.writer import Grid

    grid = Grid(ct.GetSize(), ct.GetSpacing(), ct.GetOrigin())
    fraction = lesion_fraction(grid, Lesion(tuple(truth["ct"]["centre_lps"]), 12.0, "oval"))
    rim, core = lesion_shell(fraction, grid, 2.0)
    hu = sitk.GetArrayViewFromImage(ct)
    solid = fraction >= 0.99  # leave out voxels that share space with the surrounding fat
    assert hu[rim & solid].mean() > hu[core].mean() + 20


def test_sample_dicom_is_what_radimt_synth_writes(tmp_path):
    write_sample_dicom(str(tmp_path))
    compared = filecmp.dircmp(SAMPLE_DICOM, tmp_path)

    def differences(d: filecmp.dircmp) -> list[str]:
        out = d.left_only + d.right_only + d.diff_files
        for sub in d.subdirs.values():
            out += differences(sub)
        return out

    assert differences(compared) == [], "sample_dicom/ is stale: run `make sample`"


def test_a_2d_lesion_has_an_area_perimeter_and_circularity_not_a_volume(case):
    """The case's 12 mm hypoechoic ultrasound lesion, delineated on the US frame: its row gives the
    area of a 12 mm disc (113 mm²), not a "volume" holding that area as before."""
    from radimt.analysis import AnalysisConfig, LesionInput, analyse_lesion

    study, truth = case
    row_px, col_px = truth["us"]["centre_rc"]
    us = next(s for s in study.series if s.role == "us")
    result = analyse_lesion(
        study,
        LesionInput(seed=(col_px, row_px), seed_is_index=True, series=us.key),
        AnalysisConfig(reference="us", roles=("us",), image_types=["Original"]),
    )
    row = result.row
    assert "lesion_volume_mm3" not in row and "lesion_volume_cm3" not in row
    radius = truth["us"]["diameter_mm"] / 2
    assert row["lesion_area_mm2"] == pytest.approx(np.pi * radius**2, rel=0.15)
    assert row["lesion_perimeter_mm"] == pytest.approx(2 * np.pi * radius, rel=0.15)
    assert 0.8 < row["lesion_circularity"] <= 1.05
    assert abs(row["lesion_longest_diameter_mm"] - 12.0) <= 1.5  # the published 12 mm, within 1.5


@pytest.fixture(scope="module")
def every_modality(case):
    """The published case through the one lesion path with the sample manifest's seeds on US, both
    mammographic views and CT (their own frames), besides the MRI seed."""
    from radimt.analysis import LesionInput, analyse_lesion
    from radimt.pipeline.config import load_config
    from radimt.pipeline.manifest import read_manifest
    from tests.conftest import REPO

    study, _ = case
    [task] = [t for t in read_manifest(SAMPLE_DICOM / "manifest.csv") if t.study_id == "imt_case"]
    assert {s.key for s in task.modality_seeds} == {"us", "mg_cc", "mg_mlo", "ct"}
    config = load_config(REPO / "pipelines" / "multimodal.yaml")
    return analyse_lesion(study, LesionInput(seed=task.seed), config.analysis, others=task.modality_seeds)


def _inside_and_around(image: sitk.Image, mask: sitk.Image, ring_mm: float = 3.0) -> tuple[float, float]:
    """Mean intensity in the lesion and in a ring just outside it."""
    radius = [max(1, round(ring_mm / s)) for s in mask.GetSpacing()]
    ring = sitk.BinaryDilate(mask, radius) - mask
    values = sitk.GetArrayViewFromImage(image)
    return (
        float(values[sitk.GetArrayViewFromImage(mask) > 0].mean()),
        float(values[sitk.GetArrayViewFromImage(ring) > 0].mean()),
    )


def test_published_case_in_one_row_reproduces_its_description_in_every_modality(every_modality):
    """MG: a focal density; US: 12 ± 1.5 mm, hypoechoic; MRI: medium initial phase, plateau
    (type II), low ADC; CT: the rim enhances more than the core. One row, every modality."""
    row = every_modality.row
    assert row["kinetic_initial_phase"] == "medium" and row["kinetic_curve_type"] == "II"
    assert row["adc_median_um2_ms"] < 1.3  # 10^-3 mm²/s: restricted diffusion
    assert abs(row["us_lesion_longest_diameter_mm"] - 12.0) <= 1.5
    assert row["us_lesion_area_mm2"] == pytest.approx(np.pi * 36, rel=0.15)
    for key in ("us", "mg_cc", "mg_mlo", "ct"):
        assert row[f"{key}_margin_sharpness_per_mm"] > 0  # 1/mm: boundary gradient over contrast
    for view in ("mg_cc", "mg_mlo"):
        assert abs(row[f"{view}_lesion_longest_diameter_mm"] - 12.0) <= 1.5
        assert f"{view}_original_shape2D_Perimeter" in row and "mg_cc_lesion_volume_mm3" not in row
    assert row["ct_rim_core_ratio"] > 1.0 and row["ct_rim_minus_core_hu"] > 10  # HU
    us_image, us_mask = every_modality.modalities["us"]
    inside, around = _inside_and_around(us_image.image, us_mask)
    assert inside < 0.6 * around  # hypoechoic
    for view in ("mg_cc", "mg_mlo"):
        image, mask = every_modality.modalities[view]
        inside, around = _inside_and_around(image.image, mask)
        assert inside > around  # a density
    skipped = every_modality.provenance["skipped_roles"]
    assert not {"us", "mg", "ct"} & set(skipped), skipped


def test_a_modality_without_a_seed_is_left_out_with_the_reason(case):
    from radimt.analysis import LesionInput, analyse_lesion

    study, truth = case
    result = analyse_lesion(study, LesionInput(seed=tuple(truth["lesion"]["centre_lps"])))
    skipped = result.provenance["skipped_roles"]
    assert skipped["us"].startswith("no seed for this modality") and "us_seed_" in skipped["us"]
    assert "mg" in skipped and not any(k.startswith(("us_", "mg_")) for k in result.row)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed")
def test_every_sample_file_passes_the_standards_own_iod_check():
    """MR, CT, MG (For Presentation), US and SC sample files are complete IODs: dicom3tools'
    dciodvfy finds no error in any of them (CI installs it)."""
    files = sorted(p for p in SAMPLE_DICOM.rglob("*") if p.is_file() and p.suffix not in (".json", ".csv"))
    assert len(files) > 700
    failures = {}
    for path in files:
        done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = sorted(
            {line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")}
        )
        if errors:
            failures[str(path.relative_to(SAMPLE_DICOM))] = errors
    assert not failures, list(failures.items())[:3]
