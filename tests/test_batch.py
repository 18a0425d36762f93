"""The batch pipeline end to end: truth recovered, resume after a crash, Dask, bad manifests."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radimt.cli import main
from radimt.pipeline.config import ConfigError, load_config
from radimt.pipeline.manifest import ManifestError, read_manifest
from radimt.pipeline.runner import run_batch
from tests.conftest import REPO, SAMPLE_DICOM

PIPELINE = REPO / "pipelines" / "multimodal.yaml"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    summary = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, out)
    return out, summary


def test_end_to_end_recovers_the_truth(reference_run):
    out, summary = reference_run
    assert summary.ok and summary.done == 3 and summary.failed == 0
    rows = {r["study_id"]: r for r in _rows(out / "features.csv")}
    for study_id, row in rows.items():
        truth = json.loads((SAMPLE_DICOM / study_id / "truth.json").read_text())
        assert row["kinetic_curve_type"] == truth["kinetics"]["kuhl_type"]
        assert row["kinetic_initial_phase"] == truth["kinetics"]["initial_phase"]
        assert float(row["adc_median_um2_ms"]) == pytest.approx(truth["adc"]["lesion_1e-3_mm2_s"], abs=0.15)
        assert row["label"] == truth["label"]
    assert abs(float(rows["imt_case"]["lesion_longest_diameter_mm"]) - 12.0) <= 1.5
    header = next(csv.reader(open(out / "features.csv")))
    assert header[:3] == ["study_id", "lesion_id", "label"]
    kinetics = _rows(out / "kinetics.csv")
    assert len(kinetics) == 3 * 2 * 6 and {k["curve"] for k in kinetics} == {"mean", "most_suspicious"}
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 9 and "carcinoma_washout" in report
    run = json.loads((out / "run.json").read_text())
    assert run["done"] == 3 and run["config"]["name"] == "multimodal" and len(run["input_checksums"]) == 3
    assert {"pyradiomics", "SimpleITK", "pydicom", "started", "finished", "study_seconds"} <= set(run)
    assert _rows(out / "errors.csv") == []
    for lesion in (out / "lesions").glob("*/*"):
        assert {"mask.nii.gz", "tic.png", "overlay_dce.png", "result.json"} <= {
            p.name for p in lesion.iterdir()
        }


def test_each_lesion_records_where_its_time_went(reference_run):
    """Per-stage wall seconds (study stages shared, then the lesion's own) in result.json."""
    out, _ = reference_run
    for path in (out / "lesions").glob("*/*/result.json"):
        result = json.loads(path.read_text())
        stages = result["stage_seconds"]
        expected = {"checksum", "scan headers", "reference image", "segmentation", "features", "figures"}
        if path.parent.parent.name == "imt_case":  # seeds on US, MG and CT as well
            expected.add("other modalities")
        assert set(stages) == expected
        assert all(seconds >= 0 for seconds in stages.values())
        lesion_own = sum(stages[k] for k in ("reference image", "segmentation", "features", "figures"))
        assert lesion_own <= result["seconds"] + 0.01  # the stages are parts of the lesion's time


def test_the_lesion_record_reads_back_what_the_tables_hold(reference_run, tmp_path):
    """result.json is one typed record (worker writes, runner and report read): it round-trips,
    and the features.csv row is exactly its row."""
    from radimt.pipeline.record import LesionRecord

    out, _ = reference_run
    rows = {r["study_id"]: r for r in _rows(out / "features.csv")}
    record = LesionRecord.read(out / "lesions" / "imt_case" / "1")
    assert record is not None and record.fingerprint and record.figures and len(record.curves) == 12
    for key, value in record.row.items():
        if isinstance(value, float):
            assert float(rows["imt_case"][key]) == pytest.approx(value, rel=1e-9, nan_ok=True), (
                key
            )  # the CSV keeps 10 digits
        else:
            assert rows["imt_case"][key] == str(value), key
    record.write(tmp_path)
    assert LesionRecord.read(tmp_path) == record
    assert LesionRecord.from_json({**record.to_json(), "added_by_a_later_version": 1}) == record
    (tmp_path / "result.json").write_text("{not json")
    assert LesionRecord.read(tmp_path) is None  # a broken record is redone, never half-read


def test_no_patient_identifiers_in_outputs(reference_run):
    out, _ = reference_run
    for path in [out / "features.csv", out / "kinetics.csv", out / "run.json", out / "report.html"]:
        text = path.read_text()
        assert "Synthetic^" not in text and "SYN-" not in text


def test_rerun_skips_finished_lesions_and_gives_the_same_bytes(reference_run, tmp_path):
    out, _ = reference_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "lesions" / "imt_case" / "1" / "result.json").unlink()  # as if it never finished
    (copy / "lesions" / "imt_case" / "1" / ".result.x1y2.json").write_text('{"partial":')  # a torn write
    summary = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, copy)
    assert summary.skipped == 2 and summary.done == 3
    assert (copy / "features.csv").read_bytes() == (out / "features.csv").read_bytes()
    assert (copy / "kinetics.csv").read_bytes() == (out / "kinetics.csv").read_bytes()
    assert not list(copy.rglob(".*.json"))


def _interrupt_after_first_result(target: Path, extra: list[str], interrupt) -> None:
    """Start `radimt batch` in a subprocess and interrupt it once a lesion has finished."""
    command = [
        sys.executable,
        "-m",
        "radimt.cli",
        "batch",
        str(SAMPLE_DICOM / "manifest.csv"),
        "--pipeline",
        str(PIPELINE),
        "--out",
        str(target),
        *extra,
    ]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(target.glob("lesions/*/*/result.json")):
        time.sleep(0.05)
    interrupt(process)
    process.wait()


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_is_identical(reference_run, tmp_path):
    out, _ = reference_run
    target = tmp_path / "killed"
    # SIGKILL the parent and its workers, mid-run.
    _interrupt_after_first_result(target, ["--workers", "2"], lambda p: os.killpg(p.pid, signal.SIGKILL))
    summary = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, target)
    assert summary.done == 3 and summary.skipped >= 1
    assert (target / "features.csv").read_bytes() == (out / "features.csv").read_bytes()
    assert not list(target.rglob(".*"))


@pytest.mark.slow
def test_sigint_parent_then_rerun_is_identical(reference_run, tmp_path):
    out, _ = reference_run
    target = tmp_path / "interrupted"
    _interrupt_after_first_result(target, [], lambda p: p.send_signal(signal.SIGINT))  # Ctrl-C
    run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, target)
    assert (target / "features.csv").read_bytes() == (out / "features.csv").read_bytes()


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_csv(reference_run, tmp_path):
    pytest.importorskip("distributed")
    out, _ = reference_run
    summary = run_batch(
        SAMPLE_DICOM / "manifest.csv", PIPELINE, tmp_path / "dask", workers=2, scheduler="local-dask"
    )
    assert summary.done == 3
    assert (tmp_path / "dask" / "features.csv").read_bytes() == (out / "features.csv").read_bytes()


def test_one_thread_per_worker_gives_the_same_csv(reference_run, tmp_path):
    """--threads 1 holds the worker to one thread (its roles' features one after the other, its
    files written inline) and changes no number; fewer than one is refused."""
    import SimpleITK as sitk

    out, _ = reference_run
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        assert main(["batch", str(SAMPLE_DICOM / "manifest.csv"), "--pipeline", str(PIPELINE),
                     "--out", str(tmp_path / "one"), "--threads", "1"]) == 0  # fmt: skip
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1  # this process was the worker
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)
    assert (tmp_path / "one" / "features.csv").read_bytes() == (out / "features.csv").read_bytes()
    with pytest.raises(SystemExit):
        main(["batch", "m.csv", "--pipeline", "p.yaml", "--out", str(tmp_path / "x"), "--threads", "0"])
    with pytest.raises(ValueError, match="at least 1 thread"):
        run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, tmp_path / "never", threads=0)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", [[], ["--scheduler", "local-dask"]], ids=["pool", "local-dask"])
def test_command_line_workers_forked_from_a_server_give_the_same_csv(reference_run, tmp_path, scheduler):
    """`radimt batch --workers 2` (a process pool, or a local Dask cluster) forks its workers from
    a server that imported the stack once (while the batch imported its own): the tables equal
    the in-process run's byte for byte, and no process of the run is left once it ends."""
    if scheduler:
        pytest.importorskip("distributed")
    out, _ = reference_run
    command = [sys.executable, "-m", "radimt.cli", "batch", str(SAMPLE_DICOM / "manifest.csv"),
               "--pipeline", str(PIPELINE), "--out", str(tmp_path / "two"), "--workers", "2"]  # fmt: skip
    command += scheduler
    from tests.test_hostile_input_2 import _members_after_exit

    run = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    assert (tmp_path / "two" / "features.csv").read_bytes() == (out / "features.csv").read_bytes()
    assert _members_after_exit(run.pid) == {}  # the server and its workers ended with the batch


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text(text)
    return path


def test_bad_manifests_are_refused_before_any_work(tmp_path):
    study = SAMPLE_DICOM / "imt_case"
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(_manifest(tmp_path, "study_id,seed_x\nA,1\n"))
    text = (
        "study_id,path,lesion_id,seed_x,seed_y,seed_z\n"
        f"A,{study},1,1,2,3\n"
        f"A,{study},1,4,5,6\n"
        "B,/no/such/folder,1,1,2,3\n"
        f"C,{study},1,1,two,3\n"
        f"D,{study},1,,,\n"
    )
    with pytest.raises(ManifestError) as info:
        read_manifest(_manifest(tmp_path, text))
    message = str(info.value)
    for expected in (
        "appears twice",
        "line 4: study folder",
        "line 5: seed_y 'two'",
        "line 6: no seed",
        "4 problem(s)",
    ):
        assert expected in message
    with pytest.raises(ManifestError):
        run_batch(_manifest(tmp_path, text), PIPELINE, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_study_ids_cannot_escape_the_output_folder(tmp_path):
    text = f"study_id,path,seed_x,seed_y,seed_z,label\n../../evil,{SAMPLE_DICOM / 'imt_case'},108,0,-10,IMT\n"
    out = tmp_path / "out"
    summary = run_batch(_manifest(tmp_path, text), PIPELINE, out)
    assert summary.done == 1
    assert (out / "lesions" / "evil" / "1" / "result.json").exists()
    assert not (tmp_path.parent / "evil").exists()
    assert _rows(out / "features.csv")[0]["study_id"] == "../../evil"  # the id itself is kept


def test_a_failing_study_is_recorded_and_the_batch_goes_on(tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "notes.txt").write_text("no images here")
    text = (
        "study_id,path,seed_x,seed_y,seed_z,site\n"
        f"good,{SAMPLE_DICOM / 'carcinoma_washout'},100,-6,4,A\n"
        f"empty,{broken},0,0,0,B\n"
        f"air,{SAMPLE_DICOM / 'fibroadenoma_persistent'},50,30,-20,B\n"
    )
    code = main(
        ["batch", str(_manifest(tmp_path, text)), "--pipeline", str(PIPELINE), "--out", str(tmp_path / "out")]
    )
    assert code == 1
    errors = {r["study_id"]: r["reason"] for r in _rows(tmp_path / "out" / "errors.csv")}
    assert set(errors) == {"empty", "air"}
    assert "no dce series" in errors["empty"].lower()
    rows = {r["study_id"]: r for r in _rows(tmp_path / "out" / "features.csv")}
    assert list(rows) == ["air", "empty", "good"] and rows["good"]["site"] == "A"  # every manifest row
    good = rows["good"]
    assert good["status"] == "done" and good["error"] == "" and good["kinetic_curve_type"]
    for failed in ("air", "empty"):  # kept, with why, and no numbers
        assert rows[failed]["status"] == "failed" and rows[failed]["error"] == errors[failed]
        assert rows[failed]["kinetic_curve_type"] == "" and rows[failed]["lesion_volume_mm3"] == ""
    assert "Failed" in (tmp_path / "out" / "report.html").read_text()


def test_pipeline_configs_are_validated_with_line_numbers(tmp_path):
    for name in ("breast_mri", "mammography", "ultrasound", "ct", "multimodal"):
        load_config(REPO / "pipelines" / f"{name}.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nroles: [dce]\nsegmentaton:\n  modality: mr\n")
    with pytest.raises(ConfigError, match=r"line 3: segmentaton: unknown setting"):
        load_config(bad)
    bad.write_text("name: x\nrim_mm: thick\n")
    with pytest.raises(ConfigError, match=r"line 2: rim_mm: expected a number"):
        load_config(bad)
    bad.write_text("roles: [dce, pet]\n")
    with pytest.raises(ConfigError, match="unknown role 'pet'"):
        load_config(bad)
    bad.write_text("segmentation:\n  tolerence: 0.4\n")
    with pytest.raises(ConfigError, match="line 2: segmentation: unknown option"):
        load_config(bad)


def test_pyradiomics_batch_csv_is_accepted_unchanged(tmp_path):
    import SimpleITK as sitk

    from radimt.synth.phantom import lesion_image

    image, truth, _ = lesion_image("sphere", 6.0, size=(50, 50, 40))
    sitk.WriteImage(image, str(tmp_path / "image.nrrd"))
    sitk.WriteImage(truth, str(tmp_path / "mask.nii.gz"))
    manifest = _manifest(tmp_path, "Image,Mask,Patient\nimage.nrrd,mask.nii.gz,P1\n")
    config = tmp_path / "ct.yaml"
    config.write_text("reference: ct\nroles: [ct]\nimage_types: [Original]\n")
    summary = run_batch(manifest, config, tmp_path / "out")
    assert summary.done == 1
    row = _rows(tmp_path / "out" / "features.csv")[0]
    assert row["Patient"] == "P1" and float(row["image_original_shape_MeshVolume"]) > 0


@pytest.mark.parametrize(
    ("pipeline", "seed_columns", "seed", "check"),
    [
        ("mammography", "seed_i,seed_j,seed_series", "170,250,30", "mg_original_shape2D_MaximumDiameter"),
        ("ultrasound", "seed_i,seed_j,seed_series", "200,165,40", "us_original_shape2D_MaximumDiameter"),
        ("ct", "seed_x,seed_y,seed_z", "108,0,-10", "ct_rim_core_ratio"),
    ],
)
def test_other_modalities_end_to_end(tmp_path, pipeline, seed_columns, seed, check):
    text = f"study_id,path,{seed_columns},label\nimt,{SAMPLE_DICOM / 'imt_case'},{seed},IMT\n"
    summary = run_batch(_manifest(tmp_path, text), REPO / "pipelines" / f"{pipeline}.yaml", tmp_path / "out")
    assert summary.ok, _rows(tmp_path / "out" / "errors.csv")
    row = _rows(tmp_path / "out" / "features.csv")[0]
    assert abs(float(row["lesion_longest_diameter_mm"]) - 12.0) <= 1.5
    assert float(row[check]) > (1.2 if pipeline == "ct" else 10.0)  # rim enhancement; diameter mm


def test_seg_outputs_are_deidentified_and_parquet_matches_csv(tmp_path):
    import pandas as pd
    import pydicom

    text = f"study_id,path,seed_x,seed_y,seed_z\nimt,{SAMPLE_DICOM / 'imt_case'},108,0,-10\n"
    manifest = _manifest(tmp_path, text)
    summary = run_batch(manifest, PIPELINE, tmp_path / "out", seg=True, table_format="parquet")
    assert summary.ok
    seg = pydicom.dcmread(tmp_path / "out" / "lesions" / "imt" / "1" / "seg.dcm")
    assert seg.Modality == "SEG" and str(seg.PatientName) == "imt" and seg.PatientID == "imt"
    frame = pd.read_parquet(tmp_path / "out" / "features.parquet")
    csv_frame = pd.read_csv(tmp_path / "out" / "features.csv", dtype={"study_id": str, "lesion_id": str})
    assert list(frame.columns) == list(csv_frame.columns) and frame.shape == (1, csv_frame.shape[1])
    kept = run_batch(manifest, PIPELINE, tmp_path / "phi", seg=True, keep_phi=True)
    assert kept.ok
    assert str(
        pydicom.dcmread(tmp_path / "phi" / "lesions" / "imt" / "1" / "seg.dcm").PatientName
    ).startswith("Synthetic")


def test_per_modality_seeds_in_the_manifest(tmp_path):
    """A lesion row may carry a seed per modality: mm (x, y[, z]) or index (i, j[, k]), with an
    optional series; they are not passed through as columns, and a wrong key is refused."""
    (tmp_path / "s").mkdir()
    text = (
        "study_id,path,seed_x,seed_y,seed_z,us_seed_i,us_seed_j,mg_cc_seed_x,mg_cc_seed_y,ct_seed_x,ct_seed_y,"
        "ct_seed_z,ct_series,site\n"
        "a,s,1,2,3,200,165,42.5,62.5,108,0,-10,20,A\n"
        "b,s,1,2,3,,,,,,,,,B\n"
    )
    a, b = read_manifest(_manifest(tmp_path, text))
    seeds = {s.key: s for s in a.modality_seeds}
    assert seeds["us"].seed == (200.0, 165.0) and seeds["us"].seed_is_index and seeds["us"].role == "us"
    assert seeds["mg_cc"].seed == (42.5, 62.5) and not seeds["mg_cc"].seed_is_index
    assert seeds["mg_cc"].role == "mg" and seeds["mg_cc"].view == "CC"
    assert seeds["ct"].seed == (108.0, 0.0, -10.0) and seeds["ct"].series == "20"
    assert b.modality_seeds == () and a.extra == {"site": "A"}
    bad = "study_id,path,seed_x,seed_y,seed_z,pet_seed_x,pet_seed_y,us_seed_i\na,s,1,2,3,4,5,7\n"
    with pytest.raises(ManifestError) as error:
        read_manifest(_manifest(tmp_path, bad))
    assert "'pet' is not a modality" in str(error.value) and "us: give us_seed_x" in str(error.value)


def test_unknown_manifest_columns_are_named_up_front_with_the_closest_known_name(tmp_path):
    """A typo (sead_z) is refused before any work, with what it probably meant; a column of the
    user's own is carried only when declared; a 2-coordinate seed for the 3D DCE is refused
    up front instead of failing every lesion later."""
    study = SAMPLE_DICOM / "imt_case"
    typo = f"study_id,path,seed_x,seed_y,sead_z,label,age\nA,{study},108,0,-10,IMT,54\n"
    with pytest.raises(ManifestError) as info:
        read_manifest(_manifest(tmp_path, typo))
    message = str(info.value)
    assert "line 1: unknown column 'sead_z' (did you mean seed_z?)" in message
    assert "unknown column 'age'; to carry a column of your own" in message and "--keep-columns" in message
    assert "line 2: seed has 2 coordinate(s) (seed_x, seed_y) but dce is 3D" in message
    with pytest.raises(ManifestError):
        run_batch(_manifest(tmp_path, typo), PIPELINE, tmp_path / "never")
    assert not (tmp_path / "never").exists()

    declared = f"study_id,path,seed_x,seed_y,seed_z,label,age,site\nA,{study},108,0,-10,IMT,54,X\n"
    [task] = read_manifest(_manifest(tmp_path, declared), keep_columns=["age"])
    assert task.extra == {"age": "54", "site": "X"}
    flat = f"study_id,path,seed_x,seed_y,seed_z,us_seed_i,us_seed_j,us_seed_k\nA,{study},200,165,,1,2,3\n"
    with pytest.raises(ManifestError) as info:
        read_manifest(_manifest(tmp_path, flat), reference="us")
    expected = "us_seed has 3 coordinate(s) (us_seed_i, us_seed_j, us_seed_k) but us is a 2D image"
    assert expected in str(info.value)
    [task] = read_manifest(_manifest(tmp_path, flat.replace(",1,2,3", ",1,2,")), reference="us")
    assert task.seed == (200.0, 165.0)


def test_declared_columns_reach_features_csv_without_recomputing(tmp_path):
    """keep_columns (CLI --keep-columns) carries a column; declaring one later, or changing a label,
    does not recompute the lesion: they are not inputs of its analysis."""
    study = SAMPLE_DICOM / "carcinoma_washout"
    path = _manifest(tmp_path, f"study_id,path,seed_x,seed_y,seed_z,label,age\nc,{study},100,-6,4,x,61\n")
    out = tmp_path / "out"
    first = run_batch(path, PIPELINE, out, keep_columns=["age"])
    assert first.done == 1 and _rows(out / "features.csv")[0]["age"] == "61"
    path.write_text(f"study_id,path,seed_x,seed_y,seed_z,label,age\nc,{study},100,-6,4,carcinoma,61\n")
    again = run_batch(path, PIPELINE, out, keep_columns=["age"])
    assert again.skipped == 1 and _rows(out / "features.csv")[0]["label"] == "carcinoma"


def test_files_written_alongside_report_their_failure_but_not_over_the_lesions_own():
    """The worker's file writing beside the figures: every write done when the block ends, the
    first failing write raised, and a failure of the block itself kept as the lesion's reason."""
    import threading

    import SimpleITK as sitk

    from radimt.pipeline.worker import _AlongSide

    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        for threads in (1, 2):
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
            done: list[str] = []
            with _AlongSide() as files:
                files.run(lambda names: names.append(threading.current_thread().name), done)
            assert len(done) == 1 and done[0].startswith("radimt-files") == (threads > 1)

            def broken() -> None:
                raise OSError("disk full")

            with pytest.raises(OSError, match="disk full"), _AlongSide() as files:
                files.run(broken)
            first = ValueError if threads > 1 else OSError  # inline, the write fails first
            with pytest.raises(first), _AlongSide() as files:
                files.run(broken)
                raise ValueError("the figure failed")
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)
