"""The series an anomaly detector reads: values of a 1-D array or a table's column in time order, and 0/1 labels."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ....data.tables import (
    check_finite,
    check_numeric,
    check_rows,
    check_time_zones,
    check_unique_times,
    first_non_time,
    row_of,
    shown,
    shown_list,
)

__all__ = ["as_table", "in_time_order", "labels_of", "series_values", "step_labels"]


def in_time_order(table: Any, time: str, what: str = "data") -> Any:
    """The table's rows in ``time`` order, with the time column as numbers when every value is one, else as
    datetimes; the table itself when it has no such column. The rows keep their index labels (so that a message can
    name a row of the file).

    ``pd.read_csv`` leaves dates (and numbers, in a column holding any text) as strings, which sort as text:
    ``10/1/2020`` before ``9/1/2020``, ``10`` before ``8``. Converting first puts the rows in time order.

    Raises:
        ValueError: with one sentence for missing times, times that are neither numbers nor dates, or a time that
            appears twice (as forecasting refuses it: :func:`lstmkit.data.tables.check_unique_times`).
    """
    import pandas as pd

    if time not in table.columns:
        return table
    col = table[time]
    if col.isna().any():
        first = table.index[int(np.flatnonzero(col.isna().to_numpy())[0])]
        raise ValueError(
            f"The time column {shown(time)} of the {what} is missing at {int(col.isna().sum())} rows (the first is "
            f"{row_of(table, first)}); fill in or drop those rows."
        )
    if pd.api.types.is_bool_dtype(col) or not (
        pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)
    ):
        as_numbers = pd.to_numeric(col, errors="coerce")
        if as_numbers.notna().all() and not pd.api.types.is_bool_dtype(col):
            col = as_numbers
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "could not infer format": parsed one by one
                    col = pd.to_datetime(col)
                if not pd.api.types.is_datetime64_any_dtype(col):  # pandas 2: mixed time zones parse as objects
                    raise ValueError("times of several kinds")
            except (ValueError, TypeError, OverflowError):
                name = f"The time column {shown(time)} of the {what}"
                check_time_zones(table, time, name=name)
                bad = col[as_numbers.isna()]
                at = first_non_time(bad)
                example = bad.iloc[at if at is not None else 0] if len(bad) else col.iloc[0]
                raise ValueError(
                    f"{name} holds values that are neither numbers nor dates "
                    f"(e.g. {shown(example)}), so the rows cannot be put in time order; convert them, or name the "
                    "time column with --time."
                ) from None
    written, table = table[time], table.copy()
    table[time] = col
    check_unique_times(table, time, whose="The table" if what == "data" else f"The {what}", written=written)
    return table.sort_values(time, kind="stable")


def series_values(data: Any, target: str, time: str, what: str = "data") -> np.ndarray:
    """(T,) float values of a 1-D array or of a table's ``target`` column (in ``time`` order when it exists).

    Raises:
        ValueError: with one sentence for a wrong shape, an unknown or non-numeric column, or all values missing.
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        check_rows(data)
        if target not in data.columns:
            raise ValueError(
                f"Unknown column {shown(target)} in the {what}; the table has {shown_list(data.columns)}. Name the "
                "column to watch with target= (--target)."
            )
        check_numeric(data, target, advice="give a number or an empty cell (a missing value), or watch another column.")
        check_finite(data, target, time=time)
        values = in_time_order(data, time, what)[target].to_numpy(dtype=float)
    elif isinstance(data, pd.Series):
        values = data.to_numpy(dtype=float)
    else:
        try:
            values = np.asarray(data, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"The {what} must be numbers: pass a 1-D array of floats or a table.") from None
        if values.ndim != 1:
            raise ValueError(f"Pass a DataFrame or a 1-D array of values, got an array of shape {values.shape}.")
    if values.size == 0 or np.isnan(values).all():
        raise ValueError(f"The {what} has no values: {shown(target)} is empty or missing (NaN) everywhere.")
    if np.isinf(values).any():
        raise ValueError(f"The {what} holds infinite values at steps {np.flatnonzero(np.isinf(values))[:3].tolist()}.")
    return values


def as_table(values: np.ndarray, target: str, time: str) -> Any:
    """The values as a table on an hourly grid: the forecaster's input (it reads no calendar here)."""
    import pandas as pd

    return pd.DataFrame({time: pd.date_range("2000-01-01", periods=len(values), freq="h"), target: values})


def step_labels(labels: Any, n: int, what: str = "labels") -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != n:
        raise ValueError(f"The {what} must be one 0/1 value per step: got shape {y.shape} for {n} steps.")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        import pandas as pd

        # the values that are not 0 or 1 even as numbers, in their order (a column with one text cell is all text,
        # and text and numbers do not sort together)
        bad = y[~pd.to_numeric(pd.Series(y), errors="coerce").isin((0, 1)).to_numpy()] if y.size else y
        examples = list(dict.fromkeys(shown(v) for v in (bad if bad.size else y).tolist()))
        raise ValueError(f"The {what} must be 0 (normal) or 1 (anomaly), got values like [{', '.join(examples[:5])}].")
    return y.astype(bool)


def labels_of(data: Any, labels: Any, n: int, time: str, what: str = "labels") -> np.ndarray:
    """(n,) booleans from 0/1 labels given per step in time order, or from the name of a 0/1 column of the table
    ``data`` (read in the table's ``time`` order, as its values are)."""
    import pandas as pd

    if isinstance(labels, str):
        if not isinstance(data, pd.DataFrame):
            raise ValueError(
                f"The {what} name a column ({labels!r}) but the data are not a table; pass one 0/1 value per step."
            )
        if labels not in data.columns:
            raise ValueError(
                f"Unknown label column {shown(labels)}; the table has {shown_list(data.columns)}. Name the 0/1 column "
                "of labels."
            )
        labels = in_time_order(data, time, what)[labels].to_numpy()
    return step_labels(labels, n, what)
