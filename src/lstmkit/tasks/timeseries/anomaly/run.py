"""Anomaly runs for the command line: train on a table's normal rows and score its test rows into a run directory
(``train_run``), score or evaluate a saved detector on another table (``score_run``, ``evaluate_table``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .... import runs
from ...._atomic import atomic_write_bytes
from ....data.tables import shown, shown_list
from .baselines import RollingZScore
from .config import KIND, AnomalyConfig
from .data import in_time_order, series_values, step_labels
from .detector import AnomalyDetector
from .metrics import detection_metrics
from .period import derived_steps_ahead

__all__ = ["evaluate_table", "score_run", "train_run"]


def _split(table: Any, part: str) -> Any:
    """The rows of a table's ``split`` column equal to ``part`` when it has one and any such rows; else the table."""
    if "split" in table.columns and (table["split"] == part).any():
        return table[table["split"] == part].reset_index(drop=True)
    return table


def _split_mask(table: Any, part: str) -> np.ndarray:
    """(rows,) True for the rows that :func:`_split` returns."""
    if "split" in table.columns and (table["split"] == part).any():
        return (table["split"] == part).to_numpy()
    return np.ones(len(table), dtype=bool)


def _check_columns(table: Any, names: list[str | None]) -> None:
    missing = [c for c in names if c is not None and c not in table.columns]
    if missing:
        raise ValueError(
            f"Unknown column(s) {shown_list(missing)}; the table has {shown_list(table.columns)}. Check the column "
            "names."
        )


def _check_season(config: AnomalyConfig, normal: int) -> None:
    """The normal rows that train the model (those before the held-out tail) hold two seasons and one more point
    before the forecast steps (prediction), or two seasons plus the few extra points a window needs (reconstruction).

    Raises:
        ValueError: naming the number of normal rows and the largest season they support.
    """
    if config.season is None:  # detected at fit, among the periods the data support
        return
    fit = normal - int(normal * config.validation_fraction)

    def room(season: int) -> int:  # the points before the forecast steps (derived from the season when not given)
        return fit - ((config.steps_ahead or derived_steps_ahead(season)) if config.method == "prediction" else 6)

    largest = max([s for s in range(1, fit // 2 + 1) if 2 * s + 1 <= room(s)], default=1)
    if config.season > 1 and config.season > largest:
        raise ValueError(
            f"The season ({config.season} steps, --season) is longer than the series can support: {normal} normal "
            f"rows, of which {fit} train the model, hold two seasons of at most {largest} steps. Give a season of at "
            f"most {largest} (1: none), or more normal data."
        )


def _write_json(path: Path, document: Any) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2, allow_nan=True) + "\n").encode())


@dataclass
class _Scored:
    """The scored rows of a table, in time order."""

    time: np.ndarray
    values: np.ndarray
    scores: np.ndarray
    flags: np.ndarray
    labels: np.ndarray | None
    context: int  # rows read before the first scored one


def _score_table(det: Any, table: Any, target: str, time: str, label: str | None) -> _Scored:
    """Score the ``test`` rows of a table (every row without a ``split`` column): the whole table is read as one
    series in ``time`` order, so the first test steps get the windows (and forecasts) that reach back into the rows
    before them; only the test rows' scores are kept. ``det``: an AnomalyDetector or a RollingZScore."""
    table = in_time_order(table, time)
    _check_columns(table, [target, label])
    keep = _split_mask(table, "test")
    labels = None
    if label is not None:
        labels = step_labels(table[label].to_numpy()[keep], int(keep.sum()), f"label column {shown(label)}")
    values = series_values(table, target, time)
    scores = det.score(values)[keep]  # the whole series: every row is context for the ones after it
    times = table[time].to_numpy() if time in table.columns else np.arange(len(table))
    return _Scored(times[keep], values[keep], scores, det.flags(scores), labels, int(np.argmax(keep)))


def _write_scores(det: AnomalyDetector, scored: _Scored, target: str, time: str, out: Path) -> dict[str, Any]:
    """``scores.csv``, ``anomaly.png`` and ``result.json`` (the detection metrics with labels, else the counts) in
    ``out``; returns the summary."""
    import pandas as pd

    from ....viz.plots import plot_anomaly

    cfg = det.config
    frame = pd.DataFrame(
        {time: scored.time, target: scored.values, "score": scored.scores, "flag": scored.flags.astype(int)}
    )
    if scored.labels is not None:
        frame["label"] = scored.labels.astype(int)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "scores.csv", frame.to_csv(index=False).encode())
    plot_anomaly(
        scored.time, scored.values, scored.scores, det.threshold, out / "anomaly.png", flags=scored.flags,
        labels=scored.labels, title=f"{target}: {cfg.method} scores ({len(scored.scores)} steps)",
    )  # fmt: skip
    summary: dict[str, Any] = {
        "run_dir": str(out), "method": cfg.method, "steps": len(scored.scores), "context_steps": scored.context,
        "threshold": det.threshold, "flagged_points": int(scored.flags.sum()), "scores": str(out / "scores.csv"),
    }  # fmt: skip
    if scored.labels is not None:
        summary["metrics"] = {**detection_metrics(scored.labels, scored.flags), "threshold": det.threshold}
        _write_json(out / "result.json", summary["metrics"])
    else:  # what there is to say without labels
        _write_json(out / "result.json", {k: summary[k] for k in ("method", "steps", "context_steps", "threshold",
                                                                  "flagged_points")})  # fmt: skip
    return summary


def score_run(
    det: AnomalyDetector, table: Any, out: str | os.PathLike[str], label: str | None = None, *,
    target: str | None = None, time: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Score ``table``'s ``test`` rows (every row without a ``split`` column), the rows before them read as context;
    write ``scores.csv``, ``anomaly.png`` and, with labels, ``result.json`` (the detection metrics) in ``out``, which
    must not be a run directory (its own files from training would be overwritten: FileExistsError).

    Args:
        target, time: the table's value and time columns when they are not named as in training.

    Returns:
        A summary: ``steps`` scored, ``context_steps`` read before the first, threshold, flags, metrics.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a directory; give --out a directory for the scores.")
    if (out / runs.CONFIG_FILE).exists():
        raise FileExistsError(
            f"{out} is a run directory: its scores.csv, anomaly.png and result.json come from its training and would "
            "be overwritten. Write the scores to another directory (--out)."
        )
    target, time = target or det.config.target, time or det.config.time
    return _write_scores(det, _score_table(det, table, target, time, label), target, time, out)


def evaluate_table(
    det: AnomalyDetector, table: Any, label: str, *, target: str | None = None, time: str | None = None
) -> dict[str, Any]:
    """The detection metrics (:func:`detection_metrics` plus the threshold) on ``table``'s ``test`` rows, scored as
    in :func:`score_run`; ``label`` names the 0/1 column."""
    target, time = target or det.config.target, time or det.config.time
    scored = _score_table(det, table, target, time, label)
    assert scored.labels is not None
    return {**detection_metrics(scored.labels, scored.flags), "threshold": det.threshold}


def train_run(
    table: Any, config: AnomalyConfig, out: str | os.PathLike[str], label: str | None = None, *, resume: bool = False
) -> dict[str, Any]:
    """Fit on the table's normal rows (its ``train`` split when it has a ``split`` column, else every row), save the
    detector, then score the ``test`` rows (or every row) with the rows before them as context and write the scores
    and the report.

    The run directory gets ``config.json`` (status "training" until the detector is saved), ``metrics.csv`` (the
    training curve) and checkpoints while training, then ``model.safetensors`` and the finished ``config.json``, then
    ``scores.csv``, ``anomaly.png``, ``result.json`` and ``report.html``. A run that stops while training continues
    with ``resume``; one that fails while scoring keeps its saved detector (``lstmkit anomaly score`` scores again).

    Args:
        resume: continue an interrupted training in ``out`` from its newest checkpoint.

    Raises:
        FileExistsError: ``out`` holds a finished run; ValueError: bad columns or times, labelled anomalies in the
        training rows; ``lstmkit.train.ResumeError``: nothing to resume, or a checkpoint of another config.
    """
    from ....report import write_report

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished detector; choose another --out or delete it.")
    # Everything that scoring reads is checked before training, so a mistake costs no training time.
    table = in_time_order(table, config.time)
    _check_columns(table, [config.target, label])
    series_values(table, config.target, config.time)
    train = _split(table, "train")
    _check_season(config, len(train))
    if label is not None:
        y = step_labels(table[label].to_numpy(), len(table), f"label column {shown(label)}")
        in_train = int(y[_split_mask(table, "train")].sum())
        if in_train:
            raise ValueError(
                f"The training rows hold {in_train} labelled anomalies; the detector learns from normal data only. "
                "Add a 'split' column with normal 'train' rows, or drop the anomalous rows."
            )
    det = AnomalyDetector(config)
    fit_dir = out / "forecaster" if config.method == "prediction" else out
    if fit_dir != out:  # the forecaster's Trainer starts its own run in fit_dir; the detector's starts here
        runs.start_run(out, KIND, {"anomaly": config.to_dict()})
    det.fit(train, run_dir=fit_dir, resume=resume)
    if config.method == "prediction" and (fit_dir / "metrics.csv").is_file():  # the training curve at the top
        atomic_write_bytes(out / "metrics.csv", (fit_dir / "metrics.csv").read_bytes())
    det.save(out, overwrite=resume)  # the detector first: a failure while scoring loses nothing
    try:
        scored = _score_table(det, table, config.target, config.time, label)
        summary = _write_scores(det, scored, config.target, config.time, out)
    except ValueError as e:
        raise ValueError(
            f"{e} The trained detector is saved in {out}; score the data again with `lstmkit anomaly score {out}`."
        ) from e
    summary["period"] = det.period_
    summary["epochs"] = len(det.history_)
    if det.history_:
        summary["train_loss"] = det.history_[-1]["train_loss"]
    summary["baselines"] = _baselines(det, train, table, label)
    _write_json(
        out / "result.json",
        {**json.loads((out / "result.json").read_text()), "period": det.period_, "baselines": summary["baselines"]},
    )
    write_report(out)
    return summary


def _baselines(det: AnomalyDetector, train: Any, table: Any, label: str | None) -> dict[str, Any]:
    """The rolling z-score over the detector's context window, thresholded at the same false-alarm rate on the same
    normal rows and scored on the same rows: ``{"rolling_zscore": {threshold, flagged_points, and with labels the
    detection metrics}}``; empty when the normal rows are too short for its window."""
    cfg = det.config
    window = cfg.window if cfg.method == "reconstruction" else det.forecaster.window
    try:
        z = RollingZScore(max(window, 2), cfg.false_alarm_rate, target=cfg.target, time=cfg.time).fit(train)
        scored = _score_table(z, table, cfg.target, cfg.time, label)
    except ValueError:
        return {}
    metrics: dict[str, Any] = {"threshold": z.threshold, "flagged_points": int(scored.flags.sum())}
    if scored.labels is not None:
        metrics = {**detection_metrics(scored.labels, scored.flags), **metrics}
    return {"rolling_zscore": metrics}
