"""The classifier's evaluation report: JSON of the numbers, Markdown and a self-contained HTML
page with the ROC curve, the calibration plot and the feature-selection stability."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from radimt.classify.data import excluded_lines  # noqa: E402
from radimt.classify.validation import Evaluation  # noqa: E402
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


def figures(result: Evaluation) -> dict[str, str]:
    """ROC, calibration and feature-stability plots as base64 PNGs (binary problems)."""
    y, proba = np.asarray(result.y), np.asarray(result.probabilities)
    out = {}
    if proba.shape[1] == 2:
        p = proba[:, 1]
        fpr, tpr, _ = roc_curve(y, p)
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(fpr, tpr, color="black", label=f"AUC {result.metrics['roc_auc']:.2f}")
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
    curve = result.decision_curve
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
    top = list(result.selection_frequency.items())[:15]
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


@dataclass
class _Section:
    """One part of the report, rendered alike in Markdown and HTML."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    header: list[str] | None = None
    rows: list[list[str]] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)


def _sections(result: Evaluation) -> list[_Section]:
    """The evaluation laid out as TRIPOD+AI / CLEAR ask: participants, predictors and missing
    data, the procedure, performance (per repeat and pooled, with CIs), calibration, clinical
    utility, feature stability."""
    config = result.config
    grouped = result.grouped
    unit = "patients" if grouped else "lesions"
    cohort = result.cohort
    by_site = sorted({r["site"] for r in cohort} - {"all"})
    participants = _Section(
        "Participants",
        [
            f"{result.n_cases} cases ({result.n_patients} independent units: "
            f"{unit}). Outcome: {' vs '.join(result.classes[::-1])}."
        ],
        ["site", "class", "cases", "patients"] if cohort else None,
        [
            [r["site"], r["class"], str(r["cases"]), str(r["patients"])]
            for r in cohort
            if by_site or r["site"] == "all"
        ],
        bullets=[f"left out: {line}" for line in excluded_lines(result.excluded_rows)],
    )
    if result.excluded_rows:
        participants.paragraphs.append(
            f"{len(result.excluded_rows)} row(s) of the table were left out (listed below): lesions "
            "whose analysis failed or was not run, or that a reviewer rejected."
        )
    missing = result.missing_data
    by_predictor = missing.get("by_predictor", {})
    columns = [f"{c}: left out ({why})" for c, why in result.dropped_columns.items()] + [
        f"{c}: {how}" for c, how in result.converted_columns.items()
    ]
    predictors = _Section(
        "Predictors and missing data",
        [
            f"{result.n_features} candidate predictors. "
            + (
                f"{missing['complete_cases']} of {missing['cases']} cases complete; missing values are "
                "imputed by the training folds' median inside each fold."
                if missing
                else ""
            )
        ],
        ["predictor", "missing", "share"] if by_predictor else None,
        [[c, str(n), f"{n / max(missing['cases'], 1):.0%}"] for c, n in list(by_predictor.items())[:30]],
        columns,
    )
    procedure = _Section(
        "Model development and validation",
        [
            f"Nested cross-validation: {config['outer_splits']} outer folds x {config['repeats']} repeats"
            f"{' grouped by patient' if grouped else ''}, "
            f"{result.inner_splits_used} inner folds (hyper-parameters); "
            f"model {config['model']}, selector {config['selector']} (up to {config['n_features']}), "
            f"correlation filter |r| > {config['correlation_threshold']}"
            + (
                f", ComBat harmonisation by {config['harmonize']} in each training fold"
                if config["harmonize"]
                else ""
            )
            + (
                "; probabilities recalibrated in every fold by Platt scaling on the inner folds' scores"
                if config.get("calibration", "platt") == "platt"
                else "; outputs are uncalibrated scores"
            )
            + f". 95% CIs by bootstrap of {unit} ({config['n_bootstrap']} resamples); the headline ROC AUC's "
            "is each repeat's bootstrap interval averaged over repeats (the repeats test the same "
            f"{unit}, so their mean is not bootstrapped as if it were more precise). The permutation test "
            f"reruns this whole procedure {config['n_permutations']} times on labels shuffled between "
            f"{unit}. Threshold metrics, PR AUC, Brier score and calibration use the probabilities "
            "averaged over repeats.",
            *[f"Note: {n}" for n in result.notes],
        ],
    )
    performance = _Section(
        "Performance",
        [],
        ["metric", "value"],
        [[t, v] for t, v in _metric_lines(result.metrics)],
    )
    per_repeat = result.per_repeat_auc
    repeats = _Section(
        "ROC AUC per repeat (out-of-fold, each repeat's own split)",
        [],
        ["repeat", "ROC AUC"] if per_repeat else None,
        [[str(k + 1), f"{a:.3f}"] for k, a in enumerate(per_repeat)],
    )
    curve = result.decision_curve
    utility = _Section(
        "Decision curve (clinical utility)",
        ["Net benefit of acting on the model and on everyone; acting on no one is 0."] if curve else [],
        ["threshold", "model", "treat all"] if curve else None,
        [
            [f"{r['threshold']:.2f}", f"{r['net_benefit_model']:.3f}", f"{r['net_benefit_all']:.3f}"]
            for r in curve
        ],
    )
    stability = _Section(
        "Feature stability (share of outer folds selecting each feature)",
        [],
        ["feature", "share"],
        [[name, f"{share:.0%}"] for name, share in list(result.selection_frequency.items())[:15]],
    )
    return [participants, predictors, procedure, performance, repeats, utility, stability]


def _markdown(sections: list[_Section]) -> str:
    lines = ["# radimt classifier evaluation", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.header:
            lines += ["| " + " | ".join(section.header) + " |", "|" + " --- |" * len(section.header)]
            lines += ["| " + " | ".join(row) + " |" for row in section.rows] + [""]
        if section.bullets:
            lines += [f"- {b}" for b in section.bullets] + [""]
    lines.append("Synthetic cohorts give synthetic results; this is not a diagnostic device.")
    return "\n".join(lines) + "\n"


def _html(sections: list[_Section], images: str) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>radimt classifier evaluation</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em}"
        "td,th{border:1px solid #ccc;padding:3px 8px}table{border-collapse:collapse}"
        "img{height:300px;margin:8px}"
        "</style></head><body><h1>Classifier evaluation</h1>"
    ]
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        if section.header:
            head = "".join(f"<th>{escape(h)}</th>" for h in section.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in section.rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{escape(b)}</li>" for b in section.bullets) + "</ul>")
        if section.title == "Performance":
            parts.append(images)
    parts.append("<p>Synthetic cohorts give synthetic results; not a diagnostic device.</p></body></html>")
    return "".join(parts)


def write_evaluation(result: Evaluation, out: Path) -> None:
    """``evaluation.json``, ``evaluation.md`` and ``evaluation.html`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    with atomic_path(out / "evaluation.json") as tmp, open(tmp, "w") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
    sections = _sections(result)
    with atomic_path(out / "evaluation.md") as tmp:
        Path(tmp).write_text(_markdown(sections))
    images = "".join(f"<img alt='{k}' src='data:image/png;base64,{v}'>" for k, v in figures(result).items())
    with atomic_path(out / "evaluation.html") as tmp:
        Path(tmp).write_text(_html(sections, images), encoding="utf-8")
