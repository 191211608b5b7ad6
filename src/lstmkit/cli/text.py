"""``lstmkit text train | generate | evaluate``: language models on a bundled corpus or your own text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..tasks.text.config import LanguageModelConfig, TextClassifierConfig
from . import app
from ._console import USER_ERRORS, err, fail, print_json, print_result, setup_logging, user_message
from ._options import AsJson, CoreOptions, Out, Resume, Verbose, train_options

_LM, _TC = LanguageModelConfig(), TextClassifierConfig()  # the defaults the help shows, declared in the configs

text_app = typer.Typer(help="Language models and text generation (character, word or BPE level).", no_args_is_help=True)
app.add_typer(text_app, name="text")

Errors = Annotated[
    str, typer.Option("--errors", help="Invalid UTF-8: strict (stop, naming file and byte) or replace (U+FFFD).")
]


@text_app.command(
    "train",
    help=f"Train a language model within a time budget (default {_LM.train.max_minutes:g} minutes, --max-minutes): "
    "unless --hidden-size / --layers are given, the size is chosen from this machine's measured speed and the "
    "corpus size (a size under 512 units then trains at lr 1e-2 unless --lr is given), and the steps fill the "
    "budget. Held-out test measures (the text's last 5%, or --test) beside "
    "Kneser-Ney and Witten-Bell n-gram models fitted on the same training part, samples and a report.",
)
@train_options(LanguageModelConfig)
def train(
    out: Out,
    data: Annotated[str | None, typer.Option("--data", help="A bundled corpus: shakespeare or kjv.")] = None,
    text: Annotated[Path | None, typer.Option("--text", help="A text file, or a folder of *.txt files.")] = None,
    test: Annotated[
        Path | None,
        typer.Option("--test", help="A text file (or folder) to test on; default: the last 5% of the training text."),
    ] = None,
    level: Annotated[str | None, typer.Option("--level", help=f"char, word or bpe (default {_LM.level}).")] = None,
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", help="word / bpe vocabulary size.")] = None,
    embedding_size: Annotated[
        int | None, typer.Option("--embedding-size", help=f"(default {_LM.net.embedding_size})")
    ] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help=f"(default {_LM.net.dropout})")] = None,
    tie_weights: Annotated[bool, typer.Option("--tie-weights", help="Decoder shares the embedding.")] = False,
    bptt: Annotated[
        int | None, typer.Option("--bptt", help=f"Truncated-BPTT length in tokens (default {_LM.bptt}).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after this many updates.")] = None,
    errors: Errors = "strict",
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train a language model (the help is the decorator's: it states the default budget)."""
    setup_logging(verbose)
    from ..tasks.text.data import read_text
    from ..tasks.text.language import resolve_text, train_run
    from ..train import CheckpointError, ResumeError

    given = {"level": level, "vocab_size": vocab_size, "embedding_size": embedding_size, "dropout": dropout,
             "tie_weights": tie_weights or None, "bptt": bptt, "max_steps": max_steps}  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    if as_json:
        given["progress"] = False
    try:  # a diverging run (DivergenceError) is a ValueError: one sentence naming the learning rate
        cfg = core.build(LanguageModelConfig, given)
        corpus = resolve_text(data, text, errors)
        test_text = read_text(test, errors=errors) if test is not None else None  # type: ignore[arg-type]
        result = train_run(corpus, cfg, out, resume=resume, test_text=test_text)
    except (*USER_ERRORS, ResumeError, CheckpointError) as e:
        fail(user_message(e))
    size = result.get("size") or {}
    if as_json:
        metrics = result.get("test", {})
        baselines = {
            f"{row['order']}-gram {name.replace('_', '-')}": {k: row[k] for k in ("nats_per_token", "nats_per_char")}
            for name, row in (("kneser_ney", result.get("kneser_ney")), ("witten_bell", result.get("ngram"))) if row
        }  # fmt: skip
        extra = {k: v for k, v in result.items() if k not in ("run_dir", "test", "ngram", "kneser_ney")}
        print_result("language_model", result["run_dir"], metrics, baselines, **extra)
        return
    if size.get("reason"):
        err.print(f"size {size['num_layers']}x{size['hidden_size']} ({result['parameters']:,} parameters), "
                  f"{result.get('steps')} steps: {size['reason']}")  # fmt: skip
    if "test" in result:
        ngram, kn = result.get("ngram", {}), result.get("kneser_ney", {})
        err.print(
            f"trained in {result['train_seconds']} s; test {result['test']['nats_per_char']:.3f} nats/char "
            f"({result['test']['bits_per_char']:.3f} bits/char)"
            + (f", {kn['order']}-gram Kneser-Ney {kn['nats_per_char']:.3f}" if kn else "")
            + (f", Witten-Bell {ngram['nats_per_char']:.3f}" if ngram else "")
            + f"; model in {result['run_dir']}"
        )
    else:  # no test part to measure (or measuring it failed: the warning was printed)
        err.print(f"trained in {result['train_seconds']} s; model in {result['run_dir']}")


@text_app.command("generate")
def generate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit text train`.")],
    prompt: Annotated[str, typer.Option("--prompt", help="Text to continue (empty: start after a line break).")] = "",
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 200,
    temperature: Annotated[float, typer.Option("--temperature")] = 1.0,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Sample among the k most likely tokens.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Sample from the smallest set of mass p.")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always the most likely token.")] = False,
    beam: Annotated[int, typer.Option("--beam", help="Beam search with this many beams (1: off).")] = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="Repeat a sample exactly.")] = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Continue a prompt, printing tokens as they are produced (state carried: the prefix is never recomputed)."""
    from ..tasks.text.language import LanguageModel

    if beam < 1:
        fail(f"--beam must be at least 1 (1: no beam search), got {beam}.")
    try:
        lm = LanguageModel.load(run_dir)
        if as_json or beam > 1:
            text = lm.generate(prompt, max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                               seed=seed, beam_size=beam)  # fmt: skip
        else:
            pieces = lm.stream(
                prompt, max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, seed=seed
            )  # fmt: skip  (checks the prompt and options before anything is printed)
            sys.stdout.write(prompt)
            for piece in pieces:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            return
    except USER_ERRORS as e:
        fail(user_message(e))
    if as_json:
        print_json({"prompt": prompt, "text": text})
    else:
        typer.echo(prompt + text)


@text_app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit text train`.")],
    text: Annotated[Path, typer.Option("--text", help="A text file or folder to score.")],
    errors: Errors = "strict",
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Score a text: nats and bits per character, perplexity, unknown tokens."""
    from ..tasks.text.data import read_text
    from ..tasks.text.language import LanguageModel

    try:
        lm = LanguageModel.load(run_dir)
        result = lm.evaluate(read_text(text, errors=errors))  # type: ignore[arg-type]
    except USER_ERRORS as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
    else:
        err.print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})


classify_app = typer.Typer(
    help="Classify texts (sentiment and others) with a bidirectional LSTM.", no_args_is_help=True
)
text_app.add_typer(classify_app, name="classify")
TextColumn = Annotated[str, typer.Option("--text-column", help="The CSV column holding the texts.")]
LabelColumn = Annotated[str, typer.Option("--label-column", help="The CSV column holding the labels.")]


@classify_app.command("train")
@train_options(TextClassifierConfig)
def classify_train(
    out: Out,
    data: Annotated[str | None, typer.Option("--data", help="A bundled set: imdb or rotten_tomatoes.")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="A CSV file with a text and a label column.")] = None,
    text_column: TextColumn = "text", label_column: LabelColumn = "label",
    holdout: Annotated[float, typer.Option("--holdout", help="Share held out for the test figures.")] = 0.2,
    pooling: Annotated[
        str | None, typer.Option("--pooling", help=f"max, mean, attention or last (default {_TC.net.pooling}).")
    ] = None,
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", help=f"(default {_TC.vocab_size})")] = None,
    max_length: Annotated[
        int | None, typer.Option("--max-length", help=f"Tokens read per text (default {_TC.max_length}).")
    ] = None,
    embedding_size: Annotated[
        int | None, typer.Option("--embedding-size", help=f"(default {_TC.net.embedding_size})")
    ] = None,
    class_weight: Annotated[str | None, typer.Option("--class-weight", help="balanced, for imbalanced labels.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Bag-of-words baseline too.")] = True,
    resume: Resume = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    core: CoreOptions,
) -> None:  # fmt: skip
    """Train on all but a held-out share; report its accuracy beside a bag-of-words logistic regression. By default
    the LSTM and the bag of words are averaged with the weight that scores best on validation texts carved from the
    training share (--set bag_of_words=never: the LSTM alone)."""
    setup_logging(verbose)
    from ..tasks.text.classification import check_held_out_classes, read_labelled, train_run
    from ..train import CheckpointError

    if pooling not in (None, "max", "mean", "attention", "last"):
        fail(f"Unknown pooling {pooling!r}; choose max, mean, attention or last.")
    if class_weight not in (None, "balanced"):
        fail(f"--class-weight takes 'balanced' (or nothing), got {class_weight!r}.")
    if not 0 < holdout < 1:
        fail(f"--holdout must lie between 0 and 1, got {holdout}.")
    given = {"pooling": pooling, "vocab_size": vocab_size, "max_length": max_length, "embedding_size": embedding_size,
             "class_weight": class_weight}  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    if as_json:
        given["progress"] = False
    try:
        cfg = core.build(TextClassifierConfig, given)
        texts, labels = read_labelled(data, csv, text_column, label_column)
        check_held_out_classes(labels, holdout, cfg.train.seed)  # before training: held-out figures follow the save
        result = train_run(texts, labels, out, holdout=holdout, baseline=baseline, resume=resume, config=cfg)
    except (*USER_ERRORS, CheckpointError) as e:
        fail(user_message(e))
    if as_json:
        base = result.get("baseline")
        baselines = {"bag_of_words": base} if base else {}
        extra = {k: v for k, v in result.items() if k not in ("run_dir", "test", "baseline")}
        print_result("text_classifier", result["run_dir"], result.get("test", {}), baselines, **extra)
    elif "test" in result:
        base, chosen = result.get("baseline"), result["ensemble"]
        if "validation" in chosen:
            v = chosen["validation"]
            err.print(f"validation accuracy: LSTM {v['lstm']['accuracy']:.4f}, bag of words "
                      f"{v['bag_of_words']['accuracy']:.4f}; kept {chosen['choice']} (LSTM weight "
                      f"{chosen['weight_lstm']:g}): {v['chosen']['accuracy']:.4f}")  # fmt: skip
        err.print(f"held-out accuracy {result['test']['accuracy']:.4f}"
                  + (f" (bag of words: {base['accuracy']:.4f})" if base else "") + f"; model in {out}")  # fmt: skip


@classify_app.command("predict")
def classify_predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit text classify train`.")],
    csv: Annotated[Path, typer.Option("--csv", help="A CSV file with a text column.")],
    text_column: TextColumn = "text",
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Predict a label (and its probability) for each text of a CSV file."""
    import pandas as pd

    from ..data.tables import cap, read_csv, shown, shown_list
    from ..tasks.text.classification import TextClassifier

    try:
        clf = TextClassifier.load(run_dir)
        df = read_csv(csv)  # a header alone, an empty or unreadable file: one sentence, as training says it
        if text_column not in df.columns:
            raise ValueError(
                f"Unknown column {shown(text_column)}; {cap(csv.name)} has {shown_list(df.columns)}. Name the text "
                "column with --text-column."
            )
        texts = df[text_column].fillna("").astype(str).tolist()
        proba = clf.predict_proba(texts)
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    labels = clf.classes_[proba.argmax(1)].tolist()  # type: ignore[index]
    rows = [{"label": lab, "probability": float(p.max())} for lab, p in zip(labels, proba, strict=True)]
    if as_json:
        print_json(rows)
    else:
        typer.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)


@classify_app.command("evaluate")
def classify_evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lstmkit text classify train`.")],
    csv: Annotated[Path, typer.Option("--csv", help="A CSV file with a text and a label column.")],
    text_column: TextColumn = "text", label_column: LabelColumn = "label",
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Accuracy, macro-F1 and the confusion matrix on a labelled CSV file."""
    from ..tasks.text.classification import TextClassifier, read_labelled

    try:
        clf = TextClassifier.load(run_dir)
        texts, labels = read_labelled(None, csv, text_column, label_column)
        result = clf.evaluate(texts, labels)
    except (*USER_ERRORS, TypeError) as e:
        fail(user_message(e))
    if as_json:
        print_json(result)
    else:
        err.print(result)
