"""IBSI chapter 2 filters against the phase-1 consensus response maps: every voxel within 1 % of
the map's intensity range (the rule of theibsi/ibsi_2_reference_data), one test per configuration.

The phantoms and the small maps are vendored (tests/data/ibsi2, CC BY 4.0 and CC0); the large
maps are read from ../shared/ibsi2 when present."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radimt.errors import OptionError
from radimt.ibsi_filters import FilterSettings, filter_response

VENDORED = Path(__file__).parent / "data" / "ibsi2"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "ibsi2"


def _fraction(text: str) -> float:
    """'1/2', '5*pi/4', 'pi/8', '4' as numbers."""
    return float(eval(text, {"__builtins__": {}}, {"pi": math.pi}))  # noqa: S307 - the CSV's own


def settings_of(row: dict[str, str]) -> FilterSettings:
    """The CSV's configuration as radimt's FilterSettings."""
    kind = row["filter"]
    family = {
        "mean": "mean",
        "LoG": "log",
        "Laws": "laws",
        "Laws (energy map)": "laws",
        "Gabor": "gabor",
        "separable wavelet (undecimated)": "wavelet",
        "non-separable wavelet (Simoncelli)": "simoncelli",
        "Riesz-transformed LoG": "riesz_log",
        "Riesz-transformed Simoncelli": "riesz_simoncelli",
    }[kind]
    rotation = row["rotation_invariance"].startswith("yes")
    planes = row["dimensionality"].startswith("3D (2D kernel")
    return FilterSettings(
        family,
        dimensionality="2D" if row["dimensionality"] == "2D" or (family == "gabor" and not planes) else "3D",
        boundary=row["boundary_condition"],
        support_vox=int(row["support_vox"]) if row["support_vox"] else None,
        sigma_mm=float(row["sigma_mm"]) if row["sigma_mm"] else None,
        cutoff_sigma=float(row["cutoff_sigma"] or 4),
        laws_kernels=row["laws_kernels"] or None,
        energy_distance_vox=int(row["energy_distance_vox"]) if row["energy_distance_vox"] else None,
        gabor_gamma=_fraction(row["gabor_gamma"]) if row["gabor_gamma"] else None,
        gabor_lambda_mm=_fraction(row["gabor_lambda_mm"]) if row["gabor_lambda_mm"] else None,
        gabor_theta_rad=_fraction(row["gabor_theta_rad"]) if row["gabor_theta_rad"] else 0.0,
        theta_step_rad=_fraction(row["theta_step_rad"]) if row["theta_step_rad"] else None,
        orthogonal_planes=planes,
        wavelet=row["wavelet"].split()[0] if row["wavelet"] and family == "wavelet" else None,
        level=int(row["level"] or 1),
        decomposition=row["decomposition"] if family == "wavelet" else None,
        riesz_order=tuple(int(v) for v in row["riesz_order"].strip("()").split(","))
        if row["riesz_order"]
        else None,  # type: ignore[arg-type]
        rotation_invariant=rotation,
        pooling=row["pooling"] or "max",
        response="real" if row["response"].startswith("real") else "modulus",
    )


ROWS = list(csv.DictReader(open(VENDORED / "phase1_configurations.csv", newline="")))


def _file(relative: str) -> Path | None:
    for root in (VENDORED, SHARED):
        if (root / relative).exists():
            return root / relative
    return None


def _phantom(name: str) -> sitk.Image:
    path = _file(f"phantoms/{name}/{name}.nii.gz") or _file(f"phantoms/{name}/image/{name}.nii.gz")
    assert path is not None
    return sitk.ReadImage(str(path))


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_each_phase1_configuration_matches_its_reference_map(row):
    reference = _file(row["map_file"])
    if reference is None:
        pytest.skip(f"{row['map_file']} is in ../shared/ibsi2 only (not vendored: large)")
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(reference))).astype(np.float64)
    image = _phantom(row["phantom"])
    response = sitk.GetArrayFromImage(filter_response(image, settings_of(row)))
    span = expected.max() - expected.min()
    worst = float(np.abs(response - expected).max() / span)
    assert worst <= 0.01, f"{row['id']}: worst voxel off by {worst:.2%} of the map's range"


def test_every_phase1_configuration_is_tested():
    assert len(ROWS) == 33  # 36 configurations, 3 without a consensus map (9.b.2, 10.a, 10.b.2)


def test_column_names_say_filter_and_parameters():
    names = {settings_of(row).name for row in ROWS}
    assert len(names) == len({(r["phantom"], settings_of(r).name) for r in ROWS}) or len(names) >= 25
    log = settings_of(next(r for r in ROWS if r["id"] == "2.c"))
    assert log.name == "log_2d_mirror_sigma5mm"


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(OptionError, match="boundary"):
        FilterSettings("mean", support_vox=3, boundary="reflect")
    with pytest.raises(OptionError, match="needs sigma_mm"):
        FilterSettings("log")
    with pytest.raises(OptionError, match="kernels are"):
        filter_response(_phantom("impulse"), FilterSettings("laws", laws_kernels="E5Q5S5"))


# -- features on response maps (IBSI 2's order: interpolate, filter, re-segment) ---------------


@pytest.fixture(scope="module")
def ct_like():
    rng = np.random.default_rng(3)
    values = rng.normal(40.0, 30.0, (24, 40, 40))
    values[8:16, 12:28, 12:28] += 80.0
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.8, 0.8, 2.0))
    roi = np.zeros(values.shape, np.uint8)
    roi[6:18, 10:30, 10:30] = 1
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    return image, mask


def test_filtered_statistics_describe_the_response_inside_the_original_intensity_mask(ct_like):
    """Re-segmentation keeps the voxels whose *original* intensity is in range; the statistics
    are those of the filter's response at exactly those voxels."""
    from radimt.ibsi import ibsi_features
    from radimt.ibsi_processing import IBSISettings

    image, mask = ct_like
    log = FilterSettings("log", boundary="mirror", sigma_mm=2.0)
    settings = IBSISettings(bin_count=16, resegment_range=(0.0, 150.0))
    features = ibsi_features(image, mask, settings, filter=log)
    values = sitk.GetArrayFromImage(image)
    kept = (sitk.GetArrayFromImage(mask) > 0) & (values >= 0.0) & (values <= 150.0)
    response = sitk.GetArrayFromImage(filter_response(image, log))[kept]
    assert features[("statistics", "Mean intensity", "")] == pytest.approx(response.mean(), rel=1e-6)
    assert features[("statistics", "Minimum intensity", "")] == pytest.approx(response.min(), rel=1e-6)
    assert features[("statistics", "Intensity variance", "")] == pytest.approx(response.var(), rel=1e-6)
    assert {family for family, _, _ in features} == {"statistics", "intensity_histogram"}
    unfiltered = ibsi_features(image, mask, settings, families=["statistics"])
    assert unfiltered[("statistics", "Mean intensity", "")] != pytest.approx(
        features[("statistics", "Mean intensity", "")]
    )


def test_filtered_features_refuse_what_ibsi2_does_not_define(ct_like):
    from radimt.features import FeatureError
    from radimt.ibsi import ibsi_features
    from radimt.ibsi_processing import IBSISettings

    image, mask = ct_like
    mean = FilterSettings("mean", support_vox=5)
    with pytest.raises(FeatureError, match="fixed bin number"):
        ibsi_features(image, mask, IBSISettings(bin_width=25.0), filter=mean)
    with pytest.raises(FeatureError, match="not \\['glcm'\\]"):
        ibsi_features(image, mask, IBSISettings(bin_count=16), families=["glcm"], filter=mean)


CROPPED = [
    FilterSettings("mean", boundary="zero", support_vox=5),
    FilterSettings("log", boundary="mirror", sigma_mm=3.0),
    FilterSettings("log", dimensionality="2D", boundary="nearest", sigma_mm=3.0),
    FilterSettings(
        "laws", boundary="mirror", laws_kernels="E5L5S5", energy_distance_vox=3, rotation_invariant=True
    ),
    FilterSettings(
        "laws", dimensionality="2D", boundary="periodic", laws_kernels="L5S5", rotation_invariant=True
    ),
    FilterSettings(
        "gabor",
        dimensionality="2D",
        sigma_mm=3.0,
        gabor_gamma=1.0,
        gabor_lambda_mm=6.0,
        theta_step_rad=math.pi / 2,
        rotation_invariant=True,
        pooling="mean",
    ),
    FilterSettings(
        "wavelet",
        boundary="mirror",
        wavelet="db2",
        level=2,
        decomposition="HLH",
        rotation_invariant=True,
        pooling="mean",
    ),
    FilterSettings("wavelet", boundary="zero", wavelet="coif1", decomposition="LLH"),
]


@pytest.mark.parametrize("settings", CROPPED, ids=[s.name for s in CROPPED])
def test_filtering_the_lesion_box_with_the_kernels_reach_is_exact(settings):
    """The response on a lesion computed on its box plus the filter's reach equals the response
    of the whole image there (to rounding): the crop changes nothing but the time."""
    from radimt.ibsi_filters import response_array, response_in_box

    rng = np.random.default_rng(5)
    array = rng.normal(100.0, 40.0, (44, 80, 80))
    spacing = np.array([2.0, 1.0, 1.0])
    region = np.zeros(array.shape, bool)
    region[18:25, 35:44, 33:45] = True
    whole = response_array(array, spacing, settings)
    boxed = response_in_box(array, spacing, region, settings)
    np.testing.assert_allclose(boxed[region], whole[region], rtol=1e-9, atol=1e-9 * np.abs(whole).max())


def test_a_lesion_at_the_image_edge_keeps_the_images_own_boundary():
    """Near an edge the box meets the image's border: zero, nearest and mirror pad it as the whole
    image is padded; periodic would wrap the box onto itself, so it filters the whole image."""
    from radimt.ibsi_filters import response_array, response_in_box

    rng = np.random.default_rng(9)
    array = rng.normal(0.0, 1.0, (30, 40, 40))
    region = np.zeros(array.shape, bool)
    region[0:4, 2:8, 30:40] = True
    for boundary in ("zero", "nearest", "periodic", "mirror"):
        settings = FilterSettings("mean", boundary=boundary, support_vox=7)
        whole = response_array(array, np.ones(3), settings)
        boxed = response_in_box(array, np.ones(3), region, settings)
        np.testing.assert_allclose(boxed[region], whole[region], atol=1e-12, err_msg=boundary)
