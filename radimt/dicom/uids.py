"""UIDs for the DICOM objects radimt writes (SEG, SR) and the synthetic studies it makes."""

from __future__ import annotations

from pydicom.uid import generate_uid

#: The root under which radimt derives UIDs from names (pydicom's registered example root).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."


def derived_uid(*parts: object) -> str:
    """A UID derived from ``parts``: the same parts give the same UID, so outputs are reproducible.

    Examples
    --------
    >>> derived_uid("study", 1) == derived_uid("study", 1)
    True
    >>> derived_uid("study", 1).startswith(UID_PREFIX)
    True
    """
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(p) for p in parts])
