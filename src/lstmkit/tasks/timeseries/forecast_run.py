"""``lstmkit forecast train`` as a function: fit on all the data, save the run directory, forecast the next horizon."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ... import runs
from ..._atomic import atomic_write_bytes
from .forecast_config import ForecastConfig
from .forecast_select import select_forecaster
from .seasonality import resolve_season
from .series import as_table, prepare_series

__all__ = ["train_run"]


def train_run(data: Any, config: ForecastConfig, out: str | os.PathLike[str], *, resume: bool = False) -> dict:
    """Choose the config's "auto" fields on validation and fit the winner on all of ``data``
    (:func:`~lstmkit.tasks.timeseries.forecast_select.select_forecaster`), save the run directory, and write the next
    horizon's forecast and its picture.

    The run directory gets ``config.json``, ``model.safetensors``, ``metrics.csv``, checkpoints, ``forecast.csv``
    and ``forecast.png`` (without future covariates; with them, ``lstmkit forecast predict`` takes the future rows),
    ``result.json`` (the summary returned, with the selection table) and ``report.html``.
    """
    from ...report import write_report
    from ...viz.plots import plot_forecast

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished forecaster; choose another --out or delete it.")
    data = as_table(data)
    config, season = resolve_season(config, data, prepare_series(data, config))  # warns on a contradicted season
    forecaster, selection = select_forecaster(data, config, run_dir=out, resume=resume)
    config = forecaster.config
    forecaster.save(out)
    summary: dict[str, Any] = {
        "run_dir": str(out), "target": config.target, "horizon": config.horizon, "window": forecaster.window,
        "epochs": len(forecaster.history_), "train_loss": forecaster.history_[-1]["train_loss"],
        "season": season, "selection": selection.record(),
    }  # fmt: skip
    if not config.future_covariates:
        pred = forecaster.predict(data)
        pred.to_csv(out / "forecast.csv", index=False)
        series = prepare_series(data, config)
        lo, hi = min(config.quantiles), max(config.quantiles)
        for s in series[:4]:  # one picture per series, for the first few
            rows = pred[pred[config.id] == s.key] if config.id else pred
            keep = max(4 * config.horizon, 3 * config.season)
            name = "forecast.png" if len(series) == 1 else f"forecast_{s.key}.png"
            plot_forecast(
                s.time[-keep:].to_numpy(), s.y[-keep:], rows["time"].to_numpy(), rows["q0.5"].to_numpy(), out / name,
                lower=rows[f"q{lo:g}"].to_numpy(), upper=rows[f"q{hi:g}"].to_numpy(),
                title=f"{config.target}{f' ({s.key})' if config.id else ''}: next {config.horizon} steps",
                interval_label=f"{lo:g}-{hi:g} quantiles",
            )  # fmt: skip
        summary["forecast"] = str(out / "forecast.csv")
    atomic_write_bytes(out / "result.json", (json.dumps(summary, indent=2) + "\n").encode())
    write_report(out)
    return summary
