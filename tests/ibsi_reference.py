"""A slow, plain reference for the IBSI families radimt computes itself, written from the IBSI
reference manual's definitions voxel by voxel (Python loops, no scipy.ndimage), to check
radimt.ibsi on ROIs the digital phantom cannot speak for.

Arrays are (z, y, x); ``spacing`` is (z, y, x) in mm. Nothing here is shared with radimt.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


def resegment(values, roi, low=None, high=None, sigma=None):
    """Intensity mask: range first (closed), then mean ± sigma SD of what the range kept."""
    keep = np.zeros(roi.shape, bool)
    for index in zip(*np.nonzero(roi), strict=True):
        x = values[index]
        keep[index] = (low is None or x >= low) and (high is None or x <= high)
    if sigma is not None:
        kept = [values[i] for i in zip(*np.nonzero(keep), strict=True)]
        mean = sum(kept) / len(kept)
        sd = math.sqrt(sum((x - mean) ** 2 for x in kept) / len(kept))
        for index in zip(*np.nonzero(keep), strict=True):
            if abs(values[index] - mean) > sigma * sd:
                keep[index] = False
    return keep


def discretise(values, keep, bin_width=None, bin_count=None, low=None):
    """Grey levels (0 outside ``keep``): fixed bin size from ``low`` (else the ROI minimum), or
    fixed bin number between the ROI's extremes."""
    inside = [values[i] for i in zip(*np.nonzero(keep), strict=True)]
    x_min, x_max = min(inside), max(inside)
    levels = np.zeros(values.shape, int)
    for index in zip(*np.nonzero(keep), strict=True):
        x = values[index]
        if bin_count is not None:
            if x == x_max:
                levels[index] = bin_count
            else:
                levels[index] = math.floor(bin_count * (x - x_min) / (x_max - x_min)) + 1
        else:
            origin = low if low is not None else x_min
            levels[index] = math.floor((x - origin) / bin_width) + 1
    return levels


def _offsets(in_plane: bool, faces_only: bool):
    out = []
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dz, dy, dx) == (0, 0, 0) or (in_plane and dz):
                    continue
                if faces_only and abs(dz) + abs(dy) + abs(dx) != 1:
                    continue
                out.append((dz, dy, dx))
    return out


def _voxels(levels, keep):
    """{(z, y, x): grey level} of the voxels of ``keep``."""
    return {tuple(int(i) for i in index): int(levels[tuple(index)]) for index in np.argwhere(keep)}


def _step(index, d):
    return (index[0] + d[0], index[1] + d[1], index[2] + d[2])


def ngldm(levels, keep, in_plane):
    """s[i, j]: voxels of level i with j neighbours (Chebyshev distance 1, in the mask) of the
    same level, j = 0 .. 26 (8 in plane); coarseness 0."""
    offsets = _offsets(in_plane, faces_only=False)
    voxels = _voxels(levels, keep)
    matrix = np.zeros((max(voxels.values()), len(offsets) + 1))
    for index, level in voxels.items():
        same = sum(1 for d in offsets if voxels.get(_step(index, d)) == level)
        matrix[level - 1, same] += 1
    return matrix


def edge_distance(outline, in_plane):
    """Steps (face neighbours; in plane for 2D) from each voxel of ``outline`` to a voxel
    outside it (or outside the image): {voxel: steps}, 1 on the edge."""
    offsets = _offsets(in_plane, faces_only=True)
    inside = {tuple(int(i) for i in index) for index in np.argwhere(outline)}
    distance = {}
    queue = deque()
    for index in inside:
        if any(_step(index, d) not in inside for d in offsets):
            distance[index] = 1
            queue.append(index)
    while queue:
        index = queue.popleft()
        for d in offsets:
            other = _step(index, d)
            if other in inside and other not in distance:
                distance[other] = distance[index] + 1
                queue.append(other)
    return distance


def _zones(levels, keep, in_plane):
    """Zones (26-, in plane 8-connected voxels of one level in the mask), each as
    (level, list of its voxels), by flood fill."""
    offsets = _offsets(in_plane, faces_only=False)
    voxels = _voxels(levels, keep)
    seen = set()
    for start, level in voxels.items():
        if start in seen:
            continue
        seen.add(start)
        members, queue = [], deque([start])
        while queue:
            index = queue.popleft()
            members.append(index)
            for d in offsets:
                other = _step(index, d)
                if other not in seen and voxels.get(other) == level:
                    seen.add(other)
                    queue.append(other)
        yield level, members


def _count_matrix(pairs, rows):
    """x[i, j] from (grey level i, count j) pairs."""
    matrix = np.zeros((rows, max(j for _, j in pairs)))
    for i, j in pairs:
        matrix[i - 1, j - 1] += 1
    return matrix


def gldzm(levels, keep, outline, in_plane):
    """x[i, d]: zones of level i whose nearest voxel lies d steps from the morphological mask's
    edge."""
    distance = edge_distance(outline, in_plane)
    pairs = [(level, min(distance[v] for v in members)) for level, members in _zones(levels, keep, in_plane)]
    return _count_matrix(pairs, int(levels[keep].max()))


def glcm(levels, keep, direction):
    """Symmetric co-occurrence counts of (voxel, voxel + direction), both in the mask."""
    voxels = _voxels(levels, keep)
    matrix = np.zeros((max(voxels.values()), max(voxels.values())))
    for index, level in voxels.items():
        other = voxels.get(_step(index, direction))
        if other is not None:
            matrix[level - 1, other - 1] += 1
            matrix[other - 1, level - 1] += 1
    return matrix


def glrlm(levels, keep, direction):
    """Runs along ``direction``: from each voxel whose predecessor is not of its level (or
    not in the mask), walk forward while the level stays."""
    voxels = _voxels(levels, keep)
    back = (-direction[0], -direction[1], -direction[2])
    runs = []
    for index, level in voxels.items():
        if voxels.get(_step(index, back)) == level:
            continue
        length, position = 1, _step(index, direction)
        while voxels.get(position) == level:
            length, position = length + 1, _step(position, direction)
        runs.append((level, length))
    matrix = np.zeros((max(voxels.values()), max(n for _, n in runs)))
    for level, length in runs:
        matrix[level - 1, length - 1] += 1
    return matrix


def glszm(levels, keep, in_plane):
    """x[i, size]: zones of level i of that many voxels."""
    pairs = [(level, len(members)) for level, members in _zones(levels, keep, in_plane)]
    return _count_matrix(pairs, int(levels[keep].max()))


def ngtdm(levels, keep, in_plane):
    """s_i = sum over voxels of level i with a neighbour in the mask of |i - mean neighbour
    level| (Chebyshev 1, in plane for 2D); n_i = how many such voxels."""
    offsets = _offsets(in_plane, faces_only=False)
    voxels = _voxels(levels, keep)
    top = max(voxels.values())
    s, n = np.zeros(top), np.zeros(top)
    for index, level in voxels.items():
        around = [voxels[o] for o in (_step(index, d) for d in offsets) if o in voxels]
        if around:
            s[level - 1] += abs(level - sum(around) / len(around))
            n[level - 1] += 1
    return s, n


def matrix_features(matrix, n_voxels):
    """The features IBSI shares between NGLDM (j = dependence count + 1) and GLDZM (j =
    distance), each a sum over the matrix's cells, in NGLDM's naming order."""
    total = matrix.sum()
    rows, cols = matrix.shape
    f = dict.fromkeys(range(17), 0.0)
    row_sums = [sum(matrix[i, j] for j in range(cols)) for i in range(rows)]
    col_sums = [sum(matrix[i, j] for i in range(rows)) for j in range(cols)]
    mu_i = sum((i + 1) * row_sums[i] for i in range(rows)) / total
    mu_j = sum((j + 1) * col_sums[j] for j in range(cols)) / total
    for a in range(rows):
        for b in range(cols):
            p, i, j = matrix[a, b] / total, a + 1, b + 1
            f[0] += p / j**2
            f[1] += p * j**2
            f[2] += p / i**2
            f[3] += p * i**2
            f[4] += p / (i**2 * j**2)
            f[5] += p * i**2 / j**2
            f[6] += p * j**2 / i**2
            f[7] += p * i**2 * j**2
            f[13] += (i - mu_i) ** 2 * p
            f[14] += (j - mu_j) ** 2 * p
            f[15] -= p * math.log2(p) if p > 0 else 0.0
            f[16] += p**2
    f[8] = sum(s**2 for s in row_sums) / total
    f[9] = sum(s**2 for s in row_sums) / total**2
    f[10] = sum(s**2 for s in col_sums) / total
    f[11] = sum(s**2 for s in col_sums) / total**2
    f[12] = total / n_voxels
    return [f[k] for k in range(17)]


def histogram_features(grey):
    """Intensity histogram extras of the grey levels: mode, the histogram's largest and
    smallest gradient (central differences inside, one-sided at the ends) and their levels."""
    top = max(grey)
    counts = [0] * (top + 1)
    for g in grey:
        counts[g] += 1
    counts = counts[1:]
    n = len(counts)
    gradient = []
    for k in range(n):
        if n == 1:
            gradient.append(0.0)
        elif k == 0:
            gradient.append(counts[1] - counts[0])
        elif k == n - 1:
            gradient.append(counts[-1] - counts[-2])
        else:
            gradient.append((counts[k + 1] - counts[k - 1]) / 2)
    mode = max(range(n), key=lambda k: (counts[k], -k)) + 1
    high = max(range(n), key=lambda k: (gradient[k], -k))
    low = min(range(n), key=lambda k: (gradient[k], k))
    return {
        "Intensity histogram mode": mode,
        "Maximum histogram gradient": gradient[high],
        "Maximum histogram gradient intensity": high + 1,
        "Minimum histogram gradient": gradient[low],
        "Minimum histogram gradient intensity": low + 1,
    }


def sphere_means(values, keep, spacing, radius):
    """Mean of the image voxels (in the ROI or not) within ``radius`` mm of each voxel of
    ``keep``, by summing shifted copies of the image over the sphere's offsets."""
    reach = [int(radius // s) + 1 for s in spacing]
    sums = np.zeros(values.shape)
    counts = np.zeros(values.shape)
    padded = np.pad(values, [(r, r) for r in reach])
    ones = np.pad(np.ones(values.shape), [(r, r) for r in reach])
    for dz in range(-reach[0], reach[0] + 1):
        for dy in range(-reach[1], reach[1] + 1):
            for dx in range(-reach[2], reach[2] + 1):
                if (dz * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dx * spacing[2]) ** 2 > radius**2:
                    continue
                window = tuple(
                    slice(r + d, r + d + n) for r, d, n in zip(reach, (dz, dy, dx), values.shape, strict=True)
                )
                sums += padded[window]
                counts += ones[window]
    return (sums / counts)[keep]


def ivh(values, low=None, high=None, bin_width=None, bin_count=None):
    """V10, V90, I10, I90 of the intensities ``values`` (a list): levels over the range (the
    re-segmentation bounds ``low``/``high`` where given, else the extremes), each read as an
    intensity (whole numbers), a bin centre (``bin_width``) or a bin number (``bin_count``);
    ν = share of voxels at the level or above, γ = the level's share of the range."""
    import bisect

    lo = min(values) if low is None else low
    hi = max(values) if high is None else high
    if bin_count is not None:
        bottom, top = min(values), max(values)
        bins = [min(bin_count, math.floor(bin_count * (v - bottom) / (top - bottom)) + 1) for v in values]
        level_values = list(range(1, bin_count + 1))
        after = bin_count + 1
    elif bin_width is not None:
        n = math.ceil((hi - lo) / bin_width) + 1
        bins = [math.floor((v - lo) / bin_width) + 1 for v in values]
        level_values = [lo + (k - 0.5) * bin_width for k in range(1, n + 1)]
        after = level_values[-1] + bin_width
    else:
        lo, hi = math.ceil(lo), math.floor(hi)
        bins = [int(v - lo) + 1 for v in values]
        level_values = list(range(lo, hi + 1))
        after = hi + 1
    ordered = sorted(bins)
    first, last = level_values[0], level_values[-1]
    rows = []
    for k, value in enumerate(level_values, start=1):
        at_or_above = (len(ordered) - bisect.bisect_left(ordered, k)) / len(ordered)
        rows.append((value, (value - first) / (last - first), at_or_above))

    def volume_at(x):
        return max(nu for _, gamma, nu in rows if gamma >= x)

    def intensity_at(x):
        found = [value for value, _, nu in rows if nu <= x]
        return min(found) if found else after

    return {
        "Volume fraction at 10% intensity": volume_at(0.10),
        "Volume fraction at 90% intensity": volume_at(0.90),
        "Intensity at 10% volume": intensity_at(0.10),
        "Intensity at 90% volume": intensity_at(0.90),
    }
