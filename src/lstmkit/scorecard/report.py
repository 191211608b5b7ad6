"""The scorecard page: one section per task, rewritten in place (the other tasks' sections are kept), with the command,
the machine and the versions each section was measured with."""

from __future__ import annotations

import math
import re
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine", "section", "write"]

TITLE = "# Scorecard: lstmkit's defaults against the peers, same run"
INTRO = """\
Written by `lstmkit benchmark TASK` (one section per task, rewritten by its own run). Each row is the library's
**defaults** (no per-data-set settings) on a bundled data set, with the peers fitted in the same process on the same
split; the test part of each data set is read once, by the finished models. Fit seconds are wall-clock on the machine
named in the section. Per-run detail: `experiments/results/scorecard.jsonl`.
"""


def machine() -> str:
    """CPU model, cores and the versions that decide the numbers."""
    import os

    from .._machine import cpu_model

    cpu = cpu_model()

    versions = []
    for pkg in ("lstmkit", "torch", "statsforecast", "aeon", "neuralforecast", "darts"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue
    return f"{cpu}, {os.cpu_count()} cores; {', '.join(versions)}"


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def section(task: str, command: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The markdown of one task's section."""
    head = [f"## {task}", "", f"`{command}` — {date.today().isoformat()}, {machine()}", ""]
    models = list(summary)
    if task == "forecasting":
        head += ["MASE on the held-out last horizon (mean over a data set's series; scaled by the seasonal-naive "
                 "in-sample error), and fit seconds; the last row is the geometric mean over every series of MASE "
                 "relative to seasonal-naive (below 1: better).", ""]  # fmt: skip
        table = ["| data set (h, season) | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for r in rows:
            cells = []
            for m in models:
                values = r["scores"].get(m)
                mean = None if values is None else _mean(values)
                secs = r["seconds"].get(m)
                cells.append(_fmt(mean) + (f" ({secs:.0f} s)" if mean is not None and secs is not None else ""))
            table.append(f"| {r['dataset']} ({r['horizon']}, {r['season']}) | " + " | ".join(cells) + " |")
        table.append("| **geometric mean relative to seasonal-naive** | " +
                     " | ".join(_fmt(summary[m]) for m in models) + " |")  # fmt: skip
        notes = sorted({f"{m}: {n}" for r in rows for m, n in r["notes"].items()})
        chosen = [f"{r['dataset']}: {r['chosen'] or 'no selection'} (members {r['members']})" for r in rows]
        tail = ["", "lstmkit's choice per data set: " + "; ".join(chosen) + "."]
    else:
        head += ["Test accuracy on the published split, and fit seconds; the last row is the mean accuracy.", ""]
        table = ["| data set (train/test) | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for r in rows:
            cells = [_fmt(r["scores"].get(m)) + (f" ({r['seconds'][m]:.0f} s)" if m in r["seconds"] else "")
                     for m in models]  # fmt: skip
            table.append(f"| {r['dataset']} ({r['n_train']}/{r['n_test']}) | " + " | ".join(cells) + " |")
        table.append("| **mean** | " + " | ".join(_fmt(summary[m]) for m in models) + " |")
        notes = sorted({f"{m}: {n}" for r in rows for m, n in r["notes"].items()})
        tail = ["", "lstmkit's choice per data set: " + "; ".join(f"{r['dataset']}: {r['chosen']}" for r in rows) + "."]
    if notes:
        tail += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join([*head, *table, *tail, ""])


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite and len(finite) == len(values) else None


def write(path: Path, task: str, text: str) -> None:
    """Put ``text`` (a section starting ``## {task}``) in the page at ``path``, replacing that task's old section."""
    from .._atomic import atomic_write_bytes

    page = path.read_text() if path.exists() else f"{TITLE}\n\n{INTRO}\n"
    pattern = re.compile(rf"^## {re.escape(task)}\n.*?(?=^## |\Z)", re.S | re.M)
    page = pattern.sub(lambda _: text + "\n", page) if pattern.search(page) else page.rstrip("\n") + "\n\n" + text
    atomic_write_bytes(path, (page.rstrip("\n") + "\n").encode())
