"""Reading and checking the tables the tasks take (a CSV file, or a DataFrame): each rule written once, so that every
entry point refuses the same input with the same sentence.

- :func:`read_csv`: a CSV file with at least one data row (a header alone, an empty or unreadable file: one sentence).
- :func:`shown`: a cell as a message quotes it, capped at :data:`CELL_CHARS` characters (a 52 MB cell stays out).
- :func:`row_of`: the row a cell is on, as the user sees it: ``row 9 of sales.csv`` (the header is row 1) for a table
  read by :func:`read_csv`, else ``row 7``, the DataFrame's index label.
- :func:`check_numeric`, :func:`check_finite`, :func:`check_unique_times`: a column of numbers (naming the first cell
  that is not one), without infinite values, and times that each appear once.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import numpy as np

CELL_CHARS = 60
"""The most characters a message quotes from one cell (or column name) of the user's data; longer ones end in ..."""

_SOURCE = "lstmkit_source"  # the key in DataFrame.attrs naming the file a table was read from


def cap(text: str, limit: int = CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters plus ``...`` when longer."""
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value: Any, limit: int = CELL_CHARS) -> str:
    """A cell as a message quotes it: ``3``, ``'s1'`` (as Python writes it, not ``np.int64(3)``), a timestamp as
    ``2020-01-05 00:00:00``; cut to ``limit`` characters plus ``...``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (datetime.date, datetime.datetime, np.datetime64)) or type(value).__name__ == "Timestamp":
        return cap(str(value), limit)
    return cap(repr(value), limit)


def shown_time(value: Any) -> str:
    """A time cell as a message quotes it: as the file writes it, without quotes (``2020-01-05``), capped."""
    return cap(value) if isinstance(value, str) else shown(value)


def shown_list(values: Any, most: int = 20) -> str:
    """A list of cells or column names as a message quotes it: ``['a', 'b', ...]``, each one :func:`shown`."""
    values = list(values)
    more = ", ..." if len(values) > most else ""
    return "[" + ", ".join(shown(v) for v in values[:most]) + more + "]"


def one_source(dataset: Any, csv: Any, *, data: str = "--data NAME", file: str = "--csv FILE") -> None:
    """Exactly one of a bundled dataset's name and a CSV file.

    Raises:
        ValueError: naming both options when neither is given, and saying "not both" when both are.
    """
    if dataset is None and csv is None:
        raise ValueError(f"Say which data to use: give one of {data} or {file}.")
    if dataset is not None and csv is not None:
        raise ValueError(f"Give the data one way, {data} or {file}, not both.")


def read_csv(path: str | os.PathLike[str]) -> Any:
    """The CSV file at ``path`` as a DataFrame that remembers its file (for :func:`row_of`).

    Raises:
        FileNotFoundError: no file there. ValueError: the file is empty, holds a header but no data rows, or does
            not parse as CSV (one sentence each).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No CSV file at {cap(str(path), 200)}.")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{cap(path.name)} is empty: it has no header and no data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{cap(path.name)} could not be read as CSV: {cap(first, 200)}") from None
    if len(table) == 0:
        raise ValueError(f"{cap(path.name)} has no data rows, only the header; give a file with data under its header.")
    table.attrs[_SOURCE] = cap(path.name)
    return table


def check_rows(table: Any) -> None:
    """A table with at least one row (a DataFrame built in Python; :func:`read_csv` checks files itself)."""
    if len(table) == 0:
        source = table.attrs.get(_SOURCE)
        raise ValueError(f"{source or 'The table'} has no data rows; give a table with data.")


def row_of(table: Any, *labels: Any) -> str:
    """``row 9 of sales.csv`` (the file's header is row 1, so the first data row is row 2) for a row label of a table
    read by :func:`read_csv` whose index is still the file's; else ``row 7``, the table's own index label. Two or more
    labels: ``rows 6 and 7 of sales.csv``."""
    source = table.attrs.get(_SOURCE)
    from_file = source is not None and all(
        isinstance(label, (int, np.integer)) and not isinstance(label, bool) for label in labels
    )
    numbers = [str(int(label) + 2) if from_file else shown(label) for label in labels]
    listed = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
    return f"row{'s' if len(numbers) > 1 else ''} {listed}" + (f" of {source}" if from_file else "")


def _first(mask: Any) -> int:
    """The position of the first True in a boolean Series or array."""
    return int(np.flatnonzero(np.asarray(mask))[0])


def check_numeric(table: Any, column: str, *, name: str = "Column", advice: str = "") -> None:
    """Every filled cell of ``column`` is a number (an empty cell is a missing value).

    Raises:
        ValueError: ``{name} 'x' must be numeric, but row 9 of f.csv holds 'oops'`` and ``advice``; booleans count as
            not numbers.
    """
    import pandas as pd

    col = table[column]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return
    if pd.api.types.is_bool_dtype(col):
        bad = col.notna()
    else:
        bad = col.notna() & pd.to_numeric(col, errors="coerce").isna()
        if not bad.any():  # numbers held as text (a DataFrame built in Python): name the first
            bad = col.notna()
    if not bad.any():
        return  # an empty column: the caller says "missing everywhere"
    i = _first(bad)
    raise ValueError(
        f"{name} {shown(column)} must be numeric, but {row_of(table, table.index[i])} holds {shown(col.iloc[i])}"
        + (f"; {advice}" if advice else ".")
    )


def check_finite(table: Any, column: str, *, time: str | None = None) -> None:
    """No infinite number in the numeric ``column``.

    Raises:
        ValueError: naming the first row (and its time) that holds one, and what to do: remove the row, or leave the
            cell empty to mark the value missing.
    """
    values = table[column].to_numpy(dtype=float)
    inf = np.isinf(values)
    if not inf.any():
        return
    i = int(np.flatnonzero(inf)[0])
    label = table.index[i]
    when = f" (time {shown_time(table[time].iloc[i])})" if time is not None and time in table.columns else ""
    more = f", and {int(inf.sum()) - 1} more row(s) do" if inf.sum() > 1 else ""
    raise ValueError(
        f"Column {shown(column)} holds an infinite value ({shown(values[i])}) at {row_of(table, label)}{when}{more}; "
        "remove the row, or leave the cell empty to mark the value missing."
    )


def check_unique_times(table: Any, time: str, *, whose: str = "The table", written: Any = None) -> None:
    """Each value of the ``time`` column (parsed: numbers or datetimes) appears once (within ``table``: one series).

    Args:
        written: the time column as the file writes it (before parsing), to quote; default ``table[time]``.

    Raises:
        ValueError: ``{whose} has duplicate timestamps: 2020-01-05 at rows 6 and 7 of f.csv; ...``.
    """
    col = table[time]
    dup = col.duplicated(keep=False) & col.notna()
    if not dup.any():
        return
    i = _first(dup)
    rows = np.flatnonzero(dup.to_numpy() & (col == col.iloc[i]).to_numpy())[:2]
    text = (table[time] if written is None else written).iloc[i]
    raise ValueError(
        f"{whose} has duplicate timestamps: {shown_time(text)} at {row_of(table, *table.index[rows])}; each time "
        "needs one row, so aggregate or drop the duplicates first."
    )
