"""``lstmkit experiment TASK``: the long-time-lag experiments (adding, copy, temporal order, Reber, long lag)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..tasks.long_lag.config import ExperimentConfig, LongLagNet
from . import app
from ._console import err, fail, print_result, setup_logging
from ._options import CoreOptions, train_options

_CELL_HELP = "lstm, gru or rnn (tanh); --model is its former name."


@app.command("experiment")
@train_options(ExperimentConfig)
def experiment(
    task: Annotated[
        str,
        typer.Argument(
            help="adding, adding_1997, copy, temporal_order, temporal_order_3, embedded_reber or noise_free_lag."
        ),
    ],
    cell: Annotated[
        str | None, typer.Option("--cell", "--model", help=f"{_CELL_HELP} (default {LongLagNet.cell})")
    ] = None,
    length: Annotated[
        int | None, typer.Option("--length", help="Sequence length T (lag p); default: the paper's.")
    ] = None,
    forget_bias: Annotated[
        float | None,
        typer.Option("--forget-bias", help=f"LSTM forget-gate bias at init (default {LongLagNet.forget_bias})."),
    ] = None,
    max_sequences: Annotated[
        int | None,
        typer.Option(
            "--max-sequences", help=f"Training budget in sequences (default {ExperimentConfig.max_sequences:,})."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory for weights, metrics and pictures.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in --out from its newest checkpoint.")
    ] = False,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc", help="Train data-parallel on N processes of this machine (torchrun --nproc-per-node N)."
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result last on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    *,
    core: CoreOptions,
) -> None:
    """Train a model on a long-time-lag task, test it on 2,560 fresh sequences, and say whether it solved it."""
    setup_logging(verbose)
    from . import _launch

    if nproc < 1:
        fail(f"--nproc must be at least 1, got {nproc}.")
    if nproc > 1 and not _launch.under_torchrun():
        raise typer.Exit(_launch.relaunch(nproc))
    from ..tasks.long_lag import experiment as long_lag
    from ..tasks.long_lag import problems as long_lag_data

    if cell is not None and cell not in ("lstm", "gru", "rnn"):
        fail(f"--cell must be lstm, gru or rnn, got {cell!r}.")
    if task not in long_lag_data.TASKS:
        fail(f"unknown task {task!r}; choose one of {', '.join(sorted(long_lag_data.TASKS))}.")
    from .. import runs

    if out is not None and runs.is_finished(out):
        fail(f"{out} already holds a finished run; choose another --out or delete that directory.")
    if resume and out is None:
        fail("--resume needs --out: the run directory that holds the checkpoints.")
    own = {"cell": cell, "length": length, "forget_bias": forget_bias, "max_sequences": max_sequences}
    given = {"task": task, "progress": not as_json, **{k: v for k, v in own.items() if v is not None}}
    try:
        cfg = core.build(ExperimentConfig, given)
        from ..train.devices import resolve_device

        resolve_device(cfg.train.device)
    except ValueError as exc:
        fail(str(exc))
    from ..train import CheckpointError, ResumeError

    try:
        result = long_lag.run(cfg, out, resume=resume)
    except (ResumeError, CheckpointError) as exc:
        fail(str(exc))
    _report(result.summary(), as_json)


@app.command("resume")
def resume_run(
    run_dir: Annotated[Path, typer.Argument(help="The run directory of an interrupted run (its --out).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary last on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Continue an interrupted training run from its newest checkpoint, whatever task started it.

    A task that rebuilds its run from the checkpoint alone (the long-time-lag experiments) resumes in place; any
    other run is continued by the command that started it (recorded in its config.json as training started), run
    again with --resume and the same data.
    """
    setup_logging(verbose)
    from .. import runs
    from ..train import CheckpointError, ResumeError, resume
    from ..train.checkpoint import latest_checkpoint, read_checkpoint
    from ..train.resume import resumable_kinds

    if runs.is_finished(run_dir):
        fail(f"{run_dir} holds a finished run: there is nothing to resume.")
    try:
        recorded = _recorded_command(run_dir)
        trained_in = recorded[1] if recorded is not None else run_dir  # a task may train in a subdirectory
        last = latest_checkpoint(trained_in) if trained_in.is_dir() else None
        kind = read_checkpoint(last)[2].get("kind") if last is not None else None
        if kind in runs.BUILTIN_KINDS:
            runs.resolve_kind(kind)  # imports that one task, which registers how it resumes (if it does)
        if recorded is not None and kind not in resumable_kinds():
            _replay(run_dir, recorded[0], resume=last is not None, as_json=as_json, verbose=verbose)
            return
        result = resume(run_dir)
    except (ResumeError, CheckpointError) as exc:
        fail(str(exc))
    _report(result.summary(), as_json)


def _recorded_command(run_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """The command line that started the run, from the config.json written as its training started, and the
    directory that holds it: ``run_dir``, or a subdirectory a task trains in (an anomaly detector's forecaster)."""
    import json

    for path in [run_dir / "config.json", *sorted(run_dir.glob("*/config.json"))]:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        command = payload.get("command") if isinstance(payload, dict) else None
        if isinstance(command, dict) and isinstance(command.get("argv"), list) and payload.get("status") == "training":
            return command, path.parent
    return None


def _replay(run_dir: Path, command: dict[str, Any], *, resume: bool, as_json: bool, verbose: bool) -> None:
    """Run the recorded command again (in its working directory, on ``run_dir``) with --resume; exit with its code.

    Without a checkpoint yet (the run stopped before its first step) the command starts the run again instead.
    """
    from .. import runs
    from . import _launch

    argv = [str(a) for a in command["argv"]]
    if argv[:1] != ["experiment"] and "train" not in argv[:3]:  # never replay another verb (serve, export --force)
        fail(
            f"The command recorded in {run_dir / 'config.json'} ({' '.join(argv[:3])} ...) is not a training "
            "command, so lstmkit resume will not run it; resume runs `lstmkit TASK train` and `lstmkit experiment`."
        )
    at = next((i for i, a in enumerate(argv) if a == "--out" or a.startswith("--out=")), None)
    if at is None or (argv[at] == "--out" and at + 1 >= len(argv)):
        fail(f"The command recorded in {run_dir / 'config.json'} has no --out; run it again yourself with --resume.")
    value = argv[at + 1] if argv[at] == "--out" else argv[at].partition("=")[2]
    cwd = command.get("cwd")
    out = (Path(cwd) / value if isinstance(cwd, str) else Path(value)).resolve()
    target = run_dir.resolve()
    if out != target and out not in target.parents:  # the run was moved since: train where it is now
        out = target
    if argv[at] == "--out":
        argv[at + 1] = str(out)
    else:
        argv[at] = f"--out={out}"
    wanted = {"--resume": resume, "--json": as_json, "--verbose": verbose}
    given = set(argv) | ({"--verbose"} if "-v" in argv else set())
    argv += [flag for flag, on in wanted.items() if on and flag not in given]
    if not resume:
        argv = [a for a in argv if a != "--resume"]
        err.print(f"{run_dir} has no checkpoint yet: starting its training again.", highlight=False)
    here = os.getcwd()
    if isinstance(cwd, str) and os.path.isdir(cwd):
        os.chdir(cwd)  # the command's relative paths (--csv, --text, ...) are relative to where it was run
    try:
        _launch.set_argv(argv)
        with runs.recording_command(argv, cwd if isinstance(cwd, str) else here):
            try:
                code = app(args=argv, standalone_mode=False)
            except typer.Exit as exc:
                code = exc.exit_code
    finally:
        os.chdir(here)
    if isinstance(code, int) and code != 0:
        raise typer.Exit(code)


def _report(summary: dict, as_json: bool) -> None:
    """The result of a long-lag run (``ExperimentResult.summary()``, also its result.json): one line on stderr, or with
    ``--json`` the one shape of every training command on stdout."""
    from ..train.distributed import is_main_process

    if not is_main_process():  # one summary per run, from rank 0
        return
    if as_json:
        metrics = {k: summary[k] for k in ("metric", "value", "solved", "sequences_seen", "sequences_to_solve",
                                           "seconds", "parameters")}  # fmt: skip
        print_result(
            "long_lag", summary["run_dir"], metrics, {"memoryless": {"value": summary["baseline"]}},
            problem=summary["task"], cell=summary["model"], length=summary["length"], criterion=summary["criterion"],
        )  # fmt: skip
        return
    verdict = "[green]solved[/]" if summary["solved"] else "[red]not solved[/]"
    err.print(
        f"{summary['task']} T={summary['length']} {summary['model']}: {verdict}; test {summary['metric']} "
        f"{summary['value']:.4g} (baseline {summary['baseline']:.4g}) after {summary['sequences_seen']:,} sequences, "
        f"{summary['seconds']:.0f} s"
    )
