"""Reading and checking the tables the tasks take (a CSV file, or a DataFrame): each rule written once, so that every
entry point refuses the same input with the same sentence.

- :func:`read_csv`: a CSV file with at least one data row (a header alone, an empty or unreadable file: one sentence).
- :func:`shown`: a cell as a message quotes it, capped at :data:`CELL_CHARS` characters (a 52 MB cell stays out).
- :func:`row_of`: the row a cell is on, as the user sees it: ``row 9 of sales.csv`` (the header is row 1) for a table
  read by :func:`read_csv`, else ``row 7``, the DataFrame's index label.
- :func:`check_numeric`, :func:`check_finite`, :func:`check_unique_times`: a column of numbers (naming the first cell
  that is not one), without infinite values or values beyond float32, and times that each appear once.
- :func:`parse_times`, :func:`check_time_zones`: a time column read as datetimes, naming the first cell that is not a
  time or the first two rows in different time zones.
- :func:`reason`: an exception's text on one line (pandas appends lines of advice), for a message to quote.
"""

from __future__ import annotations

import datetime
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CELL_CHARS = 60
"""The most characters a message quotes from one cell (or column name) of the user's data; longer ones end in ..."""

_SOURCE = "lstmkit_source"  # the key in DataFrame.attrs naming the file a table was read from


def cap(text: str, limit: int = CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters plus ``...`` when longer."""
    return text if len(text) <= limit else text[:limit] + "..."


def reason(error: BaseException, limit: int = 200) -> str:
    """An exception's text as a message quotes it: its first line (pandas adds lines of advice), capped; the type's
    name when it has no text."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    line = lines[0]
    if line.endswith(":") and ". " in line:  # "... . You might want to try:", a list of advice on the next lines
        line = line[: line.rindex(". ") + 1].rstrip(".")
    return cap(line, limit)


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
        # low_memory=False: whole columns typed at once (no DtypeWarning on stderr). index_col=False: a first data row
        # with one field more than the header is not taken as an index column, which shifted every column one place
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # "... leads to a loss of data": refused
            table = pd.read_csv(path, low_memory=False, index_col=False)
    except pd.errors.ParserWarning:
        raise ValueError(
            f"{cap(path.name)} could not be read as CSV: a row has more fields than the header names; remove the "
            "extra fields, or name every column in the header."
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{cap(path.name)} is empty: it has no header and no data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{cap(path.name)} could not be read as CSV: {reason(e)}") from None
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


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest magnitude a model computes with (about 3.4e38): a larger number in the data would become infinite."""


def check_finite(table: Any, column: str, *, time: str | None = None) -> None:
    """No infinite number in the numeric ``column``, and none larger in magnitude than :data:`FLOAT32_MAX` (the
    models compute in float32, where such a number becomes infinite and training stops on a non-finite loss).

    Raises:
        ValueError: naming the first row (and its time) that holds one, and what to do: remove the row, or leave the
            cell empty to mark the value missing (an infinite value), or rescale the column (a huge one).
    """
    values = table[column].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        inf, huge = np.isinf(values), np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)
    for bad in (inf, huge):
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad)[0])
        label = table.index[i]
        when = f" (time {shown_time(table[time].iloc[i])})" if time is not None and time in table.columns else ""
        more = f", and {int(bad.sum()) - 1} more row(s) do" if bad.sum() > 1 else ""
        if bad is inf:
            raise ValueError(
                f"Column {shown(column)} holds an infinite value ({shown(values[i])}) at {row_of(table, label)}{when}"
                f"{more}; remove the row, or leave the cell empty to mark the value missing."
            )
        raise ValueError(
            f"Column {shown(column)} holds {values[i]:.3g} at {row_of(table, label)}{when}{more}, beyond the "
            f"{FLOAT32_MAX:.3g} a model computes with; rescale the column (divide it by a power of ten) or remove "
            "the row."
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


def _time_of(value: Any) -> Any:
    """One cell read as pandas reads a time column (a string in any format it knows, a number as nanoseconds); raises
    ValueError, TypeError or OverflowError when it is not one."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(value)


def first_non_time(column: Any) -> int | None:
    """The position of the first filled cell of ``column`` that is not a time on its own, or None."""
    import pandas as pd

    for i, value in enumerate(column):
        if not pd.isna(value):
            try:
                _time_of(value)
            except (ValueError, TypeError, OverflowError):
                return i
    return None


def _zone(offset: Any) -> str:
    if offset is None:
        return "no time zone"
    minutes = int(offset.total_seconds() // 60)
    return f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def check_time_zones(table: Any, column: str, *, name: str) -> None:
    """The times of ``column`` (those that are times) all have the same UTC offset, or none.

    Raises:
        ValueError: ``{name} mixes time zones: row 2 of f.csv is at UTC+00:00, row 3 at UTC+01:00; ...``.
    """
    import pandas as pd

    first: tuple[Any, int] | None = None
    for i, value in enumerate(table[column]):
        if pd.isna(value):
            continue
        try:
            offset = _time_of(value).utcoffset()
        except (ValueError, TypeError, OverflowError, AttributeError):
            continue
        if first is None:
            first = (offset, i)
        elif offset != first[0]:
            raise ValueError(
                f"{name} mixes time zones: {row_of(table, table.index[first[1]])} is at {_zone(first[0])}, "
                f"{row_of(table, table.index[i])} at {_zone(offset)}; convert the times to one offset (UTC, say) or "
                "write them without one."
            )


def parse_times(table: Any, column: str, *, name: str, advice: str = "fix or drop that row") -> Any:
    """``table[column]`` as datetimes (pandas' rules: one format of date strings, numbers as nanoseconds).

    Raises:
        ValueError: one sentence naming the first cell that is not a time (its row and value), or the first two rows
            in different time zones, or pandas' reason (its first line) for any other failure.
    """
    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format": each cell parsed on its own
            times = pd.to_datetime(table[column])
        if pd.api.types.is_datetime64_any_dtype(times):
            return times
        error: BaseException = ValueError("the times are not of one kind")  # pandas 2: mixed offsets as objects
    except (ValueError, TypeError, OverflowError) as e:
        error = e
    check_time_zones(table, column, name=name)
    i = first_non_time(table[column])
    if i is not None:
        raise ValueError(
            f"{name} does not parse as timestamps: {row_of(table, table.index[i])} holds {shown(table[column].iloc[i])}"
            f"; {advice}."
        )
    raise ValueError(f"{name} does not parse as timestamps ({reason(error)}); write every time in one format.")
