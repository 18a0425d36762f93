"""Volume geometry on synthetic series: oblique and reversed stacks against SimpleITK's reader."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import radimt
from radimt.dicom import read_volume
from radimt.synth.writer import Grid, SeriesSpec, write_volume


def _rotation(axis: str, degrees: float) -> np.ndarray:
    rotation = sitk.VersorTransform()
    rotation.SetRotation({"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}[axis], np.radians(degrees))
    return np.array(rotation.GetMatrix()).reshape(3, 3)


@pytest.mark.parametrize(
    "direction",
    [
        np.eye(3),
        _rotation("x", 25) @ _rotation("z", -12),  # double-oblique axial
        np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float),  # sagittal, as breast MRI often is
        np.diag([1.0, -1.0, -1.0]),  # slices stored head to feet
    ],
)
def test_geometry_matches_simpleitk_for_any_orientation(direction, tmp_path):
    grid = Grid((20, 16, 9), (0.7, 0.8, 2.5), (12.5, -40.0, 33.0), tuple(direction.ravel()))
    volume = np.random.default_rng(0).integers(0, 1000, (9, 16, 20)).astype(np.uint16)
    write_volume(str(tmp_path), SeriesSpec("g", "g", 1, "t2_tse", "MR", {"EchoTime": 90}), volume, grid)
    [series] = radimt.scan(tmp_path)
    ours = read_volume(series)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    theirs = reader.Execute()
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetDirection(), theirs.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs))
    # And against the truth the series was written from (right-handed grids only).
    if np.linalg.det(direction) > 0:
        np.testing.assert_allclose(ours.GetOrigin(), grid.origin, atol=1e-3)
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours), volume)
