"""``lstmkit report RUN_DIR``: write the run's HTML report (curves, learning rate, gradient norms, pictures)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import app
from ._console import err, fail, print_json, setup_logging


@app.command("report")
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (the --out of lstmkit experiment, say).")],
    open_browser: Annotated[
        bool, typer.Option("--open", help="Also open the report in the default web browser.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print {run_dir, report} as JSON last on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Write RUN_DIR/report.html: loss and validation curves, learning rate, gradient norms, throughput, the config and
    the run's own pictures, in one static page with no external resources."""
    setup_logging(verbose)
    from ..report import write_report

    try:
        path = write_report(run_dir)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if open_browser:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            err.print(f"could not open a web browser here; open {path} yourself.")
    if as_json:
        print_json({"run_dir": str(run_dir), "report": str(path)})
    else:
        sys.stdout.write(f"{path}\n")  # the result alone on stdout, so that `xdg-open "$(lstmkit report r)"` works
