"""DCE time–intensity curves: the lesion's curve, its BI-RADS/Kuhl type, and per-voxel maps.

Definitions (every threshold is an option of :class:`KineticOptions`):

- Baseline ``S0``: mean signal of the pre-contrast phase(s); relative enhancement
  ``RE(t) = 100 (S(t) - S0) / S0``.
- Contrast arrival: ``arrival_s`` when given; else what the DCE headers say
  (``DCE.arrival_s``: ContrastBolusStartTime, or the end of the last pre-contrast acquisition);
  else the start of the last pre-contrast phase.
- Initial phase: the highest RE among the phases within ``initial_window_s`` (120 s) after
  arrival (the first post-contrast phase if none falls inside): slow < 50 %, medium 50–100 %
  (a curve exactly on 50 % or 100 % is medium), fast > 100 %.
- Delayed phase: the last phase's signal against the signal at the initial peak,
  ``100 (S_last - S_peak) / S_peak`` (Kuhl): persistent > +10 %, plateau within ±10 % (a
  curve exactly on ±10 % is plateau), washout < −10 %; Kuhl type I / II / III.
- SER (Hylton) = (S_early − S0) / (S_late − S0) at the phases nearest ``ser_early_s`` (150 s)
  and ``ser_late_s`` (450 s) after arrival, never the same phase: the early phase is chosen
  among all post-contrast phases but the last, the late one among the phases after it (on a
  three-time-point protocol: the first and the last post-contrast phase).
- Wash-in rate: initial peak RE / time from arrival to it (%/s). Washout rate: drop of RE from
  the overall peak to the last phase per second (%/s; positive = washing out).
- Time to peak: from arrival to the first post-contrast phase whose signal is within
  ``peak_tolerance_pct`` (10 %) of the highest post-contrast signal — the band BI-RADS calls a
  plateau. On a plateau the highest phase is a matter of noise (a flat curve peaking by 1 % in
  its last phase would otherwise have its "peak" at the end); the first phase in the band is
  when the curve got there.
- Initial area under the enhancement curve to 60 and 90 s after arrival (IAUC, % s), linear
  between phases, RE = 0 at arrival.
- Most suspicious curve: the mean curve of a small neighbourhood (a voxel and its face
  neighbours within the mask, at least ``min_neighbourhood`` = 3 voxels) in the enhancing part
  of the lesion, ranked washout > plateau > persistent, then by initial enhancement — as a
  radiologist places a small ROI on the worst-looking part.
- Voxel shares: among voxels whose initial RE reaches ``enhancing_threshold`` (50 %), the share
  that are persistent / plateau / washout (CAD colour maps).
- FTV (ACRIN 6657 / I-SPY): volume (cm³) of mask voxels with early enhancement ≥ 70 %, SER ≥ 0,
  and pre-contrast signal above ``ftv_background`` × the 95th percentile of pre-contrast signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radimt.dicom.study import DCE
from radimt.errors import TimingError
from radimt.grids import copy_reference_metadata, mask_on, nonzero_box, paste_in_place
from radimt.options import Range, check_fields, unknown_names

INITIAL_CLASSES = ("slow", "medium", "fast")
DELAYED_CLASSES = ("persistent", "plateau", "washout")
KUHL = {"persistent": "I", "plateau": "II", "washout": "III"}
SUSPICION = {"persistent": 0, "plateau": 1, "washout": 2}
_MAP_NAMES = ("peak_enhancement", "initial_enhancement", "ser", "curve_type", "initial_phase")
_MAP_CHUNK = 1 << 20  # voxels analysed at once by kinetic_maps


@dataclass(frozen=True)
class KineticOptions:
    """Thresholds and timing of the kinetic analysis (see the module docstring).

    Examples
    --------
    >>> import radimt
    >>> radimt.KineticOptions(washout_below=-15.0).persistent_above
    10.0
    >>> radimt.KineticOptions(n_baseline=0)
    Traceback (most recent call last):
    ...
    radimt.errors.OptionError: KineticOptions: n_baseline: 0 is out of range (expected 1 or more)
    """

    n_baseline: int | None = None
    arrival_s: float | None = None
    initial_window_s: float = 120.0
    slow_below: float = 50.0
    fast_above: float = 100.0
    persistent_above: float = 10.0
    washout_below: float = -10.0
    ser_early_s: float = 150.0
    ser_late_s: float = 450.0
    enhancing_threshold: float = 50.0
    min_neighbourhood: int = 3
    ftv_pe_threshold: float = 70.0
    ftv_background: float = 0.2
    peak_tolerance_pct: float = 10.0

    def __post_init__(self) -> None:
        check_fields(self, KINETIC_RANGES)


#: Allowed ranges of the numeric :class:`KineticOptions`, (low, high) inclusive.
KINETIC_RANGES: dict[str, Range] = {
    "n_baseline": (1, None),
    "initial_window_s": (1e-3, None),
    "min_neighbourhood": (0, 26),
    "ftv_background": (0.0, 1.0),
    "peak_tolerance_pct": (0.0, 100.0),
}


def kinetic_options(**overrides) -> KineticOptions:
    """:class:`KineticOptions` with ``overrides``; an unknown name is an error."""
    unknown = unknown_names(overrides, KineticOptions)
    if unknown:
        known = sorted(f.name for f in fields(KineticOptions))
        raise TypeError(f"unknown kinetic option(s) {unknown}; options are {known}")
    return replace(KineticOptions(), **overrides)


@dataclass
class _Timing:
    times: np.ndarray
    n_baseline: int
    arrival: float
    initial: np.ndarray  # indices of the phases in the initial window
    early: int
    late: int


def _timing(
    times: np.ndarray, n_baseline: int, opts: KineticOptions, arrival_s: float | None = None
) -> _Timing:
    times = np.asarray(times, float)
    if times.ndim != 1 or len(times) < 3:
        raise TimingError(f"kinetics need at least 3 phases with times; got {len(np.atleast_1d(times))}")
    if not np.all(np.isfinite(times)):
        raise TimingError(f"phase times {times.tolist()} contain missing values; radimt will not guess them")
    if np.any(np.diff(times) <= 0):
        raise TimingError(f"phase times {times.tolist()} do not increase; check the acquisition's timing")
    if not 1 <= n_baseline < len(times) - 1:
        raise TimingError(f"{n_baseline} pre-contrast phase(s) leave too few post-contrast phases")
    if opts.arrival_s is not None:
        arrival = float(opts.arrival_s)
    elif arrival_s is not None:
        arrival = float(arrival_s)
    else:
        arrival = float(times[n_baseline - 1])
    post = np.arange(n_baseline, len(times))
    window = post[(times[post] > arrival) & (times[post] <= arrival + opts.initial_window_s)]
    initial = window if window.size else post[:1]
    # SER's early and late phases are never the same phase: early among all but the last
    # post-contrast phase, late among those after it (three time points: first and last post).
    candidates = post[:-1]
    early = int(candidates[np.argmin(np.abs(times[candidates] - arrival - opts.ser_early_s))])
    after = post[post > early]
    late = int(after[np.argmin(np.abs(times[after] - arrival - opts.ser_late_s))])
    return _Timing(times, n_baseline, arrival, initial, early, late)


def _analyse(signal: np.ndarray, t: _Timing, opts: KineticOptions) -> dict[str, np.ndarray]:
    """Kinetic parameters of curves ``signal`` (phases, N): the one computation behind ROI
    curves and voxel maps, so both agree voxel by voxel."""
    signal = np.asarray(signal, np.float64)
    s0 = signal[: t.n_baseline].mean(axis=0)
    safe = np.where(s0 > 0, s0, np.nan)
    re = 100.0 * (signal - s0) / safe
    init_idx = t.initial[np.argmax(re[t.initial], axis=0)]
    cols = np.arange(signal.shape[1])
    initial_pe = re[init_idx, cols]
    s_peak = signal[init_idx, cols]
    delayed = 100.0 * (signal[-1] - s_peak) / np.where(s_peak > 0, s_peak, np.nan)
    post = slice(t.n_baseline, None)
    peak_idx = t.n_baseline + np.argmax(re[post], axis=0)
    peak = re[peak_idx, cols]
    t_peak = t.times[peak_idx]
    # Time to peak: the first post-contrast phase within the plateau band of the highest signal.
    band = signal[post] >= (1.0 - opts.peak_tolerance_pct / 100.0) * signal[peak_idx, cols]
    t_reached = t.times[t.n_baseline + np.argmax(band, axis=0)]
    t_init = t.times[init_idx]
    last_dt = t.times[-1] - t_peak
    washout_rate = np.where(last_dt > 0, (peak - re[-1]) / np.where(last_dt > 0, last_dt, 1), 0.0)
    denominator = signal[t.late] - s0
    ser = (signal[t.early] - s0) / np.where(np.abs(denominator) > 1e-9, denominator, np.nan)
    initial_class = np.where(initial_pe < opts.slow_below, 0, np.where(initial_pe > opts.fast_above, 2, 1))
    delayed_class = np.where(delayed > opts.persistent_above, 0, np.where(delayed < opts.washout_below, 2, 1))
    return {
        "s0": s0,
        "re": re,
        "initial_pe": initial_pe,
        "initial_time": t_init - t.arrival,
        "delayed_change": delayed,
        "peak": peak,
        "time_to_peak": t_reached - t.arrival,
        "wash_in_rate": initial_pe / np.maximum(t_init - t.arrival, 1e-9),
        "washout_rate": washout_rate,
        "ser": ser,
        "early_pe": re[t.early],
        "initial_class": initial_class,
        "delayed_class": delayed_class,
        "iauc60": _iauc(re, t, 60.0),
        "iauc90": _iauc(re, t, 90.0),
    }


def _iauc(re: np.ndarray, t: _Timing, horizon: float) -> np.ndarray:
    """Area under RE from arrival to arrival + horizon (% s), RE = 0 at arrival."""
    end = t.arrival + horizon
    post = np.arange(t.n_baseline, len(t.times))
    inside = post[(t.times[post] > t.arrival) & (t.times[post] < end)]
    knots_t = np.concatenate([[t.arrival], t.times[inside], [end]])
    values = [np.zeros(re.shape[1])] + [re[i] for i in inside]
    # RE at the horizon, interpolated between the neighbouring phases (or held from the last).
    after = post[t.times[post] >= end]
    before_t, before_v = (knots_t[-2], values[-1])
    if after.size:
        j = after[0]
        frac = (end - before_t) / (t.times[j] - before_t)
        values.append(before_v + frac * (re[j] - before_v))
    else:
        values.append(before_v)
    knots_v = np.stack(values)
    return (0.5 * (knots_v[1:] + knots_v[:-1]) * np.diff(knots_t)[:, None]).sum(axis=0)


@dataclass
class CurveSummary:
    """One curve's numbers (whole-lesion mean, or the most suspicious neighbourhood)."""

    signal: np.ndarray
    enhancement: np.ndarray
    initial_enhancement_pct: float
    initial_phase: str
    delayed_change_pct: float
    delayed_phase: str
    curve_type: str
    peak_enhancement_pct: float
    time_to_peak_s: float
    wash_in_rate_pct_s: float
    washout_rate_pct_s: float
    ser: float
    iauc60: float
    iauc90: float

    @classmethod
    def from_analysis(cls, result: dict[str, np.ndarray], column: int = 0) -> CurveSummary:
        delayed = DELAYED_CLASSES[int(result["delayed_class"][column])]
        return cls(
            signal=result["signal"][:, column],
            enhancement=result["re"][:, column],
            initial_enhancement_pct=float(result["initial_pe"][column]),
            initial_phase=INITIAL_CLASSES[int(result["initial_class"][column])],
            delayed_change_pct=float(result["delayed_change"][column]),
            delayed_phase=delayed,
            curve_type=KUHL[delayed],
            peak_enhancement_pct=float(result["peak"][column]),
            time_to_peak_s=float(result["time_to_peak"][column]),
            wash_in_rate_pct_s=float(result["wash_in_rate"][column]),
            washout_rate_pct_s=float(result["washout_rate"][column]),
            ser=float(result["ser"][column]),
            iauc60=float(result["iauc60"][column]),
            iauc90=float(result["iauc90"][column]),
        )


@dataclass
class KineticCurve:
    """A lesion's DCE time–intensity analysis. ``to_dict()`` gives CSV-ready columns.

    Attributes
    ----------
    times
        Phase times (s, first phase = 0).
    mean
        The whole-lesion mean curve and its numbers.
    most_suspicious
        The most suspicious small neighbourhood's curve (``None`` if the lesion is too small).
    most_suspicious_lps, most_suspicious_voxels
        Where that neighbourhood is centred (LPS mm) and how many voxels it holds.
    shares
        Share (0–1) of enhancing voxels that are persistent / plateau / washout.
    enhancing_fraction
        Share of lesion voxels whose initial enhancement reaches the enhancing threshold.
    ftv_cm3
        Functional tumour volume.
    n_voxels, n_baseline, arrival_s
        Lesion size in voxels; pre-contrast phases used; contrast arrival time.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> curve = radimt.kinetic_curve(study.dce, mask)
    >>> curve.curve_type, curve.mean.initial_phase, curve.mean.delayed_phase
    ('III', 'fast', 'washout')
    >>> round(curve.mean.ser, 1), curve.most_suspicious.curve_type
    (1.7, 'III')
    """

    times: np.ndarray
    mean: CurveSummary
    most_suspicious: CurveSummary | None
    most_suspicious_lps: tuple[float, ...] | None
    most_suspicious_voxels: int
    shares: dict[str, float]
    enhancing_fraction: float
    ftv_cm3: float
    n_voxels: int
    n_baseline: int
    arrival_s: float
    options: KineticOptions = field(repr=False, default_factory=KineticOptions)

    @property
    def curve_type(self) -> str:
        """Kuhl type (I, II, III) of the whole-lesion mean curve."""
        return self.mean.curve_type

    def to_dict(self) -> dict[str, float | str | int]:
        """Flat, CSV-ready columns (``kinetic_*``); curves themselves are in long form elsewhere."""
        out: dict[str, float | str | int] = {}
        for prefix, summary in (("kinetic", self.mean), ("kinetic_suspicious", self.most_suspicious)):
            if summary is None:
                continue
            out.update(
                {
                    f"{prefix}_initial_enhancement_pct": summary.initial_enhancement_pct,
                    f"{prefix}_initial_phase": summary.initial_phase,
                    f"{prefix}_delayed_change_pct": summary.delayed_change_pct,
                    f"{prefix}_delayed_phase": summary.delayed_phase,
                    f"{prefix}_curve_type": summary.curve_type,
                    f"{prefix}_peak_enhancement_pct": summary.peak_enhancement_pct,
                    f"{prefix}_time_to_peak_s": summary.time_to_peak_s,
                    f"{prefix}_wash_in_rate_pct_s": summary.wash_in_rate_pct_s,
                    f"{prefix}_washout_rate_pct_s": summary.washout_rate_pct_s,
                    f"{prefix}_ser": summary.ser,
                    f"{prefix}_iauc60_pct_s": summary.iauc60,
                    f"{prefix}_iauc90_pct_s": summary.iauc90,
                }
            )
        out.update(
            {
                "kinetic_share_persistent": self.shares["persistent"],
                "kinetic_share_plateau": self.shares["plateau"],
                "kinetic_share_washout": self.shares["washout"],
                "kinetic_enhancing_fraction": self.enhancing_fraction,
                "kinetic_ftv_cm3": self.ftv_cm3,
                "kinetic_voxels": self.n_voxels,
            }
        )
        return out

    def plot(self, ax=None):
        """Matplotlib figure: the mean (and most suspicious) curve at the phase times, the
        initial-phase thresholds shaded, the verdict in the title."""
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=PLOT_INCHES, dpi=PLOT_DPI)
            fig.subplots_adjust(**PLOT_MARGINS)
        else:
            fig = ax.figure
        o = self.options
        top = max(float(np.nanmax(self.mean.enhancement)), o.fast_above) * 1.2 + 10
        ax.axhspan(-20, o.slow_below, color="tab:blue", alpha=0.06, label="slow")
        ax.axhspan(o.slow_below, o.fast_above, color="tab:orange", alpha=0.08, label="medium")
        ax.axhspan(o.fast_above, top, color="tab:red", alpha=0.06, label="fast")
        ax.axvspan(self.arrival_s, self.arrival_s + o.initial_window_s, color="grey", alpha=0.08)
        ax.plot(self.times, self.mean.enhancement, "o-", color="black", label="lesion mean")
        if self.most_suspicious is not None:
            ax.plot(
                self.times, self.most_suspicious.enhancement, "s--", color="tab:red", label="most suspicious"
            )
        ax.set_xlabel("time from first phase (s)")
        ax.set_ylabel("relative enhancement (%)")
        ax.set_ylim(min(-10.0, float(np.nanmin(self.mean.enhancement)) - 10), top)
        m = self.mean
        ax.set_title(
            f"{m.initial_phase} initial, {m.delayed_phase} delayed: type {m.curve_type}",
            fontsize=11,
            y=1.0,  # placed, not searched for: nothing sits above the axes (a quarter of the plot's cost)
        )
        ax.legend(fontsize=9, loc="lower right", framealpha=0.8)
        return fig


#: :meth:`KineticCurve.plot`'s figure: its size (inches) and resolution, and fixed margins that
#: hold the labels and title (tight_layout measured every text with a draw of its own, half the
#: plot's cost).
PLOT_INCHES, PLOT_DPI = (5.0, 3.5), 100
PLOT_MARGINS = {"left": 0.14, "right": 0.97, "bottom": 0.14, "top": 0.91}


def _baseline_count(dce: DCE, opts: KineticOptions) -> int:
    return int(opts.n_baseline or dce.n_precontrast)


def _mask_array(dce: DCE, mask: sitk.Image) -> np.ndarray:
    return mask_on(dce.phases[0], mask, "the mask (for the DCE)")


def _bbox(arr: np.ndarray, pad: int = 1) -> tuple[slice, ...]:
    box = nonzero_box(arr)
    assert box is not None, "an empty mask is refused by _mask_array"
    lo = np.maximum([b.start - pad for b in box], 0)
    hi = np.minimum([b.stop + pad for b in box], arr.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


def _stack(dce: DCE, box: tuple[slice, ...]) -> np.ndarray:
    return np.stack([sitk.GetArrayViewFromImage(p)[box].astype(np.float32) for p in dce.phases])


def kinetic_curve(dce: DCE, mask: sitk.Image, **options) -> KineticCurve:
    """The lesion's time–intensity curve, its type and semi-quantitative parameters.

    Parameters
    ----------
    dce
        ``study.dce`` (phases on one grid, times in seconds).
    mask
        Lesion mask on the DCE grid.
    **options
        Any field of :class:`KineticOptions` (thresholds, ``n_baseline``, ``arrival_s``, ...).

    Raises
    ------
    TimingError
        Missing or non-increasing phase times.
    MaskError
        Empty mask, or not on the DCE grid.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> row = radimt.kinetic_curve(study.dce, mask).to_dict()
    >>> row["kinetic_curve_type"], round(row["kinetic_initial_enhancement_pct"])  # truth: 150 %
    ('III', 141)
    """
    opts = kinetic_options(**options)
    timing = _timing(dce.times, _baseline_count(dce, opts), opts, dce.arrival_s)
    arr = _mask_array(dce, mask)
    box = _bbox(arr)
    stack = _stack(dce, box)  # (phases, z, y, x) inside the box
    inside = arr[box]
    voxels = stack[:, inside]  # (phases, N)

    mean_signal = voxels.mean(axis=1, keepdims=True)
    mean = _analyse(mean_signal, timing, opts)
    mean["signal"] = mean_signal

    per_voxel = _analyse(voxels, timing, opts)
    enhancing = per_voxel["initial_pe"] >= opts.enhancing_threshold
    shares = {
        name: float(np.mean(per_voxel["delayed_class"][enhancing] == k)) if enhancing.any() else 0.0
        for k, name in enumerate(DELAYED_CLASSES)
    }

    suspicious, where, count = _most_suspicious(stack, inside, timing, opts)
    spacing = dce.phases[0].GetSpacing()
    ftv = _ftv(per_voxel, opts) * float(np.prod(spacing)) / 1000.0
    lps = None
    if where is not None:
        index = [int(w + b.start) for w, b in zip(where, box, strict=True)][::-1]
        lps = tuple(dce.phases[0].TransformIndexToPhysicalPoint(index))
    return KineticCurve(
        times=np.asarray(dce.times, float),
        mean=CurveSummary.from_analysis(mean),
        most_suspicious=suspicious,
        most_suspicious_lps=lps,
        most_suspicious_voxels=count,
        shares=shares,
        enhancing_fraction=float(enhancing.mean()),
        ftv_cm3=float(ftv),
        n_voxels=int(inside.sum()),
        n_baseline=timing.n_baseline,
        arrival_s=timing.arrival,
        options=opts,
    )


def _ftv(result: dict[str, np.ndarray], opts: KineticOptions) -> int:
    s0 = result["s0"]
    bright = s0 >= opts.ftv_background * np.nanpercentile(s0, 95) if s0.size else s0 > 0
    keep = (
        bright & (result["early_pe"] >= opts.ftv_pe_threshold) & (np.nan_to_num(result["ser"], nan=-1) >= 0)
    )
    return int(np.count_nonzero(keep))


def _most_suspicious(stack: np.ndarray, inside: np.ndarray, timing: _Timing, opts: KineticOptions):
    """Mean curves of every voxel's small neighbourhood (itself and its face neighbours within
    the mask, at least ``min_neighbourhood`` voxels); among enhancing ones, the most suspicious."""
    kernel = ndimage.generate_binary_structure(inside.ndim, 1).astype(np.float32)
    weight = inside.astype(np.float32)
    counts = ndimage.convolve(weight, kernel, mode="constant")
    eligible = inside & (counts >= opts.min_neighbourhood)
    if not eligible.any():
        return None, None, 0
    sums = np.stack([ndimage.convolve(phase * weight, kernel, mode="constant") for phase in stack])
    curves = sums[:, eligible] / counts[eligible]
    result = _analyse(curves, timing, opts)
    suspicion = np.array([SUSPICION[DELAYED_CLASSES[int(c)]] for c in result["delayed_class"]])
    enhancing = np.nan_to_num(result["initial_pe"], nan=-np.inf) >= opts.enhancing_threshold
    if enhancing.any():  # only the enhancing part of the lesion competes
        suspicion = np.where(enhancing, suspicion, -1)
    rank = np.lexsort((np.nan_to_num(result["initial_pe"], nan=-np.inf), suspicion))
    best = int(rank[-1])
    result["signal"] = curves
    where = tuple(int(c[best]) for c in np.nonzero(eligible))
    return CurveSummary.from_analysis(result, best), where, int(counts[eligible][best])


@dataclass
class KineticMaps:
    """Per-voxel kinetic maps on the DCE grid (zero outside the analysed region).

    ``curve_type`` holds 0 (not enhancing), 1 (persistent, type I), 2 (plateau, II), 3
    (washout, III); ``initial_phase`` 1/2/3 = slow/medium/fast.

    Examples
    --------
    >>> import SimpleITK as sitk, radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> maps = radimt.kinetic_maps(study.dce, mask, crop=False)   # on the whole DCE grid
    >>> types = sitk.GetArrayViewFromImage(maps.curve_type)
    >>> lesion = sitk.GetArrayViewFromImage(mask) > 0
    >>> bool((types[lesion] == 3).all())   # every lesion voxel washes out (type III)
    True
    """

    peak_enhancement: sitk.Image
    initial_enhancement: sitk.Image
    ser: sitk.Image
    curve_type: sitk.Image
    initial_phase: sitk.Image


def kinetic_maps(dce: DCE, mask: sitk.Image | None = None, *, crop: bool = True, **options) -> KineticMaps:
    """Per-voxel peak enhancement, initial enhancement, SER and curve type.

    With a ``mask`` only its bounding box is computed (voxels outside the mask are 0) and, by
    default, the maps are returned on that box (same physical space and voxel grid as the DCE,
    smaller images: the cost follows the lesion); ``crop=False`` pastes them into the full DCE
    grid. Without a mask, the whole volume, vectorised in chunks (no loop per voxel).

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk, radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> ser = sitk.GetArrayFromImage(radimt.kinetic_maps(study.dce, mask).ser)
    >>> round(float(np.median(ser[ser > 0])), 1)
    1.7
    """
    opts = kinetic_options(**options)
    timing = _timing(dce.times, _baseline_count(dce, opts), opts, dce.arrival_s)
    shape = sitk.GetArrayViewFromImage(dce.phases[0]).shape
    if mask is not None:
        arr = _mask_array(dce, mask)
        box = _bbox(arr, pad=0)
        inside = arr[box]
    else:
        box = tuple(slice(0, n) for n in shape)
        inside = np.ones(shape, bool)
    stack = _stack(dce, box)
    flat = stack.reshape(stack.shape[0], -1)
    maps = {name: np.empty(flat.shape[1], np.float32) for name in _MAP_NAMES}
    for start in range(0, flat.shape[1], _MAP_CHUNK):  # bounded memory on whole volumes
        part = slice(start, start + _MAP_CHUNK)
        result = _analyse(flat[:, part], timing, opts)
        enhancing = result["initial_pe"] >= opts.enhancing_threshold
        maps["peak_enhancement"][part] = result["peak"]
        maps["initial_enhancement"][part] = result["initial_pe"]
        maps["ser"][part] = result["ser"]
        maps["curve_type"][part] = np.where(enhancing, result["delayed_class"] + 1, 0)
        maps["initial_phase"][part] = result["initial_class"] + 1
    lower = [int(b.start) for b in box][::-1]  # SimpleITK index order
    images = {}
    for name, values in maps.items():
        pixel = np.uint8 if name in ("curve_type", "initial_phase") else np.float32
        block = np.where(inside, np.nan_to_num(values.reshape(inside.shape), nan=0.0), 0).astype(pixel)
        image = sitk.GetImageFromArray(block)
        image.SetSpacing(dce.phases[0].GetSpacing())
        image.SetDirection(dce.phases[0].GetDirection())
        image.SetOrigin(dce.phases[0].TransformIndexToPhysicalPoint(lower))
        if not crop:
            full = sitk.Image(dce.phases[0].GetSize(), image.GetPixelID())
            full.CopyInformation(dce.phases[0])
            image = paste_in_place(full, image, lower)
        copy_reference_metadata(dce.phases[0], image)
        images[name] = image
    return KineticMaps(**images)
