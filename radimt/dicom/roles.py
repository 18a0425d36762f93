"""Give every stack a role: dce, dwi, adc, t1, t2, ct, mg, us, or other (set aside, with why).

The rules read what scanners reliably write (modality, SOP class, ImageType, diffusion
b-values, temporal positions, echo time) before falling back on series descriptions. When the
rules are wrong for a site, a role can be forced by SeriesNumber or a description pattern.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from radimt.dicom.geometry import slice_normal
from radimt.dicom.scan import SeriesInfo
from radimt.errors import RoleError

ROLES = ("dce", "dwi", "adc", "t1", "t2", "ct", "mg", "us")
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
MAMMOGRAPHY_VIEWS = {"CC", "MLO", "ML", "LM", "XCCL", "XCCM", "FB", "SIO", "LMO", "AT", "CV"}

_LOCALIZER = re.compile(r"locali[sz]er|scout|survey|3[- ]?plane|\bloc\b|pilot", re.I)
_ADC = re.compile(r"\badc\b|apparent.diff", re.I)
_DERIVED_MAP = re.compile(r"\be?adc_?exp|\bexp\b|\bfa\b|tensor|colfa|trace_?exp", re.I)
_REFORMAT = re.compile(r"\bmip\b|\bmpr\b|reformat|\bmpr_|_mip", re.I)
_SUBTRACTION = re.compile(r"\bsub\b|subtract|_sub\b|\bsub_", re.I)
_DIFFUSION = re.compile(r"dwi|diff|ep2d|resolve|\bb\d{2,4}\b|readout.seg", re.I)
_DYNAMIC = re.compile(
    r"dyn|dce|vibrant|thrive|twist|dynamic|\bpre\b|\bpost\b|\+c\b|\bgad|contrast|\bph(ase)?\s?\d", re.I
)
_T2 = re.compile(r"t2|stir|tirm|haste|ssfse|\bssh\b|\bspair\b", re.I)
T2_MIN_ECHO_MS = 60.0
PRE_CONTRAST_WINDOW_S = 20 * 60.0


def _text(s: SeriesInfo) -> str:
    return s.description or ""


def classify_stack(s: SeriesInfo, repeated: bool = False) -> tuple[str, str]:
    """Role and reason for one stack (before dynamic/diffusion grouping).

    ``repeated`` says the stack's series holds the same volume several times (a dynamic
    acquisition written as one series without temporal tags).
    """
    header = s.first.header
    types = set(s.image_type)
    desc = _text(s)
    if header.problem == "no pixel data":
        return "other", "no pixel data"
    if header.sop_class_uid.startswith(SECONDARY_CAPTURE_PREFIX) or s.modality in {"SC", "OT"}:
        return "other", "secondary capture (a copy of a screen, not an acquisition)"
    if "LOCALIZER" in types or _LOCALIZER.search(desc):
        return "other", "localizer/scout"
    if s.modality == "CT":
        return "ct", "CT"
    intent = f" ({header.presentation_intent})" if header.presentation_intent else ""
    if s.modality == "MG":
        return "mg", f"mammogram{intent}"
    if s.modality in {"CR", "DX"}:
        if header.body_part == "BREAST" or (header.view or "") in MAMMOGRAPHY_VIEWS:
            return "mg", f"{s.modality} image of the breast{intent}"
        return "other", f"{s.modality} projection radiograph, not of the breast"
    if s.modality == "US":
        return "us", "ultrasound"
    if s.modality != "MR":
        return "other", f"modality {s.modality or 'unknown'} is not used by radimt"
    if "ADC" in types or _ADC.search(desc):
        if _DERIVED_MAP.search(desc) or "EADC" in types:
            return "other", "exponential ADC or other derived diffusion map"
        return "adc", "ADC map (ImageType or description)"
    if _DERIVED_MAP.search(desc) or {"FA", "TENSOR"} & types:
        return "other", "derived diffusion map"
    if {"PROJECTION IMAGE", "MIP", "MPR", "REFORMATTED"} & types or _REFORMAT.search(desc):
        return "other", "derived projection or reformat (MIP/MPR)"
    if {"SUB", "SUBTRACT", "SUBTRACTION"} & types or _SUBTRACTION.search(desc):
        return "other", "scanner subtraction (radimt computes its own from the phases)"
    if s.b_value is not None or {"DIFFUSION", "TRACEW"} & types or _DIFFUSION.search(desc):
        return "dwi", "diffusion (b-value tag or description)"
    if s.temporal_position is not None or repeated or _DYNAMIC.search(desc):
        return "dce", "dynamic contrast (temporal position or description)"
    if _T2.search(desc) or (s.echo_time or 0) >= T2_MIN_ECHO_MS:
        return "t2", "T2-weighted (description or echo time)"
    return "t1", "other MR (T1-weighted by default)"


def _repeated_series(stacks: Sequence[SeriesInfo]) -> set[str]:
    """Series split into several stacks that cover the same grid with the same contrast."""
    by_series: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in stacks:
        by_series[s.series_uid].append(s)
    repeated = set()
    for uid, members in by_series.items():
        if len(members) < 2 or members[0].is_planar:
            continue
        same_grid = len({geometry_signature(m) for m in members}) == 1
        same_contrast = len({(m.b_value, m.gradient, m.echo_time) for m in members}) == 1
        if same_grid and same_contrast:
            repeated.add(uid)
    return repeated


def geometry_signature(s: SeriesInfo) -> tuple:
    """Stacks with equal signatures cover the same voxels (same grid, same place)."""
    f = s.first
    if f.orientation is None or f.position is None:
        return (s.rows, s.columns, s.n_images)
    normal = slice_normal(f.orientation)
    along = [float(np.dot(x.position, normal)) for x in s.frames if x.position is not None]
    return (
        s.rows,
        s.columns,
        s.n_images,
        tuple(round(o, 2) + 0.0 for o in f.orientation),
        tuple(round(p, 2) for p in (f.pixel_spacing or ())),
        round(min(along)),
        round(max(along)),
    )


def assign_roles(
    stacks: Sequence[SeriesInfo], overrides: Mapping[str, object] | None = None
) -> list[SeriesInfo]:
    """Set ``role`` and ``note`` on every stack (in place) and return them.

    Parameters
    ----------
    stacks
        The stacks from :func:`radimt.dicom.scan.scan_files`.
    overrides
        ``{role: selector}`` to force roles. A selector is a SeriesNumber (int), a list of them,
        or a regular expression matched against SeriesDescription. Stacks the rules had given
        that role but the selector does not match are set aside.
    """
    repeated = _repeated_series(stacks)
    for s in stacks:
        s.role, s.note = classify_stack(s, s.series_uid in repeated)
    forced = set(overrides or {})
    if "dce" not in forced:
        _group_dynamic(stacks)
    if "dwi" not in forced:
        _group_diffusion(stacks)
    for role, selector in (overrides or {}).items():
        _force(stacks, role, selector)
    return list(stacks)


def _largest_group(members: list[SeriesInfo]) -> list[SeriesInfo]:
    groups: dict[tuple, list[SeriesInfo]] = defaultdict(list)
    for s in members:
        groups[geometry_signature(s)].append(s)
    return max(groups.values(), key=lambda g: (len(g), -min(x.series_number or 0 for x in g)))


def _group_dynamic(stacks: Sequence[SeriesInfo]) -> None:
    candidates = [s for s in stacks if s.role == "dce"]
    if not candidates:
        return
    group = _largest_group(candidates)
    if len(group) < 2:
        for s in candidates:
            s.role, s.note = "t1", "single contrast-enhanced T1 phase (no dynamic series found)"
        return
    series_in_group = {s.series_uid for s in group}
    full = group[0].n_images
    for s in candidates:
        if s in group:
            continue
        if s.series_uid in series_in_group and s.n_images < full and s.plane == group[0].plane:
            s.role = "other"
            s.note = (
                f"incomplete time point: {s.n_images} of {full} slice positions "
                f"(temporal position {s.temporal_position}); left out of the DCE"
            )
        else:
            s.role, s.note = "t1", "contrast-enhanced T1 with another geometry than the dynamic series"
    # A pre-contrast series written apart, with the same grid and sequence timing as the phases.
    signature = geometry_signature(group[0])
    starts = [min(s.times("acquisition"), default=None) for s in group]
    first_phase = min((t for t in starts if t is not None), default=None)
    ref = group[0].first
    for s in stacks:
        if s.role != "t1" or geometry_signature(s) != signature or first_phase is None:
            continue
        start = min(s.times("acquisition"), default=None)
        same_sequence = all(
            a is not None and b is not None and abs(a - b) <= 0.01 * max(abs(b), 1e-6)
            for a, b in (
                (s.first.echo_time, ref.echo_time),
                (s.first.header.repetition_time, ref.header.repetition_time),
            )
        )
        if same_sequence and start is not None and 0 < first_phase - start <= PRE_CONTRAST_WINDOW_S:
            s.role, s.note = "dce", "pre-contrast phase (same grid and sequence, acquired just before)"


def _group_diffusion(stacks: Sequence[SeriesInfo]) -> None:
    candidates = [s for s in stacks if s.role == "dwi"]
    if not candidates:
        return
    group = _largest_group(candidates)
    for s in candidates:
        if s not in group:
            s.role, s.note = "other", "diffusion series with another geometry than the main DWI"


def _matches(s: SeriesInfo, selector: object) -> bool:
    if isinstance(selector, bool):
        return False
    if isinstance(selector, int):
        return s.series_number == selector
    if isinstance(selector, str):
        if selector.strip().isdigit():
            return s.series_number == int(selector)
        return re.search(selector, s.description or "", re.I) is not None
    if isinstance(selector, (list, tuple, set)):
        return any(_matches(s, item) for item in selector)
    raise RoleError(f"role selector {selector!r}: use a SeriesNumber, a list of them, or a regex")


def _force(stacks: Sequence[SeriesInfo], role: str, selector: object) -> None:
    if role not in ROLES:
        raise RoleError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    chosen = [s for s in stacks if _matches(s, selector)]
    if not chosen:
        listing = "; ".join(f"{s.key} '{s.description}'" for s in stacks)
        raise RoleError(f"no series matches {selector!r} for role {role}; series found: {listing}")
    for s in stacks:
        if s in chosen:
            s.role, s.note = role, f"role forced by the user ({selector!r})"
        elif s.role == role:
            s.role, s.note = "other", f"role {role} was forced onto other series"
