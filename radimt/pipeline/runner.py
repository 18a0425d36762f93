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

import contextlib
import datetime as _dt
import functools
import io
import json
import logging
import os
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from radimt._version import __version__
from radimt.dictionary import dictionary, write_dictionary
from radimt.errors import ConfigError, OutputFolderError, RadimtError
from radimt.io.atomic import atomic_path
from radimt.io.tables import ID_COLUMNS, STATUS_COLUMNS, write_table
from radimt.pipeline.config import PipelineConfig, load_config, resolved_options
from radimt.pipeline.manifest import LesionTask, check_inside, lesion_dir, lesion_folder, read_manifest
from radimt.pipeline.quality import TableQuality, lesion_warnings, table_quality, warning_text
from radimt.pipeline.record import ERROR, LesionRecord, LesionStatus, write_json
from radimt.pipeline.report import write_report
from radimt.pipeline.worker import is_finished, process_study, record_failure
from radimt.processes import keep_dask_off_the_server_preload, worker_context
from radimt.progress import Progress

log = logging.getLogger(__name__)


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


#: Dask's address schemes (``tcp://host:8786``; ``inproc://`` is in-process only).
_SCHEDULER = re.compile(
    r"^(?:(?P<scheme>tcp|tls|ucx|ws|wss)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})/?$"
)


def check_scheduler(address: str) -> None:
    """Refuse a ``--scheduler`` that is neither ``local-dask`` nor ``[scheme://]host:port``
    before any work (Dask's own error names no option and reads as a radimt fault).

    Examples
    --------
    >>> check_scheduler("tcp://10.0.0.5:8786")
    >>> check_scheduler("tcp://host")
    Traceback (most recent call last):
    ...
    radimt.errors.ConfigError: --scheduler tcp://host: ...
    """
    if address == "local-dask":
        return
    match = _SCHEDULER.match(address)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(
            f"--scheduler {address}: give the Dask scheduler as scheme://host:port with its port "
            "(e.g. tcp://host:8786, as dask-scheduler prints it), or local-dask for a cluster on "
            "this machine"
        )


#: Dask's environment for the processes its nannies spawn, emptied (see ``_execute``).
_PLAIN_SPAWN = {
    "distributed.nanny.pre-spawn-environ": {
        "MALLOC_TRIM_THRESHOLD_": None,
        "OMP_NUM_THREADS": None,
        "MKL_NUM_THREADS": None,
        "OPENBLAS_NUM_THREADS": None,
    }
}

#: The local cluster's housekeeping at a pace a batch of studies needs: the event loops' health
#: check every second (not every 20 ms), the host's statistics for a dashboard it does not have
#: every 5 s without disks, the workers' memory limits checked every second. Idle, its three
#: processes took 12 % of a core; 2 % so.
_QUIET_HOUSEKEEPING = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
}


def _execute(
    groups: list[list[LesionTask]],
    config: PipelineConfig,
    out: str,
    *,
    workers: int,
    scheduler: str | None,
    threads: int | None,
    seg: bool,
    keep_phi: bool,
) -> Generator[list[LesionStatus], None, None]:
    """Run :func:`process_study` over the study groups; yield statuses as they arrive."""
    if scheduler:
        from distributed import Client, LocalCluster, as_completed

        if scheduler == "local-dask":
            import dask

            # Workers like the local pool's: without Dask's sampling profiler (it takes the GIL
            # every 10 ms from a Python-heavy task) and without its pre-set malloc trimming and
            # one-thread numerical libraries (12 clinical studies ran 1.3x slower with them);
            # forked from the command line's fork server, where radimt and Dask are imported
            # already (spawned, each imports both: ~3 s before its first study).
            settings = {
                "distributed.worker.profile.enabled": False,
                "distributed.worker.multiprocessing-method": worker_context().get_start_method(),
                **_PLAIN_SPAWN,
                **_QUIET_HOUSEKEEPING,
            }
            if settings["distributed.worker.multiprocessing-method"] == "forkserver":
                keep_dask_off_the_server_preload()
            with dask.config.set(settings):
                cluster = LocalCluster(
                    n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
                )
            client = Client(cluster)
        else:
            cluster, client = None, Client(scheduler)
        try:
            futures = {
                client.submit(
                    process_study,
                    g,
                    config,
                    out,
                    seg=seg,
                    keep_phi=keep_phi,
                    threads=threads or 1,
                    pure=False,
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
            yield process_study(group, config, out, seg=seg, keep_phi=keep_phi, threads=threads)
        return
    work = functools.partial(
        process_study, config=config, out=out, seg=seg, keep_phi=keep_phi, threads=threads or 1
    )
    yield from in_processes(groups, work, workers, functools.partial(record_lost, config=config, out=out))


def in_processes(
    groups: Sequence[list[LesionTask]],
    work: Callable[[list[LesionTask]], list[LesionStatus]],
    workers: int,
    on_lost: Callable[[list[LesionTask]], list[LesionStatus]],
) -> Iterable[list[LesionStatus]]:
    """Run ``work(group)`` in worker processes and yield each result as it arrives.

    A worker that dies (SIGKILL, the out-of-memory killer) breaks the whole pool, so every study
    in flight is lost with it, not only the culprit. Lost studies are retried once, each alone
    in a fresh one-worker pool; a study whose worker dies again is ``on_lost(group)`` (recorded
    as failed), and the run finishes with its tables.
    """
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = worker_context()  # fresh interpreters: no inherited threads or locks
    lost: list[list[LesionTask]] = []
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
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
            pool.shutdown()
            pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            try:
                result = pool.submit(work, group).result()
            except BrokenProcessPool:
                result = on_lost(group)
            yield result
    except BaseException:  # Ctrl-C, SIGTERM, or the caller stopped early: no worker outlives us
        stop_workers(pool)
        raise
    pool.shutdown()


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool now: cancel queued studies and end the studies in flight.

    An ended study leaves no result (every file is written atomically, and a lesion is done
    only once its result.json is), so a rerun computes it again.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())  # CPython's; public in 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()


WORKER_DIED = (
    "WorkerDied: the worker process of this study died twice (killed by the system, often for "
    "lack of memory); it was retried once alone. Give it more memory or fewer --workers and rerun "
    "the batch: finished lesions are kept"
)


def record_lost(
    tasks: Sequence[LesionTask], config: PipelineConfig, out: str, reason: str = WORKER_DIED
) -> list[LesionStatus]:
    """Record every lesion of a study whose worker died as failed (an error.json each)."""
    statuses = []
    for task in tasks:
        try:
            folder = lesion_folder(Path(out), task)
        except (OutputFolderError, OSError) as exc:
            statuses.append(
                LesionStatus(task.study_id, task.lesion_id, "failed", f"{type(exc).__name__}: {exc}", 0.0)
            )
            continue
        statuses.append(record_failure(folder, task, config, reason, 0.0))
    return statuses


def run_batch(
    manifest: str | os.PathLike[str],
    pipeline: str | os.PathLike[str] | PipelineConfig,
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    threads: int | None = None,
    force: bool = False,
    seg: bool = False,
    keep_phi: bool = False,
    table_format: str = "csv",
    on_study: Callable[[list[LesionStatus]], None] | None = None,
    show_progress: bool = True,
    diagnostics: bool | None = None,
    pyradiomics_names: bool | None = None,
    keep_columns: Sequence[str] = (),
    mg_spacing_mm: float | None = None,
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
    threads
        Threads each worker may use (SimpleITK's filters, a lesion's roles' features, its file
        writing); default: every core with one worker in this process, one per worker otherwise.
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
    keep_columns
        Manifest columns to carry into features.csv, besides the pipeline's ``keep_columns``.
    mg_spacing_mm
        Overrides the pipeline's ``mg_spacing_mm`` (pixel size of mammograms without one).
    """
    start_wall = _dt.datetime.now(_dt.timezone.utc)
    start = time.perf_counter()
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads}: give at least 1 thread per worker")
    if scheduler:
        check_scheduler(scheduler)
    config = pipeline if isinstance(pipeline, PipelineConfig) else load_config(pipeline)
    if keep_columns:
        config = replace(config, keep_columns=tuple(dict.fromkeys([*config.keep_columns, *keep_columns])))
    tasks = read_manifest(manifest, keep_columns=config.keep_columns, reference=config.analysis.reference)
    if diagnostics is not None:
        config = replace(config, diagnostics=diagnostics)
    if pyradiomics_names is not None:
        config = replace(config, pyradiomics_names=pyradiomics_names)
    if mg_spacing_mm is not None:
        if not 0 < mg_spacing_mm <= 1:
            raise ConfigError(f"--mg-spacing {mg_spacing_mm:g}: a pixel size above 0 and up to 1 mm")
        config = replace(config, mg_spacing_mm=float(mg_spacing_mm))
    if table_format not in ("csv", "parquet"):
        raise RadimtError(f"unknown --format {table_format!r}: csv or parquet")
    roles = config.analysis.roles
    if config.pyradiomics_names and len(roles) > 1 and any(not t.image_path for t in tasks):
        raise RadimtError(
            f"--pyradiomics-names needs one role with radiomic features; the pipeline has "
            f"{', '.join(roles)} (their columns would collide without the role prefix)"
        )
    out_path = prepare_out(Path(out))
    for task in tasks:  # before any work: a link planted in OUT is refused, never written through
        check_inside(out_path, lesion_dir(out_path, task))
    remove_partial_files(out_path)
    pending = [t for t in tasks if force or not is_finished(out_path, t, config)]
    groups = _group_by_study(pending)
    progress = Progress(len(groups), "study", stream=None if show_progress else io.StringIO())
    timings: dict[str, float] = {}
    with RunLog(out_path / RUN_LOG) as run_log:
        run_log.say(
            f"radimt {__version__} batch: {len(tasks)} lesion(s) of {Path(manifest).resolve()} with pipeline "
            f"{config.name!r} (digest {config.digest()}); {len(tasks) - len(pending)} already done"
        )
        studies = _execute(
            groups,
            config,
            str(out_path),
            workers=workers,
            scheduler=scheduler,
            threads=threads,
            seg=seg,
            keep_phi=keep_phi,
        )
        # closed on any exception (Ctrl-C, SIGTERM) so the workers stop with the batch
        with contextlib.closing(studies):
            for statuses in studies:
                progress.update(statuses[0].study_id, any(s.failed for s in statuses))
                timings[statuses[0].study_id] = statuses[0].study_seconds
                for status in statuses:
                    why = f": {status.reason}" if status.reason else ""
                    lesion = f"{status.study_id} lesion {status.lesion_id}"
                    run_log.say(f"{lesion} {status.status}{why} ({status.seconds} s)")
                if on_study is not None:
                    on_study(statuses)
        progress.close()
        summary, quality = assemble(tasks, config, out_path, table_format=table_format)
        summary.skipped = len(tasks) - len(pending)
        summary.seconds = round(time.perf_counter() - start, 3)
        for line in quality.lines():  # said at the end, where the user looks
            log.warning("%s", line)
            run_log.say(f"warning: {line}")
        _write_run_json(
            out_path, manifest, config, tasks, timings, start_wall, summary, workers, scheduler, quality
        )
        run_log.say(
            f"{summary.total} lesion(s): {summary.done} done ({summary.skipped} from an earlier run), "
            f"{summary.failed} failed, {summary.seconds:.1f} s"
        )
    return summary


#: The batch's log in OUT: one line per event, appended run after run (a resumed batch adds to it).
RUN_LOG = "run.log"


class RunLog:
    """Lines with a UTC time stamp, appended to ``path`` and flushed as they come (a crash keeps
    what happened until then)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> RunLog:
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.say(f"stopped: {getattr(exc[0], '__name__', exc[0])}: {exc[1]}")
        self._file.close()

    def say(self, message: str) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._file.write(f"{stamp} {message}\n")
        self._file.flush()


def assemble(
    tasks: Sequence[LesionTask], config: PipelineConfig, out: Path, *, table_format: str = "csv"
) -> tuple[BatchSummary, TableQuality]:
    """Build features.csv, kinetics.csv, errors.csv and report.html from the lesion files.

    Every manifest row has its row in features.csv: ``status`` (done, failed, not processed),
    ``error`` (why it failed) and ``qc_warnings`` after the identifying columns, the features
    empty when it failed, so no lesion leaves the table unnoticed. Rows follow the manifest for
    a pyradiomics ``Image,Mask`` manifest (as pyradiomics' batch writes them), else study and
    lesion ids.
    """
    pyradiomics_rows = bool(tasks) and all(t.image_path for t in tasks)
    ordered = list(tasks) if pyradiomics_rows else sorted(tasks, key=lambda t: (t.study_id, t.lesion_id))
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    entries: list[tuple[LesionTask, LesionRecord | None, str | None]] = []
    records: list[LesionRecord] = []
    for task in ordered:
        folder = lesion_dir(out, task)
        error_path = folder / ERROR
        record = LesionRecord.read(folder)
        if record is not None:
            warnings = warning_text(lesion_warnings(record))
            outcome = {"status": "done", "error": "", "qc_warnings": warnings}
            rows.append({**task.identity(), **outcome, **record.row})
            curves += [{"study_id": task.study_id, "lesion_id": task.lesion_id, **c} for c in record.curves]
            entries.append((task, record, None))
            records.append(record)
        else:
            failed = error_path.exists()
            reason = json.loads(error_path.read_text())["reason"] if failed else "not processed"
            status = "failed" if failed else "not processed"
            rows.append({**task.identity(), "status": status, "error": reason, "qc_warnings": ""})
            errors.append({"study_id": task.study_id, "lesion_id": task.lesion_id, "reason": reason})
            entries.append((task, None, reason))
    identity = list(tasks[0].identity()) if tasks else ["study_id", "lesion_id"]
    extra = [c for c in identity if c not in ID_COLUMNS]
    id_columns = [c for c in ID_COLUMNS if c in identity] + extra + list(STATUS_COLUMNS)
    written = write_table(rows, out / "features.csv", id_columns=id_columns)
    entries_for_columns = dictionary(written, config.intensity_units(), carried=extra)
    write_dictionary(entries_for_columns, out / "features.dictionary.csv")
    if table_format == "parquet":
        _write_parquet(out / "features.csv", out / "features.parquet")
    write_table(
        curves,
        out / "kinetics.csv",
        id_columns=("study_id", "lesion_id", "curve", "phase", "time_s", "signal", "enhancement_pct"),
    )
    write_table(errors, out / "errors.csv", id_columns=("study_id", "lesion_id", "reason"))
    quality = table_quality(records, [r for r in rows if r["status"] == "done"])
    write_report(out / "report.html", config, entries, out, quality)
    summary = BatchSummary(
        out=str(out), total=len(tasks), done=len(records), skipped=0, failed=len(errors), seconds=0.0
    )
    return summary, quality


def _write_parquet(csv_path: Path, parquet_path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(csv_path, dtype={"study_id": str, "lesion_id": str})
    with atomic_path(parquet_path) as tmp:
        frame.to_parquet(tmp, index=False)


def _write_run_json(
    out: Path,
    manifest: str | os.PathLike[str],
    config: PipelineConfig,
    tasks: Sequence[LesionTask],
    timings: dict[str, float],
    start_wall: _dt.datetime,
    summary: BatchSummary,
    workers: int,
    scheduler: str | None,
    quality: TableQuality,
) -> None:
    import numpy
    import pydicom
    import radiomics
    import SimpleITK as sitk

    checksums = {}
    for task in tasks:
        record = LesionRecord.read(lesion_dir(out, task))
        if record is not None:
            checksums[task.study_id] = record.checksum
    write_json(
        out / "run.json",
        {
            "radimt": __version__,
            "pyradiomics": radiomics.__version__,
            "SimpleITK": sitk.Version.VersionString(),
            "pydicom": pydicom.__version__,
            "numpy": numpy.__version__,
            "manifest": str(Path(manifest).resolve()),
            "config": config.to_dict(),
            "resolved": resolved_options(config),
            "config_digest": config.digest(),
            "warnings": quality.warnings,
            "constant_columns": quality.constant_columns,
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
