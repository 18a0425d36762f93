"""The radimt command line."""

from __future__ import annotations

import json
import re

from radimt.cli import main
from tests.conftest import SAMPLE_DICOM


def test_scan_prints_one_line_per_series_with_roles(capsys):
    assert main(["scan", str(SAMPLE_DICOM / "carcinoma_washout")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if re.match(r"\d+(\.\d+)?\s+MR\s", line)]
    assert len(lines) == 10
    assert any("Ph2/dyn" in line and "dce" in line and "phase t=90s" in line for line in lines)
    assert any("b=800" in line and "dwi" in line for line in lines)


def test_scan_json_lists_series_and_skipped_files(capsys):
    assert main(["scan", "--json", str(SAMPLE_DICOM / "imt_case")]) == 0
    payload = json.loads(capsys.readouterr().out)
    roles = {row["series"]: row["role"] for row in payload["series"]}
    assert roles["5.1"] == "dce" and roles["40"] == "us" and roles["99"] == "other"
    mg = next(row for row in payload["series"] if row["series"] == "30")
    assert mg["spacing_mm"] == [0.25, 0.25]
    assert [k["path"].rsplit("/", 1)[-1] for k in payload["skipped"]] == ["truth.json"]


def test_scan_error_is_reported_not_raised(capsys):
    assert main(["scan", "/nonexistent"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
