"""Options that check themselves: each field's type (from its annotation) and allowed range.

:class:`radimt.SegmentOptions`, :class:`radimt.KineticOptions` and
:class:`radimt.AnalysisConfig` call :func:`check_fields` when they are made, so a value out of
range is refused wherever it comes from: a keyword of :func:`radimt.segment_from_seed`, a
notebook, or a pipeline YAML (whose loader adds the file and line to the message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from radimt.errors import OptionError

#: Allowed range of a number, (low, high) inclusive; ``None`` leaves a side open.
Range = tuple[float | None, float | None]

#: Python types a value may have, per annotation of an option field.
_KINDS: dict[str, tuple[type, ...]] = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}
_NAMES = {"float": "a number", "int": "a whole number", "bool": "true or false", "str": "text"}


def check_fields(
    options: Any,
    ranges: Mapping[str, Range] | None = None,
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Check every field of the dataclass instance ``options`` against its annotation.

    Fields annotated ``float``, ``int``, ``bool`` or ``str`` (optionally ``| None``) are checked;
    numbers must be finite and within ``ranges[name]``, text one of ``choices[name]``.

    Raises
    ------
    OptionError
        Naming the options class, the field and what was expected.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opts:
    ...     tolerance: float = 0.5
    >>> check_fields(Opts(0.7), {"tolerance": (0.0, 1.0)})
    >>> check_fields(Opts(7), {"tolerance": (0.0, 1.0)})
    Traceback (most recent call last):
    ...
    radimt.errors.OptionError: Opts: tolerance: 7 is out of range (expected from 0.0 to 1.0)
    """
    ranges = ranges or {}
    choices = choices or {}
    owner = type(options).__name__
    for f in fields(options):
        kinds = [k.strip() for k in str(f.type).split("|")]
        expected = next((k for k in kinds if k != "None"), "")
        if expected not in _KINDS:
            continue  # a structured field; its owner checks it
        value: Any = getattr(options, f.name)
        if value is None:
            if "None" not in kinds:
                raise OptionError(owner, f.name, "a value is required")
            continue
        if not isinstance(value, _KINDS[expected]) or (isinstance(value, bool) and expected != "bool"):
            raise OptionError(owner, f.name, f"expected {_NAMES[expected]}, got {value!r}")
        if expected in ("float", "int"):
            number = float(getattr(options, f.name))
            if not math.isfinite(number):
                raise OptionError(owner, f.name, f"{value!r} is not a finite number")
            low, high = ranges.get(f.name, (None, None))
            if (low is not None and number < low) or (high is not None and number > high):
                bounds = f"{low} or more" if high is None else f"from {low} to {high}"
                raise OptionError(owner, f.name, f"{value!r} is out of range (expected {bounds})")
        if f.name in choices and value not in choices[f.name]:
            raise OptionError(owner, f.name, f"{value!r} is not one of {', '.join(choices[f.name])}")


def unknown_names(given: Mapping[str, Any], options_type: type, extra: tuple[str, ...] = ()) -> list[str]:
    """The keys of ``given`` that are not fields of ``options_type`` (nor in ``extra``), sorted."""
    known = {f.name for f in fields(options_type)} | set(extra)
    return sorted(set(given) - known)
