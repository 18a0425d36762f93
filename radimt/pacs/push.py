"""A run's DICOM results back to a PACS, next to the images: every SEG and SR of the lesions and
the kinetic colour-map SEGs of ``radimt propose``.

Idempotent: what the PACS already holds (the same SOPInstanceUID in the same study) is not
stored again. ``OUT/pushed.csv`` records each object, where it went and whether it was stored
now or found there. De-identified results (PatientIdentityRemoved YES: radimt's research mode)
are never pushed into a PACS whose profile says ``kind: clinical``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import pydicom

from radimt.errors import PacsError
from radimt.io.tables import write_table
from radimt.pacs.transport import Transport

PUSHED = "pushed.csv"
_COLUMNS = ("file", "sop_instance_uid", "study_instance_uid", "pacs", "status", "time")


@dataclass
class PushReport:
    """What a push did: objects stored now, objects the PACS held already."""

    stored: int
    already_there: int


def results_of_run(out: str | os.PathLike[str]) -> list[Path]:
    """Every DICOM result of a run: lesions' SEG and SR, propose's kinetic map SEGs."""
    out = Path(out)
    found = [*out.glob("lesions/*/*/seg.dcm"), *out.glob("lesions/*/*/sr.dcm"), *out.glob("maps/*/*.dcm")]
    return sorted(found, key=lambda p: (p.name != "seg.dcm", str(p)))  # each SEG before the SR citing it


def push_run(transport: Transport, out: str | os.PathLike[str]) -> PushReport:
    """Store every DICOM result of ``out`` on the PACS (see the module notes).

    Raises
    ------
    PacsError
        No DICOM results in the run (run the batch with --seg), de-identified results for a
        clinical PACS, or the PACS unreachable or refusing.
    """
    out = Path(out)
    files = results_of_run(out)
    if not files:
        raise PacsError(f"{out}: no DICOM results to push (run radimt batch with --seg)")
    datasets = [(path, pydicom.dcmread(path)) for path in files]
    profile = transport.profile
    if profile.kind == "clinical":
        research = [p for p, ds in datasets if str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"]
        if research:
            raise PacsError(
                f"PACS {profile.name} is clinical and {len(research)} result(s) are de-identified (e.g. "
                f"{research[0].relative_to(out)}): they belong to a research study; rerun the batch with "
                "--keep-phi to file results into the patient's own study, or push to a research PACS"
            )
    held: dict[str, set[str]] = {}
    rows = _read_log(out)
    stored = present = 0
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for path, ds in datasets:
        study = str(ds.StudyInstanceUID)
        if study not in held:
            try:
                held[study] = set(transport.list_instances(study))
            except PacsError as exc:
                if "has no" not in str(exc):
                    raise
                held[study] = set()
        sop = str(ds.SOPInstanceUID)
        if sop in held[study]:
            status = "already there"
            present += 1
        else:
            transport.store(ds)
            held[study].add(sop)
            status = "stored"
            stored += 1
        rows[(str(path.relative_to(out)), profile.name)] = {
            "file": str(path.relative_to(out)),
            "sop_instance_uid": sop,
            "study_instance_uid": study,
            "pacs": profile.name,
            "status": status,
            "time": now,
        }
        write_table(list(rows.values()), out / PUSHED, id_columns=_COLUMNS)  # after each: nothing lost
    return PushReport(stored=stored, already_there=present)


def _read_log(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    path = out / PUSHED
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {(r["file"], r["pacs"]): r for r in csv.DictReader(fh)}
