"""``lstmkit benchmark forecasting|classification``: the scorecard (:mod:`lstmkit.scorecard`), the defaults against
the peers on every bundled data set, written to ``docs/results/scorecard.md``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import app
from ._console import err, fail, print_json, setup_logging

TASKS = ("forecasting", "classification")


@app.command("benchmark")
def benchmark(
    task: Annotated[str, typer.Argument(help=f"One of: {', '.join(TASKS)}.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="1-minute budgets and shorter series: a look, minutes not hours.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="A data set to run (repeatable; default all).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds lstmkit's fits and the peers'.")] = 0,
    page: Annotated[
        Path, typer.Option("--page", help="The markdown page to write this task's section into.")
    ] = Path("docs/results/scorecard.md"),
    log: Annotated[
        Path | None, typer.Option("--log", help="Append one JSON line per data set here (default: none).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows and summary as JSON on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each fit.")] = False,
) -> None:
    """Run the library's defaults on every bundled data set of TASK with the peers beside them, in one process, and
    write the task's section of the scorecard (command, machine, versions, one table, fit seconds)."""
    setup_logging(verbose)
    if task not in TASKS:
        fail(f"Unknown task {task!r}: lstmkit benchmark takes one of {', '.join(TASKS)}.")
    try:
        from ..scorecard import classification, forecasting, report

        budget = 1.0 if quick else None
        known = [s.name for s in forecasting.SETS] if task == "forecasting" else classification.names()
        unknown = sorted(set(only or ()) - set(known))
        if unknown:
            fail(f"Unknown data set(s) {unknown} for {task}; known: {', '.join(known)}.")
        names = [n for n in known if not only or n in only]
        rows = []
        for name in names:
            err.print(f"{task}: {name} ...")
            if task == "forecasting":
                spec = next(s for s in forecasting.SETS if s.name == name)
                rows.append(forecasting.run(spec, quick=quick, seed=seed, max_minutes=budget))
            else:
                rows.append(classification.run(name, seed=seed, max_minutes=budget))
        summary = (forecasting.summarize if task == "forecasting" else classification.summarize)(rows)
        command = "lstmkit benchmark " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        report.write(page, task, report.section(task, command, rows, summary))
        if log is not None:
            with log.open("a") as f:
                for row in rows:
                    f.write(json.dumps({"task": task, "machine": report.machine(), **row}) + "\n")
    except (ValueError, ImportError, FileNotFoundError) as e:
        fail(str(e))
    if as_json:
        print_json({"task": task, "rows": rows, "summary": summary, "page": str(page)})
    else:
        err.print(f"{task}: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items() if v is not None))
        err.print(f"written to {page}")
