"""What the batch hands its files thread: images of their own, never one the figures read too.

SimpleITK images share their pixel buffer between copies until one is written to; two threads
racing on that (the figures take a NumPy view of the mask, the files thread crops it) is a crash
waiting to happen, so the worker gives the files thread copies and crops that share nothing.
"""

from __future__ import annotations

import json
from collections import deque

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
    """No image a lesion hands ``_AlongSide.run`` (to be written, or drawn, beside the figures)
    is a volume the figures read on this thread (the reference image, the mask, a role's image
    or mask) or overlaps one (copies that share a buffer are ruled out by the first test); each
    queued overlay draws from sections of its own."""
    handed: list[sitk.Image] = []
    queued: list[list[sitk.Image]] = []
    original = worker._AlongSide.run

    def spy(self, write, *args):
        handed.extend(a for a in args if isinstance(a, sitk.Image))
        for pending in (a for a in args if isinstance(a, deque)):
            queued.extend([x for x in draw.args if isinstance(x, sitk.Image)] for draw in pending)
        return original(self, write, *args)

    monkeypatch.setattr(worker._AlongSide, "run", spy)
    volumes: list[sitk.Image] = []
    section = worker.central_section
    monkeypatch.setattr(
        worker,
        "central_section",
        lambda image, mask: (volumes.extend([image, mask]), section(image, mask))[1],
    )
    config = load_config(REPO / "pipelines" / "breast_mri.yaml")
    task = next(
        t for t in read_manifest(REPO / "sample_dicom" / "manifest.csv") if t.study_id == "carcinoma_washout"
    )
    statuses = worker.process_study([task], config, str(tmp_path), seg=seg, threads=2)
    assert [s.status for s in statuses] == ["done"], statuses
    assert handed and len(queued) == 4 and len(volumes) == 8  # DCE, ADC, T2 and DWI overlays
    for image in handed + [x for drawing in queued for x in drawing]:
        for other in volumes:
            assert image is not other and not _shares(image, other)
    ids = [id(x) for drawing in queued for x in drawing]
    assert len(set(ids)) == len(ids)
    names = {p.name for p in tmp_path.rglob("overlay_*.png")}
    assert names == {f"overlay_{r}.png" for r in ("dce", "adc", "t2", "dwi")}


def test_an_overlay_drawn_from_the_central_section_is_the_overlay_of_the_volume(tmp_path):
    """:func:`radimt.report.overlay.central_section`: what a queued overlay draws from; the PNG
    is the volume's, byte for byte (anisotropic pixels, the lesion off centre)."""
    from radimt.report.overlay import central_section, overlay_png

    values = np.random.default_rng(5).normal(300, 60, (20, 70, 90)).astype(np.float32)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.6, 0.9, 2.5))
    image.SetOrigin((5.0, -3.0, 12.0))
    mask = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(image)
    mask[50:66, 20:31, 7:12] = sitk.Image([16, 11, 5], sitk.sitkUInt8) + 1
    mask[55:60, 24:28, 9] = sitk.Image([5, 4], sitk.sitkUInt8) * 0 + 2  # the slice with most voxels
    where = _buffer_address(image), _buffer_address(mask)
    section, mask_section = central_section(image, mask)
    assert (_buffer_address(image), _buffer_address(mask)) == where
    assert not _shares(section, image) and not _shares(mask_section, mask)
    assert section.GetSize() == (90, 70) and section.GetSpacing() == (0.6, 0.9)
    overlay_png(image, mask, tmp_path / "volume.png", title="T2: 9.6 mm")
    overlay_png(section, mask_section, tmp_path / "section.png", title="T2: 9.6 mm")
    assert (tmp_path / "volume.png").read_bytes() == (tmp_path / "section.png").read_bytes()
    with pytest.raises(ValueError, match="3D"):
        central_section(section, mask_section)


def test_a_lesion_cut_carries_as_the_mask_does_and_is_its_own():
    """:func:`radimt.segment.lesion_cut`: what a thread carrying a mask gets instead of the mask
    itself. Same carried mask (pixels, grid, provenance), the same refusal of another frame of
    reference, and a buffer of its own (an empty mask too)."""
    from radimt.errors import FrameOfReferenceError
    from radimt.grids import FRAME_OF_REFERENCE_KEY
    from radimt.segment import lesion_cut, resample_mask

    mask = sitk.Image([60, 50, 20], sitk.sitkUInt8)
    mask.SetSpacing((0.5, 0.5, 2.0))
    mask.SetOrigin((-10.0, 4.0, 30.0))
    mask.SetMetaData(FRAME_OF_REFERENCE_KEY, "1.2.3")
    mask[20:31, 15:24, 6:11] = sitk.Image([11, 9, 5], sitk.sitkUInt8) + 1
    reference = sitk.Image([24, 20, 12], sitk.sitkFloat32)
    reference.SetSpacing((1.3, 1.2, 3.0))
    reference.SetOrigin((-11.0, 3.0, 29.0))
    reference.SetMetaData(FRAME_OF_REFERENCE_KEY, "1.2.3")
    where = _buffer_address(mask)
    cut = lesion_cut(mask)
    assert _buffer_address(mask) == where and not _shares(cut, mask)
    assert cut.GetSize() == (13, 11, 7)  # the lesion's box and one voxel around it
    assert sitk.GetArrayViewFromImage(cut).sum() == sitk.GetArrayViewFromImage(mask).sum()
    expected, carried = resample_mask(mask, reference), resample_mask(cut, reference)
    assert sitk.GetArrayViewFromImage(expected).sum() > 0
    assert np.array_equal(sitk.GetArrayViewFromImage(carried), sitk.GetArrayViewFromImage(expected))
    assert carried.GetOrigin() == expected.GetOrigin() and carried.GetSpacing() == expected.GetSpacing()
    assert {k: carried.GetMetaData(k) for k in carried.GetMetaDataKeys()} == {
        k: expected.GetMetaData(k) for k in expected.GetMetaDataKeys()
    }
    reference.SetMetaData(FRAME_OF_REFERENCE_KEY, "4.5.6")
    for source in (mask, cut):
        with pytest.raises(FrameOfReferenceError):
            resample_mask(source, reference)
    empty = sitk.Image([8, 8, 4], sitk.sitkUInt8)
    empty_cut = lesion_cut(empty)
    assert empty_cut is not empty and not _shares(empty_cut, empty)


def test_masks_carried_side_by_side_are_those_carried_one_after_the_other(monkeypatch):
    """The roles' masks carried on two threads (each from a cut of its own, never the source
    mask) equal those carried one at a time, and the roles left out keep their reasons and
    their order (the CT of the IMT case is in another frame of reference: refused on a thread)."""
    import radimt
    from radimt import analysis

    case = REPO / "sample_dicom" / "imt_case"
    study = radimt.load_study(case)
    truth = json.loads((case / "truth.json").read_text())
    mask = radimt.segment_from_seed(radimt.subtraction(study.dce, 1), truth["lesion"]["centre_lps"])
    roles = ["dce", "t2", "ct", "us", "adc"]
    read: list[sitk.Image] = []
    resample = analysis.resample_mask
    monkeypatch.setattr(
        analysis, "resample_mask", lambda m, *a, **k: (read.append(m), resample(m, *a, **k))[1]
    )
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        serial = analysis.carry_masks(study, {"dce": mask}, roles)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
        threaded = analysis.carry_masks(study, {"dce": mask}, roles)
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 2
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)
    assert list(threaded[0]) == list(serial[0]) == ["dce", "t2", "adc"]
    for kind, carried in threaded[0].items():
        assert np.array_equal(
            sitk.GetArrayViewFromImage(carried), sitk.GetArrayViewFromImage(serial[0][kind])
        )
    assert list(threaded[1].items()) == list(serial[1].items())
    assert list(threaded[1]) == ["ct", "us"] and "frame of reference" in threaded[1]["ct"].lower()
    assert len(read) == 6 and all(m is not mask and not _shares(m, mask) for m in read)
    assert len({id(m) for m in read[3:]}) == 3  # the threaded run's three cuts, one per role
