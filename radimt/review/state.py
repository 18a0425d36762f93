"""A batch run under review: its lesions with their status and the reviewer's decisions.

Decisions (accept, reject, re-seed) are kept in ``OUT/review.csv``, one line per decision (who,
when, what, why; the last one of a lesion counts), and turned at once into a revised manifest,
``OUT/manifest.reviewed.csv``: the run's manifest with every re-seeded lesion's new seed and a
``review_status`` column. ``radimt batch OUT/manifest.reviewed.csv --out OUT`` then recomputes
only the lesions whose seed changed (a lesion's result is keyed on its inputs, and
``review_status`` is not one), and features.csv gains ``review_status``: rejected lesions stay
in the table, and the classifier leaves them out, saying so. Both files are written
atomically.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radimt.errors import RadimtError
from radimt.io.atomic import atomic_path
from radimt.pipeline.manifest import read_manifest, safe_id

REVIEW_CSV = "review.csv"
REVISED_MANIFEST = "manifest.reviewed.csv"
#: What a reviewer can decide, and what ``review_status`` holds before any decision.
DECISIONS = ("accepted", "rejected", "re-seeded")
TO_REVIEW = "to review"
REVIEW_COLUMNS = (
    "time",
    "reviewer",
    "study_id",
    "lesion_id",
    "decision",
    "seed_x",
    "seed_y",
    "seed_z",
    "why",
)


class ReviewError(RadimtError):
    """A decision that cannot be recorded (unknown lesion, bad seed, unknown decision)."""


@dataclass(frozen=True)
class Decision:
    """One decision on one lesion."""

    study_id: str
    lesion_id: str
    decision: str
    reviewer: str
    time: str
    why: str = ""
    seed: tuple[float, ...] | None = None

    def to_row(self) -> dict[str, str]:
        seed = [f"{v:.2f}" for v in self.seed] if self.seed else []
        seed += [""] * (3 - len(seed))
        return {
            "time": self.time,
            "reviewer": self.reviewer,
            "study_id": self.study_id,
            "lesion_id": self.lesion_id,
            "decision": self.decision,
            "seed_x": seed[0],
            "seed_y": seed[1],
            "seed_z": seed[2],
            "why": self.why,
        }

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Decision:
        values = [row.get(f"seed_{a}", "") for a in "xyz"]
        seed = tuple(float(v) for v in values if v not in ("", None)) or None
        return cls(
            row["study_id"],
            row["lesion_id"],
            row["decision"],
            row.get("reviewer", ""),
            row.get("time", ""),
            row.get("why", ""),
            seed,
        )


@dataclass
class ReviewItem:
    """One lesion of the run, as the review page lists it."""

    study_id: str
    lesion_id: str
    label: str
    status: str  # done, failed, not processed
    error: str
    folder: str  # relative to OUT
    seed: list[float] | None
    review_status: str = TO_REVIEW
    history: list[dict[str, str]] = field(default_factory=list)
    row: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.study_id, self.lesion_id)

    def summary(self) -> dict[str, Any]:
        """What the lesion list shows."""
        candidate = self.row.get("candidate_score", "")
        return {
            "study_id": self.study_id,
            "lesion_id": self.lesion_id,
            "label": self.label,
            "status": self.status,
            "error": self.error,
            "review_status": self.review_status,
            "candidate_score": candidate,
        }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ReviewRun:
    """A batch output folder under review.

    Parameters
    ----------
    out
        The batch's ``--out`` folder (with ``run.json`` and ``features.csv``).

    Raises
    ------
    ReviewError
        ``out`` holds no finished batch run.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out).resolve()
        run_json = self.out / "run.json"
        features = self.out / "features.csv"
        if not run_json.is_file() or not features.is_file():
            raise ReviewError(
                f"{self.out}: no finished radimt batch run here (run.json and features.csv missing); "
                "run radimt batch MANIFEST --out OUT first"
            )
        self.run = json.loads(run_json.read_text())
        self.manifest = Path(self.run["manifest"])
        self._lock = threading.Lock()
        with open(features, newline="") as fh:
            rows = list(csv.DictReader(fh))
        self._manifest_rows, columns = self._read_manifest_rows()
        self._manifest_columns = columns
        seeds = {key: self._seed_of(row) for key, row in self._manifest_rows.items()}
        self.items = [
            ReviewItem(
                study_id=row["study_id"],
                lesion_id=row["lesion_id"],
                label=row.get("label", ""),
                status=row.get("status", "done"),
                error=row.get("error", ""),
                folder=f"lesions/{safe_id(row['study_id'])}/{safe_id(row['lesion_id'])}",
                seed=seeds.get((row["study_id"], row["lesion_id"])),
                row=row,
            )
            for row in rows
        ]
        self._by_key = {item.key: item for item in self.items}
        for decision in self._read_decisions():
            item = self._by_key.get((decision.study_id, decision.lesion_id))
            if item is not None:
                self._apply(item, decision)

    # -- reading ------------------------------------------------------------------------------
    def _read_manifest_rows(self) -> tuple[dict[tuple[str, str], dict[str, str]], list[str]]:
        """The manifest's rows by (study_id, lesion_id), with the lesion ids the batch gave them."""
        if not self.manifest.is_file():
            return {}, []
        with open(self.manifest, newline="") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
        if "study_id" not in columns:  # a pyradiomics Image,Mask manifest: nothing to re-seed
            return {}, columns
        keep = [c for c in columns if c not in ("study_id", "path")]
        tasks = read_manifest(
            self.manifest, keep_columns=keep, reference=self.run["config"]["analysis"]["reference"]
        )
        by_key = {}
        for row, task in zip(rows, tasks, strict=True):
            by_key[(task.study_id, task.lesion_id)] = {**row, "lesion_id": task.lesion_id, "_path": task.path}
        return by_key, columns

    @staticmethod
    def _seed_of(row: dict[str, str]) -> list[float] | None:
        try:
            values = [float(row[f"seed_{a}"]) for a in "xyz" if row.get(f"seed_{a}", "") != ""]
        except ValueError:
            return None
        return values or None

    def _read_decisions(self) -> list[Decision]:
        path = self.out / REVIEW_CSV
        if not path.is_file():
            return []
        with open(path, newline="") as fh:
            return [Decision.from_row(row) for row in csv.DictReader(fh)]

    def _apply(self, item: ReviewItem, decision: Decision) -> None:
        item.review_status = decision.decision
        if decision.decision == "re-seeded" and decision.seed:
            item.seed = list(decision.seed)
        item.history.append(decision.to_row())

    def item(self, study_id: str, lesion_id: str) -> ReviewItem:
        try:
            return self._by_key[(study_id, lesion_id)]
        except KeyError:
            raise ReviewError(f"no lesion {lesion_id!r} of study {study_id!r} in {self.out}") from None

    # -- deciding -----------------------------------------------------------------------------
    def decide(
        self,
        study_id: str,
        lesion_id: str,
        decision: str,
        *,
        reviewer: str,
        why: str = "",
        seed: Sequence[float] | None = None,
    ) -> ReviewItem:
        """Record a decision; rewrite review.csv and the revised manifest (atomically).

        Raises
        ------
        ReviewError
            An unknown lesion or decision, a re-seed without a finite seed of the lesion's
            dimension, or a re-seed of a lesion the manifest gives no study folder for.
        """
        if decision not in DECISIONS:
            raise ReviewError(f"unknown decision {decision!r}: one of {', '.join(DECISIONS)}")
        item = self.item(study_id, lesion_id)
        point: tuple[float, ...] | None = None
        if decision == "re-seeded":
            if (study_id, lesion_id) not in self._manifest_rows:
                raise ReviewError(
                    f"{study_id} lesion {lesion_id}: its manifest row has no study to re-seed in"
                )
            if seed is None or len(seed) not in (2, 3) or not all(math.isfinite(float(v)) for v in seed):
                raise ReviewError(f"{study_id} lesion {lesion_id}: a re-seed needs 2 or 3 finite coordinates")
            point = tuple(float(v) for v in seed)
        entry = Decision(study_id, lesion_id, decision, reviewer, _now(), why.strip(), point)
        with self._lock:
            decisions = [*self._read_decisions(), entry]
            self._write_decisions(decisions)
            self._apply(item, entry)
            self.write_revised_manifest()
        return item

    def _write_decisions(self, decisions: Sequence[Decision]) -> None:
        with atomic_path(self.out / REVIEW_CSV) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(REVIEW_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(d.to_row() for d in decisions)

    def write_revised_manifest(self) -> Path | None:
        """The run's manifest with the new seeds and ``review_status``, in OUT (paths relative to
        it); ``None`` for a manifest without studies (pyradiomics' ``Image,Mask``)."""
        if not self._manifest_rows:
            return None
        columns = [c for c in self._manifest_columns if c != "review_status"]
        for needed in ("lesion_id", "seed_x", "seed_y", "seed_z"):
            if needed not in columns:
                columns.append(needed)
        columns.append("review_status")
        base = self.manifest.parent
        rows = []
        for key, source in self._manifest_rows.items():
            row = {c: source.get(c, "") for c in columns}
            row["path"] = os.path.relpath(source["_path"], self.out)
            if row.get("mask"):
                row["mask"] = os.path.relpath((base / row["mask"]).resolve(), self.out)
            item = self._by_key.get(key)
            row["review_status"] = item.review_status if item and item.review_status != TO_REVIEW else ""
            reseeded = item is not None and any(h["decision"] == "re-seeded" for h in item.history)
            if reseeded and item is not None and item.seed:
                for axis, value in zip("xyz", [*item.seed, None, None], strict=False):
                    row[f"seed_{axis}"] = "" if value is None else f"{value:.2f}"
                for stale in ("seed_i", "seed_j", "seed_k", "mask"):
                    if stale in row:
                        row[stale] = ""
            rows.append(row)
        path = self.out / REVISED_MANIFEST
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return path
