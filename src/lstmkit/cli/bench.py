"""``lstmkit bench``: the speed benchmark (:mod:`lstmkit.bench`) from the command line."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .. import bench as _bench
from . import app


def results_table(result: dict) -> Table:
    """The rows of a benchmark result as a rich table."""
    s = result["settings"]
    table = Table(
        title=f"lstmkit bench ({s['threads']} threads, float32, median of {s['samples']} ± largest deviation)",
        caption="ratio = peer time / lstmkit time: above 1, lstmkit is faster",
    )
    for name, justify in (("suite config case", "left"), ("lstmkit", "right"), ("peer", "left"),
                          ("peer time", "right"), ("ratio", "right"), ("target", "right"), ("", "center")):  # fmt: skip
        table.add_column(name, justify=justify)
    for row in result["rows"]:
        verdict = _bench.format_verdict(row)
        style = {"pass": "green", "FAIL": "bold red"}.get(verdict.split()[0], "dim")
        table.add_row(
            f"{row['suite']} {row['config']} {row['case']}", _bench.format_timing(row, "lstmkit", compact=True),
            row["peer"], _bench.format_timing(row, "peer", compact=True), f"{row['ratio']:.2f}×",
            f"≥ {row['target']:.2f}×" if row["target"] is not None else "", f"[{style}]{verdict}[/{style}]",
        )  # fmt: skip
    return table


@app.command("bench")
def bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON document last and nothing else on stdout.")
    ] = False,
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help=f"A suite to run (repeatable; default all): {', '.join(_bench.SUITES)}."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny shapes and samples: a smoke test (< 20 s), not a measurement.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON document to this file.")] = None,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="torch / OpenMP / XLA threads; the issue's measurement uses 2.")
    ] = _bench.THREADS,
) -> None:
    """Measure lstmkit against torch.nn.LSTM, JAX and Keras in one process (2 threads, float32, CPU)."""
    suites = list(suite or [])
    unknown = [s for s in suites if s not in _bench.SUITES]
    if unknown:
        raise typer.BadParameter(
            f"unknown suite(s) {', '.join(map(repr, unknown))}; choose from {', '.join(_bench.SUITES)}.",
            param_hint="--suite",
        )
    err = Console(stderr=True)
    words = ["lstmkit", "bench"] + ["--json"] * as_json + [w for s in suites for w in ("--suite", s)]
    words += ["--quick"] * quick + (["--out", str(out)] if out is not None else [])
    words += ["--threads", str(threads)] if threads != _bench.THREADS else []
    command = shlex.join(words)
    # With --json, stdout carries the document only: anything a library prints goes to stderr meanwhile.
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with redirect:
        result = _bench.run(
            suites or None,
            quick=quick,
            threads=threads,
            progress=lambda msg: err.print(f"[dim]bench: {msg}[/dim]"),
            command=command,
        )
    document = json.dumps(result, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document + "\n", encoding="utf-8")
    if as_json:
        sys.stdout.write(document + "\n")
        sys.stdout.flush()
        return
    console = Console()
    if not console.is_terminal:  # piped or redirected: rich would assume 80 columns and wrap every cell
        console = Console(width=160)
    console.print(results_table(result))
    summary = result["summary"]
    console.print(f"{summary['passed']} of {summary['with_target']} targets met.")
    for name, why in result["skipped"].items():
        console.print(f"[yellow]skipped {name}[/yellow]: {why}")
    for note in result["notes"]:
        console.print(f"[dim]note: {note}[/dim]")
    if out is not None:
        console.print(f"JSON written to {out}")
