"""A feature table a modeller can trust (issue #25): what would pass silently into a model is
said, in the row, in run.json, in the report and on the console; every manifest row stays in the
table; what the columns mean is written beside it."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from radimt.classify import ModelConfig, load_table
from radimt.pipeline.runner import run_batch
from tests.conftest import REPO, SAMPLE_DICOM


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def wide_bins(tmp_path_factory):
    """The sample studies through a plain pyradiomics parameter file with binWidth 25, a mistake
    for the ADC (10⁻³ mm²/s, 0.5-2.5): its whole ROI falls into one grey level."""
    folder = tmp_path_factory.mktemp("wide_bins")
    params = folder / "params.yaml"
    params.write_text(
        "imageType:\n  Original: {}\nfeatureClass:\n  firstorder:\n  glcm:\n  glszm:\n"
        "setting:\n  binWidth: 25\n  label: 1\n"
    )
    logger = logging.getLogger("radimt.pipeline.runner")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        run_batch(SAMPLE_DICOM / "manifest.csv", params, folder / "out", show_progress=False)
    finally:
        logger.removeHandler(handler)
    return folder / "out", [r.getMessage() for r in records]


def test_a_bin_width_that_leaves_one_grey_level_is_said_everywhere(wide_bins):
    out, messages = wide_bins
    adc = [m for m in messages if m.startswith("adc:")]
    assert len(adc) == 1 and "3 lesion(s) with 1 grey level(s) (bin width 25" in adc[0]
    assert "fewer than 8" in adc[0] and "bin width of about (intensity range / 32)" in adc[0]
    run = json.loads((out / "run.json").read_text())
    [warning] = [w for w in run["warnings"] if w["role"] == "adc"]
    assert warning["lesions"] == 3 and warning["grey_levels"] == "1" and warning["binning"] == "bin width 25"
    rows = _rows(out / "features.csv")
    assert all("adc: 1 grey level(s) (bin width 25)" in r["qc_warnings"] for r in rows)
    assert all(r["adc_original_glcm_Contrast"] in ("0", "") for r in rows)  # what the warning is about
    result = json.loads((out / "lesions" / "imt_case" / "1" / "result.json").read_text())
    assert result["provenance"]["roles"]["adc"]["grey_levels"] == 1
    report = (out / "report.html").read_text()
    assert "Check before modelling" in report and "adc: 3 lesion(s) with 1 grey level(s)" in report


def test_columns_constant_over_the_cohort_are_flagged(wide_bins):
    out, messages = wide_bins
    constant = json.loads((out / "run.json").read_text())["constant_columns"]
    assert "adc_original_glcm_Contrast" in constant and "adc_original_firstorder_Mean" not in constant
    assert not any(c.startswith("kinetic_") for c in constant)
    assert any("feature column(s) hold one value in every lesion" in m for m in messages)


def test_a_sensible_pipeline_raises_no_warning_and_records_what_radimt_did(tmp_path):
    manifest = tmp_path / "m.csv"
    study = SAMPLE_DICOM / "carcinoma_washout"
    manifest.write_text(f"study_id,path,seed_x,seed_y,seed_z\nc,{study},100,-6,4\n")
    run_batch(manifest, REPO / "pipelines" / "breast_mri.yaml", tmp_path / "out", show_progress=False)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["warnings"] == [] and _rows(tmp_path / "out" / "features.csv")[0]["qc_warnings"] == ""
    # kinetics and segmentation as the analysis used them, defaults filled in
    assert run["resolved"]["kinetics"]["persistent_above"] == 10.0
    assert run["resolved"]["segmentation"]["modality"] == "mr"
    assert run["resolved"]["segmentation"]["tolerance"] == 0.5
    # the mr preset: radimt z-scores and resamples itself; the provenance says so
    dce = json.loads((tmp_path / "out" / "lesions" / "c" / "1" / "result.json").read_text())["provenance"][
        "roles"
    ]["dce"]
    assert dce["settings"]["normalize"] is True and dce["settings_given_to_pyradiomics"]["normalize"] is False
    assert dce["radimt_preprocessing"]["normalised"]["scale"] == 100.0
    assert dce["radimt_preprocessing"]["resampled"]["spacing_mm"] == [1.0, 1.0, 1.0]
    assert dce["grey_levels"] >= 8
    log = (tmp_path / "out" / "run.log").read_text().splitlines()
    assert "batch: 1 lesion(s)" in log[0] and "c lesion 1 done" in log[1] and "1 done" in log[-1]


def test_evaluate_and_train_leave_out_failed_and_rejected_rows_and_say_which(tmp_path, capsys):
    from radimt.cli import main

    rng = __import__("numpy").random.default_rng(0)
    n = 40
    frame = pd.DataFrame(
        {
            "study_id": [f"s{i}" for i in range(n)],
            "lesion_id": "1",
            "label": ["IMT" if i % 3 == 0 else "carcinoma" for i in range(n)],
            "status": "done",
            "error": "",
            "review_status": "accepted",
            "kinetic_ser": rng.normal(size=n),
            "adc_median_um2_ms": rng.normal(size=n),
        }
    )
    frame.loc[3, ["status", "error"]] = ["failed", "SeedError: outside"]
    frame.loc[3, ["kinetic_ser", "adc_median_um2_ms"]] = [None, None]
    frame.loc[5, "review_status"] = "rejected"
    frame.loc[7, ["label"]] = [""]  # would be refused as unlabelled, but it failed too
    frame.loc[7, ["status", "error"]] = ["not processed", ""]
    data = load_table(frame, ModelConfig())
    assert len(data.y) == n - 3
    assert [(e["study_id"], e["line"], e["reason"]) for e in data.excluded] == [
        ("s3", "5", "failed: SeedError: outside"),
        ("s5", "7", "rejected in review"),
        ("s7", "9", "not processed"),
    ]
    assert "status" not in data.X and "review_status" not in data.X and "error" not in data.dropped
    table = tmp_path / "features.csv"
    frame.to_csv(table, index=False)
    assert main(["train", str(table), "--out", str(tmp_path / "model.skops")]) == 0
    out = capsys.readouterr().out
    assert "37 cases used; 3 row(s) of the table left out:" in out
    assert "study s3 lesion 1 (line 5): failed: SeedError: outside" in out
    card = json.loads((tmp_path / "model.skops.card.json").read_text())
    assert [e["study_id"] for e in card["rows_excluded"]] == ["s3", "s5", "s7"]


def test_every_column_the_demo_writes_has_a_dictionary_entry(tmp_path):
    """features.dictionary.csv describes every column of features.csv (the demo: MRI, US, both
    mammographic views and CT in one row), and docs/data_dictionary.md is the published one."""
    from radimt.dictionary import UNDESCRIBED, dictionary_markdown

    out = tmp_path / "demo"
    run_batch(SAMPLE_DICOM / "manifest.csv", REPO / "pipelines" / "multimodal.yaml", out, show_progress=False)
    header = next(csv.reader(open(out / "features.csv")))
    entries = _rows(out / "features.dictionary.csv")
    assert [e["column"] for e in entries] == header and len(header) > 800
    undescribed = [e["column"] for e in entries if e["meaning"] in ("", UNDESCRIBED)]
    assert not undescribed, undescribed[:10]
    by_name = {e["column"]: e for e in entries}
    assert by_name["adc_median_um2_ms"]["unit"] == "µm²/ms" and by_name["ct_rim_mean_hu"]["unit"] == "HU"
    assert by_name["dce_original_firstorder_Mean"]["unit"] == "normalised z × 100"  # the mr preset
    assert by_name["adc_original_glcm_JointEntropy"]["ibsi"] == "TU9B (cm.joint.entr)"
    assert by_name["us_lesion_area_mm2"]["role"] == "us" and by_name["mg_cc_lesion_area_mm2"]["unit"] == "mm²"
    # Units in names: every numeric column either names its unit or is a count, ratio or
    # radiomic feature whose unit the dictionary gives.
    assert not [c for c in header if c.startswith(("adc_mean", "adc_median")) and not c.endswith("_um2_ms")]
    assert (REPO / "docs" / "data_dictionary.md").read_text() == dictionary_markdown()


def test_a_column_of_ones_own_is_described_as_carried(tmp_path):
    from radimt.dictionary import dictionary

    [entry] = dictionary(["age"], carried=["age"])
    assert entry.meaning == "carried unchanged from the manifest"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "roles: [dce, adc]\npresets:\n  dce: mr\n  adc: adcc\n",
            r"line 4: presets: adc: unknown preset 'adcc' \(did you mean adc\?\)",
        ),
        (
            "roles: [dce]\nimage_types: [Orignal]\n",
            r"line 2: image_types: .*unknown image type 'Orignal' \(did you mean Original\?\)",
        ),
        (
            "roles: [dce]\npresets:\n  dce: params.yaml\n",
            r"line 3: presets: dce: .*binWidth 0 must be a number above 0",
        ),
        ("roles: [t2]\npresets:\n  t2: 7\n", r"line 3: presets: t2: expected a preset name"),
    ],
)
def test_preset_and_image_type_names_are_checked_when_the_pipeline_is_read(tmp_path, text, message):
    """A typo in a preset's name (adc: adcc) or in an image type, or a parameter file no
    pyradiomics run could use, is refused when the pipeline is read, with its line, not by
    every lesion failing later."""
    from radimt.errors import ConfigError
    from radimt.pipeline.config import load_config

    (tmp_path / "params.yaml").write_text("setting:\n  binWidth: 0\n")
    (tmp_path / "pipeline.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "pipeline.yaml")
