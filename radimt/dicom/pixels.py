"""Pixel data: read stored values of frames, fast for native files, pydicom for the rest.

Native little-endian files are read straight from the byte offset found during the header scan
into the destination array (no intermediate copies). Compressed transfer syntaxes (RLE, JPEG
baseline/lossless, JPEG-LS, JPEG 2000) and colour images are decoded by pydicom with the
pylibjpeg plugins.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, iter_pixels

from radimt.dicom.header import FileHeader, Frame
from radimt.errors import DicomReadError

#: ITU-R BT.601 luma weights, used to turn colour ultrasound into grey.
LUMA = np.array([0.299, 0.587, 0.114])

#: Environment variable that sets the largest image (decoded, in GiB) radimt will allocate.
MEMORY_BUDGET_ENV = "RADIMT_MAX_IMAGE_GB"


def memory_budget() -> int:
    """Largest pixel array, in bytes, radimt allocates for one image.

    ``RADIMT_MAX_IMAGE_GB`` when set, else half of the machine's physical memory: a header that
    declares more (65535 x 65535 x 1000 frames) is refused before anything is allocated.
    """
    setting = os.environ.get(MEMORY_BUDGET_ENV)
    if setting:
        return int(float(setting) * 2**30)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def allocate(shape: tuple[int, ...], dtype: np.dtype | type, label: str, path: str) -> np.ndarray:
    """``np.empty(shape, dtype)`` once its size is checked against :func:`memory_budget`.

    Raises
    ------
    DicomReadError
        The declared image is larger than the budget; the message names the file and the size.
    """
    size = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    budget = memory_budget()
    if size > budget:
        raise DicomReadError(
            f"{label}: {path}: the header declares an image of {' x '.join(map(str, shape))} "
            f"({size / 2**30:.1f} GiB decoded), more than the {budget / 2**30:.1f} GiB budget; the "
            f"header is probably corrupt (if the image is real, raise {MEMORY_BUDGET_ENV})"
        )
    return np.empty(shape, dtype)


def stored_dtype(header: FileHeader) -> np.dtype:
    """The numpy dtype of a file's stored (pre-rescale) pixel values."""
    signed = header.pixel_representation == 1
    kind = {8: "i1" if signed else "u1", 16: "i2" if signed else "u2", 32: "i4" if signed else "u4"}
    try:
        return np.dtype("<" + kind[header.bits_allocated])
    except KeyError:
        return np.dtype("u1") if header.bits_allocated == 1 else np.dtype("<u2")


def _fix_bits(values: np.ndarray, header: FileHeader) -> np.ndarray:
    """Mask unused high bits (unsigned) or sign-extend from BitsStored (signed), in place."""
    unused = header.bits_allocated - header.bits_stored
    if unused <= 0 or header.bits_allocated not in (8, 16, 32):
        return values
    if header.pixel_representation == 1:
        values <<= unused
        values >>= unused
    else:
        values &= (1 << header.bits_stored) - 1
    return values


def read_frames_into(frames: Sequence[Frame], out: np.ndarray, label: str) -> np.ndarray:
    """Fill ``out[k]`` with the stored values of ``frames[k]`` (grey, 2D each).

    Raises
    ------
    DicomReadError
        A file is truncated, has no pixel data, or cannot be decoded; the message names it.
    """
    by_file: dict[str, list[tuple[int, Frame]]] = defaultdict(list)
    for k, f in enumerate(frames):
        if f.header.problem:
            raise DicomReadError(f"{label}: {f.path}: {f.header.problem}; re-export this file")
        by_file[f.path].append((k, f))
    for path, members in by_file.items():
        header = members[0][1].header
        if header.mosaic:
            _read_mosaic(path, header, members, out, label)
        elif header.pixel_offset is not None:
            _read_native(path, header, members, out)
        else:
            _read_decoded(path, members, out, label)
    return out


def read_rows_into(frames: Sequence[Frame], out: np.ndarray, first_row: int, label: str) -> np.ndarray:
    """Fill ``out[k]`` with rows ``first_row`` to ``first_row + out.shape[1]`` of ``frames[k]``
    (stored values): only those rows' bytes are read from uncompressed files.

    Raises
    ------
    DicomReadError
        As :func:`read_frames_into`.
    """
    rows = out.shape[1]
    if not all(
        f.header.pixel_offset is not None and not f.header.mosaic and not f.header.problem for f in frames
    ):
        whole = allocate((len(frames), frames[0].rows, frames[0].columns), out.dtype, label, frames[0].path)
        out[...] = read_frames_into(frames, whole, label)[:, first_row : first_row + rows]
        return out
    for k, f in enumerate(frames):
        header = f.header
        dtype = stored_dtype(header)
        row_bytes = header.columns * dtype.itemsize
        assert header.pixel_offset is not None  # checked above
        with open(f.path, "rb") as fp:
            fp.seek(header.pixel_offset + f.index * header.rows * row_bytes + first_row * row_bytes)
            band = np.frombuffer(fp.read(rows * row_bytes), dtype).reshape(rows, header.columns)
        out[k] = _fix_bits(band.copy(), header)
    return out


def _read_mosaic(path: str, header: FileHeader, members, out: np.ndarray, label: str) -> None:
    """Cut the slices of a Siemens mosaic out of its one stored image (tiles row by row)."""
    whole = replace(header, mosaic=None, n_frames=1)
    if whole.pixel_offset is not None:
        image = allocate((1, whole.rows, whole.columns), stored_dtype(whole), label, path)
        _read_native(path, whole, [(0, _FirstFrame)], image)
    else:
        image = decode_file(path, whole, label)
    assert header.mosaic is not None  # only mosaic headers come here
    tiles, tile_rows, tile_cols = header.mosaic
    for k, f in members:
        r, c = divmod(f.index, tiles)
        out[k] = image[0, r * tile_rows : (r + 1) * tile_rows, c * tile_cols : (c + 1) * tile_cols]


class _FirstFrame:
    """Stands for frame 0 of a file in :func:`_read_native`."""

    index = 0


def _read_native(path: str, header: FileHeader, members, out: np.ndarray) -> None:
    dtype = stored_dtype(header)
    frame_bytes = header.rows * header.columns * dtype.itemsize
    with open(path, "rb") as fp:
        for k, f in members:
            fp.seek(header.pixel_offset + f.index * frame_bytes)
            target = out[k]
            if target.dtype == dtype and target.flags.c_contiguous:
                fp.readinto(memoryview(target).cast("B"))
                _fix_bits(target, header)
            else:
                raw = np.frombuffer(fp.read(frame_bytes), dtype).reshape(header.rows, header.columns)
                target[...] = _fix_bits(raw.copy(), header)


def decode_file(path: str, header: FileHeader, label: str) -> np.ndarray:
    """Decode every frame of one file with pydicom, one frame at a time; colour becomes grey.

    Returns stored values (before rescale) with shape (frames, rows, columns). Colour frames are
    converted to luma as they are decoded, so a long RGB cine loop never sits in memory in colour.
    """
    colour = header.samples_per_pixel == 3 or header.photometric == "PALETTE COLOR"
    dtype = np.float32 if colour else stored_dtype(header)
    out = allocate((header.n_frames, header.rows, header.columns), dtype, label, path)
    try:
        palette = (
            pydicom.dcmread(path, stop_before_pixels=True) if header.photometric == "PALETTE COLOR" else None
        )
        count = 0
        for k, frame in enumerate(iter_pixels(path)):
            if k >= header.n_frames:
                break
            if palette is not None:
                frame = apply_color_lut(frame, palette)
                if frame.dtype == np.uint16:  # 16-bit palette entries: bring to the 8-bit scale
                    frame = frame / 257.0
            out[k] = to_grey(frame) if colour else frame
            count += 1
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes a named error
        raise DicomReadError(
            f"{label}: {path}: pixel data could not be decoded ({type(exc).__name__}: {exc}); "
            "check the file is complete and its transfer syntax is supported"
        ) from exc
    if count < header.n_frames:
        raise DicomReadError(f"{label}: {path}: {count} of {header.n_frames} frames in the pixel data")
    return out


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Luma (BT.601) of an RGB array whose last axis is the colour, as float32."""
    return (rgb[..., :3].astype(np.float32) @ LUMA.astype(np.float32)).astype(np.float32)


def _read_decoded(path: str, members, out: np.ndarray, label: str) -> None:
    array = decode_file(path, members[0][1].header, label)
    for k, f in members:
        out[k] = array[f.index]
