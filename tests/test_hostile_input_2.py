"""Bad input, round two: each case reached a raw Python error, was checked too late, or lost
or misplaced work before radimt refused it by name (issue #28)."""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from radimt.errors import ConfigError, FeatureError, MaskError, SeedFileError
from radimt.io import read_dicom_seg, read_mask, read_rtstruct, read_seeds
from tests.conftest import PYDICOM_DATA, REPO, highdicom_seg


def _reference(size=(12, 10, 6), spacing=(0.9, 0.9, 2.0), origin=(-5.0, 3.0, 10.0)) -> sitk.Image:
    image = sitk.Image(list(size), sitk.sitkUInt8)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


# -- masks -----------------------------------------------------------------------------------


def test_a_4d_nifti_mask_for_a_3d_image_is_a_mask_error(tmp_path):
    four_d = sitk.GetImageFromArray(np.ones((2, 6, 10, 12), np.uint8), isVector=False)
    path = tmp_path / "mask4d.nii.gz"
    sitk.WriteImage(four_d, str(path))
    with pytest.raises(MaskError, match=r"mask4d.nii.gz: a 4D mask .*3D"):
        read_mask(path, _reference())
    with pytest.raises(MaskError, match="4D"):
        read_mask(path)


def _rtstruct_with(contour_data) -> pydicom.Dataset:
    ds = pydicom.dcmread(PYDICOM_DATA / "rtstruct.dcm", force=True)
    ds.ROIContourSequence[0].ContourSequence[0].ContourData = contour_data
    return ds


@pytest.mark.parametrize(
    ("contour", "message"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], r"contour 1: .*5 numbers, not x, y, z triples"),
        ([1.0, 2.0, 3.0, float("nan"), 5.0, 6.0, 7.0, 8.0, 9.0], r"contour 1: .*not a finite number"),
    ],
)
def test_rtstruct_contour_data_that_is_not_points_is_a_mask_error(tmp_path, contour, message):
    path = tmp_path / "rs.dcm"
    _rtstruct_with(contour).save_as(path)
    reference = _reference((260, 200, 4), (2.0, 2.0, 10.0), (-259.0, -199.0, -200.0))
    with pytest.raises(MaskError, match=r"rs.dcm: ROI 'patient', " + message):
        read_rtstruct(path, reference, "patient")


# -- DICOM SEG as archives write them --------------------------------------------------------


def test_a_seg_whose_dimension_index_has_no_segment_pointer_is_read_by_its_frame_positions(tmp_path):
    """As dcm4che wrote the TCIA archive SEGs: one dimension, the plane position, and the
    segment number only in each frame's Segment Identification."""
    seg, reference, truth = highdicom_seg(tmp_path, ["segment 1"])
    ds = seg
    ds.DimensionIndexSequence = [
        d
        for d in ds.DimensionIndexSequence
        if d.DimensionIndexPointer == pydicom.tag.Tag("ImagePositionPatient")
    ]
    for frame in ds.PerFrameFunctionalGroupsSequence:
        frame.FrameContentSequence[0].DimensionIndexValues = [
            int(frame.FrameContentSequence[0].DimensionIndexValues[-1])
        ]
    ds.save_as(tmp_path / "archive.seg.dcm", enforce_file_format=True)
    mask = read_dicom_seg(tmp_path / "archive.seg.dcm", reference)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), truth)


MASKS = Path(__file__).parent / "data" / "masks"


def test_the_real_ge_archive_seg_is_read_onto_its_dce(tmp_path):
    """TCIA Breast-MRI-NACT-Pilot (GE, dcm4che): FRACTIONAL 0/255, no segment pointer. Vendored
    (gzipped) with its licence; compared with an independent reading of its frames."""
    import gzip

    raw = gzip.decompress((MASKS / "ge_breast_seg" / "seg.dcm.gz").read_bytes())
    (tmp_path / "seg.dcm").write_bytes(raw)
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    # the sagittal DCE grid it was drawn on, as the archive's 3D FGRE headers give it
    reference = sitk.Image(256, 256, 60, sitk.sitkUInt8)
    reference.SetSpacing((0.703125, 0.703125, 2.0))
    reference.SetOrigin((157.800003, -106.699997, 78.0))
    reference.SetDirection((0, 0, -1, 1, 0, 0, 0, -1, 0))
    mask = read_dicom_seg(tmp_path / "seg.dcm", reference)
    frames = ds.pixel_array  # independent reading: each frame where its plane position says
    expected = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        position = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        k = int(round(reference.TransformPhysicalPointToContinuousIndex(position.tolist())[2]))
        expected[k] |= (frames[i] >= 128).astype(np.uint8)
    assert expected.sum() > 1000
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), expected)


def test_segment_labels_are_indexed_once(tmp_path, monkeypatch):
    """A SEG declaring many segments: labels read from the Segment Sequence in one pass (highdicom's
    per-number lookup made 10,000 segments take 134 s)."""
    seg, reference, truth = highdicom_seg(tmp_path, [f"node {n}" for n in range(1, 301)])
    seg.save_as(tmp_path / "many.seg.dcm")

    def one_by_one(*_a, **_k):
        raise AssertionError("segment descriptions looked up one by one")

    monkeypatch.setattr(hd.seg.Segmentation, "get_segment_description", one_by_one)
    mask = read_dicom_seg(tmp_path / "many.seg.dcm", reference, segment="node 1")
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), truth)
    with pytest.raises(MaskError, match=r"300 segments \(1 'node 1', 2 'node 2', .*and 290 more\)"):
        read_dicom_seg(tmp_path / "many.seg.dcm", reference)


# -- seed files ------------------------------------------------------------------------------


def _markups(points, system="RAS"):
    return {"markups": [{"type": "Fiducial", "coordinateSystem": system, "controlPoints": points}]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (json.dumps([{"position": [1, 2, 3]}]), "a markups file is a JSON object"),
        (json.dumps({"markups": {"controlPoints": []}}), "markups is a list"),
        (json.dumps(_markups([{"position": ["1", "2", "3"]}])), r"control point 1: position .*numbers"),
        (
            json.dumps(_markups([{"position": ["1", "2", "3"]}], "LPS")),
            r"control point 1: position .*numbers",
        ),
        (json.dumps(_markups([{"position": [1, None, 3]}])), r"control point 1: position .*numbers"),
        (json.dumps(_markups(["not a point"])), r"control point 1 is not an object"),
        ('{"markups": [{"controlPoints": [{"position": [1, NaN, 3]}]}]}', "finite"),
    ],
)
def test_malformed_slicer_markups_are_seed_file_errors(tmp_path, content, message):
    path = tmp_path / "seeds.mrk.json"
    path.write_text(content)
    with pytest.raises(SeedFileError, match=f"seeds.mrk.json: .*{message}"):
        read_seeds(path)


# -- the command line and the pipeline file --------------------------------------------------


@pytest.mark.parametrize("address", ["tcp://host", "tcp://host:port", "tcp://:8786", "host:99999"])
def test_a_scheduler_address_without_a_usable_port_is_refused_before_work(tmp_path, address, capsys):
    from radimt.cli import main

    pipeline = str(REPO / "pipelines" / "multimodal.yaml")
    out = str(tmp_path / "out")
    code = main(["batch", "none.csv", "--pipeline", pipeline, "--out", out, "--scheduler", address])
    err = capsys.readouterr().err
    assert code == 2 and "unexpected" not in err
    assert f"--scheduler {address}" in err and "tcp://host:8786" in err
    assert not (tmp_path / "out").exists()


ALIAS_BOMB = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
)


def test_a_yaml_alias_bomb_in_a_pyradiomics_parameter_file_is_refused(tmp_path):
    from radimt.features import load_params

    (tmp_path / "params.yaml").write_text("setting: &s\n  binWidth: 25\n" + ALIAS_BOMB)
    with pytest.raises(FeatureError, match=r"params.yaml: .*aliases"):
        load_params(tmp_path / "params.yaml")


def test_a_yaml_alias_bomb_in_role_overrides_is_refused(tmp_path):
    from radimt.pipeline.config import load_config

    bomb = ALIAS_BOMB.replace("\n", "\n  ").replace("a: &a", "t2: &a", 1)
    (tmp_path / "pipeline.yaml").write_text("roles: [dce, t2]\nrole_overrides:\n  " + bomb)
    with pytest.raises(ConfigError, match=r"pipeline.yaml: .*aliases"):
        load_config(tmp_path / "pipeline.yaml")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{a: 1}", "expected a SeriesNumber, a list of them, or a regular expression"),
        ("[5, [6, 7]]", "expected a SeriesNumber, a list of them, or a regular expression"),
        ("true", "expected a SeriesNumber"),
        ("'(unclosed'", "not a regular expression"),
    ],
)
def test_role_override_values_are_type_checked_with_their_line(tmp_path, value, message):
    from radimt.pipeline.config import load_config

    (tmp_path / "pipeline.yaml").write_text(f"roles: [dce, t2]\nrole_overrides:\n  t2: {value}\n")
    with pytest.raises(ConfigError, match=f"line 3: role_overrides: t2: .*{message}"):
        load_config(tmp_path / "pipeline.yaml")


# -- the classifier --------------------------------------------------------------------------


def _feature_table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "study_id": [f"s{i}" for i in range(n)],
            "lesion_id": "1",
            "label": ["IMT" if i % 3 == 0 else "carcinoma" for i in range(n)],
            "status": "done",
            "kinetic_ser": rng.normal(size=n),
            "adc_median_um2_ms": rng.normal(size=n),
        }
    )


def test_infinite_feature_values_are_named_in_train_and_predict(tmp_path, capsys):
    from radimt.cli import main

    frame = _feature_table()
    frame.loc[4, "kinetic_ser"] = np.inf
    frame.loc[9, "adc_median_um2_ms"] = -np.inf
    frame.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["train", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "m.skops")]) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err
    assert "kinetic_ser: infinite at line 6" in err and "adc_median_um2_ms: infinite at line 11" in err
    _feature_table().to_csv(tmp_path / "good.csv", index=False)
    assert main(["train", str(tmp_path / "good.csv"), "--out", str(tmp_path / "m.skops")]) == 0
    capsys.readouterr()
    code = main(
        ["predict", str(tmp_path / "m.skops"), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "p.csv")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unexpected" not in err and "kinetic_ser: infinite at line 6" in err


@pytest.mark.parametrize(
    "tamper",
    [
        lambda card: card.update(threshold=0.05),
        lambda card: card.update(classes=list(reversed(card["classes"]))),
        lambda card: card.update(features_in=card["features_in"][::-1]),
    ],
)
def test_a_tampered_model_card_is_refused(tmp_path, capsys, tamper):
    from radimt.cli import main

    _feature_table().to_csv(tmp_path / "t.csv", index=False)
    assert main(["train", str(tmp_path / "t.csv"), "--out", str(tmp_path / "m.skops")]) == 0
    card_path = tmp_path / "m.skops.card.json"
    card = json.loads(card_path.read_text())
    assert card["model_sha256"]  # the card names the model it was written for
    tamper(card)
    card_path.write_text(json.dumps(card))
    capsys.readouterr()
    code = main(
        ["predict", str(tmp_path / "m.skops"), str(tmp_path / "t.csv"), "--out", str(tmp_path / "p.csv")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "model card" in err and "unexpected" not in err
    assert not (tmp_path / "p.csv").exists()


def test_a_card_for_another_model_is_refused(tmp_path, capsys):
    from radimt.cli import main

    _feature_table().to_csv(tmp_path / "t.csv", index=False)
    assert main(["train", str(tmp_path / "t.csv"), "--out", str(tmp_path / "a.skops")]) == 0
    _feature_table(30).to_csv(tmp_path / "fewer.csv", index=False)
    assert main(["train", str(tmp_path / "fewer.csv"), "--out", str(tmp_path / "b.skops")]) == 0
    (tmp_path / "a.skops.card.json").write_text((tmp_path / "b.skops.card.json").read_text())
    capsys.readouterr()
    code = main(
        ["predict", str(tmp_path / "a.skops"), str(tmp_path / "t.csv"), "--out", str(tmp_path / "p.csv")]
    )
    assert code == 2 and "was written for another model" in capsys.readouterr().err


# -- the output folder -----------------------------------------------------------------------


def _one_study_manifest(tmp_path: Path, study_id: str = "fibro") -> Path:
    manifest = tmp_path / "manifest.csv"
    folder = REPO / "sample_dicom" / "fibroadenoma_persistent"
    manifest.write_text(
        f"study_id,path,lesion_id,seed_x,seed_y,seed_z\n{study_id},{folder},1,80.0,-10.0,6.0\n"
    )
    return manifest


def test_a_link_planted_in_the_output_folder_is_refused_and_nothing_written_through_it(tmp_path, capsys):
    from radimt.cli import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    (out / "lesions").mkdir(parents=True)
    (out / "lesions" / "fibro").symlink_to(elsewhere, target_is_directory=True)
    pipeline = str(REPO / "pipelines" / "breast_mri.yaml")
    code = main(["batch", str(_one_study_manifest(tmp_path)), "--pipeline", pipeline, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "leads outside the output folder" in err and "lesions/fibro" in err
    assert list(elsewhere.iterdir()) == []


def test_a_link_planted_while_the_batch_runs_fails_that_lesion_without_writing_through_it(tmp_path):
    from radimt.errors import OutputFolderError
    from radimt.pipeline.manifest import lesion_folder, read_manifest

    [task] = read_manifest(_one_study_manifest(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "1").mkdir(parents=True)
    out = tmp_path / "out"
    (out / "lesions").mkdir(parents=True)
    assert lesion_folder(out, task) == out / "lesions" / "fibro" / "1"
    (out / "lesions" / "fibro" / "1").rmdir()
    (out / "lesions" / "fibro").rmdir()
    (out / "lesions" / "fibro").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputFolderError, match="leads outside"):
        lesion_folder(out, task)


def test_an_id_too_long_for_a_folder_name_is_refused_before_any_work(tmp_path):
    from radimt.errors import ManifestError
    from radimt.pipeline.manifest import read_manifest

    with pytest.raises(ManifestError, match=r"line 2: study_id of 300 characters .*at most 128"):
        read_manifest(_one_study_manifest(tmp_path, "s" * 300))


# -- signals ---------------------------------------------------------------------------------


def _group_members(pgid: int) -> dict[int, str]:
    """Live (not zombie) processes of a process group, from /proc: pid -> command line."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members[int(stat.parent.name)] = command[:160]
    return members


def _members_after_exit(pgid: int, grace_s: float = 5.0) -> dict[int, str]:
    """The group's processes still alive ``grace_s`` after its leader ended.

    The last holder of the batch's stderr (multiprocessing's resource tracker, which ends when
    the batch does) closes it while it is still exiting, so a process can show in /proc for a
    moment after ``communicate`` returns; a worker left running stays for its whole study.
    """
    import time

    deadline = time.monotonic() + grace_s
    while (members := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return members


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc")
def test_sigterm_stops_every_worker_and_a_rerun_resumes(tmp_path):
    """SIGTERM on a --workers 2 run: the run exits non-zero, no worker outlives it (none goes on
    writing lesions), and a rerun finishes the rest, keeping what was done."""
    import signal
    import subprocess
    import sys
    import time

    rows = ["study_id,path,lesion_id,seed_x,seed_y,seed_z"]
    sample = REPO / "sample_dicom"
    for n in range(12):
        rows.append(f"s{n:02d},{sample / 'carcinoma_washout'},1,100.0,-6.0,4.0")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "radimt.cli",
        "batch",
        str(tmp_path / "manifest.csv"),
        "--pipeline",
        str(REPO / "pipelines" / "breast_mri.yaml"),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    run = subprocess.Popen(command, cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300  # a bound on a hung run, not a measured time
    while not list(out.glob("lesions/*/1/result.json")) and run.poll() is None:
        assert time.monotonic() < deadline, "no lesion finished"
        time.sleep(0.2)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode not in (0, None) and "resumes" in err
    done = {p.parent.parent.name for p in out.glob("lesions/*/1/result.json")}
    assert _members_after_exit(run.pid) == {}, "processes outlived the batch"
    time.sleep(2.0)  # a worker left running would finish its study (~1 s) meanwhile
    assert {p.parent.parent.name for p in out.glob("lesions/*/1/result.json")} == done, (
        "a lesion was written after the batch ended"
    )
    assert 1 <= len(done) < 12
    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"12 done ({len(done)} from an earlier run)" in rerun.stdout + rerun.stderr


# -- a DCE time point that misses a slice ----------------------------------------------------


def _dce_study_missing_a_slice(tmp_path: Path, phase: int, layout: str = "per_phase") -> Path:
    from radimt.synth.studies import write_mr_study
    from tests.conftest import small_spec

    folder = tmp_path / "study"
    write_mr_study(str(folder), small_spec(dce_layout=layout))
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("MR/dce*/*")}

    def time_point(path: Path) -> int:  # one series per time point (dce1...), or one series
        ds = headers[path]
        return (
            int(ds.TemporalPositionIdentifier)
            if "TemporalPositionIdentifier" in ds
            else int(path.parent.name[3:])
        )

    files = sorted(  # time point 1 is the pre-contrast phase
        (p for p in headers if time_point(p) == phase),
        key=lambda p: float(headers[p].ImagePositionPatient[2]),
    )
    assert files, f"no file of time point {phase}"
    files[len(files) // 2].unlink()
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"study_id,path,lesion_id,seed_x,seed_y,seed_z\ns,{folder},1,100.0,-4.0,-4.0\n")
    return manifest


def test_a_post_contrast_time_point_missing_a_slice_is_said_in_the_row_the_result_and_the_report(tmp_path):
    from radimt.pipeline.runner import run_batch

    manifest = _dce_study_missing_a_slice(tmp_path, phase=3)
    run_batch(manifest, REPO / "pipelines" / "breast_mri.yaml", tmp_path / "out", show_progress=False)
    [row] = pd.read_csv(tmp_path / "out" / "features.csv").to_dict("records")
    assert row["status"] == "done"
    assert (
        "'Ph3/dyn'" in row["qc_warnings"]
        and "11 of 12 slice positions; left out of the DCE" in row["qc_warnings"]
    )
    result = json.loads((tmp_path / "out" / "lesions" / "s" / "1" / "result.json").read_text())
    [warning] = result["provenance"]["warnings"]
    assert warning["role"] == "dce" and "slice positions" in warning["message"]
    assert "time point left out (missing slices)" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("layout", ["per_phase", "single"])
def test_a_pre_contrast_time_point_missing_a_slice_fails_the_lesion_never_shifting_the_baseline(
    tmp_path, layout
):
    from radimt.pipeline.runner import run_batch

    manifest = _dce_study_missing_a_slice(tmp_path, phase=1, layout=layout)
    run_batch(manifest, REPO / "pipelines" / "breast_mri.yaml", tmp_path / "out", show_progress=False)
    [row] = pd.read_csv(tmp_path / "out" / "features.csv").to_dict("records")
    assert row["status"] == "failed"
    assert "TimingError" in row["error"] and "baseline" in row["error"]
