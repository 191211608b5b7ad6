"""Issue 20's language-model bar: the DEFAULT character LSTM (its default time budget, the size it chooses) against
interpolated Kneser-Ney and Witten-Bell 5-grams fitted on the same training part and scored on the same test part,
on every bundled corpus (Shakespeare, the King James Bible).

    .venv/bin/python experiments/language_model.py                        # defaults, seed 0, both corpora (~13 min)
    .venv/bin/python experiments/language_model.py --seeds 0 1 2           # the spread over seeds
    .venv/bin/python experiments/language_model.py --grid                  # the sizing rule's evidence (~25 min)

The default run is ``train_run(text, LanguageModelConfig())``, as ``lstmkit text train --data NAME`` does: the text is
split contiguously 90 / 5 / 5 (train / validation / test); the size is chosen by ``choose_size`` from the timed
steps of each candidate and the 5-minute budget. ``--grid`` trains each of ``SIZES`` by hand for the same budget (its
steps from its own timing) and scores the VALIDATION part (the test part is never read): the size that scores best
there is what ``TOKENS_PER_PARAMETER`` should pick. Appends to ``experiments/results/language_model.jsonl`` and
rewrites the table of ``docs/results/language-model.md`` (keeping its notes).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import time
from pathlib import Path

import torch
from _results import write_keeping_notes

from lstmkit.tasks.text.data import load_corpus, split_text
from lstmkit.tasks.text.language import LanguageModel, LanguageModelConfig, train_run
from lstmkit.tasks.text.lm_size import SIZES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "language_model.jsonl"
DOC = ROOT / "docs" / "results" / "language-model.md"
CORPORA = ("shakespeare", "kjv")


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def record(row: dict) -> None:
    row = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), **row}  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def run_default(corpus: str, seed: int, minutes: float | None = None) -> None:
    out = ROOT / "runs" / (f"language-model-{corpus}-{seed}" + (f"-{minutes:g}min" if minutes else ""))
    shutil.rmtree(out, ignore_errors=True)
    budget = {"max_minutes": minutes} if minutes else {}  # --max-minutes: a longer budget, not the default
    cfg = LanguageModelConfig.from_dict({"seed": seed, "progress": False, **budget})  # the defaults, nothing else
    t0 = time.perf_counter()
    result = train_run(load_corpus(corpus), cfg, out)
    kind = "default" if not minutes else f"budget {minutes:g} min"
    record({"kind": kind, "corpus": corpus, "seed": seed, "wall_seconds": round(time.perf_counter() - t0, 1),
            "result": result})  # fmt: skip


def run_grid(corpus: str, sizes: list[tuple[int, int]], lr: float | None = None) -> None:
    text = load_corpus(corpus)
    _, val, _ = split_text(text)  # validation carved before the test part; the test part is never read
    for units, layers in sizes:
        given = {"hidden_size": units, "num_layers": layers, "progress": False, **({"lr": lr} if lr else {})}
        cfg = LanguageModelConfig.from_dict(given)
        t0 = time.perf_counter()
        lm = LanguageModel(cfg).fit(text)
        seconds = time.perf_counter() - t0
        assert lm.net is not None
        record({"kind": "grid", "corpus": corpus, "units": units, "layers": layers, "fit_seconds": round(seconds, 1),
                "lr": cfg.train.lr, "parameters": sum(p.numel() for p in lm.net.parameters()), "size": lm.sizing_,
                "steps": lm.history_[-1]["step"], "val": lm.evaluate(val)})  # fmt: skip


def write_doc() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    defaults = [r for r in rows if r.get("kind") == "default"]
    defaults.sort(key=lambda r: (r["corpus"], r["seed"]))
    defaults += [r for r in rows if str(r.get("kind")).startswith("budget")]  # longer budgets last: not defaults
    if not defaults:
        return
    last = defaults[-1]
    lines = [
        "# Language model: the default character LSTM against 5-grams, within the default budget",
        "",
        f"Measured {last['measured']} on {last['cpu']} ({platform.machine()}, shared with other jobs), torch "
        f"{last['torch']}, {last['threads']} torch thread(s).",
        "",
        "```",
        ".venv/bin/python experiments/language_model.py [--seeds 0 1 2] [--grid]",
        "lstmkit text train --data shakespeare --out runs/lm      # the same default run from the command line",
        "```",
        "",
        "Each corpus is split contiguously 90 / 5 / 5 (train / validation / test). The LSTM is the default run "
        "(`LanguageModelConfig()`, seed as given): the size chosen by timing the candidates on this machine, the "
        "steps that fit the 5-minute budget. The 5-grams (interpolated modified Kneser-Ney and Witten-Bell, "
        "`lstmkit.tasks.text.ngram`) are fitted on the same training part and scored on the same test part in the "
        "same run. Test figures are nats per character, the test part read as one stream.",
        "",
        "| corpus | seed | budget (min) | size chosen (parameters) | steps | fit s | LSTM test | KN 5-gram | WB 5-gram "
        "| beats both |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in defaults:
        res = r["result"]
        size = res.get("size") or {}
        lines.append(
            f"| {r['corpus']} | {r['seed']} | {res.get('budget_minutes', 5):g}"
            f"{'' if r['kind'] == 'default' else ' (not the default)'} | "
            f"{size.get('num_layers')}x{size.get('hidden_size')} "
            f"({res['parameters']:,}) | {res.get('steps')} | {res['train_seconds']} | "
            f"**{res['test']['nats_per_char']:.3f}** | {res['kneser_ney']['nats_per_char']:.3f} | "
            f"{res['ngram']['nats_per_char']:.3f} | {'yes' if res.get('beats_ngrams') else 'no'} |"
        )
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--grid", action="store_true", help="train each size by hand; score the validation part")
    parser.add_argument("--sizes", nargs="+", default=None, help="for --grid: LAYERSxUNITS, e.g. 1x128 1x256")
    parser.add_argument("--max-minutes", type=float, default=None, help="a budget other than the default")
    parser.add_argument("--lr", type=float, default=None, help="for --grid: a learning rate other than the default")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.grid:
        sizes = [(int(s.split("x")[1]), int(s.split("x")[0])) for s in args.sizes] if args.sizes else list(SIZES[:4])
        for corpus in args.corpus:
            run_grid(corpus, sizes, args.lr)
        return
    for corpus in args.corpus:
        for seed in args.seeds:
            run_default(corpus, seed, args.max_minutes)
            write_doc()


if __name__ == "__main__":
    main()
