"""``lstmkit speech make-data | train | transcribe``: speech recognition with CTC on espeak-ng voices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..tasks.recognition.speech.config import SpeechConfig
from . import app
from ._console import USER_ERRORS, err, fail, print_json, print_result, setup_logging, user_message
from ._options import AsJson, CoreOptions, Out, Resume, Seed, Verbose, train_options

speech_app = typer.Typer(help="Speech recognition: bidirectional LSTM + CTC, greedy / beam / n-gram decoding, "
                         "streaming.", no_args_is_help=True)  # fmt: skip
app.add_typer(speech_app, name="speech")

RunDir = Annotated[Path, typer.Argument(help="A run directory written by `lstmkit speech train`.")]
Beam = Annotated[int, typer.Option("--beam", help="Beam size (1: greedy).")]
LMWeight = Annotated[float, typer.Option("--lm-weight", help="Weight of the character n-gram in beam search (0: off).")]


@speech_app.command("make-data")
def make_data(
    out: Out,
    train: Annotated[int, typer.Option("--train", help="Training utterances.")] = 6000,
    validation: Annotated[int, typer.Option("--validation", help="Validation utterances (their own voices).")] = 300,
    test: Annotated[int, typer.Option("--test", help="Test utterances (voices never heard in training).")] = 600,
    command_share: Annotated[float, typer.Option("--command-share", help="Share of command words.")] = 0.2,
    max_digits: Annotated[int, typer.Option("--max-digits", help="Longest digit string.")] = 7,
    workers: Annotated[int, typer.Option("--workers", help="Synthesis jobs at once.")] = 2,
    seed: Seed = 0,
    as_json: AsJson = False,
    verbose: Verbose = False,
) -> None:  # fmt: skip
    """Synthesise digit strings and commands with espeak-ng's English voices, add noise and reverberation (sox),
    and write WAVs + manifest.csv, split by voice."""
    setup_logging(verbose)
    from ..tasks.recognition.speech.data import make_dataset, read_manifest

    if not 0 <= command_share <= 1:
        fail(f"--command-share must lie in [0, 1], got {command_share}.")
    try:
        path = make_dataset(out, train=train, validation=validation, test=test, seed=seed,
                            command_share=command_share, max_digits=max_digits, workers=workers)  # fmt: skip
        utts = read_manifest(path)
    except (*USER_ERRORS, RuntimeError) as e:
        fail(user_message(e))
    counts = {s: sum(u.split == s for u in utts) for s in ("train", "validation", "test")}
    voices = {s: len({u.voice for u in utts if u.split == s}) for s in counts}
    if as_json:
        print_json({"data_dir": str(path), "utterances": counts, "voices": voices})
    else:
        err.print(f"{sum(counts.values())} utterances in {path} (train {counts['train']}, validation "
                  f"{counts['validation']}, test {counts['test']}; {voices['test']} test voices never heard in "
                  "training)")  # fmt: skip


@speech_app.command("train")
@train_options(SpeechConfig)
def train(
    data: Annotated[Path, typer.Option("--data", help="A data set written by `lstmkit speech make-data`.")],
    out: Out,
    architecture: Annotated[str | None, typer.Option("--architecture", help="lstm, or conv (the frame-classifier "
                            f"baseline). (default {SpeechConfig().net.architecture})")] = None,  # fmt: skip
    unidirectional: Annotated[bool, typer.Option("--unidirectional", help="A causal LSTM with running "
                                                 "normalisation, which can stream.")] = False,  # fmt: skip
    beam: Beam = 8,
    lm_weight: Annotated[float | None, typer.Option("--lm-weight", help="Weight of the character n-gram in beam "
                                                    "search (default: chosen on the validation voices).")] = None,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on the data set's training voices; report CER and WER on its unseen test voices (greedy, beam, beam +
    character n-gram)."""
    setup_logging(verbose)
    from ..tasks.recognition.speech.run import train_run
    from ..train import CheckpointError, ResumeError

    given: dict = {"progress": not as_json}
    if architecture is not None:
        given["architecture"] = architecture
    if unidirectional:
        given.update(bidirectional=False, normalisation="running")
    try:
        cfg = core.build(SpeechConfig, given)
        result = train_run(data, cfg, out, beam_size=beam, lm_weight=lm_weight, resume=resume)
    except (*USER_ERRORS, TypeError, ResumeError, CheckpointError) as e:
        fail(user_message(e))
    scores = {name: s for name, s in result.items() if isinstance(s, dict) and "all" in s}
    if as_json:
        extra = {k: result[k] for k in ("utterances", "parameters", "train_seconds", "lm_choice") if k in result}
        print_result("speech_recognizer", out, result_metrics(scores), {}, scores=scores, **extra)
    elif "greedy" in result:
        parts = [f"{name}: CER {s['digits']['cer']:.3f}" for name, s in scores.items() if "digits" in s]
        err.print(f"unseen voices, digit strings: {', '.join(parts)}; model in {out}")


def result_metrics(scores: dict) -> dict:
    """The headline numbers of a speech run: CER and WER over all test utterances for each decoding
    (``cer`` / ``wer`` greedy, ``cer_beam_8``, ``cer_beam_8_lm``, ``cer_streaming``, ...)."""
    out = {}
    for name, s in scores.items():
        suffix = "" if name == "greedy" else f"_{name}"
        out[f"cer{suffix}"], out[f"wer{suffix}"] = s["all"]["cer"], s["all"]["wer"]
    return out


@speech_app.command("transcribe")
def transcribe(
    run_dir: RunDir,
    files: Annotated[list[Path], typer.Argument(help="One or more WAV files.")],
    stream: Annotated[bool, typer.Option("--stream", help="Feed the audio in chunks as if it were arriving and "
                                         "print the partial results (a unidirectional model).")] = False,  # fmt: skip
    chunk_ms: Annotated[int, typer.Option("--chunk-ms", help="--stream: milliseconds of audio per chunk.")] = 100,
    beam: Beam = 1,
    lm_weight: LMWeight = 0.0,
    lm_run: Annotated[Path | None, typer.Option("--lm-run", help="A character language model run (lstmkit text "
                                                "train --level char) in place of the n-gram.")] = None,  # fmt: skip
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Print the text of each WAV file, one line each (--stream: the partial results as they change, on stderr)."""
    from ..tasks.recognition.speech.audio import load_audio
    from ..tasks.recognition.speech.recognizer import SpeechRecognizer

    if chunk_ms < 1:
        fail(f"--chunk-ms must be at least 1, got {chunk_ms}.")
    results = []
    try:
        rec = SpeechRecognizer.load(run_dir)
        language_model = None
        if lm_run is not None:
            from ..tasks.text.language import LanguageModel

            language_model = LanguageModel.load(lm_run)
            if lm_weight == 0:
                fail("--lm-run needs --lm-weight above 0 (and --beam above 1) to have an effect.")
        for path in files:
            if not stream:
                text = rec.transcribe(path, beam_size=beam, lm_weight=lm_weight, language_model=language_model)
                results.append({"file": str(path), "text": text})
                continue
            if beam != 1 or lm_weight != 0 or lm_run is not None:
                fail("--stream decodes greedily as the audio arrives; drop --beam, --lm-weight and --lm-run.")
            samples, rate = load_audio(path)
            live = rec.stream(rate)
            step = max(1, rate * chunk_ms // 1000)
            partials, last = [], ""
            for start in range(0, len(samples), step):
                text = live.push(samples[start : start + step])
                if text != last:
                    seconds = round(min(start + step, len(samples)) / rate, 3)
                    partials.append({"seconds": seconds, "text": text})
                    if not as_json:
                        err.print(f"[dim]{seconds:6.2f} s[/] {text}", highlight=False)
                    last = text
            results.append({"file": str(path), "text": live.finish(), "partials": partials})
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    if as_json:
        print_json(results)
    else:
        typer.echo("\n".join(r["text"] for r in results))
