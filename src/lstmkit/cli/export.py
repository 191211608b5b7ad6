"""``lstmkit export onnx RUN_DIR``: the trained model as ONNX, checked against the source model before it is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import app
from ._console import err, fail, print_json, setup_logging, user_message
from ._options import AsJson, Verbose

export_app = typer.Typer(help="Export a trained model (ONNX), verified against the source model.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def onnx(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by an lstmkit train command.")],
    out: Annotated[str | None, typer.Option("--out", metavar="PATH", help="The ONNX file, or a directory to "
                                            "write the default file name in (default RUN_DIR/model.onnx); missing "
                                            "directories are created.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file that is not an earlier "
                                        "export of this run.")] = False,
    streaming: Annotated[bool, typer.Option("--streaming", help="Export the one-step graph: the observation and "
                                            "the recurrent state in, the output and the new state out.")] = False,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest absolute difference accepted between "
                                             "the source model and the exported one.")] = 1e-4,
    as_json: AsJson = False,
    verbose: Verbose = False,
) -> None:  # fmt: skip
    """Write RUN_DIR/model.onnx (opset 17; a Seq2Seq run also model-decoder-step.onnx): the plain LSTM as ONNX's own
    LSTM operator, variants as standard operators. The source model and the export (onnxruntime) run on sample
    inputs first; above the tolerance nothing is written and the command fails. An existing file is replaced only
    when it is an earlier export of this run (recorded in the file's metadata) or with --force."""
    setup_logging(verbose)
    from ..export.onnx import ExportMismatchError, export_onnx

    if not tolerance > 0:
        fail(f"--tolerance must be positive, got {tolerance}.")
    try:
        report = export_onnx(run_dir, out, streaming=streaming, tolerance=tolerance, force=force)
    except (ValueError, KeyError, TypeError, ImportError, ExportMismatchError) as e:
        fail(user_message(e))
    except OSError as e:  # ours (a file in the way, a missing run) carry a sentence; the system's a file name
        fail(f"Could not use {e.filename} ({e.strerror}); check RUN_DIR and --out." if e.errno else str(e))
    if as_json:
        print_json(report.to_dict())
    else:
        for f in report.files:  # one file, or Seq2Seq's encoder and decoder step
            err.print(f"wrote {f['path']} ({report.kind}{', streaming step' if streaming else ''}): inputs "
                      f"{', '.join(f['inputs'])}; outputs {', '.join(f['outputs'])}; largest difference from the "
                      f"source model {f['max_abs_diff']:.2g} (tolerance {report.tolerance:g})")  # fmt: skip
