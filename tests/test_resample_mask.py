"""Carrying masks between series by physical coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radimt.errors import FrameOfReferenceError, MaskError
from radimt.measure import centroid_lps, dice, mask_volume_mm3
from radimt.segment import resample_mask
from radimt.synth.phantom import Lesion, lesion_fraction
from radimt.synth.writer import Grid


def _image(grid: Grid) -> sitk.Image:
    image = sitk.Image(list(grid.size), sitk.sitkUInt8)
    image.SetSpacing(grid.spacing)
    image.SetOrigin(grid.origin)
    image.SetDirection(grid.direction)
    return image


def _sphere_mask(grid: Grid, centre, diameter: float) -> sitk.Image:
    fraction = lesion_fraction(grid, Lesion(centre, diameter))
    mask = sitk.GetImageFromArray((fraction >= 0.5).astype(np.uint8))
    mask.CopyInformation(_image(grid))
    return mask


FINE = Grid((100, 100, 60), (0.7, 0.7, 0.7), (-35.0, -35.0, -21.0))
rotation = sitk.VersorTransform((1, 1, 0.3), np.radians(35))
OBLIQUE = Grid((40, 40, 40), (2.0, 2.0, 2.0), (-20.0, -45.0, -30.0), tuple(rotation.GetMatrix()))
CENTRE = (3.1, -2.4, 1.7)


@pytest.mark.parametrize("diameter", [12.0, 20.0])
def test_axial_to_oblique_and_back_keeps_centroid_and_volume(diameter):
    mask = _sphere_mask(FINE, CENTRE, diameter)
    there = resample_mask(mask, _image(OBLIQUE))
    back = resample_mask(there, _image(FINE))
    true_volume = np.pi / 6 * diameter**3
    for moved, grid in ((there, OBLIQUE), (back, FINE)):
        shift = np.linalg.norm(centroid_lps(moved) - np.asarray(CENTRE))
        assert shift <= 0.5 * min(grid.spacing), shift
        assert mask_volume_mm3(moved) == pytest.approx(true_volume, rel=0.10)
    assert dice(back, mask) >= 0.85


def test_partial_volume_beats_nearest_neighbour_on_a_coarse_grid():
    mask = _sphere_mask(FINE, CENTRE, 12.0)
    truth = _sphere_mask(OBLIQUE, CENTRE, 12.0)  # the sphere drawn directly on the oblique grid
    partial = resample_mask(mask, _image(OBLIQUE))
    nearest = resample_mask(mask, _image(OBLIQUE), method="nearest")
    assert dice(partial, truth) >= dice(nearest, truth) - 1e-9
    assert dice(partial, truth) >= 0.9


def test_same_grid_is_identity():
    mask = _sphere_mask(FINE, CENTRE, 12.0)
    for method in ("nearest", "partial"):
        out = resample_mask(mask, mask, method=method)
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(out), sitk.GetArrayViewFromImage(mask))


def test_other_frame_of_reference_and_bad_arguments():
    mask = _sphere_mask(FINE, CENTRE, 12.0)
    reference = _image(OBLIQUE)
    mask.SetMetaData("0020|0052", "1.2.3.4")
    reference.SetMetaData("0020|0052", "1.2.3.5")
    with pytest.raises(FrameOfReferenceError):
        resample_mask(mask, reference)
    reference.SetMetaData("0020|0052", "1.2.3.4")
    out = resample_mask(mask, reference)
    assert out.GetMetaData("0020|0052") == "1.2.3.4"
    with pytest.raises(MaskError, match="unknown resampling method"):
        resample_mask(mask, reference, method="cubic")


def test_nonzero_box_and_indices_equal_numpy_on_any_layout():
    """The bounding box and voxel indices found slab-first are numpy's own, for C-ordered and
    transposed (non-contiguous) arrays, every dtype a mask comes in, and empty masks."""
    from radimt.grids import nonzero_box, nonzero_indices

    rng = np.random.default_rng(7)
    for _ in range(400):
        shape = tuple(int(n) for n in rng.integers(1, 7, size=int(rng.integers(1, 4))))
        dtype = rng.choice([np.uint8, np.uint16, np.int16, np.float32, bool])
        labels = (rng.random(shape) < rng.random() * 0.3).astype(dtype)
        if dtype in (np.int16, np.float32) and rng.random() < 0.3:
            labels = labels * -1  # negative labels: non-zero, not positive
        if rng.random() < 0.3:
            labels = labels.T
        expected = np.argwhere(labels)
        np.testing.assert_array_equal(nonzero_indices(labels), expected)
        np.testing.assert_array_equal(nonzero_indices(labels, positive=True), np.argwhere(labels > 0))
        box = nonzero_box(labels)
        if not len(expected):
            assert box is None
        else:
            lo, hi = expected.min(axis=0), expected.max(axis=0) + 1
            assert box == tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
