"""Review every lesion of a batch run in the browser (``radimt review OUT``): accept, reject or
re-seed, written back to the run as ``review.csv`` and a revised manifest."""

from radimt.review.server import ReviewServer, serve
from radimt.review.state import DECISIONS, REVIEW_CSV, REVISED_MANIFEST, Decision, ReviewError, ReviewRun

__all__ = [
    "DECISIONS",
    "REVIEW_CSV",
    "REVISED_MANIFEST",
    "Decision",
    "ReviewError",
    "ReviewRun",
    "ReviewServer",
    "serve",
]
