"""Small, forgiving converters from DICOM element values to Python numbers.

Real exports carry empty strings, multi-valued fields where one value is expected, and private
elements read as raw bytes (VR UN). These helpers turn all of that into ``float``/``int`` or
``None`` so the rest of radimt never sees a half-parsed value.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset


def first(value: Any) -> Any:
    """The first item of a multi-valued element, or the value itself."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def to_float(value: Any) -> float | None:
    """A float from a DS/IS/FL/FD value, a numeric string or ASCII bytes; ``None`` if empty."""
    value = first(value)
    if value is None:
        return None
    if isinstance(value, bytes):
        text = value.split(b"\\")[0].strip(b"\x00 ")
        try:
            return float(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return None
    if isinstance(value, str):
        value = value.split("\\")[0].strip()
        if not value:
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_int(value: Any) -> int | None:
    """An int from an IS/US/SS value or numeric string; ``None`` if empty or not a number."""
    number = to_float(value)
    return None if number is None else int(round(number))


def to_floats(value: Any, count: int) -> tuple[float, ...] | None:
    """Exactly ``count`` floats from a multi-valued element, else ``None``."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        sep = "\\" if isinstance(value, str) else b"\\"
        value = value.split(sep)
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def binary_float32(value: Any) -> float | None:
    """A float from an FL element that may have been read as raw little-endian bytes (VR UN)."""
    if isinstance(value, bytes):
        if len(value) >= 4:
            return struct.unpack("<f", value[:4])[0]
        return None
    return to_float(value)


def private_value(ds: Dataset, group: int, creator: str, element: int) -> Any:
    """The value of a private element, read only under its private creator.

    A private element's meaning belongs to the block its creator reserved: ``(0019,100C)`` is the
    Siemens b-value only inside a ``SIEMENS MR HEADER`` block. Returns ``None`` when the creator is
    absent or the element is not in its block.
    """
    try:
        block = ds.private_block(group, creator)
        return block[element].value
    except (KeyError, ValueError):
        return None


def parse_time(text: Any) -> float | None:
    """Seconds since midnight from a DICOM TM value (``HHMMSS.FFFFFF``, also ``HH:MM:SS``)."""
    if text is None:
        return None
    text = str(first(text)).strip().replace(":", "")
    if not text:
        return None
    try:
        hours = int(text[0:2])
        minutes = int(text[2:4]) if len(text) >= 4 else 0
        seconds = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return None
    return hours * 3600.0 + minutes * 60.0 + seconds


def parse_datetime(date: Any, time: Any) -> float | None:
    """Seconds on one common clock from a DA and a TM value (date may be missing)."""
    seconds = parse_time(time)
    if seconds is None:
        return None
    date = str(first(date) or "").strip()
    if len(date) >= 8:
        try:
            day = _dt.date(int(date[0:4]), int(date[4:6]), int(date[6:8]))
        except ValueError:
            return seconds
        return day.toordinal() * 86400.0 + seconds
    return seconds


def parse_dt(value: Any) -> float | None:
    """Seconds on the same clock as :func:`parse_datetime` from a DT value."""
    if value is None:
        return None
    text = str(first(value)).strip()
    if len(text) < 8:
        return None
    for sign in ("+", "-"):  # drop a UTC offset suffix; all times of one study share it
        cut = text.find(sign, 8)
        if cut > 0:
            text = text[:cut]
    return parse_datetime(text[:8], text[8:] or "000000")


def round_tuple(values: Sequence[float] | None, digits: int) -> tuple[float, ...] | None:
    """A hashable rounded copy, used to compare geometry with a tolerance."""
    if values is None:
        return None
    return tuple(round(float(v), digits) + 0.0 for v in values)
