"""``lstmkit music train | generate | evaluate``: an LSTM over four-voice Bach chorales, and new ones from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..tasks.music.config import MusicModelConfig
from . import app
from ._console import USER_ERRORS, err, fail, print_json, print_result, setup_logging, user_message
from ._options import AsJson, CoreOptions, Out, Resume, Verbose, train_options

music_app = typer.Typer(
    help="Music generation: an LSTM language model over Bach chorales (MIDI, MusicXML and piano-roll output).",
    no_args_is_help=True,
)
app.add_typer(music_app, name="music")
_CFG = MusicModelConfig()  # the defaults the help shows, declared once in the config
_NET = _CFG.net


@music_app.command("train")
@train_options(MusicModelConfig)
def train(
    out: Out,
    scores: Annotated[
        Path | None, typer.Option("--scores", help="A folder of four-part score files (default: music21's chorales).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N pieces (a quick look).")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Where the encoded chorales are kept.")] = None,
    embedding_size: Annotated[
        int | None, typer.Option("--embedding-size", help=f"Token embedding width. (default {_NET.embedding_size})")
    ] = None,
    dropout: Annotated[
        float | None, typer.Option("--dropout", help=f"Between layers and before the decoder. (default {_NET.dropout})")
    ] = None,
    bptt: Annotated[
        int | None,
        typer.Option("--bptt", help=f"Truncated-BPTT length in tokens, 5 per sixteenth. (default {_CFG.bptt})"),
    ] = None,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on the chorales (split by piece); held-out NLL beside an n-gram model, musical statistics, samples.

    --batch-size is the number of parallel token streams."""
    setup_logging(verbose)
    from ..tasks.music.model import resolve_pieces, train_run
    from ..train import CheckpointError, ResumeError

    if limit is not None and limit < 1:
        fail(f"--limit must be at least 1, got {limit}.")
    given = {"embedding_size": embedding_size, "dropout": dropout, "bptt": bptt}
    try:
        cfg = core.build(
            MusicModelConfig, {"progress": not as_json, **{k: v for k, v in given.items() if v is not None}}
        )
        pieces = resolve_pieces(scores, limit, cache)
        result = train_run(cfg, out, pieces, resume=resume)
    except (*USER_ERRORS, ResumeError, CheckpointError) as e:
        fail(user_message(e))
    ngram = result["ngram"]
    if as_json:
        baseline = {k: ngram[k] for k in ("nats_per_token", "bits_per_token", "nats_per_step", "order")}
        statistics = {k: result["statistics"][k] for k in ("generated_vs_held_out", "train_vs_held_out")}
        print_result("music", result["run_dir"], result["test"], {"ngram": baseline},
                     train_seconds=result["train_seconds"], statistics=statistics,
                     samples=result.get("samples", {}))  # fmt: skip
    else:
        err.print(
            f"trained in {result['train_seconds']} s; held-out {result['test']['nats_per_token']:.3f} nats/token "
            f"({ngram['order']}-gram {ngram['nats_per_token']:.3f}); model in {result['run_dir']}"
        )


@music_app.command("generate")
def generate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit music train`.")],
    out: Annotated[Path, typer.Option("--out", help="Output path without suffix: writes .mid, .musicxml, .png.")],
    key: Annotated[str | None, typer.Option("--key", help="e.g. 'D minor', 'Bb major' (default C major).")] = None,
    metre: Annotated[str | None, typer.Option("--metre", help="A time signature the model knows, e.g. 3/4.")] = None,
    bars: Annotated[int, typer.Option("--bars", help="Bars to write (after the prime's).")] = 8,
    prime: Annotated[
        str | None, typer.Option("--prime", help="A score file or corpus chorale (bwv66.6) whose opening to continue.")
    ] = None,
    prime_bars: Annotated[int, typer.Option("--prime-bars", help="Bars of the prime's opening to keep.")] = 2,
    temperature: Annotated[float, typer.Option("--temperature")] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Repeat a sample exactly.")] = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Write a new chorale-like piece as MIDI, MusicXML and a piano-roll PNG."""
    from ..tasks.music.data import write_piece
    from ..tasks.music.model import MusicModel

    try:
        model = MusicModel.load(run_dir)
        piece = model.generate(key, metre, bars, prime=prime, prime_bars=prime_bars, temperature=temperature,
                               seed=seed)  # fmt: skip
        files = write_piece(piece, out)
    except USER_ERRORS as e:
        fail(user_message(e))
    summary = {"key": f"{piece.tonic_name} {piece.mode}", "metre": piece.metre, "bars": int(piece.bars.sum()),
               "notes": len(piece.notes()), "files": files}  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        err.print(f"{summary['bars']} bars in {summary['key']}, {piece.metre}: {', '.join(files.values())}")


@music_app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit music train`.")],
    scores: Annotated[list[str], typer.Argument(help="Score files or corpus chorale names (bwv66.6).")],
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Negative log-likelihood of four-part scores under the model (nats per token and per sixteenth)."""
    from ..tasks.music.data import read_score
    from ..tasks.music.model import MusicModel

    try:
        model = MusicModel.load(run_dir)
        result = model.evaluate([read_score(s) for s in scores])
    except USER_ERRORS as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
    else:
        err.print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
