"""IBSI settings honoured on a CT-like lesion the digital phantom cannot speak for: ≥ 50k voxels,
heterogeneous, with air and bone outliers so that re-segmentation matters. radimt.ibsi against
the plain reference in tests/ibsi_reference.py for the IBSI benchmark's settings (fixed bin
size 25 HU and fixed bin number 32; range re-segmentation and 3 SD outlier filtering) and for
the 3D, 2.5D and 2D aggregations (grey levels binned once over the whole ROI)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from tests import ibsi_reference as ref

#: IBSI-1 benchmark-like settings: (name, IBSISettings keywords).
CONFIGURATIONS = [
    ("FBS 25, range [-500, 400]", {"bin_width": 25.0, "resegment_range": (-500.0, 400.0)}),
    ("FBN 32, range [-500, 400]", {"bin_count": 32, "resegment_range": (-500.0, 400.0)}),
    (
        "FBS 25, range [-1000, 400] + 3 SD",
        {"bin_width": 25.0, "resegment_range": (-1000.0, 400.0), "outlier_sigma": 3.0},
    ),
    ("FBN 32, 3 SD", {"bin_count": 32, "outlier_sigma": 3.0}),
]
#: The IBSI-1 CT configurations B to E in full: interpolation first, then the settings above.
INTERPOLATED = [
    (
        "B: 2 x 2 mm in plane, FBN 32, range [-500, 400]",
        {
            "spacing": (2.0, 2.0, None),
            "round_intensities": True,
            "bin_count": 32,
            "resegment_range": (-500.0, 400.0),
        },
    ),
    (
        "C: 2 mm, FBS 25, range [-1000, 400]",
        {
            "spacing": (2.0, 2.0, 2.0),
            "round_intensities": True,
            "bin_width": 25.0,
            "resegment_range": (-1000.0, 400.0),
            "ivh_bin_width": 2.5,
        },
    ),
    (
        "D: 2 mm, FBN 32, 3 SD",
        {  # the intensity-volume histogram on HU as they are: IBSI's reference values for D are in HU
            "spacing": (2.0, 2.0, 2.0),
            "round_intensities": True,
            "bin_count": 32,
            "outlier_sigma": 3.0,
        },
    ),
    (
        "E: 2 mm cubic, FBN 32, range [-1000, 400] + 3 SD",
        {
            "spacing": (2.0, 2.0, 2.0),
            "interpolation": "cubic",
            "round_intensities": True,
            "bin_count": 32,
            "resegment_range": (-1000.0, 400.0),
            "outlier_sigma": 3.0,
            "ivh_bin_count": 1000,
        },
    ),
]
SPACING = (2.0, 0.8, 0.8)  # (z, y, x) mm


def ct_like_lesion(shape=(24, 90, 90), semi_axes=(10.5, 38.0, 36.0), seed=17):
    """An ellipsoidal soft-tissue lesion (HU ~ 40 ± 25, smooth texture, enhancing rim) in fat,
    with air pockets (-950 to -600 HU) and calcifications (500 to 1,400 HU); whole HU, voxels
    of SPACING. Returns image, mask, values (z, y, x) and the ROI."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    centre = [(n - 1) / 2 for n in shape]
    r = np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip((zz, yy, xx), centre, semi_axes, strict=True)))
    roi = r <= 1.0
    texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), (1.0, 2.0, 2.0))
    values = 40 + 25 * texture / texture.std() + 60 * np.clip(r - 0.75, 0, None) / 0.25 * roi
    values[~roi] = rng.normal(-80, 20, shape)[~roi]  # fat around it
    blobs = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    pockets = roi & (blobs > 2.2 * blobs.std())
    values[pockets] = rng.uniform(-950, -600, shape)[pockets]
    calcium = roi & (rng.random(shape) < 0.004)
    values[calcium] = rng.uniform(500, 1400, shape)[calcium]
    values = np.round(values)  # HU are whole numbers
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(SPACING[::-1])
    mask = sitk.GetImageFromArray(roi.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask, values, roi


@pytest.fixture(scope="module")
def ct_lesion():
    """A 60k-voxel lesion with hundreds of air and calcium voxels: re-segmentation matters."""
    image, mask, values, roi = ct_like_lesion()
    assert roi.sum() >= 50_000 and (values[roi] < -500).sum() > 500 and (values[roi] > 450).sum() > 100
    return image, mask, values, roi


def _reference_masks(values, roi, settings):
    low, high = settings.get("resegment_range", (None, None))
    keep = ref.resegment(values, roi, low, high, settings.get("outlier_sigma"))
    levels = ref.discretise(values, keep, settings.get("bin_width"), settings.get("bin_count"), low)
    return keep, levels


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "keywords"), CONFIGURATIONS + INTERPOLATED, ids=[c[0] for c in CONFIGURATIONS + INTERPOLATED]
)
def test_ibsi_families_honour_the_settings_on_a_ct_lesion(ct_lesion, name, keywords):
    """The reference follows the definitions on the image radimt.ibsi_processing.interpolate
    gives for the interpolated configurations (interpolation is checked voxel by voxel against
    trilinear interpolation by hand in test_interpolation_aligns_grid_centres_and_is_trilinear)."""
    from radimt.ibsi import PEAK_RADIUS_MM, ibsi_features
    from radimt.ibsi_processing import IBSISettings, interpolate

    image, mask, values, roi = ct_lesion
    spacing = SPACING
    if "spacing" in keywords:
        grid_image, grid_mask = interpolate(image, mask, IBSISettings(**keywords))
        values = sitk.GetArrayFromImage(grid_image)
        roi = sitk.GetArrayFromImage(grid_mask) > 0
        spacing = grid_image.GetSpacing()[::-1]
    keep, levels = _reference_masks(values, roi, keywords)
    assert 0 < keep.sum() < roi.sum()  # re-segmentation removed the outliers, not the lesion
    features = ibsi_features(image, mask, IBSISettings(**keywords))  # every family

    def check(family, feature, expected, aggregation="", rel=1e-9):
        assert features[(family, feature, aggregation)] == pytest.approx(expected, rel=rel, abs=1e-12), (
            f"{name}: {family} / {feature} / {aggregation}"
        )

    # Statistics on the intensity mask's raw HU.
    kept_values = values[keep]
    check("statistics", "Mean intensity", kept_values.mean())
    check("statistics", "Minimum intensity", kept_values.min())
    check("statistics", "Maximum intensity", kept_values.max())
    check("statistics", "Intensity variance", kept_values.var())
    median = np.median(kept_values)
    check("statistics", "Intensity-based median absolute deviation", np.mean(np.abs(kept_values - median)))
    # Intensity histogram on the grey levels binned from the re-segmentation bound.
    grey = levels[keep]
    check("intensity_histogram", "Mean discretised intensity", grey.mean())
    check("intensity_histogram", "Discretised intensity variance", grey.var())
    check("intensity_histogram", "Minimum discretised intensity", grey.min())
    check("intensity_histogram", "Maximum discretised intensity", grey.max())
    counts = np.bincount(grey)[1:]
    p = counts[counts > 0] / grey.size
    check("intensity_histogram", "Discretised intensity entropy", -(p * np.log2(p)).sum())
    check("intensity_histogram", "Discretised intensity uniformity", (p**2).sum())
    for feature, expected in ref.histogram_features(grey.tolist()).items():
        check("intensity_histogram", feature, expected)
    # Intensity-volume histogram: its own discretisation, its range the re-segmentation range.
    low, high = keywords.get("resegment_range", (None, None))
    expected_ivh = ref.ivh(
        kept_values.tolist(), low, high, keywords.get("ivh_bin_width"), keywords.get("ivh_bin_count")
    )
    for feature, expected in expected_ivh.items():
        check("intensity_volume_histogram", feature, expected, rel=1e-12)
    # Local intensity: sphere means of the whole image around intensity-mask voxels.
    means = ref.sphere_means(values, keep, spacing, PEAK_RADIUS_MM)
    check("local_intensity", "Global intensity peak", means.max())
    check("local_intensity", "Local intensity peak", means[kept_values == kept_values.max()].max())
    # Morphology: volume from the morphological mask, intensity from the intensity mask.
    index = np.argwhere(roi) * spacing
    weighted = (np.argwhere(keep) * spacing * kept_values[:, None]).sum(axis=0) / kept_values.sum()
    check("morphology", "Centre of mass shift", np.linalg.norm(index.mean(axis=0) - weighted), rel=1e-7)
    volume = features[("morphology", "Volume (mesh)", "")]
    check("morphology", "Integrated intensity", kept_values.mean() * volume)
    voxel_volume = roi.sum() * math.prod(spacing)
    assert features[("morphology", "Volume (voxel counting)", "")] == pytest.approx(voxel_volume)
    # NGLDM and GLDZM: 3D, slices merged (2.5D) and slice mean (2D), levels binned once.
    slices = [k for k in range(roi.shape[0]) if keep[k].any()]
    for family, build in (
        ("ngldm", lambda sl, flat: ref.ngldm(levels[sl], keep[sl], flat)),
        ("gldzm", lambda sl, flat: ref.gldzm(levels[sl], keep[sl], roi[sl], flat)),
    ):
        names = [n for (f, n, a) in features if f == family and a == "3D"]
        expected_3d = ref.matrix_features(build(slice(None), False), int(keep.sum()))
        per_slice = {k: build(slice(k, k + 1), True) for k in slices}
        width = max(m.shape[1] for m in per_slice.values())
        rows = max(m.shape[0] for m in per_slice.values())
        merged = sum(
            np.pad(m, ((0, rows - m.shape[0]), (0, width - m.shape[1]))) for m in per_slice.values()
        )
        expected_25d = ref.matrix_features(merged, int(keep.sum()))
        expected_2d = np.mean(
            [ref.matrix_features(m, int(keep[k].sum())) for k, m in per_slice.items()], axis=0
        )
        order = _feature_order(family)
        for feature in names:
            k = order.index(feature)
            check(family, feature, expected_3d[k], "3D")
            check(family, feature, expected_25d[k], "2.5D")
            check(family, feature, expected_2d[k], "2D")


def _feature_order(family):
    """radimt's feature names in the reference's order (ibsi_reference.matrix_features)."""
    from radimt.ibsi_texture import DEPENDENCE_NAMES, DISTANCE_NAMES

    if family == "ngldm":
        return [*DEPENDENCE_NAMES, "Dependence count energy"]
    return list(DISTANCE_NAMES)


def test_discretisation_and_resegmentation_follow_the_definitions():
    """Fixed bin size starts at the re-segmentation bound (not at floor(min / w) as pyradiomics
    bins): an ROI whose lowest value is 37 HU above the bound starts at level 2 with w = 25;
    fixed bin number puts the maximum in the last bin; 3 SD filtering follows the range."""
    from radimt.ibsi_processing import IBSISettings, discretise, intensity_mask

    values = np.array([[[-463.0, -100.0, 0.0, 24.9, 25.0, 399.0, 400.0, 401.0, -2000.0, 3000.0]]])
    roi = np.ones(values.shape, bool)
    fbs = IBSISettings(bin_width=25, resegment_range=(-500, 400))
    keep = intensity_mask(values, roi, fbs)
    assert keep.ravel().tolist() == [True] * 7 + [False] * 3
    levels = discretise(values, keep, fbs)
    assert levels.ravel().tolist() == [2, 17, 21, 21, 22, 36, 37, 0, 0, 0]
    np.testing.assert_array_equal(levels, ref.discretise(values, keep, 25, None, -500))
    fbn = discretise(values, keep, IBSISettings(bin_count=32))
    assert fbn.max() == 32 and fbn[keep].min() == 1
    np.testing.assert_array_equal(fbn, ref.discretise(values, keep, None, 32))
    settings = IBSISettings(bin_count=32, resegment_range=(-1000, None), outlier_sigma=1.0)
    outliers = intensity_mask(values, roi, settings)
    np.testing.assert_array_equal(outliers, ref.resegment(values, roi, -1000, None, 1.0))


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"bin_width": 25, "bin_count": 32}, "not both"),
        ({"bin_width": 0}, "bin_width must be a positive number"),
        ({"bin_count": 2.5}, "bin_count must be a positive whole number"),
        ({"resegment_range": (400, -500)}, "is empty"),
        ({"outlier_sigma": -3}, "outlier_sigma must be positive"),
    ],
)
def test_ibsi_settings_refuse_what_has_no_meaning(keywords, message):
    from radimt.errors import FeatureError
    from radimt.ibsi_processing import IBSISettings

    with pytest.raises(FeatureError, match=message):
        IBSISettings(**keywords)


def test_resegmentation_that_leaves_nothing_is_an_error_naming_the_settings():
    from radimt.errors import FeatureError
    from radimt.ibsi_processing import IBSISettings, intensity_mask

    values = np.full((1, 3, 3), 1200.0)  # MR-like units
    settings = IBSISettings(bin_width=25, resegment_range=(-500, 400))
    message = r"\(FBS 25, re-segmentation \[-500, 400\]\) leaves no voxel of the 9-voxel"
    with pytest.raises(FeatureError, match=message):
        intensity_mask(values, np.ones(values.shape, bool), settings)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "keywords"), CONFIGURATIONS[2:], ids=[c[0] for c in CONFIGURATIONS[2:]])
def test_texture_matrices_on_a_ct_lesion_equal_the_voxel_loop_definitions(ct_lesion, name, keywords):
    """GLCM, GLRLM (13 directions in 3D; 4 in every slice), GLSZM and NGTDM (3D and every slice)
    of the grey levels binned once over the ROI equal the plain loops' matrices; ibsi_features'
    3D values are the (phantom-verified) formulas of those matrices. The formulas and the
    aggregation rules are checked against IBSI's consensus values on the digital phantom."""
    from radimt import ibsi_texture as tex
    from radimt.ibsi import ibsi_features
    from radimt.ibsi_processing import IBSISettings

    image, mask, values, roi = ct_lesion
    keep, levels = _reference_masks(values, roi, keywords)
    n_levels = int(levels.max())
    slices = [k for k in range(roi.shape[0]) if keep[k].any()]

    def padded(matrix, like):
        return np.pad(matrix, [(0, a - b) for a, b in zip(like.shape, matrix.shape, strict=True)])

    merged = {"glcm": 0.0, "glrlm": None}
    for d in tex.DIRECTIONS:
        ours = tex.glcm_matrix(levels, d, n_levels)
        np.testing.assert_array_equal(ours, padded(ref.glcm(levels, keep, d), ours), err_msg=f"GLCM {d}")
        merged["glcm"] = merged["glcm"] + ours
        runs = tex.glrlm_matrix(levels, d, n_levels)
        np.testing.assert_array_equal(runs, padded(ref.glrlm(levels, keep, d), runs), err_msg=f"GLRLM {d}")
    for k in slices:
        one = slice(k, k + 1)
        for d in tex.IN_PLANE:
            ours = tex.glcm_matrix(levels[one], d, n_levels)
            np.testing.assert_array_equal(ours, padded(ref.glcm(levels[one], keep[one], d), ours))
            runs = tex.glrlm_matrix(levels[one], d, n_levels)
            np.testing.assert_array_equal(runs, padded(ref.glrlm(levels[one], keep[one], d), runs))
        zones = tex.glszm_matrix(levels[one], n_levels, True)
        np.testing.assert_array_equal(zones, padded(ref.glszm(levels[one], keep[one], True), zones))
        s, n = tex.ngtdm_sums(levels[one], n_levels, True)
        s_ref, n_ref = ref.ngtdm(levels[one], keep[one], True)
        np.testing.assert_allclose(s, np.pad(s_ref, (0, n_levels - len(s_ref))), rtol=1e-12)
        np.testing.assert_array_equal(n, np.pad(n_ref, (0, n_levels - len(n_ref))))
    zones_3d = ref.glszm(levels, keep, False)
    np.testing.assert_array_equal(tex.glszm_matrix(levels, n_levels, False), zones_3d)
    s_ref, n_ref = ref.ngtdm(levels, keep, False)
    np.testing.assert_allclose(tex.ngtdm_sums(levels, n_levels, False)[0], s_ref, rtol=1e-12)

    features = ibsi_features(image, mask, IBSISettings(**keywords), families=["glcm", "glszm", "ngtdm"])
    expected = {
        ("glcm", "3D, merged"): tex.glcm_features(merged["glcm"]),
        ("glszm", "3D"): tex.size_features(zones_3d, float(keep.sum()), tex.ZONE_NAMES),
        ("ngtdm", "3D"): tex.ngtdm_features(s_ref, n_ref),
    }
    for (family, aggregation), values_ in expected.items():
        for feature, value in values_.items():
            assert features[(family, feature, aggregation)] == pytest.approx(value, rel=1e-9), (
                f"{name}: {family} / {feature} / {aggregation}"
            )


def _trilinear(array, point):
    """Value at continuous (x, y, z) index ``point`` of a (z, y, x) array, clamped to the outer
    voxel centres (nearest value beyond them)."""
    shape = array.shape[::-1]
    c = [min(max(v, 0.0), n - 1.0) for v, n in zip(point, shape, strict=True)]
    base = [min(int(math.floor(v)), n - 2) if n > 1 else 0 for v, n in zip(c, shape, strict=True)]
    value = 0.0
    for corner in np.ndindex(2, 2, 2):
        weight = 1.0
        index = []
        for axis in range(3):
            t = c[axis] - base[axis]
            weight *= t if corner[axis] else 1 - t
            index.append(min(base[axis] + corner[axis], shape[axis] - 1))
        value += weight * array[index[2], index[1], index[0]]
    return value


def test_interpolation_aligns_grid_centres_and_is_trilinear():
    """IBSI grid-centre alignment on a rotated, anisotropic grid: ⌈n s / s_new⌉ voxels, the same
    centre, every new voxel the trilinear value of the old image at its position (mask: ≥ 0.5)."""
    from radimt.ibsi_processing import IBSISettings, interpolate

    rng = np.random.default_rng(3)
    values = rng.normal(40, 30, (7, 9, 11))
    inside = np.zeros(values.shape, np.uint8)
    inside[2:6, 2:8, 3:9] = 1
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-12.0, 30.5, 7.25))
    angle = math.radians(30)
    cos, sin = math.cos(angle), math.sin(angle)
    direction = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    image.SetDirection(direction.ravel().tolist())
    mask = sitk.GetImageFromArray(inside)
    mask.CopyInformation(image)
    new_image, new_mask = interpolate(image, mask, IBSISettings(spacing=(2.0, 2.0, 2.0)))
    assert new_image.GetSize() == (math.ceil(11 * 0.8 / 2), math.ceil(9 * 0.9 / 2), math.ceil(7 * 2.5 / 2))

    def centre(img):
        size = np.asarray(img.GetSize()) - 1
        return np.asarray(img.TransformContinuousIndexToPhysicalPoint((size / 2).tolist()))

    np.testing.assert_allclose(centre(new_image), centre(image), atol=1e-9)
    new_values = sitk.GetArrayFromImage(new_image)
    new_inside = sitk.GetArrayFromImage(new_mask)
    for index in np.ndindex(*new_image.GetSize()):
        point = new_image.TransformIndexToPhysicalPoint(index)
        old = image.TransformPhysicalPointToContinuousIndex(point)
        assert new_values[index[::-1]] == pytest.approx(_trilinear(values, old), abs=1e-9), index
        fraction = _trilinear(inside.astype(float), old)
        if abs(fraction - 0.5) > 1e-9:
            assert new_inside[index[::-1]] == (fraction >= 0.5), index
    rounded, _ = interpolate(image, mask, IBSISettings(spacing=(2.0, 2.0, None), round_intensities=True))
    assert rounded.GetSpacing()[2] == 2.5 and np.all(np.mod(sitk.GetArrayViewFromImage(rounded), 1) == 0)


def test_ibsi_features_interpolate_first_when_asked(ct_lesion):
    """1 mm isotropic (IBSI configurations C to E use 2 mm): the ROI keeps its volume within 2 %
    and the statistics are those of the interpolated, re-segmented image."""
    from radimt.ibsi import ibsi_features
    from radimt.ibsi_processing import IBSISettings, intensity_mask, interpolate

    image, mask, values, roi = ct_lesion
    settings = IBSISettings(
        spacing=(1.0, 1.0, 1.0), round_intensities=True, bin_width=25, resegment_range=(-1000, 400)
    )
    features = ibsi_features(image, mask, settings, families=["morphology", "statistics"])
    volume = features[("morphology", "Volume (voxel counting)", "")]
    assert volume == pytest.approx(roi.sum() * math.prod(SPACING), rel=0.02)
    new_image, new_mask = interpolate(image, mask, settings)
    new_values = sitk.GetArrayViewFromImage(new_image)
    kept = intensity_mask(new_values, sitk.GetArrayViewFromImage(new_mask) > 0, settings)
    assert features[("statistics", "Mean intensity", "")] == pytest.approx(new_values[kept].mean(), rel=1e-12)
    assert new_image.GetSpacing() == (1.0, 1.0, 1.0)


def test_cubic_interpolation_is_scipys_cubic_spline():
    """IBSI's tricubic spline: SimpleITK's B-spline resampling equals scipy's
    map_coordinates(order=3, mode="mirror") at every point of the new grid."""
    from scipy import ndimage

    from radimt.ibsi_processing import IBSISettings, interpolate

    rng = np.random.default_rng(3)
    values = ndimage.gaussian_filter(rng.normal(40, 30, (14, 18, 20)), 1)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-12.0, 30.5, 7.25))
    mask = sitk.GetImageFromArray((values > 40).astype(np.uint8))
    mask.CopyInformation(image)
    new_image, _ = interpolate(image, mask, IBSISettings(spacing=(2.0, 2.0, 2.0), interpolation="cubic"))
    points = [
        image.TransformPhysicalPointToContinuousIndex(new_image.TransformIndexToPhysicalPoint(index))
        for index in np.ndindex(*new_image.GetSize())
    ]
    expected = ndimage.map_coordinates(values, np.array(points)[:, ::-1].T, order=3, mode="mirror")
    ours = [sitk.GetArrayViewFromImage(new_image)[index[::-1]] for index in np.ndindex(*new_image.GetSize())]
    np.testing.assert_allclose(ours, expected, atol=1e-8)
