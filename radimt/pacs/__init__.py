"""Studies from a PACS and results back to it: DICOMweb or DIMSE (see :mod:`radimt.pacs.pull`
and :mod:`radimt.pacs.push`)."""

from radimt.pacs.profile import PacsProfile, load_profile
from radimt.pacs.pull import PulledStudy, pull
from radimt.pacs.push import PushReport, push_run
from radimt.pacs.transport import PROTOCOLS, connect

__all__ = [
    "PROTOCOLS",
    "PacsProfile",
    "PulledStudy",
    "PushReport",
    "connect",
    "load_profile",
    "pull",
    "push_run",
]
