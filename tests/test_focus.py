"""A study focused on its lesions' box gives the numbers and the files the whole study gives."""

from __future__ import annotations

import csv
import logging
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radimt.dicom.focus import (
    Box,
    covered_fraction,
    geometry_of,
    on_full_grid,
    read_focused,
    whole_statistics,
    write_on_full_grid,
)
from radimt.dicom.scan import scan_files
from radimt.dicom.study import load_study
from radimt.dicom.volume import read_volume
from radimt.errors import SeriesAssemblyError
from radimt.pipeline import worker
from radimt.pipeline.config import load_config
from radimt.pipeline.manifest import LesionTask
from radimt.pipeline.runner import run_batch
from radimt.segment import subtraction
from radimt.synth.phantom import Lesion
from radimt.synth.studies import MRStudySpec, write_mr_study
from radimt.synth.writer import Grid

#: 192 x 192 x 144 mm: the box around its lesions holds under half of it.
GRID = Grid((160, 160, 48), (1.2, 1.2, 3.0), (0.0, -96.0, -72.0))
CENTRE = (100.0, -6.0, 3.0)
SEEDS = [CENTRE, (101.5, -5.0, 3.0)]  # two lesion rows: the second shares the first's images


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("focus") / "f001"
    spec = MRStudySpec("f001", Lesion(CENTRE, 16.0, "oval"), grid=GRID, seed=7, extras=False)
    write_mr_study(str(folder), spec)
    return folder


def _manifest(path, folder, seeds) -> str:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["study_id", "lesion_id", "path", "seed_x", "seed_y", "seed_z"])
        out.writerows(["f001", k + 1, str(folder), *seed] for k, seed in enumerate(seeds))
    return str(path)


def _batch(tmp_path, name, folder, seeds=SEEDS):
    out = tmp_path / name
    summary = run_batch(
        _manifest(tmp_path / f"{name}.csv", folder, seeds),
        "pipelines/breast_mri.yaml",
        out,
        seg=True,
        show_progress=False,
    )
    assert summary.failed == 0
    return out


def _same_tables_and_masks(a, b) -> None:
    left, right = pd.read_csv(a / "features.csv"), pd.read_csv(b / "features.csv")
    assert list(left.columns) == list(right.columns)
    numeric = [c for c in left.columns if left[c].dtype.kind in "fi"]
    assert len(numeric) > 300
    np.testing.assert_allclose(left[numeric].to_numpy(), right[numeric].to_numpy(), rtol=1e-9, atol=1e-12)
    others = [c for c in left.columns if c not in numeric]
    assert left[others].fillna("").equals(right[others].fillna(""))
    for lesion in (1, 2):
        x, y = (sitk.ReadImage(str(o / "lesions" / "f001" / str(lesion) / "mask.nii.gz")) for o in (a, b))
        assert (x.GetSize(), x.GetOrigin()) == (y.GetSize(), y.GetOrigin())
        assert np.array_equal(sitk.GetArrayViewFromImage(x), sitk.GetArrayViewFromImage(y))
        assert sitk.GetArrayViewFromImage(x).sum() > 100


def test_the_lesions_box_is_read_and_gives_the_whole_studys_numbers(study_folder, tmp_path, monkeypatch):
    study = load_study(study_folder)
    config = load_config("pipelines/breast_mri.yaml")
    tasks = [LesionTask("f001", str(k), str(study_folder), seed=s) for k, s in enumerate(SEEDS)]
    box = worker.lesions_box(study, tasks, config)
    assert box is not None and covered_fraction(geometry_of(study.series_for("dce")[0]), box) < 0.5
    focused = _batch(tmp_path, "focused", study_folder)
    monkeypatch.setattr(worker, "FOCUS_AT_MOST", 0.0)  # every study read whole
    whole = _batch(tmp_path, "whole", study_folder)
    _same_tables_and_masks(focused, whole)
    seg = sitk.ReadImage(str(focused / "lesions" / "f001" / "1" / "mask.nii.gz"))
    assert seg.GetSize() == (160, 160, 48)  # the files keep the reference series' whole grid


def test_a_lesion_reaching_beyond_the_box_is_analysed_on_the_whole_study(
    study_folder, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(worker, "FOCUS_AT_MOST", 0.0)
    whole = _batch(tmp_path, "whole", study_folder)
    monkeypatch.setattr(worker, "FOCUS_AT_MOST", 0.75)
    cutting = lambda config, voxel, largest: 12.0  # noqa: E731 - a box cutting the lesion
    monkeypatch.setattr(worker, "focus_radius_mm", cutting)
    with caplog.at_level(logging.INFO, logger="radimt.pipeline.worker"):
        small = _batch(tmp_path, "small", study_folder)
    assert sum("beyond the focus box" in r.message for r in caplog.records) == 2
    _same_tables_and_masks(small, whole)


def _assert_cut_of(whole: sitk.Image, part: sitk.Image, origin_mm: float) -> sitk.StatisticsImageFilter:
    """``part`` holds exactly the values of ``whole`` where it lies, at its origin (within
    ``origin_mm``), and carries the whole volume's mean and SD; returns the whole's statistics."""
    start = whole.TransformPhysicalPointToIndex(part.GetOrigin())
    cut = sitk.RegionOfInterest(whole, part.GetSize(), start)
    assert np.array_equal(sitk.GetArrayViewFromImage(cut), sitk.GetArrayViewFromImage(part))
    assert part.GetOrigin() == pytest.approx(cut.GetOrigin(), abs=origin_mm)
    stats = sitk.StatisticsImageFilter()
    stats.Execute(whole)
    assert whole_statistics(part) == pytest.approx((stats.GetMean(), stats.GetSigma()), rel=1e-12)
    return stats


def test_a_focused_volume_is_the_whole_volume_cut_with_its_whole_statistics(study_folder):
    study = load_study(study_folder)
    series = study.series_for("t2")[0]
    whole = read_volume(series)
    box = Box.around([CENTRE], 30.0)
    part = read_focused(series, box)
    stats = _assert_cut_of(whole, part, origin_mm=1e-9)
    assert whole_statistics(whole) is None
    back = on_full_grid(sitk.Cast(part > 0, sitk.sitkUInt8), series)
    assert back.GetSize() == whole.GetSize() and back.GetOrigin() == whole.GetOrigin()
    assert sitk.GetArrayViewFromImage(back).sum() == sitk.GetArrayViewFromImage(part > 0).sum()

    focused = load_study(study_folder)
    focused.focus = box
    stats.Execute(subtraction(study.dce))
    early = subtraction(focused.dce)
    assert early.GetSize() == part.GetSize()
    assert whole_statistics(early) == pytest.approx((stats.GetMean(), stats.GetSigma()), rel=1e-12)
    stats.Execute(study.adc)
    assert whole_statistics(focused.adc) == pytest.approx((stats.GetMean(), stats.GetSigma()), rel=1e-12)


@pytest.mark.parametrize("slices_at_a_time", [1, 7, 48])
def test_whole_statistics_do_not_depend_on_how_many_slices_are_read_at_a_time(
    study_folder, monkeypatch, slices_at_a_time
):
    """Streamed a slice, seven (the last chunk short) or every slice at a time, a series' and a
    subtraction's mean and SD are the same to the last bit, and the exact ones: integer sums."""
    from radimt.dicom import focus

    study = load_study(study_folder)
    t2, (early, pre) = study.series_for("t2")[0], study.series_for("dce")[1::-1][:2]
    monkeypatch.setattr(focus, "_CHUNK_BYTES", slices_at_a_time * GRID.size[0] * GRID.size[1] * 2)
    got = focus.series_statistics(t2), focus.difference_statistics(early, pre)
    for values, (mean, sd) in zip(
        (sitk.GetArrayFromImage(read_volume(t2)), _subtraction_values(study)), got, strict=True
    ):
        exact = values.astype(np.int64)
        n, total, squares = exact.size, int(exact.sum()), int((exact * exact).sum())
        assert mean == total / n
        assert sd == pytest.approx(np.sqrt((squares * n - total * total) / (n * (n - 1))), rel=1e-15)


def _subtraction_values(study) -> np.ndarray:
    """The early subtraction's values over the whole volume (integers here)."""
    values = sitk.GetArrayFromImage(subtraction(study.dce))
    assert np.array_equal(values, np.round(values))
    return values


def _blob(part: sitk.Image, centre_index, radius: int, key: str) -> sitk.Image:
    """A ball of ``radius`` voxels in a mask on ``part``'s grid, tagged with metadata ``key``."""
    grids = np.ogrid[tuple(slice(0, n) for n in part.GetSize()[::-1])]
    ball = sum((g - c) ** 2 for g, c in zip(grids, centre_index[::-1], strict=True)) <= radius**2
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    mask.CopyInformation(part)
    mask.SetMetaData(key, "1")
    return mask


def test_masks_written_on_the_kept_whole_grid_are_each_their_own(study_folder, tmp_path):
    """The whole grid kept between lesions: each file holds its own mask only (the last
    one's region blanked again, its metadata gone), as :func:`on_full_grid` makes it, also
    after a write that failed and from two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from radimt.io import read_mask, write_mask

    series = load_study(study_folder).series_for("t2")[0]
    part = read_focused(series, Box.around([CENTRE], 30.0))
    # on four different cuts of the focused part, as masks of lesions in other boxes
    cuts = [sitk.RegionOfInterest(part, [16 + 2 * k, 18, 8 + k], [3 * k, 2 * k, k]) for k in range(4)]
    masks = [_blob(cut, (8, 9, 4), 3 + k % 2, f"radimt|mask{k}") for k, cut in enumerate(cuts)]

    def written(k: int) -> sitk.Image:
        path = tmp_path / f"m{k}.nii.gz"
        write_on_full_grid(masks[k], series, lambda full: write_mask(full, path))
        return read_mask(path)

    def kept_metadata(k: int) -> list[str]:
        seen: list[str] = []
        write_on_full_grid(masks[k], series, lambda full: seen.extend(full.GetMetaDataKeys()))
        return seen

    def failing(full: sitk.Image) -> None:
        raise OSError("disk full")

    expected = [sitk.GetArrayFromImage(on_full_grid(m, series)) for m in masks]
    assert np.array_equal(sitk.GetArrayViewFromImage(written(0)), expected[0])
    assert np.array_equal(sitk.GetArrayViewFromImage(written(1)), expected[1])  # not 0's too
    assert "radimt|mask2" in kept_metadata(2) and "radimt|mask1" not in kept_metadata(2)
    with pytest.raises(OSError, match="disk full"):
        write_on_full_grid(masks[3], series, failing)
    assert np.array_equal(sitk.GetArrayViewFromImage(written(0)), expected[0])  # not 3's too
    back = written(1)
    whole = read_volume(series)
    assert back.GetSize() == whole.GetSize() and back.GetOrigin() == pytest.approx(whole.GetOrigin())
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(written, [0, 1, 2, 3] * 3))
    for k, image in zip([0, 1, 2, 3] * 3, results, strict=True):
        assert np.array_equal(sitk.GetArrayViewFromImage(image), expected[k])


def test_a_study_without_an_adc_map_fits_it_on_the_whole_dwi(study_folder, tmp_path, monkeypatch):
    folder = tmp_path / "f001"
    shutil.copytree(study_folder, folder, ignore=lambda where, names: ["adc"] if "adc" in names else [])
    assert load_study(folder).adc is None
    focused = _batch(tmp_path, "focused", folder)
    monkeypatch.setattr(worker, "FOCUS_AT_MOST", 0.0)
    whole = _batch(tmp_path, "whole", folder)
    _same_tables_and_masks(focused, whole)
    assert pd.read_csv(focused / "features.csv")["adc_median_um2_ms"].notna().all()


REAL = Path(__file__).parent / "data" / "real"
GE_TAR = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "breast_dce_ge" / "UCSF-BR-06.tar.gz"


def _real_volumes() -> list[tuple[str, str]]:
    """(folder, series key) of every vendored real series that assembles into a volume."""
    found = []
    for folder in sorted(p for p in REAL.iterdir() if p.is_dir()):
        stacks, _ = scan_files(folder)
        found += [(folder.name, s.key) for s in stacks if s.n_images >= 3]
    return found


@pytest.mark.parametrize("folder, key", _real_volumes())
def test_a_real_scanners_series_read_in_part_is_its_whole_volume_cut(folder, key, monkeypatch):
    """Siemens (classic, XA enhanced, mosaic), Philips (float rescale), UIH: the box's voxels
    and the whole volume's statistics, as reading the whole series gives them, and the same
    bits whether the statistics stream one slice at a time or the usual ~1 MB."""
    from radimt.dicom import focus

    [series] = [s for s in scan_files(REAL / folder)[0] if s.key == key]
    try:
        whole = read_volume(series)
    except SeriesAssemblyError:
        pytest.skip(f"{folder} {key} is not one volume")
    usual = focus.series_statistics(series)
    with monkeypatch.context() as patch:
        patch.setattr(focus, "_CHUNK_BYTES", 1)  # every slice a chunk of its own
        assert focus.series_statistics(series) == usual
    centre = whole.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in whole.GetSize()])
    part = read_focused(series, Box.around([centre], 3 * min(whole.GetSpacing())))
    assert np.prod(part.GetSize()) < np.prod(whole.GetSize())
    _assert_cut_of(whole, part, origin_mm=1e-6)
    # a mask made on the part goes back onto the series' whole grid, where the part lies
    inside = sitk.Image(part.GetSize(), sitk.sitkUInt8) + 1
    inside.CopyInformation(part)
    back = on_full_grid(inside, series)
    assert back.GetSize() == whole.GetSize()
    assert back.GetOrigin() == pytest.approx(whole.GetOrigin(), abs=1e-6)
    expected = np.zeros(sitk.GetArrayViewFromImage(whole).shape, np.uint8)
    start = whole.TransformPhysicalPointToIndex(part.GetOrigin())
    expected[tuple(slice(a, a + n) for a, n in zip(start[::-1], part.GetSize()[::-1], strict=True))] = 1
    assert np.array_equal(sitk.GetArrayViewFromImage(back), expected)
    written: list[np.ndarray] = []  # the mask file's way: into the kept whole grid, twice
    for _ in range(2):
        write_on_full_grid(inside, series, lambda full: written.append(sitk.GetArrayFromImage(full)))
    assert all(np.array_equal(w, expected) for w in written) and len(written) == 2


@pytest.mark.realdata
def test_the_real_ge_breast_tumour_focused_equals_the_whole_study(tmp_path, monkeypatch, caplog):
    """The I-SPY GE breast DCE: a 9 cm tumour outgrows the box, is analysed again on the whole
    study, and its row and mask are the whole study's."""
    if not GE_TAR.is_file():
        pytest.skip("the shared real-data corpus is not here")
    with tarfile.open(GE_TAR) as tar:
        tar.extractall(tmp_path, filter="data")
    manifest = tmp_path / "ge.csv"
    manifest.write_text(
        f"study_id,path,seed_x,seed_y,seed_z\nf001,{tmp_path / 'UCSF-BR-06'},98.8,-41.0,-15.85\n"
    )
    runs = {}
    for name, share in (("whole", 0.0), ("focused", 0.75)):
        monkeypatch.setattr(worker, "FOCUS_AT_MOST", share)
        with caplog.at_level(logging.INFO, logger="radimt.pipeline.worker"):
            runs[name] = run_batch(
                manifest, "pipelines/breast_mri.yaml", tmp_path / name, show_progress=False
            )
        assert runs[name].failed == 0
    assert sum("beyond the focus box" in r.message for r in caplog.records) == 1
    left, right = (pd.read_csv(tmp_path / n / "features.csv") for n in ("whole", "focused"))
    numeric = [c for c in left.columns if left[c].dtype.kind in "fi"]
    np.testing.assert_allclose(left[numeric].to_numpy(), right[numeric].to_numpy(), rtol=1e-9, atol=1e-12)
    x, y = (
        sitk.ReadImage(str(tmp_path / n / "lesions" / "f001" / "1" / "mask.nii.gz"))
        for n in ("whole", "focused")
    )
    assert np.array_equal(sitk.GetArrayViewFromImage(x), sitk.GetArrayViewFromImage(y))
