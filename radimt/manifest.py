"""Moved to :mod:`radimt.pipeline.manifest`; this name stays so existing code keeps working."""

import sys

from radimt.pipeline import manifest as _moved

sys.modules[__name__] = _moved
