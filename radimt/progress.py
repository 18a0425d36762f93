"""Progress of long runs: a tqdm bar on a terminal, one line per finished step in a log.

A batch on a cluster or under ``nohup`` writes to a file, where a redrawn bar is noise and
nothing at all is worse: there, each finished step prints one line with the elapsed time and an
estimate of the time left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def _clock(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``12s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Counts finished steps (studies, folds) of a known total and shows them.

    Parameters
    ----------
    total
        How many steps the run has.
    unit
        What a step is, for the display (``"study"``, ``"fold"``).
    stream
        Where to write (standard error by default). On a terminal a tqdm bar is drawn; otherwise
        one line per step.
    """

    def __init__(self, total: int, unit: str = "study", stream: TextIO | None = None):
        self.total, self.unit = total, unit
        self.done = self.failed = 0
        self.start = time.perf_counter()
        self.stream = stream or sys.stderr
        self.bar = None
        if total and hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, file=self.stream, dynamic_ncols=True, leave=True)

    def update(self, name: str = "", failed: bool = False, weight: int = 1) -> None:
        """One step finished (``name`` says which; ``failed`` when it did not succeed), worth
        ``weight`` units of ``total`` (a permutation of ``evaluate`` reruns all its folds): the
        time left is estimated from the units done, so steps of unequal cost do not mislead it."""
        self.done += weight
        self.failed += int(failed)
        if self.bar is not None:
            self.bar.update(weight)
            if self.failed:
                self.bar.set_postfix(failed=self.failed)
            return
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.done * (self.total - self.done)
        status = "failed" if failed else "done"
        self.stream.write(
            f"[{self.done}/{self.total}] {self.unit} {name} {status}".replace("  ", " ")
            + (f", {self.failed} failed so far" if self.failed else "")
            + f"; elapsed {_clock(elapsed)}, about {_clock(left)} left\n"
        )
        self.stream.flush()

    def close(self) -> None:
        """End the bar (a no-op for line output)."""
        if self.bar is not None:
            self.bar.close()


class StageClock:
    """Wall seconds spent in named stages of one unit of work (a lesion), in order of first use.

    >>> clock = StageClock()
    >>> with clock.stage("segmentation"):
    ...     pass
    >>> list(clock.seconds)
    ['segmentation']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block and add it to ``name`` (also when the block raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def rounded(self, digits: int = 3) -> dict[str, float]:
        """The stages' seconds, rounded for a JSON record."""
        return {name: round(seconds, digits) for name, seconds in self.seconds.items()}
