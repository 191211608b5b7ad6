"""Forecasting rows of the scorecard: ``forecast train``'s defaults (its selection) against the statistical peers on
each bundled series, its last horizon held out and read once.

Each data set is forecast from its target alone (the peers read no covariates). Peers: seasonal-naive (and over each
longer period), and from statsforecast AutoETS, AutoTheta, AutoARIMA (seasons up to 24: with longer ones it runs for
hours) and MSTL (two seasonalities). The issue's deep-learning peers (neuralforecast's ``LSTM``, darts' ``RNNModel``)
are not run by this version: the card says so. MASE is scaled by the seasonal-naive in-sample error with the season
the timestamps imply; each model's MASE is also given relative to seasonal-naive's, and the summary is the geometric
mean of that ratio over every series. A model with no score on a series (it refused the history) shows None.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["SETS", "Spec", "run", "summarize"]


@dataclass(frozen=True)
class Spec:
    """One bundled series set: its name, the horizon held out, and (``last``) how many of its latest points the quick
    run keeps."""

    name: str
    horizon: int
    last: int | None = None


SETS = (
    Spec("airline", 24), Spec("co2", 52, 520), Spec("electricity", 336, 4368), Spec("msft", 20, 1000),
    Spec("sunspots", 24, 600), Spec("visnights", 8),
)  # fmt: skip


def _tables(spec: Spec, quick: bool) -> tuple[Any, Any, str | None]:
    """The table with the target only (``time``, the target, and the id for many series) and its info."""
    from ..datasets import get_info, load_dataset

    info = get_info(spec.name)
    cols = ["time", info.targets[0], *([info.id] if info.id else [])]
    table = load_dataset(spec.name)[cols]
    if quick and spec.last is not None:
        table = table.iloc[-spec.last :]
    return table.reset_index(drop=True), info, info.id


def _peers(history: np.ndarray, h: int, periods: list[int]) -> dict[str, tuple[np.ndarray | None, float, str]]:
    """``{peer: (forecast or None, seconds, note)}`` for one series."""
    from ..tasks.timeseries.baselines import seasonal_naive

    out: dict[str, tuple[np.ndarray | None, float, str]] = {}
    start = time.monotonic()
    out["seasonal_naive"] = (seasonal_naive(history, h, periods[0]), time.monotonic() - start, "")
    for p in periods[1:]:  # the longer periods' seasonal-naive: last week's same day, for half-hourly data
        if p > periods[0]:  # every series gets the same names: None where the history is too short
            fits = history.size >= 2 * p
            out[f"seasonal_naive_{p}"] = (seasonal_naive(history, h, p) if fits else None, 0.0,
                                          "" if fits else f"history under two periods of {p}")  # fmt: skip
    names = ["auto_ets", "auto_theta", "auto_arima"]
    if len([m for m in periods if m > 1]) >= 2:
        names.append("mstl")  # refused (None) where the history holds fewer than two seasonalities twice
    for name in names:
        if name == "auto_arima" and periods[0] > 24:
            out[name] = (None, 0.0, f"season {periods[0]} > 24: AutoARIMA would run for hours")
            continue
        start = time.monotonic()
        try:
            out[name] = (_statistical(name, history, h, periods), time.monotonic() - start, "")
        except Exception as e:  # a peer that fails on a series is reported, not fatal to the card
            out[name] = (None, time.monotonic() - start, f"failed: {str(e).splitlines()[0][:80]}")
    for name in ("neuralforecast_lstm", "darts_lstm"):
        out[name] = (None, 0.0, "not run by this version of the scorecard")
    return out


def _statistical(name: str, history: np.ndarray, h: int, periods: list[int]) -> np.ndarray:
    from ..tasks.timeseries.baselines import statistical_forecast

    if name != "auto_arima":
        return statistical_forecast(name, history, h, periods)
    import warnings

    from statsforecast.models import AutoARIMA

    y = np.asarray(history, dtype=float)
    ok = ~np.isnan(y)
    y = np.interp(np.arange(y.size), np.flatnonzero(ok), y[ok]) if not ok.all() else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(AutoARIMA(season_length=periods[0]).forecast(y=y, h=h)["mean"], dtype=float)


def run(spec: Spec, *, quick: bool, seed: int = 0, max_minutes: float | None = None) -> dict[str, Any]:
    """One data set's row: lstmkit's default forecaster and every peer, per series and summarised."""
    from ..tasks.timeseries.forecast_config import ForecastConfig
    from ..tasks.timeseries.forecast_select import select_forecaster
    from ..tasks.timeseries.metrics import mase
    from ..tasks.timeseries.series import prepare_series, slice_table

    table, info, id_ = _tables(spec, quick)
    target, h = info.targets[0], spec.horizon
    given: dict[str, Any] = {"target": target, "horizon": h, "id": id_, "train": {"seed": seed, "progress": False}}
    if max_minutes is not None:
        given["train"]["max_minutes"] = max_minutes
    cfg = ForecastConfig.from_dict(given)
    series = prepare_series(table, cfg)
    cuts = {s.key: s.time[len(s.y) - h] for s in series}
    history = slice_table(table, cfg, cuts)
    start = time.monotonic()
    forecaster, selection = select_forecaster(history, cfg)
    fit_seconds = time.monotonic() - start
    pred = forecaster.predict(history)
    m = forecaster.config.season or 1
    periods = forecaster.periods
    scores: dict[str, list[float | None]] = {"lstmkit": []}
    seconds: dict[str, float] = {"lstmkit": fit_seconds}
    notes: dict[str, str] = {}
    for s in series:
        y_hist, actual = s.y[: len(s.y) - h], s.y[len(s.y) - h :]
        rows = pred[pred[id_] == s.key] if id_ else pred
        value = mase(actual, rows["q0.5"].to_numpy(), y_hist, m)
        scores["lstmkit"].append(value if math.isfinite(value) else None)
        for name, (forecast, secs, note) in _peers(y_hist, h, periods).items():
            scores.setdefault(name, [])
            seconds[name] = seconds.get(name, 0.0) + secs
            value = None if forecast is None else mase(actual, forecast, y_hist, m)
            if forecast is None:
                notes[name] = note
            scores[name].append(value if value is not None and math.isfinite(value) else None)
    return {
        "dataset": spec.name, "horizon": h, "season": m, "series": len(series), "points": int(len(table)),
        "quick": quick, "seed": seed, "scores": scores, "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "notes": notes, "chosen": selection.chosen, "verdict": selection.verdict, "members": selection.members,
    }  # fmt: skip


def summarize(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per model, the geometric mean over every series of every row of MASE relative to seasonal-naive's (None where
    the model has no score on some series)."""
    models = list(rows[0]["scores"])
    out: dict[str, float | None] = {}
    models += [n for r in rows for n in r["scores"] if n not in models]
    for name in models:
        if any(name not in r["scores"] for r in rows):
            out[name] = None  # not run on every data set (MSTL: two seasonalities only)
            continue
        ratios = [
            a / b if a is not None and b else math.nan
            for r in rows for a, b in zip(r["scores"][name], r["scores"]["seasonal_naive"], strict=True)
        ]  # fmt: skip
        usable = [x for x in ratios if math.isfinite(x) and x > 0]
        out[name] = float(np.exp(np.mean(np.log(usable)))) if usable and len(usable) == len(ratios) else None
    return out
