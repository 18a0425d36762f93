"""The header scan's fast path (one full read per series, the rest from their raw elements) gives
exactly what a full read of every file gives: on synthetic series, on their deliberate
departures from the template, and on real scanners' files."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

import radimt
from radimt.dicom.header import read_frames
from radimt.dicom.scan import iter_files, scan_files
from radimt.dicom.templates import HeaderReader
from radimt.synth.writer import Grid, SeriesSpec, write_volume

REAL = Path(__file__).parent / "data" / "real"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def _both(files: list[str]) -> tuple[list, list, HeaderReader]:
    """Each file's frames (or its error) read fully, and read by one HeaderReader in order."""
    reader = HeaderReader()

    def attempt(read, f):
        try:
            return read(f)
        except Exception as exc:  # noqa: BLE001 - the same error is part of "the same result"
            return (type(exc).__name__, str(exc))

    full = [attempt(read_frames, f) for f in files]
    fast = [attempt(reader.read, f) for f in files]
    return full, fast, reader


def _series(folder: Path, n: int = 12, **kwargs) -> list[str]:
    grid = Grid((16, 16, n), (0.8, 0.8, 2.0), (0.0, 0.0, 0.0))
    spec = SeriesSpec("tmpl", "t2", 3, "t2_tse_tra", "MR", {"EchoTime": 90}, frame_of_reference="mr")
    volume = np.arange(n * 16 * 16, dtype=np.uint16).reshape(n, 16, 16)
    return write_volume(str(folder), spec, volume, grid, shuffle_names=False, **kwargs)


def test_a_synthetic_study_reads_the_same_and_mostly_from_templates():
    folder, _ = radimt.synth.example_study_folder()
    files = list(iter_files(folder))
    full, fast, reader = _both(files)
    assert fast == full
    assert reader.fast >= len(files) - 20  # one full read per stack (phases, b-values, roles)


def _as_implicit(path: str) -> None:
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(path, implicit_vr=True, little_endian=True)


@pytest.mark.parametrize("implicit", [False, True])
def test_per_instance_elements_are_each_files_own(tmp_path, implicit):
    per_slice = [
        {
            "TriggerTime": f"{10.0 * k:.1f}",
            "AcquisitionTime": f"1200{k:02d}.5",
            "TemporalPositionIdentifier": k % 3 + 1,
        }
        for k in range(12)
    ]
    files = _series(tmp_path, per_slice=per_slice, slope=2.5, intercept=-7.0)
    ds = pydicom.dcmread(files[5])
    ds.RescaleSlope, ds.RescaleIntercept = "0.25", "100"  # Philips: rescale changes per slice
    ds.save_as(files[5])
    for path in files if implicit else []:
        _as_implicit(path)
    assert implicit == (pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian)
    full, fast, reader = _both(files)
    assert fast == full
    assert reader.fast == 11
    assert [f[0].trigger_time_ms for f in fast] == [10.0 * k for k in range(12)]
    assert (fast[5][0].slope, fast[5][0].intercept, fast[4][0].slope) == (0.25, 100.0, 2.5)
    assert len({f[0].position for f in fast}) == 12
    assert {f[0].header.sop_instance_uid for f in fast} == {
        str(pydicom.dcmread(f).SOPInstanceUID) for f in files
    }


def test_a_file_departing_from_its_series_is_read_fully(tmp_path):
    files = _series(tmp_path)
    ds = pydicom.dcmread(files[7])
    ds.SeriesDescription = "t2_tse_tra_REPEAT"  # an element radimt reads: not the template's
    ds.ContrastBolusAgent = "Gadovist"  # an element the template lacks
    ds.save_as(files[7])
    full, fast, reader = _both(files)
    assert fast == full
    assert fast[7][0].header.series_description == "t2_tse_tra_REPEAT"
    assert fast[7][0].header.contrast_agent == "Gadovist"
    assert fast[8][0].header.series_description == "t2_tse_tra"


def test_broken_pixel_data_in_a_templated_series_is_named_as_a_full_read_names_it(tmp_path):
    files = _series(tmp_path)
    size = os.path.getsize(files[3])
    with open(files[3], "r+b") as fh:
        fh.truncate(size - 100)
    with open(files[4], "ab") as fh:  # 16 bytes more than the header declares: still readable
        fh.write(b"\0" * 16)
    full, fast, _ = _both(files)
    assert fast == full
    assert "truncated" in fast[3][0].header.problem
    stacks, _ = scan_files(tmp_path)
    assert sum(len(s.frames) for s in stacks) == 12


def test_sequences_of_undefined_length_are_walked(tmp_path):
    files = _series(tmp_path)
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = f"1.2.3.{k}"
        ds.ReferencedImageSequence = [item]  # per instance, and nested inside a fixed sequence too
        outer = pydicom.Dataset()
        outer.CodeValue, outer.CodingSchemeDesignator, outer.CodeMeaning = "T-04000", "SRT", "Breast"
        ds.AnatomicRegionSequence = [outer]
        for keyword, held in (("ReferencedImageSequence", item), ("AnatomicRegionSequence", outer)):
            ds[keyword].is_undefined_length = True  # as many scanners write them
            held.is_undefined_length_sequence_item = True
        ds.save_as(path)
    assert b"\xff\xff\xff\xff" in Path(files[0]).read_bytes()
    full, fast, reader = _both(files)
    assert fast == full
    assert reader.fast == 11


@pytest.mark.parametrize("folder", sorted(p.name for p in REAL.iterdir() if p.is_dir()))
def test_vendored_real_files_read_the_same(folder):
    files = list(iter_files(REAL / folder))
    full, fast, _ = _both(files)
    assert fast == full


@pytest.mark.realdata
def test_the_real_ge_breast_dce_reads_the_same_and_from_templates(tmp_path):
    archive = SHARED / "breast_dce_ge" / "UCSF-BR-06.tar.gz"
    if not archive.exists():
        pytest.skip("the shared real-data corpus is not here")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    files = list(iter_files(tmp_path))
    full, fast, reader = _both(files)
    assert fast == full
    assert reader.fast >= 0.9 * len(files)  # GE's per-slice SourceImageSequence is per instance


@pytest.mark.realdata
@pytest.mark.parametrize(
    "folder", sorted(p.name for p in SHARED.glob("dcm_qa_*")) + ["dicom2nifti", "masks_other_tools"]
)
def test_the_shared_real_corpus_reads_the_same(folder):
    if not (SHARED / folder).is_dir():
        pytest.skip("the shared real-data corpus is not here")
    files = list(iter_files(SHARED / folder))
    full, fast, _ = _both(files)
    assert fast == full
