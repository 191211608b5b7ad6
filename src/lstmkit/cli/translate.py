"""``lstmkit translate train | text | evaluate``: sequence to sequence with attention."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..tasks.text.config import Seq2SeqConfig
from . import app
from ._console import USER_ERRORS, err, fail, print_json, print_result, setup_logging, user_message
from ._options import AsJson, CoreOptions, Out, Resume, Verbose, train_options

_S2S = Seq2SeqConfig()  # the defaults the help shows, declared in the config

translate_app = typer.Typer(help="Sequence to sequence with attention (translation, number words).",
                            no_args_is_help=True)  # fmt: skip
app.add_typer(translate_app, name="translate")

SourceColumn = Annotated[str, typer.Option("--source-column", help="The CSV column of source texts.")]
TargetColumn = Annotated[str, typer.Option("--target-column", help="The CSV column of target texts.")]
Beam = Annotated[int, typer.Option("--beam", help="Beam size (1: greedy).")]


@translate_app.command("train")
@train_options(Seq2SeqConfig)
def train(
    out: Out,
    data: Annotated[str | None, typer.Option("--data", help="A bundled pair set: numbers or verses.")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="A CSV file of source and target texts.")] = None,
    source_column: SourceColumn = "source", target_column: TargetColumn = "target",
    pairs: Annotated[int, typer.Option("--pairs", help="--data numbers: how many distinct numbers.")] = 20000,
    level: Annotated[
        str | None,
        typer.Option("--level", help=f"Tokens on both sides: space, word, char or bpe (default {_S2S.source_level})."),
    ] = None,
    attention: Annotated[
        str | None, typer.Option("--attention", help=f"bahdanau, luong or none (default {_S2S.net.attention}).")
    ] = None,
    embedding_size: Annotated[
        int | None, typer.Option("--embedding-size", help=f"(default {_S2S.net.embedding_size})")
    ] = None,
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", help="Per side: words kept or BPE size.")] = None,
    holdout: Annotated[float, typer.Option("--holdout", help="Share of pairs held out for the test figures.")] = 0.1,
    beam: Beam = 4,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on all but a held-out share; report exact match, BLEU and chrF beside copying the source.

    --layers sets the encoder's and the decoder's layers."""
    setup_logging(verbose)
    from ..tasks.text.seq2seq import read_pairs, train_run
    from ..train import CheckpointError, ResumeError

    if not 0 <= holdout < 1:
        fail(f"--holdout must lie in [0, 1), got {holdout}.")
    given = {"source_level": level, "target_level": level, "attention": attention, "embedding_size": embedding_size,
             "vocab_size": vocab_size}  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    if as_json:
        given["progress"] = False
    try:
        cfg = core.build(Seq2SeqConfig, given)
        groups = None
        if data == "verses":  # split by chapter: neighbouring verses are near-duplicates
            from ..tasks.text.verses import load_verse_pairs

            verse_pairs = load_verse_pairs()
            sources, targets, groups = verse_pairs.english, verse_pairs.spanish, verse_pairs.chapters
        else:
            sources, targets = read_pairs(data, csv, source_column, target_column, n=pairs, seed=cfg.train.seed)
        result = train_run(sources, targets, cfg, out, holdout=holdout, beam_size=beam, resume=resume, groups=groups)
    except (*USER_ERRORS, TypeError, ResumeError, CheckpointError) as e:
        fail(user_message(e))
    if as_json:
        metrics = {k: v for k, v in result.items() if k in ("greedy", f"beam_{beam}")}
        baselines = {k: result[k] for k in ("copy_source", "word_by_word") if k in result}
        extra = {k: v for k, v in result.items() if k not in ("run_dir", *metrics, *baselines)}
        print_result("seq2seq", result["run_dir"], metrics, baselines, **extra)
    elif "greedy" in result:
        g = result["greedy"]
        err.print(f"held out: exact match {g['exact_match']:.4f}, BLEU {g['bleu']:.1f}, chrF {g['chrf']:.1f} "
                  f"(copying the source: BLEU {result['copy_source']['bleu']:.1f}"
                  + (f", word by word: BLEU {result['word_by_word']['bleu']:.1f}" if "word_by_word" in result else "")
                  + f"); model in {out}")  # fmt: skip


@translate_app.command("text")
def text(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit translate train`.")],
    sources: Annotated[list[str], typer.Argument(help="One or more source texts.")],
    beam: Beam = 1,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Translate the given texts, one output per line."""
    from ..tasks.text.seq2seq import Seq2Seq

    try:
        outputs = Seq2Seq.load(run_dir).translate(list(sources), beam_size=beam)
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    if as_json:
        print_json([{"source": s, "output": o} for s, o in zip(sources, outputs, strict=True)])
    else:
        typer.echo("\n".join(outputs))


@translate_app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit translate train`.")],
    csv: Annotated[Path, typer.Option("--csv", help="A CSV file of sources and references.")],
    source_column: SourceColumn = "source", target_column: TargetColumn = "target",
    beam: Beam = 1,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Exact match, BLEU and chrF on a CSV file of sources and references."""
    from ..tasks.text.seq2seq import Seq2Seq, read_pairs

    try:
        model = Seq2Seq.load(run_dir)
        sources, references = read_pairs(None, csv, source_column, target_column)
        result = model.evaluate(sources, references, beam_size=beam)
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
    else:
        err.print(result)
