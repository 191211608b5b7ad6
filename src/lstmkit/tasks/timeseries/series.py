"""Forecasting's data: the rules a table must meet, cut into regular series (:func:`prepare_series`), the bundled
dataset or CSV it comes from (:func:`dataset_or_csv`), and the history / future slices a backtest or an evaluation cuts.

Data rules, checked with one clear sentence each: the table has data rows; the time column parses as timestamps; no
duplicate timestamps (per series); a static covariate is constant within each series; the target and the covariates
are numbers (an empty cell is a missing value) and never infinite; the target is not all missing; the horizon is
shorter than the history; the history before it holds two seasons; there are enough points for one training window.
Missing timestamps on a regular grid are inserted as missing values; missing values are masked (flagged in the input,
left out of the loss), never filled.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...data.tables import (
    cap,
    check_finite,
    check_numeric,
    check_rows,
    check_unique_times,
    one_source,
    parse_times,
    read_csv,
    shown,
    shown_list,
)

if TYPE_CHECKING:
    from .forecast_config import ForecastConfig

__all__ = [
    "Series", "as_table", "check_season", "dataset_or_csv", "future_rows", "grid_frequency", "prepare_series",
    "require_pandas", "slice_table",
]  # fmt: skip


@dataclass
class Series:
    """One prepared series: regular time grid, target with NaN for missing, covariates."""

    key: str
    time: Any  # pandas DatetimeIndex
    y: np.ndarray  # (T,)
    past: np.ndarray  # (T, P)
    future: np.ndarray  # (T, F)
    inserted: int  # timestamps added to fill gaps in the grid (their values missing)
    freq: str | None = None  # the pandas frequency of the grid; None for irregular observations (one step each)
    static: dict[str, Any] | None = None  # static covariate -> this series' value


def require_pandas() -> Any:
    """The pandas module, or an ImportError that names the extra to install."""
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError("Forecasting reads tables with pandas: pip install 'lstmkit[timeseries]'.") from e
    return pd


def prepare_series(df: Any, cfg: ForecastConfig) -> list[Series]:
    """Check a table and cut it into regular series (see the module docstring for the rules).

    Raises:
        ValueError: unknown column, non-numeric target, unparseable time, duplicate timestamps, all-missing target.
    """
    pd = require_pandas()
    df = as_table(df)
    check_rows(df)
    wanted = [cfg.time, cfg.target, *cfg.past_covariates, *cfg.future_covariates, *cfg.static_covariates]
    wanted += [cfg.id] if cfg.id else []
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ValueError(
            f"Unknown column(s) {shown_list(missing)}; the table has {shown_list(df.columns)}. Check the column names."
        )
    for col in [cfg.target, *cfg.past_covariates, *cfg.future_covariates]:
        check_numeric(df, col, advice="give a number or an empty cell (a missing value), or leave the column out.")
        check_finite(df, col, time=cfg.time)
    times = parse_times(df, cfg.time, name=f"The time column {shown(cfg.time)}", advice="fix or drop that row")
    written, df = df[cfg.time], df.assign(**{cfg.time: times})
    groups = df.groupby(cfg.id, sort=True) if cfg.id else [("series", df)]
    out = []
    for key, g in groups:
        whose = f"Series {shown(key)}" if cfg.id else "The table"
        check_unique_times(g, cfg.time, whose=whose, written=written.loc[g.index] if df.index.is_unique else None)
        g = g.sort_values(cfg.time)
        static = {}
        for col in cfg.static_covariates:
            values = g[col].dropna().unique()
            if len(values) != 1:
                what = (
                    "is missing everywhere"
                    if len(values) == 0
                    else f"takes {len(values)} values ({', '.join(cap(str(v)) for v in values[:3])})"
                )
                raise ValueError(
                    f"Static covariate {shown(col)} {what} in series {shown(key)}; a static covariate holds one value "
                    "per series (use a past or future covariate for values that change over time)."
                )
            static[col] = values[0].item() if hasattr(values[0], "item") else values[0]
        g = g.set_index(cfg.time)
        inserted, freq = 0, grid_frequency(g.index)
        if freq is not None:
            grid = pd.date_range(g.index[0], g.index[-1], freq=freq)
            if g.index.isin(grid).all() and len(grid) <= 1.1 * len(g):  # a regular grid with gaps: fill the grid
                inserted = len(grid) - len(g)
                g = g.reindex(grid)
            else:
                freq = None  # irregular observations (trading days, say): kept in their order, one step each
        y = g[cfg.target].to_numpy(dtype=float)
        if np.isnan(y).all():
            raise ValueError(f"The target {shown(cfg.target)} of series {shown(key)} is missing everywhere.")
        out.append(Series(
            str(key), g.index, y,
            g[list(cfg.past_covariates)].to_numpy(dtype=float).reshape(len(g), -1),
            g[list(cfg.future_covariates)].to_numpy(dtype=float).reshape(len(g), -1),
            inserted, freq, static,
        ))  # fmt: skip
    return out


def as_table(data: Any) -> Any:
    """A DataFrame, or the CSV file at a path read as one (:func:`lstmkit.data.tables.read_csv`)."""
    pd = require_pandas()
    if isinstance(data, (str, os.PathLike)):
        data = read_csv(data)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Forecasting needs a pandas DataFrame or a CSV path, got {type(data).__name__}.")
    return data


def check_season(season: int, shortest: int, horizon: int) -> None:
    """The history before a horizon holds two seasons and one more point (as the backtest's first origin must).

    Raises:
        ValueError: naming the series length and the largest season it supports.
    """
    largest = (shortest - horizon - 1) // 2
    if season > 1 and season > largest:
        raise ValueError(
            f"The season ({season} steps, --season) is longer than the series can support: the shortest series has "
            f"{shortest} points, {shortest - horizon} before a horizon of {horizon}, which hold two seasons of at "
            f"most {max(largest, 1)} steps. Give a season of at most {max(largest, 1)} (1: none), or more data."
        )


def grid_frequency(index: Any) -> str | None:
    """The grid's frequency, read from a stretch of the index without gaps (the whole, its start or its end)."""
    pd = require_pandas()
    if len(index) < 3:
        return None
    for part in (index, index[:25], index[-25:]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas 3 announces infer_freq returning offsets; both are handled
                freq = pd.infer_freq(part)
        except (TypeError, ValueError):
            freq = None
        if freq is not None:
            return str(getattr(freq, "freqstr", freq))
    return None


def slice_table(table: Any, cfg: ForecastConfig, origins: dict[str, Any]) -> Any:
    """The rows strictly before each series' origin time."""
    pd = require_pandas()
    times = pd.to_datetime(table[cfg.time])
    if cfg.id:
        limit = table[cfg.id].astype(str).map(origins)
        return table[times < pd.to_datetime(limit)]
    return table[times < next(iter(origins.values()))]


def future_rows(table: Any, cfg: ForecastConfig, origins: dict[str, Any]) -> Any:
    """From each origin on: the future covariates the forecast may read."""
    pd = require_pandas()
    times = pd.to_datetime(table[cfg.time])
    if cfg.id:
        limit = pd.to_datetime(table[cfg.id].astype(str).map(origins))
        rows = table[times >= limit]
    else:
        rows = table[times >= next(iter(origins.values()))]
    return rows[[c for c in (cfg.id, cfg.time, *cfg.future_covariates) if c]]


# What a bundled data set says about its own columns, per task: the config defaults a --data NAME run starts from.
_ROLES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "forecasting": lambda info: {
        "target": info.targets[0], "time": "time", "season": info.season, "past_covariates": info.past_covariates,
        "future_covariates": info.future_covariates, "static_covariates": info.static_covariates, "id": info.id,
    },
    "anomaly": lambda info: {"target": info.targets[0], "time": "time", "label": "label"},
    "classification": lambda info: {"id": "id", "label": "label", "step": "step", "split": "split"},
}  # fmt: skip


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def dataset_or_csv(dataset: str | None, csv: str | os.PathLike[str] | None, task: str) -> tuple[Any, dict[str, Any]]:
    """The table a time-series task reads, from a bundled data set or the user's CSV (exactly one), and for a bundled
    data set its column roles as config defaults; written once for forecasting, anomaly detection and classification.

    Args:
        dataset: a bundled name (``lstmkit datasets list``), or None.
        csv: a CSV file, or None.
        task: ``"forecasting"``, ``"anomaly"`` or ``"classification"``: a bundled data set must be of that task.

    Raises:
        ValueError: if both or neither are given, or the data set belongs to another task; FileNotFoundError: for a
            missing CSV; KeyError: for an unknown data set name.
    """
    one_source(dataset, csv)
    if dataset is not None:
        from ...datasets import get_info, load_dataset

        info = get_info(dataset)
        if info.task != task:
            raise ValueError(
                f"{dataset!r} is {_a(info.task)} {info.task} dataset, not {_a(task)} {task} one; see lstmkit datasets "
                f"list --task {task}."
            )
        return load_dataset(dataset), _ROLES[task](info)
    return read_csv(csv), {}
