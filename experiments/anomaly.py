"""Anomaly bar of issue 20: with the library's defaults only, the labelled anomaly of every bundled labelled series is
the detector's top-scoring event; beside it a rolling z-score computed in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/anomaly.py            # 3 seeds x 4 setups, ~8 min on 1 core

Bundled labelled series: heart rate (UCR/KDD-2021 anomaly archive #135; aeon's Daphnet excerpt has no labelled
anomaly, so it is not one). 7,501 steps: the first 1,200 (``train``) are normal, the other 6,301 (``test``) hold one
labelled anomaly of 12 points. The detectors are fitted on the train steps only (``AnomalyDetector(target=...,
method=...)``, nothing else set: the period is detected from the train steps, the window and forecast steps follow
it, the threshold is the default false-alarm rate on held-out normal train steps), then score the test steps, reading
the train steps before them as context but never counting them. The labels are used for scoring only. For
comparison, the defaults before issue 20 (season 1: prediction window 5, reconstruction window 32) are run too.

Appends to ``experiments/results/anomaly.jsonl``, rewrites the table in ``docs/results/anomaly.md`` from this run
(keeping the doc's "## Notes") and draws ``docs/results/anomaly_<method>.png``.
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
from lstmkit.tasks.timeseries.anomaly.baselines import RollingZScore
from lstmkit.tasks.timeseries.anomaly.config import AnomalyConfig
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector
from lstmkit.tasks.timeseries.anomaly.metrics import detection_metrics
from lstmkit.viz.plots import plot_anomaly

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "anomaly.jsonl"
DOC = ROOT / "docs" / "results" / "anomaly.md"
PICTURES = ROOT / "docs" / "results"

RATE = AnomalyConfig().false_alarm_rate  # the default, for every detector
WINDOW = 32  # the z-score's window
SETUPS = {  # the defaults (method named), then the defaults before issue 20 (season 1)
    "LSTM-AD (prediction), defaults": dict(method="prediction"),
    "EncDec-AD (reconstruction), defaults": dict(method="reconstruction"),
    "LSTM-AD, before (season 1, window 5)": dict(method="prediction", season=1, input_window=5, steps_ahead=5),
    "EncDec-AD, before (season 1, window 32)": dict(method="reconstruction", season=1, input_window=32),
}
COMMON = dict(target="heart_rate")


def ranked_above(scores: np.ndarray, labels: np.ndarray) -> int:
    """False-alarm events at the lowest threshold that still finds the anomaly: runs of steps outside it that score at
    least its highest score. Threshold-free: how many false alarms stand between the detector and the anomaly."""
    peak = np.nanmax(scores[labels])
    flags = np.nan_to_num(scores, nan=-np.inf) >= peak
    return detection_metrics(labels, flags)["false_alarm_events"]


def summary(metrics: dict) -> dict:
    return {
        "found": metrics["found"], "false_alarm_events": metrics["false_alarm_events"],
        "false_alarm_points": metrics["false_alarm_points"], "flagged_points": metrics["flagged_points"],
        "point": metrics["point"], "event": metrics["event"], "nab": metrics["nab"]["normalized"],
    }  # fmt: skip


def run(seeds: list[int]) -> list[dict]:
    data = load_dataset("heartrate")
    train = data[data["split"] == "train"].reset_index(drop=True)
    test = data[data["split"] == "test"].reset_index(drop=True)
    labels = test["label"].to_numpy().astype(bool)
    assert not train["label"].any() and len(train) == 1200 and len(test) == 6301
    assert train["time"].max() < test["time"].min()  # the train steps come first: context for the test steps
    rows = []
    z = RollingZScore(window=WINDOW, false_alarm_rate=RATE).fit(train["heart_rate"].to_numpy())
    z_scores = z.score(test["heart_rate"].to_numpy(), context=train["heart_rate"].to_numpy())
    z_flags = np.nan_to_num(z_scores, nan=-np.inf) > z.threshold
    rows.append({"series": "heartrate", "detector": f"rolling z-score ({WINDOW} steps)", "rate": RATE, "seed": None,
                 "threshold": z.threshold, "seconds": 0.0, "period": {}, "ranked_above": ranked_above(z_scores, labels),
                 **summary(detection_metrics(labels, z_flags))})  # fmt: skip
    plot_anomaly(test["time"].to_numpy(), test["heart_rate"].to_numpy(), z_scores, z.threshold,
                 PICTURES / "anomaly_zscore.png", labels=labels,
                 title=f"heart rate: rolling z-score ({WINDOW} steps), false-alarm rate {RATE}")  # fmt: skip
    for name, setup in SETUPS.items():
        for seed in seeds:
            t0 = time.perf_counter()
            cfg = AnomalyConfig.from_dict(COMMON | setup).with_overrides({"train.seed": seed})
            det = AnomalyDetector(cfg).fit(train)
            seconds = round(time.perf_counter() - t0, 1)
            scores = det.score(test, context=train)
            period = det.period_  # the season, window (and forecast steps) used, and where each came from
            row = {"series": "heartrate", "detector": name, "rate": RATE, "seed": seed, "threshold": det.threshold,
                   "seconds": seconds, "epochs": len(det.history_), "period": period,
                   "ranked_above": ranked_above(scores, labels),
                   **summary(detection_metrics(labels, det.flags(scores)))}  # fmt: skip
            keys = ("detector", "seed", "found", "false_alarm_events", "ranked_above", "seconds")
            print(json.dumps({k: row[k] for k in keys} | {"period": period}), flush=True)
            rows.append(row)
            if seed == seeds[0] and "defaults" in name:
                plot_anomaly(
                    test["time"].to_numpy(), test["heart_rate"].to_numpy(), scores, det.threshold,
                    PICTURES / f"anomaly_{setup['method']}.png", labels=labels,
                    title=f"heart rate: {name}, seed {seed}, false-alarm rate {RATE}",
                )  # fmt: skip
    return rows


def write_doc(rows: list[dict], started: str, cpu: str) -> None:
    lines = [
        "# Anomaly detection: the defaults on the bundled labelled series, beside a rolling z-score",
        "",
        f"Measured {started} on {cpu} ({os.cpu_count()} cores, 1 torch thread), torch {torch.__version__}.",
        "",
        "```",
        "OMP_NUM_THREADS=1 .venv/bin/python experiments/anomaly.py",
        "```",
        "",
        "Heart rate (UCR/KDD-2021 anomaly archive #135, `lstmkit.datasets.load_dataset('heartrate')`), one series "
        "of 7,501 steps: every detector is fitted on the first 1,200 (the normal `train` split) only and scores "
        "the other 6,301 (`test`), which hold one labelled anomaly of 12 points (steps 4187-4198); the train steps"
        " are read as context before the first test step (`score(test, context=train)`) but never scored. It is the "
        "only bundled labelled series (aeon's Daphnet excerpt has no labelled anomaly). *defaults*: "
        "`AnomalyDetector(target='heart_rate', method=...)`, nothing else set: the season is detected from the train "
        "steps (autocorrelation), the window and forecast steps follow it, the threshold is the 1 - "
        f"{RATE} quantile of the scores on held-out normal train steps (the second half of the last 30 %). "
        "*before*: the defaults before issue 20 (season 1). The z-score's threshold is the same quantile on the "
        "train steps. The test labels are used for scoring only.",
        "",
        "*ranked above* (the bar): threshold-free, the false-alarm events at the lowest threshold that still finds "
        "the anomaly (steps scoring at least the anomaly's highest score); 0: the anomaly is the top-scoring event. "
        "*found*: the anomaly has a flagged step at the default threshold; *false-alarm events*: runs of flagged "
        "steps touching no labelled step. NAB: normalised, standard profile. *fit s*: fitting seconds, 1 thread.",
        "",
        "| detector | seed | season (source) | window | steps ahead | fit s | ranked above | found "
        "| false-alarm events | NAB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["period"]
        season = f"{p['season']} ({p['season_source']})" if p else "–"
        lines.append(
            f"| {r['detector']} | {'–' if r['seed'] is None else r['seed']} | {season} | "
            f"{p.get('input_window', WINDOW)} | {p.get('steps_ahead', '–')} | {r['seconds']} | {r['ranked_above']} | "
            f"{'yes' if r['found'] else 'no'} | {r['false_alarm_events']} | {r['nab']:.1f} |"
        )
    lines += ["", "**The bar** (the anomaly the top-scoring event, defaults only):", ""]
    for name in SETUPS:
        part = [r for r in rows if r["detector"] == name]
        top = sum(r["ranked_above"] == 0 for r in part)
        ranks = "/".join(str(r["ranked_above"]) for r in part)
        lines.append(f"- {name}: top-scoring event at {top} of {len(part)} seeds (ranked above: {ranks}).")
    lines += ["", "Pictures (first seed, defaults): " + ", ".join(
        f"`docs/results/anomaly_{m}.png`" for m in ("prediction", "reconstruction", "zscore"))]  # fmt: skip
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    rows = run(args.seeds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        for row in rows:
            f.write(json.dumps({**row, "measured": started, "cpu": cpu}) + "\n")
    write_doc(rows, started, cpu)


if __name__ == "__main__":
    main()
