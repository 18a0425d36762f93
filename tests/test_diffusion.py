"""ADC fitting and ADC statistics, on exact data, synthetic noise, and nibabel's Siemens files."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import radimt
from radimt.dicom.study import DWI
from radimt.diffusion import DiffusionError, adc_map, adc_stats, study_adc
from radimt.synth.studies import write_mr_study
from tests.conftest import ball_mean, small_spec


def _dwi(volumes, b_values) -> DWI:
    images = []
    for v in volumes:
        image = sitk.GetImageFromArray(np.asarray(v, np.float32))
        image.SetSpacing((1.5, 1.5, 3.0))
        images.append(image)
    return DWI(images=images, b_values=np.asarray(b_values, float), series=[])


def test_two_b_values_reproduce_the_closed_form_exactly():
    rng = np.random.default_rng(0)
    s0 = rng.uniform(200, 400, (4, 6, 8))
    sb = s0 * np.exp(-1000 * rng.uniform(0.5e-3, 2.5e-3, s0.shape))
    adc = sitk.GetArrayFromImage(adc_map(_dwi([s0, sb], [0, 1000])))
    expected = -np.log(sb.astype(np.float32) / s0.astype(np.float32)) / 1000 * 1e3
    np.testing.assert_allclose(adc, expected, rtol=1e-5)


def test_least_squares_over_three_b_values_recovers_adc_in_noise():
    rng = np.random.default_rng(1)
    true = 1.2  # 10^-3 mm²/s
    b = np.array([0.0, 400.0, 800.0])
    volumes = [1000 * np.exp(-bi * true * 1e-3) + rng.normal(0, 5, (10, 10, 10)) for bi in b]
    adc = sitk.GetArrayFromImage(adc_map(_dwi(volumes, b)))
    assert np.median(adc) == pytest.approx(true, abs=0.02)


def test_low_b_values_are_left_out_to_limit_perfusion():
    s0 = np.full((3, 3, 3), 1000.0)
    s50 = s0 * 0.7  # a perfusion drop far larger than diffusion at b = 50
    s800 = s0 * np.exp(-0.8)
    default = sitk.GetArrayFromImage(adc_map(_dwi([s0, s50, s800], [0, 50, 800])))
    np.testing.assert_allclose(default, 1.0, rtol=1e-5)  # b = 50 ignored
    everything = sitk.GetArrayFromImage(adc_map(_dwi([s0, s50, s800], [0, 50, 800]), exclude_between=None))
    assert abs(everything.mean() - 1.0) > 0.1  # the perfusion point biases the fit
    with pytest.raises(DiffusionError, match="two or more distinct b-values"):
        adc_map(_dwi([s0, s50], [0, 50]))


def test_noise_level_voxels_are_masked_not_nan():
    s0 = np.zeros((4, 4, 4))
    s0[1:3, 1:3, 1:3] = 500.0
    sb = s0 * np.exp(-0.8)
    sb[0, 0, 0] = 3.0  # background noise
    adc = sitk.GetArrayFromImage(adc_map(_dwi([s0, sb], [0, 800])))
    assert np.isfinite(adc).all() and adc[0, 0, 0] == 0.0
    np.testing.assert_allclose(adc[1:3, 1:3, 1:3], 1.0, rtol=1e-5)


def test_real_siemens_files_give_a_safe_map(siemens_dwi_dir):
    # nibabel's real Siemens DWI (b = 0 and 1000 from the private header) has blanked pixels:
    # the fit must come out all masked rather than NaN or infinity.
    dwi = radimt.load_study(siemens_dwi_dir).dwi
    assert dwi.b_values.tolist() == [0.0, 1000.0]
    adc = sitk.GetArrayFromImage(adc_map(dwi))
    assert adc.shape == (48, 128, 128) and np.isfinite(adc).all() and not adc.any()  # mosaic unpacked


def test_fitted_and_scanner_maps_agree_on_a_synthetic_study(tmp_path):
    spec = small_spec(lesion_adc=0.9)
    write_mr_study(str(tmp_path), spec)
    study = radimt.load_study(tmp_path)
    assert study_adc(study) is study.adc
    fitted = study_adc(study, fit=True)
    assert ball_mean(fitted, spec.lesion.centre, 5.0) == pytest.approx(0.9, abs=0.08)
    assert ball_mean(study.adc, spec.lesion.centre, 5.0) == pytest.approx(0.9, abs=0.05)


def test_adc_statistics_by_hand():
    values = np.zeros((5, 5, 5), np.float32)
    values[1:4, 1:4, 1:4] = np.arange(27, dtype=np.float32).reshape(3, 3, 3) / 10 + 0.5
    adc = sitk.GetImageFromArray(values)
    mask = sitk.GetImageFromArray((values > 0).astype(np.uint8))
    stats = adc_stats(adc, mask)
    inside = values[values > 0]
    assert stats["adc_mean_um2_ms"] == pytest.approx(inside.mean())
    assert stats["adc_median_um2_ms"] == pytest.approx(np.median(inside))
    assert stats["adc_min_um2_ms"] == pytest.approx(0.5) and stats["adc_voxels"] == 27
    assert stats["adc_p10_um2_ms"] == pytest.approx(np.percentile(inside, 10))
    # Darkest neighbourhood: the corner voxel (0.5) with its 7 in-mask 3x3x3 neighbours.
    corner = values[1:3, 1:3, 1:3]
    assert stats["adc_min_region_mean_um2_ms"] == pytest.approx(corner.mean())
    dwi = sitk.GetImageFromArray(np.where(values > 0, 300.0, 100.0).astype(np.float32))
    reference = sitk.GetImageFromArray((values == 0).astype(np.uint8))
    ratio = adc_stats(adc, mask, dwi_image=dwi, reference_mask=reference)["adc_dwi_signal_ratio"]
    assert ratio == pytest.approx(3.0)
