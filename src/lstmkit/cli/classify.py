"""``lstmkit classify train | predict | evaluate``: LSTM time-series classification on a bundled UCR/UEA problem or a
CSV file in long form (one row per series and step)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..tasks.timeseries.classify_config import ClassifyConfig  # torch-free: --help reads the defaults from it
from . import app
from ._console import USER_ERRORS, err, fail, print_json, print_result, setup_logging, user_message
from ._options import CoreOptions, Out, Resume, Verbose, train_options

classify_app = typer.Typer(help="Classify time series with an LSTM (UCR/UEA layout or a CSV).", no_args_is_help=True)
app.add_typer(classify_app, name="classify")

Data = Annotated[
    str | None, typer.Option("--data", help="A bundled classification dataset (lstmkit datasets list --task ...).")
]
Csv = Annotated[Path | None, typer.Option("--csv", help="A CSV file in long form: one row per series and step.")]
Id = Annotated[str | None, typer.Option("--id", help="The column naming each series (default: id).")]
Label = Annotated[str | None, typer.Option("--label", help="The column holding each series' class (default: label).")]
Step = Annotated[
    str | None, typer.Option("--step", "--time", help="A column ordering the rows of a series (default: file order).")
]
Split = Annotated[str | None, typer.Option("--split", help="A column of train / test per row.")]
Features = Annotated[
    list[str] | None,
    typer.Option("--features", help="A feature column (repeatable; default: every other numeric column)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON last on stdout.")]
RunDir = Annotated[Path, typer.Argument(help="A run directory written by `lstmkit classify train`.")]


def _roles(id_: str | None, label: str | None, step: str | None, split: str | None, features) -> dict[str, Any]:
    given = {"id": id_, "label": label, "step": step, "split": split, "features": tuple(features or ())}
    return {k: v for k, v in given.items() if v is not None and v != ()}


def _load(run_dir: Path) -> Any:
    from ..tasks.sequence.estimators import SequenceClassifier

    return SequenceClassifier.load(run_dir)


def _scores_line(name: str, scores: dict[str, Any]) -> str:
    return (
        f"{name}: accuracy {scores['accuracy']:.4f}, balanced accuracy {scores['balanced_accuracy']:.4f}, "
        f"macro-F1 {scores['macro_f1']:.4f} on {scores['n']} series"
    )


@classify_app.command("train")
@train_options(ClassifyConfig)
def train(
    out: Out,
    data: Data = None, csv: Csv = None, id_: Id = None, label: Label = None, step: Step = None, split: Split = None,
    features: Features = None,
    test_fraction: Annotated[
        float | None, typer.Option("--test-fraction", help="Without a split column: share of series held out to test "
                                   "(default 0).")
    ] = None,
    pooling: Annotated[str | None, typer.Option("--pooling", help="last (default), mean, max or attention.")] = None,
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Read each series both ways.")] = False,
    class_weight: Annotated[
        str | None, typer.Option("--class-weight", help="none (default) or balanced (weights the loss against "
                                 "imbalance).")
    ] = None,
    head_dropout: Annotated[
        float | None, typer.Option("--head-dropout", help="Dropout on the pooled vector before the head (training "
                                   "only; default 0).")
    ] = None,
    conv_branch: Annotated[
        bool, typer.Option("--conv-branch", help="LSTM-FCN: a fully convolutional branch beside the LSTM.")
    ] = False,
    dimension_shuffle: Annotated[
        bool, typer.Option("--dimension-shuffle", help="LSTM-FCN: the LSTM reads each series transposed, one step "
                           "of T features (equal-length series only).")
    ] = False,
    pooled_dropout: Annotated[
        float | None, typer.Option("--pooled-dropout", help="Dropout on the LSTM's vector alone, before the "
                                   "convolutional branch's joins it (LSTM-FCN: 0.8; default 0).")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option("--optimizer", help="adam (default) or adamw (decoupled weight decay).")
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option("--weight-decay", help="The optimizer's weight decay (default 0).")
    ] = None,
    validation_split: Annotated[
        float | None, typer.Option("--validation-split", help="Share of training series for early stopping "
                                   "(default 0).")
    ] = None,
    patience: Annotated[int | None, typer.Option("--patience", help="Early-stopping patience in epochs.")] = None,
    selection: Annotated[
        str | None, typer.Option("--selection", help="auto (default): choose the network by stratified "
                                 "cross-validation on the training series, then refit it on all of them; off: the "
                                 "network as the options give it (--conv-branch, --pooling, ... turn auto off).")
    ] = None,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on the training series, score the test series beside 1-NN Euclidean, write the run and its report.

    By default the network is chosen by stratified cross-validation on the training series (LSTM-FCN, LSTM-FCN with
    a step-wise LSTM, attention pooling, a plain LSTM; 1-NN Euclidean scored on the same folds), each candidate
    training 300 optimiser steps (--set train.min_steps=N), and the winner is refit on all the training series. The
    whole run, selection included, stops within --max-minutes (default 5: a few hundred series of a few hundred steps
    on 2 cores; a candidate the budget cannot fit is skipped, and the table in result.json says so)."""
    setup_logging(verbose)
    from ..config import ConfigError
    from ..tasks.timeseries.classification import train_run
    from ..tasks.timeseries.series import dataset_or_csv
    from ..train import CheckpointError, ResumeError

    own = {
        "test_fraction": test_fraction, "class_weight": class_weight, "validation_split": validation_split,
        "selection": selection,
        "net": {"pooling": pooling, "bidirectional": bidirectional or None, "head_dropout": head_dropout,
                "conv_branch": conv_branch or None, "dimension_shuffle": dimension_shuffle or None,
                "pooled_dropout": pooled_dropout},
        "train": {"optimizer": optimizer, "weight_decay": weight_decay, "early_stopping_patience": patience,
                  "progress": not as_json},
    }  # fmt: skip
    given = {k: v for k, v in own.items() if v is not None}
    for section in ("net", "train"):
        given[section] = {k: v for k, v in own[section].items() if v is not None}
    try:
        table, defaults = dataset_or_csv(data, csv, "classification")
        cfg = core.build(ClassifyConfig, {**defaults, **_roles(id_, label, step, split, features), **given})
        summary = train_run(table, cfg, out, source=data or str(csv), resume=resume)
    except (*USER_ERRORS, ConfigError, ResumeError, CheckpointError) as e:
        fail(user_message(e))
    if as_json:
        metrics = {k: summary[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
        print_result(
            "sequence_classifier", summary["run_dir"], metrics, summary["baselines"],
            predictions=str(Path(summary["run_dir"]) / "predictions.csv"), scored_on=summary["scored_on"],
            n_train=summary["n_train"], n_test=summary["n_test"], epochs=summary["epochs"],
            train_seconds=summary["train_seconds"], warnings=summary["warnings"], selection=summary["selection"],
        )  # fmt: skip
        return
    if summary["selection"] is not None:
        chosen = summary["selection"]
        err.print(f"selection ({chosen['folds']}, {chosen['seconds']:.0f} s): chose {chosen['chosen']}")
        for row in chosen["table"]:
            score = "-" if row["cv_accuracy"] is None else f"{row['cv_accuracy']:.4f}"
            err.print(f"  {row['candidate']:<28} {score:>7} {row['seconds']:>7.1f} s  {row['status']}")
    err.print(f"trained on {summary['n_train']} series; run in {summary['run_dir']}")
    line = f"{summary['scored_on']}: accuracy {summary['accuracy']:.4f}, macro-F1 {summary['macro_f1']:.4f}"
    if "one_nn_euclidean_accuracy" in summary:
        line += f" (1-NN Euclidean {summary['one_nn_euclidean_accuracy']:.4f})"
    err.print(line)


@classify_app.command("predict")
def predict(
    run_dir: RunDir, data: Data = None, csv: Csv = None, id_: Id = None, step: Step = None,
    features: Features = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Predict the class of every series in the table (CSV on stdout: id, predicted, one probability per class)."""
    from ..config import ConfigError
    from ..tasks.timeseries.classification import predict_table
    from ..tasks.timeseries.series import dataset_or_csv

    try:
        clf = _load(run_dir)
        table, _ = dataset_or_csv(data, csv, "classification")
        frame = predict_table(clf, table, **_roles(id_, None, step, None, features))
    except (*USER_ERRORS, ConfigError) as e:
        fail(user_message(e))
    if as_json:
        print_json(frame.to_dict(orient="records"))
    else:
        typer.echo(frame.to_csv(index=False), nl=False)


@classify_app.command("evaluate")
def evaluate(
    run_dir: RunDir, data: Data = None, csv: Csv = None, id_: Id = None, label: Label = None, step: Step = None,
    split: Split = None, features: Features = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Score a trained classifier on the table's test series (all series without a split column)."""
    from ..config import ConfigError
    from ..tasks.timeseries.classification import evaluate_table
    from ..tasks.timeseries.series import dataset_or_csv

    try:
        clf = _load(run_dir)
        table, defaults = dataset_or_csv(data, csv, "classification")
        result = evaluate_table(clf, table, **{**defaults, **_roles(id_, label, step, split, features)})
    except (*USER_ERRORS, ConfigError) as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
        return
    err.print(_scores_line(f"lstm ({result['scored_on']})", result["lstm"]))
    if "one_nn_euclidean" in result:
        err.print(_scores_line("1-NN Euclidean", result["one_nn_euclidean"]))
