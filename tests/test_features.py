"""Radiomic features: IBSI phantom, cropped equals uncropped, presets, bad input, determinism."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radimt.errors import MaskError
from radimt.features import PRESETS, FeatureError, extract_features, load_params
from radimt.ibsi import ibsi_features
from radimt.synth.phantom import lesion_image

IBSI = Path(__file__).parent / "data" / "ibsi"
IBSI_TARGET = 482  # every reference value of the IBSI-1 digital phantom


@pytest.fixture(scope="module")
def lesion():
    image, truth, _ = lesion_image("lobulated", 5.0, size=(110, 110, 80), seed=0)
    return sitk.Cast(image * 10 + 500, sitk.sitkFloat32), truth


def test_ibsi_digital_phantom_reference_values():
    image = sitk.ReadImage(str(IBSI / "digital_phantom" / "image" / "phantom.nii.gz"))
    mask = sitk.ReadImage(str(IBSI / "digital_phantom" / "mask" / "mask.nii.gz"))
    ours = ibsi_features(image, mask)
    reproduced, failures = 0, []
    with open(IBSI / "ibsi1_digital_phantom_reference_values.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        key = (row["family"], row["feature"], row["aggregation"])
        tolerance = float(row["tolerance"] or row["tolerance_implied"] or 0.0)
        value = ours.get(key, math.nan)
        if math.isfinite(value) and abs(value - float(row["value"])) <= tolerance + 1e-12:
            reproduced += 1
        else:
            failures.append(f"{key}: {value} vs {row['value']} ± {tolerance}")
    print(f"\nIBSI digital phantom: {reproduced} of {len(rows)} reference values reproduced")
    assert reproduced >= IBSI_TARGET, "\n".join(failures)


@pytest.mark.parametrize("preset", ["mr", "ct"])
def test_cropped_equals_uncropped_with_resampling_normalisation_and_log(lesion, preset):
    image, mask = lesion
    cropped = extract_features(image, mask, preset=preset)
    whole = extract_features(image, mask, preset=preset, crop=False)
    assert cropped.keys() == whole.keys() and any(k.startswith("log-sigma-3-0-mm") for k in whole)
    for key, value in whole.items():
        assert cropped[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_cropped_equals_uncropped_for_log_on_the_original_grid(lesion):
    image, mask = lesion
    types = {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}}
    plain = {"resampledPixelSpacing": None}  # the ct preset without its resampling
    cropped = extract_features(image, mask, preset="ct", image_types=types, **plain)
    whole = extract_features(image, mask, preset="ct", image_types=types, crop=False, **plain)
    for key, value in whole.items():
        assert cropped[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert cropped.provenance["crop_size"] != list(image.GetSize())


def test_every_preset_loads_and_a_users_yaml_is_used_unchanged(tmp_path, lesion):
    for preset in PRESETS:
        params = load_params(preset)
        assert params["featureClass"] and params["setting"]
    yaml_path = tmp_path / "mine.yaml"
    yaml_path.write_text(
        "imageType:\n  Original: {}\nfeatureClass:\n  firstorder: [Mean, Median]\nsetting:\n  binWidth: 10\n"
    )
    image, mask = lesion
    row = extract_features(image, mask, preset=yaml_path)
    assert set(row) == {"original_firstorder_Mean", "original_firstorder_Median"}
    assert row.provenance["settings"]["binWidth"] == 10
    with pytest.raises(FeatureError, match="unknown feature preset"):
        load_params("pet")


def test_2d_presets_on_a_2d_image():
    rng = np.random.default_rng(0)
    values = rng.normal(100, 5, (120, 160)).astype(np.float32)
    yy, xx = np.mgrid[:120, :160]
    inside = (yy - 60) ** 2 + (xx - 80) ** 2 <= 30**2
    values[inside] -= 50
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.1, 0.1))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    for preset in ("us", "mg"):
        row = extract_features(image, mask, preset=preset)
        assert row["original_shape2D_MaximumDiameter"] == pytest.approx(6.0, abs=0.3)  # mm
        assert row["original_shape2D_PixelSurface"] == pytest.approx(math.pi * 3.0**2, rel=0.02)


def test_bad_masks_name_the_lesion(lesion):
    image, mask = lesion
    empty = mask * 0
    with pytest.raises(MaskError, match="lesion 2 on t2: the mask is empty"):
        extract_features(image, empty, what="lesion 2 on t2")
    one = sitk.Image(mask.GetSize(), sitk.sitkUInt8)
    one.CopyInformation(mask)
    one[50, 50, 40] = 1
    with pytest.raises(MaskError, match="1 voxel"):
        extract_features(image, one)
    moved = sitk.Image(mask)
    moved.SetOrigin((100.0, 0.0, 0.0))
    with pytest.raises(MaskError, match="geometry differs"):
        extract_features(image, moved)


def test_rows_are_deterministic(lesion):
    image, mask = lesion
    first = extract_features(image, mask, preset="ct")
    second = extract_features(image, mask, preset="ct")
    assert list(first.items()) == list(second.items())
    assert first.provenance["image_sha256"] == second.provenance["image_sha256"]
    assert "Version" in str(first.provenance["pyradiomics"]) or first.provenance["pyradiomics"]


def test_ibsi_zone_matrices_of_slices_with_different_reach_merge_without_error():
    """A real ROI: slices whose zones lie farther than 27 voxels from the edge, each slice a
    different distance (the per-slice GLDZM matrices have different widths). The 2.5D merge
    equals the matrix built from all slices' zones at once."""
    from radimt.ibsi import _levels, _matrix_features, _zones, texture_matrix_features

    zz, yy, xx = np.ogrid[:3, :120, :120]
    radius = np.array([58, 45, 35])[:, None, None]
    centre = np.sqrt((yy - 60.0) ** 2 + (xx - 60.0) ** 2)
    roi = (centre <= radius) & (zz >= 0)
    rings = radius - centre  # depth below the ROI's edge: concentric 3-voxel rings alternate
    image = sitk.GetImageFromArray(np.where(roi, 100.0 + (rings // 3) % 2, 0.0))
    mask = sitk.GetImageFromArray(roi.astype(np.uint8))
    features = texture_matrix_features(image, mask)
    levels, inside = _levels(image, mask)
    per_slice = [_zones(levels[k : k + 1], inside[k : k + 1], True) for k in range(3)]
    assert len({m.shape[1] for m in per_slice}) == 3 and min(m.shape[1] for m in per_slice) > 27
    width = max(m.shape[1] for m in per_slice)
    merged = sum(np.pad(m, ((0, 0), (0, width - m.shape[1]))) for m in per_slice)
    expected = _matrix_features(merged, int(inside.sum()), "gldzm")
    for name, value in expected.items():
        assert features[("gldzm", name, "2.5D")] == pytest.approx(value, rel=1e-12), name


def test_ibsi_intensity_peak_by_convolution_equals_the_definition():
    """Mean of the voxels within the 1 cm³ sphere's radius of each ROI voxel (truncated at the
    image border), on an anisotropic grid: the convolution against the brute-force definition."""
    from radimt.ibsi import PEAK_RADIUS_MM, _sphere_means

    rng = np.random.default_rng(4)
    values = rng.normal(100, 20, (9, 14, 16))
    roi = np.zeros(values.shape, bool)
    roi[1:5, 2:9, 0:6] = True  # touches the image border
    spacing = (2.0, 0.9, 1.1)  # (z, y, x)
    means = _sphere_means(values, roi, spacing)
    coords = np.argwhere(np.ones(values.shape, bool)) * spacing
    expected = [
        values.ravel()[np.linalg.norm(coords - p * np.asarray(spacing), axis=1) <= PEAK_RADIUS_MM].mean()
        for p in np.argwhere(roi)
    ]
    np.testing.assert_allclose(means, expected, rtol=1e-12)


@pytest.mark.slow
def test_ibsi_morans_i_and_gearys_c_are_exact_in_blocks_and_defined_on_large_rois():
    from radimt.ibsi import _autocorrelation

    rng = np.random.default_rng(5)
    points = rng.uniform(0, 20, (400, 3))
    values = rng.normal(size=400) + points[:, 0] * 0.1
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    weights = np.where(dist > 0, 1 / np.where(dist > 0, dist, 1), 0)
    dev = values - values.mean()
    moran = 400 / weights.sum() * (weights * np.outer(dev, dev)).sum() / (dev**2).sum()
    geary = (
        399 / (2 * weights.sum()) * (weights * (values[:, None] - values[None]) ** 2).sum() / (dev**2).sum()
    )
    assert _autocorrelation(points, values, block=37) == pytest.approx((moran, geary), rel=1e-9)
    grid = np.argwhere(np.ones((28, 28, 27), bool)).astype(float)  # 21,168 voxels (was NaN above 20,000)
    big = _autocorrelation(grid, grid[:, 0] + rng.normal(size=len(grid)))
    assert all(np.isfinite(big)) and big[0] > 0.1 and big[1] < 0.9  # a gradient: positive autocorrelation


@pytest.mark.parametrize("setting", [{"binWidth": 25}, {"resegmentRange": [-50, 300]}, {"binCount": 32}])
def test_ibsi_features_take_ibsi_settings_not_pyradiomics_ones(lesion, setting):
    from radimt.features import FeatureError
    from radimt.ibsi import ibsi_features

    image, mask = lesion[0], lesion[1]
    with pytest.raises(FeatureError, match=r"settings=IBSISettings\(bin_width=.*" + next(iter(setting))):
        ibsi_features(image, mask, **setting)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"binWidth": 25}, "binWidth 25"),
        ({"resegmentRange": [-500, 400]}, "resegmentRange"),
        ({"resampledPixelSpacing": [1, 1, 1]}, "resampledPixelSpacing"),
    ],
)
def test_the_ibsi_preset_refuses_what_pyradiomics_computes_otherwise(lesion, change, named):
    from radimt.features import FeatureError

    image, mask = lesion
    message = rf"preset 'ibsi' follows IBSI, where pyradiomics differs on: {named}"
    with pytest.raises(FeatureError, match=message):
        extract_features(image, mask, preset="ibsi", **change)
    assert extract_features(image, mask, preset="ibsi", binCount=32, image_types=["Original", "Wavelet"])


def test_ibsi_features_take_families_and_refuse_unknown_ones(lesion):
    from radimt.features import FeatureError
    from radimt.ibsi import ibsi_features
    from radimt.ibsi_processing import IBSISettings

    image, mask = lesion[0], lesion[1]
    with pytest.raises(FeatureError, match="unknown IBSI families"):
        ibsi_features(image, mask, families=["glrm"])
    settings = IBSISettings(bin_count=16, outlier_sigma=3.0)
    features = ibsi_features(image, mask, settings, families=["statistics", "intensity_volume_histogram"])
    assert {family for family, _, _ in features} == {"statistics", "intensity_volume_histogram"}


def test_ibsi_intensity_histogram_family_is_computed_on_the_discretised_levels():
    """On a real-valued ROI (here CT-like, not integers from 1) the IH family must describe the
    grey levels floor(x - min) + 1, not the raw intensities (they agree only on the phantom)."""
    from radimt.ibsi import ibsi_features

    rng = np.random.default_rng(8)
    image = sitk.GetImageFromArray(rng.normal(40.0, 6.0, (5, 12, 12)))
    image.SetSpacing((1.0, 1.0, 2.0))
    inside = np.zeros((5, 12, 12), np.uint8)
    inside[1:4, 2:10, 3:9] = 1
    mask = sitk.GetImageFromArray(inside)
    mask.CopyInformation(image)
    values = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0].astype(np.float64)
    levels = np.floor(values - values.min()) + 1
    features = ibsi_features(image, mask)
    assert features[("intensity_histogram", "Mean discretised intensity", "")] == pytest.approx(levels.mean())
    assert features[("intensity_histogram", "Maximum discretised intensity", "")] == pytest.approx(
        levels.max()
    )
    assert features[("statistics", "Mean intensity", "")] == pytest.approx(values.mean())
    assert features[("intensity_histogram", "Discretised intensity variance", "")] == pytest.approx(
        levels.var()
    )


def test_ibsi_morans_i_and_gearys_c_by_convolution_equal_the_pairwise_definition():
    """On a voxel grid the pair sums are convolutions with the 1/distance kernel: the same values
    as the pairwise definition (anisotropic spacing, an irregular ROI, a textured image), in a
    second at 125,000 voxels instead of a minute."""
    from radimt.ibsi import _autocorrelation, _autocorrelation_on_grid

    rng = np.random.default_rng(11)
    for shape, spacing in (((12, 15, 9), (2.5, 0.8, 1.1)), ((22, 26, 24), (1.0, 0.7, 0.7))):
        zz, yy, xx = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
        centre = [(s - 1) / 2 for s in shape]
        roi = sum(((g - c) / (c + 0.3)) ** 2 for g, c in zip((zz, yy, xx), centre, strict=True)) <= 1
        roi &= ~((zz == int(centre[0])) & (yy > centre[1]))  # a cut: not a convex blob
        image = rng.normal(size=shape) * 40 + 3.0 * yy + 200
        pairwise = _autocorrelation(np.argwhere(roi) * np.asarray(spacing), image[roi])
        assert _autocorrelation_on_grid(roi, image, spacing) == pytest.approx(pairwise, rel=1e-9)
    assert roi.sum() > 5000


def test_the_ibsi_preset_computes_ibsi2s_log_not_pyradiomics_scaled_one(lesion):
    """Under preset 'ibsi', LoG is IBSI 2's (no sigma² scaling, mirror boundary, 4 sigma), its
    response then described by pyradiomics: columns say so (log-ibsi-sigma-2-mm-3D_...)."""
    from radimt.features import FeatureError
    from radimt.ibsi_filters import FilterSettings, filter_response

    image, mask = lesion
    row = extract_features(
        image, mask, preset="ibsi", binCount=32, image_types={"Original": {}, "LoG": {"sigma": [2.0]}}
    )
    response = sitk.GetArrayFromImage(
        filter_response(image, FilterSettings("log", boundary="mirror", sigma_mm=2.0))
    )
    inside = sitk.GetArrayFromImage(mask) > 0
    assert row["log-ibsi-sigma-2-mm-3D_firstorder_Mean"] == pytest.approx(response[inside].mean(), rel=1e-6)
    assert "original_firstorder_Mean" in row and not any(k.startswith("log-sigma") for k in row)
    with pytest.raises(FeatureError, match="LoG needs its sigma values in mm"):
        extract_features(image, mask, preset="ibsi", binCount=32, image_types=["Original", "LoG"])
