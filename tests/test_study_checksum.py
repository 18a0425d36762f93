"""The study fingerprint a rerun compares (``checksum`` in every result.json): its value must
not move when its code does, or every finished lesion of every earlier run would be redone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from radimt.pipeline.worker import study_checksum
from tests.conftest import SAMPLE_DICOM


def _as_first_written(folder: str) -> str:
    """The fingerprint as radimt first computed it (pathlib's rglob, sorted paths): the oracle."""
    digest = hashlib.sha256()
    root = Path(folder)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode())
        digest.update(str(file.stat().st_size).encode())
        try:
            with open(file, "rb") as fh:
                digest.update(fh.read(4096))
        except OSError as exc:
            digest.update(f"unreadable:{exc.errno}".encode())
    return digest.hexdigest()


REAL = Path(__file__).parent / "data" / "real"  # vendored scanner series (GE, Philips, Siemens, UIH)


@pytest.mark.parametrize(
    "study",
    [SAMPLE_DICOM / p.name for p in sorted(SAMPLE_DICOM.iterdir()) if p.is_dir()]
    + [p for p in sorted(REAL.iterdir()) if p.is_dir()],
    ids=lambda p: p.name,
)
def test_the_fingerprint_of_every_sample_and_vendored_real_study_is_unchanged(study):
    assert study_checksum(str(study)) == _as_first_written(str(study))


def test_awkward_folders_give_the_fingerprint_they_always_did(tmp_path):
    """Names that sort differently as strings and as paths ('a-b' and 'a/b'), hidden files, empty
    files, a link to a file (counted), a link to a folder (not entered), a broken link (left out),
    nested folders, and a single file given instead of a folder."""
    root = tmp_path / "study"
    for name, data in {
        "a/b": b"x" * 5000,
        "a-b": b"y",
        "a.b/c": b"z" * 10,
        ".hidden": b"h",
        "empty": b"",
        "deep/er/still/IM0001": b"\0" * 9000,
        "Upper/IM": b"u",
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "inside").mkdir(parents=True)
    (elsewhere / "inside" / "f").write_bytes(b"f")
    os.symlink(root / "a-b", root / "link_to_file")
    os.symlink(elsewhere, root / "link_to_folder")
    os.symlink(tmp_path / "missing", root / "broken")
    assert study_checksum(str(root)) == _as_first_written(str(root))
    assert study_checksum(str(root / "a-b")) == _as_first_written(str(root / "a-b"))
    before = study_checksum(str(root))
    (root / "a-b").write_bytes(b"Y")  # same size, other content: another fingerprint
    assert study_checksum(str(root)) != before
    assert study_checksum(str(root)) == _as_first_written(str(root))
