"""The HTML run report: one static page per run directory, to see what a run did.

``write_report(run_dir)`` reads what a run directory already holds and writes ``run_dir/report.html`` next to it:

- the run's kind and resolved config (``config.json``), and its result (``result.json``) when there is one;
- charts drawn with matplotlib into ``run_dir/report/``: loss (train and validation) per epoch, every other validation
  metric, the learning rate (per step from ``steps.csv`` when it exists, else per epoch), the gradient norm (mean and
  max per epoch; per step too when logged) and the throughput (items/s per epoch), all read from ``metrics.csv``;
- every other ``*.png`` in the run directory and its subdirectories (the task's own pictures, such as
  ``gradient_flow.png`` and ``gates.png``), linked and shown.

The page is self-contained: inline CSS, no scripts, no external resources, images by relative path, so the directory
can be copied or served anywhere. Every string read from the run's files is HTML-escaped. The page and the charts are
written atomically (temporary file, then ``os.replace``), so it is safe to re-run while training is still appending to
``metrics.csv``: a missing or empty ``metrics.csv`` gives a "no metrics yet" section, not an error.

Example:
    >>> import json, tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (run / "config.json").write_text(json.dumps({"kind": "demo", "config": {"lr": 0.01}}))
    >>> rows = "epoch,step,train_loss,val_loss,lr\\n1,10,0.9,1.0,0.01\\n2,20,0.5,0.7,0.01\\n"
    >>> _ = (run / "metrics.csv").write_text(rows)
    >>> write_report(run).name
    'report.html'
    >>> sorted(p.name for p in (run / "report").iterdir())
    ['learning_rate.png', 'loss.png']
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstmkit._atomic import atomic_write_bytes
from lstmkit.runs import CONFIG_FILE, read_run_config

__all__ = ["REPORT_DIR", "REPORT_FILE", "write_report"]

REPORT_FILE = "report.html"
REPORT_DIR = "report"  # the report's own charts; never listed among the task's pictures
_DPI = 100

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; } .note { color: #666; font-style: italic; }
"""


# ---------------------------------------------------------------------------------------------------- reading files


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, float]]]:
    """Columns and rows of a metrics CSV, every cell as a float (empty or unreadable -> NaN).

    A missing or empty file gives ``([], [])``. A last line cut short by a writer that is still running is kept with
    NaN in its missing cells, so the report can be drawn while training appends rows.
    """
    if not path.is_file():
        return [], []
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        rows = []
        for cells in reader:
            if not cells:
                continue
            row = {}
            for i, name in enumerate(header):
                try:
                    row[name] = float(cells[i])
                except (IndexError, ValueError):
                    row[name] = math.nan
            rows.append(row)
    return header, rows


def _read_result(run_dir: Path) -> dict[str, Any] | None:
    """``result.json`` (written by some run kinds, e.g. ``long_lag``) when it is a readable JSON object, else None."""
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]``, in the file's order."""
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items.extend(_flatten(value, name + "."))
        else:
            items.append((name, value))
    return items


def _task_pictures(run_dir: Path) -> list[Path]:
    """Every ``*.png`` under ``run_dir`` but the report's own charts, sorted by path relative to ``run_dir``."""
    found = [p for p in run_dir.rglob("*.png") if p.is_file() and not p.name.startswith(".")]
    own = run_dir / REPORT_DIR
    return sorted((p for p in found if own not in p.parents), key=lambda p: p.relative_to(run_dir).as_posix())


# ---------------------------------------------------------------------------------------------------------- charts


def _column(rows: Sequence[Mapping[str, float]], key: str) -> list[float]:
    return [row.get(key, math.nan) for row in rows]


def _has_values(values: Sequence[float]) -> bool:
    return any(math.isfinite(v) for v in values)


def _chart(
    path: Path,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str,
) -> bool:
    """Draw one line per entry of ``series`` against ``x`` into ``path``; False (nothing written) if all are NaN.

    The y axis is logarithmic when every value is positive and they span more than two decades (losses often do).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib costs ~0.3 s to import
    from matplotlib.figure import Figure

    drawn = {label: ys for label, ys in series.items() if _has_values(ys)}
    if not drawn:
        return False
    fig = Figure(figsize=(6.0, 3.6))
    FigureCanvasAgg(fig)  # off-screen, whatever pyplot's backend is
    ax = fig.subplots()
    finite = [v for ys in drawn.values() for v in ys if math.isfinite(v)]
    for label, ys in drawn.items():
        points = [(a, b) for a, b in zip(x, ys, strict=True) if math.isfinite(a) and math.isfinite(b)]
        xs, vs = zip(*points, strict=True)
        ax.plot(xs, vs, marker="." if len(points) <= 60 else None, label=label)
    if min(finite) > 0 and max(finite) / min(finite) > 100:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return True


def _safe_name(name: str) -> str:
    """A metric name as a file name: letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "metric"


def _draw_charts(
    out: Path,
    header: Sequence[str],
    epochs: Sequence[Mapping[str, float]],
    steps_header: Sequence[str],
    steps: Sequence[Mapping[str, float]],
) -> list[tuple[str, str]]:
    """Draw every chart the metrics allow into ``out``. Returns ``(file name, caption)`` pairs, in page order."""
    charts: list[tuple[str, str]] = []
    epoch_x = _column(epochs, "epoch") if "epoch" in header else [float(i + 1) for i in range(len(epochs))]
    step_x = _column(steps, "step") if "step" in steps_header else [float(i + 1) for i in range(len(steps))]

    def add(name: str, caption: str, *args: Any) -> None:
        if _chart(out / name, *args):
            charts.append((name, caption))

    # loss: train and validation per epoch, and the per-step training loss when steps.csv has it
    losses = {k: _column(epochs, k) for k in ("train_loss", "val_loss") if k in header}
    add("loss.png", "Loss per epoch (train and validation)", epoch_x, losses, "epoch", "loss", "Loss")
    if "loss" in steps_header:
        add("loss_steps.png", "Training loss per step", step_x, {"loss": _column(steps, "loss")}, "step", "loss",
            "Training loss per step")  # fmt: skip
    # every other validation metric, with its training counterpart when there is one
    for key in header:
        if not key.startswith("val_") or key == "val_loss":
            continue
        metric = key[len("val_") :]
        series = {f"train_{metric}": _column(epochs, f"train_{metric}")} if f"train_{metric}" in header else {}
        series[key] = _column(epochs, key)
        add(f"metric_{_safe_name(metric)}.png", f"{metric} per epoch", epoch_x, series, "epoch", metric, metric)
    # learning rate: per step when logged (it changes within an epoch under warm-up and cosine), else per epoch
    if "lr" in steps_header and _has_values(_column(steps, "lr")):
        add("learning_rate.png", "Learning rate per step", step_x, {"lr": _column(steps, "lr")}, "step", "lr",
            "Learning rate")  # fmt: skip
    elif "lr" in header:
        add("learning_rate.png", "Learning rate per epoch (last value of each epoch)", epoch_x,
            {"lr": _column(epochs, "lr")}, "epoch", "lr", "Learning rate")  # fmt: skip
    # gradient norm (global, before clipping): mean and max per epoch, and every logged step
    norms = {k: _column(epochs, k) for k in ("grad_norm", "grad_norm_max") if k in header}
    add("grad_norm.png", "Gradient norm per epoch (mean and max, before clipping)", epoch_x,
        {"mean" if k == "grad_norm" else "max": v for k, v in norms.items()}, "epoch", "global gradient norm",
        "Gradient norm")  # fmt: skip
    if "grad_norm" in steps_header:
        add("grad_norm_steps.png", "Gradient norm per step (before clipping)", step_x,
            {"grad_norm": _column(steps, "grad_norm")}, "step", "global gradient norm",
            "Gradient norm per step")  # fmt: skip
    # throughput
    if "items_per_sec" in header:
        add("throughput.png", "Training throughput per epoch", epoch_x,
            {"items/s": _column(epochs, "items_per_sec")}, "epoch", "items per second", "Throughput")  # fmt: skip
    return charts


# ------------------------------------------------------------------------------------------------------------ html


def _e(value: Any) -> str:
    """Any value as escaped HTML text; non-strings as JSON (so ``None`` reads ``null`` and lists keep brackets)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return html.escape(text, quote=True)


def _number(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.5g}"


def _url(path: str) -> str:
    """A relative path as an escaped URL: ``sub dir/a#1.png`` -> ``sub%20dir/a%231.png``."""
    return html.escape(urllib.parse.quote(path), quote=True)


def _table(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _figure(src: str, caption: str) -> str:
    return (
        f'<figure><a href="{_url(src)}"><img src="{_url(src)}" alt="{_e(caption)}"></a>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _page(
    run_dir: Path,
    run_config: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    header: Sequence[str],
    epochs: Sequence[Mapping[str, float]],
    charts: Sequence[tuple[str, str]],
    pictures: Sequence[Path],
) -> str:
    kind = str(run_config["kind"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(kind)} run: {_e(run_dir.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(kind)} run: {_e(run_dir.name)}</h1>",
        f'<p class="note">Run saved by lstmkit {_e(run_config.get("lstmkit_version", "unknown"))}; report written '
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
    ]
    if result:
        parts += ["<h2>Result</h2>", _table(_flatten(result))]
    parts.append("<h2>Metrics</h2>")
    if not epochs:
        parts.append(
            '<p class="note">No metrics yet: metrics.csv is missing or has no rows. The Trainer appends one row per '
            "epoch; write this report again once an epoch has finished.</p>"
        )
    else:
        last = epochs[-1]
        cells = "".join(f'<td class="num">{_e(_number(last[k]))}</td>' for k in header)
        heads = "".join(f"<th>{_e(k)}</th>" for k in header)
        parts.append(f"<p>{len(epochs)} epoch row(s) in metrics.csv; the last:</p>")
        parts.append(f"<table><tr>{heads}</tr><tr>{cells}</tr></table>")
        if not charts:
            parts.append('<p class="note">metrics.csv has no column with a finite value to chart.</p>')
    parts += [_figure(f"{REPORT_DIR}/{name}", caption) for name, caption in charts]
    parts.append("<h2>Pictures</h2>")
    if pictures:
        parts += [_figure(p.relative_to(run_dir).as_posix(), p.relative_to(run_dir).as_posix()) for p in pictures]
    else:
        parts.append('<p class="note">This run directory holds no pictures (*.png) of its own.</p>')
    parts += ["<h2>Config</h2>", _table(_flatten(run_config["config"])), "</body></html>", ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------------ public API


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``run_dir/report.html`` (and its charts in ``run_dir/report/``) from what the run directory holds.

    Args:
        run_dir: a run directory: ``config.json``, and usually ``metrics.csv``, ``steps.csv`` and pictures (``*.png``).

    Returns:
        The path of ``report.html``.

    Raises:
        FileNotFoundError: if ``run_dir`` is not a directory or has no ``config.json``; when its subdirectories hold
            runs (``lstmkit demo`` writes ``lstm/`` and ``rnn/``), the message names them.
        ValueError: if ``config.json`` is not a valid run config (see :func:`lstmkit.runs.read_run_config`).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"No run directory at {run_dir}: a report is written from a run directory (config.json, metrics.csv, "
            "pictures). Pass the --out directory of a run."
        )
    if not (run_dir / CONFIG_FILE).is_file():
        runs = sorted(p.parent.relative_to(run_dir).as_posix() for p in run_dir.glob(f"*/{CONFIG_FILE}"))
        hint = (
            f"It holds runs in {', '.join(runs)}: pass one of those directories."
            if runs
            else "Pass the directory a run wrote (the --out of lstmkit experiment, say)."
        )
        raise FileNotFoundError(
            f"{run_dir} has no {CONFIG_FILE}, so it is not a run directory (or the run has not saved yet); the report "
            f"needs it for the run's kind and config. {hint}"
        )
    run_config = read_run_config(run_dir)
    header, epochs = _read_csv(run_dir / "metrics.csv")
    steps_header, steps = _read_csv(run_dir / "steps.csv")
    out = run_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    charts = _draw_charts(out, header, epochs, steps_header, steps)  # per-step charts even before the first epoch ends
    page = _page(run_dir, run_config, _read_result(run_dir), header, epochs, charts, _task_pictures(run_dir))
    path = run_dir / REPORT_FILE
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
