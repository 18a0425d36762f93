"""The IMT classifier: leakage guard, real signal, grouped CV, ComBat, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radimt.classify import (
    ClassifierError,
    ModelConfig,
    _cv,
    evaluate,
    load_model,
    load_table,
    model_card,
    predict,
    save_model,
    train,
)
from radimt.harmonize import ComBat

FAST = ModelConfig(repeats=1, n_permutations=5, n_bootstrap=300, inner_splits=3)


def _cohort(
    seed: int = 0, n_imt: int = 30, n_other: int = 60, p: int = 120, signal: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_imt + n_other
    labels = np.array(["IMT"] * n_imt + ["carcinoma"] * n_other)
    frame = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i:03d}" for i in range(p)])
    frame["f000"] += signal * (labels == "IMT")
    frame["f001"] -= 0.7 * signal * (labels == "IMT")
    frame.insert(0, "study_id", [f"s{i}" for i in range(n)])
    frame.insert(1, "lesion_id", "1")
    frame.insert(2, "label", labels)
    return frame


@pytest.mark.slow
def test_random_labels_give_chance_and_selecting_first_inflates():
    frame = _cohort(seed=1)
    frame["label"] = np.random.default_rng(2).permutation(frame["label"].to_numpy())
    honest = evaluate(load_table(frame, FAST), FAST)["metrics"]
    assert honest["roc_auc_ci_low"] <= 0.5 <= honest["roc_auc_ci_high"]
    assert honest["permutation_p_value"] > 0.05
    # The classic mistake, on purpose: choose features on all cases, then cross-validate.
    from sklearn.feature_selection import SelectKBest, f_classif

    features = frame.filter(like="f").to_numpy()
    best = SelectKBest(f_classif, k=10).fit(features, frame["label"] == "IMT").get_support()
    leaky = frame[["study_id", "lesion_id", "label", *frame.filter(like="f").columns[best]]]
    inflated = evaluate(load_table(leaky, FAST), FAST)["metrics"]
    assert inflated["roc_auc"] > honest["roc_auc"] + 0.15 and inflated["roc_auc_ci_low"] > 0.5


@pytest.mark.slow
def test_real_signal_is_found_and_reproducible():
    frame = _cohort(seed=3, signal=1.5)
    config = ModelConfig(repeats=2, n_permutations=0, n_bootstrap=200, inner_splits=3)
    first = evaluate(load_table(frame, config), config)
    second = evaluate(load_table(frame, config), config)
    assert first["metrics"]["roc_auc"] > 0.8
    assert first["metrics"] == second["metrics"]
    assert list(first["selection_frequency"])[:2] == ["f000", "f001"]
    for key in ("pr_auc", "balanced_accuracy", "sensitivity", "specificity", "brier", "calibration_slope"):
        assert np.isfinite(first["metrics"][key])


@pytest.mark.slow
def test_grouped_cv_never_splits_a_patient():
    frame = _cohort(seed=4, signal=1.0)
    frame["group"] = [f"p{i // 2}" for i in range(len(frame))]  # two lesions per patient
    frame["label"] = [frame["label"][2 * (i // 2)] for i in range(len(frame))]
    data = load_table(frame, FAST)
    assert data.groups is not None
    for seed in range(3):
        for train_idx, test_idx in _cv(FAST, 5, data.groups, seed).split(data.X, data.y, data.groups):
            assert not set(data.groups[train_idx]) & set(data.groups[test_idx])
    result = evaluate(data, ModelConfig(repeats=1, n_permutations=3, n_bootstrap=100, inner_splits=3))
    assert result["grouped"]


def test_combat_removes_a_site_effect_learned_on_training_rows_only():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(80, 6))
    site = np.repeat([0.0, 1.0], 40)
    shifted = values + np.where(site[:, None] == 1, 3.0, 0.0)
    shifted[site == 1] *= 2.0
    combat = ComBat().fit(np.column_stack([shifted[::2], site[::2]]))
    harmonised = combat.transform(np.column_stack([shifted[1::2], site[1::2]]))
    test_site = site[1::2]
    gap_before = abs(shifted[1::2][test_site == 1].mean() - shifted[1::2][test_site == 0].mean())
    gap_after = abs(harmonised[test_site == 1].mean() - harmonised[test_site == 0].mean())
    assert gap_after < 0.2 * gap_before


def test_model_round_trip_predict_and_refusals(tmp_path):
    frame = _cohort(seed=6, signal=1.5)
    config = ModelConfig(inner_splits=3)
    data = load_table(frame, config)
    model = train(data, config)
    path = tmp_path / "model.skops"
    save_model(model, path, model_card(data, config, model, None))
    loaded = load_model(path)
    first, second = predict(model, frame), predict(loaded, frame)
    np.testing.assert_allclose(first["probability_IMT"], second["probability_IMT"])
    assert first["probability_IMT"][frame["label"] == "IMT"].mean() > 0.6
    with pytest.raises(ClassifierError, match="missing"):
        predict(loaded, frame.drop(columns=["f000", "f010"]))
    (tmp_path / "tampered.skops").write_bytes(path.read_bytes()[:200])
    with pytest.raises(ClassifierError):
        load_model(tmp_path / "tampered.skops")
    import skops.io as sio

    class Sneaky:
        pass

    sio.dump({"model": Sneaky()}, tmp_path / "unknown.skops")
    with pytest.raises(ClassifierError, match="unknown types"):
        load_model(tmp_path / "unknown.skops")


def test_bad_tables():
    frame = _cohort(seed=7)
    with pytest.raises(ClassifierError, match="one class"):
        load_table(frame.assign(label="IMT"), FAST)
    few = frame.iloc[list(range(3)) + list(range(40, 60))]
    with pytest.raises(ClassifierError, match="outer folds"):
        evaluate(load_table(few, FAST), FAST)
    nan_only = frame[["study_id", "label"]].assign(f=np.nan, g="text")
    with pytest.raises(ClassifierError, match="no numeric feature"):
        load_table(nan_only, FAST)
    with pytest.raises(ClassifierError, match="no 'IMT'"):
        load_table(frame.assign(label=np.where(frame["label"] == "IMT", "x", "y")), FAST)


def test_multiclass_labels():
    frame = _cohort(seed=8, signal=1.5)
    frame.loc[60:, "label"] = "fibroadenoma"
    frame.loc[60:, "f002"] += 2.0
    config = ModelConfig(multiclass=True, repeats=1, n_permutations=0, n_bootstrap=50, inner_splits=3)
    result = evaluate(load_table(frame, config), config)
    assert result["classes"] == ["IMT", "carcinoma", "fibroadenoma"] and result["metrics"]["roc_auc"] > 0.7


@pytest.mark.parametrize(
    ("model", "selector"), [("random_forest", "univariate"), ("gradient_boosting", "l1")]
)
@pytest.mark.slow
def test_other_models_and_selectors(model, selector):
    frame = _cohort(seed=9, signal=1.5, p=30)
    config = ModelConfig(
        model=model, selector=selector, repeats=1, n_permutations=0, n_bootstrap=50, inner_splits=3
    )
    assert evaluate(load_table(frame, config), config)["metrics"]["roc_auc"] > 0.7


def test_preprocessing_is_fitted_once_per_training_set_with_identical_results(monkeypatch):
    """The grid's points and the calibration's folds share the fitted preprocessing (Pipeline
    memory in this process): the correlation filter is fitted once per inner training set and
    once on the outer training set, not once per grid point, and the predictions do not change."""
    import radimt.classify as classify

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(90, 40)), columns=[f"lesion_f{i:02d}" for i in range(40)])
    frame.insert(0, "label", np.where(np.arange(90) % 3 == 0, "IMT", "carcinoma"))
    frame.loc[frame.label == "IMT", "lesion_f00"] += 1.0
    config = classify.ModelConfig(inner_splits=4, n_permutations=0)
    data = classify.load_table(frame, config)
    X, y = data.X.to_numpy(float), data.y
    pipeline, grid = classify.build_pipeline(config)
    train, test = np.arange(70), np.arange(70, 90)
    fits = []
    original = classify.CorrelationFilter.fit
    monkeypatch.setattr(
        classify.CorrelationFilter, "fit", lambda self, X, y=None: fits.append(1) or original(self, X)
    )
    cached = classify._fit_fold(pipeline, grid, X, y, None, train, config, 0)
    assert len(fits) == 4 + 1  # 4 inner training sets, the outer one; grid of 6, calibration of 4
    assert cached.pipeline.memory is None  # the fitted model carries no cache
    fits.clear()
    monkeypatch.setattr(classify, "_FitCache", lambda: None)
    plain = classify._fit_fold(pipeline, grid, X, y, None, train, config, 0)
    assert len(fits) == 4 * 6 + 1 + 4  # without it: every grid point, the refit, the calibration
    np.testing.assert_array_equal(cached.predict_proba(X[test]), plain.predict_proba(X[test]))
