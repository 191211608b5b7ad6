"""Issue 7's speech figures: character error rate on connected digit strings spoken by espeak-ng voices never heard
in training (bar: at most 10 %), for a bidirectional LSTM with CTC beside a non-recurrent baseline (a frame
classifier: 1-D convolutions over stacked log-mel frames, CTC) and a unidirectional LSTM that streams, all on the
same data set, each decoded greedily, by beam search and by beam search with a character n-gram.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/speech.py     # data ~20 min + three models ~20 min, 1 thread
    OMP_NUM_THREADS=1 .venv/bin/python experiments/speech.py --only conv
    SPEECH_RESUME=1 OMP_NUM_THREADS=1 .venv/bin/python experiments/speech.py --only bilstm   # after an interruption

The data set (``runs/speech-data``, seed 0: 6,000 training, 300 validation and 600 test utterances, 80 % digit
strings of 1-7 digits, 20 % commands) is synthesised first if missing
(``lstmkit.tasks.recognition.speech.data``) and reused
after. Appends to ``experiments/results/speech.jsonl`` and rewrites ``docs/results/speech.md`` from the latest run of
each setup (keeping its notes).
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

from lstmkit.tasks.recognition.speech.config import SpeechConfig
from lstmkit.tasks.recognition.speech.data import HELD_OUT_ACCENT, TEST_VARIANTS, VALIDATION_VARIANTS, make_dataset
from lstmkit.tasks.recognition.speech.run import train_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "speech.jsonl"
DOC = ROOT / "docs" / "results" / "speech.md"
DATA = ROOT / "runs" / "speech-data"
REQUEST = dict(train=6000, validation=300, test=600, seed=0)
COMMON = dict(seed=0, progress=False, batch_size=16, lr=3e-3)
SETUPS = {
    "bilstm": dict(architecture="lstm", bidirectional=True, hidden_size=128, num_layers=2, epochs=8, max_minutes=40),
    "unilstm": dict(architecture="lstm", bidirectional=False, normalisation="running", hidden_size=128, num_layers=2,
                    epochs=12, max_minutes=25),
    "conv": dict(architecture="conv", conv_channels=256, conv_layers=3, conv_kernel=5, epochs=8, max_minutes=15),
}  # fmt: skip
LABELS = {"bilstm": "bidirectional LSTM 2 x 128, CTC", "unilstm": "unidirectional LSTM 2 x 128, CTC (streams)",
          "conv": "baseline: frame classifier, 3 x Conv1d(256, k=5) over stacked frames, CTC"}  # fmt: skip


def run(name: str, threads: int) -> dict:
    t0 = time.perf_counter()
    make_dataset(DATA, **REQUEST, workers=2)
    data_seconds = time.perf_counter() - t0
    out = ROOT / "runs" / f"speech-{name}"
    resume = os.environ.get("SPEECH_RESUME") == "1"  # continue an interrupted run from its last checkpoint
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
    cfg = SpeechConfig.from_dict({**COMMON, **SETUPS[name]})
    t0 = time.perf_counter()
    result = train_run(DATA, cfg, out, beam_size=8, resume=resume)
    row = {"setup": name, "config": cfg.to_dict(), "seconds": round(time.perf_counter() - t0, 1), "threads": threads,
           "resumed": resume,
           "data_seconds": round(data_seconds, 1), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           **result}  # fmt: skip
    with (out / "metrics.csv").open() as f:
        row["epochs_run"] = sum(1 for _ in f) - 1
    import pandas as pd

    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    row["examples"] = table[table["kind"] == "digits"].head(6).to_dict("records")
    print(json.dumps({"setup": name, "seconds": row["seconds"], "greedy": result.get("greedy")}), flush=True)
    return row


def _run_extras(name: str) -> dict:
    """From the run directory: training time summed over all epochs (a resumed run's result.json counts only the
    last fit) and the digit-string CER of each test variant (greedy and beam + n-gram)."""
    import csv

    import pandas as pd

    from lstmkit.tasks.recognition.ctc import cer

    out = ROOT / "runs" / f"speech-{name}"
    extras: dict = {}
    if (out / "metrics.csv").exists():
        with (out / "metrics.csv").open() as f:
            extras["train_minutes"] = sum(float(r["seconds"] or 0) for r in csv.DictReader(f)) / 60
    if (out / "predictions.csv").exists():
        table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
        digits = table[table["kind"] == "digits"].assign(variant=lambda t: t["voice"].str.split("+").str[1])
        lm = next(c for c in table.columns if c.endswith("_lm"))
        extras["variants"] = {v: (cer(list(g["reference"]), list(g["greedy"])), cer(list(g["reference"]),
                              list(g[lm])), len(g)) for v, g in digits.groupby("variant")}  # fmt: skip
    return extras


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def write_doc() -> None:
    latest: dict[str, dict] = {}
    for line in RESULTS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[r["setup"]] = r
    measured = ", ".join(sorted({r["measured"] for r in latest.values()}))
    any_row = next(iter(latest.values()))
    beam = next(k for k in any_row if k.startswith("beam_") and not k.endswith("_lm"))
    lines = [
        "# Speech recognition: connected digits from unseen espeak-ng voices",
        "",
        f"Measured {measured} on {platform.machine()} ({os.cpu_count()} cores, shared with other jobs), torch "
        f"{torch.__version__}.",
        "",
        "```",
        "OMP_NUM_THREADS=1 .venv/bin/python experiments/speech.py                 # data set + the three models",
        "OMP_NUM_THREADS=1 .venv/bin/python experiments/speech.py --only bilstm   # one of them",
        "```",
        "",
        f"Data (`lstmkit speech make-data`, seed 0): {REQUEST['train']:,} training, {REQUEST['validation']} "
        f"validation and {REQUEST['test']} test utterances, 80 % connected digit strings ('three one four', 1-7 "
        "digits), 20 % commands ('stop', 'turn left', 'volume up', ...), spoken by Debian's espeak-ng across its "
        "English accents and voice variants at 110-210 words per minute and pitch 20-80, then degraded by sox: "
        "0.05-0.4 s pauses, reverberation on a third of them, white, pink or brown noise (peak 15-45 dB below the "
        "speech peak), -18..0 dB gain, output at 11.025, 16, 22.05 or 24 kHz, a tenth in stereo.",
        "",
        "**The split is by voice.** Test voices use the variants "
        f"{', '.join(TEST_VARIANTS)}, which no training utterance uses (with any accent); validation uses "
        f"{', '.join(VALIDATION_VARIANTS)} (for choosing the epoch and the n-gram weight only). The accent "
        f"{HELD_OUT_ACCENT} (Caribbean English) is never heard in training; it appears in validation and test.",
        "",
        "Features: 40 log-mel bands (librosa) every 10 ms from 25 ms windows at 16 kHz (resampled with soxr), "
        "3 frames stacked per network step (30 ms). Offline models normalise each band per utterance; the streaming "
        "model normalises with the running mean and variance of the frames so far (a prior of 30 frames of the "
        "training statistics), so its features of a prefix are final. Training: CTC, Adam, cosine schedule, "
        "batch 16, light SpecAugment masks, the epoch with the lowest validation CER kept; stopped by the epoch "
        "count or the time limit, whichever came first. The n-gram is an interpolated Witten-Bell 5-gram over "
        "characters of the training transcripts; its weight and a per-character bonus are chosen on the validation "
        "voices.",
        "",
        f"## Character error rate on connected digit strings from unseen voices ({_n(any_row)} test utterances)",
        "",
        f"| model | parameters | epochs | training | CER greedy | CER beam {beam[5:]} | CER beam + n-gram | WER "
        "greedy | WER beam + n-gram | unseen accent CER (greedy) | commands CER (greedy) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("bilstm", "unilstm", "conv"):
        if name not in latest:
            continue
        r = latest[name]
        g, b, lm = r["greedy"], r[beam], r[f"{beam}_lm"]
        unseen = g.get("digits_unseen_accent", {}).get("cer")
        minutes = _run_extras(name).get("train_minutes", r["train_seconds"] / 60)
        lines.append(
            f"| {LABELS[name]} | {r['parameters']:,} | {r['epochs_run']} | {minutes:.0f} min | "
            f"**{_pct(g['digits']['cer'])}** | {_pct(b['digits']['cer'])} | {_pct(lm['digits']['cer'])} | "
            f"{_pct(g['digits']['wer'])} | {_pct(lm['digits']['wer'])} | "
            f"{_pct(unseen) if unseen is not None else '-'} | {_pct(g['command']['cer'])} |"
        )
    if "unilstm" in latest and "streaming" in latest["unilstm"]:
        s = latest["unilstm"]["streaming"]
        lines += [
            "",
            "## Streaming",
            "",
            f"The unidirectional model fed each test file in {s['chunk_ms']} ms chunks through `SpeechStream` "
            "(`lstmkit speech transcribe RUN file.wav --stream`), partial results after every chunk: digit-string "
            f"CER **{_pct(s['digits']['cer'])}** (WER {_pct(s['digits']['wer'])}), the same text as the offline pass "
            f"for {_pct(s['same_as_offline_greedy'])} of the files, "
            f"{s['seconds_per_audio_second'] * 1000:.0f} ms of compute per second of audio on one thread.",
        ]
    lm_rows = [(n, r["lm_choice"]) for n, r in latest.items() if "lm_choice" in r]
    if lm_rows:
        lines += ["", "n-gram weight and bonus chosen on the validation voices: " + "; ".join(
            f"{n} {c['lm_weight']} / {c['length_bonus']}" for n, c in lm_rows) + "."]  # fmt: skip
    per_variant = {n: _run_extras(n).get("variants") for n in ("bilstm", "unilstm", "conv") if n in latest}
    per_variant = {n: v for n, v in per_variant.items() if v}
    if per_variant:
        names = list(per_variant)
        lines += ["", "## Digit-string CER by test variant (greedy / beam + n-gram)", "",
                  "| variant | utterances | " + " | ".join(LABELS[n].split(",")[0] for n in names) + " |",
                  "|---|---|" + "---|" * len(names)]  # fmt: skip
        for v in sorted(next(iter(per_variant.values())), key=str.lower):
            cells = [
                f"{_pct(per_variant[n][v][0])} / {_pct(per_variant[n][v][1])}" for n in names if v in per_variant[n]
            ]
            lines.append(f"| {v} | {next(iter(per_variant.values()))[v][2]} | " + " | ".join(cells) + " |")
    if "bilstm" in latest:
        lines += ["", "Test digit strings, bidirectional LSTM (greedy / beam + n-gram):", ""]
        for ex in latest["bilstm"].get("examples", []):
            lines.append(f"- `{ex['voice']}` **{ex['reference']}** -> {ex['greedy']} / {ex[f'{beam}_lm']}")
    write_keeping_notes(DOC, lines)


def _n(row: dict) -> int:
    return row["greedy"]["digits"]["n"]


def main() -> None:
    run_setups(__doc__.splitlines()[0], list(SETUPS), run, RESULTS, write_doc, default_threads=1)


if __name__ == "__main__":
    main()
