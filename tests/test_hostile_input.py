"""Hostile input gets a named error (issue #12): non-finite or absurd seeds, a manifest without
rows, zero or negative PixelSpacing on a real MR file."""

from __future__ import annotations

import math
import shutil

import pydicom
import pytest
import SimpleITK as sitk

import radimt
from radimt.dicom import read_volume
from radimt.errors import SeedError, SeriesAssemblyError
from radimt.manifest import ManifestError, read_manifest
from tests.test_real_corpus import REAL


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


def test_manifest_with_a_header_and_no_rows_is_refused(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("study_id,path,seed_x,seed_y,seed_z\n")
    with pytest.raises(ManifestError, match="no rows"):
        read_manifest(manifest)


@pytest.mark.parametrize("spacing", [["0", "0"], ["-0.5", "0.5"]])
def test_zero_or_negative_pixel_spacing_on_mr_is_named(tmp_path, spacing):
    for path in sorted((REAL / "ge_dwi").glob("i*"))[:2]:  # the real GE b0 slices
        ds = pydicom.dcmread(path)
        ds.PixelSpacing = spacing
        ds.save_as(tmp_path / path.name)
    shutil.copy(REAL / "ge_dwi" / "LICENSE", tmp_path / "LICENSE")
    (series,) = radimt.scan(tmp_path)
    with pytest.raises(SeriesAssemblyError, match=r"PixelSpacing .* is not a positive size"):
        read_volume(series)
