"""A pyradiomics user switches without friction (issue #15): their batch CSV (with Label) and
parameter file run unchanged, the output matches pyradiomics' own batch output column for column;
and the batch behaves as researchers expect (readable outputs, a header when all fails, progress
in a log)."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest

from radimt.batch import run_batch
from tests.conftest import REPO, SAMPLE_DICOM

PIPELINE = REPO / "pipelines" / "breast_mri.yaml"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_outputs_follow_the_umask_and_progress_is_one_line_per_study_in_a_log(tmp_path, capfd):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "study_id,path,seed_x,seed_y,seed_z\n"
        f"a,{SAMPLE_DICOM / 'carcinoma_washout'},100,-6,4\n"
        f"b,{SAMPLE_DICOM / 'fibroadenoma_persistent'},80,-10,6\n"
    )
    old = os.umask(0o022)
    try:
        run_batch(manifest, PIPELINE, tmp_path / "out")
    finally:
        os.umask(old)
    for name in ("features.csv", "kinetics.csv", "errors.csv", "report.html", "run.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((tmp_path / "out" / "lesions" / "a" / "1" / "result.json").stat().st_mode) == 0o644
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("[")]
    assert [line.split(";")[0] for line in lines] == ["[1/2] study a done", "[2/2] study b done"]
    assert "elapsed" in lines[0] and "left" in lines[0]


def test_when_every_lesion_fails_features_csv_still_has_its_header(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"study_id,path,seed_x,seed_y,seed_z,site\nair,{SAMPLE_DICOM / 'carcinoma_washout'},500,500,500,A\n"
    )
    summary = run_batch(manifest, PIPELINE, tmp_path / "out")
    assert summary.failed == 1
    assert (tmp_path / "out" / "features.csv").read_text() == "study_id,lesion_id,label,site\n"
    assert (tmp_path / "out" / "kinetics.csv").read_text().startswith("study_id,lesion_id,curve")
