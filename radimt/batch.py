"""Moved to :mod:`radimt.pipeline.runner`; this name stays so existing code keeps working."""

import sys

from radimt.pipeline import runner as _moved

sys.modules[__name__] = _moved
