"""Forecasting bars of issue 3: the LSTM forecaster against seasonal-naive and ETS on the same splits.

    .venv/bin/python experiments/forecasting.py                  # every setup below, ~20 min on 2 cores
    .venv/bin/python experiments/forecasting.py --only visnights  # one setup; the table keeps the others' last rows

- airline: monthly passengers, the last 24 months held out (one origin), log transform, season 12; the direct model
  with the default (forecast the residual to seasonal-naive) and without it, and the recurrent (autoregressive) one;
- electricity: half-hourly Victorian demand 2014, the last week (336 half-hours) held out, season 48, temperature as
  a past covariate and the working-day flag as a future covariate; a weekly seasonal-naive (season 336) beside the
  daily one;
- visnights: quarterly visitor nights in 20 Australian regions, one model for all of them, the last 8 quarters held
  out, with and without the static covariates (state, zone), library defaults otherwise.

Appends to ``experiments/results/forecasting.jsonl`` and rewrites the table in ``docs/results/forecasting.md`` from
the latest run of each setup in that file (keeping the doc's "## Notes").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_keeping_notes

from lstmkit.datasets import load_dataset
from lstmkit.tasks.timeseries import baselines as B
from lstmkit.tasks.timeseries import metrics as M
from lstmkit.tasks.timeseries.backtest import backtest
from lstmkit.tasks.timeseries.forecasting import ForecastConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "forecasting.jsonl"
DOC = ROOT / "docs" / "results" / "forecasting.md"

SETUPS = {
    "airline": dict(
        seeds=(0, 1, 2, 3, 4),
        config=dict(target="passengers", horizon=24, season=12, transform="log"),
        note="last 24 months held out",
    ),
    "airline (no residual)": dict(
        seeds=(0, 1, 2, 3, 4),
        config=dict(target="passengers", horizon=24, season=12, transform="log", residual_to="none"),
        note="last 24 months held out",
        dataset="airline",
    ),
    "airline (recurrent)": dict(
        seeds=(0, 1, 2, 3, 4),
        config=dict(target="passengers", horizon=24, season=12, transform="log", strategy="recurrent"),
        note="last 24 months held out",
        dataset="airline",
    ),
    "electricity": dict(
        seeds=(0, 1, 2),
        config=dict(
            target="demand", horizon=336, season=48, input_window=192, past_covariates=("temperature",),
            future_covariates=("workday",), epochs=20, batch_size=64, hidden_size=64,
        ),
        note="last week (336 half-hours) held out",
        weekly_naive=336,
        ensemble=True,
    ),
    "visnights": dict(
        seeds=(0, 1, 2),
        config=dict(target="nights", id="region", horizon=8, season=4, static_covariates=("state", "zone")),
        note="last 8 quarters of 20 series held out",
    ),
    "visnights (no statics)": dict(
        seeds=(0, 1, 2),
        config=dict(target="nights", id="region", horizon=8, season=4),
        note="last 8 quarters of 20 series held out",
        dataset="visnights",
    ),
}  # fmt: skip


def ensemble_name(name: str) -> str:
    return f"{name} (mean of the seeds' forecasts)"


def weekly_naive(data, cfg: ForecastConfig, period: int) -> dict[str, float]:
    """Seasonal-naive with a longer period on the same held-out tail (MASE still scaled by the main season)."""
    y = data[cfg.target].to_numpy(dtype=float)
    history, actual = y[: -cfg.horizon], y[-cfg.horizon :]
    return M.summarize(actual, B.seasonal_naive(history, cfg.horizon, period), history, cfg.season)


def run(name: str) -> list[dict]:
    setup = SETUPS[name]
    data = load_dataset(setup.get("dataset", name))
    rows, medians = [], []
    for seed in setup["seeds"]:
        cfg = ForecastConfig.from_dict({**setup["config"], "seed": seed})
        t0 = time.perf_counter()
        result = backtest(data, cfg, folds=1, keep_forecasts=True)
        medians.append(result["folds"][0]["forecast"]["q0.5"].to_numpy())
        row = {
            "dataset": name, "seed": seed, "holdout": setup["note"], "config": cfg.to_dict(),
            "seconds": round(time.perf_counter() - t0, 1), **{k: v for k, v in result["mean"].items()},
        }  # fmt: skip
        if "weekly_naive" in setup:
            row["seasonal_naive_weekly"] = weekly_naive(data, cfg, setup["weekly_naive"])
        print(json.dumps({k: row[k] for k in ("dataset", "seed", "seconds")} | {"mase": row["model"]["mase"]}))
        rows.append(row)
    if setup.get("ensemble"):  # the seeds' median forecasts averaged: one more model at no extra training
        y = data[cfg.target].to_numpy(dtype=float)
        history, actual = y[: -cfg.horizon], y[-cfg.horizon :]
        baselines = ("seasonal_naive", "seasonal_naive_weekly", "ets", "auto_ets", "auto_theta")  # in the seeds' rows
        ensemble = {k: v for k, v in rows[-1].items() if k not in baselines}
        ensemble |= {"dataset": ensemble_name(name), "seed": "all"}
        ensemble["model"] = M.summarize(actual, np.mean(medians, axis=0), history, cfg.season)
        print(json.dumps({"dataset": ensemble["dataset"], "mase": ensemble["model"]["mase"]}))
        rows.append(ensemble)
    return rows


def latest_rows() -> tuple[list[dict], str]:
    """The rows of the latest run of each setup in the results file, in the order of SETUPS, and when it ran."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    names = [n for name in SETUPS for n in ([name, ensemble_name(name)] if SETUPS[name].get("ensemble") else [name])]
    latest = {name: max((r["measured"] for r in rows if r["dataset"] == name), default=None) for name in names}
    keep = [r for name in names for r in rows if r["dataset"] == name and r["measured"] == latest[name]]
    return keep, ", ".join(sorted({r["measured"] for r in keep}))


def write_doc(rows: list[dict], started: str) -> None:
    lines = [
        "# Forecasting: the LSTM against seasonal-naive and ETS",
        "",
        f"Measured {started} on {platform.machine()} ({os.cpu_count()} cores), torch {torch.__version__}.",
        "",
        "```",
        ".venv/bin/python experiments/forecasting.py",
        "```",
        "",
        "One origin per dataset (the held-out tail), the LSTM refitted per seed; seasonal-naive and ETS "
        "(statsmodels Holt-Winters, additive trend and season) computed on the same split in the same run. "
        "MASE is scaled by the in-sample seasonal-naive error; coverage is that of the 10-90 % interval.",
        "",
        "| dataset | held out | model | MASE | sMAPE % | MAE | RMSE | 80 % interval coverage |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        part = [r for r in rows if r["dataset"] == name]
        mase = [r["model"]["mase"] for r in part]
        spread = f" ({min(mase):.2f}–{max(mase):.2f} over {len(part)} seeds)" if len(part) > 1 else ""

        def med(key: str, part: list[dict] = part) -> float:
            return float(np.median([r["model"][key] for r in part]))

        label = "LSTM (median of seeds)" if len(part) > 1 else "LSTM"
        coverage = f"{med('coverage'):.2f}" if "coverage" in part[0]["model"] else "–"
        lines.append(
            f"| {name} | {part[0]['holdout']} | {label} | {med('mase'):.3f}{spread} | "
            f"{med('smape'):.2f} | {med('mae'):.2f} | {med('rmse'):.2f} | {coverage} |"
        )
        baselines = (("seasonal_naive", "seasonal-naive"), ("seasonal_naive_weekly", "seasonal-naive, weekly"),
                     ("ets", "ETS (statsmodels)"), ("auto_ets", "AutoETS (statsforecast)"),
                     ("auto_theta", "AutoTheta (statsforecast)"))  # fmt: skip
        for base, label in baselines:
            if base not in part[0]:
                continue
            b = part[0][base]
            lines.append(
                f"| {name} | | {label} | {b['mase']:.3f} | {b['smape']:.2f} | {b['mae']:.2f} | {b['rmse']:.2f} | – |"
            )
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SETUPS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when the machine is busy)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for name in [args.only] if args.only else list(SETUPS):
        rows += run(name)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        for row in rows:
            f.write(json.dumps({**row, "measured": started}) + "\n")
    write_doc(*latest_rows())


if __name__ == "__main__":
    main()
