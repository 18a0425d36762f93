"""The IMT classifier: leakage guard, real signal, grouped CV, ComBat, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radimt.classify import (
    ClassifierError,
    ComBat,
    ModelConfig,
    evaluate,
    load_model,
    load_table,
    model_card,
    predict,
    save_model,
    train,
)
from radimt.classify.model import cv_splitter, inner_search

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
    honest = evaluate(load_table(frame, FAST), FAST).metrics
    assert honest["roc_auc_ci_low"] <= 0.5 <= honest["roc_auc_ci_high"]
    assert honest["permutation_p_value"] > 0.05
    # The classic mistake, on purpose: choose features on all cases, then cross-validate.
    from sklearn.feature_selection import SelectKBest, f_classif

    features = frame.filter(like="f").to_numpy()
    best = SelectKBest(f_classif, k=10).fit(features, frame["label"] == "IMT").get_support()
    leaky = frame[["study_id", "lesion_id", "label", *frame.filter(like="f").columns[best]]]
    inflated = evaluate(load_table(leaky, FAST), FAST).metrics
    assert inflated["roc_auc"] > honest["roc_auc"] + 0.15 and inflated["roc_auc_ci_low"] > 0.5


@pytest.mark.slow
def test_real_signal_is_found_and_reproducible():
    frame = _cohort(seed=3, signal=1.5)
    config = ModelConfig(repeats=2, n_permutations=0, n_bootstrap=200, inner_splits=3)
    first = evaluate(load_table(frame, config), config)
    second = evaluate(load_table(frame, config), config)
    assert first.metrics["roc_auc"] > 0.8
    assert first.metrics == second.metrics
    assert list(first.selection_frequency)[:2] == ["f000", "f001"]
    for key in ("pr_auc", "balanced_accuracy", "sensitivity", "specificity", "brier", "calibration_slope"):
        assert np.isfinite(first.metrics[key])


@pytest.mark.slow
def test_grouped_cv_never_splits_a_patient():
    frame = _cohort(seed=4, signal=1.0)
    frame["group"] = [f"p{i // 2}" for i in range(len(frame))]  # two lesions per patient
    frame["label"] = [frame["label"][2 * (i // 2)] for i in range(len(frame))]
    data = load_table(frame, FAST)
    assert data.groups is not None
    for seed in range(3):
        for train_idx, test_idx in cv_splitter(FAST, 5, data.groups, seed).split(data.X, data.y, data.groups):
            assert not set(data.groups[train_idx]) & set(data.groups[test_idx])
    result = evaluate(data, ModelConfig(repeats=1, n_permutations=3, n_bootstrap=100, inner_splits=3))
    assert result.grouped


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
    assert result.classes == ["IMT", "carcinoma", "fibroadenoma"] and result.metrics["roc_auc"] > 0.7


@pytest.mark.parametrize(
    ("model", "selector"), [("random_forest", "univariate"), ("gradient_boosting", "l1")]
)
@pytest.mark.slow
def test_other_models_and_selectors(model, selector):
    frame = _cohort(seed=9, signal=1.5, p=30)
    config = ModelConfig(
        model=model, selector=selector, repeats=1, n_permutations=0, n_bootstrap=50, inner_splits=3
    )
    assert evaluate(load_table(frame, config), config).metrics["roc_auc"] > 0.7


def _search_data(kind: str):
    """Tables for the inner-search checks: grouped binary, plain binary, three classes."""
    rng = np.random.default_rng({"grouped": 3, "binary": 4, "multiclass": 5}[kind])
    n = 90
    frame = pd.DataFrame(rng.normal(size=(n, 40)), columns=[f"lesion_f{i:02d}" for i in range(40)])
    frame.loc[np.arange(0, n, 3), "lesion_f00"] += 1.0
    frame.insert(0, "label", np.where(np.arange(n) % 3 == 0, "IMT", "carcinoma"))
    if kind == "multiclass":
        frame.loc[np.arange(n) % 3 == 1, "label"] = "fibroadenoma"
        frame.loc[np.arange(n) % 3 == 1, "lesion_f01"] += 1.0
    if kind == "grouped":
        frame.insert(0, "group", [f"p{i // 3 if i % 3 else i}" for i in range(n)])
    return frame


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("grouped", "logistic"),
        ("binary", "logistic"),
        ("multiclass", "logistic"),
        ("binary", "random_forest"),
    ],
)
def test_inner_search_scores_and_chooses_as_grid_search_cv_and_fits_each_setting_once(
    kind, model, monkeypatch
):
    """The inner search gives GridSearchCV's mean AUC for every candidate, its choice wherever
    the best is unique (equal means go to the first candidate, the stronger penalty or fewer
    features), and the chosen point's held-out probabilities equal cross_val_predict's; the
    preprocessing the grid does not touch is fitted once per inner training set, the selector
    once per k, and the calibration fits nothing again."""
    from sklearn.base import clone
    from sklearn.feature_selection import SelectKBest
    from sklearn.model_selection import GridSearchCV, ParameterGrid, cross_val_predict

    import radimt.classify as classify

    multiclass = kind == "multiclass"
    config = classify.ModelConfig(inner_splits=4, n_permutations=0, model=model, multiclass=multiclass)
    data = classify.load_table(_search_data(kind), config)
    X, y, groups = data.X.to_numpy(float), data.y, data.groups
    pipeline, grid = classify.build_pipeline(config)
    grid["select__k"] = [5, 10]
    candidates = list(ParameterGrid(grid))
    train = np.arange(72)
    inner_groups = groups[train] if groups is not None else None
    inner = cv_splitter(config, 4, inner_groups, 0)
    splits = list(inner.split(X[train], y[train], inner_groups))
    fits: list[str] = []
    for name, cls in (("decorrelate", classify.CorrelationFilter), ("select", SelectKBest)):

        def counted(self, X, y=None, _fit=cls.fit, _name=name):  # noqa: N803
            fits.append(_name)
            return _fit(self, X, y)

        monkeypatch.setattr(cls, "fit", counted)
    chosen, means, held_out = inner_search(pipeline, grid, X[train], y[train], splits)
    assert (fits.count("decorrelate"), fits.count("select")) == (4, 4 * 2)
    monkeypatch.undo()

    reference = GridSearchCV(
        pipeline, grid, cv=splits, scoring="roc_auc" if kind != "multiclass" else "roc_auc_ovr"
    ).fit(X[train], y[train])
    np.testing.assert_allclose(means, reference.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    best = np.round(means, 12) == np.round(means, 12).max()
    assert chosen == candidates[int(np.flatnonzero(best)[0])]
    if best.sum() == 1:
        assert chosen == reference.best_params_
    if kind != "multiclass":
        expected = cross_val_predict(
            clone(pipeline).set_params(**chosen), X[train], y[train], cv=splits, method="predict_proba"
        )[:, 1]
        np.testing.assert_allclose(held_out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.95, 0.99])
def test_correlation_filter_keeps_what_the_pairwise_definition_keeps(threshold):
    """Greedy in column order on |Pearson r| from np.corrcoef, pair by pair: clusters of
    correlated columns, negative correlation, a constant column (correlates with nothing)."""
    from radimt.classify import CorrelationFilter

    rng = np.random.default_rng(11)
    base = rng.normal(size=(80, 6))
    columns = [base[:, k % 6] + rng.uniform(0.05, 1.2) * rng.normal(size=80) for k in range(60)]
    columns[7] = -2.0 * columns[3] + 0.01 * rng.normal(size=80)
    columns[9] = np.full(80, 4.2)
    X = np.column_stack(columns)
    r = np.abs(np.nan_to_num(np.corrcoef(X, rowvar=False)))
    keep = np.ones(X.shape[1], bool)
    for i in range(X.shape[1]):
        for j in range(i + 1, X.shape[1]):
            if keep[i] and r[i, j] > threshold:
                keep[j] = False
    support = CorrelationFilter(threshold).fit(X).get_support()
    np.testing.assert_array_equal(support, keep)
    assert 0 < keep.sum() < X.shape[1]  # something is dropped, something kept, at every threshold
