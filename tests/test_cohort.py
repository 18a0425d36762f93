"""The synthetic IMT-versus-mimics cohort end to end: studies -> batch -> nested CV -> model."""

from __future__ import annotations

import csv
import json

import pytest

from radimt.cli import main
from radimt.pipeline.runner import run_batch
from radimt.synth.cohort import write_cohort
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # 72 synthetic studies through the batch, then nested CV


@pytest.fixture(scope="module")
def cohort_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    manifest = write_cohort(root / "studies", n_imt=24, n_mimics=48, seed=1)
    summary = run_batch(
        manifest,
        REPO / "pipelines" / "breast_mri.yaml",
        root / "out",
        workers=2,
        keep_columns=["age", "sex_female"],  # the cohort's clinical columns, declared
    )
    assert summary.done >= 0.9 * summary.total  # low-contrast slow lesions may fail segmentation
    return root / "out" / "features.csv", manifest


def test_cohort_manifest_has_labels_covariates_and_overlap(cohort_features):
    _, manifest = cohort_features
    rows = list(csv.DictReader(open(manifest)))
    labels = {r["label"] for r in rows}
    assert "IMT" in labels and "carcinoma" in labels and len(rows) == 72
    ages = [int(r["age"]) for r in rows if r["label"] == "IMT"]
    assert 13 <= min(ages) and max(ages) <= 86
    assert {r["site"] for r in rows} == {"A", "B"}


def test_imt_versus_mimics_is_well_above_chance_and_reproducible(cohort_features, tmp_path):
    features, _ = cohort_features
    options = ["--repeats", "2", "--permutations", "9", "--bootstrap", "300", "--inner", "3", "--jobs", "2"]
    assert main(["evaluate", str(features), "--out", str(tmp_path / "a"), *options]) == 0
    assert main(["evaluate", str(features), "--out", str(tmp_path / "b"), *options]) == 0
    first = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    second = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert first["metrics"] == second["metrics"]
    assert first["metrics"]["roc_auc"] > 0.7 and first["metrics"]["roc_auc_ci_low"] > 0.5
    assert first["metrics"]["permutation_p_value"] <= 0.1
    html = (tmp_path / "a" / "evaluation.html").read_text()
    # ROC, calibration, decision curve, stability
    assert html.count("data:image/png;base64,") == 4 and "alt='decision_curve'" in html
    assert (tmp_path / "a" / "evaluation.md").read_text().startswith("# radimt classifier evaluation")


def test_train_then_predict_from_the_command_line(cohort_features, tmp_path):
    features, _ = cohort_features
    model = tmp_path / "imt.skops"
    assert main(["train", str(features), "--out", str(model), "--inner", "3"]) == 0
    card = json.loads((tmp_path / "imt.skops.card.json").read_text())
    assert (
        card["classes"] == ["not IMT", "IMT"]
        and card["features_used"]
        and "not a diagnostic" in card["warning"]
    )
    assert main(["predict", str(model), str(features), "--out", str(tmp_path / "pred.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "pred.csv")))
    assert {"study_id", "probability_IMT", "probability_not_IMT", "prediction", "threshold"} <= set(rows[0])
    assert not [c for c in rows[0] if " " in c]  # column names without spaces
    assert {r["prediction"] for r in rows} <= {"IMT", "not IMT"}
