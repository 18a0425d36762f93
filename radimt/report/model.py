"""The classifier's evaluation report: JSON of the numbers, Markdown and a self-contained HTML
page with the ROC curve, the calibration plot and the feature-selection stability."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from radimt.io.atomic import atomic_path  # noqa: E402

METRIC_NAMES = (
    ("roc_auc", "ROC AUC, mean of the per-repeat AUCs (headline)"),
    ("roc_auc_per_repeat_sd", "ROC AUC, SD over repeats"),
    ("roc_auc_pooled", "ROC AUC of the probabilities averaged over repeats (an ensemble)"),
    ("pr_auc", "PR AUC"),
    ("balanced_accuracy", "balanced accuracy"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("brier", "Brier score"),
    ("calibration_slope", "calibration slope"),
    ("calibration_intercept", "calibration intercept"),
    ("permutation_p_value", "permutation p-value"),
)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figures(result: dict[str, Any]) -> dict[str, str]:
    """ROC, calibration and feature-stability plots as base64 PNGs (binary problems)."""
    y, proba = np.asarray(result["y"]), np.asarray(result["probabilities"])
    out = {}
    if proba.shape[1] == 2:
        p = proba[:, 1]
        fpr, tpr, _ = roc_curve(y, p)
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(fpr, tpr, color="black", label=f"AUC {result['metrics']['roc_auc']:.2f}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title("ROC (out-of-fold, nested CV)")
        ax.legend(loc="lower right")
        fig.tight_layout()
        out["roc"] = _png(fig)
        bins = np.linspace(0, 1, 6)
        which = np.clip(np.digitize(p, bins) - 1, 0, 4)
        mean_p = [p[which == b].mean() for b in range(5) if np.any(which == b)]
        observed = [y[which == b].mean() for b in range(5) if np.any(which == b)]
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.plot(mean_p, observed, "o-", color="black")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_title("Calibration")
        fig.tight_layout()
        out["calibration"] = _png(fig)
    curve = result.get("decision_curve") or []
    if curve:
        t = [r["threshold"] for r in curve]
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(t, [r["net_benefit_model"] for r in curve], "o-", color="black", label="model")
        ax.plot(t, [r["net_benefit_all"] for r in curve], "--", color="grey", label="treat all")
        ax.axhline(0, color="grey", lw=0.8, label="treat none")
        ax.set_ylim(-0.05, max(0.05, max(r["net_benefit_model"] for r in curve) * 1.2))
        ax.set_xlabel("threshold probability")
        ax.set_ylabel("net benefit")
        ax.set_title("Decision curve")
        ax.legend(loc="upper right")
        fig.tight_layout()
        out["decision_curve"] = _png(fig)
    top = list(result["selection_frequency"].items())[:15]
    if top:
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        ax.barh([name[-45:] for name, _ in top][::-1], [f for _, f in top][::-1], color="grey")
        ax.set_xlabel("share of outer folds selecting the feature")
        ax.set_xlim(0, 1)
        fig.tight_layout()
        out["stability"] = _png(fig)
    return out


def _metric_lines(metrics: dict[str, float]) -> list[tuple[str, str]]:
    lines = []
    for key, title in METRIC_NAMES:
        if key not in metrics:
            continue
        text = f"{metrics[key]:.3f}"
        if f"{key}_ci_low" in metrics:
            text += f" (95% CI {metrics[key + '_ci_low']:.3f}–{metrics[key + '_ci_high']:.3f})"
        lines.append((title, text))
    return lines


def write_evaluation(result: dict[str, Any], out: Path) -> None:
    """``evaluation.json``, ``evaluation.md`` and ``evaluation.html`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k not in ("probabilities", "y")}
    with atomic_path(out / "evaluation.json") as tmp, open(tmp, "w") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
    config = result["config"]
    counts = ", ".join(f"{k}: {v}" for k, v in result["class_counts"].items())
    grouped = " grouped by patient" if result["grouped"] else ""
    unit = "patients" if result["grouped"] else "lesions"
    design = (
        f"{result['n_cases']} cases ({counts}; {result.get('n_patients', result['n_cases'])} "
        f"independent units), {result['n_features']} features. Nested cross-validation: "
        f"{config['outer_splits']} outer folds x {config['repeats']} repeats{grouped}, "
        f"{result.get('inner_splits_used', config['inner_splits'])} inner folds; model {config['model']}, "
        f"selector {config['selector']} (up to {config['n_features']}). 95% CIs by bootstrap of "
        f"{unit} ({config['n_bootstrap']} resamples); the permutation test reruns this whole "
        f"procedure {config['n_permutations']} times on shuffled labels. Threshold metrics, PR AUC, "
        "Brier score and calibration use the probabilities averaged over repeats."
    )
    notes = [f"Note: {n}" for n in result.get("notes", [])]
    columns = [f"- {c}: left out ({why})" for c, why in result.get("dropped_columns", {}).items()] + [
        f"- {c}: {how}" for c, how in result.get("converted_columns", {}).items()
    ]
    lines = [
        "# radimt classifier evaluation",
        "",
        design,
        "",
        *notes,
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {t} | {v} |" for t, v in _metric_lines(result["metrics"])],
        "",
        "Features selected most often across outer folds:",
        "",
        *[f"- {name}: {share:.0%}" for name, share in list(result["selection_frequency"].items())[:15]],
        "",
        *(["Columns not used as given:", "", *columns, ""] if columns else []),
        *(
            [
                "Decision curve (net benefit of acting on the model, on everyone; on no one it is 0):",
                "",
                "| threshold | model | treat all |",
                "| --- | --- | --- |",
                *[
                    f"| {r['threshold']:.2f} | {r['net_benefit_model']:.3f} | {r['net_benefit_all']:.3f} |"
                    for r in result.get("decision_curve", [])
                ],
                "",
            ]
            if result.get("decision_curve")
            else []
        ),
        "Synthetic cohorts give synthetic results; this is not a diagnostic device.",
    ]
    with atomic_path(out / "evaluation.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    images = "".join(f"<img alt='{k}' src='data:image/png;base64,{v}'>" for k, v in figures(result).items())
    rows = "".join(f"<tr><td>{t}</td><td>{v}</td></tr>" for t, v in _metric_lines(result["metrics"]))
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>radimt classifier evaluation</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em}"
        "td{border:1px solid #ccc;padding:3px 8px}table{border-collapse:collapse}img{height:300px;margin:8px}"
        "</style></head><body>"
        f"<h1>Classifier evaluation</h1><p>{lines[2]}</p><table>{rows}</table>{images}"
        "<h2>Feature stability</h2><ul>"
        + "".join(f"<li>{n}: {s:.0%}</li>" for n, s in list(result["selection_frequency"].items())[:15])
        + "</ul><p>Synthetic cohorts give synthetic results; not a diagnostic device.</p></body></html>"
    )
    with atomic_path(out / "evaluation.html") as tmp:
        Path(tmp).write_text(body, encoding="utf-8")
