"""Moved to :mod:`radimt.pipeline.config`; this name stays so existing code keeps working."""

import sys

from radimt.pipeline import config as _moved

sys.modules[__name__] = _moved
