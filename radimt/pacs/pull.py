"""Studies from a PACS into a local cache, one folder per study, resumable and verified.

``CACHE/<StudyInstanceUID>/<SOPInstanceUID>.dcm``: each instance is written atomically when it
arrives, so a transfer cut mid-study leaves whole files only; the next pull asks the PACS for
the study's instances again and fetches only those the folder lacks. A study is complete when
its folder holds every SOPInstanceUID the PACS listed; ``CACHE/pulled.csv`` says so per study.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset

from radimt.errors import PacsError
from radimt.io.atomic import atomic_path
from radimt.io.tables import write_table
from radimt.pacs.transport import Transport
from radimt.progress import Progress

#: How a study may be named: DICOM keyword of the query.
SELECTORS = ("StudyInstanceUID", "AccessionNumber", "PatientID")


@dataclass
class PulledStudy:
    """One study in the cache: its folder, how many instances the PACS lists, how many were
    fetched now (the rest were there already)."""

    study_uid: str
    folder: str
    instances: int
    fetched: int


def _safe(uid: str) -> str:
    if not uid or not all(c.isdigit() or c == "." for c in uid):
        raise PacsError(f"{uid!r} is not a DICOM UID")
    return uid


def pull(
    transport: Transport,
    queries: Sequence[dict[str, str]],
    cache: str | os.PathLike[str],
    *,
    connections: int = 4,
    show_progress: bool = True,
    on_instance: Callable[[Dataset], None] | None = None,
) -> list[PulledStudy]:
    """Pull every study matching ``queries`` (``{"StudyInstanceUID": ...}``,
    ``{"AccessionNumber": ...}`` or ``{"PatientID": ...}``) into ``cache``.

    Parameters
    ----------
    transport
        :func:`radimt.pacs.connect`'s DICOMweb or DIMSE transport.
    connections
        Series fetched in parallel (each its own connection).
    on_instance
        Called with each instance after it is written (tests cut transfers with it).

    Raises
    ------
    PacsError
        A query that matches no study, the PACS unreachable or refusing, or a study that is
        still incomplete after its transfer (the cache keeps what arrived).
    """
    for query in queries:
        unknown = set(query) - set(SELECTORS)
        if unknown:
            raise PacsError(f"studies are named by {', '.join(SELECTORS)}, not {sorted(unknown)}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    studies: list[str] = []
    for query in queries:
        found = transport.find_studies(query)
        if not found:
            raise PacsError(f"PACS {transport.profile.name} has no study with {query}")
        studies += [uid for uid in found if uid not in studies]
    progress = Progress(len(studies), "study", stream=None if show_progress else io.StringIO())
    results = []
    for study_uid in studies:
        results.append(_pull_study(transport, study_uid, cache, connections, on_instance))
        _record(cache, results[-1:])  # each complete study listed at once: a later failure keeps it
        progress.update(study_uid, False)
    progress.close()
    return results


def _pull_study(
    transport: Transport,
    study_uid: str,
    cache: Path,
    connections: int,
    on_instance: Callable[[Dataset], None] | None,
) -> PulledStudy:
    folder = cache / _safe(study_uid)
    folder.mkdir(exist_ok=True)
    listed = transport.list_instances(study_uid)
    if not listed:
        raise PacsError(f"PACS {transport.profile.name}: study {study_uid} holds no instance")
    missing: dict[str, list[str]] = defaultdict(list)
    for sop, series in sorted(listed.items()):
        if not (folder / f"{_safe(sop)}.dcm").exists():
            missing[series].append(sop)

    def keep(dataset: Dataset) -> None:
        sop = str(dataset.SOPInstanceUID)
        if sop not in listed or str(dataset.StudyInstanceUID) != study_uid:
            return  # not one of the study's listed instances
        with atomic_path(folder / f"{_safe(sop)}.dcm") as tmp:
            dataset.save_as(tmp, enforce_file_format=True)
        if on_instance is not None:
            on_instance(dataset)

    with ThreadPoolExecutor(max_workers=max(1, connections)) as pool:
        jobs = [
            pool.submit(transport.retrieve, study_uid, series, sops, keep) for series, sops in missing.items()
        ]
        for job in jobs:
            job.result()
    present = {p.stem for p in folder.glob("*.dcm")}
    lacking = sorted(set(listed) - present)
    if lacking:
        raise PacsError(
            f"PACS {transport.profile.name}: study {study_uid} is incomplete after the transfer "
            f"({len(listed) - len(lacking)} of {len(listed)} instances, e.g. {lacking[0]}); "
            "pull again to complete it"
        )
    return PulledStudy(study_uid, str(folder), len(listed), sum(len(s) for s in missing.values()))


def _record(cache: Path, results: Sequence[PulledStudy]) -> None:
    """``CACHE/pulled.csv``: every study pulled into this cache so far (the last pull wins)."""
    import csv

    rows: dict[str, dict[str, str]] = {}
    index = cache / "pulled.csv"
    if index.exists():
        with open(index, newline="") as fh:
            rows = {r["study_uid"]: r for r in csv.DictReader(fh)}
    for r in results:
        rows[r.study_uid] = {"study_uid": r.study_uid, "folder": r.folder, "instances": str(r.instances)}
    write_table(list(rows.values()), index, id_columns=("study_uid", "folder", "instances"))
