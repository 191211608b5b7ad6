"""``lstmkit forecast train | predict | backtest``: LSTM forecasting on a bundled dataset or a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..tasks.timeseries.forecast_config import ForecastConfig
from . import app
from ._console import err, fail, print_json, print_result, setup_logging
from ._options import AsJson, CoreOptions, Out, Resume, Verbose, train_options

forecast_app = typer.Typer(help="Forecast time series with an LSTM (quantiles, covariates).", no_args_is_help=True)
app.add_typer(forecast_app, name="forecast")

Data = Annotated[str | None, typer.Option("--data", help="A bundled dataset (lstmkit datasets list).")]
Csv = Annotated[Path | None, typer.Option("--csv", help="A CSV file with a time column and the target.")]
Time = Annotated[str | None, typer.Option("--time", help="The time column of the CSV (default: time).")]
Target = Annotated[str | None, typer.Option("--target", help="The column to forecast.")]
Id = Annotated[str | None, typer.Option("--id", help="A column naming the series, for many series in one table.")]
Past = Annotated[list[str] | None, typer.Option("--past", help="A past covariate column (repeatable).")]
Future = Annotated[list[str] | None, typer.Option("--future", help="A future covariate column (repeatable).")]
Static = Annotated[
    list[str] | None, typer.Option("--static", help="A static covariate column, one value per series (repeatable).")
]
Season = Annotated[
    int | None,
    typer.Option(
        "--season",
        help="Seasonal period in steps: MASE's scale and seasonal-naive (default: the dataset's, or inferred from the "
        "timestamps: monthly 12, hourly 24, ...).",
    ),
]


Transform = Annotated[
    str | None, typer.Option("--transform", help="none or log (positive series whose swings grow with their level).")
]


def _config(data: str | None, csv: Path | None, given: dict[str, Any], core: CoreOptions) -> tuple[Any, Any]:
    """The table and the config: the dataset's column roles < the command's options < the shared options."""
    from ..tasks.timeseries.series import dataset_or_csv

    table, defaults = dataset_or_csv(data, csv, "forecasting")
    merged = {**defaults, **{k: v for k, v in given.items() if v is not None and v != ()}}
    if "target" not in merged and core.config_file is None and not core.sets:
        raise ValueError("Say which column to forecast with --target (or use --data NAME for a bundled dataset).")
    return table, core.build(ForecastConfig, merged)


def _own(time, target, id_, past, future, static, season, **rest) -> dict[str, Any]:
    return {
        "time": time, "target": target, "id": id_, "past_covariates": tuple(past or ()),
        "future_covariates": tuple(future or ()), "static_covariates": tuple(static or ()), "season": season, **rest,
    }  # fmt: skip


@forecast_app.command("train")
@train_options(ForecastConfig)
def train(
    horizon: Annotated[int, typer.Option("--horizon", help="Steps to forecast.")],
    out: Out,
    data: Data = None, csv: Csv = None, time: Time = None, target: Target = None, id_: Id = None,
    past: Past = None, future: Future = None, static: Static = None, season: Season = None,
    transform: Transform = None,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Choose and train a forecaster on all the data; write the next horizon's forecast, its picture and a report.

    The residual and the transform are chosen on the last horizons of the history (rolling origins), beside
    seasonal-naive, AutoETS and AutoTheta on the same origins; the selection and the final fit share --max-minutes
    (default 10). Give --transform or --set residual_to=... to fix one."""
    setup_logging(verbose)
    import logging

    logging.getLogger("lstmkit.tasks.timeseries.forecast_select").setLevel(logging.INFO)  # progress: each fit
    from ..tasks.timeseries.forecast_run import train_run
    from ..train import CheckpointError, ResumeError

    try:
        own = _own(time, target, id_, past, future, static, season, horizon=horizon, transform=transform)
        table, cfg = _config(data, csv, {**own, "train": {"progress": not as_json}}, core)
        summary = train_run(table, cfg, out, resume=resume)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, ImportError, ResumeError, CheckpointError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    selection = summary["selection"]
    if as_json:
        rows = selection["table"]
        chosen = next((r for r in rows if r["name"] == selection["chosen"]), {})
        metrics = {"train_loss": summary["train_loss"], "epochs": summary["epochs"],
                   "validation_mase": chosen.get("mase"), "validation_smape": chosen.get("smape")}  # fmt: skip
        baselines = {r["name"]: {"validation_mase": r["mase"], "validation_smape": r["smape"]}
                     for r in rows if r["kind"] == "baseline"}  # fmt: skip
        print_result(
            "forecaster", summary["run_dir"], metrics, baselines, forecast=summary.get("forecast"),
            target=summary["target"], horizon=summary["horizon"], window=summary["window"], season=summary["season"],
            selection=selection,
        )  # fmt: skip
    else:
        _print_selection(selection)
        where = f", forecast in {summary['forecast']}" if "forecast" in summary else ""
        err.print(f"trained; forecaster in {summary['run_dir']}{where}")


def _print_selection(selection: dict[str, Any]) -> None:
    """The selection table on stderr: each candidate's and baseline's validation MASE and sMAPE, and the verdict."""
    if selection["skipped"]:
        err.print(f"no selection: {selection['skipped']}")
        return
    from rich.table import Table

    out = Table("candidate", "kind", "MASE", "sMAPE %", "seconds",
                title=f"validation on {len(selection['origins'])} origin(s)")  # fmt: skip
    show = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in selection["table"]:
        mark = "* " if r["name"] == selection["chosen"] else ""
        out.add_row(mark + r["name"], r["kind"], show(r["mase"]), show(r["smape"]), f"{r['seconds']:.1f}")
    err.print(out)
    err.print(selection["verdict"])


@forecast_app.command("predict")
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit forecast train`.")],
    data: Data = None, csv: Csv = None,
    future_csv: Annotated[
        Path | None, typer.Option("--future-csv", help="The next horizon's future covariates.")
    ] = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Forecast the horizon after the end of the given history (CSV on stdout, or JSON)."""
    from ..data.tables import read_csv
    from ..tasks.timeseries.forecasting import Forecaster
    from ..tasks.timeseries.series import dataset_or_csv

    try:
        forecaster = Forecaster.load(run_dir)
        table, _ = dataset_or_csv(data, csv, "forecasting")
        future = read_csv(future_csv) if future_csv is not None else None
        pred = forecaster.predict(table, future=future)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    pred["time"] = pred["time"].astype(str)
    if as_json:
        print_json(pred.to_dict(orient="records"))
    else:
        typer.echo(pred.to_csv(index=False), nl=False)


@forecast_app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit forecast train`.")],
    data: Data = None, csv: Csv = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Score a trained forecaster on the last horizon of each series, forecast from the history before it."""
    from ..tasks.timeseries.forecasting import Forecaster
    from ..tasks.timeseries.series import dataset_or_csv

    try:
        forecaster = Forecaster.load(run_dir)
        table, _ = dataset_or_csv(data, csv, "forecasting")
        result = forecaster.evaluate(table)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    if as_json:
        print_json(result)
    else:
        err.print({k: round(v, 4) for k, v in result["mean"].items()})


@forecast_app.command("backtest")
@train_options(ForecastConfig)
def backtest_command(
    horizon: Annotated[int, typer.Option("--horizon", help="Steps to forecast from each origin.")],
    data: Data = None, csv: Csv = None, time: Time = None, target: Target = None, id_: Id = None,
    past: Past = None, future: Future = None, static: Static = None, season: Season = None,
    transform: Transform = None,
    folds: Annotated[int, typer.Option("--folds", help="Rolling origins, the last at the end of the data.")] = 1,
    as_json: AsJson = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Rolling-origin backtest of what `forecast train` does (its selection rerun on each fold's history), with
    seasonal-naive, AutoETS and AutoTheta on the same splits (MAE, RMSE, MASE, sMAPE); the table on stderr, or the
    JSON result on stdout."""
    from ..tasks.timeseries.backtest import backtest
    from ..tasks.timeseries.forecast_select import select_forecaster

    try:
        own = _own(time, target, id_, past, future, static, season, horizon=horizon, transform=transform)
        table, cfg = _config(data, csv, own, core)
        result = backtest(table, cfg, folds=folds, fit=lambda c, history: select_forecaster(history, c)[0])
    except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table_out = Table("model", "MASE", "sMAPE %", "MAE", "RMSE", "coverage")
    for name, m in result["mean"].items():
        keys = ("mase", "smape", "mae", "rmse", "coverage")
        table_out.add_row(name, *(f"{m.get(k, float('nan')):.3f}" for k in keys))
    err.print(table_out)
