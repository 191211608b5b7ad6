"""``lstmkit datasets ...``: the bundled real time series (forecasting, anomaly, classification; offline)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import app
from ._console import err, fail, print_json

datasets_app = typer.Typer(help="Bundled real time series, loaded offline from packages.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def list_command(
    task: Annotated[
        str | None, typer.Option(help="Only this task's datasets: forecasting, anomaly or classification.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")] = False,
) -> None:
    """List the bundled datasets: name, task, frequency, target, covariates, description."""
    from ..datasets import list_datasets

    if task not in (None, "forecasting", "anomaly", "classification"):
        fail(f"Unknown task {task!r}; choose forecasting, anomaly or classification.")
    infos = list_datasets(task)  # type: ignore[arg-type]
    if as_json:
        print_json([d.summary() for d in infos])
        return
    from rich.table import Table

    table = Table("name", "task", "frequency", "target", "covariates (past / future)", "description")
    for d in infos:
        cov = f"{', '.join(d.past_covariates) or '-'} / {', '.join(d.future_covariates) or '-'}"
        table.add_row(d.name, d.task, d.frequency, ", ".join(d.targets), cov, d.description)
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
    summary = {**info.summary(), "rows": len(df)}
    if "time" in df.columns:
        summary |= {"start": str(df["time"].iloc[0]), "end": str(df["time"].iloc[-1])}
    if "split" in df.columns:
        summary["split_rows"] = {str(k): int(v) for k, v in df["split"].value_counts(sort=False).items()}
    summary["missing"] = {c: int(df[c].isna().sum()) for c in df.columns if c not in ("time", "id", "split", "step")}
    if as_json:
        print_json(summary)
    else:
        err.print(summary)
