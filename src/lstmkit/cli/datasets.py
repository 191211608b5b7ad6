"""``lstmkit datasets ...``: the bundled real time series (loaded offline from packages)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import app
from ._console import err, fail, print_json

datasets_app = typer.Typer(help="Bundled real time series, loaded offline from packages.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")] = False,
) -> None:
    """List the bundled datasets: name, frequency, target, covariates, source."""
    from ..datasets import list_datasets

    infos = list_datasets()
    if as_json:
        print_json([d.summary() for d in infos])
        return
    from rich.table import Table

    table = Table("name", "frequency", "target", "covariates (past / future)", "description")
    for d in infos:
        cov = f"{', '.join(d.past_covariates) or '-'} / {', '.join(d.future_covariates) or '-'}"
        table.add_row(d.name, d.frequency, ", ".join(d.targets), cov, d.description)
    err.print(table)


@datasets_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="A dataset name from `lstmkit datasets list`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Load one dataset offline and describe it: rows, time span, missing values."""
    from ..datasets import get_info, load_dataset

    try:
        info = get_info(name)
        df = load_dataset(name)
    except KeyError as exc:
        fail(str(exc.args[0]))
    except ImportError as exc:
        fail(str(exc))
    summary = {
        **info.summary(), "rows": len(df), "start": str(df["time"].iloc[0]), "end": str(df["time"].iloc[-1]),
        "missing": {c: int(df[c].isna().sum()) for c in df.columns if c != "time"},
    }  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        err.print(summary)
