"""A synthetic cohort: IMT and its mimics with overlapping phenotypes, and a labelled manifest.

Phenotypes follow what the literature describes, with deliberate overlap so the task is not
trivially separable:

- IMT: mostly oval and circumscribed, median 2 cm, medium initial enhancement, persistent or
  plateau curves, intermediate ADC; age mean ~45 (13–86); rarely male.
- invasive carcinoma: spiculated or lobulated, fast enhancement, mostly washout, low ADC, older.
- fibroadenoma: oval, slow persistent enhancement, high ADC, younger.
- phyllodes tumour: lobulated, larger, medium enhancement, high ADC.

Two sites differ in noise and overall signal scale (what ComBat harmonisation is for). Grids
are small (64×64×16 voxels of 1.5×1.5×3 mm) so a cohort of 144 studies writes in seconds.
Synthetic demonstrations only: not clinical data, not a diagnostic device.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from radimt.synth.phantom import Lesion
from radimt.synth.studies import MRStudySpec, write_mr_study
from radimt.synth.writer import Grid

GRID = Grid((64, 64, 16), (1.5, 1.5, 3.0), (42.0, -48.0, -24.0))
MIMICS = (("carcinoma", 0.7), ("fibroadenoma", 0.2), ("phyllodes", 0.1))


def _phenotype(kind: str, rng: np.random.Generator) -> dict:
    if kind == "IMT":
        shape = rng.choice(["oval", "sphere", "lobulated"], p=[0.6, 0.25, 0.15])
        size, initial, delayed = (
            rng.lognormal(np.log(20), 0.35),
            rng.normal(80, 25),
            rng.choice([0.2, 0.0, -0.05]),
        )
        adc, age, male = rng.normal(1.2, 0.25), rng.normal(45, 15), rng.random() < 0.05
    elif kind == "carcinoma":
        shape = rng.choice(["spiculated", "lobulated", "oval"], p=[0.5, 0.35, 0.15])
        size, initial = rng.lognormal(np.log(18), 0.35), rng.normal(120, 30)
        delayed = rng.choice([-0.25, -0.12, 0.0], p=[0.5, 0.25, 0.25])
        adc, age, male = rng.normal(0.95, 0.2), rng.normal(56, 12), False
    elif kind == "fibroadenoma":
        shape, size = "oval", rng.lognormal(np.log(15), 0.3)
        initial, delayed, adc, age, male = (
            rng.normal(55, 20),
            0.3,
            rng.normal(1.5, 0.2),
            rng.normal(35, 10),
            False,
        )
    else:  # phyllodes
        shape, size = "lobulated", rng.lognormal(np.log(28), 0.3)
        initial, delayed = rng.normal(90, 25), rng.choice([0.2, 0.0])
        adc, age, male = rng.normal(1.4, 0.25), rng.normal(45, 10), False
    return {
        "shape": str(shape),
        "diameter": float(np.clip(size, 8.0, 36.0)),
        "initial": float(np.clip(initial, 20.0, 200.0)),
        "delayed": float(delayed + rng.normal(0, 0.04)),
        "adc": float(np.clip(adc, 0.5, 2.5)),
        "age": int(np.clip(round(age), 13, 86)),
        "sex_female": 0 if male else 1,
    }


def write_cohort(out: str | os.PathLike[str], n_imt: int = 36, n_mimics: int = 108, seed: int = 0) -> Path:
    """Write ``n_imt + n_mimics`` synthetic MR studies and ``manifest.csv``; return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = ["IMT"] * n_imt + list(
        rng.choice([k for k, _ in MIMICS], size=n_mimics, p=[p for _, p in MIMICS])
    )
    rows = []
    for i, kind in enumerate(kinds):
        study_id = f"c{i:03d}"
        ph = _phenotype(str(kind), rng)
        site = "A" if rng.random() < 0.5 else "B"
        centre = (90.0 + rng.uniform(-8, 8), -4.0 + rng.uniform(-6, 6), rng.uniform(-3, 3))
        spec = MRStudySpec(
            study_id,
            Lesion(centre, ph["diameter"], ph["shape"]),
            initial_enhancement=ph["initial"],
            delayed_change=ph["delayed"],
            lesion_adc=ph["adc"],
            dce_layout="single",
            grid=GRID,
            noise=4.0 if site == "A" else 6.0,
            lesion_t1=120.0 if site == "A" else 105.0,
            seed=seed * 100_000 + i,
            extras=False,
        )
        write_mr_study(str(out / study_id), spec)
        rows.append(
            [
                study_id,
                study_id,
                "1",
                *[round(c, 3) for c in centre],
                str(kind),
                study_id,
                site,
                ph["age"],
                ph["sex_female"],
            ]
        )
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            [
                "study_id",
                "path",
                "lesion_id",
                "seed_x",
                "seed_y",
                "seed_z",
                "label",
                "group",
                "site",
                "age",
                "sex_female",
            ]
        )
        writer.writerows(rows)
    return manifest
