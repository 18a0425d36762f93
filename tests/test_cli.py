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


def test_scan_of_a_folder_without_dicom_says_so_and_fails(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scan", str(empty)]) == 2
    assert "no DICOM image found (the folder holds no files)" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.txt").write_text("not DICOM")
    assert main(["scan", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert "no DICOM image found; 1 file(s) set aside, e.g." in err and "report.txt" in err


def test_segment_writes_mask_overlay_and_seg(capsys, tmp_path):
    import json as _json

    import pydicom
    import SimpleITK as sitk

    truth = _json.loads((SAMPLE_DICOM / "imt_case" / "truth.json").read_text())
    x, y, z = truth["lesion"]["centre_lps"]
    out = tmp_path / "lesion.nii.gz"
    code = main(
        [
            "segment",
            str(SAMPLE_DICOM / "imt_case"),
            "--seed",
            f"{x},{y},{z}",
            "--out",
            str(out),
            "--seg",
            str(tmp_path / "lesion.dcm"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    diameter = float(re.search(r"longest diameter: ([\d.]+) mm", printed).group(1))
    assert abs(diameter - truth["lesion"]["diameter_mm"]) <= 1.5
    assert "DCE early subtraction" in printed and re.search(r"voxels: \d+", printed)
    assert sitk.ReadImage(str(out)).GetSize() == (96, 96, 24)
    assert (tmp_path / "lesion_overlay.png").read_bytes()[:4] == b"\x89PNG"
    assert pydicom.dcmread(tmp_path / "lesion.dcm").Modality == "SEG"


def test_segment_reports_a_seed_outside_the_image(capsys, tmp_path):
    code = main(
        ["segment", str(SAMPLE_DICOM / "imt_case"), "--seed", "0,0,500", "--out", str(tmp_path / "m.nii.gz")]
    )
    assert code == 2
    assert "outside the image" in capsys.readouterr().err
    assert not (tmp_path / "m.nii.gz").exists()


def test_an_unexpected_error_is_one_line_and_a_log_unless_debug(capsys, tmp_path, monkeypatch):
    import pytest

    import radimt.cli as cli

    def boom(args):
        return 1 / 0

    monkeypatch.setattr(cli, "cmd_scan", boom)
    monkeypatch.setenv("RADIMT_LOG_DIR", str(tmp_path))
    assert main(["scan", "study"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "unexpected ZeroDivisionError in 'radimt scan': division by zero" in err
    (log,) = tmp_path.glob("radimt-*.log")
    assert str(log) in err
    text = log.read_text()
    assert "command: radimt scan study" in text and "Traceback" in text and "ZeroDivisionError" in text
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "scan", "study"])


def _model(tmp_path):
    from radimt.classify import ModelConfig, load_table, model_card, save_model, train
    from tests.test_classify import _cohort

    frame = _cohort(seed=6, signal=1.5, n_imt=12, n_other=24, p=20)
    frame.to_csv(tmp_path / "features.csv", index=False)
    config = ModelConfig(inner_splits=3)
    data = load_table(frame, config)
    model = train(data, config)
    save_model(model, tmp_path / "model.skops", model_card(data, config, model, None))
    return tmp_path / "model.skops"


def test_predict_names_a_corrupt_card_a_missing_table_and_a_damaged_model(capsys, tmp_path):
    model = _model(tmp_path)
    features, out = str(tmp_path / "features.csv"), str(tmp_path / "p.csv")
    assert main(["predict", str(model), features, "--out", out]) == 0
    card = tmp_path / "model.skops.card.json"
    broken = (("{not json", "model card cannot be read"), ('{"threshold": "high"}', "not a probability"))
    for text, message in broken:
        card.write_text(text)
        assert main(["predict", str(model), features, "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"radimt: error: {card}: ") and message in err
    card.unlink()
    assert main(["predict", str(model), str(tmp_path / "nowhere.csv"), "--out", out]) == 2
    assert "nowhere.csv: no such features file" in capsys.readouterr().err
    (tmp_path / "damaged.skops").write_bytes(model.read_bytes()[:300])
    assert main(["predict", str(tmp_path / "damaged.skops"), features, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "not a readable radimt model" in err and "Traceback" not in err


def test_version_and_help_with_defaults(capsys):
    import pytest

    from radimt import __version__

    with pytest.raises(SystemExit) as exit_code:
        main(["--version"])
    assert exit_code.value.code == 0 and capsys.readouterr().out.strip() == f"radimt {__version__}"
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "outer folds (default: 5)" in text and "classifier (default: logistic)" in text


def test_negative_seed_coordinates_and_a_voxel_seed(capsys, tmp_path):
    import radimt
    from radimt.segment import subtraction

    study = SAMPLE_DICOM / "imt_case"
    # A right-breast lesion has negative LPS x: the value must reach the seed, not argparse.
    assert main(["segment", str(study), "--seed", "-108,0,-10", "--out", str(tmp_path / "m.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "(-108.0, 0.0, -10.0) lies outside the image" in err
    assert "its RAS reading (108.0, -0.0, -10.0) is inside: the seed looks like RAS coordinates" in err
    index = subtraction(radimt.load_study(study).dce, 1).TransformPhysicalPointToIndex((108.0, 0.0, -10.0))
    by_point = ["segment", str(study), "--seed", "108,0,-10", "--out", str(tmp_path / "a.nii.gz")]
    voxel = ",".join(map(str, index))
    by_index = ["segment", str(study), "--seed-index", voxel, "--out", str(tmp_path / "b.nii.gz")]
    assert main(by_point) == 0 and main(by_index) == 0
    volumes = re.findall(r"volume: ([\d.]+)", capsys.readouterr().out)
    assert len(volumes) == 2 and volumes[0] == volumes[1]


def test_classifier_errors_name_the_command_line_flags(capsys, tmp_path):
    from tests.test_classify import _cohort

    _cohort(n_imt=3, n_other=20, p=5).to_csv(tmp_path / "f.csv", index=False)
    assert main(["evaluate", str(tmp_path / "f.csv"), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert "--outer" in err and "outer_splits" not in err


def test_evaluate_reports_progress_one_line_per_step_in_a_log(capsys, tmp_path):
    """A line per outer fold and per permutation; a permutation reruns all 6 folds, so it counts
    6 of the 18 units the time left is estimated from."""
    from tests.test_classify import _cohort

    _cohort(n_imt=12, n_other=24, p=8, signal=1.0).to_csv(tmp_path / "f.csv", index=False)
    args = ["evaluate", str(tmp_path / "f.csv"), "--out", str(tmp_path / "ev"), "--outer", "3"]
    assert main([*args, "--inner", "3", "--repeats", "2", "--permutations", "2", "--bootstrap", "50"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert len(lines) == 2 * 3 + 2 and lines[0].startswith("[1/18] step fold 1 done; elapsed")
    assert lines[6].startswith("[12/18] step permutation 1 (6 folds) done")
    assert lines[-1].startswith("[18/18] step permutation 2 (6 folds) done") and "about 0s left" in lines[-1]
