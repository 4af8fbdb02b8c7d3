"""CSV tables with one fixed text form per value, and Parquet files of declared tables, so that
reruns give identical bytes."""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.export.atomic import atomic_path, atomic_write_text

if TYPE_CHECKING:
    from pipeline.export.layers import Kind, Table

#: Decimal places of float cells unless the caller says otherwise.
DEFAULT_FLOAT_DIGITS = 4


def write_csv(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    float_digits: int | Mapping[str, int] = DEFAULT_FLOAT_DIGITS,
) -> Path:
    """Write ``rows`` as a UTF-8 CSV with a header of ``columns``, in that order; return the path.

    Cells: floats with exactly ``float_digits`` decimals (an int for all columns, or a mapping from
    column to decimals, other columns 4), ``-0.0000`` written as ``0.0000``, infinities as
    ``inf``/``-inf``; NaN and None as an empty cell; bools as ``true``/``false``; ints as
    integers; dates as ISO 8601; enums as their value; strings as given (quoted when needed).
    Lines end with ``\\n``; no byte-order mark. Every row must have every column (a missing one is
    a ``ValueError`` naming the row and column); keys not in ``columns`` are not written.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("write_csv needs at least one column")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValueError(f"columns {duplicates} appear more than once in {columns}")
    digits = _digits_per_column(float_digits, columns)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"row {index} must be a mapping, got {type(row).__name__}")
        cells = []
        for column in columns:
            if column not in row:
                raise ValueError(
                    f"row {index} has no column {column!r} (it has {sorted(map(str, row))})"
                )
            cells.append(_cell(row[column], digits[column], f"row {index} column {column!r}"))
        writer.writerow(cells)
    return atomic_write_text(path, buffer.getvalue())


def _digits_per_column(float_digits: int | Mapping[str, int], columns: list[str]) -> dict[str, int]:
    if isinstance(float_digits, Mapping):
        unknown = sorted(set(float_digits) - set(columns))
        if unknown:
            raise ValueError(f"float_digits names columns {unknown} that are not in {columns}")
        digits = {c: float_digits.get(c, DEFAULT_FLOAT_DIGITS) for c in columns}
    else:
        digits = dict.fromkeys(columns, float_digits)
    for column, value in digits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"float_digits for column {column!r} must be an int >= 0, got {value!r}"
            )
    return digits


def format_float(value: float, digits: int) -> str:
    """``value`` with exactly ``digits`` decimals; NaN is ``""`` and negative zero loses its sign."""
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{digits}f}"
    if text.startswith("-") and not text.strip("-0."):
        return text[1:]
    return text


def _cell(value: Any, digits: int, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _cell(value.value, digits, where)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return format_float(float(value), digits)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    raise TypeError(
        f"{where}: cannot write a {type(value).__name__} ({value!r}) to CSV; allowed are None, "
        "bool, int, float, str, date/datetime and enums of these"
    )


#: Arrow type of each column kind (``pipeline.export.layers``) in a Parquet file; ``json`` cells
#: are JSON text.
ARROW_TYPES: Mapping[Kind, str] = {
    "int": "int32", "float": "float64", "bool": "bool", "date": "date32", "text": "string",
    "json": "string",
}  # fmt: skip


def write_parquet(path: str | os.PathLike[str], table: Table) -> Path:
    """Write ``table``'s rows as a Parquet file with its declared schema (columns in order, all
    nullable, types from :data:`ARROW_TYPES`), zstd-compressed; atomically, and byte-identical
    for identical rows (no pandas metadata, no timestamps). Return the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(c.name, pa.type_for_alias(ARROW_TYPES[c.kind])) for c in table.columns])  # fmt: skip
    rows = table.flat_rows()
    data = pa.Table.from_pydict({c.name: [r[c.name] for r in rows] for c in table.columns}, schema=schema)  # fmt: skip
    target = Path(path)
    with atomic_path(target) as temp:
        pq.write_table(data, temp, compression="zstd")
    return target
