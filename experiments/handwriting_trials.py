"""Trials behind docs/results/handwriting.md's notes (items 7, 8, 11, 13 and 17), on the stand-in fonts only.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-order          # seconds
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py views --seed 0    # ~4 min; needs the run of
    #   experiments/handwriting.py --setup mixed --proxy [--seed 1]
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py epochs --seed 0   # ~3 min; the same run
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-words --seed 0   # ~4 min; the same run
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-weights --seed 0 # ~9 min; the same run
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-weights --seed 0 --alphas 0.5 1 2 \
        --betas 3 4                                                                      # the grid's upper edge
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-weights --seed 0 --alphas 1 2 \
        --betas 5 6 --lms words                                                          # and beyond it
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-lstm   # ~25 min the first time (training)
    OMP_NUM_THREADS=1 .venv/bin/python experiments/handwriting_trials.py lm-weights --seed 0 --alphas 0.5 1 1.5 2 \
        --betas 3 4 5 6 --lms lstm                  # ~12 min; the character LSTM mixed with the word-list n-gram

``lm-order``: bits per character of Witten-Bell n-grams of orders 2-8, fitted on 20,000 uniform draws of the training
words, on the 300 validation words (the order beam search uses is chosen this way, never on test words).

``views``: each of the first 400 held-out words in the stand-in fonts read as written, slanted by -10 / +10 degrees
and narrowed / widened by 15 %; each view decoded alone (beam 16 + the run's n-gram), and groups of views decoded
together by rescoring all their beams with every view (:func:`lstmkit.tasks.recognition.ctc.rescore`).

``epochs``: the same run's weights after epoch 4 (its checkpoint) and the weights it kept (the epoch with the lowest
validation CER in the training fonts), each reading the first 400 stand-in words with beam 16 and the run's n-gram:
does the best epoch for the training fonts come after the best for new fonts?

``lm-words``: the run read with an n-gram refitted on its training words plus English words from two bundled corpora
(King James Bible, movie reviews), its order by bits per character on the validation words, its weight and bonus
tuned on validation words in the training fonts as train_run does.

``lm-lstm``: character LSTMs on lm-words' word list, scored by bits per character on the validation words alone and
mixed with lm-words' n-gram at shares 0.3 / 0.5 / 0.7 (how ``--lm lstm``'s model and share were chosen).

``lm-weights``: the first 300 held-out words in each stand-in font read with beam 16 and either n-gram (the run's own,
or lm-words'), or the character LSTM of ``experiments/handwriting.py``'s ``word_lstm`` mixed half and half with
lm-words' n-gram, at each weight alpha and bonus beta of a grid: the weighting for fonts the network never saw.

Each trial appends one JSON line to ``experiments/results/handwriting_trials.jsonl``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from handwriting import (
    DATA,
    WORD_LSTM_SHARE,
    bits_per_char,
    datasets,
    external_words,
    lm_ids,
    run_dir,
    word_lm,
    word_lstm,
)

from lstmkit.tasks.recognition import ctc
from lstmkit.tasks.recognition.handwriting.data import split_words, word_list
from lstmkit.tasks.recognition.handwriting.recognizer import HandwritingRecognizer
from lstmkit.tasks.text.ngram import WittenBellLM
from lstmkit.train import checkpoint as ckpt

RESULTS = Path(__file__).resolve().parent / "results" / "handwriting_trials.jsonl"
ALPHABET = ctc.Alphabet("abcdefghijklmnopqrstuvwxyz")


def lm_order(orders: range = range(2, 9)) -> dict:
    train, validation, _ = split_words(word_list(), DATA["test_words"], DATA["validation_words"], DATA["seed"])
    draws = [train[i] for i in np.random.default_rng(0).integers(len(train), size=DATA["n_train"])]
    bits = {order: round(bits_per_char(draws, order, validation), 4) for order in orders}
    return {"trial": "lm-order", "bits_per_char_on_validation_words": bits}


def _shear(degrees: float) -> Callable[[np.ndarray], np.ndarray]:
    def view(points: np.ndarray) -> np.ndarray:
        out = points.copy()
        out[:, 0] += math.tan(math.radians(degrees)) * out[:, 1]
        return out

    return view


def _widen(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def view(points: np.ndarray) -> np.ndarray:
        out = points.copy()
        out[:, 0] *= factor
        return out

    return view


VIEWS = {"as written": lambda p: p, "slant -10": _shear(-10), "slant +10": _shear(10),
         "narrow 0.85": _widen(0.85), "wide 1.15": _widen(1.15)}  # fmt: skip
GROUPS = (("as written", "slant -10", "slant +10"), ("as written", "narrow 0.85", "wide 1.15"), tuple(VIEWS))


def views(seed: int, n: int = 400, beam: int = 16) -> dict:
    model = HandwritingRecognizer.load(run_dir("mixed", seed, proxy=True))
    _, tests = datasets("mixed", proxy=True, n_train=0)
    hook, alpha, beta = ctc.ngram_hook(model.lm), model.lm_alpha, model.lm_beta
    row: dict = {"trial": "views", "run": run_dir("mixed", seed, proxy=True).name, "words": n, "beam": beam}
    for name in ("proxy_italic", "proxy_calligraphic"):
        samples = tests[name][:n]
        texts = [s.text for s in samples]
        lps = {v: model.log_probs([f(s.points) for s in samples]) for v, f in VIEWS.items()}
        beams = {v: [ctc.beam_search(lp, beam, lm=hook, alpha=alpha, beta=beta, return_beams=True) for lp in lps[v]]
                 for v in VIEWS}  # fmt: skip
        cer = {v: ctc.cer(texts, [model.alphabet.decode(b[0][0]) for b in beams[v]]) for v in VIEWS}
        for group in GROUPS:
            outputs = []
            for i in range(len(samples)):
                proposals = [labels for v in group for labels, _ in beams[v][i]]
                best = ctc.rescore([lps[v][i] for v in group], proposals, lm=hook, alpha=alpha, beta=beta)[0][0]
                outputs.append(model.alphabet.decode(best))
            cer[" + ".join(group)] = ctc.cer(texts, outputs)
        row[name] = {"fonts": sorted({s.font for s in samples}), "cer": {k: round(v, 4) for k, v in cer.items()}}
    return row


def epochs(seed: int, n: int = 400, beam: int = 16) -> dict:
    run = run_dir("mixed", seed, proxy=True)
    kept = HandwritingRecognizer.load(run)
    earlier = HandwritingRecognizer.load(run)
    checkpoint = run / ckpt.CHECKPOINT_DIR / "step-00005000-end"  # epoch 4 of 5 (1,250 steps an epoch)
    weights, _, _ = ckpt.read_checkpoint(checkpoint)
    earlier._check().load_state_dict(weights)
    history = ckpt.read_checkpoint(ckpt.latest_checkpoint(run))[2]["history"]  # every epoch's validation CER
    _, tests = datasets("mixed", proxy=True, n_train=0)
    row: dict = {"trial": "epochs", "run": run.name, "words": n, "beam": beam,
                 "kept_epoch": min(history, key=lambda h: h["val_cer"])["epoch"],
                 "validation_cer": {h["epoch"]: round(h["val_cer"], 4) for h in history}}  # fmt: skip
    for name in ("proxy_italic", "proxy_calligraphic"):
        samples = tests[name][:n]
        points, texts = [s.points for s in samples], [s.text for s in samples]
        row[name] = {
            label: round(model.evaluate(points, texts, beam_width=beam, use_lm=True)["cer"], 4)
            for label, model in (("epoch 4", earlier), ("kept", kept))
        }
    return row


def lm_words(seed: int, beam: int = 16) -> dict:
    """The mixed run of ``seed`` read with an n-gram fitted on its training words plus :func:`external_words`, its
    order chosen by bits per character on the validation words and its weight and bonus on 200 validation samples
    (training fonts), as train_run does; then the stand-in test sets with beam search and the new n-gram."""
    train, validation, test = split_words(word_list(), DATA["test_words"], DATA["validation_words"], DATA["seed"])
    extra = external_words()
    words, order, bits = word_lm()
    run = run_dir("mixed", seed, proxy=True)
    model = HandwritingRecognizer.load(run)
    old = (model.config.lm_order, model.lm_alpha, model.lm_beta)
    data, tests = datasets("mixed", proxy=True, n_train=0)
    model.fit_lm(words, order)
    val = data["validation"][:200]
    tuning = model.tune_lm([s.points for s in val], [s.text for s in val], beam_width=8)
    row: dict = {"trial": "lm-words", "run": run.name, "proxy": True, "beam": beam,
                 "words": {"training": len(train), "external": len(extra), "together": len(words),
                           "test_words_in_list": round(float(np.mean([w in set(words) for w in test])), 4),
                           "validation_words_in_list": round(float(np.mean([w in set(words) for w in validation])), 4)},
                 "bits_per_char_on_validation_words": bits, "order": order, "tuning": tuning,
                 "old_lm": dict(zip(("order", "alpha", "beta"), old, strict=True))}  # fmt: skip
    for name, samples in tests.items():
        points, texts = [s.points for s in samples], [s.text for s in samples]
        scores = model.evaluate(points, texts, beam_width=beam, use_lm=True)
        row[name] = {"fonts": sorted({s.font for s in samples}), "cer": round(scores["cer"], 4),
                     "wer": round(scores["wer"], 4), "n": scores["n"]}  # fmt: skip
    return row


def lm_lstm(specs: tuple[tuple[int, int, int], ...] = ((256, 4, 10), (512, 4, 4)),
            shares: tuple[float, ...] = (0.3, 0.5, 0.7)) -> dict:  # fmt: skip
    """Bits per character on the validation words of character LSTMs on the word list (``word_lstm(hidden_size,
    shuffles, epochs)``, trained if not in ``runs/``), alone and mixed with the word-list n-gram at each ``share``
    (the LSTM's part of the probability): how ``--lm lstm``'s model and share were chosen."""
    words, order, ngram_bits = word_lm()
    _, validation, _ = split_words(word_list(), DATA["test_words"], DATA["validation_words"], DATA["seed"])
    lm = WittenBellLM(order, ALPHABET.num_classes).fit(lm_ids(words))
    padded = np.concatenate([np.zeros(order - 1, dtype=np.int64), lm_ids(validation)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, order)[1:]  # (N - 1, order)
    ngram = lm.log_probs(windows.reshape(-1)).reshape(-1, order)[:, -1]  # (N - 1,) natural log
    row: dict = {"trial": "lm-lstm", "ngram_order": order, "ngram_bits": round(ngram_bits[order], 4), "lstms": {}}
    for hidden, shuffles, epochs in specs:
        model, bits, minutes = word_lstm(hidden, shuffles, epochs)
        net, tok = model._check()
        ids = torch.as_tensor(tok.encode("\n" + "\n".join(validation) + "\n"))  # the same symbols as the n-gram's
        with torch.no_grad():
            logits, _ = net(ids[None, :-1])  # (1, N - 1, V)
        lstm = torch.log_softmax(logits[0].double(), dim=-1)[torch.arange(len(ids) - 1), ids[1:]].numpy()  # (N - 1,)
        mix = {w: np.logaddexp(math.log(w) + lstm, math.log(1 - w) + ngram) for w in shares}  # (N - 1,) each
        mixed = {f"{w:g}": round(float(-m.mean() / math.log(2)), 4) for w, m in mix.items()}
        row["lstms"][f"{hidden}-s{shuffles}-e{epochs}"] = {"alone": round(bits, 4), "mixed": mixed,
                                                           "train_minutes": round(minutes, 1)}  # fmt: skip
    return row


ALPHAS, BETAS = (0.25, 0.5, 1.0, 2.0), (0.0, 1.0, 2.0)


def lm_weights(seed: int, n: int = 300, beam: int = 16, alphas: tuple[float, ...] = ALPHAS,
               betas: tuple[float, ...] = BETAS, lm_names: tuple[str, ...] = ("own", "words")) -> dict:  # fmt: skip
    """The stand-in run of ``seed`` reading the first ``n`` held-out words in each stand-in font with beam search and
    each of two n-grams (its own, fitted on its training texts; and :func:`lm_words`' n-gram on the training words
    plus :func:`external_words`) at every weight ``alpha`` and bonus ``beta`` of a grid: how the language model
    should be weighted on a font the network never saw (train_run tunes it on validation words in the training
    fonts, which the network reads almost perfectly, so that choice says little about new fonts)."""
    words, order, _ = word_lm()
    run = run_dir("mixed", seed, proxy=True)
    model = HandwritingRecognizer.load(run)
    lms: dict = {"own": model.lm, "words": WittenBellLM(order, ALPHABET.num_classes).fit(lm_ids(words))}
    lms_words = lms["words"]
    if "lstm" in lm_names:
        lms["lstm"] = word_lstm()[0]
    lms = {k: v for k, v in lms.items() if k in lm_names}
    _, tests = datasets("mixed", proxy=True, n_train=0)
    row: dict = {"trial": "lm-weights", "run": run.name, "words": n, "beam": beam, "order_words": order,
                 "tuned_on_validation": {"alpha": model.lm_alpha, "beta": model.lm_beta},
                 "alphas": list(alphas), "betas": list(betas), "lms": list(lms), "cer": {}}  # fmt: skip
    for name in ("proxy_italic", "proxy_calligraphic"):
        samples = tests[name][:n]
        texts, lps = [s.text for s in samples], model.log_probs([s.points for s in samples])
        for lm_name, lm in lms.items():
            # one hook per font and model: the LSTM's prefix states are cached across the grid
            if lm_name == "lstm":  # mixed with the word-list n-gram, as experiments/handwriting.py --lm lstm reads
                lstm = ctc.char_lm_hook(lm, ALPHABET, end="\n")
                hook = ctc.mix_hooks([lstm, ctc.ngram_hook(lms_words)], [WORD_LSTM_SHARE, 1 - WORD_LSTM_SHARE])
            else:
                hook = ctc.ngram_hook(lm)
            for alpha in alphas:
                for beta in betas:
                    outputs = [model.alphabet.decode(ctc.beam_search(lp, beam, lm=hook, alpha=alpha, beta=beta))
                               for lp in lps]  # fmt: skip
                    key = f"{lm_name} a={alpha} b={beta}"
                    row["cer"].setdefault(key, {})[name] = round(ctc.cer(texts, outputs), 4)
    return row


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trial", choices=("lm-order", "views", "epochs", "lm-words", "lm-weights", "lm-lstm"))
    parser.add_argument("--seed", type=int, default=0, help="The network seed of the stand-in run to read.")
    parser.add_argument("--alphas", type=float, nargs="+", default=ALPHAS, help="lm-weights: the n-gram weights.")
    parser.add_argument("--betas", type=float, nargs="+", default=BETAS, help="lm-weights: the bonuses per character.")
    parser.add_argument(
        "--lms",
        nargs="+",
        default=("own", "words"),
        choices=("own", "words", "lstm"),
        help="lm-weights: the language models (own, words: n-grams; lstm: experiments/handwriting.py's word_lstm).",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if args.trial == "lm-words":
        row = lm_words(args.seed)
    elif args.trial == "lm-weights":
        row = lm_weights(args.seed, alphas=tuple(args.alphas), betas=tuple(args.betas), lm_names=tuple(args.lms))
    elif args.trial == "lm-order":
        row = lm_order()
    elif args.trial == "lm-lstm":
        row = lm_lstm()
    else:
        row = views(args.seed) if args.trial == "views" else epochs(args.seed)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
