"""What the batch hands its files thread: images of their own, never one the figures read too.

SimpleITK images share their pixel buffer between copies until one is written to; two threads
racing on that (the figures take a NumPy view of the mask, the files thread crops it) is a crash
waiting to happen, so the worker gives the files thread copies and crops that share nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from radimt.grids import independent_copy
from radimt.pipeline import worker
from radimt.pipeline.config import load_config
from radimt.pipeline.manifest import read_manifest
from radimt.report.review_view import VIEW_IMAGE, VIEW_MASK, VIEW_META, view_region, write_view
from tests.conftest import REPO


def _shares(a: sitk.Image, b: sitk.Image) -> bool:
    """Whether NumPy views of the two overlap (a buffer shared copy-on-write is not seen here:
    taking the view makes an image its own first; see :func:`_buffer_address`)."""
    return bool(np.shares_memory(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b)))


def _buffer_address(image: sitk.Image) -> int:
    """Where ``image``'s pixels are: an image whose buffer another image shares copies itself
    to a new address when a view is taken, one with its own buffer stays where it was."""
    return sitk.GetArrayViewFromImage(image).__array_interface__["data"][0]


def test_an_independent_copy_has_everything_and_shares_nothing():
    image = sitk.Image([30, 20, 10], sitk.sitkUInt8)
    image.SetSpacing((0.5, 0.6, 2.0))
    image.SetOrigin((1.0, -2.0, 3.0))
    image.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
    image.SetMetaData("radimt:frame_of_reference", "1.2.3")
    image[4, 5, 6] = 1
    where = _buffer_address(image)
    copy = independent_copy(image)
    assert _buffer_address(image) == where  # a plain sitk.Image(image) shares it: this fails
    assert not _shares(image, copy)
    assert np.array_equal(sitk.GetArrayViewFromImage(copy), sitk.GetArrayViewFromImage(image))
    assert copy.GetSpacing() == image.GetSpacing() and copy.GetOrigin() == image.GetOrigin()
    assert copy.GetDirection() == image.GetDirection()
    assert copy.GetMetaData("radimt:frame_of_reference") == "1.2.3"
    copy[4, 5, 6] = 0
    assert image[4, 5, 6] == 1


def test_the_view_region_is_the_views_crop_and_its_own(tmp_path):
    values = np.random.default_rng(3).normal(100, 20, (40, 80, 90)).astype(np.float32)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.8, 0.8, 2.0))
    mask = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(image)
    mask[40:52, 30:44, 18:24] = sitk.Image([12, 14, 6], sitk.sitkUInt8) + 1
    where = _buffer_address(image), _buffer_address(mask)
    crop, mask_crop = view_region(image, mask)
    assert mask_crop is not None
    assert (_buffer_address(image), _buffer_address(mask)) == where
    assert not _shares(crop, image) and not _shares(mask_crop, mask)
    start = crop.TransformPhysicalPointToIndex(crop.GetOrigin())
    index = image.TransformPhysicalPointToIndex(crop.GetOrigin())
    size = crop.GetSize()
    assert start == (0, 0, 0) and all(s < n for s, n in zip(size, image.GetSize(), strict=True))
    region = values[
        index[2] : index[2] + size[2], index[1] : index[1] + size[1], index[0] : index[0] + size[0]
    ]
    assert np.array_equal(sitk.GetArrayViewFromImage(crop), region)
    assert sitk.GetArrayViewFromImage(mask_crop).sum() == sitk.GetArrayViewFromImage(mask).sum()
    write_view(tmp_path, image, mask, label="T2", role="t2", seed=None)
    meta = json.loads((tmp_path / VIEW_META).read_text())
    assert meta["size"] == list(size) and meta["has_mask"]
    assert (tmp_path / VIEW_IMAGE).exists() and (tmp_path / VIEW_MASK).exists()


@pytest.mark.parametrize("seg", [False, True])
def test_the_files_thread_gets_no_image_the_figures_read(tmp_path, monkeypatch, seg):
    """No image a lesion hands ``_AlongSide.run`` (to be written beside the figures) is the
    reference image or the mask, which the overlays read meanwhile, or overlaps them (copies
    that share a buffer are ruled out by the first test)."""
    handed: list[sitk.Image] = []
    original = worker._AlongSide.run

    def spy(self, write, *args):
        handed.extend(a for a in args if isinstance(a, sitk.Image))
        return original(self, write, *args)

    monkeypatch.setattr(worker._AlongSide, "run", spy)
    drawn: list[sitk.Image] = []
    overlay = worker.overlay_png
    monkeypatch.setattr(
        worker,
        "overlay_png",
        lambda image, mask, *a, **k: (drawn.extend([image, mask]), overlay(image, mask, *a, **k)),
    )
    config = load_config(REPO / "pipelines" / "breast_mri.yaml")
    task = next(
        t for t in read_manifest(REPO / "sample_dicom" / "manifest.csv") if t.study_id == "carcinoma_washout"
    )
    statuses = worker.process_study([task], config, str(tmp_path), seg=seg, threads=2)
    assert [s.status for s in statuses] == ["done"], statuses
    assert handed and drawn
    for image in handed:
        for other in drawn:
            assert image is not other and not _shares(image, other)
