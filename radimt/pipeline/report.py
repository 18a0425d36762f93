"""The batch QC report: one self-contained HTML page (figures embedded) to check every lesion."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radimt.dictionary import describe
from radimt.io.atomic import atomic_path
from radimt.pipeline.config import PipelineConfig
from radimt.pipeline.manifest import LesionTask, lesion_dir
from radimt.pipeline.quality import TableQuality
from radimt.pipeline.record import LesionRecord

#: The summary table's columns: title and how to make its cell from the row.
SUMMARY = (
    "study",
    "lesion",
    "label",
    "size",
    "kinetics",
    "SER",
    "ADC median (µm²/ms)",
    "other modalities",
    "status",
)

#: The numbers listed under each lesion, in this order, when the row has them; units from the
#: data dictionary.
LESION_NUMBERS = (
    "lesion_longest_diameter_mm",
    "lesion_longest_diameter_px",
    "lesion_volume_cm3",
    "lesion_area_mm2",
    "lesion_area_px2",
    "lesion_perimeter_mm",
    "lesion_perimeter_px",
    "lesion_circularity",
    "kinetic_initial_enhancement_pct",
    "kinetic_initial_phase",
    "kinetic_delayed_phase",
    "kinetic_curve_type",
    "kinetic_suspicious_curve_type",
    "kinetic_ser",
    "kinetic_time_to_peak_s",
    "adc_median_um2_ms",
    "adc_min_region_mean_um2_ms",
    "ct_rim_core_ratio",
)
_OTHER_SIZE = re.compile(
    r"^(?P<key>[a-z_]+?)_lesion_(?P<name>longest_diameter_(mm|px)|area_(mm2|px2)|volume_cm3)$"
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;font-size:16px;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;width:100%}
td,th{border:1px solid #ccc;padding:4px 7px;font-size:14px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.quality{background:#fff4d6;border:1px solid #e6c35c;padding:.4em .8em}
.review{background:#e9f2fb;border:1px solid #9cc0e6;padding:.4em .8em}
.failed{background:#fde8e8}.lesion{border-top:2px solid #ddd;padding:.6em 0}
.figures{display:flex;flex-wrap:wrap;gap:8px}.figures img{height:300px;max-width:100%;border:1px solid #eee}
.numbers td{font-size:15px}.note{color:#555;font-size:14px}
.status{max-width:16em;overflow-wrap:anywhere}.id{overflow-wrap:anywhere;max-width:12em}
"""

#: In report.html: when the page is served by ``radimt review`` (its URL carries the token), a link
#: to the review page; opened as a file, the script does nothing.
_REVIEW_LINK = """<script>
(function(){var t=new URLSearchParams(location.search).get("token");
if(location.protocol.indexOf("http")===0&&t){var a=document.getElementById("reviewlink");
a.innerHTML='<a href="/?token='+encodeURIComponent(t)+'">Open the review page</a>: '+
'accept, reject or re-seed every lesion.';}})();
</script>"""


def _number(row: dict[str, Any], key: str) -> str:
    """A row's value as text with the unit its column has ('' when absent)."""
    value = row.get(key)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    entry = describe(key)
    unit = f" {entry.unit}" if entry and entry.unit else ""
    if isinstance(value, float):
        text = f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    else:
        text = str(value)
    return html.escape(text + unit)


def _size(row: dict[str, Any]) -> str:
    sizes = ("longest_diameter_mm", "longest_diameter_px", "volume_cm3", "area_mm2", "area_px2")
    parts = [_number(row, f"lesion_{k}") for k in sizes]
    return "<br>".join(p for p in parts if p)


def _kinetics(row: dict[str, Any]) -> str:
    if not row.get("kinetic_curve_type"):
        return ""
    worst = row.get("kinetic_suspicious_curve_type", "")
    phases = f"{row.get('kinetic_initial_phase', '')} / {row.get('kinetic_delayed_phase', '')}"
    return html.escape(f"{phases}: type {row['kinetic_curve_type']} (worst {worst})")


def _other_modalities(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Each other modality's name and size (``("US", "12.4 mm, 113 mm²")``)."""
    sizes: dict[str, list[str]] = {}
    for key in row:
        match = _OTHER_SIZE.match(key)
        if match and _number(row, key):
            sizes.setdefault(match["key"], []).append(_number(row, key))
    return [(key.replace("_", " ").upper(), ", ".join(values)) for key, values in sizes.items()]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _meaning(key: str) -> str:
    """A column's name in words for the lesion's table (``longest diameter``)."""
    words = {
        "lesion_longest_diameter_mm": "longest diameter",
        "lesion_longest_diameter_px": "longest diameter",
        "lesion_volume_cm3": "volume",
        "lesion_area_mm2": "area (2D)",
        "lesion_area_px2": "area (2D)",
        "lesion_perimeter_mm": "perimeter (2D)",
        "lesion_perimeter_px": "perimeter (2D)",
        "lesion_circularity": "circularity (2D)",
        "kinetic_initial_enhancement_pct": "initial enhancement",
        "kinetic_initial_phase": "initial phase",
        "kinetic_delayed_phase": "delayed phase",
        "kinetic_curve_type": "curve type (whole lesion)",
        "kinetic_suspicious_curve_type": "curve type (most suspicious region)",
        "kinetic_ser": "signal enhancement ratio",
        "kinetic_time_to_peak_s": "time to peak",
        "adc_median_um2_ms": "ADC median",
        "adc_min_region_mean_um2_ms": "ADC darkest region",
        "ct_rim_core_ratio": "CT rim / core",
    }
    return words.get(key, key)


def write_report(
    path: Path,
    config: PipelineConfig,
    entries: Sequence[tuple[LesionTask, LesionRecord | None, str | None]],
    out: Path,
    quality: TableQuality | None = None,
) -> None:
    """Write ``report.html``: summary table, then per lesion its figures and key numbers."""

    done = [(task, result, reason) for task, result, reason in entries if result is not None]
    failed = [e for e in entries if e[1] is None]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>radimt report: {html.escape(config.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>radimt: {html.escape(config.name)}</h1>",
        f"<p>{len(entries)} lesions: {len(done)} done, {len(failed)} failed. "
        f"Generated {_dt.date.today().isoformat()}. For research; not a diagnostic device.</p>",
        *[f"<p class='note'>Filters: {html.escape(note)}.</p>" for note in config.filter_overrides()],
        *(
            ["<div class='quality'><b>Check before modelling</b><ul>"]
            + [f"<li>{html.escape(line)}</li>" for line in quality.lines()]
            + ["</ul></div>"]
            if quality is not None and quality.lines()
            else []
        ),
        "<p class='review' id='reviewlink'>Check every lesion in the browser: <code>radimt review "
        f"{html.escape(str(out))}</code> (accept, reject or re-seed; written back to the run).</p>",
        "<table><tr>",
        *[f"<th>{html.escape(title)}</th>" for title in SUMMARY],
        "</tr>",
    ]
    for task, result, reason in entries:
        row = result.row if result else {}
        css = " class='failed'" if result is None else ""
        status = "done" if result else html.escape(reason or "")
        anchor = f"{html.escape(task.safe_study)}-{html.escape(task.safe_lesion)}"
        cells = [
            f"<a href='#{anchor}'>{html.escape(task.study_id)}</a>",
            html.escape(task.lesion_id),
            html.escape(task.label),
            _size(row),
            _kinetics(row),
            _number(row, "kinetic_ser"),
            _number(row, "adc_median_um2_ms").replace(" µm²/ms", ""),
            "<br>".join(f"{name} {size}" for name, size in _other_modalities(row)),
            status,
        ]
        classes = ["id", "", "", "num", "", "num", "num", "", "status"]
        parts.append(
            f"<tr{css}>"
            + "".join(
                f"<td class='{c}'>{v}</td>" if c else f"<td>{v}</td>"
                for c, v in zip(classes, cells, strict=True)
            )
            + "</tr>"
        )
    parts.append("</table>")
    if failed:
        parts.append("<h2>Failed</h2><ul>")
        for t, _, r in failed:
            reason = html.escape(r or "")
            parts.append(
                f"<li><b>{html.escape(t.study_id)}</b> lesion {html.escape(t.lesion_id)}: {reason}</li>"
            )
        parts.append("</ul>")
    parts.append("<h2>Lesions</h2>")
    for task, result, _ in done:
        folder = lesion_dir(out, task)
        anchor = f"{html.escape(task.safe_study)}-{html.escape(task.safe_lesion)}"
        names = [*result.figures, *sorted(p.name for p in folder.glob("thumb_*.png"))]
        images = "".join(_img(folder / name) for name in names if (folder / name).exists())
        numbers = "".join(
            f"<tr><td>{html.escape(_meaning(key))}</td><td class='num'>{_number(result.row, key)}</td></tr>"
            for key in LESION_NUMBERS
            if _number(result.row, key)
        )
        others = "".join(
            f"<tr><td>{name}: size</td><td class='num'>{size}</td></tr>"
            for name, size in _other_modalities(result.row)
        )
        skipped = (result.provenance or {}).get("skipped_roles", {})
        left_out = "".join(
            f"<p class='note'>{html.escape(role.upper())} left out: {html.escape(str(why))}</p>"
            for role, why in sorted(skipped.items())
        )
        label = f" ({html.escape(task.label)})" if task.label else ""
        title = f"{html.escape(task.study_id)} — lesion {html.escape(task.lesion_id)}{label}"
        parts.append(
            f"<div class='lesion' id='{anchor}'><h3>{title}</h3><div class='figures'>{images}</div>"
            f"<table class='numbers' style='width:auto'>{numbers}{others}</table>{left_out}"
            f"<p class='note'>{result.seconds:.1f} s</p></div>"
        )
    parts.append(_REVIEW_LINK + "</body></html>")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
