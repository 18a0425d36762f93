"""DCE kinetics against synthetic curves with known type, exact edges, and the per-voxel maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

import radimt
from radimt.dicom.study import DCE
from radimt.errors import MaskError, TimingError
from radimt.kinetics import kinetic_curve, kinetic_maps
from radimt.synth.phantom import Lesion, enhancement_curve, lesion_fraction
from radimt.synth.writer import Grid
from tests.conftest import SAMPLE_DICOM

TIMES = np.array([0.0, 90.0, 180.0, 270.0, 360.0, 450.0])
GRID = Grid((32, 32, 20), (1.0, 1.0, 1.5), (0.0, 0.0, 0.0))
LESION = Lesion((16.0, 16.0, 15.0), 12.0)


def _images(stack: np.ndarray) -> list[sitk.Image]:
    images = []
    for volume in stack:
        image = sitk.GetImageFromArray(volume.astype(np.float32))
        image.SetSpacing(GRID.spacing)
        images.append(image)
    return images


def synthetic_dce(initial: float, delayed: float, noise: float = 3.0, seed: int = 0, times=TIMES):
    """Lesion (S0 = 100) with a known curve over parenchyma (S0 = 80, mild enhancement)."""
    rng = np.random.default_rng(seed)
    fraction = lesion_fraction(GRID, LESION)
    lesion_re = enhancement_curve(np.asarray(times), initial, delayed)
    background_re = enhancement_curve(np.asarray(times), 10.0, 0.05)
    stack = np.stack(
        [
            80 * (1 + b / 100) * (1 - fraction)
            + 100 * (1 + r / 100) * fraction
            + rng.normal(0, noise, fraction.shape)
            for r, b in zip(lesion_re, background_re, strict=True)
        ]
    )
    mask = sitk.GetImageFromArray((fraction >= 0.99).astype(np.uint8))  # the lesion's core
    images = _images(stack)
    mask.CopyInformation(images[0])
    return DCE(phases=images, times=np.asarray(times, float), time_source="test", series=[]), mask


@pytest.mark.parametrize(("initial", "expected_initial"), [(35.0, "slow"), (75.0, "medium"), (150.0, "fast")])
@pytest.mark.parametrize(("delayed", "expected_type"), [(0.3, "I"), (0.0, "II"), (-0.3, "III")])
def test_every_curve_type_and_initial_class_is_recovered(initial, expected_initial, delayed, expected_type):
    dce, mask = synthetic_dce(initial, delayed)
    curve = kinetic_curve(dce, mask)
    assert curve.mean.initial_phase == expected_initial
    assert curve.curve_type == expected_type
    assert curve.most_suspicious.curve_type == expected_type
    assert curve.mean.initial_enhancement_pct == pytest.approx(initial, rel=0.05)
    assert curve.mean.delayed_change_pct == pytest.approx(100 * delayed, abs=2.0)
    if initial >= 50:  # enhancing: the CAD shares follow the curve type
        name = {"I": "persistent", "II": "plateau", "III": "washout"}[expected_type]
        assert curve.shares[name] > 0.9


def _flat_dce(signal_by_phase, times=(0.0, 60.0, 120.0, 240.0)):
    stack = np.stack([np.full(GRID.size[::-1], s, np.float32) for s in signal_by_phase])
    images = _images(stack)
    mask = sitk.Image(images[0].GetSize(), sitk.sitkUInt8) + 1
    mask.CopyInformation(images[0])
    return DCE(phases=images, times=np.array(times), time_source="test", series=[]), mask


@pytest.mark.parametrize(
    ("signals", "initial", "delayed"),
    [
        ((100, 150, 150, 150), "medium", "plateau"),  # exactly 50 %: medium
        ((100, 200, 200, 200), "medium", "plateau"),  # exactly 100 %: medium
        ((100, 149.99, 149.99, 149.99), "slow", "plateau"),
        ((100, 200.01, 200.01, 200.01), "fast", "plateau"),
        ((100, 150, 160, 165), "medium", "plateau"),  # exactly +10 % of the peak signal: plateau
        ((100, 150, 140, 135), "medium", "plateau"),  # exactly -10 %: plateau
        ((100, 150, 160, 165.02), "medium", "persistent"),
        ((100, 150, 140, 134.98), "medium", "washout"),
    ],
)
def test_curves_on_a_threshold_follow_the_documented_rule(signals, initial, delayed):
    dce, mask = _flat_dce(signals, times=(0.0, 60.0, 180.0, 300.0))  # only 60 s is initial
    curve = kinetic_curve(dce, mask)
    assert (curve.mean.initial_phase, curve.mean.delayed_phase) == (initial, delayed)


def test_semi_quantitative_parameters_by_hand():
    # S0 = 100; phases at 0, 60, 120, 240, 480 s; contrast arrives with the first phase (t = 0).
    dce, mask = _flat_dce((100, 160, 180, 170, 150), times=(0.0, 60.0, 120.0, 240.0, 480.0))
    m = kinetic_curve(dce, mask).mean
    assert m.initial_enhancement_pct == pytest.approx(80.0)  # best within 120 s
    assert m.peak_enhancement_pct == pytest.approx(80.0) and m.time_to_peak_s == pytest.approx(120.0)
    assert m.wash_in_rate_pct_s == pytest.approx(80.0 / 120.0)
    assert m.washout_rate_pct_s == pytest.approx((80.0 - 50.0) / 360.0)
    assert m.delayed_change_pct == pytest.approx(100 * (150 - 180) / 180)
    # SER: early = phase nearest 150 s (120 s), late = nearest 450 s (480 s).
    assert m.ser == pytest.approx((180 - 100) / (150 - 100))
    assert m.iauc60 == pytest.approx(0.5 * 60 * 60)  # 0 -> 60 % over 60 s
    assert m.iauc90 == pytest.approx(0.5 * 60 * 60 + 30 * (60 + 70) / 2)  # RE(90 s) = 70 %


def test_time_to_peak_is_when_the_curve_reaches_its_plateau_not_where_noise_tops_it():
    """A flat plateau whose last phase is 1 % higher by noise peaked when it got there (90 s), not
    at 360 s; a curve still rising keeps its late peak; the band is an option."""
    times = (0.0, 90.0, 180.0, 270.0, 360.0)
    plateau, mask = _flat_dce((100, 180, 181, 179, 182), times=times)
    assert kinetic_curve(plateau, mask).mean.time_to_peak_s == pytest.approx(90.0)
    rising, mask = _flat_dce((100, 150, 170, 190, 210), times=times)  # 0.9 x 210 = 189: 270 s
    assert kinetic_curve(rising, mask).mean.time_to_peak_s == pytest.approx(270.0)
    strict = kinetic_curve(plateau, mask, peak_tolerance_pct=0.0).mean
    assert strict.time_to_peak_s == pytest.approx(360.0)  # the highest phase itself


def test_unequal_times_and_several_baseline_phases():
    times = (0.0, 20.0, 80.0, 130.0, 300.0, 600.0)
    dce, mask = _flat_dce((100, 102, 180, 190, 185, 170), times=times)
    curve = kinetic_curve(dce, mask, n_baseline=2)
    assert curve.n_baseline == 2 and curve.arrival_s == 20.0
    assert curve.mean.initial_enhancement_pct == pytest.approx(100 * (190 - 101) / 101)


def test_bad_timing_is_an_error_not_a_guess():
    for times in ((0.0, 90.0, 90.0, 180.0), (0.0, 90.0, np.nan, 270.0), (0.0, 180.0, 90.0, 270.0)):
        dce, mask = _flat_dce((100, 150, 150, 150), times=times)
        with pytest.raises(TimingError):
            kinetic_curve(dce, mask)


def test_mask_must_be_on_the_dce_grid():
    dce, mask = synthetic_dce(80, 0)
    moved = sitk.Image(mask)
    moved.SetOrigin((5.0, 0.0, 0.0))
    with pytest.raises(MaskError, match="resample_mask"):
        kinetic_curve(dce, moved)
    with pytest.raises(MaskError, match="empty"):
        kinetic_curve(dce, mask * 0)


def test_voxel_maps_equal_the_roi_analysis_voxel_by_voxel():
    dce, mask = synthetic_dce(120, -0.25, noise=6.0, seed=3)
    maps = kinetic_maps(dce, mask, crop=False)  # pasted into the DCE grid, to index by voxel
    arrays = {
        name: sitk.GetArrayViewFromImage(getattr(maps, name))
        for name in ("peak_enhancement", "initial_enhancement", "ser", "curve_type")
    }
    inside = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    for zyx in inside[:: max(1, len(inside) // 25)]:
        single = sitk.Image(mask.GetSize(), sitk.sitkUInt8)
        single.CopyInformation(mask)
        single[tuple(int(v) for v in zyx[::-1])] = 1
        curve = kinetic_curve(dce, single).mean
        z, y, x = zyx
        assert arrays["peak_enhancement"][z, y, x] == pytest.approx(curve.peak_enhancement_pct, rel=1e-5)
        assert arrays["initial_enhancement"][z, y, x] == pytest.approx(
            curve.initial_enhancement_pct, rel=1e-5
        )
        assert arrays["ser"][z, y, x] == pytest.approx(curve.ser, rel=1e-5)
        expected = {"I": 1, "II": 2, "III": 3}[curve.curve_type] if curve.initial_enhancement_pct >= 50 else 0
        assert arrays["curve_type"][z, y, x] == expected
    outside = sitk.GetArrayViewFromImage(mask) == 0
    assert not arrays["peak_enhancement"][outside].any()
    whole = kinetic_maps(dce)  # the whole volume, vectorised
    np.testing.assert_allclose(
        sitk.GetArrayViewFromImage(whole.peak_enhancement)[~outside],
        arrays["peak_enhancement"][~outside],
        rtol=1e-6,
    )


def test_most_suspicious_region_finds_the_washout_part():
    dce, mask = synthetic_dce(120, 0.3, noise=1.0)  # persistent lesion ...
    stack = np.stack([sitk.GetArrayFromImage(p) for p in dce.phases])
    late = enhancement_curve(TIMES, 140, -0.3)
    stack[:, 9:12, 14:17, 14:17] = (100 * (1 + late / 100))[:, None, None, None]  # ... with a washout focus
    dce = DCE(phases=_images(stack), times=TIMES, time_source="test", series=[])
    curve = kinetic_curve(dce, mask)
    assert curve.curve_type == "I" and curve.most_suspicious.curve_type == "III"
    z, y, x = 10, 15, 15
    assert np.allclose(curve.most_suspicious_lps, (x * 1.0, y * 1.0, z * 1.5), atol=1.6)
    assert curve.most_suspicious_voxels >= 3


def test_ftv_of_a_strongly_enhancing_lesion_is_its_volume():
    dce, mask = synthetic_dce(150, 0.0, noise=1.0)
    curve = kinetic_curve(dce, mask)
    assert curve.ftv_cm3 == pytest.approx(radimt.mask_volume_mm3(mask) / 1000, rel=0.02)
    slow, slow_mask = synthetic_dce(40, 0.3, noise=1.0)
    assert kinetic_curve(slow, slow_mask).ftv_cm3 == 0.0


def test_to_dict_and_plot(tmp_path):
    dce, mask = synthetic_dce(75, 0.0)
    curve = kinetic_curve(dce, mask)
    row = curve.to_dict()
    assert row["kinetic_curve_type"] == "II" and row["kinetic_initial_phase"] == "medium"
    assert row["kinetic_suspicious_curve_type"] == "II" and 0 <= row["kinetic_share_plateau"] <= 1
    assert all(isinstance(v, (int, float, str)) for v in row.values())
    fig = curve.plot()
    assert "type II" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "tic.png")
    assert (tmp_path / "tic.png").stat().st_size > 1000


def test_published_case_medium_plateau_type_ii():
    study = radimt.load_study(SAMPLE_DICOM / "imt_case")
    truth = json.loads((SAMPLE_DICOM / "imt_case" / "truth.json").read_text())
    mask = radimt.segment_from_seed(radimt.subtraction(study.dce, 1), truth["lesion"]["centre_lps"])
    curve = kinetic_curve(study.dce, mask)
    assert (curve.mean.initial_phase, curve.mean.delayed_phase, curve.curve_type) == (
        "medium",
        "plateau",
        "II",
    )
    assert abs(radimt.longest_diameter_mm(mask) - 12.0) <= 1.5
