"""``lstmkit anomaly train | score | evaluate``: LSTM anomaly detection on a bundled dataset or a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..tasks.timeseries.anomaly.config import AnomalyConfig
from . import app
from ._console import err, fail, print_json, print_result, setup_logging, user_message
from ._options import AsJson, CoreOptions, Out, Resume, Verbose, train_options

anomaly_app = typer.Typer(help="Detect anomalies with an LSTM trained on normal data.", no_args_is_help=True)
app.add_typer(anomaly_app, name="anomaly")
_CFG = AnomalyConfig()  # the defaults the help shows, declared once in the config

Data = Annotated[str | None, typer.Option("--data", help="A bundled anomaly dataset (lstmkit datasets list).")]
Csv = Annotated[Path | None, typer.Option("--csv", help="A CSV file: a time column, the values, optionally labels.")]
Time = Annotated[str | None, typer.Option("--time", help="The time column of the CSV (default: time).")]
Target = Annotated[str | None, typer.Option("--target", help="The column to watch.")]
ScoreTime = Annotated[
    str | None, typer.Option("--time", help="The time column, when not named as in training (default: the run's).")
]
ScoreTarget = Annotated[
    str | None, typer.Option("--target", help="The value column, when not named as in training (default: the run's).")
]
Label = Annotated[str | None, typer.Option("--label", help="A 0/1 column of labelled anomalies, for the metrics.")]
RunDir = Annotated[Path, typer.Argument(help="A run directory written by `lstmkit anomaly train`.")]


def _user_errors() -> tuple[type[Exception], ...]:
    """The mistakes a user can fix (bad input, a missing or finished run, nothing to resume), printed as one sentence;
    anything else is a bug and keeps its traceback."""
    from ..tasks.timeseries.anomaly.config import NotFittedError
    from ..train import CheckpointError, ResumeError

    return (
        ValueError, KeyError, FileNotFoundError, FileExistsError, ImportError, ResumeError, CheckpointError,
        NotFittedError,
    )  # fmt: skip


def _table(data: str | None, csv: Path | None, time: str | None, label: str | None) -> tuple[Any, dict[str, Any]]:
    """The table and the column roles: the dataset's, overridden by the options given."""
    from ..tasks.timeseries.series import dataset_or_csv

    table, roles = dataset_or_csv(data, csv, "anomaly")
    given = {"time": time, "label": label}
    return table, {**roles, **{k: v for k, v in given.items() if v is not None}}


def _fresh_dir(parent: Path, name: str) -> Path:
    """``parent/name``, or ``name-2``, ``name-3``, ... : the first that does not exist yet."""
    candidate, n = parent / name, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{name}-{n}"
    return candidate


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    err.print(f"{summary['flagged_points']} of {summary['steps']} steps flagged; scores in {summary['scores']}")
    if "metrics" in summary:
        m = summary["metrics"]
        err.print(
            f"found {m['found']} of {m['event']['events']} labelled anomalies, {m['false_alarm_events']} false-alarm "
            f"events, point F1 {m['point']['f1']:.3f}, NAB {m['nab']['normalized']:.1f}"
        )
    z = summary.get("baselines", {}).get("rolling_zscore")
    if z is not None:
        found = f"found {z['found']}, {z['false_alarm_events']} false-alarm events, " if "found" in z else ""
        err.print(f"rolling z-score (baseline): {found}{z['flagged_points']} steps flagged")


@anomaly_app.command("train")
@train_options(AnomalyConfig)
def train(
    out: Out,
    data: Data = None, csv: Csv = None, time: Time = None, target: Target = None, label: Label = None,
    method: Annotated[
        str | None, typer.Option("--method", help=f"prediction (LSTM-AD) or reconstruction (EncDec-AD). (default "
                                 f"{_CFG.method})")
    ] = None,
    window: Annotated[
        int | None, typer.Option("--window", help="Steps of context the LSTM reads (default: from the season: two "
                                 "periods for prediction, one for reconstruction, 32 to 256 steps; 32 without one).")
    ] = None,
    steps_ahead: Annotated[
        int | None, typer.Option("--steps-ahead", help="prediction: forecast steps per origin (default: an eighth of "
                                 "the season, 2 to 10; 5 without one).")
    ] = None,
    season: Annotated[
        int | None, typer.Option("--season", help="The main period in steps; 1: none (default: detected from the "
                                 "autocorrelation of the normal rows).")
    ] = None,
    false_alarm_rate: Annotated[
        float | None, typer.Option("--false-alarm-rate", help="Share of normal steps allowed above the threshold. "
                                   f"(default {_CFG.false_alarm_rate})")
    ] = None,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on the normal rows (a dataset's train split, else the whole CSV), score the test split (the rows before it
    read as context) beside a rolling z-score, write a report."""
    setup_logging(verbose)
    from ..tasks.timeseries.anomaly.run import train_run

    try:
        table, roles = _table(data, csv, time, label)
        if target is None and "target" not in roles:
            raise ValueError("Say which column to watch with --target (or use --data NAME for a bundled dataset).")
        given = {
            "method": method, "input_window": window, "steps_ahead": steps_ahead, "season": season,
            "false_alarm_rate": false_alarm_rate,
        }  # fmt: skip
        columns = {"target": target or roles["target"], "time": roles.get("time", "time")}
        cfg = core.build(
            AnomalyConfig, {**columns, "progress": not as_json, **{k: v for k, v in given.items() if v is not None}}
        )
        summary = train_run(table, cfg, out, label=roles.get("label"), resume=resume)
    except _user_errors() as e:
        fail(user_message(e))
    if not as_json:
        p = summary["period"]
        source = f"{p['season_source']}: {p['reason']}" if "reason" in p else p["season_source"]
        err.print(f"season {p['season']} ({source}); window {p['input_window']} ({p['input_window_source']})")
        _print_summary(summary, as_json=False)
        return
    metrics = {
        **summary.get("metrics", {}),
        "threshold": summary["threshold"],
        "flagged_points": summary["flagged_points"],
    }
    extra = {
        k: summary[k]
        for k in ("method", "steps", "context_steps", "period", "epochs", "train_loss", "scores")
        if k in summary
    }
    print_result("anomaly_detector", summary["run_dir"], metrics, summary["baselines"], **extra)


@anomaly_app.command("score")
def score(
    run_dir: RunDir, data: Data = None, csv: Csv = None, time: ScoreTime = None, target: ScoreTarget = None,
    label: Label = None,
    out: Annotated[Path | None, typer.Option("--out", help="The directory for scores.csv, anomaly.png and, with "
                                             "labels, result.json (default RUN_DIR/scored/NAME, NAME the CSV's or "
                                             "dataset's, numbered so an earlier scoring is kept).")] = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Score a series (a dataset's test split, the rows before it read as context; else the whole CSV): scores.csv,
    anomaly.png, metrics with labels."""
    from ..tasks.timeseries.anomaly.detector import AnomalyDetector
    from ..tasks.timeseries.anomaly.run import score_run

    try:
        det = AnomalyDetector.load(run_dir)
        table, roles = _table(data, csv, time, label)
        if out is None:  # never over the training run's own scores.csv, anomaly.png or result.json
            out = _fresh_dir(Path(run_dir) / "scored", Path(csv).stem if csv is not None else str(data))
        summary = score_run(det, table, out, roles.get("label"), target=target, time=roles.get("time"))
    except _user_errors() as e:
        fail(user_message(e))
    _print_summary(summary, as_json)


@anomaly_app.command("evaluate")
def evaluate(
    run_dir: RunDir, data: Data = None, csv: Csv = None, time: ScoreTime = None, target: ScoreTarget = None,
    label: Label = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Point and event precision / recall / F1, the NAB score and the false alarms on a labelled series."""
    from ..tasks.timeseries.anomaly.detector import AnomalyDetector
    from ..tasks.timeseries.anomaly.run import evaluate_table

    try:
        det = AnomalyDetector.load(run_dir)
        table, roles = _table(data, csv, time, label)
        if roles.get("label") is None:
            raise ValueError("evaluate compares flags with labels: name the 0/1 column with --label.")
        result = evaluate_table(det, table, roles["label"], target=target, time=roles.get("time"))
    except _user_errors() as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
    else:
        err.print({k: v for k, v in result.items() if k != "nab"} | {"nab": round(result["nab"]["normalized"], 2)})
