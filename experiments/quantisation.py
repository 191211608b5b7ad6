"""Issue 6: what int8 and bf16 weights cost in accuracy, next to what they save in time, on the tasks' own test data.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/quantisation.py            # ~5 min on one thread

Every configuration streams the test data through ``lstmkit.Predictor`` one observation per call, as a served
stream would, and is scored against the same test labels:

- GunPoint and ItalyPowerDemand (UCR, published test splits): a SequenceClassifier built to stream (unidirectional
  LSTM 64, pooling "last"; 150 / 100 epochs, seed 0), trained here on the published training split; each test series
  fed one reading at a time, the probabilities after its last reading give the class.
- The character language model of ``experiments/language_model.py`` (``runs/language-model``, trained there): the
  first ``--chars`` characters of its held-out test part, one character per call; nats per character.

Configurations: torch float32 (the reference), onnxruntime float32, onnxruntime int8 (dynamic quantisation of the
weights), torch bf16 (products under autocast). Time is the median microseconds per ``stream`` call over the run.
Writes ``docs/results/quantisation.md`` (keeping its notes) and appends to ``experiments/results/quantisation.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_keeping_notes

from lstmkit import Predictor, SequenceClassifier, datasets, load
from lstmkit.tasks.text.data import load_corpus, split_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "quantisation.jsonl"
DOC = ROOT / "docs" / "results" / "quantisation.md"
CONFIGS = [("torch", "float32"), ("onnxruntime", "float32"), ("onnxruntime", "int8"), ("torch", "bfloat16")]
EPOCHS = {"gunpoint": 150, "italy_power_demand": 100}


def stream_classifier(predictor: Predictor, X: np.ndarray) -> tuple[np.ndarray, float]:
    """Each series through its own stream, one reading per call: (N, K) probabilities after the last, and the median
    seconds per call."""
    probs, times = [], []
    for n, series in enumerate(X):
        for x_t in series:
            t0 = time.perf_counter()
            out = predictor.stream(str(n), x_t)
            times.append(time.perf_counter() - t0)
        probs.append(out)
        predictor.delete(str(n))
    return np.array(probs), float(np.median(times))


def classification(name: str) -> list[dict]:
    X_train, y_train = datasets.load_classification(name, "train")
    X_test, y_test = datasets.load_classification(name, "test")
    clf = SequenceClassifier(hidden_size=64, epochs=EPOCHS[name], batch_size=16, seed=0, progress=False)
    clf.fit(X_train, y_train)
    rows = []
    reference = None
    for runtime, weights in CONFIGS:
        probs, seconds = stream_classifier(Predictor.load(clf, runtime, weights=weights), X_test)
        predicted = clf.classes_[probs.argmax(1)]
        reference = probs if reference is None else reference
        rows.append(
            {
                "task": name,
                "runtime": runtime,
                "weights": weights,
                "metric": "accuracy",
                "value": float(np.mean(predicted == y_test)),
                "us_per_step": seconds * 1e6,
                "max_prob_change": float(np.abs(probs - reference).max()),
                "changed_predictions": int((probs.argmax(1) != reference.argmax(1)).sum()),
                "n": len(y_test),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def language_model(chars: int) -> list[dict]:
    run = ROOT / "runs" / "language-model"
    if not (run / "config.json").exists():
        print(f"skipped the language model: no trained run in {run} (run experiments/language_model.py)")
        return []
    lm = load(run)
    _, _, test = split_text(load_corpus("shakespeare"), lm.config.val_fraction, lm.config.test_fraction)
    text = test[: chars + 1]
    ids = lm.tokenizer.encode(text)
    rows = []
    for runtime, weights in CONFIGS:
        predictor = Predictor.load(lm, runtime, weights=weights)
        nats, times = 0.0, []
        for k in range(len(ids) - 1):
            t0 = time.perf_counter()
            probs = predictor.stream("s", text[k])
            times.append(time.perf_counter() - t0)
            nats -= float(np.log(max(probs[ids[k + 1]], 1e-30)))
        rows.append(
            {
                "task": "shakespeare char LM",
                "runtime": runtime,
                "weights": weights,
                "metric": "nats/char",
                "value": nats / (len(ids) - 1),
                "us_per_step": float(np.median(times)) * 1e6,
                "n": len(ids) - 1,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def write_doc(rows: list[dict], command: str, measured: str, threads: int) -> None:
    lines = [
        "# int8 and bf16 weights: accuracy change next to speed",
        "",
        f"Measured {measured} on {platform.machine()} ({os.cpu_count()} cores, {threads} torch thread(s)), torch "
        f"{torch.__version__}.",
        "",
        "```",
        command,
        "```",
        "",
        "Every row streams the task's test data through `lstmkit.Predictor`, one observation per `stream` call (see "
        "the script's docstring). Time: median microseconds per call, including the Predictor's own work.",
        "",
        "| task | runtime | weights | test metric | change vs torch float32 | predictions changed | us per step |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {r["task"]: r["value"] for r in rows if r["runtime"] == "torch" and r["weights"] == "float32"}
    for r in rows:
        change = r["value"] - base[r["task"]]
        changed = f"{r['changed_predictions']} of {r['n']}" if "changed_predictions" in r else "-"
        lines.append(f"| {r['task']} | {r['runtime']} | {r['weights']} | {r['metric']} {r['value']:.4f} | "
                     f"{change:+.4f} | {changed} | {r['us_per_step']:.0f} |")  # fmt: skip
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=5000, help="test characters streamed through the LM")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = classification("gunpoint") + classification("italy_power_demand") + language_model(args.chars)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        for r in rows:
            f.write(json.dumps({"measured": measured, **r}) + "\n")
    command = "OMP_NUM_THREADS=1 .venv/bin/python experiments/quantisation.py" + (
        f" --chars {args.chars}" if args.chars != 5000 else ""
    )
    write_doc(rows, command, measured, args.threads)


if __name__ == "__main__":
    main()
