"""Figures and reports: mask overlays (and, later, curves and the QC report)."""

from radimt.report.overlay import overlay_png

__all__ = ["overlay_png"]
