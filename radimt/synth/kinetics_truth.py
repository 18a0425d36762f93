"""The BI-RADS/Kuhl naming of a known enhancement curve (used to write ground truth)."""

from __future__ import annotations

SLOW_BELOW = 50.0
FAST_ABOVE = 100.0
PERSISTENT_ABOVE = 0.10
WASHOUT_BELOW = -0.10


def initial_class(initial_pct: float) -> str:
    """slow < 50 %, medium 50–100 %, fast > 100 % (BI-RADS MRI lexicon)."""
    if initial_pct < SLOW_BELOW:
        return "slow"
    if initial_pct > FAST_ABOVE:
        return "fast"
    return "medium"


def delayed_class(change: float) -> str:
    """persistent > +10 %, plateau within ±10 %, washout < −10 % of the initial-peak signal."""
    if change > PERSISTENT_ABOVE:
        return "persistent"
    if change < WASHOUT_BELOW:
        return "washout"
    return "plateau"


KUHL_TYPE = {"persistent": "I", "plateau": "II", "washout": "III"}
