"""The ``lstmkit`` command line: a typer app with one module per command group. No logic of its own lives here."""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="lstmkit",
    help="Long Short-Term Memory networks: train, evaluate and measure LSTMs from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # each module adds its commands to ``app``
    from . import (  # noqa: F401
        anomaly,
        bench,
        benchmark,
        classify,
        datasets,
        demo,
        experiment,
        export,
        forecast,
        handwriting,
        music,
        report,
        serve,
        speech,
        text,
        translate,
    )


def _interrupted() -> None:
    from ._console import err

    err.print("interrupted: what was saved is kept; a train command continues with --resume.", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (tests call it in-process)."""
    _register()
    from . import _launch

    _launch.set_argv(list(argv) if argv is not None else sys.argv[1:])
    from ..runs import recording_command

    try:
        with recording_command(_launch.argv()):  # a run started by this command records it (`lstmkit resume`)
            code = app(args=argv, standalone_mode=False)  # click returns the exit code instead of raising here
        if code == 130:  # typer's answer to Ctrl-C (KeyboardInterrupt becomes Exit(130), returned here)
            _interrupted()
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 1
    except KeyboardInterrupt:
        _interrupted()
        return 130
    except Exception as exc:  # click usage errors carry their own exit code and message
        # typer vendors its own click (typer._click) in recent versions, so recognise the exception by its interface
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        # The one error handler: a mistake a user can fix that a command did not catch itself becomes one sentence
        # and exit code 2; anything else is a bug and keeps its traceback.
        from ._console import err, user_error_message

        message = user_error_message(exc)
        if message is None or os.environ.get("LSTMKIT_TRACEBACK"):  # set it to see where a sentence came from
            raise
        err.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False, markup=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
