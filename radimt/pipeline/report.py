"""The batch QC report: one self-contained HTML page (figures embedded) to check every lesion."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radimt.io.atomic import atomic_path
from radimt.pipeline.config import PipelineConfig
from radimt.pipeline.manifest import LesionTask, lesion_dir
from radimt.pipeline.quality import TableQuality
from radimt.pipeline.record import LesionRecord

KEY_NUMBERS = (
    ("lesion_longest_diameter_mm", "diameter mm", "{:.1f}"),
    ("lesion_volume_cm3", "volume cm³", "{:.2f}"),
    ("lesion_area_mm2", "area mm² (2D)", "{:.0f}"),
    ("kinetic_initial_phase", "initial", "{}"),
    ("kinetic_delayed_phase", "delayed", "{}"),
    ("kinetic_curve_type", "type", "{}"),
    ("kinetic_suspicious_curve_type", "worst type", "{}"),
    ("kinetic_ser", "SER", "{:.2f}"),
    ("adc_median_um2_ms", "ADC median", "{:.2f}"),
    ("adc_min_region_mean_um2_ms", "ADC darkest", "{:.2f}"),
    ("ct_rim_core_ratio", "CT rim/core", "{:.2f}"),
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f2f2f2}
.quality{background:#fff4d6;border:1px solid #e6c35c;padding:.4em .8em}
.failed{background:#fde8e8}.lesion{border-top:2px solid #ddd;padding:.6em 0}
.lesion img{height:220px;margin-right:8px;border:1px solid #eee}.note{color:#666;font-size:12px}
"""


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        return html.escape(fmt.format(value))
    except (ValueError, TypeError):
        return html.escape(str(value))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


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
        "<table><tr><th>study</th><th>lesion</th><th>label</th>",
        *[f"<th>{html.escape(title)}</th>" for _, title, _ in KEY_NUMBERS],
        "<th>status</th></tr>",
    ]
    for task, result, reason in entries:
        row = result.row if result else {}
        css = " class='failed'" if result is None else ""
        cells = "".join(f"<td>{_cell(row, key, fmt)}</td>" for key, _, fmt in KEY_NUMBERS)
        status = "done" if result else html.escape(reason or "")
        parts.append(
            f"<tr{css}><td><a href='#{html.escape(task.safe_study)}-{html.escape(task.safe_lesion)}'>"
            f"{html.escape(task.study_id)}</a></td><td>{html.escape(task.lesion_id)}</td>"
            f"<td>{html.escape(task.label)}</td>{cells}<td>{status}</td></tr>"
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
        images = "".join(_img(folder / name) for name in result.figures if (folder / name).exists())
        numbers = ", ".join(
            f"{title} {_cell(result.row, key, fmt)}"
            for key, title, fmt in KEY_NUMBERS
            if _cell(result.row, key, fmt)
        )
        skipped = (result.provenance or {}).get("skipped_roles", {})
        left_out = "".join(
            f"<p class='note'>{html.escape(role.upper())} left out: {html.escape(str(why))}</p>"
            for role, why in sorted(skipped.items())
        )
        label = f" ({html.escape(task.label)})" if task.label else ""
        title = f"{html.escape(task.study_id)} — lesion {html.escape(task.lesion_id)}{label}"
        parts.append(
            f"<div class='lesion' id='{anchor}'><h3>{title}</h3>{images}"
            f"<p>{numbers}</p>{left_out}<p class='note'>{result.seconds:.1f} s</p></div>"
        )
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
