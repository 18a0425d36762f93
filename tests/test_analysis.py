"""One lesion, one path: the batch, the command line and the API give the same mask and row."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from radimt.analysis import LesionInput, analyse_lesion, delineate, reference_image, role_image
from radimt.cli import main
from radimt.dicom import roles as dicom_roles
from radimt.dicom.study import load_study
from radimt.errors import RoleError, SeedError
from radimt.pipeline import config as config_module
from radimt.pipeline.runner import run_batch
from radimt.roles import DEFAULT_PRESETS, REFERENCE_ORDER, ROLES, Role, role
from radimt.segment import PRESETS
from tests.conftest import REPO, SAMPLE_DICOM

SEED = (108.0, 0.0, -10.0)  # imt_case's lesion, as in sample_dicom/manifest.csv
PIPELINE = REPO / "pipelines" / "multimodal.yaml"


@pytest.fixture(scope="module")
def study():
    return load_study(SAMPLE_DICOM / "imt_case")


def _same(a: sitk.Image, b: sitk.Image) -> bool:
    return np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b)) and np.allclose(
        a.GetOrigin(), b.GetOrigin()
    )


def test_one_role_table_for_loader_configuration_and_analysis():
    assert dicom_roles.ROLES is ROLES and config_module.ROLES is ROLES
    assert set(REFERENCE_ORDER) == set(ROLES) == set(DEFAULT_PRESETS)
    for r in Role:
        assert r.segmentation_preset in PRESETS  # every role segments with a preset that exists
    assert role("DWI") == "dwi" and Role.ADC.segmentation_preset == "adc" and Role.US.planar
    with pytest.raises(RoleError, match="unknown role 'pet'.*dce, dwi"):
        role("pet")


def test_reference_is_the_dce_subtraction_and_is_computed_once(study):
    reference = reference_image(study)
    assert reference.role == "dce" and reference.label == "DCE early subtraction"
    assert reference.image is role_image(study, "dce", 1)  # the study's cached subtraction
    assert reference.series is study.dce.series[1]
    # a seed picked on a DCE phase still delineates on the subtraction when the role is dce ...
    phase_key = study.dce.series[3].key
    assert reference_image(study, "dce", series=phase_key).image is reference.image
    # ... and on that phase itself when no role is asked for (as `radimt segment --series`)
    own = reference_image(study, series=phase_key)
    assert own.series is study.dce.series[3] and own.label == f"series {phase_key}"


@pytest.mark.parametrize("reference_role", ["adc", "dwi", "t2", "dce"])
def test_each_role_segments_with_its_own_preset(study, monkeypatch, reference_role):
    """The command line and the batch once disagreed (DWI: "dwi" vs "mr"); now the table decides,
    and a ``modality`` in the pipeline's segmentation options still wins."""
    import radimt.analysis

    used = []
    monkeypatch.setattr(
        radimt.analysis, "segment_from_seed", lambda image, seed, **kw: used.append(kw["modality"]) or image
    )
    delineate(study, LesionInput(seed=SEED), reference_role=reference_role)
    delineate(study, LesionInput(seed=SEED), reference_role=reference_role, segmentation={"modality": "ct"})
    assert used == [Role(reference_role).segmentation_preset, "ct"]


def test_an_index_seed_on_a_dce_phase_is_placed_by_that_series_geometry(study):
    """No volume is read to convert it: the series' slice geometry gives the point."""
    phase = study.dce.phases[2]
    index = phase.TransformPhysicalPointToContinuousIndex(SEED)
    _, by_index = delineate(
        study,
        LesionInput(seed=tuple(index), seed_is_index=True, series=study.dce.series[2].key),
        reference_role="dce",
    )
    _, by_point = delineate(study, LesionInput(seed=SEED), reference_role="dce")
    assert _same(by_index, by_point)


def test_lesion_input_is_a_seed_or_a_mask():
    with pytest.raises(SeedError, match="exactly one"):
        LesionInput()
    with pytest.raises(SeedError, match="exactly one"):
        LesionInput(seed=(1.0, 2.0, 3.0), mask="mask.nii.gz")


def test_batch_cli_and_api_give_the_same_lesion(study, tmp_path):
    config = config_module.load_config(PIPELINE)
    result = analyse_lesion(study, LesionInput(seed=SEED), config.analysis)
    assert set(result.stage_seconds) == {"reference image", "segmentation", "features"}

    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        f"study_id,path,seed_x,seed_y,seed_z\nimt_case,{SAMPLE_DICOM / 'imt_case'},108,0,-10\n"
    )
    run_batch(manifest, PIPELINE, tmp_path / "out", show_progress=False)
    with open(tmp_path / "out" / "features.csv", newline="") as fh:
        [batch_row] = list(csv.DictReader(fh))
    for key, value in result.row.items():
        if isinstance(value, float):
            assert float(batch_row[key]) == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert batch_row[key] == str(value), key
    batch_mask = sitk.ReadImage(str(tmp_path / "out" / "lesions" / "imt_case" / "1" / "mask.nii.gz"))
    assert _same(batch_mask, result.mask)

    assert (
        main(
            [
                "segment",
                str(SAMPLE_DICOM / "imt_case"),
                "--seed",
                "108,0,-10",
                "--out",
                str(tmp_path / "m.nii.gz"),
            ]
        )
        == 0
    )
    assert _same(sitk.ReadImage(str(tmp_path / "m.nii.gz")), result.mask)
    curves = result.curve_rows()
    assert len(curves) == 2 * len(study.dce.phases) and {c["curve"] for c in curves} == {
        "mean",
        "most_suspicious",
    }


def test_options_check_themselves_wherever_they_come_from():
    """A value out of range is refused by the options class itself: from the API as from YAML."""
    import radimt
    from radimt.errors import OptionError

    image = sitk.Image([20, 20, 10], sitk.sitkFloat32)
    with pytest.raises(OptionError, match="SegmentOptions: tolerance: 7 is out of range"):
        radimt.segment_from_seed(image, (5.0, 5.0, 5.0), tolerance=7)
    with pytest.raises(OptionError, match="KineticOptions: ftv_background: 2.0 is out of range"):
        radimt.KineticOptions(ftv_background=2.0)
    with pytest.raises(OptionError, match="AnalysisConfig: dce_phase: 0 is out of range"):
        radimt.AnalysisConfig(dce_phase=0)
    with pytest.raises(OptionError, match="unknown modality 'pet'"):
        radimt.AnalysisConfig(segmentation={"modality": "pet"})
    with pytest.raises(RoleError, match="unknown role 'pet'"):
        radimt.AnalysisConfig(roles=("dce", "pet"))
    config = radimt.AnalysisConfig(reference="US", roles=["dce"], presets={"adc": "ct"})
    assert config.reference is Role.US and config.roles == (Role.DCE,)
    assert config.presets[Role.ADC] == "ct" and config.presets["dce"] == "mr"  # the rest keep defaults


def test_feature_config_is_the_deprecated_name_of_analysis_config():
    import radimt

    with pytest.warns(DeprecationWarning, match="now radimt.AnalysisConfig"):
        config = radimt.FeatureConfig(roles=("dce",))
    assert isinstance(config, radimt.AnalysisConfig) and "FeatureConfig" not in radimt.__all__
