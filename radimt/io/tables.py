"""Feature tables as CSV: identifying columns first, the rest sorted, fixed number format.

The same rows always give the same bytes: columns in a stable order, floats written with 10
significant digits (``%.10g``), missing values and NaN as empty cells, ``\\n`` line endings, and
the file replaced atomically.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from radimt.io.atomic import atomic_path

ID_COLUMNS = ("study_id", "lesion_id", "label", "group", "site", "scanner")
#: How a lesion's row came out (features.csv): ``done``/``failed``/``not processed``, why it failed,
#: and what to check before modelling it.
STATUS_COLUMNS = ("status", "error", "qc_warnings")
FLOAT_FORMAT = "%.10g"


def format_value(value: Any) -> str:
    """One cell: numbers in a fixed format, NaN/None empty, everything else as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) or hasattr(value, "dtype"):
        number = float(value)
        return "" if math.isnan(number) else FLOAT_FORMAT % number
    return str(value)


def table_columns(rows: Iterable[Mapping[str, Any]], id_columns: Sequence[str] = ID_COLUMNS) -> list[str]:
    """Identifying columns (those present, in ``id_columns`` order), then all others sorted."""
    present: set[str] = set()
    for row in rows:
        present.update(row)
    first = [c for c in id_columns if c in present]
    return first + sorted(present - set(first))


def write_table(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], id_columns: Sequence[str] = ID_COLUMNS
) -> list[str]:
    """Write ``rows`` as CSV (see module notes); returns the columns written.

    Without rows the file still has a header: ``id_columns``.
    """
    columns = table_columns(rows, id_columns) if rows else list(id_columns)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([format_value(row.get(c)) for c in columns])
    return columns
