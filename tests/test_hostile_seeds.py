"""Non-finite and absurd seeds get a SeedError (API) or a manifest problem with its line, never a
raw ValueError/OverflowError (issue #12, segmentation edge cases)."""

from __future__ import annotations

import math

import pytest
import SimpleITK as sitk

import radimt
from radimt.errors import SeedError
from radimt.manifest import ManifestError, read_manifest


def _image() -> sitk.Image:
    image = sitk.Image(20, 20, 10, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 2.0))
    return image


@pytest.mark.parametrize(
    "seed",
    [(math.nan, 0.0, 0.0), (0.0, math.inf, 0.0), (0.0, 0.0, -math.inf), (1e300, 0.0, 0.0), ("x", 0, 0)],
)
@pytest.mark.parametrize("as_index", [False, True])
def test_bad_seed_is_a_seed_error(seed, as_index):
    with pytest.raises(SeedError, match=r"non-finite|outside the image|not a list of numbers"):
        radimt.segment_from_seed(_image(), seed, seed_is_index=as_index)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_manifest_refuses_non_finite_seeds_naming_the_line(tmp_path, value):
    (tmp_path / "s").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"study_id,path,seed_x,seed_y,seed_z\na,s,1,2,3\nb,s,{value},2,3\n")
    with pytest.raises(ManifestError, match=rf"line 3: seed_x '{value}' is not a finite number"):
        read_manifest(manifest)
