"""Issue 4's number-words bar: English number words to French (num2words), held-out numbers, exact match >= 0.95,
with additive (Bahdanau) and multiplicative (Luong) attention and without attention, beside copying the source.

    .venv/bin/python experiments/translation.py            # ~15 min on 1 thread
    .venv/bin/python experiments/translation.py --only bahdanau

10,000 distinct random numbers below a million (seed 0); a seeded tenth held out (never seen in training: the split
is by number), a tenth of the rest validating. Appends to ``experiments/results/translation.jsonl`` and rewrites
``docs/results/translation.md`` from the latest run of each setup (keeping its notes); the alignment picture of the
Bahdanau run goes to ``docs/results/translation-alignment.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch
from _results import write_keeping_notes

from lstmkit.tasks.seq2seq import Seq2SeqConfig, read_pairs, train_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "translation.jsonl"
DOC = ROOT / "docs" / "results" / "translation.md"
PAIRS = 10000
COMMON = dict(epochs=15, hidden_size=128, embedding_size=64, batch_size=64, lr=2e-3, seed=0, progress=False)
SETUPS = {"bahdanau": dict(attention="bahdanau"), "luong": dict(attention="luong"), "none": dict(attention="none")}


def run(name: str, threads: int) -> dict:
    sources, targets = read_pairs("numbers", None, n=PAIRS, seed=0)
    out = ROOT / "runs" / f"translation-{name}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = Seq2SeqConfig(**COMMON, **SETUPS[name])
    t0 = time.perf_counter()
    result = train_run(sources, targets, cfg, out, holdout=0.1, beam_size=4)
    row = {"setup": name, "config": cfg.to_dict(), "seconds": round(time.perf_counter() - t0, 1), "threads": threads,
           "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **result}  # fmt: skip
    if name == "bahdanau" and (out / "alignment.png").exists():
        shutil.copyfile(out / "alignment.png", DOC.parent / "translation-alignment.png")
    print(json.dumps({"setup": name, "seconds": row["seconds"], "greedy": result["greedy"]}), flush=True)
    return row


def write_doc() -> None:
    latest: dict[str, dict] = {}
    for line in RESULTS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[r["setup"]] = r
    lines = [
        "# Translation: English number words to French, with and without attention",
        "",
        f"Measured {', '.join(sorted({r['measured'] for r in latest.values()}))} on {platform.machine()} "
        f"({os.cpu_count()} cores), torch {torch.__version__}.",
        "",
        "```",
        ".venv/bin/python experiments/translation.py",
        "```",
        "",
        f"{PAIRS:,} distinct random numbers below a million, written out by num2words ('three hundred and "
        "forty-five thousand, six hundred and seventy-eight' -> 'trois cent quarante-cinq mille six cent "
        "soixante-dix-huit'); a seeded tenth held out (numbers never seen in training), a tenth of the rest "
        "validating. Tokens are whitespace-separated words on both sides. Encoder: bidirectional LSTM 128; decoder: "
        f"LSTM 128; {COMMON['epochs']} epochs; scheduled sampling up to 25 %. Exact match is the share of "
        "held-out numbers translated exactly; BLEU and chrF by sacrebleu.",
        "",
        "| attention | held out | exact match (greedy) | exact match (beam 4) | BLEU | chrF | copying the source: BLEU "
        "/ chrF | training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in SETUPS:
        if name not in latest:
            continue
        r = latest[name]
        g, b, c = r["greedy"], r["beam_4"], r["copy_source"]
        lines.append(
            f"| {name} | {r['held_out']:,} | **{g['exact_match']:.4f}** | {b['exact_match']:.4f} | {g['bleu']:.1f} | "
            f"{g['chrf']:.1f} | {c['bleu']:.1f} / {c['chrf']:.1f} | {r['seconds'] / 60:.1f} min, {r['threads']} "
            "thread(s) |"
        )
    lines += ["", "![alignment](translation-alignment.png)"]
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SETUPS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in [args.only] if args.only else list(SETUPS):
        row = run(name, args.threads)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(row) + "\n")
        write_doc()


if __name__ == "__main__":
    main()
