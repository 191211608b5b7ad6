"""Issue 7's music generation: an LSTM over the Bach chorales of music21's corpus, against n-gram models on the same
tokens, and musical statistics of generated pieces against the held-out chorales.

    .venv/bin/python experiments/music.py                  # ~30 min on one core (25 of them training)
    .venv/bin/python experiments/music.py --minutes 2      # a quick look
    .venv/bin/python experiments/music.py --doc-only       # rewrite the page from the last recorded run

The chorales are encoded on a sixteenth-note grid in C major / A minor (``lstmkit.tasks.music.data``); the first run
parses all 371 (two or three minutes) and caches them. Split by chorale, seeded: 80 % train, 10 % validation, 10 %
test. A short timing probe sets ``max_steps`` so that the cosine schedule ends as the time budget does. Writes the
run to ``runs/music/``, appends to ``experiments/results/music.jsonl``, copies the example pieces (piano roll PNG
and MIDI) to ``docs/results/music/`` and rewrites ``docs/results/music.md`` (keeping its notes).
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

from lstmkit.tasks.music.data import (
    compare_statistics,
    corpus_statistics,
    load_chorales,
    split_pieces,
)  # fmt: skip
from lstmkit.tasks.music.model import MusicModel, MusicModelConfig, build_net, ngram_baseline, train_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "music.jsonl"
DOC = ROOT / "docs" / "results" / "music.md"
PICTURES = ROOT / "docs" / "results" / "music"
OUT = ROOT / "runs" / "music"

CONFIG = dict(hidden_size=256, num_layers=2, embedding_size=64, dropout=0.3, bptt=200, batch_size=32, epochs=100,
              lr=2e-3, schedule="cosine", early_stopping_patience=8, seed=0)  # fmt: skip


def seconds_per_step(cfg: MusicModelConfig, vocab: int, steps: int = 6) -> float:
    """Time a few training steps of the same network on random tokens (the first two warm up)."""
    torch.manual_seed(0)  # the network's initial weights, as before the probe moved to _results
    net = build_net(vocab, cfg.net)
    return lm_seconds_per_step(net, vocab, cfg.train.batch_size, cfg.bptt, cfg.train.lr, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="training budget")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--doc-only", action="store_true", help="rewrite the page from the last recorded run")
    args = parser.parse_args()
    if args.doc_only:
        write_doc(json.loads(RESULTS.read_text().splitlines()[-1]))
        return
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.perf_counter()
    pieces = load_chorales()
    load_seconds = time.perf_counter() - t0
    probe = MusicModelConfig.from_dict(CONFIG)
    step_s = seconds_per_step(probe, 150)
    max_steps = int(args.minutes * 60 * 0.9 / step_s)
    cfg = MusicModelConfig.from_dict({**CONFIG, "max_steps": max_steps, "max_minutes": args.minutes, "progress": False})
    print(f"{len(pieces)} chorales in {load_seconds:.0f} s; probe {step_s:.3f} s/step -> max_steps {max_steps}",
          flush=True)  # fmt: skip

    shutil.rmtree(OUT, ignore_errors=True)
    result = train_run(cfg, OUT, pieces)
    print(json.dumps({k: result[k] for k in ("test", "ngram", "train_seconds")}), flush=True)

    # n-gram models of every order on the test chorales (the run's baseline is the one validation picked)
    train, val, test = split_pieces(pieces, cfg.val_fraction, cfg.test_fraction, cfg.train.seed)
    ngrams = {str(k): ngram_baseline(train, val, test, orders=(k,)) for k in range(2, 9)}
    # statistics at a cooler temperature too, with the same seeds
    model = MusicModel.load(OUT)
    cooler = []
    for i, ref in enumerate(test[:40]):
        if ref.metre in model.metres_ and ref.mode in model.modes_:
            key = "C major" if ref.mode == "major" else "A minor"
            cooler.append(model.generate(key, ref.metre, int(min(ref.bars.sum(), 64)), temperature=0.8, seed=i))
    held_out = corpus_statistics(test)
    stats_08 = {"generated": corpus_statistics(cooler),
                "generated_vs_held_out": compare_statistics(corpus_statistics(cooler), held_out)}  # fmt: skip
    with (OUT / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    record = {
        "measured": started, "config": cfg.to_dict(), "probe_seconds_per_step": step_s, "result": result,
        "ngrams_test": ngrams, "statistics_t08": stats_08, "threads": args.threads, "chorales": len(pieces),
        "train_minutes": sum(float(r["seconds"]) for r in rows) / 60, "epochs": len(rows),
        "steps": int(rows[-1]["step"]), "val_loss": [float(r["val_loss"]) for r in rows],
        "tokens_per_second": float(np.mean([float(r["items_per_sec"]) for r in rows])),
        "rounded_notes": sum(p.info.get("rounded_notes", 0) for p in pieces),
        "dropped_notes": sum(p.info.get("dropped_notes", 0) for p in pieces),
        "frames": sum(p.frames for p in pieces),
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    PICTURES.mkdir(parents=True, exist_ok=True)
    for files in result.get("samples", {}).values():
        for kind in ("png", "midi"):
            shutil.copyfile(files[kind], PICTURES / Path(files[kind]).name)
    write_doc(record)


def _hist(values: list[float], labels: list[str]) -> str:
    return ", ".join(f"{label} {100 * v:.1f}" for label, v in zip(labels, values, strict=True))


def write_doc(r: dict) -> None:
    c = MusicModelConfig.from_dict(r["config"])  # a record's config, flat (before sections) or nested
    res, cfg = r["result"], {**c.net.to_dict(), **c.train.to_dict(), "bptt": c.bptt}
    test, ngram, st = res["test"], res["ngram"], res["statistics"]
    gen, gen08 = st["generated_vs_held_out"], r["statistics_t08"]["generated_vs_held_out"]
    floor = st["train_vs_held_out"]
    degrees = ["1", "b2", "2", "b3", "3", "4", "#4", "5", "b6", "6", "b7", "7"]
    durations = ["1/16", "1/8", "3/16", "1/4", "3/8", "1/2", "3/4", "1+"]
    lines = [
        "# Music generation: an LSTM over Bach's chorales, against n-gram models",
        "",
        f"Measured {r['measured']} on {platform.machine()} ({os.cpu_count()} cores, shared), torch "
        f"{torch.__version__}, {r['threads']} torch thread(s).",
        "",
        "```",
        ".venv/bin/python experiments/music.py",
        "```",
        "",
        f"Data: the {r['chorales']} chorales of music21's corpus that have four voices (soprano, alto, tenor, bass; "
        "where a chorale has instrumental parts too, the four named for the voices), split by chorale with a seeded "
        f"shuffle: {res['pieces']['train']} train, {res['pieces']['val']} validation, {res['pieces']['test']} test. "
        "Never split by note: no bar of a test chorale is seen in training.",
        "",
        "Encoding (`lstmkit.tasks.music.data`): every chorale transposed to C major or A minor and read on a "
        "sixteenth-note grid, five tokens per step: a separator (`|` bar line, `.` otherwise, each with a fermata "
        "variant) and soprano, alto, tenor, bass as `on:P` (a note of MIDI pitch P starts), `hold:P` or `rest`; each "
        "chorale begins `<start> <mode> <metre>` and ends `<end>`. 150 tokens in all. A grid rather than note events "
        "because the four voices stay aligned for free and each step holds the whole chord, predicted top voice "
        "first, so the model sees the harmony being built and each voice's line; durations are runs of `hold`. "
        f"The grid loses little: {r['rounded_notes']} notes of the corpus had a start or end off the sixteenth grid "
        f"(rounded) and {r['dropped_notes']} were shorter than a sixteenth (dropped), over {r['frames']:,} steps.",
    ]
    lines += [
        "",
        "## Held-out negative log-likelihood",
        "",
        "Each test chorale is scored on its own from its `<start>` token (the LSTM from a zero state, the n-gram from "
        "the history it has), over the same tokens.",
        "",
        "| model | nats / token | bits / token | nats / sixteenth step |",
        "|---|---|---|---|",
        f"| LSTM {cfg['num_layers']}x{cfg['hidden_size']}, embedding {cfg['embedding_size']}, dropout "
        f"{cfg['dropout']} ({res['parameters']:,} parameters) | **{test['nats_per_token']:.3f}** | "
        f"{test['bits_per_token']:.3f} | {test['nats_per_step']:.3f} |",
        f"| {ngram['order']}-gram, interpolated Witten-Bell (order picked on validation) | "
        f"{ngram['nats_per_token']:.3f} | {ngram['bits_per_token']:.3f} | {ngram['nats_per_step']:.3f} |",
        "",
        f"The LSTM is {abs(100 * (1 - test['nats_per_token'] / ngram['nats_per_token'])):.0f} % "
        f"{'below' if test['nats_per_token'] < ngram['nats_per_token'] else 'above (worse than)'} the best n-gram per "
        "token. N-gram models of every order on the same test chorales (nats / token): "
        + ", ".join(f"{k}-gram {v['nats_per_token']:.3f}" for k, v in r["ngrams_test"].items())
        + ". An order of 6 is the shortest that sees the same voice one step back (a step is five tokens).",
        "",
        f"Training: {r['train_minutes']:.1f} min, {r['epochs']} epochs, {r['steps']:,} steps of {cfg['batch_size']} "
        f"streams x {cfg['bptt']} tokens, {r['tokens_per_second']:,.0f} tokens/s on one thread; truncated BPTT with "
        "the state carried, cosine schedule, Adam at "
        f"{cfg['lr']}; the weights kept are those of the best validation epoch (validation loss by epoch: "
        + ", ".join(f"{v:.3f}" for v in r["val_loss"])
        + ").",
        "",
        "## Musical statistics of generated pieces",
        "",
        f"One piece generated for each of the {st['held_out']['pieces']} test chorales (unprimed, with its mode, "
        "metre and number of bars, seed = its index), compared with the test chorales. The floor is the training "
        "chorales against the same test chorales: how far two sets of real Bach differ. Total-variation distance: 0 "
        "the same, 1 disjoint. In key: the share of notes whose pitch class is in the scale (minor: natural minor "
        "plus the raised 6th and 7th).",
        "",
        "| pieces | pitch-class TV distance | duration TV distance | notes in key | mean note length (16ths) |",
        "|---|---|---|---|---|",
        f"| LSTM samples, temperature 1.0 | {gen['pitch_class_tv']:.3f} | {gen['duration_tv']:.3f} | "
        f"{100 * gen['in_key']:.1f} % | {st['generated']['mean_duration']:.2f} |",
        f"| LSTM samples, temperature 0.8 | {gen08['pitch_class_tv']:.3f} | {gen08['duration_tv']:.3f} | "
        f"{100 * gen08['in_key']:.1f} % | {r['statistics_t08']['generated']['mean_duration']:.2f} |",
        f"| training chorales (the floor) | {floor['pitch_class_tv']:.3f} | {floor['duration_tv']:.3f} | — | — |",
        f"| test chorales | 0 | 0 | {100 * st['held_out']['in_key']:.1f} % | {st['held_out']['mean_duration']:.2f} |",
        "",
        "Pitch classes relative to the tonic, % of notes (test chorales / LSTM at 1.0):",
        "",
        f"- test: {_hist(st['held_out']['pitch_classes'], degrees)}",
        f"- LSTM: {_hist(st['generated']['pitch_classes'], degrees)}",
        "",
        "Note durations, % of notes (a quarter note is 1/4):",
        "",
        f"- test: {_hist(st['held_out']['durations'], durations)}",
        f"- LSTM: {_hist(st['generated']['durations'], durations)}",
        "",
        "## Examples",
        "",
        "Seed 0, temperature 1.0, from the trained run (`runs/music/samples/` also holds the MusicXML):",
        "",
        "- G major, 4/4, 8 bars, unprimed: [MIDI](music/unprimed-major.mid)",
        "",
        "  ![G major](music/unprimed-major.png)",
        "",
        "- D minor, 3/4, 8 bars, unprimed: [MIDI](music/unprimed-minor.mid)",
        "",
        "  ![D minor](music/unprimed-minor.png)",
        "",
        f"- the first two bars of {res['test_pieces'][0]} (a test chorale, never trained on), then 6 bars of the "
        "model's: [MIDI](music/primed.mid)",
        "",
        "  ![primed](music/primed.png)",
        "",
        "The same from the command line:",
        "",
        "```",
        "lstmkit music generate runs/music --out g-major --key 'G major' --metre 4/4 --bars 8 --seed 0",
        f"lstmkit music generate runs/music --out primed --prime {res['test_pieces'][0].split('/')[-1]} "
        "--prime-bars 2 --bars 6 --seed 0",
        "```",
    ]
    write_keeping_notes(DOC, lines)


if __name__ == "__main__":
    main()
