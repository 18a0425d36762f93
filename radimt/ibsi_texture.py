"""IBSI-1 texture families from grey levels radimt discretised itself: GLCM, GLRLM, GLSZM and
NGTDM (reference manual sections 3.6, 3.7, 3.8 and 3.11), in every aggregation.

pyradiomics bins the image itself (from ⌊min / w⌋, and slice by slice when asked for 2D
features), so it cannot take IBSI's grey levels. These functions take them: ``levels`` (1, 2,
... in the intensity mask ``kept``, 0 elsewhere; binned once over the whole ROI) on a (z, y, x)
array. Neighbours are at Chebyshev distance 1: 13 directions in 3D, 4 within a slice.

Aggregations (IBSI names): matrices per slice and direction with features averaged
(``2D, averaged``), per slice merged over directions (``2D, slice-merged``), per direction
merged over slices (``2.5D, direction-merged``), merged over both (``2.5D, merged``), per
direction over the volume (``3D, averaged``) and merged (``3D, merged``); families without
directions have ``2D`` (slice mean), ``2.5D`` (slices merged) and ``3D``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage

#: Neighbour directions (z, y, x): the 13 of 3D, of which the first 4 lie within a slice.
DIRECTIONS = (
    (0, 0, 1),
    (0, 1, 0),
    (0, 1, 1),
    (0, 1, -1),
    (1, 0, 0),
    (1, 0, 1),
    (1, 0, -1),
    (1, 1, 0),
    (1, -1, 0),
    (1, 1, 1),
    (1, 1, -1),
    (1, -1, 1),
    (1, -1, -1),
)
IN_PLANE = DIRECTIONS[:4]

Features = dict[str, float]


def _shifted_pairs(levels: np.ndarray, direction: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Level pairs (a voxel, its neighbour one step along ``direction``), both in the ROI."""
    source, target = [], []
    for step, n in zip(direction, levels.shape, strict=True):
        source.append(slice(max(0, -step), n - max(0, step)))
        target.append(slice(max(0, step), n - max(0, -step)))
    a, b = levels[tuple(source)], levels[tuple(target)]
    both = (a > 0) & (b > 0)
    return a[both], b[both]


def glcm_matrix(levels: np.ndarray, direction: tuple[int, int, int], n_levels: int) -> np.ndarray:
    """Symmetric co-occurrence counts of grey levels one step along ``direction``."""
    i, j = _shifted_pairs(levels, direction)
    counts = np.bincount((i - 1) * n_levels + (j - 1), minlength=n_levels * n_levels)
    matrix = counts.reshape(n_levels, n_levels).astype(np.float64)
    return matrix + matrix.T


def glcm_features(matrix: np.ndarray) -> Features:
    """The 25 IBSI GLCM features of a co-occurrence matrix (grey levels 1..N_g), summed over its
    non-empty cells (cost follows the pairs present, not N_g²)."""
    n_g = matrix.shape[0]
    rows, cols = np.nonzero(matrix)
    p = matrix[rows, cols] / matrix.sum()
    i, j = rows + 1.0, cols + 1.0
    p_i = np.bincount(rows, weights=p, minlength=n_g)
    p_j = np.bincount(cols, weights=p, minlength=n_g)
    levels = np.arange(1, n_g + 1.0)
    mu = float((i * p).sum())
    mu_i, mu_j = float((levels * p_i).sum()), float((levels * p_j).sum())
    sd_i = math.sqrt(float(((levels - mu_i) ** 2 * p_i).sum()))
    sd_j = math.sqrt(float(((levels - mu_j) ** 2 * p_j).sum()))
    difference = np.abs(i - j)
    p_diff = np.bincount(difference.astype(int), weights=p, minlength=n_g)
    p_sum = np.bincount((i + j).astype(int), weights=p, minlength=2 * n_g + 1)
    diffs, sums = np.arange(len(p_diff), dtype=float), np.arange(len(p_sum), dtype=float)
    mu_diff, mu_sum = float((diffs * p_diff).sum()), float((sums * p_sum).sum())
    cluster = i + j - mu_i - mu_j
    off_diagonal = i != j
    hxy = _entropy(p)
    hx = _entropy(p_i)
    hxy1 = float(-(p * np.log2(p_i[rows] * p_j[cols])).sum())
    present_i, present_j = p_i[p_i > 0], p_j[p_j > 0]
    hxy2 = _entropy(np.outer(present_i, present_j))
    return {
        "Joint maximum": float(p.max()),
        "Joint average": mu,
        "Joint variance": float(((i - mu) ** 2 * p).sum()),
        "Joint entropy": hxy,
        "Difference average": mu_diff,
        "Difference variance": float(((diffs - mu_diff) ** 2 * p_diff).sum()),
        "Difference entropy": _entropy(p_diff),
        "Sum average": mu_sum,
        "Sum variance": float(((sums - mu_sum) ** 2 * p_sum).sum()),
        "Sum entropy": _entropy(p_sum),
        "Angular second moment": float((p**2).sum()),
        "Contrast": float((difference**2 * p).sum()),
        "Dissimilarity": float((difference * p).sum()),
        "Inverse difference": float((p / (1 + difference)).sum()),
        "Normalised inverse difference": float((p / (1 + difference / n_g)).sum()),
        "Inverse difference moment": float((p / (1 + difference**2)).sum()),
        "Normalised inverse difference moment": float((p / (1 + difference**2 / n_g**2)).sum()),
        "Inverse variance": float((p[off_diagonal] / difference[off_diagonal] ** 2).sum()),
        "Correlation": (
            float(((i - mu_i) * (j - mu_j) * p).sum() / (sd_i * sd_j)) if sd_i * sd_j else math.nan
        ),
        "Autocorrelation": float((i * j * p).sum()),
        "Cluster tendency": float((cluster**2 * p).sum()),
        "Cluster shade": float((cluster**3 * p).sum()),
        "Cluster prominence": float((cluster**4 * p).sum()),
        "Information correlation 1": (hxy - hxy1) / hx if hx else math.nan,
        "Information correlation 2": math.sqrt(max(0.0, 1 - math.exp(-2 * (hxy2 - hxy)))),
    }


def _entropy(p: np.ndarray) -> float:
    nonzero = p[p > 0]
    return float(-(nonzero * np.log2(nonzero)).sum())


def glrlm_matrix(levels: np.ndarray, direction: tuple[int, int, int], n_levels: int) -> np.ndarray:
    """Run-length counts r[i, j]: runs of grey level i, j voxels long, along ``direction``."""
    shape = levels.shape
    step = np.asarray(direction)
    # A run starts where the voxel one step back is outside the ROI or of another level.
    back = np.zeros(shape, np.int64)
    source, target = [], []
    for d, n in zip(direction, shape, strict=True):
        source.append(slice(max(0, -d), n - max(0, d)))
        target.append(slice(max(0, d), n - max(0, -d)))
    back[tuple(target)] = levels[tuple(source)]
    starts = np.argwhere((levels > 0) & (back != levels))
    start_levels = levels[tuple(starts.T)]
    lengths = np.ones(len(starts), np.int64)
    active = np.arange(len(starts))
    position = starts.copy()
    while active.size:
        position[active] += step
        ahead = position[active]
        inside = np.all((ahead >= 0) & (ahead < shape), axis=1)
        same = np.zeros(active.size, bool)
        same[inside] = levels[tuple(ahead[inside].T)] == start_levels[active[inside]]
        lengths[active[same]] += 1
        active = active[same]
    matrix = np.zeros((n_levels, int(lengths.max()) if lengths.size else 1))
    np.add.at(matrix, (start_levels - 1, lengths - 1), 1)
    return matrix


def glszm_matrix(levels: np.ndarray, n_levels: int, in_plane: bool) -> np.ndarray:
    """Zone counts s[i, j]: connected (26-, or 8 within a slice) zones of level i of j voxels."""
    structure = np.ones((3, 3, 3), bool)
    if in_plane:
        structure[0] = structure[2] = False
    rows = []
    for level in np.unique(levels[levels > 0]):
        labels, n = ndimage.label(levels == level, structure=structure)
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            rows.append((int(level), sizes))
    width = max(int(sizes.max()) for _, sizes in rows)
    matrix = np.zeros((n_levels, width))
    for level, sizes in rows:
        np.add.at(matrix[level - 1], sizes - 1, 1)
    return matrix


#: Names of the 16 features IBSI defines alike on the grey level x size matrices of GLRLM (run
#: lengths), GLSZM (zone sizes), NGLDM (dependence counts + 1) and GLDZM (zone distances).
RUN_NAMES = (
    "Short runs emphasis",
    "Long runs emphasis",
    "Low grey level run emphasis",
    "High grey level run emphasis",
    "Short run low grey level emphasis",
    "Short run high grey level emphasis",
    "Long run low grey level emphasis",
    "Long run high grey level emphasis",
    "Grey level non-uniformity",
    "Normalised grey level non-uniformity",
    "Run length non-uniformity",
    "Normalised run length non-uniformity",
    "Run percentage",
    "Grey level variance",
    "Run length variance",
    "Run entropy",
)
ZONE_NAMES = (
    "Small zone emphasis",
    "Large zone emphasis",
    "Low grey level zone emphasis",
    "High grey level zone emphasis",
    "Small zone low grey level emphasis",
    "Small zone high grey level emphasis",
    "Large zone low grey level emphasis",
    "Large zone high grey level emphasis",
    "Grey level non-uniformity",
    "Normalised grey level non-uniformity",
    "Zone size non-uniformity",
    "Normalised zone size non-uniformity",
    "Zone percentage",
    "Grey level variance",
    "Zone size variance",
    "Zone size entropy",
)


DEPENDENCE_NAMES = (
    "Low dependence emphasis",
    "High dependence emphasis",
    "Low grey level count emphasis",
    "High grey level count emphasis",
    "Low dependence low grey level emphasis",
    "Low dependence high grey level emphasis",
    "High dependence low grey level emphasis",
    "High dependence high grey level emphasis",
    "Grey level non-uniformity",
    "Normalised grey level non-uniformity",
    "Dependence count non-uniformity",
    "Normalised dependence count non-uniformity",
    "Dependence count percentage",
    "Grey level variance",
    "Dependence count variance",
    "Dependence count entropy",
)
DISTANCE_NAMES = (
    "Small distance emphasis",
    "Large distance emphasis",
    "Low grey level zone emphasis",
    "High grey level zone emphasis",
    "Small distance low grey level emphasis",
    "Small distance high grey level emphasis",
    "Large distance low grey level emphasis",
    "Large distance high grey level emphasis",
    "Grey level non-uniformity",
    "Normalised grey level non-uniformity",
    "Zone distance non-uniformity",
    "Normalised zone distance non-uniformity",
    "Zone percentage",
    "Grey level variance",
    "Zone distance variance",
    "Zone distance entropy",
)


def size_features(matrix: np.ndarray, n_voxels: float, names: tuple[str, ...]) -> Features:
    """The 16 features of a grey level (rows) x run length / zone size (columns) count matrix:
    emphases, non-uniformities, percentage (counts / ``n_voxels``), variances, entropy."""
    total = matrix.sum()
    p = matrix / total
    i = np.arange(1, matrix.shape[0] + 1.0)[:, None]
    j = np.arange(1, matrix.shape[1] + 1.0)[None, :]
    p_i, p_j = p.sum(axis=1), p.sum(axis=0)
    mu_i, mu_j = float((i[:, 0] * p_i).sum()), float((j[0] * p_j).sum())
    values = (
        (p / j**2).sum(),
        (p * j**2).sum(),
        (p / i**2).sum(),
        (p * i**2).sum(),
        (p / (i**2 * j**2)).sum(),
        (p * i**2 / j**2).sum(),
        (p * j**2 / i**2).sum(),
        (p * i**2 * j**2).sum(),
        (matrix.sum(axis=1) ** 2).sum() / total,
        (p_i**2).sum(),
        (matrix.sum(axis=0) ** 2).sum() / total,
        (p_j**2).sum(),
        total / n_voxels,
        ((i[:, 0] - mu_i) ** 2 * p_i).sum(),
        ((j[0] - mu_j) ** 2 * p_j).sum(),
        _entropy(p),
    )
    return {name: float(v) for name, v in zip(names, values, strict=True)}


def ngtdm_sums(levels: np.ndarray, n_levels: int, in_plane: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per grey level: s_i (sum of |i − mean level of the voxel's neighbours in the ROI|) and
    n_i (voxels counted: those with at least one neighbour in the ROI)."""
    kernel = np.ones((3, 3, 3))
    if in_plane:
        kernel[0] = kernel[2] = 0
    kernel[1, 1, 1] = 0
    inside = (levels > 0).astype(np.float64)
    sums = ndimage.convolve(levels.astype(np.float64), kernel, mode="constant")
    counts = ndimage.convolve(inside, kernel, mode="constant")
    valid = (levels > 0) & (counts > 0)
    grey = levels[valid]
    s = np.bincount(grey - 1, weights=np.abs(grey - sums[valid] / counts[valid]), minlength=n_levels)
    n = np.bincount(grey - 1, minlength=n_levels).astype(np.float64)
    return s, n


def ngtdm_features(s: np.ndarray, n: np.ndarray) -> Features:
    """Coarseness, contrast, busyness, complexity and strength of NGTDM sums s_i and counts n_i."""
    n_v = n.sum()
    p = n / n_v
    present = p > 0
    levels = np.arange(1, len(p) + 1.0)[present]
    p, s = p[present], s[present]
    n_gp = len(p)
    diff2 = (levels[:, None] - levels[None, :]) ** 2
    weighted = (p * s).sum()
    coarseness = 1 / weighted if weighted else 1e6
    contrast = (
        (p[:, None] * p[None, :] * diff2).sum() / (n_gp * (n_gp - 1)) * s.sum() / n_v if n_gp > 1 else 0.0
    )
    busy_denominator = np.abs(levels[:, None] * p[:, None] - levels[None, :] * p[None, :]).sum()
    busyness = weighted / busy_denominator if busy_denominator else 0.0
    complexity = (
        np.abs(levels[:, None] - levels[None, :])
        * (p[:, None] * s[:, None] + p[None, :] * s[None, :])
        / (p[:, None] + p[None, :])
    ).sum() / n_v
    strength = ((p[:, None] + p[None, :]) * diff2).sum() / s.sum() if s.sum() else 0.0
    return {
        "Coarseness": float(coarseness),
        "Contrast": float(contrast),
        "Busyness": float(busyness),
        "Complexity": float(complexity),
        "Strength": float(strength),
    }


def _mean(rows: list[Features]) -> Features:
    return {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}


class _Sum:
    """A running sum of count matrices whose widths (run lengths) may differ."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None

    def add(self, matrix: np.ndarray) -> None:
        if self.total is None:
            self.total = matrix.copy()
            return
        width = max(self.total.shape[1], matrix.shape[1])
        if self.total.shape[1] < width:
            self.total = np.pad(self.total, ((0, 0), (0, width - self.total.shape[1])))
        self.total[:, : matrix.shape[1]] += matrix


def _directional(
    levels: np.ndarray,
    build: Callable[[np.ndarray, tuple[int, int, int]], np.ndarray],
    features: Callable[[np.ndarray, float], Features],
    slices: list[int],
) -> dict[str, Features]:
    """The six IBSI aggregations of a family with directions (GLCM, GLRLM); ``features`` gets a
    matrix and the voxel count its percentage divides by (voxels x directions when merged).
    Matrices are summed as they are made: a few are held at once, whatever N_g."""
    n_voxels = float(np.count_nonzero(levels))
    averaged, slice_merged = [], []
    by_direction = {d: _Sum() for d in IN_PLANE}
    everything = _Sum()
    for k in slices:
        in_slice = float(np.count_nonzero(levels[k]))
        this_slice = _Sum()
        for d in IN_PLANE:
            matrix = build(levels[k : k + 1], d)
            averaged.append(features(matrix, in_slice))
            for total in (this_slice, by_direction[d], everything):
                total.add(matrix)
        assert this_slice.total is not None
        slice_merged.append(features(this_slice.total, in_slice * len(IN_PLANE)))
    volume, whole = [], _Sum()
    for d in DIRECTIONS:
        matrix = build(levels, d)
        volume.append(features(matrix, n_voxels))
        whole.add(matrix)
    assert everything.total is not None and whole.total is not None
    return {
        "2D, averaged": _mean(averaged),
        "2D, slice-merged": _mean(slice_merged),
        "2.5D, direction-merged": _mean(
            [features(total.total, n_voxels) for total in by_direction.values() if total.total is not None]
        ),
        "2.5D, merged": features(everything.total, n_voxels * len(IN_PLANE)),
        "3D, averaged": _mean(volume),
        "3D, merged": features(whole.total, n_voxels * len(DIRECTIONS)),
    }


def texture_features(levels: np.ndarray) -> dict[tuple[str, str, str], float]:
    """GLCM, GLRLM, GLSZM and NGTDM features of discretised ``levels`` (0 outside the intensity
    mask), keyed ``(family, feature, aggregation)``."""
    n_levels = int(levels.max())
    slices = [k for k in range(levels.shape[0]) if levels[k].any()]
    out: dict[tuple[str, str, str], float] = {}

    def add(family: str, aggregations: dict[str, Features]) -> None:
        for aggregation, values in aggregations.items():
            out.update({(family, name, aggregation): v for name, v in values.items()})

    add(
        "glcm",
        _directional(
            levels, lambda a, d: glcm_matrix(a, d, n_levels), lambda m, _n: glcm_features(m), slices
        ),
    )
    add(
        "glrlm",
        _directional(
            levels,
            lambda a, d: glrlm_matrix(a, d, n_levels),
            lambda m, n: size_features(m, n, RUN_NAMES),
            slices,
        ),
    )
    n_voxels = float(np.count_nonzero(levels))
    zones = {k: glszm_matrix(levels[k : k + 1], n_levels, True) for k in slices}
    width = max(m.shape[1] for m in zones.values())
    add(
        "glszm",
        {
            "2D": _mean(
                [size_features(m, float(np.count_nonzero(levels[k])), ZONE_NAMES) for k, m in zones.items()]
            ),
            "2.5D": size_features(
                np.sum([np.pad(m, ((0, 0), (0, width - m.shape[1]))) for m in zones.values()], axis=0),
                n_voxels,
                ZONE_NAMES,
            ),
            "3D": size_features(glszm_matrix(levels, n_levels, False), n_voxels, ZONE_NAMES),
        },
    )
    sums = {k: ngtdm_sums(levels[k : k + 1], n_levels, True) for k in slices}
    merged_s = np.sum([s for s, _ in sums.values()], axis=0)
    merged_n = np.sum([n for _, n in sums.values()], axis=0)
    add(
        "ngtdm",
        {
            "2D": _mean([ngtdm_features(*sums[k]) for k in slices]),
            "2.5D": ngtdm_features(merged_s, merged_n),
            "3D": ngtdm_features(*ngtdm_sums(levels, n_levels, False)),
        },
    )
    return out
