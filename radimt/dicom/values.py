"""Small, forgiving converters from DICOM element values to Python numbers.

Real exports carry empty strings, multi-valued fields where one value is expected, and private
elements read as raw bytes (VR UN). These helpers turn all of that into ``float``/``int`` or
``None`` so the rest of radimt never sees a half-parsed value.
"""

from __future__ import annotations

import datetime as _dt
import functools
import struct
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
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
    if isinstance(value, str):
        value = value.split("\\")
    elif isinstance(value, bytes):
        value = value.split(b"\\")
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


class HeaderView:
    """Fast read-only access to a dataset's top-level elements by keyword.

    ``Dataset.get(keyword)`` goes through attribute lookup and raises internally for every
    absent element; a scan asks for ~50 elements of which half are absent, thousands of times.
    This view checks presence in a set of tags first. Anything else is passed to the dataset.
    """

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.present = set(ds.keys())
        self._creators: dict[tuple[int, str], int] | None = None

    def get(self, keyword: str, default: Any = None) -> Any:
        tag = tag_of(keyword)
        if tag not in self.present:
            return default
        value = fast_value(self.ds.get_item(tag))
        return self.ds[tag].value if value is SLOW else value

    def __contains__(self, keyword: str) -> bool:
        return tag_of(keyword) in self.present

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ds, name)

    def private(self, group: int, creator: str, element: int) -> Any:
        """The value of a private element, read only under its private creator.

        A private element's meaning belongs to the block its creator reserved: ``(0019,100C)``
        is the Siemens b-value only inside a ``SIEMENS MR HEADER`` block. Returns ``None`` when
        the creator is absent or the element is not in its block.
        """
        if self._creators is None:
            self._creators = {}
            for tag in self.present:
                if tag >> 16 & 1 and 0x10 <= (tag & 0xFFFF) <= 0xFF:
                    name = self.ds[tag].value
                    if isinstance(name, bytes):
                        name = name.decode("latin-1")
                    self._creators[(tag >> 16, str(name).strip())] = tag & 0xFF
        block = self._creators.get((group, creator))
        if block is None:
            return None
        private_tag = group << 16 | block << 8 | element
        return self.ds[private_tag].value if private_tag in self.present else None


#: What :func:`fast_value` returns for an element only pydicom can convert.
SLOW = object()
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "SH", "TM", "UI"}
_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def fast_value(elem: Any) -> Any:
    """The value of a not-yet-converted element for the plain VRs a scan reads, else ``SLOW``.

    pydicom converts every element through its generic machinery (~10 µs each); the header
    scan reads ~30 per file, so plain ASCII text, numeric strings and little binary numbers are
    converted here directly. Anything else (sequences, non-ASCII text, private or ambiguous VRs)
    is left to pydicom. Text comes back as ``str``, or a list of ``str`` when multi-valued, as
    pydicom gives it; numeric strings (DS/IS) stay strings for :func:`to_float`.
    """
    if not isinstance(elem, RawDataElement):
        return elem.value if elem is not None else None
    vr = elem.VR or _dictionary_vr(elem.tag)
    raw = elem.value
    if raw is None or len(raw) == 0:
        return SLOW if vr not in _TEXT_VRS and vr not in _BINARY_VRS else None
    if vr in _TEXT_VRS:
        if max(raw) >= 0x80:
            return SLOW
        text = raw.decode("ascii").rstrip(" \x00")
        if vr != "UI":
            text = text.strip(" ")
        parts = text.split("\\")
        return parts[0] if len(parts) == 1 else parts
    code = _BINARY_VRS.get(vr or "")
    if code is None:
        return SLOW
    size = struct.calcsize(code)
    count = len(raw) // size
    values = struct.unpack(("<" if elem.is_little_endian else ">") + code * count, raw[: count * size])
    return values[0] if count == 1 else list(values)


def as_list(value: Any) -> list:
    """A multi-valued element as a list; a single value becomes a one-item list."""
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    return list(value)


@functools.cache
def tag_of(keyword: str) -> int:
    """The tag of a DICOM keyword (cached)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"unknown DICOM keyword {keyword!r}")
    return tag


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
