"""Read the headers of a series' files from one full read: the rest differ in a few elements only.

A scanner writes every slice of a series with the same header except for the elements that
place the slice (position, instance number, times, rescale, ...). pydicom spends ~1 ms per file
building a dataset; walking the raw elements and comparing them to the series' first file takes
a fraction of that. :class:`HeaderReader` reads the first file of each series (each of its
kinds: b-values, echoes) fully with :func:`radimt.dicom.header.read_frames`, keeps it as a
template, and for the next files of that series walks the elements; when every element outside
:data:`PER_INSTANCE` is byte for byte the template's, the file's frame is made from the
template's header and the file's own per-instance elements, through the same code as a full
read. Anything else (another element differs, an enhanced or mosaic file, big endian, no
preamble, a problem with the pixel data) takes the full read: results are identical either way.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from radimt.dicom import header as h
from radimt.dicom import values as v

#: Elements a series' files may differ in: what places and times an instance, and what nothing
#: in radimt reads (instance UIDs, creation times, window, slice location). Dates are not here:
#: a series crossing midnight is read fully.
PER_INSTANCE = frozenset(
    {
        0x00020000,  # file meta group length (the instance UID's length changes it)
        0x00020003,  # MediaStorageSOPInstanceUID
        0x00080013,  # InstanceCreationTime
        0x00080018,  # SOPInstanceUID
        0x00081140,  # ReferencedImageSequence
        0x00082112,  # SourceImageSequence
        0x0008002A,  # AcquisitionDateTime
        0x00080032,  # AcquisitionTime
        0x00080033,  # ContentTime
        0x00180081,  # EchoTime
        0x00180086,  # EchoNumbers
        0x00181060,  # TriggerTime
        0x00189087,  # DiffusionBValue
        0x00189089,  # DiffusionGradientOrientation
        0x00200012,  # AcquisitionNumber
        0x00200013,  # InstanceNumber
        0x00200032,  # ImagePositionPatient
        0x00200037,  # ImageOrientationPatient
        0x00200100,  # TemporalPositionIdentifier
        0x00201041,  # SliceLocation
        0x00209057,  # InStackPositionNumber
        0x00280106,  # SmallestImagePixelValue
        0x00280107,  # LargestImagePixelValue
        0x00281050,  # WindowCenter
        0x00281051,  # WindowWidth
        0x00281052,  # RescaleIntercept
        0x00281053,  # RescaleSlope
    }
)
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"})
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_FIRST_READ = 32768
#: Templates kept per series (its b-values, echoes or phases whose fixed elements differ).
_TEMPLATES_PER_SERIES = 8


class _Short(Exception):
    """The buffer ends inside the header: read more of the file."""


class _Element(NamedTuple):
    tag: int
    vr: bytes | None
    start: int  # the element's first byte (its tag)
    value: int  # its value's first byte
    end: int  # one past its last byte


@dataclass(frozen=True)
class _Layout:
    """A file's top-level elements up to Pixel Data, and what follows them."""

    implicit: bool
    elements: tuple[_Element, ...]
    header_end: int  # where the Pixel Data element starts
    peek: bytes  # its first 12 bytes


@dataclass
class _Template:
    dataset: Dataset
    tags: tuple[int, ...]
    fixed: tuple[bytes, ...]  # the bytes of every element outside PER_INSTANCE, in order
    header: h.FileHeader
    implicit: bool
    values: dict[str, Any] = field(default_factory=dict)  # the fixed elements' values, as read


class _InstanceView(v.HeaderView):
    """A file's header as the template's fixed elements and the file's own per-instance ones."""

    def __init__(self, template: _Template, instance: dict[int, RawDataElement]):
        self.template = template
        self.whole = v.HeaderView(template.dataset)
        self.instance = instance

    def get(self, keyword: str, default: Any = None) -> Any:
        tag = v.tag_of(keyword)
        raw = self.instance.get(tag)
        if raw is not None:
            value = v.fast_value(raw)
            return convert_raw_data_element(raw).value if value is v.SLOW else value
        if tag in PER_INSTANCE:  # per-instance, and this file (like its template) has none
            return default
        cache = self.template.values
        if keyword not in cache:
            cache[keyword] = self.whole.get(keyword, _ABSENT)
        value = cache[keyword]
        return default if value is _ABSENT else value

    def __contains__(self, keyword: str) -> bool:
        return self.get(keyword, _ABSENT) is not _ABSENT

    def __getattr__(self, name: str) -> Any:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise AttributeError(name)
        return value

    def private(self, group: int, creator: str, element: int) -> Any:
        key = f"private {group:04X} {creator} {element:02X}"  # private elements are fixed
        cache = self.template.values
        if key not in cache:
            cache[key] = self.whole.private(group, creator, element)
        return cache[key]


_ABSENT = object()


_HEAD = struct.Struct("<HH2sH")  # group, element, then VR and short length (or a 4-byte length)
_LENGTH = struct.Struct("<I")


def _element_header(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """Tag, VR bytes (``None`` when implicit), value length and value start of the element at ``pos``."""
    try:
        group, element, vr, short = _HEAD.unpack_from(buf, pos)
        tag = group << 16 | element
        if implicit or group == 0xFFFE:
            return tag, None, _LENGTH.unpack_from(buf, pos + 4)[0], pos + 8
        if vr in _LONG_VRS:
            return tag, vr, _LENGTH.unpack_from(buf, pos + 8)[0], pos + 12
    except struct.error:
        raise _Short from None
    if not vr.isalpha():
        raise ValueError("not an explicit VR element")
    return tag, vr, short, pos + 8


def _skip_undefined(buf: bytes, pos: int, implicit: bool) -> int:
    """The end of an undefined-length sequence whose items start at ``pos``."""
    while True:
        tag, _, length, start = _element_header(buf, pos, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise ValueError("not a sequence item")
        pos = start + length if length != _UNDEFINED else _skip_item(buf, start, implicit)


def _skip_item(buf: bytes, pos: int, implicit: bool) -> int:
    """The end of an undefined-length item whose elements start at ``pos``."""
    while True:
        tag, _, length, start = _element_header(buf, pos, implicit)
        if tag == _ITEM_END:
            return start
        pos = start + length if length != _UNDEFINED else _skip_undefined(buf, start, implicit)


def _walk(buf: bytes, pos: int, implicit: bool) -> tuple[list[_Element], int]:
    """Top-level elements from ``pos`` up to Pixel Data (whose start is returned too)."""
    elements: list[_Element] = []
    while True:
        tag, vr, length, start = _element_header(buf, pos, implicit)
        if tag >= h.PIXEL_DATA_TAG:
            return elements, pos
        if length == _UNDEFINED:
            end = _skip_undefined(buf, start, implicit)
        else:
            end = start + length
            if end > len(buf):
                raise _Short
        elements.append(_Element(tag, vr, pos, start, end))
        pos = end


def _layout(buf: bytes) -> _Layout | None:
    """The file's elements, or ``None`` for a file only a full read handles."""
    if buf[128:132] != b"DICM":
        return None
    meta: list[_Element] = []
    pos = 132
    while buf[pos : pos + 2] == b"\x02\x00":
        tag, vr, length, start = _element_header(buf, pos, False)
        meta.append(_Element(tag, vr, pos, start, start + length))
        pos = start + length
    syntax = next((buf[e.value : e.end] for e in meta if e.tag == 0x00020010), b"").rstrip(b"\x00 ").decode()
    if syntax not in (_EXPLICIT_LE, _IMPLICIT_LE):
        return None
    implicit = syntax == _IMPLICIT_LE
    elements, header_end = _walk(buf, pos, implicit)
    if header_end + 12 > len(buf):
        raise _Short
    if buf[header_end : header_end + 4] != b"\xe0\x7f\x10\x00":  # (7FE0,0010), little endian
        raise ValueError("not integer Pixel Data")
    return _Layout(implicit, (*meta, *elements), header_end, bytes(buf[header_end : header_end + 12]))


def _read_layout(path: str, size: int) -> tuple[bytes, _Layout | None]:
    """The file's first bytes and its layout, reading further while the header goes on."""
    want = _FIRST_READ
    with open(path, "rb") as fh:
        buf = fh.read(want)
        while True:
            try:
                return buf, _layout(buf)
            except _Short:
                if len(buf) >= size:
                    return buf, None
                want *= 4
                buf += fh.read(want - len(buf))
            except (ValueError, UnicodeDecodeError):
                return buf, None


class HeaderReader:
    """:func:`radimt.dicom.header.read_frames` for many files, reading each series' repeats fast.

    Examples
    --------
    >>> import radimt
    >>> from radimt.dicom.header import read_frames
    >>> from radimt.dicom.scan import iter_files
    >>> folder, _ = radimt.synth.example_study_folder()
    >>> reader = HeaderReader()
    >>> files = list(iter_files(folder))
    >>> [reader.read(f) for f in files] == [read_frames(f) for f in files]
    True
    """

    def __init__(self) -> None:
        self.templates: dict[bytes, list[_Template]] = {}
        self.fast = 0  # files read from a template

    def read(self, path: str) -> list[h.Frame]:
        """The frames of ``path``, exactly as :func:`~radimt.dicom.header.read_frames` gives them."""
        size = os.path.getsize(path)
        buf, layout = _read_layout(path, size) if size > 132 else (b"", None)
        if layout is None:
            return h.read_frames(path)
        series_uid = next((buf[e.value : e.end] for e in layout.elements if e.tag == 0x0020000E), b"")
        tags = tuple(e.tag for e in layout.elements)
        fixed = tuple(buf[e.start : e.end] for e in layout.elements if e.tag not in PER_INSTANCE)
        for template in self.templates.get(series_uid, ()):
            if template.tags == tags and template.fixed == fixed and template.implicit == layout.implicit:
                frames = self._from_template(template, path, buf, layout, size)
                if frames is not None:
                    self.fast += 1
                    return frames
        dataset, header_end, _, peek = h._read_dataset(path)
        frames = h.frames_of(path, dataset, header_end, size, peek)
        self._remember(series_uid, dataset, frames, tags, fixed, layout)
        return frames

    def _remember(
        self,
        series_uid: bytes,
        dataset: Dataset,
        frames: list[h.Frame],
        tags: tuple[int, ...],
        fixed: tuple[bytes, ...],
        layout: _Layout,
    ) -> None:
        header = frames[0].header
        classic = (
            len(frames) == 1
            and header.problem is None
            and header.pixel_offset is not None
            and header.mosaic is None
            and "MOSAIC" not in header.image_type
            and PER_FRAME not in tags
        )
        if classic:  # a template's files are read as classic single-frame files: this one is one
            classic = h._classic_frames(v.HeaderView(dataset), header) == frames
        kept = self.templates.setdefault(series_uid, [])
        if not classic or len(kept) >= _TEMPLATES_PER_SERIES:
            return
        kept.append(_Template(dataset, tags, fixed, header, layout.implicit))

    @staticmethod
    def _from_template(
        template: _Template, path: str, buf: bytes, layout: _Layout, size: int
    ) -> list[h.Frame] | None:
        header = template.header
        expected = -(-header.rows * header.columns * header.samples_per_pixel * header.bits_allocated // 8)
        _, problem = h._frame_capacity(1, expected, True, size)
        offset, problem = (
            (None, problem) if problem else h._pixel_offset(layout.peek, layout.header_end, expected, size)
        )
        if problem is not None or offset is None:
            return None  # the full read says what is wrong with this file
        instance = {}
        for e in layout.elements:
            if e.tag in PER_INSTANCE and e.tag >> 16 != 0x0002:
                raw = bytes(buf[e.value : e.end])
                instance[e.tag] = RawDataElement(
                    BaseTag(e.tag),
                    e.vr.decode() if e.vr else None,
                    len(raw),
                    raw,
                    e.value,
                    layout.implicit,
                    True,
                )
        view = _InstanceView(template, instance)
        sop_instance = str(view.get("SOPInstanceUID", ""))
        return h._classic_frames(
            view, replace(header, path=path, sop_instance_uid=sop_instance, pixel_offset=offset)
        )


#: PerFrameFunctionalGroupsSequence: an enhanced multi-frame file is always read fully.
PER_FRAME = 0x52009230
