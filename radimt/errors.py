"""The exceptions radimt raises.

Every error is a :class:`RadimtError`, and every class lives here; each message names the file
or series concerned and says what the user can do about it, so a batch can record it and carry
on. (The modules that raise them import them from here, so ``radimt.manifest.ManifestError``
and the like still work.)
"""

from __future__ import annotations


class RadimtError(Exception):
    """Base class of every error radimt raises on purpose.

    Examples
    --------
    >>> import radimt
    >>> try:
    ...     radimt.load_study("/no/such/study")
    ... except radimt.RadimtError as error:
    ...     print(type(error).__name__, error)
    DicomReadError /no/such/study: no such file or folder; check the study path
    """


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


class NotDicomError(DicomReadError):
    """A file is not a DICOM image at all (empty, not DICOM, a DICOMDIR, no pixel matrix); the
    scan sets such files aside with the reason instead of raising."""


class ManifestError(RadimtError):
    """The manifest is malformed; the message lists every problem found, with line numbers."""


class ConfigError(RadimtError):
    """A pipeline configuration is invalid."""


class PacsError(RadimtError):
    """A PACS could not be reached, refused, or did not hold or take what was asked."""


class OutputFolderError(RadimtError):
    """A path radimt would write leads outside the output folder (a planted symbolic link)."""


class OptionError(RadimtError, ValueError):
    """An option (of segmentation, kinetics, an analysis) has the wrong type or is out of range.

    Attributes
    ----------
    owner, option, problem
        The options class, the option's name, and what is wrong with its value.
    """

    def __init__(self, owner: str, option: str, problem: str) -> None:
        super().__init__(f"{owner}: {option}: {problem}")
        self.owner, self.option, self.problem = owner, option, problem

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # survives pickling to a worker
        return type(self), (self.owner, self.option, self.problem)


class FeatureError(RadimtError):
    """Features could not be computed (bad parameters, or pyradiomics refused the ROI)."""


class DiffusionError(RadimtError):
    """ADC cannot be fitted (too few b-values) or computed in a mask."""


class SeedFileError(RadimtError):
    """A seed file could not be read or lacks the columns radimt needs."""


class ClassifierError(RadimtError):
    """The table, labels or model cannot be used as asked."""
