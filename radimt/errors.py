"""The exceptions radimt raises.

Every error is a :class:`RadimtError`; each message names the file or series concerned and
says what the user can do about it, so a batch can record it and carry on.
"""

from __future__ import annotations


class RadimtError(Exception):
    """Base class of every error radimt raises on purpose."""


class DicomReadError(RadimtError):
    """A file could not be read as DICOM, or lacks what an image needs (e.g. pixel data)."""


class SeriesAssemblyError(RadimtError):
    """The slices of a series do not make one regular volume."""


class MissingSliceError(SeriesAssemblyError):
    """A gap in the slice positions: one or more slices are missing from the series."""


class DuplicateSliceError(SeriesAssemblyError):
    """Two different images claim the same slice position."""


class MixedOrientationError(SeriesAssemblyError):
    """One series holds slices in more than one orientation."""


class NonUniformSpacingError(SeriesAssemblyError):
    """Slice positions are not evenly spaced within the stated tolerance."""


class MixedStudyError(RadimtError):
    """One folder holds images of more than one patient or study; radimt never mixes them."""


class RoleError(RadimtError):
    """A series role (DCE, DWI, ...) is missing, ambiguous or inconsistent."""


class TimingError(RoleError):
    """Dynamic phases have missing or non-increasing acquisition times."""


class SegmentationError(RadimtError):
    """Seeded segmentation could not delineate a lesion (no contrast, or a leak)."""


class SeedError(SegmentationError):
    """The seed point is outside the image, in air/background, or on another frame of reference."""


class MaskError(RadimtError):
    """A mask is empty, unreadable, or does not fit the image it is meant for."""


class FrameOfReferenceError(MaskError):
    """Two images or an image and a point are in different frames of reference."""
