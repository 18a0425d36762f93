"""DCE timing on real protocols: phase times are acquisition starts, contrast arrives after the
pre-contrast acquisition ends, and SER's early and late phases are never the same phase."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.kinetics import kinetic_curve
from radimt.synth.studies import write_mr_study
from tests.conftest import keep_enhanced_frames, small_spec
from tests.test_kinetics import _flat_dce

#: ACRIN 6657 / I-SPY: pre, early and late acquisitions started 0, 407 and 761 s after the first.
ISPY_TIMES = (0.0, 407.0, 761.0)


def test_three_time_point_ser_uses_the_first_and_last_post_contrast_phases():
    dce, mask = _flat_dce((100.0, 190.0, 170.0), times=ISPY_TIMES)
    curve = kinetic_curve(dce, mask)
    pe_early, pe_late = 90.0, 70.0
    assert curve.mean.ser == pytest.approx(pe_early / pe_late)  # 1.286, not 1.0
    assert curve.mean.initial_enhancement_pct == pytest.approx(pe_early)  # PE at the first post phase
    assert curve.mean.delayed_phase == "washout"  # (170 - 190) / 190 = -10.5 %


@pytest.mark.parametrize("arrival", [None, 120.0, 300.0])
def test_ser_phases_are_distinct_whatever_the_arrival(arrival):
    dce, mask = _flat_dce((100.0, 180.0, 160.0), times=ISPY_TIMES)
    dce.arrival_s = arrival
    curve = kinetic_curve(dce, mask)
    assert curve.mean.ser == pytest.approx(80.0 / 60.0)
    assert curve.arrival_s == (0.0 if arrival is None else arrival)


def test_explicit_arrival_option_wins_over_the_headers():
    dce, mask = _flat_dce((100.0, 180.0, 160.0, 150.0), times=(0.0, 60.0, 120.0, 240.0))
    dce.arrival_s = 50.0
    assert kinetic_curve(dce, mask, arrival_s=10.0).arrival_s == 10.0
    assert kinetic_curve(dce, mask).arrival_s == 50.0


def _per_phase_study(tmp_path, edit):
    spec = small_spec(dce_layout="per_phase")
    write_mr_study(str(tmp_path), spec)
    for path in sorted(tmp_path.glob("MR/dce*/*")):
        ds = pydicom.dcmread(path)
        edit(ds, int(path.parent.name[3:]))
        ds.save_as(path)
    return radimt.load_study(tmp_path)


def test_arrival_is_the_end_of_the_pre_contrast_acquisition(tmp_path):
    def duration(ds, phase):
        ds.AcquisitionDuration = 75.0  # each 3D acquisition lasts 75 s

    dce = _per_phase_study(tmp_path, duration).dce
    assert dce.arrival_s == pytest.approx(75.0)
    assert "AcquisitionDuration" in dce.arrival_source


def _tm(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}{int(seconds % 3600 // 60):02d}{seconds % 60:09.6f}"


def test_arrival_from_contrast_bolus_start_time(tmp_path):
    first = {}

    def injected(ds, phase):
        t = ds.AcquisitionTime
        start = float(t[:2]) * 3600 + float(t[2:4]) * 60 + float(t[4:])
        first.setdefault("start", start)  # phase 1 (the pre-contrast acquisition) comes first
        ds.ContrastBolusStartTime = _tm(first["start"] + 40.0)  # injected 40 s after it started

    dce = _per_phase_study(tmp_path, injected).dce
    assert dce.arrival_s == pytest.approx(40.0, abs=1e-3)
    assert dce.arrival_source == "ContrastBolusStartTime"


def test_without_timing_evidence_arrival_is_left_to_the_kinetics(tmp_path):
    dce = _per_phase_study(tmp_path, lambda ds, phase: None).dce
    assert dce.arrival_s is None and dce.arrival_source == ""


def test_enhanced_dce_whose_every_time_point_is_partial_is_accounted_not_built(tmp_path):
    spec = small_spec(dce_layout="enhanced")
    write_mr_study(str(tmp_path), spec)
    n = spec.grid.size[2]
    # Time point p keeps slices p .. p + 5 of 12: no time point covers the acquisition.
    keep_enhanced_frames(next(tmp_path.glob("MR/dce_enhanced.dcm")), lambda i: i // n <= i % n < i // n + 6)
    study = radimt.load_study(tmp_path)
    assert study.dce is None
    sparse = [s for s in study.series if "sparse dynamic acquisition" in s.note]
    assert len(sparse) == 6 and {s.role for s in sparse} == {"other"}
    assert "6 time points cover 6–6 of 11 slice positions" in sparse[0].note


def test_b5_is_a_b0_for_the_adc(tmp_path):
    from radimt.dicom.study import DWI
    from radimt.diffusion import adc_map

    dce, _ = _flat_dce((100.0, 100.0, 100.0))
    low, high = dce.phases[0], dce.phases[1] * float(np.exp(-0.8))
    high.CopyInformation(low)
    adc = adc_map(DWI(images=[low, high], b_values=np.array([5.0, 805.0]), series=[]))
    assert float(np.median(sitk.GetArrayViewFromImage(adc))) == pytest.approx(1.0, rel=1e-4)
