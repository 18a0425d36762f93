"""How well lesion candidates find a scene's lesions: each candidate judged against the truth,
and lesion-level FROC points over a cohort.

A candidate *hits* a lesion when its seed lies in the lesion (its label in the scene) or within
``tolerance_mm`` of its surface; the first candidate on a lesion is a true positive, any later
one a duplicate. Every candidate that is not a true positive is a false candidate, named after
what its seed lies in (heart, vessel, background enhancement, ..., duplicate), so a table can
say which distractor fools the detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radimt.synth.scene import KINDS, Scene

#: FROC operating points: false candidates per study.
FP_RATES = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class JudgedCandidate:
    """A candidate of one study: its score, what it hit (``lesion`` for a true positive) and,
    for a true positive, the lesion's number (1-based) and diameter."""

    study: str
    score: float
    kind: str
    lesion: int = 0
    diameter_mm: float = 0.0


@dataclass(frozen=True)
class JudgedStudy:
    """All candidates of a study, judged, and the diameters of the lesions none of them hit."""

    study: str
    candidates: list[JudgedCandidate]
    lesion_diameters_mm: list[float]
    missed_diameters_mm: list[float]


def judge(
    study: str,
    scene: Scene,
    seeds: Sequence[Sequence[float]],
    scores: Sequence[float],
    tolerance_mm: float = 3.0,
) -> JudgedStudy:
    """Judge one study's candidates (seeds in LPS mm, best first) against its scene."""
    hit: set[int] = set()
    judged = []
    size = np.asarray(scene.grid.size)
    for seed, score in zip(seeds, scores, strict=True):
        index = np.clip(np.round(scene.grid.index(list(seed))).astype(int), 0, size - 1)
        voxel = (index[2], index[1], index[0])
        lesion = int(scene.lesion_ids[voxel])
        if lesion == 0 and scene.lesions:
            gaps = [
                np.linalg.norm(np.subtract(seed, item.centre)) - item.diameter_mm / 2
                for item in scene.lesions
            ]
            if min(gaps) <= tolerance_mm:
                lesion = int(np.argmin(gaps)) + 1
        if lesion and lesion not in hit:
            hit.add(lesion)
            diameter = scene.lesions[lesion - 1].diameter_mm
            judged.append(JudgedCandidate(study, float(score), "lesion", lesion, diameter))
        elif lesion:
            judged.append(JudgedCandidate(study, float(score), "duplicate", lesion))
        else:
            judged.append(JudgedCandidate(study, float(score), KINDS.get(int(scene.labels[voxel]), "other")))
    diameters = [item.diameter_mm for item in scene.lesions]
    missed = [item.diameter_mm for k, item in enumerate(scene.lesions, 1) if k not in hit]
    return JudgedStudy(study, judged, diameters, missed)


@dataclass(frozen=True)
class FrocPoint:
    """Sensitivity at a rate of false candidates per study, and the score threshold there."""

    fp_per_study: float
    sensitivity: float
    threshold: float


def froc(
    studies: Sequence[JudgedStudy],
    rates: Sequence[float] = FP_RATES,
    *,
    min_diameter_mm: float = 0.0,
    max_diameter_mm: float = float("inf"),
) -> list[FrocPoint]:
    """Lesion-level FROC points: for each rate, the best sensitivity over score thresholds at
    which the false candidates per study stay at or under it (lesions of the given size range;
    false candidates always all)."""

    def counted(diameter: float) -> bool:
        return min_diameter_mm <= diameter < max_diameter_mm

    n_lesions = sum(counted(d) for s in studies for d in s.lesion_diameters_mm)
    ranked = sorted((c for s in studies for c in s.candidates), key=lambda c: -c.score)
    curve = [(0.0, 0.0, float("inf"))]
    tp = fp = 0
    for candidate in ranked:
        if candidate.kind == "lesion":
            tp += counted(candidate.diameter_mm)
        else:
            fp += 1
        curve.append((fp / len(studies), tp / max(n_lesions, 1), candidate.score))
    points = []
    for rate in rates:
        best = max((c for c in curve if c[0] <= rate), key=lambda c: (c[1], -c[0]))
        points.append(FrocPoint(rate, best[1], best[2]))
    return points


def false_candidates_by_kind(studies: Sequence[JudgedStudy], threshold: float) -> dict[str, float]:
    """False candidates per study at or above ``threshold``, by what they lie in."""
    counts: dict[str, float] = {}
    for study in studies:
        for candidate in study.candidates:
            if candidate.kind != "lesion" and candidate.score >= threshold:
                counts[candidate.kind] = counts.get(candidate.kind, 0.0) + 1.0 / len(studies)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))
