"""``lstmkit handwriting make-data | train | recognize | evaluate``: online handwriting recognition (CTC)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..tasks.recognition.handwriting.config import HandwritingConfig
from . import app
from ._console import USER_ERRORS, err, fail, print_json, print_result, setup_logging, user_message
from ._options import AsJson, CoreOptions, Out, Resume, Seed, Verbose, train_options

if TYPE_CHECKING:
    from ..tasks.recognition.handwriting.recognizer import HandwritingRecognizer

handwriting_app = typer.Typer(help="Online handwriting recognition: pen strokes to text (bidirectional LSTM, CTC).",
                              no_args_is_help=True)  # fmt: skip
app.add_typer(handwriting_app, name="handwriting")

Beam = Annotated[int, typer.Option("--beam", help="Beam width (1: greedy, best path).")]
UseLM = Annotated[bool, typer.Option("--lm", help="Beam search with the run's character n-gram (fitted on its "
                                     "training words and any --lm-words).")]  # fmt: skip
LMWeight = Annotated[float | None, typer.Option("--lm-weight", help="With --lm: the n-gram's weight alpha (default: "
                                               "the one the run chose on its validation words).")]  # fmt: skip
LMBonus = Annotated[float | None, typer.Option("--lm-bonus", help="With --lm: the bonus beta per character (default: "
                                              "the run's).")]  # fmt: skip
TrainSamples = Annotated[int, typer.Option("--train-samples", help="Written training words to generate.")]
TestSamples = Annotated[int, typer.Option("--test-samples", help="Written test words per test set.")]


With = Annotated[list[Path] | None, typer.Option("--with", help="Another run directory to read together with "
                                                 "RUN_DIR (repeat it).")]  # fmt: skip
LMRun = Annotated[Path | None, typer.Option("--lm-run", help="With --lm: a character language model run (`lstmkit "
                                            "text train --level char` on words one per line) read in place of the "
                                            "n-gram (see --lm-share); set its weight and bonus with --lm-weight and "
                                            "--lm-bonus (else the n-gram's are used).")]  # fmt: skip
LMShare = Annotated[float | None, typer.Option("--lm-share", help="With --lm-run: the LSTM's share of the "
                                                "next-character probability, the rest the run's n-gram's (default "
                                                "1: the LSTM alone).")]  # fmt: skip
Combine = Annotated[str | None, typer.Option("--combine", help="With --with: 'probs' averages the runs' probabilities "
                                             "per point (the default); 'sequences' lets each run propose readings "
                                             "and all of them score every proposal.")]  # fmt: skip


def _load(run_dir: Path, others: list[Path] | None, combine: str | None = None) -> HandwritingRecognizer:
    """The run's recogniser, or with ``others`` an ensemble of all of them (a HandwritingRecognizer too)."""
    from ..tasks.recognition.handwriting.ensemble import HandwritingEnsemble
    from ..tasks.recognition.handwriting.recognizer import HandwritingRecognizer

    if not others:
        if combine is not None:
            raise ValueError("--combine says how several runs are read together; give the others with --with.")
        return HandwritingRecognizer.load(run_dir)
    return HandwritingEnsemble.load([run_dir, *others], combine=combine or "probs")  # type: ignore[arg-type]


def _lm_args(lm: bool, weight: float | None, bonus: float | None, lm_run: Path | None = None) -> dict:
    """recognize()'s language-model keywords from the options (weight, bonus and --lm-run only mean something with
    --lm)."""
    if not lm and (weight is not None or bonus is not None):
        raise ValueError("--lm-weight and --lm-bonus set how beam search weighs the n-gram; add --lm to use it.")
    if not lm and lm_run is not None:
        raise ValueError("--lm-run gives beam search a character language model; add --lm to use it.")
    return {"use_lm": lm, "alpha": weight, "beta": bonus}


def _char_lm(model: HandwritingRecognizer, lm_run: Path | None, share: float | None) -> None:
    """With ``--lm-run``: beam search with ``--lm`` reads that character language model, alone or mixed with the
    run's n-gram (``--lm-share``)."""
    if lm_run is None and share is not None:
        raise ValueError("--lm-share mixes a character LSTM with the n-gram; give the LSTM with --lm-run.")
    if share is not None and not 0.0 < share <= 1.0:
        raise ValueError(f"--lm-share is the LSTM's part of the next-character probability, above 0 and at most 1; "
                         f"got {share}.")  # fmt: skip
    if share is not None and share < 1.0 and model.lm is None:
        raise ValueError(f"--lm-share {share} mixes the LSTM with the run's n-gram, and this run has none (trained "
                         "with --lm-order 0); drop --lm-share to read with the LSTM alone.")  # fmt: skip
    if lm_run is not None:
        from ..tasks.text.language import LanguageModel

        model.set_char_lm(LanguageModel.load(lm_run), 1.0 if share is None else share)


def _summary(dataset: dict) -> dict:
    return {split: {"samples": len(items), "words": len({s.text for s in items}),
                    "fonts": sorted({s.font for s in items})} for split, items in dataset.items()}  # fmt: skip


@handwriting_app.command("make-data")
def make_data(
    out: Annotated[Path, typer.Option("--out", help="The .npz file to write.")],
    train_samples: TrainSamples = 20000,
    validation_samples: Annotated[int, typer.Option("--validation-samples")] = 500,
    test_samples: TestSamples = 1000,
    test_words: Annotated[int, typer.Option("--test-words", help="Words held out for testing.")] = 1000,
    validation_words: Annotated[int, typer.Option("--validation-words", help="Words held out for validation.")] = 300,
    words: Annotated[Path | None, typer.Option("--words", help="A text file of words, one per line (default: "
                                               "Shakespeare's words used at least 3 times).")] = None,  # fmt: skip
    fonts: Annotated[str | None, typer.Option("--fonts", help="Training fonts, comma-separated Hershey font names "
                                              "(default: scripts and five roman / italic fonts; the recipe of "
                                              "docs/results/handwriting.md adds futuram, rowmant, gothicita)."),
                     ] = None,  # fmt: skip
    distort: Annotated[float, typer.Option("--distort", help="Elastic distortion of training words, in word "
                                           "heights (e.g. 0.05).")] = 0.0,  # fmt: skip
    mix: Annotated[float, typer.Option("--mix", help="Share of training words whose letters are partly borrowed "
                                       "from the other training fonts (e.g. 0.5).")] = 0.0,  # fmt: skip
    loops: Annotated[float, typer.Option("--loops", help="Share of training and validation words whose ascenders "
                                         "and descenders (loops in script fonts) are narrowed toward a plain stroke "
                                         "(e.g. 0.5).")] = 0.0,  # fmt: skip
    seed: Seed = 0,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Write words from the Hershey fonts with random slant, scale, drift, jitter and speed, split by word and font."""
    from ..tasks.recognition.handwriting.data import TRAIN_FONTS, make_dataset, read_words, save_dataset

    try:
        vocabulary = read_words(words) if words is not None else None
        chosen = tuple(f.strip() for f in fonts.split(",") if f.strip()) if fonts is not None else TRAIN_FONTS
        if not chosen:
            raise ValueError(
                "--fonts names no font; give Hershey font names separated by commas, e.g. scripts,futural."
            )
        if distort < 0:
            raise ValueError(f"--distort is a distance in word heights, 0 or more, not {distort}.")
        dataset = make_dataset(train_samples, validation_samples, test_samples, test_words=test_words,
                               validation_words=validation_words, seed=seed, words=vocabulary, fonts=chosen,
                               distort=distort, mix=mix, loops=loops)  # fmt: skip
        save_dataset(out, dataset)
    except USER_ERRORS as e:
        fail(user_message(e))
    summary = _summary(dataset)
    if as_json:
        print_json({"path": str(out), **summary})
    else:
        for split, s in summary.items():
            err.print(f"{split}: {s['samples']} samples, {s['words']} words, fonts {', '.join(s['fonts'])}")
        err.print(f"written to {out}")


_HW = HandwritingConfig()  # the defaults the help shows, declared once in the config


@handwriting_app.command("train")
@train_options(HandwritingConfig)
def train(
    out: Out,
    data: Annotated[Path | None, typer.Option("--data", help="A data set from `handwriting make-data`; "
                                              "without it one is generated (from --seed).")] = None,  # fmt: skip
    train_samples: TrainSamples = 20000,
    test_samples: TestSamples = 1000,
    step: Annotated[float | None, typer.Option("--step", help="Resampling distance in ink heights. "
                                               f"(default {_HW.step})")] = None,  # fmt: skip
    overlap: Annotated[float | None, typer.Option("--overlap", help="Drop strokes that go over earlier ink within "
                                                  "this many ink heights (retraced lines, the extra lines of thick "
                                                  f"strokes); 0 keeps every stroke. (default {_HW.overlap})")
                       ] = None,  # fmt: skip
    beam: Beam = 16,
    lm_words: Annotated[Path | None, typer.Option("--lm-words", help="A word list (one per line, in the alphabet; "
                                                  "each distinct word counts once) the character n-gram also learns "
                                                  "from, besides the training texts.")] = None,  # fmt: skip
    lm_order: Annotated[int | None, typer.Option("--lm-order", help="Order of the character n-gram (0: none). "
                                                 f"(default {_HW.lm_order})")] = None,  # fmt: skip
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on the training fonts; report CER/WER (greedy, beam, beam + n-gram) on held-out words in an unseen font."""
    setup_logging(verbose)
    from ..tasks.recognition.handwriting.data import load_dataset, make_dataset, read_words
    from ..tasks.recognition.handwriting.run import train_run
    from ..train import CheckpointError, ResumeError

    given = {"step": step, "overlap": overlap, "lm_order": lm_order}
    try:
        cfg = core.build(HandwritingConfig, {"progress": not as_json, **{k: v for k, v in given.items()
                                                                         if v is not None}})  # fmt: skip
        if lm_words is not None and cfg.lm_order == 0:
            raise ValueError("--lm-words gives the n-gram more words but --lm-order 0 turns the n-gram off; set "
                             "--lm-order 1 or more, or drop --lm-words.")  # fmt: skip
        extra_words = read_words(lm_words, cfg.alphabet) if lm_words is not None else None
        if data is not None:
            dataset = load_dataset(data)
        else:
            dataset = make_dataset(train_samples, max(1, test_samples // 2), test_samples, seed=cfg.train.seed)
        if not dataset.get("train"):
            raise ValueError(f"The data set has no training samples (splits: {sorted(dataset)}).")
        tests = {k: dataset[k] for k in ("test", "test_seen_font") if k in dataset}
        result = train_run(dataset["train"], dataset.get("validation", []), tests, cfg, out, beam_width=beam,
                           resume=resume, lm_texts=extra_words)  # fmt: skip
    except (*USER_ERRORS, TypeError, ResumeError, CheckpointError) as e:
        fail(user_message(e))
    if as_json:
        tests_out = {name: result[name] for name in ("test", "test_seen_font") if name in result}
        extra = {k: result[k] for k in ("train", "validation", "train_fonts", "best_val_cer", "epochs_run",
                                        "lm_extra_words", "lm_tuning") if k in result}  # fmt: skip
        print_result("handwriting", out, result_metrics(result.get("test", {})), {}, tests=tests_out, **extra)
    elif "test" in result:
        t = result["test"]
        parts = [f"{name} CER {s['cer']:.3f} WER {s['wer']:.3f}" for name, s in t.items() if isinstance(s, dict)]
        err.print(f"unseen words in an unseen font ({', '.join(t['fonts'])}): {'; '.join(parts)}; model in {out}")


def result_metrics(test: dict) -> dict:
    """The headline numbers of a handwriting run: CER and WER on the unseen font's words for each decoding (``cer``
    / ``wer`` greedy, ``cer_beam_16``, ``cer_beam_16_lm``, ...)."""
    out = {}
    for name, s in test.items():
        if isinstance(s, dict):
            suffix = "" if name == "greedy" else f"_{name}"
            out[f"cer{suffix}"], out[f"wer{suffix}"] = s["cer"], s["wer"]
    return out


@handwriting_app.command("recognize")
def recognize(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit handwriting train`.")],
    files: Annotated[list[Path], typer.Argument(help="Strokes as .json or .csv (x, y, pen_up, optional t).")],
    beam: Beam = 1,
    lm: UseLM = False,
    lm_weight: LMWeight = None,
    lm_bonus: LMBonus = None,
    lm_run: LMRun = None,
    lm_share: LMShare = None,
    y_down: Annotated[bool, typer.Option("--y-down", help="The files use screen coordinates (y grows "
                                         "downward).")] = False,  # fmt: skip
    with_runs: With = None,
    combine: Combine = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Read the text written in each strokes file, one line per file."""
    from ..tasks.recognition.handwriting.strokes import read_strokes

    try:
        lm_args = _lm_args(lm, lm_weight, lm_bonus, lm_run)
        model = _load(run_dir, with_runs, combine)
        _char_lm(model, lm_run, lm_share)
        trajectories = []
        for f in files:
            try:
                trajectories.append(read_strokes(f, y_down=y_down))
            except ValueError as e:
                raise ValueError(f"{f}: {e}") from e
        outputs = model.recognize(trajectories, beam_width=beam, **lm_args)
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    if as_json:
        print_json([{"file": str(f), "text": o} for f, o in zip(files, outputs, strict=True)])
    else:
        typer.echo("\n".join(outputs))


@handwriting_app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit handwriting train`.")],
    data: Annotated[Path, typer.Option("--data", help="A data set from `handwriting make-data`.")],
    split: Annotated[str, typer.Option("--split", help="train, validation, test or test_seen_font.")] = "test",
    beam: Beam = 1,
    lm: UseLM = False,
    lm_weight: LMWeight = None,
    lm_bonus: LMBonus = None,
    lm_run: LMRun = None,
    lm_share: LMShare = None,
    with_runs: With = None,
    combine: Combine = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """CER and WER on one split of a data set file."""
    from ..tasks.recognition.handwriting.data import load_dataset

    try:
        lm_args = _lm_args(lm, lm_weight, lm_bonus, lm_run)
        model = _load(run_dir, with_runs, combine)
        _char_lm(model, lm_run, lm_share)
        dataset = load_dataset(data)
        if split not in dataset:
            raise KeyError(f"{data} has no split {split!r}; it has {', '.join(sorted(dataset))}.")
        samples = dataset[split]
        result = model.evaluate([s.points for s in samples], [s.text for s in samples], beam_width=beam, **lm_args)
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
    else:
        err.print(f"{split}: CER {result['cer']:.4f}, WER {result['wer']:.4f} over {result['n']} words")
