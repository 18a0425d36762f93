"""Feature robustness: the ICC(3,1) formula on published data, and stable vs unstable features."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radimt.errors import RadimtError
from radimt.robustness import icc_3_1, robustness
from radimt.synth.phantom import lesion_image


def test_icc_3_1_matches_shrout_and_fleiss():
    # Shrout & Fleiss (1979), Table 2: six targets rated by four judges; ICC(3,1) = 0.71.
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc_3_1(ratings) == pytest.approx(0.71, abs=0.005)
    assert icc_3_1(np.array([[1, 1], [2, 2], [3, 3]])) == pytest.approx(1.0)


def test_size_is_robust_and_noise_texture_is_not():
    images, seeds = [], []
    for i, diameter in enumerate((9.0, 12.0, 15.0, 18.0)):
        image, _, lesion = lesion_image("sphere", 6.0, size=(60, 60, 50), diameter=diameter, seed=i)
        images.append(image)
        seeds.append(lesion.centre)
    table = robustness(images, seeds, preset="ct", n_seeds=2, image_types=["Original"], binWidth=5)
    icc = dict(zip(table["feature"], table["icc"], strict=True))
    assert icc["original_shape_MeshVolume"] > 0.9  # one-voxel erosion/dilation is a large wobble
    assert icc["original_shape_MeshVolume"] > icc["original_glcm_Idmn"]
    assert table["icc"].is_monotonic_increasing or table["icc"].isna().any()


def test_needs_two_lesions():
    image, _, lesion = lesion_image("sphere", 6.0, size=(40, 40, 30))
    with pytest.raises(RadimtError, match="at least two lesions"):
        robustness(image, [lesion.centre])
    with pytest.raises(RadimtError, match="one per seed"):
        robustness([image, image, image], [lesion.centre, lesion.centre])
    assert isinstance(image, sitk.Image)
