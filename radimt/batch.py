"""The batch pipeline: a manifest of lesions to features.csv, kinetics.csv and a QC report.

Each study is processed by one call of :func:`process_study` (load once, then every lesion),
mapped over the studies by a local process pool or a Dask cluster. Workers write each
lesion's results atomically as they finish (``lesions/<study>/<lesion>/result.json`` last, after
its mask and figures), so an interrupted batch loses no finished work: a rerun skips every
lesion whose result was made from the same manifest row and configuration, and the final
tables are assembled from the result files in a fixed order, byte for byte the same as an
uninterrupted run.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radimt.config import PipelineConfig, load_config
from radimt.errors import RadimtError
from radimt.io.atomic import atomic_path
from radimt.io.tables import ID_COLUMNS, write_table
from radimt.manifest import LesionTask, lesion_dir, read_manifest
from radimt.progress import Progress, StageClock

if TYPE_CHECKING:
    from radimt.analysis import LesionInput, LesionResult

log = logging.getLogger(__name__)

RESULT = "result.json"
ERROR = "error.json"


@dataclass
class BatchSummary:
    """What a batch did: lesions done (now or before), failed, and where the outputs are."""

    out: str
    total: int
    done: int
    skipped: int
    failed: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.failed == 0


def _json_write(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True, default=_jsonable)
        fh.write("\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def task_fingerprint(task: LesionTask, config: PipelineConfig) -> str:
    """Identifies a lesion's inputs: a result made from other inputs is redone."""
    from radimt import __version__

    payload = {"task": asdict(task), "config": config.digest(), "radimt": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _finished(out: Path, task: LesionTask, config: PipelineConfig) -> bool:
    path = lesion_dir(out, task) / RESULT
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("fingerprint") == task_fingerprint(task, config)
    except (OSError, json.JSONDecodeError):
        return False


def study_checksum(folder: str) -> str:
    """A cheap fingerprint of a study folder: names, sizes and the first 4 KiB of every file
    (a file that cannot be read counts as its error, so it never stops the batch)."""
    digest = hashlib.sha256()
    root = Path(folder)
    if root.is_file():
        files = [root]
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode())
        digest.update(str(file.stat().st_size).encode())
        try:
            with open(file, "rb") as fh:
                digest.update(fh.read(4096))
        except OSError as exc:  # the scan sets such a file aside too; it is part of the fingerprint
            digest.update(f"unreadable:{exc.errno}".encode())
    return digest.hexdigest()


# -- one study, in a worker ---------------------------------------------------------------


def process_study(
    tasks: Sequence[LesionTask],
    config: PipelineConfig,
    out: str,
    *,
    seg: bool = False,
    keep_phi: bool = False,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Process every lesion of one study; each lesion's result or error is written to disk.

    Returns a short status per lesion (``study_id``, ``lesion_id``, ``status``, ``reason``,
    ``seconds``). Never raises for a bad study: the reason is recorded and the batch goes on.
    ``threads`` caps SimpleITK's threads in this process (parallel workers use 1 each, so they
    do not fight over the cores).
    """
    from radimt.dicom.study import load_study

    if threads is not None:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)

    out_path = Path(out)
    start = time.perf_counter()
    statuses = []
    study = None
    study_error = None
    checksum = ""
    study_clock = StageClock()
    try:  # everything about the study, checksum included, fails that study only
        with study_clock.stage("checksum"):
            checksum = study_checksum(tasks[0].path) if Path(tasks[0].path).exists() else ""
        if tasks[0].image_path is None:
            with study_clock.stage("scan headers"):
                study = load_study(
                    tasks[0].path, roles=config.role_overrides or None, study_uid=tasks[0].study_uid
                )
    except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
        study_error = exc
    for task in tasks:
        t0 = time.perf_counter()
        folder = lesion_dir(out_path, task)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if study_error is not None:
                raise study_error
            clock = StageClock()
            result = _process_lesion(task, study, config, folder, seg=seg, keep_phi=keep_phi, clock=clock)
            result.update(
                fingerprint=task_fingerprint(task, config),
                checksum=checksum,
                seconds=round(time.perf_counter() - t0, 3),
                # the study's stages are shared by its lesions; a lesion's own stages follow
                stage_seconds={**study_clock.rounded(), **clock.rounded()},
            )
            _json_write(folder / RESULT, result)
            (folder / ERROR).unlink(missing_ok=True)
            statuses.append({**task.identity(), "status": "done", "reason": "", "seconds": result["seconds"]})
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never fatal
            statuses.append(
                _record_failure(
                    folder,
                    task,
                    config,
                    f"{type(exc).__name__}: {exc}",
                    round(time.perf_counter() - t0, 3),
                    None if isinstance(exc, RadimtError) else traceback.format_exc(limit=6),
                )
            )
    for s in statuses:
        s["study_seconds"] = round(time.perf_counter() - start, 3)
    return statuses


def lesion_input(task: LesionTask) -> LesionInput:
    """The lesion a manifest row describes: its mask file, else its seed (and the series they refer to)."""
    from radimt.analysis import LesionInput

    if task.mask_path:
        return LesionInput(mask=task.mask_path, series=task.seed_series)
    return LesionInput(seed=task.seed, seed_is_index=task.seed_is_index, series=task.seed_series)


def _process_lesion(
    task, study, config: PipelineConfig, folder: Path, *, seg: bool, keep_phi: bool, clock: StageClock
) -> dict:
    """Analyse one lesion (:func:`radimt.analysis.analyse_lesion`) and write its files."""
    from radimt.analysis import analyse_lesion
    from radimt.io import write_dicom_seg, write_mask

    if task.image_path is not None:  # pyradiomics-style row: an image file and a mask file
        with clock.stage("features"):
            return _pyradiomics_row(task, config, folder)

    result = analyse_lesion(study, lesion_input(task), config, clock=clock)
    with clock.stage("segmentation"):  # writing the mask belongs with making it
        write_mask(result.mask, folder / "mask.nii.gz")
        if seg and result.reference.series is not None:
            write_dicom_seg(
                result.mask,
                result.reference.series,
                folder / "seg.dcm",
                label=f"{task.study_id} lesion {task.lesion_id}",
                keep_phi=keep_phi,
                pseudonym=task.study_id,
            )
    row = result.row
    if config.pyradiomics_names:
        row = pyradiomics_names(row, config.roles[0])
    with clock.stage("figures"):
        figures = _lesion_figures(study, config, folder, result)
    if keep_phi and study is not None:
        row["dicom_study_instance_uid"] = study.series[0].first.header.study_uid
    return {**result.to_json(), "row": row, "figures": figures}


def _lesion_figures(study, config: PipelineConfig, folder: Path, result: LesionResult) -> list[str]:
    """Overlays on the reference image and the carried roles, and the time-intensity plot."""
    from radimt.report.overlay import overlay_png

    reference = result.reference.role
    overlay_png(
        result.reference.image,
        result.mask,
        folder / f"overlay_{reference}.png",
        title=f"{reference.upper()}: {result.row['lesion_longest_diameter_mm']:.1f} mm",
    )
    figures = [f"overlay_{reference}.png"]
    for role in config.roles:
        if role == reference or role in ("mg", "us"):
            continue
        carried = _carried_overlay(study, role, result.mask, config, folder)
        if carried:
            figures.append(carried)
    if result.kinetic_curve is not None:
        fig = result.kinetic_curve.plot()
        with atomic_path(folder / "tic.png") as tmp:
            fig.savefig(tmp, format="png")
        import matplotlib.pyplot as plt

        plt.close(fig)
        figures.append("tic.png")
    return figures


#: The role prefix of features from pyradiomics-style rows (an image file of unknown kind).
IMAGE_PREFIX = "image"


def _pyradiomics_row(task: LesionTask, config: PipelineConfig, folder: Path) -> dict:
    """A pyradiomics batch row computed as pyradiomics' own batch computes it (see
    :func:`radimt.features.pyradiomics_case`), plus radimt's size measures and an overlay."""
    import SimpleITK as sitk

    from radimt.features import load_params, pyradiomics_case
    from radimt.io import read_mask
    from radimt.measure import longest_diameter_mm, mask_volume_mm3
    from radimt.report.overlay import overlay_png

    assert task.image_path is not None and task.mask_path is not None  # a pyradiomics-style row
    params: str | dict[str, Any]
    if config.pyradiomics_params:
        params = config.pyradiomics_params
    else:
        params = load_params(config.presets.get(config.reference, "mr"))
        if config.image_types is not None:
            params["imageType"] = {n: params["imageType"].get(n) or {} for n in config.image_types}
    features, diagnostics = pyradiomics_case(
        task.image_path,
        task.mask_path,
        params,
        label=task.mask_label,
        label_channel=task.label_channel,
        what=f"{task.study_id}/{task.lesion_id}",
    )
    image = sitk.ReadImage(task.image_path)
    settings = load_params(params)["setting"] if isinstance(params, str) else params["setting"]
    label = task.mask_label if task.mask_label is not None else int(settings.get("label", 1))
    mask = read_mask(task.mask_path, image, label=label, label_channel=task.label_channel)
    row: dict[str, Any] = {
        "lesion_volume_mm3": mask_volume_mm3(mask),
        "lesion_longest_diameter_mm": longest_diameter_mm(mask),
    }
    prefix = "" if config.pyradiomics_names else f"{IMAGE_PREFIX}_"
    row.update({f"{prefix}{k}": v for k, v in features.items()})
    if config.diagnostics is not False:  # on by default in this route
        row.update({f"diagnostics_{k}": _diagnostic_text(v) for k, v in diagnostics.items()})
    overlay_png(image, mask, folder / "overlay_image.png", title=f"{task.study_id} label {label}")
    provenance = {
        "route": "pyradiomics batch row (whole image, as pyradiomics computes it)",
        "params": params if isinstance(params, str) else _plain_json(params),
        "label": label,
        "label_channel": task.label_channel,
        "pyradiomics": {k: _diagnostic_text(v) for k, v in diagnostics.items()},
    }
    return {"row": row, "curves": [], "figures": ["overlay_image.png"], "provenance": provenance}


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


def _diagnostic_text(value: Any) -> Any:
    """A diagnostic as pyradiomics' batch writes it: numbers stay numbers, the rest is str()."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)


def _plain_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _carried_overlay(study, role, mask, config, folder: Path) -> str | None:
    from radimt.lesion import role_image
    from radimt.report.overlay import overlay_png
    from radimt.segment import resample_mask

    try:
        image = role_image(study, role, config.dce_phase)
        if image is None:
            return None
        moved = resample_mask(mask, image)
        name = f"overlay_{role}.png"
        overlay_png(image, moved, folder / name, title=role.upper())
        return name
    except RadimtError:
        return None


# -- the whole batch -----------------------------------------------------------------------


def prepare_out(out: Path) -> Path:
    """Create the output folder and check radimt can write in it, before any work.

    Raises
    ------
    RadimtError
        The folder cannot be created (a parent is a file, no permission, read-only file system)
        or written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise RadimtError(
            f"{out}: cannot write the output folder ({exc.strerror or exc}"
            f"{': ' + str(exc.filename) if exc.filename and str(exc.filename) != str(out) else ''}); "
            "choose another --out or fix its permissions"
        ) from None
    return out


def remove_partial_files(out: Path) -> int:
    """Delete temporary files an interrupted run left behind (atomic writes start with '.')."""
    removed = 0
    for path in [*out.glob(".*"), *(out / "lesions").glob("*/*/.*")]:
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def _group_by_study(tasks: Sequence[LesionTask]) -> list[list[LesionTask]]:
    groups: dict[str, list[LesionTask]] = defaultdict(list)
    for task in tasks:
        groups[task.study_id].append(task)
    return list(groups.values())


def _execute(groups, config, out, *, workers, scheduler, seg, keep_phi) -> Iterable[list[dict]]:
    """Run :func:`process_study` over the study groups; yield statuses as they arrive."""
    if scheduler:
        from distributed import Client, LocalCluster, as_completed

        if scheduler == "local-dask":
            cluster = LocalCluster(
                n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            cluster, client = None, Client(scheduler)
        try:
            futures = {
                client.submit(
                    process_study, g, config, out, seg=seg, keep_phi=keep_phi, threads=1, pure=False
                ): g
                for g in groups
            }
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - process_study never raises: the worker died
                    reason = f"WorkerDied: the Dask worker of this study failed ({type(exc).__name__}: {exc})"
                    yield record_lost(futures[future], config, out, reason)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    if workers <= 1:
        for group in groups:
            yield process_study(group, config, out, seg=seg, keep_phi=keep_phi)
        return
    work = functools.partial(process_study, config=config, out=out, seg=seg, keep_phi=keep_phi, threads=1)
    yield from in_processes(groups, work, workers, functools.partial(record_lost, config=config, out=out))


def in_processes(
    groups: Sequence[list[LesionTask]],
    work: Callable[[list[LesionTask]], list[dict]],
    workers: int,
    on_lost: Callable[[list[LesionTask]], list[dict]],
) -> Iterable[list[dict]]:
    """Run ``work(group)`` in worker processes and yield each result as it arrives.

    A worker that dies (SIGKILL, the out-of-memory killer) breaks the whole pool, so every study
    in flight is lost with it, not only the culprit. Lost studies are retried once, each alone
    in a fresh one-worker pool; a study whose worker dies again is ``on_lost(group)`` (recorded
    as failed), and the run finishes with its tables.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # no inherited threads or locks
    lost = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(work, g): g for g in groups}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.append(futures[future])
                continue
            yield result
    for group in lost:
        log.warning("a worker died; retrying study %s alone", group[0].study_id)
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            try:
                result = pool.submit(work, group).result()
            except BrokenProcessPool:
                result = on_lost(group)
        yield result


WORKER_DIED = (
    "WorkerDied: the worker process of this study died twice (killed by the system, often for "
    "lack of memory); it was retried once alone. Give it more memory or fewer --workers and rerun "
    "the batch: finished lesions are kept"
)


def record_lost(
    tasks: Sequence[LesionTask], config: PipelineConfig, out: str, reason: str = WORKER_DIED
) -> list[dict]:
    """Record every lesion of a study whose worker died as failed (an error.json each)."""
    statuses = []
    for task in tasks:
        folder = lesion_dir(Path(out), task)
        folder.mkdir(parents=True, exist_ok=True)
        statuses.append({**_record_failure(folder, task, config, reason, 0.0), "study_seconds": 0.0})
    return statuses


def _record_failure(
    folder: Path,
    task: LesionTask,
    config: PipelineConfig,
    reason: str,
    seconds: float,
    traceback_text: str | None = None,
) -> dict[str, Any]:
    """Write a lesion's error.json (and drop any stale result); return its failed status."""
    record = {**task.identity(), "reason": reason, "fingerprint": task_fingerprint(task, config)}
    if traceback_text is not None:
        record["traceback"] = traceback_text
    _json_write(folder / ERROR, record)
    (folder / RESULT).unlink(missing_ok=True)
    return {**task.identity(), "status": "failed", "reason": reason, "seconds": seconds}


def run_batch(
    manifest: str | os.PathLike[str],
    pipeline: str | os.PathLike[str] | PipelineConfig,
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    seg: bool = False,
    keep_phi: bool = False,
    table_format: str = "csv",
    on_study: Callable[[list[dict]], None] | None = None,
    show_progress: bool = True,
    diagnostics: bool | None = None,
    pyradiomics_names: bool | None = None,
) -> BatchSummary:
    """Run the pipeline over every lesion of a manifest; see the module notes.

    Parameters
    ----------
    manifest
        Manifest CSV (validated completely before any work).
    pipeline
        Pipeline YAML (or a loaded :class:`PipelineConfig`).
    out
        Output folder.
    workers
        Local worker processes (1 = in this process).
    scheduler
        ``"local-dask"`` for a Dask LocalCluster of ``workers`` processes, or the address of a
        Dask scheduler (``tcp://host:8786``).
    force
        Recompute lesions that already have results.
    seg
        Also write a DICOM SEG per lesion.
    keep_phi
        Keep patient identifiers in DICOM SEG outputs (by default replaced by the study id).
    table_format
        ``csv`` or ``parquet`` for features (CSV is always written too).
    on_study
        Called with the lesion statuses of each study as it finishes.
    show_progress
        Report each finished study on standard error (a bar on a terminal, a line in a log).
    diagnostics, pyradiomics_names
        Override the pipeline's settings of the same names (``None`` keeps them).
    """
    start_wall = _dt.datetime.now(_dt.timezone.utc)
    start = time.perf_counter()
    tasks = read_manifest(manifest)
    config = pipeline if isinstance(pipeline, PipelineConfig) else load_config(pipeline)
    if diagnostics is not None:
        config = replace(config, diagnostics=diagnostics)
    if pyradiomics_names is not None:
        config = replace(config, pyradiomics_names=pyradiomics_names)
    if table_format not in ("csv", "parquet"):
        raise RadimtError(f"unknown --format {table_format!r}: csv or parquet")
    if config.pyradiomics_names and len(config.roles) > 1 and any(not t.image_path for t in tasks):
        raise RadimtError(
            f"--pyradiomics-names needs one role with radiomic features; the pipeline has "
            f"{', '.join(config.roles)} (their columns would collide without the role prefix)"
        )
    out_path = prepare_out(Path(out))
    remove_partial_files(out_path)
    pending = [t for t in tasks if force or not _finished(out_path, t, config)]
    groups = _group_by_study(pending)
    progress = Progress(len(groups), "study", stream=None if show_progress else io.StringIO())
    timings: dict[str, float] = {}
    for statuses in _execute(
        groups, config, str(out_path), workers=workers, scheduler=scheduler, seg=seg, keep_phi=keep_phi
    ):
        progress.update(statuses[0]["study_id"], any(s["status"] == "failed" for s in statuses))
        timings[statuses[0]["study_id"]] = statuses[0]["study_seconds"]
        if on_study is not None:
            on_study(statuses)
    progress.close()
    summary = assemble(tasks, config, out_path, table_format=table_format)
    summary.skipped = len(tasks) - len(pending)
    summary.seconds = round(time.perf_counter() - start, 3)
    _write_run_json(out_path, manifest, config, tasks, timings, start_wall, summary, workers, scheduler)
    return summary


def assemble(
    tasks: Sequence[LesionTask], config: PipelineConfig, out: Path, *, table_format: str = "csv"
) -> BatchSummary:
    """Build features.csv, kinetics.csv, errors.csv and report.html from the lesion files."""
    from radimt.report.html import write_report

    ordered = sorted(tasks, key=lambda t: (t.study_id, t.lesion_id))
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    entries: list[tuple[LesionTask, dict | None, str | None]] = []
    for task in ordered:
        folder = lesion_dir(out, task)
        result_path, error_path = folder / RESULT, folder / ERROR
        if result_path.exists():
            result = json.loads(result_path.read_text())
            rows.append({**task.identity(), **result["row"]})
            curves += [
                {"study_id": task.study_id, "lesion_id": task.lesion_id, **c} for c in result["curves"]
            ]
            entries.append((task, result, None))
        else:
            reason = json.loads(error_path.read_text())["reason"] if error_path.exists() else "not processed"
            errors.append({"study_id": task.study_id, "lesion_id": task.lesion_id, "reason": reason})
            entries.append((task, None, reason))
    identity = list(tasks[0].identity()) if tasks else ["study_id", "lesion_id"]
    extra = [c for c in identity if c not in ID_COLUMNS]
    id_columns = [c for c in ID_COLUMNS if rows or c in identity] + extra
    write_table(rows, out / "features.csv", id_columns=id_columns)
    if table_format == "parquet":
        _write_parquet(out / "features.csv", out / "features.parquet")
    write_table(
        curves,
        out / "kinetics.csv",
        id_columns=("study_id", "lesion_id", "curve", "phase", "time_s", "signal", "enhancement_pct"),
    )
    write_table(errors, out / "errors.csv", id_columns=("study_id", "lesion_id", "reason"))
    write_report(out / "report.html", config, entries, out)
    return BatchSummary(
        out=str(out), total=len(tasks), done=len(rows), skipped=0, failed=len(errors), seconds=0.0
    )


def _write_parquet(csv_path: Path, parquet_path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(csv_path, dtype={"study_id": str, "lesion_id": str})
    with atomic_path(parquet_path) as tmp:
        frame.to_parquet(tmp, index=False)


def _write_run_json(out, manifest, config, tasks, timings, start_wall, summary, workers, scheduler) -> None:
    import numpy
    import pydicom
    import radiomics
    import SimpleITK as sitk

    from radimt import __version__

    checksums = {}
    for task in tasks:
        result = lesion_dir(out, task) / RESULT
        if result.exists():
            checksums[task.study_id] = json.loads(result.read_text()).get("checksum", "")
    _json_write(
        out / "run.json",
        {
            "radimt": __version__,
            "pyradiomics": radiomics.__version__,
            "SimpleITK": sitk.Version.VersionString(),
            "pydicom": pydicom.__version__,
            "numpy": numpy.__version__,
            "manifest": str(Path(manifest).resolve()),
            "config": config.to_dict(),
            "config_digest": config.digest(),
            "filter_overrides": config.filter_overrides(),
            "started": start_wall.isoformat(timespec="seconds"),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "workers": workers,
            "scheduler": scheduler,
            "lesions": summary.total,
            "done": summary.done,
            "failed": summary.failed,
            "skipped_already_done": summary.skipped,
            "seconds": summary.seconds,
            "study_seconds": timings,
            "input_checksums": checksums,
        },
    )
