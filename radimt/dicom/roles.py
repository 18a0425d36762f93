"""Give every stack a role: dce, dwi, adc, t1, t2, ct, mg, us, or other (set aside, with why).

The rules read what scanners reliably write (modality, SOP class, ImageType, diffusion
b-values, temporal positions, echo time) before falling back on series descriptions. When the
rules are wrong for a site, a role can be forced by SeriesNumber or a description pattern.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from radimt.dicom.geometry import slice_normal
from radimt.dicom.header import FLOAT_PIXEL_DATA, NO_PIXEL_DATA, SECONDARY_CAPTURE_PREFIX, FileHeader
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.volume import ultrasound_spacing
from radimt.errors import DicomReadError, RoleError
from radimt.roles import ROLES

MAMMOGRAPHY_VIEWS = {"CC", "MLO", "ML", "LM", "XCCL", "XCCM", "FB", "SIO", "LMO", "AT", "CV"}

_LOCALIZER = re.compile(r"locali[sz]er|scout|survey|3[- ]?plane|\bloc\b|pilot", re.I)
_ADC = re.compile(r"\badc\b|_adc\b|apparent.diff", re.I)
_EXP_ADC = re.compile(r"\be?adc_?exp|\bexp\b|\beadc\b|trace_?exp", re.I)
_DIFFUSION_MAP = re.compile(r"\bfa\b|_fa\b|colfa|tensor_b0|\btrace_?exp", re.I)
_REFORMAT = re.compile(r"\bmip\b|\bmpr\b|reformat|\bmpr_|_mip", re.I)
_SUBTRACTION = re.compile(r"\bsub\b|subtract|_sub\b|\bsub_", re.I)
#: Scanner-derived DCE maps, named at the end of a description (GE/Siemens ": SER", ": PE1").
_DCE_MAP = re.compile(r"[:_\s-](ser|pe\d*|wash_?in|wash_?out|ttp|mip|sub)\s*$|\bser map\b|\bcad\b", re.I)
_DIFFUSION = re.compile(r"dwi|diff|\bdti\b|_dti|ep2d_diff|resolve|\bb\d{2,4}\b|readout.seg", re.I)
#: Pulse sequence names of diffusion sequences (Siemens *ep_b / re_b / ep2d_diff, Philips DwiSE,
#: UIH epi_dti/epi_dwi, GE and Canon DTI/DWI names).
_DIFFUSION_SEQUENCE = re.compile(r"ep_b\d|re_b\d|ep2d_diff|dwi|dti|diff", re.I)
_EPI_SEQUENCE = re.compile(r"^\*?ep|epfid|epse|\bepi", re.I)
_DYNAMIC = re.compile(
    r"dyn|dce|vibrant|thrive|twist|dynamic|\bpre\b|\bpost\b|\+c\b|\bgad|contrast|\bph(ase)?\s?\d", re.I
)
_T2 = re.compile(r"t2|stir|tirm|haste|ssfse|\bssh\b|\bspair\b", re.I)
T2_MIN_ECHO_MS = 60.0
PRE_CONTRAST_WINDOW_S = 20 * 60.0
#: b-values up to this (s/mm²) are "no diffusion weighting" (scanners write b0 as 0, 0.001, 5...).
B0_MAX = 10.0

#: ImageType / FrameType values of scanner-derived DCE maps and computed images.
_DCE_MAP_TYPES = {"SER", "PE", "WASHIN", "WASH_IN", "WASHOUT", "WASH_OUT", "TTP", "CAD", "MAXIP"}
_SUBTRACTION_TYPES = {"SUB", "SUBTRACT", "SUBTRACTION"}
_REFORMAT_TYPES = {"PROJECTION IMAGE", "MIP", "MPR", "REFORMATTED", "CURVED_MPR", "MINIP"}
_DIFFUSION_MAP_TYPES = {"FA", "EADC", "EXP", "TENSOR", "TENSOR_B0", "COLFA", "RA", "MD", "TRACE_EXP"}
_PHASE_TYPES = {"P", "PHASE", "R", "REAL", "I", "IMAGINARY"}
_FIELD_MAP_TYPES = {"FIELD_MAP", "B0", "B0MAP", "B1", "B1MAP"}


def _text(s: SeriesInfo) -> str:
    return s.description or ""


@dataclass(frozen=True)
class SeriesContext:
    """What a whole series (all its stacks) says, for rules that need more than one stack.

    Attributes
    ----------
    diffusion
        Why the series is a diffusion acquisition, or ``""`` when nothing says so.
    temporal
        Why the series is dynamic (several temporal positions), or ``""``.
    field_map
        A stack of the series is a B0/B1 field map or a phase image: the series is a
        field-mapping acquisition, its magnitude images included.
    """

    diffusion: str = ""
    temporal: str = ""
    field_map: bool = False


def _types(s: SeriesInfo) -> set[str]:
    """ImageType values, and the FrameType values of enhanced frames."""
    types = set(s.image_type)
    for f in s.frames[:1] + s.frames[-1:]:
        if f.frame_type:
            types |= set(f.frame_type)
    return types


def series_context(members: Sequence[SeriesInfo]) -> SeriesContext:
    """Evidence from all stacks of one series: diffusion, temporal positions, field maps."""
    frames = [f for s in members for f in s.frames]
    header = frames[0].header
    types: set[str] = set()
    for s in members:
        types |= _types(s)
    b_values = {round(float(f.b_value), 3) for f in frames if f.b_value is not None}
    weighted = {b for b in b_values if b > B0_MAX}
    sequence = header.sequence_name
    epi = "EP" in header.scanning_sequence or bool(_EPI_SEQUENCE.search(sequence))
    diffusion = ""
    if {"DIFFUSION", "TRACEW"} & types or header.acquisition_contrast == "DIFFUSION":
        diffusion = "ImageType/AcquisitionContrast DIFFUSION"
    elif header.has_diffusion_macro and weighted:
        diffusion = "MR Diffusion Sequence with b > 0"
    elif epi and weighted:
        diffusion = f"EPI with b-values {_bs(b_values)}"
    elif sequence and _DIFFUSION_SEQUENCE.search(sequence) and b_values:
        diffusion = f"diffusion sequence {sequence!r}, b-values {_bs(b_values)}"
    elif len(b_values) > 1 and weighted:
        diffusion = f"b-values {_bs(b_values)}"
    positions = {f.temporal_position for f in frames if f.temporal_position is not None}
    temporal = ""
    if len(positions) > 1:
        temporal = f"{len(positions)} temporal positions"
    elif (header.temporal_positions or 0) > 1:
        temporal = f"NumberOfTemporalPositions {header.temporal_positions}"
    elif positions and max(positions) > 1:
        temporal = f"temporal position {max(positions)}"
    field_map = bool(_FIELD_MAP_TYPES & types) or any(_PHASE_TYPES & set(s.image_type[2:4]) for s in members)
    field_map = field_map or any(
        f.frame_type is not None and _PHASE_TYPES & set(f.frame_type[3:4]) for f in frames
    )
    return SeriesContext(diffusion=diffusion, temporal=temporal, field_map=field_map)


def _bs(values: set[float]) -> str:
    return "/".join(f"{b:g}" for b in sorted(values))


def classify_stack(
    s: SeriesInfo, repeated: bool = False, context: SeriesContext | None = None
) -> tuple[str, str]:
    """Role and reason for one stack (before dynamic/diffusion grouping).

    The rules read acquisition evidence first — SOP class, ImageType/FrameType, ScanningSequence
    and sequence name, diffusion attributes, temporal positions, echo time — and the series
    description only to break ties. ``repeated`` says the stack's series holds the same volume
    several times (a dynamic acquisition written as one series without temporal tags);
    ``context`` is what the whole series says (see :func:`series_context`).
    """
    context = context or series_context([s])
    header = s.first.header
    types = _types(s)
    desc = _text(s)
    original = "ORIGINAL" in types
    if header.problem == NO_PIXEL_DATA or (header.problem or "").startswith(FLOAT_PIXEL_DATA):
        return "other", header.problem or ""
    if header.sop_class_uid.startswith(SECONDARY_CAPTURE_PREFIX) or s.modality in {"SC", "OT"}:
        return _secondary_capture(s, desc)
    if "LOCALIZER" in types or _LOCALIZER.search(desc):
        return "other", "localizer/scout"
    if s.modality == "CT":
        if _REFORMAT_TYPES & types and not original:
            return "other", f"derived CT reformat ({'/'.join(sorted(_REFORMAT_TYPES & types))})"
        tilt = header.gantry_tilt
        note = f"; gantry tilt {tilt:g}° (radimt refuses to load tilted CT)" if tilt else ""
        return "ct", f"CT ({'/'.join(s.image_type[:3])}){note}"
    intent = f" ({header.presentation_intent})" if header.presentation_intent else ""
    if s.modality == "MG":
        return "mg", f"mammogram{intent}{_view_note(header)}"
    if s.modality in {"CR", "DX"}:
        if header.body_part == "BREAST" or (header.view or "") in MAMMOGRAPHY_VIEWS:
            return "mg", f"{s.modality} image of the breast{intent}"
        return "other", f"{s.modality} projection radiograph, not of the breast"
    if s.modality == "US":
        if not _us_calibrated(header):
            return "other", (
                "ultrasound image without a spatial calibration (no region deltas in cm, no "
                "PixelSpacing): nothing can be measured on it"
            )
        return "us", "ultrasound"
    if s.modality != "MR":
        return "other", f"modality {s.modality or 'unknown'} is not used by radimt"
    return _classify_mr(s, types, desc, original, repeated, context)


#: ConversionType of digitised film (DF: digitised film, WSD: workstation, DV: digitised video).
DIGITISED = {"DF", "WSD", "DV"}
_ROI_MASK = re.compile(r"\broi\b.*\bmask|\bmask images?\b", re.I)
_CROPPED = re.compile(r"\bcrop", re.I)
_MAMMOGRAM = re.compile(r"mammogra", re.I)


def _secondary_capture(s: SeriesInfo, desc: str) -> tuple[str, str]:
    """A Secondary Capture is a screen copy, except digitised film mammograms (CBIS-DDSM files
    each view as an MG Secondary Capture): those are mammograms, their ROI masks and cropped
    lesions are named and set aside."""
    header = s.first.header
    if s.modality != "MG":
        return "other", "secondary capture (a copy of a screen, not an acquisition)"
    if _ROI_MASK.search(desc):
        return "other", "the archive's ROI mask of a mammogram (give its file as the lesion's mask)"
    if _CROPPED.search(desc):
        return "other", "cropped lesion image (a crop of a mammogram, not a view)"
    if header.conversion_type in DIGITISED or _MAMMOGRAM.search(desc):
        digitised = header.conversion_type in DIGITISED
        why = f"ConversionType {header.conversion_type}" if digitised else "description"
        return "mg", f"digitised film mammogram (Secondary Capture, {why}){_view_note(header)}"
    return "other", "secondary capture (a copy of a screen, not an acquisition)"


def _view_note(header: FileHeader) -> str:
    """Where a mammogram's view and laterality came from, when not the standard attributes."""
    said = [
        f"{what} {value} from {source}"
        for what, value, source in (
            ("view", header.view, header.view_source),
            ("laterality", header.laterality, header.laterality_source),
        )
        if value and source not in ("ViewPosition", "ImageLaterality", "ViewCodeSequence", "")
    ]
    if header.archive_view_in_id:
        said.append("one patient with its other views (CBIS-DDSM: PatientID = patient_SIDE_VIEW)")
    return f"; {', '.join(said)}" if said else ""


def _us_calibrated(header: FileHeader) -> bool:
    """Whether the image has a pixel size (the one :func:`ultrasound_spacing` would read)."""
    try:
        ultrasound_spacing(header)
    except DicomReadError:
        return False
    return True


def _classify_mr(
    s: SeriesInfo, types: set[str], desc: str, original: bool, repeated: bool, context: SeriesContext
) -> tuple[str, str]:
    derived = not original
    # -- maps the scanner computed: never an acquisition role -----------------------------
    if "ADC" in types or (derived and _ADC.search(desc)) or (not types and _ADC.search(desc)):
        if {"EADC", "EXP"} & types or _EXP_ADC.search(desc):
            return "other", "exponential ADC (a derived diffusion map, not the ADC)"
        return "adc", "ADC map (ImageType ADC)" if "ADC" in types else "ADC map (derived, description)"
    if _DIFFUSION_MAP_TYPES & types or (derived and (_DIFFUSION_MAP.search(desc) or _EXP_ADC.search(desc))):
        kind = "/".join(sorted(_DIFFUSION_MAP_TYPES & types)) or "FA/exp"
        return "other", f"derived diffusion map ({kind})"
    if "TRACEW" in types:
        return "dwi", "trace-weighted diffusion images (ImageType TRACEW)"
    dce_map = {t for t in types if t in _DCE_MAP_TYPES or re.fullmatch(r"PE\d+", t)}
    if dce_map or (derived and _DCE_MAP.search(desc)):
        kind = "/".join(sorted(dce_map)) or _DCE_MAP.search(desc).group(0).strip(" :_-")  # type: ignore[union-attr]
        return "other", f"scanner-derived DCE map ({kind}); radimt computes its own from the phases"
    if _SUBTRACTION_TYPES & types or (derived and _SUBTRACTION.search(desc)):
        return "other", "scanner subtraction (radimt computes its own from the phases)"
    if (_REFORMAT_TYPES & types or _REFORMAT.search(desc)) and derived:
        return "other", "derived projection or reformat (MIP/MPR)"
    if context.field_map:
        return "other", "field map or phase image (B0/B1 mapping), not a diagnostic contrast"
    if "PERFUSION" in types or _is_asl(s):
        return "other", "perfusion (ASL) acquisition, not used by radimt"
    # -- acquisitions ------------------------------------------------------------------------
    if context.diffusion:
        return "dwi", f"diffusion: {context.diffusion}"
    header = s.first.header
    epi = "EP" in header.scanning_sequence or bool(_EPI_SEQUENCE.search(header.sequence_name))
    if epi and (context.temporal or repeated or not _DIFFUSION.search(desc)):
        return "other", "EPI without diffusion weighting (a functional or perfusion time series)"
    if not epi and _DIFFUSION.search(desc) and s.b_value is not None and s.b_value > B0_MAX:
        return "dwi", "diffusion (b-value and description)"
    if context.temporal or repeated:
        why = context.temporal or "the same volume repeated at distinct times"
        return "dce", f"dynamic: {why}"
    if _DYNAMIC.search(desc):
        return "dce", "dynamic contrast (description; phases grouped by grid)"
    echo = s.echo_time
    if (echo or 0) >= T2_MIN_ECHO_MS:
        return "t2", f"T2-weighted (echo time {echo:g} ms)"
    if header.acquisition_contrast == "T2" or "T2" in types:
        return "t2", "T2-weighted (AcquisitionContrast/ImageType T2)"
    if _T2.search(desc) and not ({"T1"} & types or header.acquisition_contrast == "T1"):
        return "t2", "T2-weighted (description)"
    te = f"echo time {echo:g} ms" if echo is not None else "no T2 evidence"
    return "t1", f"T1-weighted ({te})"


def _is_asl(s: SeriesInfo) -> bool:
    """Arterial spin labelling, by its sequence name (pCASL/PASL)."""
    return bool(re.search(r"casl|pasl|\basl\b", s.first.header.sequence_name + " " + _text(s), re.I))


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
        len({round(a, 2) for a in along}),  # slice positions, so a duplicated file changes nothing
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
    by_series: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in stacks:
        by_series[s.series_uid].append(s)
    contexts = {uid: series_context(members) for uid, members in by_series.items()}
    for s in stacks:
        s.role, s.note = classify_stack(s, s.series_uid in repeated, contexts[s.series_uid])
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


def _in_plane_signature(s: SeriesInfo) -> tuple:
    """Stacks with equal in-plane signatures could be time points of one dynamic acquisition."""
    f = s.first
    return (
        s.rows,
        s.columns,
        tuple(round(o, 2) + 0.0 for o in (f.orientation or ())),
        tuple(round(p, 2) for p in (f.pixel_spacing or ())),
    )


def _slice_positions(s: SeriesInfo) -> frozenset[float]:
    if s.first.orientation is None:
        return frozenset()
    normal = slice_normal(s.first.orientation)
    return frozenset(round(float(np.dot(f.position, normal)), 1) for f in s.frames if f.position is not None)


#: How a time point of the dynamic acquisition that misses slices is noted (and set aside).
INCOMPLETE_PHASE = "incomplete time point"


def _group_dynamic(stacks: Sequence[SeriesInfo]) -> None:
    """Keep as DCE the complete phases of the largest dynamic acquisition.

    Candidates sharing a matrix, orientation and pixel size are one acquisition's time points;
    the slice positions of all of them are the acquisition's coverage. A time point that covers
    only part of it (a sparse or interrupted enhanced multi-frame export) is set aside with an
    account; if fewer than two complete time points remain there is no usable DCE.
    """
    candidates = [s for s in stacks if s.role == "dce"]
    if not candidates:
        return
    families: dict[tuple, list[SeriesInfo]] = defaultdict(list)
    for s in candidates:
        families[_in_plane_signature(s)].append(s)

    positions = {id(s): _slice_positions(s) for s in candidates}
    coverage = {k: frozenset().union(*(positions[id(m)] for m in g)) for k, g in families.items()}
    complete = {k: [m for m in g if positions[id(m)] == coverage[k]] for k, g in families.items()}
    chosen = max(families, key=lambda k: (len(complete[k]), len(families[k])))
    family, group, full = families[chosen], complete[chosen], len(coverage[chosen])
    if len(group) < 2:
        if len(family) >= 2:
            counts = sorted(m.n_images for m in family)
            for s in family:
                s.role = "other"
                s.note = (
                    f"sparse dynamic acquisition: its {len(family)} time points cover {counts[0]}–"
                    f"{counts[-1]} of {full} slice positions, fewer than two are complete; "
                    "no DCE phases can be built (re-export the complete dynamic series)"
                )
        for s in candidates:
            if s.role == "dce":
                s.role, s.note = "t1", "single contrast-enhanced T1 phase (no dynamic series found)"
        return
    for s in candidates:
        if s in group:
            continue
        if s in family:
            s.role = "other"
            position = (
                f" (temporal position {s.temporal_position})" if s.temporal_position is not None else ""
            )
            s.note = (
                f"{INCOMPLETE_PHASE}: {s.n_images} of {full} slice positions{position}; left out of the DCE"
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
