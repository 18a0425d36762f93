"""What each role of a study is, in one table: the image kind, the presets, the reference order.

A role names what a series is for in a breast study (``dce``, ``dwi``, ``adc``, ``t1``, ``t2``,
``ct``, ``mg``, ``us``). :mod:`radimt.dicom.roles` decides which series has which role; this
module says what radimt does with each role. The loader, the configuration, the lesion
analysis, the batch and the command line all read this table, so they cannot disagree.
"""

from __future__ import annotations

from enum import Enum

from radimt.errors import RoleError


class Role(str, Enum):
    """A role of a study's series. Members are strings equal to their names (``Role.DCE == "dce"``).

    Attributes
    ----------
    planar
        2D images (mammogram views, ultrasound frames) rather than 3D volumes.
    segmentation_preset
        Default ``modality`` preset of :func:`radimt.segment_from_seed` for an image of this role.
    feature_preset
        Default radiomic feature preset (``pipelines/params/<name>.yaml``).
    own_session
        Acquired apart from the breast MRI (CT, mammography, ultrasound): a mask drawn on the
        MRI is not carried to it (2D, or another frame of reference), so a lesion is measured on
        it only from a seed of its own.
    domain_features
        The role has radimt's own lesion measures beside its radiomic features (DCE kinetics,
        ADC statistics, CT rim and core), so a lesion's mask is carried to it whenever it can be.

    Examples
    --------
    >>> Role("us").planar, Role.DCE.feature_preset, Role.ADC.segmentation_preset
    (True, 'mr', 'adc')
    >>> role("T2") == "t2"
    True
    """

    DCE = "dce"
    DWI = "dwi"
    ADC = "adc"
    T1 = "t1"
    T2 = "t2"
    CT = "ct"
    MG = "mg"
    US = "us"

    def __str__(self) -> str:
        return self.value

    @property
    def planar(self) -> bool:
        return self in (Role.MG, Role.US)

    @property
    def segmentation_preset(self) -> str:
        return _SEGMENTATION_PRESETS[self]

    @property
    def feature_preset(self) -> str:
        return _FEATURE_PRESETS[self]

    @property
    def own_session(self) -> bool:
        return self in (Role.CT, Role.MG, Role.US)

    @property
    def domain_features(self) -> bool:
        return self in (Role.DCE, Role.ADC, Role.CT)


_SEGMENTATION_PRESETS = {
    Role.DCE: "mr",  # the early subtraction: an enhancing lesion on a dark background
    Role.DWI: "dwi",
    Role.ADC: "adc",  # restricted diffusion: the lesion is dark
    Role.T1: "mr",
    Role.T2: "mr",
    Role.CT: "ct",
    Role.MG: "mg",
    Role.US: "us",  # hypoechoic: dark, with speckle
}
_FEATURE_PRESETS = {
    Role.DCE: "mr",
    Role.DWI: "mr",
    Role.ADC: "adc",  # fixed bin width in 10⁻³ mm²/s
    Role.T1: "mr",
    Role.T2: "mr",
    Role.CT: "ct",  # fixed bin width in HU
    Role.MG: "mg",
    Role.US: "us",
}

#: Every role, in the order tables and listings show them.
ROLES: tuple[str, ...] = tuple(r.value for r in Role)
#: Roles whose images are 3D volumes (masks are carried between them by physical coordinates).
VOLUME_ROLES: tuple[str, ...] = tuple(r.value for r in Role if not r.planar)
#: The order in which a lesion's reference image is chosen when none is named: the DCE early
#: subtraction first (the lesion's best-delineated image in breast MRI), then CT, the anatomical
#: MR volumes, diffusion, and the 2D modalities last.
REFERENCE_ORDER: tuple[str, ...] = ("dce", "ct", "t1", "t2", "adc", "dwi", "mg", "us")
#: Default radiomic feature preset per role.
DEFAULT_PRESETS: dict[Role, str] = {r: r.feature_preset for r in Role}
#: Roles whose radiomic features a lesion's row has unless a pipeline names others: the DCE
#: early subtraction, the ADC map and T2 (the breast MRI protocol's three lesion images).
DEFAULT_FEATURE_ROLES: tuple[Role, ...] = (Role.DCE, Role.ADC, Role.T2)


def role(name: str | Role) -> Role:
    """The :class:`Role` called ``name`` (any case), with a message listing the roles when there is none.

    Raises
    ------
    RoleError
        ``name`` is not a role.
    """
    if isinstance(name, Role):
        return name
    try:
        return Role(str(name).lower())
    except ValueError:
        raise RoleError(f"unknown role {name!r}; roles are {', '.join(ROLES)}") from None
