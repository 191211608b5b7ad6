"""Options every command group shares, declared once so that they read and behave the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON last on stdout.")]
Seed = Annotated[int, typer.Option("--seed", help="Seeds every random draw: the same seed repeats the run.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted training in --out.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens as it happens.")]
Out = Annotated[Path, typer.Option("--out", help="The run directory to write.")]
