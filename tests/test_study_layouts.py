"""Every DCE layout, every vendor b-value convention and every ADC unit, on synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest

import radimt
from radimt.synth.phantom import enhancement_curve
from radimt.synth.studies import write_mr_study
from tests.conftest import ball_mean, small_spec


@pytest.mark.parametrize("layout", ["single", "per_phase", "pre_post", "enhanced"])
def test_every_dce_layout_gives_phases_in_time_order(layout, tmp_path):
    spec = small_spec(dce_layout=layout, initial_enhancement=120.0, delayed_change=-0.3)
    truth = write_mr_study(str(tmp_path), spec)
    study = radimt.load_study(tmp_path)
    dce = study.dce
    assert len(dce.phases) == 6
    np.testing.assert_allclose(dce.times, truth["kinetics"]["times_s"], atol=1e-3)
    assert {p.GetSize() for p in dce.phases} == {(48, 48, 12)}
    # The lesion's signal follows the known curve: S = S0 (1 + RE/100), within noise.
    centre = spec.lesion.centre
    signal = np.array([ball_mean(p, centre, 5.0) for p in dce.phases])
    expected = spec.lesion_t1 * (1 + enhancement_curve(dce.times, 120.0, -0.3) / 100)
    np.testing.assert_allclose(signal, expected, rtol=0.05)
    # No other series was taken for a phase, and nothing else holds the DCE role.
    assert len(study.series_for("dce")) == 6
    assert study.t1 is None


def test_single_series_dce_uses_trigger_time_and_temporal_positions(tmp_path):
    write_mr_study(str(tmp_path), small_spec(dce_layout="single"))
    dce = radimt.load_study(tmp_path).dce
    assert dce.time_source == "trigger"
    assert [s.temporal_position for s in dce.series] == [1, 2, 3, 4, 5, 6]


def test_pre_contrast_series_without_dynamic_name_is_joined(tmp_path):
    write_mr_study(str(tmp_path), small_spec(dce_layout="pre_post"))
    study = radimt.load_study(tmp_path)
    pre = study.dce.series[0]
    assert pre.description == "t1 fl3d tra fs"
    assert "pre-contrast" in pre.note
    assert study.dce.time_source == "acquisition"


def test_unequal_phase_spacing_is_kept(tmp_path):
    times = (0.0, 60.0, 100.0, 200.0, 400.0, 700.0)
    write_mr_study(str(tmp_path), small_spec(dce_layout="per_phase", times=times))
    np.testing.assert_allclose(radimt.load_study(tmp_path).dce.times, times, atol=1e-3)


@pytest.mark.parametrize("convention", ["standard", "siemens", "ge", "philips"])
def test_every_vendor_b_value_convention(convention, tmp_path):
    write_mr_study(str(tmp_path), small_spec(b_convention=convention, b_values=(0.0, 50.0, 800.0)))
    study = radimt.load_study(tmp_path)
    dwi = study.dwi
    np.testing.assert_array_equal(dwi.b_values, [0.0, 50.0, 800.0])
    centre = small_spec().lesion.centre
    s0, s800 = ball_mean(dwi.images[0], centre, 5), ball_mean(dwi.images[2], centre, 5)
    # Lesion ADC 1.0e-3 mm²/s: S800/S0 = exp(-0.8).
    assert -np.log(s800 / s0) / 800 * 1e3 == pytest.approx(1.0, abs=0.08)


def test_private_tag_of_another_creator_is_not_a_b_value(tmp_path):
    import pydicom

    from radimt.synth.writer import Grid, SeriesSpec, write_volume

    spec = SeriesSpec("p", "ct", 3, "CT with a private (0019,100C)", "CT", frame_of_reference="ct")
    grid = Grid((8, 8, 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    paths = write_volume(str(tmp_path), spec, np.zeros((3, 8, 8), np.uint16), grid, intercept=-1024.0)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x0C, "IS", "1000")
        ds.save_as(path)
    [series] = radimt.scan(tmp_path)
    assert series.b_value is None and series.role == "ct"


@pytest.mark.parametrize("units", ["micro", "milli", "si"])
def test_adc_map_comes_back_in_1e3_mm2_per_s(units, tmp_path):
    write_mr_study(str(tmp_path), small_spec(adc_units=units, lesion_adc=0.9))
    adc = radimt.load_study(tmp_path).adc
    assert ball_mean(adc, small_spec().lesion.centre, 5) == pytest.approx(0.9, abs=0.05)


def test_roles_can_be_forced_by_number_or_description(tmp_path):
    write_mr_study(str(tmp_path), small_spec(dce_layout="per_phase"))
    study = radimt.load_study(tmp_path, roles={"t1": 12})
    assert [s.series_number for s in study.series_for("t1")] == [12]
    study = radimt.load_study(tmp_path, roles={"t2": r"diff_tra$"})
    assert [s.key for s in study.series_for("t2")] == ["3.1", "3.2"]
    assert study.series_for("dwi") == []  # the rules' choice gave way
    with pytest.raises(radimt.RadimtError, match="no series matches"):
        radimt.load_study(tmp_path, roles={"adc": "nothing like this"})


def test_dynamic_series_without_temporal_tags_is_split_by_time(tmp_path):
    import pydicom

    write_mr_study(str(tmp_path), small_spec(dce_layout="single"))
    for path in (tmp_path / "MR" / "dce").iterdir():
        ds = pydicom.dcmread(path)
        del ds.TemporalPositionIdentifier, ds.TriggerTime, ds.NumberOfTemporalPositions
        ds.SeriesDescription = "t1_fl3d_tra"  # nothing in the name says dynamic
        ds.save_as(path)
    dce = radimt.load_study(tmp_path).dce
    assert len(dce.phases) == 6 and dce.time_source == "acquisition"
    np.testing.assert_allclose(dce.times, [0, 90, 180, 270, 360, 450], atol=1e-3)
