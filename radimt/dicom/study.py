"""A study: its series with roles, and lazily loaded images per role."""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import SimpleITK as sitk

from radimt.dicom.focus import Box, attach_whole_statistics, is_focused, read_focused, series_statistics
from radimt.dicom.roles import INCOMPLETE_PHASE, assign_roles
from radimt.dicom.scan import SeriesInfo, SkippedFile, scan_files, suffix_shared_numbers
from radimt.dicom.volume import PlanarImage, read_planar, read_volume
from radimt.errors import MixedOrientationError, MixedStudyError, RoleError, TimingError
from radimt.grids import copy_reference_metadata, same_grid
from radimt.roles import ROLES

log = logging.getLogger(__name__)

#: ADC stored values above this (99th percentile in tissue) mean units of 10⁻⁶ mm²/s.
ADC_MICRO_THRESHOLD = 50.0
#: ADC values below this mean units of mm²/s.
ADC_SI_THRESHOLD = 0.05


@dataclass
class DCE:
    """A dynamic contrast-enhanced acquisition.

    Attributes
    ----------
    phases
        One 3D image per phase, all on the same grid, in time order.
    times
        Seconds from the start of the first phase (first = 0).
    time_source
        Which attribute gave the times: ``trigger``, ``acquisition`` or ``content``.
    series
        The stack behind each phase.
    n_precontrast
        Phases acquired before contrast: the leading phases whose headers name no contrast agent
        when later ones do; 1 otherwise.
    arrival_s, arrival_source
        When contrast arrived (seconds on the same clock as ``times``) and what said so:
        ContrastBolusStartTime, or the end of the last pre-contrast acquisition (its start plus
        AcquisitionDuration). ``None`` when the headers say neither; the kinetics then take the
        start of the last pre-contrast phase.

    Examples
    --------
    >>> import radimt
    >>> study, _ = radimt.synth.example_study()
    >>> len(study.dce.phases), study.dce.times.tolist()
    (6, [0.0, 90.0, 180.0, 270.0, 360.0, 450.0])
    >>> study.dce.phases[0].GetSize()
    (96, 96, 24)
    """

    phases: list[sitk.Image]
    times: np.ndarray
    time_source: str
    series: list[SeriesInfo] = field(repr=False)
    n_precontrast: int = 1
    arrival_s: float | None = None
    arrival_source: str = ""
    #: Images derived from the phases (subtractions), computed once: see ``radimt.subtraction``.
    derived: dict = field(default_factory=dict, repr=False, compare=False)
    #: Time points of the acquisition left out because they miss slices (one sentence each).
    left_out: list[str] = field(default_factory=list)


@dataclass
class DWI:
    """Diffusion-weighted images, one 3D image per b-value (ascending, s/mm²).

    Examples
    --------
    >>> import radimt
    >>> study, _ = radimt.synth.example_study()
    >>> study.dwi.b_values.tolist(), len(study.dwi.images)
    ([0.0, 800.0], 2)
    """

    images: list[sitk.Image]
    b_values: np.ndarray
    series: list[SeriesInfo] = field(repr=False)


def scan(path: str | os.PathLike[str], roles: Mapping[str, object] | None = None) -> list[SeriesInfo]:
    """Find every series below ``path`` (headers only) and give each stack a role.

    Parameters
    ----------
    path
        A study folder as exported (any file names, nested folders, DICOMDIR beside the files)
        or a single file. Non-DICOM and empty files are skipped with a logged note.
    roles
        Optional ``{role: selector}`` to force roles (see :func:`assign_roles`).

    Returns
    -------
    list of SeriesInfo
        One entry per stack, ordered by series number.

    Examples
    --------
    >>> import radimt
    >>> folder, _ = radimt.synth.example_study_folder()
    >>> [(s.key, s.role) for s in radimt.scan(folder)][:4]
    [('2', 't2'), ('3.1', 'dwi'), ('3.2', 'dwi'), ('4', 'adc')]
    """
    stacks, _ = scan_files(path)
    return assign_roles(stacks, roles)


def load_study(
    path: str | os.PathLike[str],
    roles: Mapping[str, object] | None = None,
    study_uid: str | Sequence[str] | None = None,
    mg_spacing_mm: float | None = None,
) -> Study:
    """Scan a study folder and return a :class:`Study` whose images load on first access.

    Parameters
    ----------
    path
        The folder (or file) holding one patient's images.
    roles
        Optional ``{role: selector}`` to force roles (see :func:`assign_roles`).
    study_uid
        The StudyInstanceUID(s) to keep when the folder holds several studies; the others are
        left out (listed in ``Study.skipped``).
    mg_spacing_mm
        The pixel size of mammograms whose header gives none (digitised film: the digitiser's
        sampling); without it their sizes are in pixels.

    Raises
    ------
    MixedStudyError
        The folder holds two patients, or two studies that both supply one role (two MRI exams:
        which DCE is meant cannot be told). Exams of one patient in different modalities (MG, US,
        MRI, CT each its own study) are one case and load together.

    Examples
    --------
    >>> import radimt
    >>> folder, _ = radimt.synth.example_study_folder()
    >>> study = radimt.load_study(folder)   # headers only; pixels are read when asked for
    >>> study.adc.GetSize(), study.t2 is not None, study.ct is None
    ((96, 96, 24), True, True)
    """
    stacks, skipped = scan_files(path)
    stacks, left_out = one_patient_one_study_per_role(stacks, os.fspath(path), study_uid, roles)
    study = Study(os.fspath(path), stacks, skipped + left_out)
    study.mg_spacing_mm = mg_spacing_mm
    return study


def one_patient_one_study_per_role(
    stacks: list[SeriesInfo],
    path: str,
    study_uid: str | Sequence[str] | None = None,
    roles: Mapping[str, object] | None = None,
) -> tuple[list[SeriesInfo], list[SkippedFile]]:
    """Keep the chosen studies, give roles, and refuse a folder that would mix patients or studies.

    Returns the stacks with roles and the files of studies left out by ``study_uid``.
    """
    left_out: list[SkippedFile] = []
    if study_uid is not None:
        wanted = {study_uid} if isinstance(study_uid, str) else set(study_uid)
        found = {s.first.header.study_uid for s in stacks}
        if not wanted & found:
            raise MixedStudyError(
                f"{path}: no images of study {sorted(wanted)}; studies found: {sorted(found)}"
            )
        for s in stacks:
            if s.first.header.study_uid not in wanted:
                left_out += [SkippedFile(f.path, "another study (study_uid chose)") for f in s.frames]
        stacks = [s for s in stacks if s.first.header.study_uid in wanted]
        suffix_shared_numbers(stacks)
    patients = _groups(stacks, lambda s: s.first.header.patient_key)
    if len(patients) > 1:
        listing = "; ".join(
            f"patient {k}: series {', '.join(keys)}" for k, keys in enumerate(patients.values(), 1)
        )
        raise MixedStudyError(
            f"{path}: images of {len(patients)} patients in one folder ({listing}); radimt never "
            "mixes patients: give each patient's study its own folder"
        )
    stacks = assign_roles(stacks, roles)
    studies = {s.first.header.study_uid for s in stacks if s.first.header.study_uid}
    if len(studies) > 1:
        shared = sorted(
            role
            for role in {s.role for s in stacks} - {"other"}
            if len({s.first.header.study_uid for s in stacks if s.role == role}) > 1
            and not _views_filed_apart([s for s in stacks if s.role == role])
        )
        if shared:
            listing = "; ".join(
                f"{uid}: series {', '.join(keys)}"
                for uid, keys in _groups(stacks, lambda s: s.first.header.study_uid).items()
            )
            raise MixedStudyError(
                f"{path}: {len(studies)} studies in one folder both supply {', '.join(shared)} "
                f"({listing}); radimt never takes a role from a mix of studies: choose one with "
                "load_study(path, study_uid=...) or the manifest's study_uid column, or give each "
                "study its own folder"
            )
    return stacks, left_out


def _views_filed_apart(stacks: Sequence[SeriesInfo]) -> bool:
    """Mammograms whose PatientIDs carry side and view (CBIS-DDSM files each view as its own
    patient and study): views of one patient (the patient check has passed), not two exams."""
    return all(s.role == "mg" and s.first.header.archive_view_in_id for s in stacks)


def _groups(stacks: Sequence[SeriesInfo], key) -> dict[str, list[str]]:
    """Series keys grouped by ``key(stack)``, in scan order; stacks without a value are left out."""
    groups: dict[str, list[str]] = {}
    for s in stacks:
        value = key(s)
        if value and s.key not in groups.setdefault(value, []):
            groups[value].append(s.key)
    return groups


class Study:
    """The series of one study, by role. Images are read the first time they are asked for.

    Role accessors (``dce``, ``dwi``, ``adc``, ``t1``, ``t2``, ``ct``, ``mg``, ``us``) are
    ``None`` when the study has no such series.

    Examples
    --------
    >>> import radimt
    >>> study, _ = radimt.synth.example_study()
    >>> study.roles
    ['dce', 'dwi', 'adc', 't2']
    >>> study.find("4").role, study.find("4").description
    ('adc', 'ep2d_diff_tra_ADC')
    """

    def __init__(self, path: str, series: list[SeriesInfo], skipped: list[SkippedFile] | None = None):
        self.path = path
        self.series = series
        self.skipped = skipped or []
        self.derived: dict = {}  # images computed from the series once (e.g. a fitted ADC map)
        self.mg_spacing_mm: float | None = None  # for mammograms whose header gives no pixel size
        #: Read only this box of the 3D roles (DCE, T1, T2, CT, ADC, DWI): set before the images
        #: are first read (see :mod:`radimt.dicom.focus`).
        self.focus: Box | None = None
        self._whole: Study | None = None

    def __repr__(self) -> str:
        roles = ", ".join(f"{r}={len(self.series_for(r))}" for r in self.roles)
        return f"Study({self.path!r}: {roles})"

    @property
    def study_uid(self) -> str:
        """The StudyInstanceUID of the study's series ('' when its headers have none)."""
        return self.series[0].first.header.study_uid if self.series else ""

    @property
    def roles(self) -> list[str]:
        """The roles present, in a fixed order."""
        present = {s.role for s in self.series}
        return [r for r in ROLES if r in present]

    def series_for(self, role: str) -> list[SeriesInfo]:
        """Every stack with ``role``, in series order."""
        return [s for s in self.series if s.role == role]

    def find(self, key: str | int) -> SeriesInfo:
        """The stack whose key is ``key`` (``"5"`` or ``"5.2"``) or whose series number is ``key``."""
        for s in self.series:
            if s.key == str(key) or (s.stack == 1 and s.series_number == key):
                return s
        raise RoleError(f"{self.path}: no series {key}; series found: {[s.key for s in self.series]}")

    def volume(self, series: SeriesInfo) -> sitk.Image:
        """Read one stack as a 3D volume (not cached)."""
        return read_volume(series)

    # -- single-volume roles ---------------------------------------------------------------
    def chosen_series(self, role: str) -> SeriesInfo | None:
        """The stack a single-volume role (t1, t2, ct, adc) is read from: the one with the most
        images (then the longest echo, then the lowest series number); ``None`` when absent.

        Raises
        ------
        MixedOrientationError
            The chosen series holds slices in several orientations.
        """
        candidates = self.series_for(role)
        if not candidates:
            return None
        best = max(candidates, key=lambda s: (s.n_images, s.echo_time or 0, -(s.series_number or 0)))
        siblings = [s for s in candidates if s.series_uid == best.series_uid and s is not best]
        odd = [s for s in siblings if s.plane != best.plane or s.first.orientation != best.first.orientation]
        if odd:
            raise MixedOrientationError(
                f"{best.label}: the series holds slices in {1 + len({s.plane for s in odd})} "
                "orientations; force the role onto a single-orientation series "
                f"(load_study(..., roles={{'{role}': <series number>}}))"
            )
        if len(candidates) > 1:
            log.info("%s: %d series could be %s; using %s", self.path, len(candidates), role, best.label)
        return best

    def whole(self) -> Study:
        """This study read whole: itself when it has no focus, else a twin without one (made once,
        sharing the headers)."""
        if self.focus is None:
            return self
        if self._whole is None:
            self._whole = Study(self.path, self.series, self.skipped)
            self._whole.mg_spacing_mm = self.mg_spacing_mm
        return self._whole

    def _read(self, series: SeriesInfo) -> sitk.Image:
        """A stack as a volume: the focus box of it when the study has one."""
        return read_volume(series) if self.focus is None else read_focused(series, self.focus)

    def _volume_for(self, role: str) -> sitk.Image | None:
        chosen = self.chosen_series(role)
        return None if chosen is None else self._read(chosen)

    @cached_property
    def t1(self) -> sitk.Image | None:
        """A T1-weighted (non-dynamic) MR volume."""
        return self._volume_for("t1")

    @cached_property
    def t2(self) -> sitk.Image | None:
        """A T2-weighted MR volume."""
        return self._volume_for("t2")

    @cached_property
    def ct(self) -> sitk.Image | None:
        """The CT volume in Hounsfield units."""
        return self._volume_for("ct")

    @cached_property
    def adc(self) -> sitk.Image | None:
        """The scanner's ADC map in 10⁻³ mm²/s, whatever unit it was stored in."""
        chosen = self.chosen_series("adc")
        if chosen is None:
            return None
        image = self._read(chosen)
        factor = adc_unit_factor(sitk.GetArrayViewFromImage(image), chosen.first.header.units)
        out = (
            sitk.Cast(image, sitk.sitkFloat32) * factor
            if factor != 1.0
            else sitk.Cast(image, sitk.sitkFloat32)
        )
        out.CopyInformation(image)
        copy_reference_metadata(image, out)
        if is_focused(image):
            attach_whole_statistics(out, lambda: series_statistics(chosen, factor))
        return out

    # -- multi-volume roles ------------------------------------------------------------------
    @cached_property
    def dce(self) -> DCE | None:
        """The dynamic series: phases in time order and their times in seconds."""
        stacks = self.series_for("dce")
        if not stacks:
            return None
        ordered, times, source = dce_timing(stacks)
        left_out = _incomplete_phases(self.series, ordered)
        phases = [self._read(s) for s in ordered]
        _check_same_grid(phases, ordered, "DCE phases")
        n_pre = _precontrast_count(ordered)
        arrival, why = contrast_arrival(ordered, times, n_pre)
        return DCE(
            phases=phases,
            times=times,
            time_source=source,
            series=ordered,
            n_precontrast=n_pre,
            arrival_s=arrival,
            arrival_source=why,
            left_out=left_out,
        )

    @cached_property
    def dwi(self) -> DWI | None:
        """Diffusion-weighted volumes per b-value (s/mm²), ascending."""
        stacks = self.series_for("dwi")
        if not stacks:
            return None
        missing = [s for s in stacks if s.b_value is None]
        if missing:
            raise RoleError(
                f"{missing[0].label}: diffusion images without a b-value (looked in (0018,9087) and "
                "the Siemens (0019,100C), GE (0043,1039) and Philips (2001,1003) private tags); "
                "force the role elsewhere or fix the export"
            )
        by_b: dict[float, list[SeriesInfo]] = defaultdict(list)
        for s in stacks:
            by_b[round(float(s.b_value), 1)].append(s)  # type: ignore[arg-type]
        images, b_values, used = [], [], []
        # a geometric mean of directions is made whole (its statistics would be unknown in part)
        read = self._read if all(map(_one_image_per_b, by_b.values())) else read_volume
        for b in sorted(by_b):
            group = by_b[b]
            isotropic = [s for s in group if s.gradient is None or not any(s.gradient)]
            if isotropic or len(group) == 1:
                chosen = max(isotropic or group, key=lambda s: s.n_images)
                images.append(read(chosen))
                used.append(chosen)
            else:  # only directional images: their geometric mean is the trace-weighted image
                images.append(_geometric_mean([read_volume(s) for s in group]))
                used.append(group[0])
            b_values.append(b)
        _check_same_grid(images, used, "DWI b-values")
        return DWI(images=images, b_values=np.array(b_values, float), series=used)

    @cached_property
    def mg(self) -> list[PlanarImage] | None:
        """Mammograms (2D), one per view, with laterality and view."""
        stacks = self.series_for("mg")
        return [read_planar(s, spacing_mm=self.mg_spacing_mm) for s in stacks] or None

    @cached_property
    def us(self) -> list[PlanarImage] | None:
        """Ultrasound images (2D); a cine loop keeps its frames in ``.frames``."""
        stacks = self.series_for("us")
        return [read_planar(s) for s in stacks] or None


def _one_image_per_b(group: Sequence[SeriesInfo]) -> bool:
    """Whether a b-value's stacks hold an isotropic (trace) image, or one stack only."""
    return len(group) == 1 or any(s.gradient is None or not any(s.gradient) for s in group)


def _precontrast_count(phases: list[SeriesInfo]) -> int:
    """Leading phases without a contrast agent in their headers, when later phases name one."""
    agents = [bool(s.first.header.contrast_agent) for s in phases]
    if not any(agents) or all(agents):
        return 1
    leading = agents.index(True)
    return max(1, min(leading, len(phases) - 2))


def contrast_arrival(
    phases: list[SeriesInfo], times: np.ndarray, n_precontrast: int
) -> tuple[float | None, str]:
    """When contrast arrived, in seconds from the start of the first phase, and the evidence.

    Real phase times are acquisition starts, and a high-resolution pre-contrast acquisition can
    last minutes before the injection. In order: ContrastBolusStartTime (0018,1042) when it lies
    within the dynamic series; else the end of the last pre-contrast acquisition, its start plus
    AcquisitionDuration (0018,9073); else ``None``.
    """
    start = min(phases[0].times("acquisition"), default=None)
    last_post = float(times[-1])
    if start is not None:
        for s in phases:
            injected = s.first.header.contrast_start_time
            if injected is None:
                continue
            rel = (injected - start + 43200.0) % 86400.0 - 43200.0  # same day whatever the dates say
            if 0.0 <= rel <= last_post:
                return float(rel), "ContrastBolusStartTime"
            log.warning(
                "%s: ContrastBolusStartTime is %.0f s from the first phase, outside the dynamic "
                "series; ignored",
                s.label,
                rel,
            )
            break
    pre = phases[n_precontrast - 1]
    duration = pre.first.header.acquisition_duration
    if duration is not None and duration > 0:
        end = float(times[n_precontrast - 1]) + float(duration)
        next_start = float(times[n_precontrast])
        return min(end, next_start), "end of the last pre-contrast acquisition (start + AcquisitionDuration)"
    return None, ""


def _geometric_mean(volumes: list[sitk.Image]) -> sitk.Image:
    """Voxel-wise geometric mean (zero where any input is zero or negative), as float32."""
    arrays = np.stack([sitk.GetArrayViewFromImage(v).astype(np.float32) for v in volumes])
    positive = np.all(arrays > 0, axis=0)
    logs = np.log(np.where(arrays > 0, arrays, 1.0)).mean(axis=0)
    out = sitk.GetImageFromArray(np.where(positive, np.exp(logs), 0.0).astype(np.float32))
    out.CopyInformation(volumes[0])
    return out


def adc_unit_factor(values: np.ndarray, units: str | None = None) -> float:
    """Factor that brings stored ADC values to 10⁻³ mm²/s.

    Scanners store ADC maps as integers in 10⁻⁶ mm²/s (Siemens, GE, Philips), or as floats in
    mm²/s or 10⁻³ mm²/s. An explicit unit string wins; otherwise the 99th percentile of positive
    values decides: tissue ADC lies between about 0.1 and 3.5 × 10⁻³ mm²/s.
    """
    text = (units or "").lower().replace(" ", "")
    if "10^-6" in text or "1e-6" in text or "um2/s" in text or "µm2/s" in text:
        return 1e-3
    if "10^-3" in text or "1e-3" in text:
        return 1.0
    positive = values[values > 0]
    if positive.size == 0:
        return 1.0
    high = float(np.percentile(positive, 99))
    if high > ADC_MICRO_THRESHOLD:
        return 1e-3
    if high < ADC_SI_THRESHOLD:
        return 1e3
    return 1.0


def _incomplete_phases(series: Sequence[SeriesInfo], kept: Sequence[SeriesInfo]) -> list[str]:
    """Sentences for the dynamic time points set aside for missing slices.

    Raises
    ------
    TimingError
        A time point before the first kept phase is incomplete: the pre-contrast baseline would
        silently become a post-contrast phase.
    """
    incomplete = [s for s in series if s.role == "other" and s.note.startswith(INCOMPLETE_PHASE)]
    if not incomplete:
        return []

    def when(s: SeriesInfo) -> tuple[float, float]:
        start = min(s.times("acquisition") or s.times("content") or [math.inf])
        return (s.temporal_position if s.temporal_position is not None else math.inf, start)

    positioned = all(s.temporal_position is not None for s in (*kept, *incomplete))
    by = 0 if positioned else 1  # temporal positions when every stack has one, else start times
    first = min(when(s)[by] for s in kept)
    for s in incomplete:
        earlier = when(s)[by] < first
        if earlier:
            raise TimingError(
                f"{s.label}: the DCE's first time point misses slices ({s.note}); radimt will not take "
                "the first post-contrast phase as the baseline: re-export the complete dynamic series"
            )
    return [f"{s.label}: {s.note}" for s in incomplete]


def dce_timing(stacks: list[SeriesInfo]) -> tuple[list[SeriesInfo], np.ndarray, str]:
    """Order dynamic phases in time and give their times in seconds from the first phase.

    Times come from TriggerTime when all phases are in one series (the offset the scanner
    records per phase), else AcquisitionDate/Time, else ContentDate/Time; each phase's time is
    its earliest image. When TemporalPositionIdentifier is present it fixes the order and the
    times must increase with it.

    Raises
    ------
    TimingError
        No usable times, two phases at the same time, or times that contradict the temporal
        positions.
    """
    label = stacks[0].label
    single_series = len({s.series_uid for s in stacks}) == 1
    sources = (["trigger"] if single_series else []) + ["acquisition", "content"]
    for source in sources:
        per_stack = [s.times(source) for s in stacks]
        if not all(per_stack):
            continue
        starts = np.array([min(t) for t in per_stack])
        if len(np.unique(starts)) != len(starts):
            continue
        positions = [s.temporal_position for s in stacks]
        if single_series and all(p is not None for p in positions):
            order = np.argsort([p for p in positions if p is not None], kind="stable")
            if np.any(np.diff(starts[order]) <= 0):
                raise TimingError(
                    f"{label}: {source} times do not increase with TemporalPositionIdentifier "
                    f"({[float(x) for x in starts[order]]}); check the export"
                )
        else:
            order = np.argsort(starts, kind="stable")
        ordered = [stacks[i] for i in order]
        times = starts[order] - starts[order][0]
        return ordered, times.astype(float), source
    raise TimingError(
        f"{label}: the {len(stacks)} dynamic phases have no distinct TriggerTime, AcquisitionTime "
        "or ContentTime, so they cannot be placed in time; radimt will not guess phase times. "
        "Re-export with timing attributes"
    )


def _check_same_grid(images: list[sitk.Image], stacks: list[SeriesInfo], what: str) -> None:
    ref = images[0]
    for image, s in zip(images[1:], stacks[1:], strict=True):
        if not same_grid(image, ref):
            raise RoleError(
                f"{what}: {s.label} is not on the same grid as {stacks[0].label}; force the "
                "roles onto matching series"
            )
