"""``radimt propose``: lesion candidates for many studies, written as a manifest ``radimt batch``
runs as it is, with the kinetic map of each study as a DICOM SEG and a figure."""

from __future__ import annotations

import csv
import html
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from radimt.dicom.study import load_study
from radimt.errors import ManifestError, RadimtError
from radimt.io.atomic import atomic_path
from radimt.io.masks import write_kinetic_map_seg
from radimt.pipeline.manifest import safe_id
from radimt.propose import Proposal, ProposeOptions, propose
from radimt.report.kinetic_map import kinetic_map_figure

log = logging.getLogger(__name__)

#: The candidate manifest's columns: a radimt manifest (rank as lesion id) and the candidate's
#: numbers, which ``radimt batch`` carries into features.csv.
COLUMNS = (
    "study_id",
    "path",
    "lesion_id",
    "seed_x",
    "seed_y",
    "seed_z",
    "label",
    "candidate_score",
    "candidate_volume_mm3",
    "candidate_longest_diameter_mm",
    "candidate_peak_initial_enhancement_pct",
    "candidate_curve_type",
    "candidate_laterality",
    "candidate_reasons",
)


@dataclass
class StudyToPropose:
    """A study to look for lesions in."""

    study_id: str
    path: Path
    study_uid: str | None = None


def studies_from(inputs: Sequence[str]) -> list[StudyToPropose]:
    """Study folders, or manifests (``.csv``: ``study_id``, ``path``, optionally ``study_uid``;
    one study per study_id), in the order given.

    Raises
    ------
    ManifestError
        A manifest without those columns, or a folder that does not exist.
    """
    found: dict[str, StudyToPropose] = {}
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() == ".csv" and path.is_file():
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows or not {"study_id", "path"} <= set(rows[0]):
                raise ManifestError(f"{path}: a manifest needs study_id and path columns")
            for row in rows:
                folder = (path.parent / row["path"].strip()).resolve()
                if not folder.exists():
                    raise ManifestError(
                        f"{path}: study folder {row['path']!r} of {row['study_id']!r} does not exist"
                    )
                found.setdefault(
                    row["study_id"].strip(),
                    StudyToPropose(row["study_id"].strip(), folder, row.get("study_uid") or None),
                )
        elif path.is_dir():
            found.setdefault(path.name, StudyToPropose(path.name, path.resolve()))
        else:
            raise ManifestError(f"{path}: neither a study folder nor a manifest (.csv)")
    return list(found.values())


def propose_studies(
    inputs: Sequence[str],
    out: str | os.PathLike[str],
    *,
    maps: str | os.PathLike[str] | None = None,
    options: ProposeOptions | None = None,
    keep_phi: bool = False,
) -> tuple[int, list[tuple[str, str]]]:
    """Propose candidates in every study and write them as a manifest at ``out``.

    Returns the number of candidates written and the studies that failed with why (each is
    logged and the others go on). With ``maps``, each study's kinetic map is written to
    ``maps/<study>/kinetic_map_seg.dcm`` (over the first post-contrast phase) and
    ``kinetic_map.png`` (MIP with the candidates numbered), with ``maps/report.html``.
    """
    out = Path(out)
    rows: list[dict[str, object]] = []
    failed: list[tuple[str, str]] = []
    pages: list[tuple[str, Proposal | None, str]] = []
    for study in studies_from(inputs):
        try:
            loaded = load_study(study.path, study_uid=study.study_uid)
            if loaded.dce is None:
                raise RadimtError(
                    f"{study.path}: no DCE series to look for lesions in (roles: {loaded.roles})"
                )
            proposal = propose(loaded.dce, options)
        except RadimtError as exc:
            log.warning("%s: %s", study.study_id, exc)
            failed.append((study.study_id, str(exc)))
            pages.append((study.study_id, None, str(exc)))
            continue
        relative = os.path.relpath(study.path, out.parent.resolve())
        for candidate in proposal.candidates:
            x, y, z = candidate.seed
            rows.append(
                {
                    "study_id": study.study_id,
                    "path": relative,
                    "lesion_id": str(candidate.rank),
                    "seed_x": f"{x:.2f}",
                    "seed_y": f"{y:.2f}",
                    "seed_z": f"{z:.2f}",
                    "label": "",
                    **candidate.to_row(),
                }
            )
        if maps is not None:
            folder = Path(maps) / safe_id(study.study_id)
            kinetic_map_figure(proposal, folder / "kinetic_map.png", f"{study.study_id}: kinetic map")
            series = loaded.dce.series[loaded.dce.n_precontrast] if loaded.dce.series else None
            if series is not None:
                write_kinetic_map_seg(
                    proposal.kinetic_map,
                    series,
                    folder / "kinetic_map_seg.dcm",
                    label=f"{study.study_id} kinetic map",
                    keep_phi=keep_phi,
                    pseudonym=study.study_id,
                )
        pages.append((study.study_id, proposal, ""))
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if maps is not None:
        _write_page(Path(maps) / "report.html", pages)
    return len(rows), failed


def _write_page(path: Path, pages: Sequence[tuple[str, Proposal | None, str]]) -> None:
    """One page: per study its kinetic map and its candidates with their reasons."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>radimt: lesion candidates</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:15px;"
        "vertical-align:top}th{background:#f2f2f2}img{max-width:100%;border:1px solid #ddd}"
        ".why{font-size:13px;color:#444}</style></head><body>",
        "<h1>Lesion candidates</h1><p>Ranked enhancing-lesion candidates from each DCE, found by "
        "radimt's classical detector (radimt.propose). For research; not a diagnostic device.</p>",
    ]
    for study_id, proposal, error in pages:
        parts.append(f"<h2>{html.escape(study_id)}</h2>")
        if proposal is None:
            parts.append(f"<p>failed: {html.escape(error)}</p>")
            continue
        name = html.escape(study_id)
        image = f"{html.escape(safe_id(study_id))}/kinetic_map.png"
        parts.append(f"<img alt='kinetic map of {name}' src='{image}'>")
        parts.append(
            "<table><tr><th>rank</th><th>score</th><th>size</th><th>initial enhancement</th>"
            "<th>worst curve</th><th>side</th><th>seed (LPS mm)</th><th>why</th></tr>"
        )
        for c in proposal.candidates:
            seed = ", ".join(f"{v:.1f}" for v in c.seed)
            why = "<br>".join(html.escape(r) for r in c.reasons)
            parts.append(
                f"<tr><td>{c.rank}</td><td>{c.score:.2f}</td><td>{c.longest_diameter_mm:.0f} mm, "
                f"{c.volume_mm3 / 1000:.2f} cm³</td><td>{c.peak_initial_enhancement_pct:.0f} %</td>"
                f"<td>type {c.curve_type}</td><td>{c.laterality}</td><td>{seed}</td>"
                f"<td class='why'>{why}</td></tr>"
            )
        parts.append("</table>")
        if not proposal.candidates:
            parts.append("<p>No candidate above the score threshold.</p>")
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
