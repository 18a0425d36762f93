"""Mammography and ultrasound: spacing, photometry, laterality/view, cine loops."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.synth.studies import write_mammograms, write_ultrasound_image
from radimt.synth.writer import SeriesSpec, write_mammogram, write_ultrasound


def _disk_contrast(image: sitk.Image, centre_rc, radius_px) -> tuple[float, float]:
    arr = sitk.GetArrayViewFromImage(image)
    rr, cc = np.indices(arr.shape)
    d = np.hypot(rr - centre_rc[0], cc - centre_rc[1])
    return float(arr[d < 0.5 * radius_px].mean()), float(
        arr[(d > 1.5 * radius_px) & (d < 2.5 * radius_px)].mean()
    )


def test_mammograms_monochrome1_inverted_with_magnification_corrected_spacing(tmp_path):
    truth = write_mammograms(str(tmp_path), "mg", spacing_mm=0.25)
    study = radimt.load_study(tmp_path)
    views = {m.view: m for m in study.mg}
    assert set(views) == {"CC", "MLO"}
    for view, m in views.items():
        assert m.laterality == "L"
        assert m.presentation_intent == "FOR PRESENTATION"
        assert m.spacing_source == "ImagerPixelSpacing/magnification"
        assert m.image.GetSpacing() == pytest.approx((0.25, 0.25))
        assert m.image.GetDimension() == 2
        inside, around = _disk_contrast(m.image, truth[view]["centre_rc"], 6.0 / 0.25)
        assert inside > around + 300  # the density is brighter, as a radiologist sees it
        stored = pydicom.dcmread(m.series.first.path).pixel_array
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(m.image), 4095 - stored.astype(int))


def test_mammogram_pixel_spacing_wins_and_zero_spacing_is_missing(tmp_path):
    image = np.full((20, 30), 1000, np.uint16)
    spec = SeriesSpec("mg", "mg1", 1, "R CC", "MG")
    path = write_mammogram(
        str(tmp_path / "a.dcm"),
        spec,
        image,
        pixel_spacing_mm=0.1,
        laterality="R",
        view="CC",
        magnification=None,
    )
    ds = pydicom.dcmread(path)
    ds.PixelSpacing = ["0.07", "0.08"]
    ds.save_as(path)
    [m] = radimt.load_study(tmp_path).mg
    assert m.spacing_source == "PixelSpacing" and m.image.GetSpacing() == pytest.approx((0.08, 0.07))
    ds.PixelSpacing = ["0", "0"]
    ds.save_as(path)
    [m] = radimt.load_study(tmp_path).mg
    assert m.spacing_source == "ImagerPixelSpacing" and m.image.GetSpacing() == pytest.approx((0.1, 0.1))
    del ds.ImagerPixelSpacing
    ds.save_as(path)
    with pytest.raises(radimt.RadimtError, match="pixel size is unknown"):
        _ = radimt.load_study(tmp_path).mg


def test_ultrasound_spacing_from_regions_in_cm_and_grey_from_rgb(tmp_path):
    truth = write_ultrasound_image(str(tmp_path), "us", spacing_mm=0.1)
    [us] = radimt.load_study(tmp_path).us
    assert us.spacing_source == "UltrasoundRegion"
    assert us.image.GetSpacing() == pytest.approx((0.1, 0.1))
    assert us.region.y0 == 30
    inside, around = _disk_contrast(us.image, truth["centre_rc"], 60)
    assert inside < 0.5 * around  # hypoechoic
    rgb = pydicom.dcmread(us.series.first.path).pixel_array.astype(float)
    luma = rgb @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(us.image), luma, atol=1e-3)


def test_ultrasound_ybr_equals_rgb_and_cine_keeps_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 255, (5, 40, 60))
    spec = SeriesSpec("us", "cine", 1, "cine", "US")
    write_ultrasound(str(tmp_path / "rgb" / "a"), spec, frames, pixel_spacing_mm=0.2)
    write_ultrasound(str(tmp_path / "ybr" / "a"), spec, frames, pixel_spacing_mm=0.2, colour="YBR_FULL")
    [rgb] = radimt.load_study(tmp_path / "rgb").us
    [ybr] = radimt.load_study(tmp_path / "ybr").us
    assert rgb.frames.GetSize() == (60, 40, 5) and rgb.frame_time_ms == pytest.approx(40.0)
    a, b = sitk.GetArrayViewFromImage(rgb.frames), sitk.GetArrayViewFromImage(ybr.frames)
    assert np.abs(a - b).max() <= 1.5  # YBR_FULL round trip rounds each channel
