"""Seeded segmentation against synthetic truth: accuracy, robustness, leaks and bad seeds."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import radimt
from radimt.errors import FrameOfReferenceError, SeedError, SegmentationError
from radimt.measure import dice, longest_diameter_mm, mask_volume_mm3
from radimt.segment import segment_from_seed, subtraction
from radimt.synth.phantom import Lesion, disk_fraction, lesion_fraction, lesion_image
from radimt.synth.studies import _mammogram, ultrasound_frame, write_ct_series, write_mr_study
from radimt.synth.writer import Grid
from tests.conftest import small_spec


@pytest.mark.parametrize("seed", range(3))
def test_12mm_lesion_at_cnr_5_mr_subtraction(seed):
    image, truth, lesion = lesion_image("sphere", 5.0, seed=seed)
    mask = segment_from_seed(image, lesion.centre)
    assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetSize() == image.GetSize()
    assert dice(mask, truth) >= 0.90
    assert abs(longest_diameter_mm(mask) - 12.0) <= 1.5


@pytest.mark.parametrize("shape", ["lobulated", "spiculated"])
def test_irregular_lesions(shape):
    image, truth, lesion = lesion_image(shape, 5.0, seed=4)
    assert dice(segment_from_seed(image, lesion.centre), truth) >= 0.80


def test_ct_lesion_with_rim_enhancement(tmp_path):
    lesion = Lesion((100.0, 0.0, 0.0), 12.0, "sphere")
    grid = Grid((64, 64, 40), (0.8, 0.8, 1.0), (75.0, -25.0, -20.0))
    write_ct_series(str(tmp_path), "ct", lesion, grid=grid)
    ct = radimt.load_study(tmp_path).ct
    mask = segment_from_seed(ct, lesion.centre, modality="ct")
    truth = lesion_fraction(Grid(ct.GetSize(), ct.GetSpacing(), ct.GetOrigin()), lesion) >= 0.5
    truth_image = sitk.GetImageFromArray(truth.astype(np.uint8))
    truth_image.CopyInformation(mask)
    assert dice(mask, truth_image) >= 0.90
    assert abs(longest_diameter_mm(mask) - 12.0) <= 1.5


def _dice_mean(images) -> list[float]:
    return [
        dice(segment_from_seed(im, seed, seed_is_index=True, modality=m), truth)
        for im, seed, m, truth in images
    ]


def _planar(values: np.ndarray, spacing: float, truth: np.ndarray):
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing((spacing, spacing))
    mask = sitk.GetImageFromArray(truth.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def test_mammography_focal_density():
    cases = []
    for seed in range(6):  # textured background: judge the mean over several breasts
        rc = (250.0, 170.0)
        values = _mammogram((400, 320), rc, 24.0, np.random.default_rng(seed), flip=False)
        image, truth = _planar(
            values, 0.25, disk_fraction((400, 320), rc, 24.0, irregular=0.12, seed=3) >= 0.5
        )
        cases.append((image, (170, 250), "mg", truth))
    scores = _dice_mean(cases)
    assert np.mean(scores) >= 0.85 and min(scores) >= 0.75, scores


def test_ultrasound_hypoechoic_mass_in_speckle():
    cases = []
    for seed in range(3):
        rc = (165.0, 200.0)
        values = ultrasound_frame((300, 400), rc, 60.0, np.random.default_rng(seed))
        image, truth = _planar(
            values, 0.1, disk_fraction((300, 400), rc, 60.0, irregular=0.04, seed=1) >= 0.5
        )
        cases.append((image, (200, 165), "us", truth))
    assert min(_dice_mean(cases)) >= 0.85


def test_result_does_not_depend_on_where_in_the_inner_half_the_seed_is():
    image, _, lesion = lesion_image("lobulated", 5.0, seed=2)
    reference = segment_from_seed(image, lesion.centre)
    rng = np.random.default_rng(0)
    worst = 1.0
    for _ in range(10):
        offset = rng.normal(size=3)
        offset *= rng.uniform(0, lesion.diameter / 4) / np.linalg.norm(offset)  # inner half
        mask = segment_from_seed(image, tuple(np.array(lesion.centre) + offset))
        worst = min(worst, dice(mask, reference))
    assert worst >= 0.95


def test_dce_subtraction_is_the_reference_for_enhancing_lesions(tmp_path):
    spec = small_spec(noise=4.0)
    write_mr_study(str(tmp_path), spec)
    dce = radimt.load_study(tmp_path).dce
    sub = subtraction(dce, phase=1)
    assert sub.GetPixelID() == sitk.sitkFloat32
    mask = segment_from_seed(sub, spec.lesion.centre)
    truth = sitk.GetImageFromArray((lesion_fraction(spec.grid, spec.lesion) >= 0.5).astype(np.uint8))
    truth.CopyInformation(mask)
    assert dice(mask, truth) >= 0.85  # 2x2x4 mm voxels: a coarse grid for a 16 mm lesion
    assert mask.GetMetaData("0020|0052") == dce.phases[1].GetMetaData("0020|0052")


def test_leak_through_a_thin_bridge_is_cut():
    image, truth, lesion = lesion_image("sphere", 8.0, seed=1)
    values = sitk.GetArrayFromImage(image)
    values[:, 65:, :] += 100.0  # a large enhancing structure (e.g. the heart) ...
    values[30, 40:66, 40] += 100.0  # ... joined to the lesion by a one-voxel vessel
    leaky = sitk.GetImageFromArray(values)
    leaky.CopyInformation(image)
    mask = segment_from_seed(leaky, lesion.centre, max_diameter_mm=30)
    assert dice(mask, truth) >= 0.85


def test_small_lesion_with_a_vessel_on_thick_slices_is_delineated():
    """A 6 mm lesion on a 1.5 x 1.5 x 2 mm DCE grid with a 60 mm vessel leaving it: the leak is
    retried tighter, and an opening along the 2 mm slices (which would erase a 3-slice lesion)
    is not the only way out (a candidate from radimt.propose failed this way). What is delineated
    is the lesion's core, not the vessel: a vessel half the lesion's width cannot be cut off at
    this resolution without losing most of the lesion."""
    image, truth, lesion = lesion_image(
        "sphere", 10.0, spacing=(1.5, 1.5, 2.0), size=(80, 48, 30), diameter=6.0, seed=3
    )
    values = sitk.GetArrayFromImage(image)
    k, j, i = (int(round(c / s)) for c, s in zip(lesion.centre[::-1], (2.0, 1.5, 1.5), strict=True))
    values[k, j : j + 2, i:] += 100.0  # a vessel as bright as the lesion, 3 mm wide, 60 mm long
    vessel = sitk.GetImageFromArray(values)
    vessel.CopyInformation(image)
    mask = segment_from_seed(vessel, lesion.centre, max_diameter_mm=50)
    inside = sitk.GetArrayViewFromImage(mask).astype(bool)
    lesion_and_rim = sitk.GetArrayViewFromImage(sitk.BinaryDilate(truth, [1, 1, 1])).astype(bool)
    assert inside.sum() >= 3 and not np.any(inside & ~lesion_and_rim)  # the vessel is not part of it


def test_lesion_merged_into_a_large_structure_is_an_error():
    image, _, lesion = lesion_image("sphere", 8.0, seed=1)
    values = sitk.GetArrayFromImage(image)
    noise = np.random.default_rng(2).normal(0, 12, values[:, 37:, :].shape)
    values[:, 37:, :] = 100.0 + noise  # tissue as bright as the lesion, right through it
    merged = sitk.GetImageFromArray(values)
    merged.CopyInformation(image)
    with pytest.raises(SegmentationError, match="leaks"):
        segment_from_seed(merged, lesion.centre, max_diameter_mm=25)


def test_bad_seeds():
    image, _, lesion = lesion_image("sphere", 5.0)
    with pytest.raises(SeedError, match="outside the image"):
        segment_from_seed(image, (500.0, 0.0, 0.0))
    with pytest.raises(SeedError, match="outside the image"):
        segment_from_seed(image, (10, 10, 99), seed_is_index=True)
    with pytest.raises(SegmentationError, match="does not lie in a lesion"):
        segment_from_seed(image, (8.0, 8.0, 8.0))  # background far from the lesion
    image.SetMetaData("0020|0052", "1.2.3")
    with pytest.raises(FrameOfReferenceError, match="frame of reference"):
        segment_from_seed(image, lesion.centre, frame_of_reference="1.2.4")
    with pytest.raises(TypeError, match="unknown segmentation option"):
        segment_from_seed(image, lesion.centre, tolerence=0.4)


def test_seed_in_air_is_an_error():
    image, _, lesion = lesion_image("sphere", 5.0)
    values = sitk.GetArrayFromImage(image)
    values[:, :, :20] = np.abs(np.random.default_rng(0).normal(0, 2, values[:, :, :20].shape))
    air = sitk.GetImageFromArray(values)
    air.CopyInformation(image)
    with pytest.raises(SegmentationError):
        segment_from_seed(air, (4.0, 30.0, 30.0))


def test_2d_mask_volume_is_an_area():
    rc = (165.0, 200.0)
    values = ultrasound_frame((300, 400), rc, 60.0, np.random.default_rng(5))
    image, _ = _planar(values, 0.1, np.zeros((300, 400)))
    mask = segment_from_seed(image, (20.0, 16.5), modality="us")  # LPS-like mm on a 2D grid
    assert mask_volume_mm3(mask) == pytest.approx(np.pi * 6.0**2, rel=0.1)


def _small(values: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing((1.0, 1.0, 1.0))
    return image


@pytest.mark.parametrize("kind", ["constant", "noise"])
def test_an_image_without_a_lesion_is_an_error_not_the_whole_image(kind):
    rng = np.random.default_rng(0)
    values = np.full((20, 40, 40), 100.0) if kind == "constant" else 100 + rng.normal(0, 2, (20, 40, 40))
    with pytest.raises(SegmentationError, match="fills the whole image"):
        segment_from_seed(_small(values), (20, 20, 10), seed_is_index=True)


def test_a_lesion_smaller_than_the_seed_ball_is_an_error_not_the_ball():
    values = 100 + np.random.default_rng(0).normal(0, 2, (20, 40, 40))
    values[10, 20, 20] = 400  # one voxel
    with pytest.raises(SegmentationError, match=r"no larger than the seed ball \(1.5 mm, 19 voxels\)"):
        segment_from_seed(_small(values), (20, 20, 10), seed_is_index=True)
    values[9:12, 19:22, 19:22] = 400  # 3 x 3 x 3 voxels: larger than the ball, found exactly
    mask = segment_from_seed(_small(values), (20, 20, 10), seed_is_index=True)
    assert sitk.GetArrayFromImage(mask).sum() == 27


def test_morphology_near_the_region_equals_it_on_the_whole_crop():
    """The hole filling, ring dilations, core erosion and opening done in the region's padded
    box give the whole crop's images and statistics exactly, also for a region at the crop's
    edge (anisotropic voxels, ragged regions with holes)."""
    import functools

    from radimt.segment import RING_MM, _core_median, _near_region, _radius_voxels, _ring_stats

    rng = np.random.default_rng(3)
    z, y, x = np.ogrid[:30, :90, :90]
    for trial in range(12):
        centre = (15, 45, 45) if trial % 3 else (2, 45, 88)  # every third at the crop's edge
        r2 = (z - centre[0]) ** 2 + ((y - centre[1]) * 0.4) ** 2 + ((x - centre[2]) * 0.4) ** 2
        blob = (r2 < rng.uniform(15, 50)) ^ (rng.random(r2.shape) < 0.03) & (r2 < 60)
        region = sitk.GetImageFromArray(blob.astype(np.uint8))
        region.SetSpacing((0.4, 0.4, 1.0))
        values = rng.normal(100, 20, blob.shape).astype(np.float32)
        ring = _radius_voxels(region, RING_MM)
        for operation, pad in (
            (sitk.BinaryFillhole, [1, 1, 1]),
            (functools.partial(sitk.BinaryDilate, kernelRadius=ring), [r + 1 for r in ring]),
            (functools.partial(sitk.BinaryMorphologicalOpening, kernelRadius=[3, 3, 1]), [4, 4, 2]),
        ):
            expected = sitk.GetArrayFromImage(operation(region))
            assert np.array_equal(sitk.GetArrayFromImage(_near_region(region, pad, operation)), expected)
        inner = sitk.GetArrayFromImage(sitk.BinaryDilate(region, [1, 1, 1])).astype(bool)
        outer = sitk.GetArrayFromImage(sitk.BinaryDilate(region, ring)).astype(bool)
        samples = values[outer & ~inner]
        median = float(np.median(samples))
        assert _ring_stats(values, region) == (median, 1.4826 * float(np.median(np.abs(samples - median))))
        core = sitk.GetArrayFromImage(sitk.BinaryErode(region, [1, 1, 1])).astype(bool)
        assert _core_median(values, region) == float(np.median(values[core if core.sum() >= 3 else blob]))


def test_the_noise_estimate_is_the_plain_mad_of_neighbour_differences():
    """The noise SD reorders its own differences in place: the same number as the median
    absolute deviation computed plainly (ties, odd and even counts), the image untouched."""
    import math

    from radimt.segment import _noise_sigma

    rng = np.random.default_rng(11)
    for shape in [(5, 7, 9), (4, 6, 8), (2, 3, 2), (3, 40, 41)]:
        for values in (
            rng.normal(100, 12, shape).astype(np.float32),
            rng.integers(0, 6, shape).astype(np.float32),  # many ties
        ):
            before = values.copy()
            diff = np.diff(values, axis=-1).ravel()
            plain = float(1.4826 * np.median(np.abs(diff - np.median(diff))) / math.sqrt(2)) or 1e-6
            assert _noise_sigma(values) == plain
            assert np.array_equal(values, before)
