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

from radimt.pipeline.runner import run_batch
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
    header, row, end = (tmp_path / "out" / "features.csv").read_text().split("\n")
    assert header == "study_id,lesion_id,label,site,status,error,qc_warnings" and end == ""
    assert row.startswith("air,1,,A,failed,\"SeedError: ") and row.endswith("belongs to\",")
    assert (tmp_path / "out" / "kinetics.csv").read_text().startswith("study_id,lesion_id,curve")


def _label_map_case(folder: Path) -> None:
    """A CT-like image with two lesions in one label map (labels 1 and 2), as NRRD/NIfTI files."""
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(3)
    values = rng.normal(40, 12, (30, 48, 48))
    labels = np.zeros(values.shape, np.uint8)
    zz, yy, xx = np.ogrid[:30, :48, :48]
    for label, (centre, radius, level) in enumerate((((15, 14, 14), 6, 120), ((15, 32, 33), 8, 90)), start=1):
        ball = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2
        values[ball] += level + rng.normal(0, 15, ball.sum())
        labels[ball] = label
    image = sitk.GetImageFromArray(values.astype(np.int16))
    image.SetSpacing((0.8, 0.8, 2.0))
    image.SetOrigin((-20.0, 10.0, 5.0))
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(folder / "ct.nrrd"))
    sitk.WriteImage(mask, str(folder / "lesions.nii.gz"))
    (folder / "params.yaml").write_text(
        "imageType:\n  Original: {}\n  LoG:\n    sigma: [1.0, 2.0]\n"
        "featureClass:\n  shape:\n  firstorder:\n  glcm:\n  glszm:\n"
        "setting:\n  binWidth: 25\n  label: 1\n"
    )
    (folder / "batch.csv").write_text(
        "Image,Mask,Label,Patient\nct.nrrd,lesions.nii.gz,2,P1\nct.nrrd,lesions.nii.gz,1,P1\n"
    )


def _same(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    return x == pytest.approx(y, rel=1e-9, abs=1e-12)


def test_pyradiomics_params_and_batch_csv_run_unchanged_and_match_pyradiomics_column_for_column(tmp_path):
    import subprocess
    import sys

    _label_map_case(tmp_path)
    command = Path(sys.executable).parent / "pyradiomics"
    subprocess.run(
        [
            str(command),
            str(tmp_path / "batch.csv"),
            "--param",
            str(tmp_path / "params.yaml"),
            "-o",
            str(tmp_path / "pyradiomics.csv"),
            "-f",
            "csv",
        ],
        check=True,
        capture_output=True,
    )
    theirs = _rows(tmp_path / "pyradiomics.csv")
    summary = run_batch(
        tmp_path / "batch.csv", tmp_path / "params.yaml", tmp_path / "out", pyradiomics_names=True
    )
    assert summary.ok, _rows(tmp_path / "out" / "errors.csv")
    ours = {r["Label"]: r for r in _rows(tmp_path / "out" / "features.csv")}
    assert len(theirs) == 2 and set(ours) == {"1", "2"}
    for row in theirs:
        mine = ours[row["Label"]]
        missing = [c for c in row if c not in mine]
        assert not missing, missing[:10]
        different = [(c, row[c], mine[c]) for c in row if not _same(row[c], mine[c])]
        assert not different, different[:10]
        assert len([c for c in row if c.startswith("log-sigma")]) > 100
    import json

    provenance = json.loads((tmp_path / "out" / "lesions" / "case1" / "2" / "result.json").read_text())[
        "provenance"
    ]
    assert provenance["label"] == 2 and provenance["params"].endswith("params.yaml")
    assert (
        str(provenance["pyradiomics"]["Mask-original_VoxelNum"])
        == ours["2"]["diagnostics_Mask-original_VoxelNum"]
    )
    # Label 2 is the larger ball: its own voxels, not the union of both labels.
    assert int(ours["2"]["diagnostics_Mask-original_VoxelNum"]) == int(
        next(r for r in theirs if r["Label"] == "2")["diagnostics_Mask-original_VoxelNum"]
    )
    assert float(ours["2"]["lesion_volume_mm3"]) == pytest.approx(
        int(ours["2"]["diagnostics_Mask-original_VoxelNum"]) * 0.8 * 0.8 * 2.0
    )


def test_a_pyradiomics_manifest_keeps_its_id_column_and_row_order(tmp_path):
    _label_map_case(tmp_path)
    (tmp_path / "batch.csv").write_text(
        "ID,Image,Mask,Label\nzeta,ct.nrrd,lesions.nii.gz,2\nalpha,ct.nrrd,lesions.nii.gz,1\n"
    )
    run_batch(tmp_path / "batch.csv", tmp_path / "params.yaml", tmp_path / "out", show_progress=False)
    rows = _rows(tmp_path / "out" / "features.csv")
    assert [(r["ID"], r["Label"]) for r in rows] == [("zeta", "2"), ("alpha", "1")]  # as given, not sorted
    assert [r["study_id"] for r in rows] == ["zeta", "alpha"]


def test_without_pyradiomics_names_the_prefix_is_image_and_strips_back(tmp_path):
    _label_map_case(tmp_path)
    run_batch(tmp_path / "batch.csv", tmp_path / "params.yaml", tmp_path / "out", diagnostics=False)
    row = _rows(tmp_path / "out" / "features.csv")[0]
    assert "image_original_firstorder_Mean" in row and not any(c.startswith("diagnostics_") for c in row)
    assert "dce_original_firstorder_Mean" not in row


def test_a_pipeline_that_overrides_a_presets_filters_says_so(tmp_path):
    import json

    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"study_id,path,seed_x,seed_y,seed_z\na,{SAMPLE_DICOM / 'carcinoma_washout'},100,-6,4\n"
    )
    run_batch(manifest, PIPELINE, tmp_path / "out")  # breast_mri: image_types [Original]
    notes = json.loads((tmp_path / "out" / "run.json").read_text())["filter_overrides"]
    assert "dce: image_types ['Original'] replace the filters of preset 'mr' (Original, LoG)" in notes
    assert "Filters: dce: image_types" in (tmp_path / "out" / "report.html").read_text()


def test_a_plain_pyradiomics_params_file_is_a_pipeline_for_studies_too(tmp_path):
    from radimt.pipeline.config import load_config

    _label_map_case(tmp_path)
    config = load_config(tmp_path / "params.yaml")
    assert config.pyradiomics_params == str((tmp_path / "params.yaml").resolve())
    assert set(config.analysis.presets.values()) == {config.pyradiomics_params}
    assert config.analysis.image_types is None
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"study_id,path,seed_x,seed_y,seed_z\nimt,{SAMPLE_DICOM / 'imt_case'},108,0,-10\n")
    ct_only = tmp_path / "ct.yaml"
    ct_only.write_text(
        "reference: ct\nroles: [ct]\nsegmentation:\n  modality: ct\n"
        f"presets:\n  ct: {tmp_path / 'params.yaml'}\n"
    )
    summary = run_batch(manifest, ct_only, tmp_path / "out", pyradiomics_names=True)
    assert summary.ok, _rows(tmp_path / "out" / "errors.csv")
    row = _rows(tmp_path / "out" / "features.csv")[0]
    assert "log-sigma-2-0-mm-3D_glcm_Contrast" in row and "ct_original_firstorder_Mean" not in row
    with pytest.raises(Exception, match="--pyradiomics-names needs one role"):
        run_batch(manifest, tmp_path / "params.yaml", tmp_path / "multi", pyradiomics_names=True)
