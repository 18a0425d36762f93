"""One study in a worker: load it once, analyse every lesion, write each lesion's files.

A lesion's folder gets its mask, figures and ``result.json`` (last, atomically), or an
``error.json`` with the reason; nothing a worker writes is ever half a file. The functions here
run in whichever process the runner (:mod:`radimt.pipeline.runner`) hands a study to.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import re
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from radimt._version import __version__
from radimt.analysis import (
    LesionInput,
    LesionResult,
    Reference,
    analyse_image_file,
    analyse_lesion,
    focus_radius_mm,
    reach_mm,
    reference_image,
    role_image,
)
from radimt.dicom.focus import (
    Box,
    covered_fraction,
    geometry_of,
    holds,
    inside_focus,
    on_full_grid,
    write_on_full_grid,
)
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.study import Study, load_study
from radimt.errors import OutputFolderError, RadimtError
from radimt.grids import (
    FRAME_OF_REFERENCE_KEY,
    focus_of,
    independent_copy,
    nonzero_box,
    same_frame_of_reference,
    same_grid,
)
from radimt.io import write_dicom_seg, write_mask
from radimt.pipeline.config import PipelineConfig
from radimt.pipeline.manifest import LesionTask, lesion_dir, lesion_folder
from radimt.pipeline.record import ERROR, RESULT, LesionRecord, LesionStatus, write_json
from radimt.progress import StageClock
from radimt.report.curve_plot import write_curve_png
from radimt.report.overlay import central_section, overlay_png
from radimt.report.review_view import view_region, write_thumbnail, write_view, write_view_region
from radimt.roles import Role
from radimt.segment import lesion_cut, resample_mask

log = logging.getLogger(__name__)


def task_fingerprint(task: LesionTask, config: PipelineConfig) -> str:
    """Identifies a lesion's inputs: a result made from other inputs is redone. Its label and the
    columns carried along are not inputs (the tables take them from the manifest as it is now)."""
    inputs = {k: v for k, v in asdict(task).items() if k not in ("label", "extra")}
    payload = {"task": inputs, "config": config.digest(), "radimt": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def is_finished(out: Path, task: LesionTask, config: PipelineConfig) -> bool:
    """Whether ``task`` has a result made from the same inputs (a rerun skips it)."""
    record = LesionRecord.read(lesion_dir(out, task))
    return record is not None and record.fingerprint == task_fingerprint(task, config)


def study_checksum(folder: str) -> str:
    """A cheap fingerprint of a study folder: names, sizes and the first 4 KiB of every file
    (a file that cannot be read counts as its error, so it never stops the batch)."""
    digest = hashlib.sha256()
    root = Path(folder)
    files = [((root.name,), str(root))] if root.is_file() else _files_under(str(root))
    for parts, path in files:
        digest.update("/".join(parts).encode())
        digest.update(str(os.stat(path).st_size).encode())
        try:
            with open(path, "rb") as fh:
                digest.update(fh.read(4096))
        except OSError as exc:  # the scan sets such a file aside too; it is part of the fingerprint
            digest.update(f"unreadable:{exc.errno}".encode())
    return digest.hexdigest()


def _files_under(root: str) -> list[tuple[tuple[str, ...], str]]:
    """Every file under ``root`` as (its path's parts below ``root``, its path), in the order
    ``sorted(Path(root).rglob("*"))`` gives, and the same files: links to files included, linked
    folders not entered, unreadable folders passed over (without pathlib's objects: under half
    the time on a study's 1,600 files)."""
    found: list[tuple[tuple[str, ...], str]] = []

    def visit(folder: str, parts: tuple[str, ...]) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except PermissionError:
            return
        for entry in entries:
            if entry.is_file():
                found.append(((*parts, entry.name), entry.path))
            if entry.is_dir(follow_symlinks=False):
                visit(entry.path, (*parts, entry.name))

    visit(root, ())
    return sorted(found)


# -- one study, in a worker ---------------------------------------------------------------


def process_study(
    tasks: Sequence[LesionTask],
    config: PipelineConfig,
    out: str,
    *,
    seg: bool = False,
    keep_phi: bool = False,
    threads: int | None = None,
) -> list[LesionStatus]:
    """Process every lesion of one study; each lesion's result or error is written to disk.

    Returns a :class:`LesionStatus` per lesion. Never raises for a bad study: the reason is
    recorded and the batch goes on.
    ``threads`` caps SimpleITK's threads in this process (parallel workers use 1 each, so they
    do not fight over the cores).
    """
    if threads is not None:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)

    out_path = Path(out)
    start = time.perf_counter()
    statuses: list[LesionStatus] = []
    study = None
    study_error = None
    checksum = ""
    study_clock = StageClock()
    focus_reach: list[float] | None = None
    try:  # everything about the study, checksum included, fails that study only
        with study_clock.stage("checksum"):
            checksum = study_checksum(tasks[0].path) if Path(tasks[0].path).exists() else ""
        if tasks[0].image_path is None:
            with study_clock.stage("scan headers"):
                study = load_study(
                    tasks[0].path,
                    roles=config.role_overrides or None,
                    study_uid=tasks[0].study_uid,
                    mg_spacing_mm=config.mg_spacing_mm,
                )
                try:  # reading in part is only ever a saving: never a reason to fail the study
                    voxel = _largest_voxel(study)
                    study.focus = lesions_box(study, tasks, config, voxel)
                    if study.focus is not None and voxel is not None:  # what a lesion's features read
                        focus_reach = [reach_mm(config.analysis, side, max(voxel))[1] for side in voxel]
                except Exception as exc:  # noqa: BLE001
                    log.warning("%s: read whole (%s: %s)", tasks[0].study_id, type(exc).__name__, exc)
    except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
        study_error = exc
    for task in tasks:
        t0 = time.perf_counter()
        try:
            folder = lesion_folder(out_path, task)
        except (OutputFolderError, OSError) as exc:  # nowhere safe to write: said, not written
            reason = f"{type(exc).__name__}: {exc}"
            log.error("%s lesion %s: %s", task.study_id, task.lesion_id, reason)
            statuses.append(LesionStatus(task.study_id, task.lesion_id, "failed", reason, 0.0))
            continue
        try:
            if study_error is not None:
                raise study_error
            clock = StageClock()
            record = _process_lesion(
                task, study, config, folder, seg=seg, keep_phi=keep_phi, clock=clock, focus_reach=focus_reach
            )
            record.fingerprint = task_fingerprint(task, config)
            record.checksum = checksum
            record.seconds = round(time.perf_counter() - t0, 3)
            # the study's stages are shared by its lesions; a lesion's own stages follow
            record.stage_seconds = {**study_clock.rounded(), **clock.rounded()}
            record.write(folder)
            (folder / ERROR).unlink(missing_ok=True)
            statuses.append(LesionStatus(task.study_id, task.lesion_id, "done", "", record.seconds))
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never fatal
            if study is not None and task.image_path is None:
                _failure_view(study, task, config, folder)
            statuses.append(
                record_failure(
                    folder,
                    task,
                    config,
                    f"{type(exc).__name__}: {exc}",
                    round(time.perf_counter() - t0, 3),
                    None if isinstance(exc, RadimtError) else traceback.format_exc(limit=6),
                )
            )
    for status in statuses:
        status.study_seconds = round(time.perf_counter() - start, 3)
    return statuses


#: A study is read whole unless the lesions' box leaves out more than this share of its volume.
FOCUS_AT_MOST = 0.75
#: The roles a focused study reads in part.
FOCUSED_ROLES = ("dce", "t1", "t2", "ct", "adc", "dwi")


def _largest_voxel(study: Study) -> list[float] | None:
    """The largest voxel side along each patient axis (L, P, S) over the focused roles' series."""
    series = [s for role in FOCUSED_ROLES for s in study.series_for(role)]
    try:
        geometries = [geometry_of(s) for s in series]
    except RadimtError:  # a series that cannot be assembled: reading it says why
        return None
    sides = [np.abs(np.reshape(g.direction, (3, 3))) @ np.asarray(g.spacing) for g in geometries]
    return np.max(sides, axis=0).tolist() if sides else None


def lesions_box(
    study: Study, tasks: Sequence[LesionTask], config: PipelineConfig, voxel: list[float] | None = None
) -> Box | None:
    """The box around a study's seeds that their analyses stay in (see
    :func:`radimt.analysis.focus_radius_mm`), or ``None`` when the whole study is read: a lesion
    given by a mask or a voxel index, a 3D seed on another modality, or a box holding most of the
    study. ``voxel``: :func:`_largest_voxel` of the study, when already known.

    A lesion whose features reach beyond the box is analysed again on the whole study
    (:func:`fits_focus`), so the numbers never depend on the box.
    """
    if any(t.seed is None or len(t.seed) != 3 or t.seed_is_index or t.mask_path for t in tasks):
        return None  # a mask, a voxel index or a 2D point: the whole study
    if any(not seed.role.planar for t in tasks for seed in t.modality_seeds):
        return None
    voxel = voxel or _largest_voxel(study)
    if voxel is None:
        return None
    radius = [focus_radius_mm(config.analysis, side, max(voxel)) for side in voxel]  # slices are thicker
    box = Box.around([t.seed for t in tasks if t.seed is not None], radius)
    series = [s for role in FOCUSED_ROLES for s in study.series_for(role)]
    largest = geometry_of(max(series, key=lambda s: s.n_images * s.rows * s.columns))
    if not all(holds(largest, t.seed) for t in tasks if t.seed is not None):
        return None  # a seed off the images: the whole study, whose seed check says so
    return box if covered_fraction(largest, box) <= FOCUS_AT_MOST else None


def fits_focus(
    study: Study, result: LesionResult, config: PipelineConfig, focus_reach: Sequence[float]
) -> bool:
    """Whether everything a focused lesion's numbers used lies inside the focused images: the
    mask's box grown by the features' reach (mm per patient axis), on every role's image
    (clipped where the whole image ends anyway)."""
    box = nonzero_box(sitk.GetArrayViewFromImage(result.mask))
    if box is None:
        return False
    mask = result.mask
    corners = [
        mask.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
        for corner in itertools.product(*[(b.start - 0.5, b.stop - 0.5) for b in reversed(box)])
    ]
    needed = Box.around(corners, focus_reach)
    roles = [role_image(study, r, config.analysis.dce_phase) for r in config.analysis.roles]
    images = [result.reference.image, *roles]
    return all(image is None or inside_focus(image, needed) for image in images)


def lesion_input(task: LesionTask) -> LesionInput:
    """The lesion a manifest row describes: its mask file, else its seed (and the series they refer to)."""
    if task.mask_path:
        return LesionInput(mask=task.mask_path, series=task.seed_series)
    return LesionInput(seed=task.seed, seed_is_index=task.seed_is_index, series=task.seed_series)


def _process_lesion(
    task: LesionTask,
    study: Study | None,
    config: PipelineConfig,
    folder: Path,
    *,
    seg: bool,
    keep_phi: bool,
    clock: StageClock,
    focus_reach: Sequence[float] | None = None,
) -> LesionRecord:
    """Analyse one lesion (:func:`radimt.analysis.analyse_lesion`, or
    :func:`radimt.analysis.analyse_image_file` for a pyradiomics-style row) and write its files.
    ``focus_reach``: for a focused study, what the features read around a mask (mm per axis)."""
    if task.image_path is not None:  # pyradiomics-style row: an image file and a mask file
        with clock.stage("features"):
            return _image_file_row(task, config, folder)
    assert study is not None  # loaded for every row with a study folder
    lesion, others = lesion_input(task), task.modality_seeds
    result = analyse_lesion(study, lesion, config.analysis, others=others, clock=clock)
    if study.focus is not None and (
        focus_reach is None or not fits_focus(study, result, config, focus_reach)
    ):
        log.info(
            "%s lesion %s: beyond the focus box, analysed on the whole study", task.study_id, task.lesion_id
        )
        study = study.whole()
        result = analyse_lesion(study, lesion, config.analysis, others=others, clock=clock)
    reference, mask_file = result.reference, folder / "mask.nii.gz"
    with _AlongSide() as files:  # image files written while the figures are drawn, from images of their own
        with clock.stage("segmentation"):  # writing the mask (and its DICOM objects) belongs with making it
            if seg and reference.series is not None:  # on the series' whole grid, once for both files
                on_grid = _on_series_grid(result.mask, _focused_source(reference))
                _write_dicom_objects(task, result, on_grid, reference.series, folder, keep_phi=keep_phi)
                if on_grid is result.mask:  # a whole series' mask: the figures read it as well
                    on_grid = independent_copy(on_grid)
                files.run(write_mask, on_grid, mask_file)
            else:  # the files thread's own image: the lesion's cut to paste into the whole grid
                source = _focused_source(reference)
                mask = independent_copy(result.mask) if source is None else lesion_cut(result.mask)
                files.run(_write_mask_file, mask, source, mask_file)
        with clock.stage("figures"):
            _review_views(study, task, folder, result, files)  # its file first, to write beside the figures
            figures = _lesion_figures(study, config, folder, result, files)
    row = result.row
    if config.pyradiomics_names:
        row = pyradiomics_names(row, config.analysis.roles[0])
    if keep_phi:
        row["dicom_study_instance_uid"] = study.study_uid
    return LesionRecord(row=row, curves=result.curve_rows(), figures=figures, provenance=result.provenance)


class _AlongSide:
    """Runs file writing (SimpleITK's writers and zlib, outside Python's lock) on a thread beside
    the one drawing figures; inline when the process is held to one thread (parallel batch
    workers). Leaving the ``with`` waits for every file and raises the first failure (unless
    the block itself failed: that failure is the lesion's)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        if sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() > 1:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="radimt-files")
        self._pending: list[Future[None]] = []

    def run(self, write: Callable[..., None], *args: Any) -> None:
        if self._pool is None:
            write(*args)
        else:
            self._pending.append(self._pool.submit(write, *args))

    def __enter__(self) -> _AlongSide:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            for pending in self._pending:
                if kind is None:
                    pending.result()
                else:  # the lesion already failed: that is its reason, whatever the files did
                    pending.exception()
        finally:
            if self._pool is not None:
                self._pool.shutdown()


def _focused_source(reference: Reference) -> SeriesInfo | None:
    """The series whose whole grid a mask on ``reference`` goes back onto: ``None`` when the
    reference is a whole image already."""
    return reference.series if reference.series is not None and focus_of(reference.image) else None


def _on_series_grid(mask: sitk.Image, focused_source: SeriesInfo | None) -> sitk.Image:
    """The lesion's mask on the reference series' whole grid (``focused_source``: the series
    whose focused part ``mask`` lies on, pasted into its whole grid; ``None``: ``mask`` itself)."""
    return mask if focused_source is None else on_full_grid(mask, focused_source)


def _write_mask_file(mask: sitk.Image, focused_source: SeriesInfo | None, path: Path) -> None:
    """mask.nii.gz on the reference series' whole grid (see :func:`_on_series_grid`): ``mask``
    (for a focused reference, any part of the mask holding the lesion) pasted into a whole grid
    kept between a study's lesions."""
    if focused_source is None:
        write_mask(mask, path)
    else:
        write_on_full_grid(mask, focused_source, functools.partial(write_mask, path=path))


def _write_dicom_objects(
    task: LesionTask,
    result: LesionResult,
    mask: sitk.Image,
    source: SeriesInfo,
    folder: Path,
    *,
    keep_phi: bool,
) -> None:
    """The lesion's DICOM SEG of ``mask`` (on ``source``'s whole grid), and for a 3D mask the SR
    of its measurements (``--seg``)."""
    label = f"{task.study_id} lesion {task.lesion_id}"
    write_dicom_seg(mask, source, folder / "seg.dcm", label=label, keep_phi=keep_phi, pseudonym=task.study_id)
    if result.mask.GetDimension() == 3:  # the SEG's measurements
        from radimt.io.sr import write_measurement_report  # highdicom: only for --seg

        write_measurement_report(
            result.row,
            folder / "seg.dcm",
            source,
            folder / "sr.dcm",
            lesion=label,
            keep_phi=keep_phi,
            pseudonym=task.study_id,
        )


def _longest(row: dict, stem: str) -> str:
    """The longest diameter with its unit (``12.3 mm``; ``240 px`` for film without a pixel size)."""
    for unit in ("mm", "px"):
        if f"{stem}_{unit}" in row:
            return f"{row[f'{stem}_{unit}']:.1f} {unit}"
    return "? mm"


def _lesion_figures(
    study: Study, config: PipelineConfig, folder: Path, result: LesionResult, files: _AlongSide
) -> list[str]:
    """Overlays on the reference image and the carried roles, and the time-intensity plot.

    The 3D overlays are drawn from sections of their own (:func:`central_section`) by whichever
    thread is free first: the files thread once its files are written, this one once the plot
    is drawn (:func:`_drain`); 2D ones here, from the images themselves."""
    figures: list[str] = []
    queued: deque[Callable[[], None]] = deque()

    def overlay(image: sitk.Image, mask: sitk.Image, name: str, title: str) -> None:
        if image.GetDimension() == 3:
            section, mask_section = central_section(image, mask)
            queued.append(functools.partial(overlay_png, section, mask_section, folder / name, title=title))
        else:
            overlay_png(image, mask, folder / name, title=title)
        figures.append(name)

    reference = result.reference.role or Role.T1
    title = f"{reference.upper()}: {_longest(result.row, 'lesion_longest_diameter')}"
    overlay(result.reference.image, result.mask, f"overlay_{reference}.png", title)
    carried_roles = list(config.analysis.roles)
    if Role.ADC in carried_roles and Role.DWI not in carried_roles and study.dwi is not None:
        carried_roles.append(Role.DWI)  # the DWI the ADC came from: its own panel
    for role in carried_roles:
        if role == reference or role.planar or role in result.modalities:
            continue  # a 2D modality has no carried mask; one with its own seed gets its own overlay
        carried = _carried_overlay(study, role, result, config)
        if carried is not None:
            on_role, moved, title = carried
            overlay(on_role, moved, f"overlay_{role}.png", title)
    for key, (image, mask) in result.modalities.items():  # the lesion on its other modalities
        longest = _longest(result.row, f"{key}_lesion_longest_diameter")
        overlay(image.image, mask, f"overlay_{key}.png", f"{image.label}: {longest}")
    files.run(_drain, queued)
    if result.kinetic_curve is not None:
        write_curve_png(result.kinetic_curve, folder / "tic.png")
        figures.append("tic.png")
    _drain(queued)
    return figures


def _drain(queued: deque[Callable[[], None]]) -> None:
    """Run the queued drawings until none is left; two threads may drain one queue (each
    drawing is taken by one of them: a deque's ``popleft`` is atomic)."""
    while True:
        try:
            draw = queued.popleft()
        except IndexError:
            return
        draw()


def _seed_point(image: sitk.Image, task: LesionTask) -> tuple[float, ...] | None:
    """The task's seed as a point of ``image``'s space (an index seed of that image converted)."""
    if task.seed is None:
        return None
    if not task.seed_is_index:
        return tuple(float(v) for v in task.seed)
    try:
        return tuple(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in task.seed]))
    except RuntimeError:
        return None


def _planar_title(study: Study, reference: Reference) -> str:
    """A 2D image's label with the breast it shows, when its header says (``MG CC (series 30),
    left breast``)."""
    for planar in [*(study.mg or []), *(study.us or [])]:
        if planar.series is reference.series and planar.laterality in ("L", "R"):
            side = "left" if planar.laterality == "L" else "right"
            return f"{reference.label}, {side} breast"
    return reference.label


def _review_views(
    study: Study, task: LesionTask, folder: Path, result: LesionResult, files: _AlongSide
) -> None:
    """What ``radimt review`` shows: the reference around the lesion (written by ``files`` from
    a crop of its own), and each 2D image whole."""
    reference = result.reference
    seed = _seed_point(reference.image, task)
    view = functools.partial(
        write_view_region, label=reference.label, role=str(reference.role or ""), seed=seed
    )
    files.run(view, folder, *view_region(reference.image, result.mask, seed))
    if reference.image.GetDimension() == 2:
        write_thumbnail(
            folder / f"thumb_{reference.role or 'image'}.png",
            reference.image,
            result.mask,
            title=_planar_title(study, reference),
        )
    for key, (image, mask) in result.modalities.items():
        if image.image.GetDimension() == 2:
            write_thumbnail(folder / f"thumb_{key}.png", image.image, mask, title=image.label)


def _failure_view(study: Study, task: LesionTask, config: PipelineConfig, folder: Path) -> None:
    """For a lesion that failed, the reference image around its seed, to re-seed it from the
    review page; nothing when even that image cannot be had (the failure says why)."""
    try:
        reference = reference_image(
            study, config.analysis.reference, series=task.seed_series, dce_phase=config.analysis.dce_phase
        )
        seed = _seed_point(reference.image, task)
        write_view(
            folder, reference.image, None, label=reference.label, role=str(reference.role or ""), seed=seed
        )
    except Exception as exc:  # noqa: BLE001 - the lesion's own failure is what matters
        log.debug("%s lesion %s: no review view (%s)", task.study_id, task.lesion_id, exc)


#: The role prefix of features from pyradiomics-style rows (an image file of unknown kind).
IMAGE_PREFIX = "image"


def _image_file_row(task: LesionTask, config: PipelineConfig, folder: Path) -> LesionRecord:
    """A pyradiomics batch row (:func:`radimt.analysis.analyse_image_file`) and its overlay."""
    assert task.image_path is not None and task.mask_path is not None  # a pyradiomics-style row
    result = analyse_image_file(
        task.image_path,
        task.mask_path,
        config.image_file_params(),
        label=task.mask_label,
        label_channel=task.label_channel,
        what=f"{task.study_id}/{task.lesion_id}",
        feature_prefix="" if config.pyradiomics_names else f"{IMAGE_PREFIX}_",
        diagnostics=config.diagnostics is not False,  # on by default in this route
    )
    title = f"{task.study_id} label {result.provenance['label']}"
    overlay_png(result.reference.image, result.mask, folder / "overlay_image.png", title=title)
    return LesionRecord(row=result.row, figures=["overlay_image.png"], provenance=result.provenance)


#: A radiomic feature column: ``<role>_<image type>_<feature class>_<feature>``.
_RADIOMIC = re.compile(
    r"^(?P<role>[a-z0-9]+)_(?P<name>(original|log-sigma-[0-9-]+mm-[23]D|wavelet-[HL]+|square|squareroot|"
    r"logarithm|exponential|gradient|lbp-[23]D(-[a-z0-9]+)?)_[A-Za-z0-9]+_[A-Za-z0-9]+)$"
)


def pyradiomics_names(row: dict[str, Any], role: str) -> dict[str, Any]:
    """``role``'s radiomic columns under pyradiomics' own names (``dce_original_glcm_Contrast`` ->
    ``original_glcm_Contrast``); every other column unchanged."""
    out = {}
    for key, value in row.items():
        match = _RADIOMIC.match(key)
        out[match["name"] if match and match["role"] == role else key] = value
    return out


def _carried_overlay(
    study: Study, role: Role, result: LesionResult, config: PipelineConfig
) -> tuple[sitk.Image, sitk.Image, str] | None:
    """``role``'s image, the lesion's mask on it (the one its numbers used, else carried now)
    and the overlay's title; ``None`` when the study cannot give them."""
    try:
        image = role_image(study, role, config.analysis.dce_phase)
        if image is None:
            return None
        moved = result.role_masks.get(role)
        if moved is None:  # a role measured on this very grid (the ADC of this DWI) has it already
            moved = next((m for m in result.role_masks.values() if _carried_onto(m, image)), None)
        if moved is None:
            moved = resample_mask(result.mask, image)
    except RadimtError:
        return None
    title = role.upper()
    if role == Role.DWI and study.dwi is not None:
        title = f"DWI b = {float(study.dwi.b_values[-1]):.0f} s/mm²"
    elif role == Role.ADC:
        title = "ADC (µm²/ms)"
    return image, moved, title


def _carried_onto(mask: sitk.Image, image: sitk.Image) -> bool:
    """Whether ``mask`` was carried onto ``image``'s grid, in its frame of reference."""
    key = FRAME_OF_REFERENCE_KEY
    frame = mask.GetMetaData(key) if mask.HasMetaDataKey(key) else None
    return same_grid(mask, image) and same_frame_of_reference(image, frame)


def record_failure(
    folder: Path,
    task: LesionTask,
    config: PipelineConfig,
    reason: str,
    seconds: float,
    traceback_text: str | None = None,
) -> LesionStatus:
    """Write a lesion's error.json (and drop any stale result); return its failed status."""
    fingerprint = task_fingerprint(task, config)
    record: dict[str, Any] = {**task.identity(), "reason": reason, "fingerprint": fingerprint}
    if traceback_text is not None:
        record["traceback"] = traceback_text
    write_json(folder / ERROR, record)
    (folder / RESULT).unlink(missing_ok=True)
    return LesionStatus(task.study_id, task.lesion_id, "failed", reason, seconds)
