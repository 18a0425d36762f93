"""Find the lesions: ranked enhancing-lesion candidates and a CAD-style kinetic map from a DCE.

A classical, explainable detector in the manner of the breast MRI CAD systems radiologists have
used since the 2000s (kinetic colour maps over enhancing voxels), built from textbook image
analysis; no trained model. Every step is a rule with a reason, and every candidate says why it
ranks where it does (:attr:`Candidate.reasons`).

1. **Enhancement.** The DCE is block-averaged to a working grid of about 1.5 mm (a 5 mm lesion
   keeps three voxels across). Baseline ``S0`` (the pre-contrast phases' mean), first
   post-contrast phase ``E`` and last phase ``L``, lightly smoothed. A patient who moved between
   the phases is moved back: the shift of ``E`` (and ``L``) against ``S0`` is found by phase
   correlation of their edges (Kuglin & Hines 1975) and undone, so that tissue edges do not
   light up on the subtraction. Initial enhancement ``100 (E - S0) / max(S0, floor)`` (``floor``
   half the body's median baseline: in fat-suppressed fat the baseline is noise). A voxel
   *enhances* when its initial enhancement reaches ``enhancement_threshold_pct`` (50 %, the
   BI-RADS boundary between slow and medium initial enhancement, where CAD systems threshold)
   and ``E - S0`` exceeds ``min_contrast_sd`` robust SDs of the subtraction.
2. **Where the breast is.** The body (above the air level of the field of view's corners, holes
   filled slice by slice); the **lungs** (air inside it, 20 cm³ or more) and, along the
   patient's left-right axis, everything between them (heart, mediastinum): the thorax, and
   everything behind its front. Not breast either: ``chest_wall_mm`` around the thorax, the
   last ``posterior_margin_mm`` of a field of view that cuts the trunk behind the breast (a
   sagittal or one-breast acquisition, lungs outside it), ``skin_mm`` under the body surface
   (skin enhancement and the edges motion leaves), and ``nipple_mm`` around each **nipple**
   (the most anterior body point of each breast; it enhances normally).
3. **Blobs.** Lesions are blobs of enhancement: local maxima over space and scale of the
   scale-normalised Laplacian of Gaussian of the breast's initial enhancement (Lindeberg,
   IJCV 1998), radii 2.6 to 24 mm. Each blob's extent is the region connected to its middle at
   half its own maximum (not climbing a brighter neighbour beyond its radius, so background
   enhancement does not take the lesion in it; a rim-enhancing lesion's dark middle takes its
   ring's maximum). Set aside, each with its reason:
   - **vessels**: a tube, not a ball (the Hessian's smallest to largest eigenvalue at the
     blob's scale under ``min_blobness``: Frangi et al., MICCAI 1998), or elongated and thin;
   - **foci**: under ``min_diameter_mm`` (5 mm, BI-RADS' focus) longest, or as a ball of its
     volume;
   - **sheets**: a few millimetres thin (motion edges, skin);
   - what enhances less than the threshold at its maximum.
4. **Rank.** A score from 0 to 1 (:data:`SCORE_PARTS`): blob response, roundness, mean initial
   enhancement, delayed curve (washout, plateaus counting half), margin sharpness, conspicuity
   over its surroundings, and isolation (vessels leaving it). Minus 0.3 when the field of view
   cuts it. Best first; a candidate mostly inside a better one (a lobe, a ring's arc) is the
   same finding, and so is one joined to a large one (25 mm or more) by enhancement at 60 % of
   the weaker top all the way. Candidates scoring under ``min_score`` are dropped (0.3: one
   false candidate per study on the tuning studies).

The weights were chosen on 25 synthetic tuning studies (:func:`radimt.synth.scene.breast_scene`
seeds 100-124) and frozen; ``benchmarks/bench_propose.py`` measures them on studies they never
saw. Limits: a lesion enhancing less than the threshold (a slowly enhancing benign mass) is not
proposed (lower the threshold to see it, with more background enhancement); a lesion within
``nipple_mm`` of the nipple or ``chest_wall_mm`` of the thorax is cut or missed; a large
heterogeneous tumour may come in several candidates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radimt.dicom.study import DCE, Study
from radimt.errors import RadimtError
from radimt.kinetics import KineticOptions, kinetic_curve
from radimt.measure import longest_diameter_mm
from radimt.options import Range, check_fields

#: Delayed curve classes of the kinetic map (its values 1, 2, 3; the segments of its DICOM SEG).
MAP_CLASSES = ("persistent", "plateau", "washout")
#: The working grid's voxel size (mm): finer DCE is block-averaged to it.
WORKING_MM = 1.5
#: Gaussian smoothing of the phases (sigma, working voxels): noise down, 5 mm lesions kept.
SMOOTHING = 0.6
#: Scales of the blob detector (Gaussian sigma, mm): blobs of radius sigma * sqrt(3), 2.6-24 mm.
BLOB_SCALES_MM = (1.5, 2.2, 3.2, 4.6, 6.6, 9.5, 13.7)
#: At most this many blobs are judged, strongest first (a study has a few hundred).
MAX_BLOBS = 300
#: The parts of a candidate's score: weight, and how a number becomes 0-1.
SCORE_PARTS: dict[str, tuple[float, str]] = {
    "blob": (0.25, "blob response over its surroundings, 0 at 35 % to 1 at 140 %"),
    "blobness": (0.25, "roundness (Hessian |l1|/|l3| at its scale), 0 at 0.4 to 1 at 0.8"),
    "enhancement": (0.10, "mean initial enhancement, 0 at 50 % to 1 at 150 %"),
    "curve": (0.15, "share of its voxels washing out, plateaus counting half"),
    "margin": (0.10, "how sharply enhancement drops at its edge, 0 to 1 at 0.5"),
    "conspicuity": (0.05, "how far above its surroundings, 0 to 1 at 100 %"),
    "isolation": (0.10, "no vessel leaving it: 1 for none, 0.5 for one (a feeding vessel), 0 for more"),
}


@dataclass(frozen=True)
class ProposeOptions:
    """The rules of :func:`propose` (the module notes say what each does).

    Examples
    --------
    >>> import radimt
    >>> radimt.ProposeOptions(enhancement_threshold_pct=100.0).min_diameter_mm
    5.0
    """

    enhancement_threshold_pct: float = 50.0
    min_contrast_sd: float = 4.0
    min_diameter_mm: float = 5.0
    skin_mm: float = 4.0
    nipple_mm: float = 20.0
    chest_wall_mm: float = 15.0
    posterior_margin_mm: float = 30.0
    vessel_elongation: float = 3.0
    min_blobness: float = 0.4
    min_blob_response: float = 14.0
    min_score: float = 0.3
    max_candidates: int = 10

    def __post_init__(self) -> None:
        check_fields(self, _RANGES)


_RANGES: dict[str, Range] = {
    "enhancement_threshold_pct": (0.0, 1000.0),
    "min_contrast_sd": (0.0, 100.0),
    "min_diameter_mm": (0.0, 200.0),
    "skin_mm": (0.0, 50.0),
    "nipple_mm": (0.0, 100.0),
    "chest_wall_mm": (0.0, 100.0),
    "posterior_margin_mm": (0.0, 200.0),
    "vessel_elongation": (1.0, 100.0),
    "min_blobness": (0.0, 1.0),
    "min_blob_response": (0.0, 10_000.0),
    "min_score": (-1.0, 1.0),
    "max_candidates": (1, 1000),
}


@dataclass
class Candidate:
    """One enhancing-lesion candidate.

    Attributes
    ----------
    rank
        1 = the most suspicious.
    seed
        A point inside it (LPS mm): its blob's middle, else its most enhancing inner voxel.
    score
        0-1, the sum of the parts its ``reasons`` list.
    volume_mm3, longest_diameter_mm
        Its size (its voxels at half its maximum enhancement).
    peak_initial_enhancement_pct
        The 90th percentile of its voxels' initial enhancement.
    curve_type
        Kuhl type of its most suspicious curve ("worst curve" rule: :func:`radimt.kinetic_curve`'s
        most suspicious region of three voxels or more, on the DCE's own voxels): I, II or III.
    shares
        Share of its enhancing voxels that are persistent, plateau, washout.
    laterality
        ``L`` or ``R`` (patient left or right).
    reasons
        Why it ranks where it does, in words.
    mask
        Its voxels, on the DCE's grid.
    details
        The numbers behind the score (blob response, blobness, conspicuity...).
    """

    rank: int
    seed: tuple[float, float, float]
    score: float
    volume_mm3: float
    longest_diameter_mm: float
    peak_initial_enhancement_pct: float
    curve_type: str
    shares: dict[str, float]
    laterality: str
    reasons: list[str]
    mask: sitk.Image = field(repr=False)
    details: dict[str, float] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """The candidate's numbers as ``candidate_*`` columns of a manifest row."""
        return {
            "candidate_score": round(self.score, 3),
            "candidate_volume_mm3": round(self.volume_mm3, 1),
            "candidate_longest_diameter_mm": round(self.longest_diameter_mm, 1),
            "candidate_peak_initial_enhancement_pct": round(self.peak_initial_enhancement_pct, 1),
            "candidate_curve_type": self.curve_type,
            "candidate_laterality": self.laterality,
            "candidate_reasons": "; ".join(self.reasons),
        }


@dataclass
class Proposal:
    """What :func:`propose` found in one DCE.

    Attributes
    ----------
    candidates
        Ranked, most suspicious first.
    kinetic_map
        uint8 image on the DCE's grid: 0 not an enhancing breast voxel, 1 persistent, 2 plateau,
        3 washout (:data:`MAP_CLASSES`).
    early_subtraction
        The first post-contrast phase minus the baseline, on the working grid (for figures).
    dropped
        Blobs set aside, each with why and where (``{"reason": ..., "seed": ...}``).
    regions
        Voxel counts of the regions found (body, lungs, thorax, breast) and the motion undone
        (working voxels).
    """

    candidates: list[Candidate]
    kinetic_map: sitk.Image
    early_subtraction: sitk.Image
    dropped: list[dict[str, Any]]
    regions: dict[str, Any]


def propose(
    dce: DCE | Study, options: ProposeOptions | None = None, kinetics: KineticOptions | None = None
) -> Proposal:
    """Ranked enhancing-lesion candidates and the kinetic map of a DCE (see the module notes).

    Parameters
    ----------
    dce
        ``study.dce`` (or the study): at least one pre- and one post-contrast phase.
    options
        The rules (:class:`ProposeOptions`).
    kinetics
        Curve-type thresholds and the pre-contrast phase count (:class:`radimt.KineticOptions`).

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> found = radimt.propose(study.dce)
    >>> best = found.candidates[0]
    >>> best.rank, best.curve_type, best.laterality
    (1, 'III', 'L')
    >>> bool(sum((a - b) ** 2 for a, b in zip(best.seed, truth["seed_lps"])) < 49)  # within 7 mm
    True
    """
    options = options or ProposeOptions()
    kinetics = kinetics or KineticOptions()
    if isinstance(dce, Study):
        if dce.dce is None:
            raise RadimtError(f"{dce.path}: no DCE series to look for lesions in (roles: {dce.roles})")
        dce = dce.dce
    n_pre = int(kinetics.n_baseline or dce.n_precontrast)
    if len(dce.phases) <= n_pre:
        raise RadimtError(f"the DCE has {len(dce.phases)} phase(s), none after its {n_pre} pre-contrast")
    full = dce.phases[0]
    factors = _working_factors(full)
    grid = _working_grid(full, factors)
    spacing = np.asarray(grid.GetSpacing()[::-1], float)  # array (z, y, x) order
    baseline = np.mean([_block_mean(p, factors) for p in dce.phases[:n_pre]], axis=0, dtype=np.float32)
    baseline = ndimage.gaussian_filter(baseline, SMOOTHING)
    early = ndimage.gaussian_filter(_block_mean(dce.phases[n_pre], factors), SMOOTHING)
    late = early
    if len(dce.phases) > n_pre + 1:
        late = ndimage.gaussian_filter(_block_mean(dce.phases[-1], factors), SMOOTHING)
    motion = _translation(baseline, early)
    if np.abs(motion).max() >= 0.25:  # a patient who moved: undo it before subtracting
        early = ndimage.shift(early, -motion, order=1, mode="nearest")
        late = ndimage.shift(late, -_translation(baseline, late), order=1, mode="nearest")
    difference = early - baseline

    regions = _breast_region(baseline, early, grid, spacing, options)
    breast, body = regions.pop("breast"), regions.pop("body_mask")
    floor = max(0.5 * float(np.median(baseline[body])), 1e-6)
    initial = 100.0 * difference / np.maximum(baseline, floor)
    noise = _robust_sd(difference)
    enhancing = breast & (initial >= options.enhancement_threshold_pct)
    enhancing &= difference >= options.min_contrast_sd * noise
    delayed = 100.0 * (late - early) / np.maximum(early, floor)
    kinetic_map = np.zeros(enhancing.shape, np.uint8)
    kinetic_map[enhancing] = np.where(
        delayed[enhancing] > kinetics.persistent_above,
        1,
        np.where(delayed[enhancing] < kinetics.washout_below, 3, 2),
    )
    # The blob detector sees the breast's initial enhancement, unthresholded (noise-level
    # differences and everything outside the breast at 0), so that a blob's response measures
    # how far it stands above its surroundings.
    detect = np.where(breast & (difference >= 2 * noise), np.clip(initial, 0, 400), 0).astype(np.float32)
    context = _Context(grid, spacing, initial, detect, difference, kinetic_map, breast, enhancing, options)

    dropped: list[dict[str, Any]] = []
    judged: list[tuple[float, list[str], dict[str, Any], np.ndarray, tuple[slice, ...]]] = []
    for peak, scale, strength in _blobs(detect, spacing, options)[:MAX_BLOBS]:
        verdict = _judge(context, peak, scale, strength)
        if isinstance(verdict, str):
            dropped.append({"reason": verdict, "seed": _lps(grid, peak)})
            continue
        numbers, region, box = verdict
        score, reasons = _score(numbers)
        judged.append((score, reasons, numbers, region, box))

    candidates: list[Candidate] = []
    kept: list[dict[str, Any]] = []
    kept_mask = np.zeros(enhancing.shape, bool)
    margin = _ball(np.maximum(np.round(3.0 / spacing), 1).astype(int))
    midline = _midline_x(grid, regions)
    for score, reasons, numbers, region, box in sorted(judged, key=lambda item: -item[0]):
        overlap = float(kept_mask[box][region].mean())
        if (
            kept_mask[numbers["seed_voxel"]]
            or overlap > 0.3
            or any(_one_object(detect, k, numbers, spacing) for k in kept)
        ):
            dropped.append({"reason": "part of a better candidate", "seed": numbers["seed"]})
            continue
        if score < options.min_score:
            dropped.append(
                {"reason": f"score {score:.2f} under {options.min_score:g}", "seed": numbers["seed"]}
            )
            continue
        kept_mask[box] |= ndimage.binary_dilation(region, structure=margin)
        kept.append(numbers)
        if len(candidates) >= options.max_candidates:
            dropped.append({"reason": f"beyond the {options.max_candidates} best", "seed": numbers["seed"]})
            continue
        mask = np.zeros(enhancing.shape, np.uint8)
        mask[box][region] = 1
        image = _to_full(mask, factors, full)
        worst = _worst_curve(dce, image, box, factors, kinetics)
        candidates.append(
            Candidate(
                rank=len(candidates) + 1,
                seed=numbers["seed"],
                score=score,
                volume_mm3=numbers["volume_mm3"],
                longest_diameter_mm=numbers["longest_mm"],
                peak_initial_enhancement_pct=numbers["peak"],
                curve_type=worst,
                shares=numbers["shares"],
                laterality="L" if numbers["seed"][0] > midline else "R",
                reasons=[*reasons, f"worst curve (its most suspicious region of 3 voxels): type {worst}"],
                mask=image,
                details={k: float(v) for k, v in numbers.items() if isinstance(v, (int, float))},
            )
        )
    subtraction = sitk.GetImageFromArray(difference.astype(np.float32))
    subtraction.CopyInformation(grid)
    regions["breast"] = int(breast.sum())
    regions["motion_voxels"] = [round(float(v), 2) for v in motion[::-1]]  # x, y, z
    return Proposal(candidates, _to_full(kinetic_map, factors, full), subtraction, dropped, regions)


@dataclass
class _Context:
    """The maps every candidate is judged on (working grid)."""

    grid: sitk.Image
    spacing: np.ndarray
    initial: np.ndarray
    detect: np.ndarray
    difference: np.ndarray
    kinetic_map: np.ndarray
    breast: np.ndarray
    enhancing: np.ndarray
    options: ProposeOptions


def _worst_curve(
    dce: DCE,
    mask: sitk.Image,
    box: tuple[slice, ...],
    factors: tuple[int, int, int],
    kinetics: KineticOptions,
) -> str:
    """The candidate's worst curve type by radimt's kinetics, on the phases cropped to its box."""
    start = [b.start * f for b, f in zip(box, factors, strict=True)][::-1]
    size = [(b.stop - b.start) * f for b, f in zip(box, factors, strict=True)][::-1]
    size = [min(n, limit - s) for n, s, limit in zip(size, start, mask.GetSize(), strict=True)]
    phases = [sitk.RegionOfInterest(p, size, start) for p in dce.phases]
    cropped = DCE(
        phases=phases,
        times=dce.times,
        time_source=dce.time_source,
        series=dce.series,
        n_precontrast=dce.n_precontrast,
        arrival_s=dce.arrival_s,
    )
    options = {k: v for k, v in asdict(kinetics).items() if v != getattr(KineticOptions(), k)}
    curve = kinetic_curve(cropped, sitk.RegionOfInterest(mask, size, start), **options)
    return (curve.most_suspicious or curve.mean).curve_type


# -- the working grid ----------------------------------------------------------------------


def _working_factors(image: sitk.Image) -> tuple[int, int, int]:
    """Block sizes (z, y, x) that bring the voxels nearest WORKING_MM without exceeding it."""
    z, y, x = (max(1, int(WORKING_MM // s)) for s in image.GetSpacing()[::-1])
    return z, y, x


def _block_mean(image: sitk.Image, factors: tuple[int, int, int]) -> np.ndarray:
    """The image averaged in blocks of ``factors`` voxels (a trailing partial block dropped;
    SimpleITK's BinShrink), as float32."""
    if factors == (1, 1, 1):
        return sitk.GetArrayViewFromImage(image).astype(np.float32)
    shrunk = sitk.BinShrink(sitk.Cast(image, sitk.sitkFloat32), [int(f) for f in factors[::-1]])
    return sitk.GetArrayFromImage(shrunk)


def _working_grid(image: sitk.Image, factors: tuple[int, int, int]) -> sitk.Image:
    """An empty image with the block-averaged grid's geometry (voxel centres at block centres)."""
    size = [n // f for n, f in zip(image.GetSize(), factors[::-1], strict=True)]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing([s * f for s, f in zip(image.GetSpacing(), factors[::-1], strict=True)])
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(image.TransformContinuousIndexToPhysicalPoint([(f - 1) / 2 for f in factors[::-1]]))
    return grid


def _to_full(array: np.ndarray, factors: tuple[int, int, int], full: sitk.Image) -> sitk.Image:
    """A working-grid label array on the DCE's own grid: each block's value in its voxels (a
    trailing partial block, which the working grid dropped, 0)."""
    out = np.zeros(sitk.GetArrayViewFromImage(full).shape, array.dtype)
    where = np.nonzero(array)
    if where[0].size:
        low = [int(w.min()) for w in where]
        high = [int(w.max()) + 1 for w in where]
        box = array[tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))]
        for axis, f in enumerate(factors):
            box = np.repeat(box, f, axis=axis)
        out[tuple(slice(lo * f, lo * f + n) for lo, f, n in zip(low, factors, box.shape, strict=True))] = box
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(full)
    return image


def _translation(fixed: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """How far ``moving`` is shifted from ``fixed`` (voxels, array order): phase correlation of
    their gradient magnitudes (edges move with the patient; contrast changes how bright tissue
    is, not where its edges are), refined to a fraction of a voxel by a parabola through the
    peak. Large volumes are correlated at every second voxel."""
    stride = 2 if fixed.size > 4_000_000 else 1

    def edges(a: np.ndarray) -> np.ndarray:
        g = ndimage.gaussian_gradient_magnitude(a[::stride, ::stride, ::stride], 1.0)
        return (g - g.mean()).astype(np.float32)

    a, b = edges(fixed), edges(moving)
    cross = np.fft.rfftn(b) * np.conj(np.fft.rfftn(a))
    cross /= np.maximum(np.abs(cross), 1e-12)
    correlation = np.fft.irfftn(cross, s=a.shape, axes=(0, 1, 2))
    peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    shift = np.zeros(3)
    for axis in range(3):
        n = correlation.shape[axis]
        values = []
        for step in (-1, 0, 1):
            index = list(peak)
            index[axis] = (peak[axis] + step) % n
            values.append(float(correlation[tuple(index)]))
        curvature = values[0] - 2 * values[1] + values[2]
        offset = 0.5 * (values[0] - values[2]) / curvature if curvature else 0.0
        position = peak[axis] + float(np.clip(offset, -0.5, 0.5))
        shift[axis] = position - n if position > n / 2 else position
    return shift * stride


def _robust_sd(values: np.ndarray) -> float:
    sample = values.ravel()[:: max(1, values.size // 2_000_000)]
    median = float(np.median(sample))
    return max(1.4826 * float(np.median(np.abs(sample - median))), 1e-6)


def _ball(radius: np.ndarray) -> np.ndarray:
    """A ball of per-axis radii (voxels)."""
    grids = np.ogrid[tuple(slice(-int(k), int(k) + 1) for k in radius)]
    distance = sum((g / max(int(k), 1)) ** 2 for g, k in zip(grids, radius, strict=True))
    return np.asarray(distance) <= 1.0


def _lps(grid: sitk.Image, voxel: tuple[int, ...]) -> tuple[float, float, float]:
    x, y, z = grid.TransformIndexToPhysicalPoint([int(voxel[2]), int(voxel[1]), int(voxel[0])])
    return float(x), float(y), float(z)


def _voxel(grid: sitk.Image, point: tuple[float, float, float]) -> tuple[int, int, int]:
    i, j, k = grid.TransformPhysicalPointToIndex(point)
    return int(k), int(j), int(i)


# -- where the breast is -------------------------------------------------------------------

_IMAGE_AXIS = {0: 2, 1: 1, 2: 0}  # array axis -> image axis (and back)


def _axes(grid: sitk.Image) -> tuple[int, int, int]:
    """The array axes closest to the patient's left-right, anterior-posterior and superior-inferior."""
    direction = np.asarray(grid.GetDirection()).reshape(3, 3)  # columns: image axes in LPS
    lr, ap, si = (_IMAGE_AXIS[int(np.argmax(np.abs(direction[row])))] for row in range(3))
    return lr, ap, si


def _posterior_is_high_index(grid: sitk.Image, ap: int) -> bool:
    """Whether the array index along the anterior-posterior axis grows towards posterior (+y)."""
    direction = np.asarray(grid.GetDirection()).reshape(3, 3)
    return bool(direction[1, _IMAGE_AXIS[ap]] > 0)


def _breast_region(
    baseline: np.ndarray, early: np.ndarray, grid: sitk.Image, spacing: np.ndarray, options: ProposeOptions
) -> dict[str, Any]:
    """Body, lungs, thorax, chest wall, skin band and nipples: the breast is the body less all of
    them (module notes, step 2)."""
    lr, ap, _ = _axes(grid)
    signal = 0.5 * (baseline + early)
    corners = [
        signal[tuple(slice(0, 4) if high else slice(-4, None) for high in corner)].ravel()
        for corner in np.ndindex(2, 2, 2)
    ]
    air = float(np.median(np.concatenate(corners)))
    above = signal > 3 * air + 1e-6
    tissue = float(np.median(signal[above])) if above.any() else air + 1
    solid = ndimage.binary_opening(signal > air + 0.35 * (tissue - air), iterations=1)
    labels, count = ndimage.label(solid)
    if count == 0:
        raise RadimtError("no body found in the DCE (only air?)")
    sizes = ndimage.sum(solid, labels, range(1, count + 1))
    solid = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.1 * sizes.max()))
    body = np.stack([ndimage.binary_fill_holes(plane) for plane in solid])  # per acquired slice
    holes = body & ~solid
    lung_labels, n_holes = ndimage.label(holes)
    lungs = np.zeros_like(body)
    if n_holes:
        volumes = ndimage.sum(holes, lung_labels, range(1, n_holes + 1)) * float(np.prod(spacing))
        lungs = np.isin(lung_labels, 1 + np.flatnonzero(volumes >= 20_000))  # 20 cm³ of air
    between = np.maximum.accumulate(lungs, axis=lr) & np.flip(
        np.maximum.accumulate(np.flip(lungs, lr), axis=lr), lr
    )
    thorax = lungs | (between & body)
    breast = body & (_distance_mm(~body, grid) > options.skin_mm)
    posterior_high = _posterior_is_high_index(grid, ap)
    if thorax.any():
        breast &= _distance_mm(thorax, grid) > options.chest_wall_mm
        ordered = thorax if posterior_high else np.flip(thorax, ap)
        behind = np.maximum.accumulate(ordered, axis=ap)  # behind the thorax's front: thorax too
        breast &= ~(behind if posterior_high else np.flip(behind, ap))
    slab = max(1, int(round(5.0 / spacing[ap])))  # the last 5 mm (scanners leave a dark margin)
    face: list[slice] = [slice(None)] * 3
    face[ap] = slice(-slab, None) if posterior_high else slice(0, slab)
    if body[tuple(face)].any(axis=ap).mean() > 0.1:  # the trunk goes on beyond the field of view
        along = np.arange(body.shape[ap], dtype=float) * spacing[ap]
        from_edge = (along[-1] - along) if posterior_high else along
        shape = [1, 1, 1]
        shape[ap] = -1
        breast &= from_edge.reshape(shape) > options.posterior_margin_mm
    nipples = _nipples(body, grid, lr, ap)
    for nipple in nipples if options.nipple_mm > 0 else []:
        reach = np.ceil(options.nipple_mm / spacing).astype(int)
        box = tuple(slice(max(int(c) - r, 0), int(c) + r + 1) for c, r in zip(nipple, reach, strict=True))
        offsets = np.indices(breast[box].shape).transpose(1, 2, 3, 0) + [b.start for b in box] - nipple
        breast[box] &= np.linalg.norm(offsets * spacing, axis=-1) > options.nipple_mm
    return {
        "breast": breast,
        "body_mask": body,
        "body": int(body.sum()),
        "lungs": int(lungs.sum()),
        "thorax": int(thorax.sum()),
        "nipples": len(nipples),
        "lr_axis": lr,
        "body_lr_extent": _extent(body, lr),
    }


def _distance_mm(mask: np.ndarray, grid: sitk.Image) -> np.ndarray:
    """Each voxel's distance (mm) from the nearest voxel of ``mask`` (0 in it); SimpleITK's
    Maurer distance map, multithreaded."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.CopyInformation(grid)
    distance = sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return np.maximum(sitk.GetArrayFromImage(distance), 0)


def _extent(mask: np.ndarray, axis: int) -> tuple[int, int]:
    present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    return (int(present[0]), int(present[-1])) if present.size else (0, 0)


def _bilateral(grid: sitk.Image, lr: int, low: int, high: int) -> bool:
    """Whether the body spans both breasts (over 250 mm from left to right)."""
    return (high - low) * grid.GetSpacing()[_IMAGE_AXIS[lr]] > 250


def _nipples(body: np.ndarray, grid: sitk.Image, lr: int, ap: int) -> list[np.ndarray]:
    """The most anterior body voxel (array index) of each side of a bilateral acquisition, or
    of the one breast."""
    if not body.any():
        return []
    anterior_low = _posterior_is_high_index(grid, ap)
    low, high = _extent(body, lr)
    middle = (low + high) // 2
    halves = [(low, middle), (middle, high + 1)] if _bilateral(grid, lr, low, high) else [(low, high + 1)]
    found = []
    for start, stop in halves:
        index: list[slice] = [slice(None)] * 3
        index[lr] = slice(start, stop)
        points = np.argwhere(body[tuple(index)])
        if not len(points):
            continue
        points[:, lr] += start
        order = points[:, ap] if anterior_low else -points[:, ap]
        found.append(points[int(np.argmin(order))].astype(float))
    return found


def _midline_x(grid: sitk.Image, regions: dict[str, Any]) -> float:
    """The patient's left-right middle (LPS x): the body's when it spans both breasts, else 0
    (the scanner's isocentre, where the patient lies)."""
    lr = regions["lr_axis"]
    low, high = regions["body_lr_extent"]
    if not _bilateral(grid, lr, low, high):
        return 0.0
    index = [n / 2 for n in grid.GetSize()]
    index[_IMAGE_AXIS[lr]] = (low + high) / 2
    return float(grid.TransformContinuousIndexToPhysicalPoint(index)[0])


# -- blobs -----------------------------------------------------------------------------------


def _blobs(
    image: np.ndarray, spacing: np.ndarray, options: ProposeOptions
) -> list[tuple[tuple[int, int, int], float, float]]:
    """Bright blobs by scale-normalised Laplacian of Gaussian: spatial local maxima of the
    strongest ``-sigma² LoG`` over the scales, each at the scale that gave it, strongest first,
    as (voxel, sigma mm, response in % enhancement)."""
    responses = _log_responses(image, spacing)
    best = responses.argmax(axis=0)
    strongest = np.take_along_axis(responses, best[None], axis=0)[0]
    del responses
    local = ndimage.maximum_filter(strongest, size=3, mode="nearest")
    peaks = np.argwhere((strongest == local) & (strongest >= options.min_blob_response))
    order = np.argsort(-strongest[tuple(peaks.T)])
    return [
        ((int(z), int(y), int(x)), BLOB_SCALES_MM[int(best[z, y, x])], float(strongest[z, y, x]))
        for z, y, x in peaks[order]
    ]


def _log_responses(image: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """``-sigma² LoG`` of the image at every BLOB_SCALES_MM, through one Fourier transform: the
    Gaussian's and the Laplacian's transfer functions multiply its spectrum (the image is zero
    outside the breast, so the transform's wrap-around adds nothing). float32, scales first."""
    spectrum = np.fft.rfftn(image.astype(np.float32))
    frequencies = [np.fft.fftfreq(n, d) for n, d in zip(image.shape[:-1], spacing[:-1], strict=True)]
    frequencies.append(np.fft.rfftfreq(image.shape[-1], spacing[-1]))
    axes = [f.reshape([-1 if a == k else 1 for a in range(3)]) ** 2 for k, f in enumerate(frequencies)]
    squared = (axes[0] + axes[1] + axes[2]).astype(np.float32)  # |f|², cycles per mm
    out = np.empty((len(BLOB_SCALES_MM), *image.shape), np.float32)
    for k, sigma in enumerate(BLOB_SCALES_MM):
        transfer = (sigma**2 * 4 * np.pi**2) * squared * np.exp(-2 * np.pi**2 * sigma**2 * squared)
        out[k] = np.fft.irfftn(spectrum * transfer, s=image.shape, axes=(0, 1, 2))
    return out


def _crop(shape: tuple[int, ...], centre: tuple[int, ...], reach: np.ndarray) -> tuple[slice, ...]:
    return tuple(
        slice(max(c - int(r), 0), min(c + int(r) + 1, n))
        for c, r, n in zip(centre, reach, shape, strict=True)
    )


def _distances(box: tuple[slice, ...], centre: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) of every voxel of ``box`` from ``centre``."""
    offsets = np.indices(tuple(b.stop - b.start for b in box)).transpose(1, 2, 3, 0)
    offsets = offsets + [b.start for b in box] - np.asarray(centre)
    return np.linalg.norm(offsets * spacing, axis=-1)


def _region(
    image: np.ndarray, peak: tuple[int, int, int], scale: float, spacing: np.ndarray
) -> tuple[np.ndarray, tuple[slice, ...], float]:
    """A blob's extent (within 2.5 blob radii), its box and its maximum (module notes, step 3)."""
    radius = scale * math.sqrt(3)
    box = _crop(image.shape, peak, np.ceil(2.5 * radius / spacing) + 1)
    crop = image[box]
    distance = _distances(box, peak, spacing)
    middle = (distance <= max(0.5 * radius, float(spacing.max()))) & (crop > 0)
    at_peak = float(image[peak])
    if not middle.any():
        return np.zeros(crop.shape, bool), box, 0.0
    # the peak's own enhancement, unless it is a ring's dark middle: then the ring's, which lies
    # out to the blob's radius
    if at_peak < 50.0:
        middle = (distance <= radius) & (crop > 0)
    top = float(crop[middle].max()) if at_peak < 50.0 else at_peak
    allowed = (crop <= 1.15 * top) | (distance <= radius)  # no brighter hill beyond its radius
    labels, _ = ndimage.label((crop >= 0.5 * top) & allowed, structure=np.ones((3, 3, 3), bool))
    touched = np.unique(labels[middle & (labels > 0)])
    return np.isin(labels, touched) & (distance <= 2.5 * radius), box, top


def _blobness(image: np.ndarray, peak: tuple[int, int, int], scale: float, spacing: np.ndarray) -> float:
    """|l1| / |l3| of the Hessian at the peak at the blob's scale (eigenvalues by magnitude; 0
    unless all are negative): near 1 for a ball, near 0 for a tube or a sheet. The Hessian of
    the Gaussian-smoothed image at one point is the image weighted by the Gaussian's second
    derivatives there: six sums over the blob's neighbourhood, no filtering."""
    box = _crop(image.shape, peak, np.ceil(4 * scale / spacing) + 1)
    crop = image[box].astype(np.float64)
    offsets = [
        (np.arange(b.start, b.stop) - c) * d for b, c, d in zip(box, peak, spacing, strict=True)
    ]  # mm from the peak, per axis
    gauss = [np.exp(-(o**2) / (2 * scale**2)) for o in offsets]
    first = [-o / scale**2 * g for o, g in zip(offsets, gauss, strict=True)]
    second = [(o**2 / scale**4 - 1 / scale**2) * g for o, g in zip(offsets, gauss, strict=True)]
    hessian = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            factors = [second[a] if a == i == j else first[a] if a in (i, j) else gauss[a] for a in range(3)]
            kernel = factors[0][:, None, None] * factors[1][None, :, None] * factors[2][None, None, :]
            hessian[i, j] = hessian[j, i] = float(np.sum(crop * kernel))
    eigen = np.linalg.eigvalsh(hessian)
    eigen = eigen[np.argsort(np.abs(eigen))]
    return 0.0 if np.any(eigen >= 0) else float(abs(eigen[0]) / abs(eigen[2]))


def _exits(enhancing: np.ndarray, peak: tuple[int, int, int], scale: float, spacing: np.ndarray) -> int:
    """How many separate enhancing structures leave a sphere around the blob (1.6 blob radii, 3 mm
    or more beyond it): a lesion has none or a feeding vessel, a stretch of vessel two."""
    radius = scale * math.sqrt(3)
    inner = max(1.6 * radius, radius + 3.0)
    outer = inner + 2.0 * float(spacing.max())
    box = _crop(enhancing.shape, peak, np.ceil(outer / spacing) + 1)
    distance = _distances(box, peak, spacing)
    connected, _ = ndimage.label(enhancing[box] & (distance <= outer), structure=np.ones((3, 3, 3), bool))
    near = np.unique(connected[(distance <= 0.5 * radius + float(spacing.max())) & (connected > 0)])
    shell = (distance > inner) & (distance <= outer) & np.isin(connected, near)
    return int(ndimage.label(shell, structure=np.ones((3, 3, 3), bool))[1])


def _sharpness(values: np.ndarray, region: np.ndarray) -> float:
    """How abruptly enhancement falls at the region's edge: the mean drop from its boundary
    voxels to the voxels just outside, over its mean (0-1). A lesion's margin is a step; background
    enhancement fades."""
    outside = ndimage.binary_dilation(region) & ~region
    inner = region & ~ndimage.binary_erosion(region)
    mean = float(values[region].mean()) if region.any() else 0.0
    if not outside.any() or not inner.any() or mean <= 0:
        return 0.0
    return float(np.clip((values[inner].mean() - values[outside].mean()) / mean, 0, 1))


# -- judging a blob --------------------------------------------------------------------------


def _judge(
    context: _Context, peak: tuple[int, int, int], scale: float, strength: float
) -> str | tuple[dict[str, Any], np.ndarray, tuple[slice, ...]]:
    """Why a blob is set aside, or its numbers, region and box."""
    c, options, spacing = context, context.options, context.spacing
    blobness = _blobness(c.detect, peak, scale, spacing)
    if blobness < options.min_blobness:
        return f"tube-like (a vessel): blobness {blobness:.2f}"
    region, box, top = _region(c.detect, peak, scale, spacing)
    if top < options.enhancement_threshold_pct:
        return f"enhances {top:.0f} %, under the threshold"
    values = c.initial[box][region]
    peak_pct = float(np.percentile(values, 90))
    # Its shape, on its core at half its 90th percentile (largest part): smoothing widens a
    # strongly enhancing thin vessel, but not at half its own maximum.
    core = region & (c.initial[box] >= 0.5 * peak_pct)
    parts, n = ndimage.label(core, structure=np.ones((3, 3, 3), bool))
    if n > 1:
        core = parts == 1 + int(np.argmax(ndimage.sum(core, parts, range(1, n + 1))))
    points = np.argwhere(core) * spacing
    volume = float(len(points) * np.prod(spacing))
    crop = sitk.GetImageFromArray(core.astype(np.uint8))
    crop.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    longest = longest_diameter_mm(crop)
    equivalent = (6 * volume / math.pi) ** (1 / 3)  # the diameter of a ball of its volume
    if longest < options.min_diameter_mm or equivalent < 0.9 * options.min_diameter_mm:
        smallest = options.min_diameter_mm
        return f"a focus: {longest:.1f} mm long, {equivalent:.1f} mm as a ball, under {smallest:g} mm"
    # Mean width across its length: the diameter of a cylinder of its volume and length (a
    # ball gives 0.82 of its length, a vessel however it curves its own calibre).
    width = math.sqrt(4 * volume / (math.pi * max(longest, 1e-6)))
    if (
        longest >= options.vessel_elongation * width and width < 4.5
    ) or width < 0.6 * options.min_diameter_mm:
        return f"vessel-like: {longest:.0f} mm long, {width:.1f} mm wide"
    if len(points) >= 4:
        axes = 4 * np.sqrt(np.maximum(np.sort(np.linalg.eigvalsh(np.cov(points.T)))[::-1], 1e-9))
        if axes[2] < 3.0 and axes[1] >= options.vessel_elongation * axes[2]:
            return f"sheet-like (a motion edge or skin): {axes[2]:.1f} mm thin"
    classes = c.kinetic_map[box][region]
    classes = classes[classes > 0]
    shares = {
        name: float(np.mean(classes == k + 1)) if classes.size else 0.0 for k, name in enumerate(MAP_CLASSES)
    }
    shell = ndimage.binary_dilation(region, structure=_ball(np.maximum(np.round(3.0 / spacing), 1)))
    shell &= ~region & c.breast[box]
    around = float(np.mean(c.initial[box][shell])) if shell.any() else 0.0
    cut = any(
        (s.start == 0 and region.take(0, axis=a).any()) or (s.stop == n and region.take(-1, axis=a).any())
        for a, (s, n) in enumerate(zip(box, c.initial.shape, strict=True))
    )
    seed = _seed(c.grid, box, region, c.initial, peak)
    numbers = {
        "blob_response": strength,
        "blob_scale_mm": scale,
        "blobness": blobness,
        "top": top,
        "peak": peak_pct,
        "mean": float(np.mean(values)),
        "conspicuity": float(np.mean(values)) - around,
        "sharpness": _sharpness(c.initial[box], region),
        "exits": _exits(c.enhancing, peak, scale, spacing),
        "width": width,
        "volume_mm3": volume,
        "longest_mm": longest,
        "shares": shares,
        "cut": cut,
        "seed": seed,
        "seed_voxel": _voxel(c.grid, seed),
    }
    return numbers, region, box


def _seed(
    grid: sitk.Image,
    box: tuple[slice, ...],
    region: np.ndarray,
    initial: np.ndarray,
    peak: tuple[int, int, int],
) -> tuple[float, float, float]:
    """The blob's peak when it lies in the region (the middle of a lesion), else the region's most
    enhancing voxel at least a voxel inside it."""
    local = tuple(p - b.start for p, b in zip(peak, box, strict=True))
    if region[local]:
        return _lps(grid, peak)
    inner = ndimage.binary_erosion(region)
    where = inner if inner.any() else region
    k = np.unravel_index(int(np.argmax(np.where(where, initial[box], -np.inf))), region.shape)
    return _lps(grid, tuple(int(v) + b.start for v, b in zip(k, box, strict=True)))


def _score(numbers: dict[str, Any]) -> tuple[float, list[str]]:
    """A candidate's score (0-1, less 0.3 when cut by the field of view) and its reasons."""
    shares = numbers["shares"]
    raw = {
        "blob": (numbers["blob_response"] - 35.0) / 105.0,
        "blobness": (numbers["blobness"] - 0.4) / 0.4,
        "enhancement": (numbers["mean"] - 50.0) / 100.0,
        "curve": shares["washout"] + 0.5 * shares["plateau"],
        "margin": numbers["sharpness"] / 0.5,
        "conspicuity": numbers["conspicuity"] / 100.0,
        "isolation": {0: 1.0, 1: 0.5}.get(int(numbers["exits"]), 0.0),
    }
    parts = {k: SCORE_PARTS[k][0] * float(np.clip(v, 0, 1)) for k, v in raw.items()}
    score = sum(parts.values()) - (0.3 if numbers["cut"] else 0.0)
    peak = numbers["peak"]
    phase = "fast" if peak > 100 else "medium" if peak >= 50 else "slow"
    reasons = [
        f"a blob {numbers['blob_response']:.0f} % above its surroundings, "
        f"{numbers['blob_scale_mm'] * math.sqrt(3):.0f} mm in radius: +{parts['blob']:.2f}",
        f"round (blobness {numbers['blobness']:.2f}): +{parts['blobness']:.2f}",
        f"initial enhancement {numbers['mean']:.0f} % on average, {peak:.0f} % at its 90th percentile "
        f"({phase}): +{parts['enhancement']:.2f}",
        f"washout in {100 * shares['washout']:.0f} %, plateau in {100 * shares['plateau']:.0f} % of its "
        f"voxels: +{parts['curve']:.2f}",
        f"margin sharpness {numbers['sharpness']:.2f}: +{parts['margin']:.2f}",
        f"{numbers['conspicuity']:.0f} % above the tissue around it: +{parts['conspicuity']:.2f}",
        f"{int(numbers['exits'])} vessel(s) leaving it: +{parts['isolation']:.2f}",
    ]
    if numbers["cut"]:
        reasons.append("cut by the edge of the field of view (heart, great vessels, chest wall?): -0.30")
    return float(score), reasons


def _one_object(
    image: np.ndarray, first: dict[str, Any], second: dict[str, Any], spacing: np.ndarray
) -> bool:
    """Whether ``second`` is part of ``first``, a large candidate (25 mm or more) within 60 mm: the
    enhancement between them stays at 60 % of the weaker top or more all the way (the saddle
    between two peaks is high within a lesion, low between a lesion and its neighbours)."""
    if first["longest_mm"] < 25.0:
        return False
    a, b = np.asarray(first["seed_voxel"]), np.asarray(second["seed_voxel"])
    if np.linalg.norm((a - b) * spacing) > 60.0:
        return False
    low, high = np.maximum(np.minimum(a, b) - 3, 0), np.minimum(np.maximum(a, b) + 4, image.shape)
    crop = image[tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high, strict=True))]
    level = 0.6 * min(first["top"], second["top"])
    labels, _ = ndimage.label(crop >= level, structure=np.ones((3, 3, 3), bool))
    la, lb = labels[tuple(a - low)], labels[tuple(b - low)]
    return bool(la and la == lb)
