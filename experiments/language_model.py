"""Issue 4's language-model bar: a character LSTM trained on Shakespeare for at most 30 minutes on this machine,
against Witten-Bell n-gram models fitted on the same split in the same run.

    .venv/bin/python experiments/language_model.py                 # ~31 min on 2 cores (30 of them training)
    .venv/bin/python experiments/language_model.py --minutes 2     # a quick look

The corpus is the 42 works of the ``shakespeare`` package (5.06 M characters), split contiguously 90 / 5 / 5 into
train / validation / test. A short timing probe sets ``max_steps`` so that the cosine schedule ends as the time budget
does; ``max_minutes`` stops training at the budget in any case. The held-out figure is the test part read as one
stream with the state carried. Writes the run to ``runs/language-model/``, appends to
``experiments/results/language_model.jsonl`` and rewrites ``docs/results/language-model.md`` (keeping its notes).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from _results import lm_seconds_per_step, write_keeping_notes

from lstmkit.tasks.text.data import CharTokenizer, load_corpus, split_text
from lstmkit.tasks.text.language import LanguageModelConfig, LMNet, train_run
from lstmkit.tasks.text.ngram import WittenBellLM
from lstmkit.viz.plots import plot_learning_curves

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "language_model.jsonl"
DOC = ROOT / "docs" / "results" / "language-model.md"
CURVE = ROOT / "docs" / "results" / "language-model-curve.png"

CONFIG = dict(level="char", hidden_size=512, num_layers=2, embedding_size=128, dropout=0.1, bptt=100, batch_size=64,
              epochs=20, lr=2e-3, schedule="cosine", seed=0)  # fmt: skip


def seconds_per_step(cfg: LanguageModelConfig, vocab: int, steps: int = 6) -> float:
    """Time a few training steps of the same network on random tokens (the first two warm up)."""
    torch.manual_seed(0)  # the network's initial weights, as before the probe moved to _results
    return lm_seconds_per_step(LMNet.build(vocab, cfg.net), vocab, cfg.train.batch_size, cfg.bptt, cfg.train.lr, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = load_corpus("shakespeare")
    train, val, test = split_text(text)
    vocab = CharTokenizer().fit(train).vocab_size
    probe = LanguageModelConfig.from_dict(CONFIG)
    step_s = seconds_per_step(probe, vocab)
    max_steps = int(args.minutes * 60 * 0.97 / step_s)
    cfg = LanguageModelConfig.from_dict(
        {**CONFIG, "max_steps": max_steps, "max_minutes": args.minutes, "progress": False}
    )
    print(f"probe: {step_s:.3f} s/step -> max_steps {max_steps}", flush=True)

    out = ROOT / "runs" / "language-model"
    shutil.rmtree(out, ignore_errors=True)
    result = train_run(text, cfg, out)
    print(json.dumps(result), flush=True)

    tok = CharTokenizer().fit(train)
    train_ids, test_ids = np.asarray(tok.encode(train)), np.asarray(tok.encode(test))
    ngrams = {}
    for order in (3, 5, 7):
        t0 = time.perf_counter()
        nats = WittenBellLM(order, tok.vocab_size).fit(train_ids).nats_per_token(test_ids)
        ngrams[order] = {"nats_per_char": nats, "seconds": round(time.perf_counter() - t0, 1)}
    steps = []
    if (out / "steps.csv").exists():  # a row every 100 steps
        with (out / "steps.csv").open() as f:
            steps = [{"step": float(r["step"]), "train loss (per 100 steps)": float(r["loss"])}
                     for r in csv.DictReader(f)]  # fmt: skip
    with (out / "metrics.csv").open() as f:
        epochs = [{"step": float(r["step"]), "validation": float(r["val_loss"])} for r in csv.DictReader(f)]
    plot_learning_curves(steps + epochs, CURVE, keys=("train loss (per 100 steps)", "validation"),
                         title="Shakespeare, character LSTM 2x512: nats per character")  # fmt: skip
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    trained = sum(float(r["seconds"]) for r in rows)
    chars_per_s = float(np.mean([float(r["items_per_sec"]) for r in rows]))
    record = {
        "measured": started, "config": cfg.to_dict(), "probe_seconds_per_step": step_s, "result": result,
        "ngrams": ngrams, "train_minutes": trained / 60, "chars_per_second": chars_per_s,
        "steps": int(rows[-1]["step"]), "epochs": len(rows), "threads": args.threads,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    write_doc(record, (out / "samples.txt").read_text())


def write_doc(r: dict, samples: str) -> None:
    test = r["result"]["test"]
    cfg = r["config"]
    cfg = {**cfg, **cfg.get("net", {}), **cfg.get("train", {})}  # rows before issue 19 are flat
    lines = [
        "# Language model: a character LSTM on Shakespeare, against n-gram models",
        "",
        f"Measured {r['measured']} on {platform.machine()} ({os.cpu_count()} cores), torch {torch.__version__}, "
        f"{r['threads']} torch thread(s).",
        "",
        "```",
        ".venv/bin/python experiments/language_model.py",
        "```",
        "",
        "Corpus: the 42 works of the `shakespeare` package (5.06 M characters), split contiguously 90 / 5 / 5 "
        "(train / validation / test). Test figures read the test part as one stream with the state carried. The "
        "n-gram models are fitted on the same training part in the same run (interpolated Witten-Bell, "
        "`lstmkit.tasks.text.ngram`).",
        "",
        "| model | test nats / char | test bits / char | training |",
        "|---|---|---|---|",
        f"| LSTM {cfg['num_layers']}x{cfg['hidden_size']}, embedding {cfg['embedding_size']}, dropout {cfg['dropout']}"
        f" ({r['result']['parameters']:,} parameters) | **{test['nats_per_char']:.3f}** | {test['bits_per_char']:.3f}"
        f" | {r['train_minutes']:.1f} min, {r['steps']:,} steps of {cfg['batch_size']}x{cfg['bptt']} chars, "
        f"{r['chars_per_second']:,.0f} chars/s |",
    ]
    for order, ng in r["ngrams"].items():
        lines.append(
            f"| {order}-gram, interpolated Witten-Bell | {ng['nats_per_char']:.3f} | "
            f"{ng['nats_per_char'] / np.log(2):.3f} | counts in {ng['seconds']} s |"
        )
    lines += [
        "",
        "![learning curve](language-model-curve.png)",
        "",
        "Samples (seed 0; the first two start after a line break, the last two continue the first 40 characters of "
        "the test part):",
        "",
        "```",
        samples.strip(),
        "```",
    ]
    write_keeping_notes(DOC, lines)


if __name__ == "__main__":
    main()
