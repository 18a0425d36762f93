"""Batch faults stay one study's fault (issue #12): a file that cannot be read, a worker killed
mid-run, two paths under one study_id, several studies in one folder."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from radimt.pipeline.config import load_config
from radimt.pipeline.manifest import LesionTask, ManifestError, read_manifest
from radimt.pipeline.record import LesionStatus
from radimt.pipeline.runner import in_processes, record_lost, run_batch
from radimt.synth.studies import write_published_case
from tests.conftest import REPO, SAMPLE_DICOM

PIPELINE = REPO / "pipelines" / "breast_mri.yaml"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _manifest(folder: Path, rows: list[tuple[str, Path, str]]) -> Path:
    path = folder / "manifest.csv"
    lines = ["study_id,path,seed_x,seed_y,seed_z"] + [f"{sid},{p},{seed}" for sid, p, seed in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


SEEDS = {"carcinoma_washout": "100,-6,4", "fibroadenoma_persistent": "80,-10,6", "imt_case": "108,0,-10"}


def test_a_file_that_cannot_be_read_fails_nothing_else(tmp_path):
    """/proc/self/mem is a 'regular file' whose first read fails (EIO), even for root."""
    study = tmp_path / "carcinoma_washout"
    shutil.copytree(SAMPLE_DICOM / "carcinoma_washout", study)
    (study / "MR" / "unreadable").symlink_to("/proc/self/mem")
    manifest = _manifest(
        tmp_path,
        [("a", study, SEEDS["carcinoma_washout"]), ("b", SAMPLE_DICOM / "imt_case", SEEDS["imt_case"])],
    )
    summary = run_batch(manifest, PIPELINE, tmp_path / "out")
    assert summary.done == 2, _rows(tmp_path / "out" / "errors.csv")


def _die_for_b(group: list[LesionTask]) -> list[LesionStatus]:
    """Stands for a study that kills its worker (the out-of-memory killer) every time."""
    if group[0].study_id == "b":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return [LesionStatus(group[0].study_id, "1", "done")]


@pytest.mark.slow
def test_a_worker_that_dies_costs_only_its_study(tmp_path):
    config = load_config(PIPELINE)
    groups = [[LesionTask(study_id=s, lesion_id="1", path=str(tmp_path))] for s in "abcd"]
    lost = lambda g: record_lost(g, config, str(tmp_path))  # noqa: E731
    results = list(in_processes(groups, _die_for_b, 2, lost))
    by_study = {r[0].study_id: r[0] for r in results}
    assert set(by_study) == set("abcd")
    assert {s for s, r in by_study.items() if r.status == "done"} == set("acd")
    assert by_study["b"].reason.startswith("WorkerDied")
    assert (tmp_path / "lesions" / "b" / "1" / "error.json").exists()


@pytest.mark.slow
def test_sigkill_of_a_worker_mid_run_still_writes_every_table(tmp_path):
    psutil = pytest.importorskip("psutil")
    reference = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, tmp_path / "reference")
    assert reference.done == 3
    out = tmp_path / "killed"
    killed = []

    def kill_a_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            busy = list(out.glob("lesions/*/*"))
            workers = [
                p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())
            ]
            if busy and workers:
                workers[0].kill()
                killed.append(workers[0].pid)
            time.sleep(0.01)

    thread = threading.Thread(target=kill_a_worker)
    thread.start()
    summary = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, out, workers=2)
    thread.join()
    assert killed, "no worker was running to be killed"
    assert summary.done == 3
    assert (out / "features.csv").read_bytes() == (tmp_path / "reference" / "features.csv").read_bytes()


def test_one_study_id_with_two_paths_is_refused(tmp_path):
    text = (
        "study_id,path,lesion_id,seed_x,seed_y,seed_z\n"
        f"s1,{SAMPLE_DICOM / 'carcinoma_washout'},1,100,-6,4\n"
        f"s1,{SAMPLE_DICOM / 'fibroadenoma_persistent'},2,80,-10,6\n"
    )
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ManifestError, match=r"study 's1' lesion '2': path .* differs from .* lesion '1'"):
        read_manifest(tmp_path / "m.csv")


def test_manifest_study_uid_chooses_one_study_of_a_mixed_folder(tmp_path):
    import pydicom

    folder = tmp_path / "mixed"
    for name in ("carcinoma_washout", "fibroadenoma_persistent"):
        shutil.copytree(SAMPLE_DICOM / name / "MR", folder / name)
    for path in folder.rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path)
            ds.PatientID, ds.PatientName = "P1", "Anon"
            ds.save_as(path)
    uid = pydicom.dcmread(next((folder / "fibroadenoma_persistent" / "t2").iterdir())).StudyInstanceUID
    text = (
        "study_id,path,study_uid,seed_x,seed_y,seed_z\n"
        f"mixed,{folder},,80,-10,6\n"
        f"chosen,{folder},{uid},80,-10,6\n"
    )
    (tmp_path / "m.csv").write_text(text)
    summary = run_batch(tmp_path / "m.csv", PIPELINE, tmp_path / "out")
    errors = {r["study_id"]: r["reason"] for r in _rows(tmp_path / "out" / "errors.csv")}
    assert summary.done == 1 and set(errors) == {"mixed"}
    assert "MixedStudyError" in errors["mixed"] and "both supply" in errors["mixed"]
    row = _rows(tmp_path / "out" / "features.csv")[0]
    assert row["study_id"] == "chosen" and row["kinetic_curve_type"] == "I"  # the fibroadenoma's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("segmentation:\n  modality: mr\n  tolerance: abc\n", r"line 3: segmentation: tolerance: expected a"),
        ("segmentation:\n  tolerance: 1.5\n", r"line 2: segmentation: tolerance: 1.5 is out of range"),
        ("segmentation:\n  polarity: up\n", r"line 2: segmentation: polarity: 'up' is not one of"),
        ("segmentation:\n  fill_holes: 3\n", r"fill_holes: expected true or false"),
        ("segmentation:\n  max_diameter_mm: .nan\n", r"max_diameter_mm: nan is not a finite number"),
        ("kinetics:\n  n_baseline: 0\n", r"line 2: kinetics: n_baseline: 0 is out of range"),
        ("kinetics:\n  initial_window_s: soon\n", r"initial_window_s: expected a number"),
        ("dce_phase: 0\n", r"line 1: dce_phase: expected a post-contrast phase"),
        ("rim_mm: -2\n", r"rim_mm: expected a rim width"),
    ],
)
def test_pipeline_option_types_and_ranges_are_checked_with_the_line(tmp_path, text, message):
    from radimt.pipeline.config import ConfigError

    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "p.yaml")


@pytest.mark.parametrize("where", ["below a file", "read-only"])
def test_an_output_folder_that_cannot_be_written_is_named_before_any_work(tmp_path, where):
    from radimt.errors import RadimtError

    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out" if where == "below a file" else Path("/proc/radimt-out")
    with pytest.raises(RadimtError, match=rf"{out}: cannot write the output folder .*choose another --out"):
        run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, out)


# -- privacy: the PS3.15 profile, tested by injection ---------------------------------------------

#: A marker value per VR that can carry one; every injected value is distinct and findable.
_MARKERS = {
    "PN": "Phi^Name{n}",
    "LO": "PHI-LO-{n}",
    "SH": "PHI-SH{n}",
    "LT": "PHI long text {n}",
    "ST": "PHI short text {n}",
    "UT": "PHI unlimited text {n}",
    "UC": "PHI-UC-{n}",
    "CS": "PHICS{n}",
    "AE": "PHIAE{n}",
    "UR": "http://phi.example/{n}",
}


def _marker(vr: str, n: int) -> str | None:
    """A distinct, valid, findable value of ``vr`` for the n-th attribute (None: VR carries none)."""
    import datetime

    day = (datetime.date(1923, 1, 1) + datetime.timedelta(days=n)).strftime("%Y%m%d")
    return {"DA": day, "DT": f"{day}101010"}.get(vr) or (_MARKERS[vr].format(n=n) if vr in _MARKERS else None)


@pytest.mark.slow
def test_every_attribute_of_the_profile_injected_into_a_study_is_absent_from_every_output(tmp_path):
    import pydicom
    from pydicom.datadict import dictionary_VR

    from radimt.io.deidentify import UID_CATEGORIES, profile_tags

    tables = profile_tags()
    tags = sorted(
        {
            tag
            for category, members in tables.items()
            if category not in (*UID_CATEGORIES, "ALL_TAGS")
            for tag in members
            if len(tag) == 2 and tag[0] not in (0x0000, 0x0002)
        }
    )
    injected: dict[tuple[int, int], str] = {}
    for n, tag in enumerate(tags):
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if _marker(vr, n) is not None:
            injected[tag] = (vr, _marker(vr, n))
    assert len(injected) > 250  # most of table E.1-1 carries text, names or dates
    # The published case with its DCE phase times in TriggerTime as well (as GE exports do): the
    # injected markers overwrite AcquisitionTime and ContentTime on every file, and the phases
    # must still be placed in time to produce outputs to search.
    write_published_case(str(tmp_path / "case"), trigger_time=True)
    study = tmp_path / "imt_case"
    shutil.copytree(tmp_path / "case" / "MR", study)
    for path in study.rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path)
            for tag, (vr, value) in injected.items():
                ds.add_new(tag, vr, value)
            ds.save_as(path)
    manifest = _manifest(tmp_path, [("imt", study, SEEDS["imt_case"])])
    summary = run_batch(manifest, PIPELINE, tmp_path / "out", seg=True)
    assert summary.ok, _rows(tmp_path / "out" / "errors.csv")
    seg_path = tmp_path / "out" / "lesions" / "imt" / "1" / "seg.dcm"
    seg = pydicom.dcmread(seg_path)
    assert seg.PatientIdentityRemoved == "YES" and "Retain UIDs" in seg.DeidentificationMethod
    assert str(seg.PatientName) == "imt" and seg.PatientID == "imt"
    found = []
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix != ".png":
            data = path.read_bytes()
            found += [(path.name, v) for _, v in injected.values() if v.encode() in data]
    assert not found, found[:10]
    # The source's own identifiers are gone too (the sample's synthetic patient).
    assert b"Synthetic^" not in seg_path.read_bytes() and b"SYN-" not in seg_path.read_bytes()
