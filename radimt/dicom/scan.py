"""Scan a folder of DICOM files (headers only) into series and stacks.

A *stack* is what one volume (or one 2D image) is built from: the images of one series that
share orientation, matrix, temporal position, b-value, diffusion direction and echo time. Most
series are one stack; a dynamic series holding all phases is one stack per phase.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from radimt.dicom.geometry import ORIENTATION_TOLERANCE, slice_normal
from radimt.dicom.header import Frame, NotDicomError
from radimt.dicom.templates import HeaderReader
from radimt.errors import DicomReadError

log = logging.getLogger(__name__)

#: Modalities whose images are 2D projections or 2D scans, not slices of a volume.
PLANAR_MODALITIES = {"MG", "US", "CR", "DX", "XA", "RF", "IO", "PX", "OT", "SC", "XC", "ES", "GM", "SM"}


@dataclass
class SeriesInfo:
    """One stack of images found by :func:`scan`, with the role radimt gave it.

    Attributes
    ----------
    series_uid, series_number, description, modality
        From the DICOM headers.
    stack
        1 when the series is one stack; 1, 2, ... when it was split (phases, b-values, ...).
    role
        ``dce``, ``dwi``, ``adc``, ``t1``, ``t2``, ``ct``, ``mg``, ``us`` or ``other``.
    note
        Why the role was given, or why the series was set aside.
    frames
        The images, in file order; volume assembly sorts them along the slice normal.

    Examples
    --------
    >>> import radimt
    >>> folder, _ = radimt.synth.example_study_folder()
    >>> t2 = radimt.scan(folder)[0]
    >>> t2.role, t2.modality, t2.n_images, t2.is_planar
    ('t2', 'MR', 24, False)
    """

    series_uid: str
    series_number: int | None
    stack: int
    modality: str
    description: str
    frames: tuple[Frame, ...] = field(repr=False)
    n_stacks: int = 1
    role: str = "other"
    note: str = ""
    number_suffix: str = ""  # "b", "c", ... when another series of the study has the same number

    # -- summaries read from the frames ---------------------------------------------------
    @property
    def first(self) -> Frame:
        return self.frames[0]

    @property
    def rows(self) -> int:
        return self.first.rows

    @property
    def columns(self) -> int:
        return self.first.columns

    @property
    def n_images(self) -> int:
        return len(self.frames)

    @property
    def image_type(self) -> tuple[str, ...]:
        return self.first.header.image_type

    @property
    def b_value(self) -> float | None:
        return self.first.b_value

    @property
    def gradient(self) -> tuple[float, float, float] | None:
        return self.first.gradient

    @property
    def echo_time(self) -> float | None:
        return self.first.echo_time

    @property
    def temporal_position(self) -> int | None:
        return self.first.temporal_position

    @property
    def is_planar(self) -> bool:
        return self.modality in PLANAR_MODALITIES or self.first.position is None

    @property
    def key(self) -> str:
        """``"<series number>"`` or ``"<series number>.<stack>"`` for a split series."""
        number = ("?" if self.series_number is None else str(self.series_number)) + self.number_suffix
        return number if self.n_stacks == 1 else f"{number}.{self.stack}"

    @property
    def folder(self) -> str:
        return os.path.dirname(self.first.path)

    @property
    def label(self) -> str:
        """How errors name this series: number, description and folder."""
        desc = f" '{self.description}'" if self.description else ""
        return f"series {self.key}{desc} ({self.modality}, {self.folder})"

    def times(self, source: str) -> list[float]:
        """The per-image times (seconds) of one source: trigger, acquisition or content."""
        if source == "trigger":
            vals = [f.trigger_time_ms / 1000.0 for f in self.frames if f.trigger_time_ms is not None]
        elif source == "acquisition":
            vals = [f.acquisition_time for f in self.frames if f.acquisition_time is not None]
        else:
            vals = [f.content_time for f in self.frames if f.content_time is not None]
        return vals  # type: ignore[return-value]

    @property
    def pixel_spacing(self) -> tuple[float, float] | None:
        """In-plane spacing (between rows, between columns) in mm when the header has it."""
        return self.first.pixel_spacing

    @property
    def slice_step(self) -> float | None:
        """Median distance between slice positions along the normal (mm), without checks."""
        if self.is_planar or self.first.orientation is None or self.n_images < 2:
            return None
        normal = slice_normal(self.first.orientation)
        along = np.sort([np.dot(f.position, normal) for f in self.frames if f.position])
        steps = np.diff(along)
        steps = steps[steps > 1e-6]
        return float(np.median(steps)) if steps.size else None

    @property
    def plane(self) -> str:
        """AX, COR, SAG or OBL from the slice normal; '' for planar images."""
        if self.is_planar or self.first.orientation is None:
            return ""
        normal = np.abs(slice_normal(self.first.orientation))
        axis = int(np.argmax(normal))
        if normal[axis] < 0.9:
            return "OBL"
        return ("SAG", "COR", "AX")[axis]


@dataclass(frozen=True)
class SkippedFile:
    """A file the scan set aside, and why."""

    path: str
    reason: str


def iter_files(path: str | os.PathLike[str]) -> Iterable[str]:
    """Every regular file below ``path`` (or ``path`` itself), in a stable order."""
    path = os.fspath(path)
    if os.path.isfile(path):
        yield path
        return
    if not os.path.isdir(path):
        raise DicomReadError(f"{path}: no such file or folder; check the study path")
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            yield os.path.join(folder, name)


def scan_files(path: str | os.PathLike[str]) -> tuple[list[SeriesInfo], list[SkippedFile]]:
    """Read every header below ``path`` and group the images into stacks.

    Returns the stacks (without roles) and the files that were set aside with the reason.
    """
    frames: list[Frame] = []
    skipped: list[SkippedFile] = []
    reader = HeaderReader()
    for file in iter_files(path):
        try:
            frames.extend(reader.read(file))
        except NotDicomError as exc:
            skipped.append(SkippedFile(file, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a broken header must not stop the scan
            skipped.append(SkippedFile(file, f"unreadable DICOM header: {type(exc).__name__}: {exc}"))
    for item in skipped:
        log.info("skipped %s: %s", item.path, item.reason)
    return group_stacks(frames), skipped


def group_stacks(frames: Sequence[Frame]) -> list[SeriesInfo]:
    """Group frames by SeriesInstanceUID, then split each series into stacks."""
    by_series: dict[str, list[Frame]] = defaultdict(list)
    for f in frames:
        by_series[f.header.series_uid].append(f)
    stacks: list[SeriesInfo] = []
    for uid, members in by_series.items():
        parts = _split_series(members)
        head = members[0].header
        for i, part in enumerate(parts, start=1):
            stacks.append(
                SeriesInfo(
                    series_uid=uid,
                    series_number=head.series_number,
                    stack=i,
                    modality=head.modality,
                    description=head.series_description,
                    frames=tuple(part),
                    n_stacks=len(parts),
                )
            )
    stacks.sort(
        key=lambda s: (s.series_number is None, s.series_number or 0, _series_start(s), s.series_uid, s.stack)
    )
    suffix_shared_numbers(stacks)
    return stacks


def _series_start(s: SeriesInfo) -> float:
    times = s.times("acquisition") or s.times("content")
    return min(times) if times else float("inf")


def suffix_shared_numbers(stacks: list[SeriesInfo]) -> None:
    """Give series that share a SeriesNumber distinct keys: "1", "1b", "1c" (in scan order)."""
    by_number: dict[int | None, list[str]] = defaultdict(list)
    for s in stacks:
        uids = by_number[s.series_number]
        if s.series_uid not in uids:
            uids.append(s.series_uid)
    for s in stacks:
        k = by_number[s.series_number].index(s.series_uid)
        s.number_suffix = "" if k == 0 else _letters(k)


def _letters(k: int) -> str:
    """1 -> "b", 2 -> "c", ..., 25 -> "z"; beyond that "#27", "#28", ..."""
    return "abcdefghijklmnopqrstuvwxyz"[k] if k < 26 else f"#{k + 1}"


def _orientation_cluster(frames: Sequence[Frame]) -> list[int]:
    """A cluster id per frame; frames whose direction cosines agree within tolerance share one."""
    centres: list[np.ndarray] = []
    ids = []
    for f in frames:
        if f.orientation is None:
            ids.append(-1)
            continue
        o = np.asarray(f.orientation)
        for k, c in enumerate(centres):
            if np.abs(o - c).max() <= ORIENTATION_TOLERANCE * 10:
                ids.append(k)
                break
        else:
            centres.append(o)
            ids.append(len(centres) - 1)
    return ids


def _split_series(frames: list[Frame]) -> list[list[Frame]]:
    head = frames[0].header
    if head.modality in PLANAR_MODALITIES or frames[0].position is None:
        # Each planar image (a mammogram view, an ultrasound image or cine loop) stands alone.
        by_file: dict[str, list[Frame]] = defaultdict(list)
        for f in frames:
            by_file[f.header.sop_instance_uid or f.path].append(f)
        return sorted(by_file.values(), key=lambda fs: (fs[0].instance_number or 0, fs[0].path))
    clusters = _orientation_cluster(frames)
    groups: dict[tuple, list[Frame]] = defaultdict(list)
    for f, cluster in zip(frames, clusters, strict=True):
        key = (
            cluster,
            f.rows,
            f.columns,
            f.temporal_position,
            None if f.b_value is None else round(f.b_value, 4),
            None if f.gradient is None else tuple(round(g, 3) for g in f.gradient),
            None if f.echo_time is None else round(f.echo_time, 2),
            f.stack_id,
        )
        groups[key].append(f)
    parts: list[list[Frame]] = []
    for key in sorted(groups, key=_sortable):
        parts.extend(_split_repeated_positions(groups[key]))
    return parts


def _sortable(key: tuple) -> tuple:
    return tuple((x is None, x if x is not None else 0) for x in key)


def _split_repeated_positions(frames: list[Frame]) -> list[list[Frame]]:
    """Split a stack where every position appears m times, told apart only by time.

    Some scanners write all dynamic phases (or echoes) into one series without a temporal
    position tag. When every slice position is repeated the same number of times and the copies
    have distinct times, the k-th copy in time order at each position belongs to phase k.
    Otherwise the stack is returned unchanged and assembly reports the duplicates.
    """
    if len(frames) < 2 or frames[0].orientation is None or any(f.position is None for f in frames):
        return [frames]
    unique = {(f.header.sop_instance_uid, f.index): f for f in frames}
    frames_u = list(unique.values())
    normal = slice_normal(frames_u[0].orientation or frames[0].orientation)  # type: ignore[arg-type]
    along = np.array([np.dot(f.position, normal) for f in frames_u if f.position is not None])
    rounded = np.round(along, 2)
    values, counts = np.unique(rounded, return_counts=True)
    m = int(counts[0])
    if m < 2 or np.any(counts != m):
        return [frames]
    for source in ("trigger_time_ms", "acquisition_time", "content_time"):
        split: list[list[Frame]] = [[] for _ in range(m)]
        ok = True
        for value in values:
            members = [f for f, r in zip(frames_u, rounded, strict=True) if r == value]
            times = [getattr(f, source) for f in members]
            if any(t is None for t in times) or len(set(times)) != m:
                ok = False
                break
            for k, f in enumerate(sorted(members, key=lambda f: getattr(f, source))):
                split[k].append(f)
        if ok:
            return split
    return [frames]
