"""The frequency and seasonal periods a series' timestamps imply: :func:`infer_seasonalities` (pure), and
:func:`resolve_season`, which fills a forecast config's ``season`` from it where the user gave none.

The periods follow the calendar: yearly data 1 (no season); quarterly 4; monthly 12; weekly 52; daily 7 (and 365);
business-daily 5; hourly 24 and 168; half-hourly 48 and 336; 15-minute 96 and 672; minutely 60 and 1440; any other
step dividing a day: a day and a week of steps. A period is kept only when the history holds two full periods of it
(else the next shorter one; none kept: 1). Integer or irregular times give 1, with the reason.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .series import grid_frequency

if TYPE_CHECKING:
    from .forecast_config import ForecastConfig
    from .series import Series

__all__ = ["Seasonality", "infer_seasonalities", "resolve_season"]

logger = logging.getLogger(__name__)

_DAY = 86_400.0  # seconds
# frequency name -> (one step in seconds, periods longest last); the steps of calendar frequencies are approximate
_TABLE: dict[str, tuple[float, tuple[int, ...]]] = {
    "yearly": (365.25 * _DAY, ()),
    "quarterly": (91.3 * _DAY, (4,)),
    "monthly": (30.44 * _DAY, (12,)),
    "weekly": (7 * _DAY, (52,)),
    "daily": (_DAY, (7, 365)),
    "hourly": (3600.0, (24, 168)),
    "half-hourly": (1800.0, (48, 336)),
    "15-minute": (900.0, (96, 672)),
    "minutely": (60.0, (60, 1440)),
}
# pandas offsets counted in months (YearEnd, BQuarterBegin, BusinessMonthEnd, ...): months per step
_MONTHS = (("Year", 12), ("BYear", 12), ("Quarter", 3), ("BQuarter", 3), ("Month", 1), ("BusinessMonth", 1))
# how far (relative) a calendar step may stray from its nominal length: months run 28-31 days, years 365-366
_SLACK = {"yearly": 0.02, "quarterly": 0.04, "monthly": 0.09}


@dataclass(frozen=True)
class Seasonality:
    """What the timestamps imply: the frequency's name, the main period (MASE's scale, the seasonal-naive baseline),
    every period kept (main first), why, and whether the inference is confident enough to contradict a user's choice
    (a recognised frequency with at least one period kept)."""

    frequency: str
    main: int
    all: tuple[int, ...]
    reason: str
    confident: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency, "main": self.main, "all": list(self.all), "reason": self.reason,
            "confident": self.confident,
        }  # fmt: skip


def _frequency_of(times: Any) -> tuple[str | None, float, int]:
    """One series' frequency name (None: not recognised), its step in seconds and its length in steps on its grid."""
    import numpy as np
    import pandas as pd

    index = pd.DatetimeIndex(times).sort_values()
    if len(index) < 2:
        return None, 0.0, len(index)
    diffs = np.diff(index.to_numpy()).astype("timedelta64[ns]").astype(float) / 1e9  # seconds
    step = float(np.median(diffs))
    if step <= 0:
        return None, 0.0, len(index)
    name = _named(grid_frequency(index))
    if name is None:  # no pandas frequency (gaps): the median spacing, if the gaps are whole steps
        for candidate in ("yearly", "quarterly", "monthly"):
            nominal = _TABLE[candidate][0]
            if abs(step - nominal) <= _SLACK[candidate] * nominal:
                name = candidate
        if name is None:
            name = _by_step(step)
        ratio = diffs / step
        if name is not None and np.mean(np.abs(ratio - np.round(ratio)) <= 0.1) < 0.9:
            name = None  # steps that are not whole multiples of the median: irregular
    if name == "business-daily":
        return name, _DAY, len(index)
    nominal = _TABLE[name][0] if name in _TABLE else step
    span = (index[-1] - index[0]).total_seconds()
    return name, nominal, int(round(span / nominal)) + 1 if name is not None else len(index)


def _named(freq: str | None) -> str | None:
    """A pandas frequency as a name of the table, or ``every 2h`` for another step dividing a day (None: neither)."""
    if freq is None:
        return None
    import pandas as pd
    from pandas.tseries.frequencies import to_offset

    try:
        offset = to_offset(freq)
    except ValueError:
        return None
    kind, n = type(offset).__name__, offset.n
    months = next((k * n for prefix, k in _MONTHS if kind.startswith(prefix)), None)
    if months is not None:
        return {12: "yearly", 3: "quarterly", 1: "monthly"}.get(months)
    if kind == "Week":
        return "weekly" if n == 1 else None
    if kind in ("BusinessDay", "CustomBusinessDay"):
        return "business-daily" if n == 1 else None
    try:
        seconds = n * _DAY if kind == "Day" else pd.Timedelta(offset).total_seconds()
    except (TypeError, ValueError):
        return None
    return _by_step(seconds)


def _by_step(seconds: float) -> str | None:
    """The name of a fixed step of a week or shorter."""
    for name in ("weekly", "daily", "hourly", "half-hourly", "15-minute", "minutely"):
        if seconds == _TABLE[name][0]:
            return name
    if 0 < seconds < _DAY and _DAY % seconds == 0:
        return f"every {_seconds_text(seconds)}"
    return None


def _seconds_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _periods(name: str, step: float) -> tuple[int, ...]:
    if name in _TABLE:
        return _TABLE[name][1]
    if name == "business-daily":
        return (5,)
    return (int(_DAY // step), int(7 * _DAY // step))  # another step dividing a day: a day and a week of steps


def infer_seasonalities(times: Any, ids: Any = None, *, reserve: int = 0) -> Seasonality:
    """The frequency and seasonal periods of a time column (see the module docstring for the table).

    Args:
        times: the time column (timestamps, date strings, or numbers: integer steps carry no calendar).
        ids: with many series in one table, the column naming each row's series: the spacing is read within series
            and the periods must fit the shortest.
        reserve: steps of each series the two periods must leave free (a forecast's horizon and one more point).
    """
    import numpy as np
    import pandas as pd

    column = pd.Series(np.asarray(times))
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return Seasonality("integer", 1, (1,), "the times are numbers (steps with no calendar): no season inferred")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.Series(pd.to_datetime(column).to_numpy())
    except (TypeError, ValueError, OverflowError):
        return Seasonality("irregular", 1, (1,), "the times do not parse as timestamps: no season inferred")
    groups = [g for _, g in parsed.groupby(np.asarray(ids), sort=False)] if ids is not None else [parsed]
    found = [_frequency_of(g.dropna()) for g in groups]
    names = {name for name, _, _ in found}
    if None in names or len(names) != 1:
        what = "vary between series" if len(names - {None}) > 1 else "are irregular"
        return Seasonality("irregular", 1, (1,), f"the time steps {what}: no season inferred")
    name, step = found[0][0], found[0][1]
    assert name is not None
    shortest = min(n for _, _, n in found) - reserve
    candidates = _periods(name, step)
    kept = tuple(p for p in candidates if shortest >= 2 * p)
    where = "the shortest series holds" if ids is not None and len(groups) > 1 else "the history holds"
    if not candidates:
        return Seasonality(name, 1, (1,), f"{name} data: no seasonal period", confident=True)
    if not kept:
        return Seasonality(
            name, 1, (1,), f"{name} data, but {where} {shortest} steps, fewer than two periods of {candidates[0]}"
        )
    reason = f"{name} data: period{'s' if len(kept) > 1 else ''} {', '.join(map(str, kept))}"
    if len(kept) < len(candidates):
        dropped = [p for p in candidates if p not in kept]
        reason += f"; {', '.join(map(str, dropped))} left out, as {where} {shortest} steps, under two periods"
    return Seasonality(name, kept[0], kept, reason, confident=True)


def resolve_season(
    config: ForecastConfig, table: Any, series: list[Series], *, reserve: int | None = None, warn: bool = True
) -> tuple[ForecastConfig, dict[str, Any]]:
    """The config with its season filled from the timestamps where it is None, and what was inferred.

    A season the user gave is kept; with ``warn``, when the inference is confident and that season is not one of its
    periods, a warning says what the timestamps suggest (MASE and seasonal-naive use the season in use).

    Args:
        table: the table the series were prepared from (its time column tells integer steps from timestamps).
        series: the prepared series (:func:`lstmkit.tasks.timeseries.series.prepare_series`), on their grids.
        reserve: steps of each series the periods must leave free; default the horizon and one point (the history
            before a forecast holds two seasons and one point, as :func:`check_season` asks).

    Returns:
        ``(config, record)``; the record, for ``result.json``: ``{"season", "source": "given" | "inferred",
        "frequency", "periods", "reason"}``.
    """
    import numpy as np
    import pandas as pd

    from .series import check_season

    column = table[config.time] if config.time in getattr(table, "columns", ()) else None
    if column is not None and pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        found = infer_seasonalities(column)
    elif any(s.freq is None for s in series):
        found = Seasonality("irregular", 1, (1,), "the times are not on a regular grid (one step per observation)")
    else:
        times = np.concatenate([s.time.to_numpy() for s in series])
        ids = np.repeat([s.key for s in series], [len(s.time) for s in series]) if len(series) > 1 else None
        found = infer_seasonalities(times, ids, reserve=config.horizon + 1 if reserve is None else reserve)
    record = {"frequency": found.frequency, "periods": list(found.all), "reason": found.reason}
    if config.season is None:
        logger.info("season %d inferred from the timestamps (%s)", found.main, found.reason)
        return config.replace(season=found.main), {"season": found.main, "source": "inferred", **record}
    shortest = min(len(s.y) for s in series)
    if config.horizon < shortest:  # (a horizon as long as the history is refused by the caller, in its own words)
        check_season(config.season, shortest, config.horizon)  # a season too long is a refusal, not a warning
    if warn and found.confident and config.season not in found.all:
        logger.warning(
            "season %d (given) is not what the timestamps suggest (%s): MASE and seasonal-naive use %d; leave the "
            "season out to use %d.", config.season, found.reason, config.season, found.main,
        )  # fmt: skip
    return config, {"season": config.season, "source": "given", **record}
