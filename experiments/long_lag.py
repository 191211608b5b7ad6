"""Reproduce docs/results/long-lag.md: LSTM vs GRU vs tanh RNN on the long-time-lag tasks.

Each row is one ``lstmkit experiment TASK --cell M --length T`` run with a fixed seed; this script runs
the grid (``--jobs`` processes at a time, one thread each), keeps every JSON summary in
``experiments/results/long_lag.jsonl`` and rewrites the table in ``docs/results/long-lag.md``.

    .venv/bin/python experiments/long_lag.py --jobs 2            # the full grid, about an hour on 2 cores
    .venv/bin/python experiments/long_lag.py --only adding       # one task
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _results import write_keeping_notes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "long_lag.jsonl"
DOC = ROOT / "docs" / "results" / "long-lag.md"

MODELS = ("lstm", "gru", "rnn")
# (task, length, models, extra CLI options). Every model gets the same budget on a task.
GRID: list[tuple[str, int, tuple[str, ...], list[str]]] = [
    ("adding", 50, MODELS, []),
    ("adding", 100, MODELS, []),
    ("adding", 200, MODELS, []),
    ("copy", 100, MODELS, ["--hidden-size", "40", "--lr", "1e-3"]),  # Arjovsky et al.: LSTM 40 units
    ("temporal_order", 100, MODELS, []),
    ("temporal_order", 100, ("lstm",), ["--forget-bias", "5"]),
    ("embedded_reber", 50, MODELS, []),
    ("noise_free_lag", 100, MODELS, []),
    ("noise_free_lag", 100, ("lstm",), ["--forget-bias", "5"]),  # nearer the 1997 cell, which never forgets
    ("adding_1997", 100, MODELS, []),
    ("adding_1997", 100, ("lstm",), ["--forget-bias", "5"]),
]
BUDGET = ["--max-sequences", "400000", "--max-minutes", "5"]

# H&S 1997 (sequences to success, their LSTM), from ../shared/reference/published-results.md section 1.
PAPER = {
    ("adding_1997", 100): "74,000 (1 of 2,560 wrong)",
    ("temporal_order", 100): "31,390 (1 of 2,560 wrong)",
    ("embedded_reber", 50): "8,440–39,740 (100 % of runs at lr .1)",
    ("noise_free_lag", 100): "5,040 (p = 100)",
    ("adding", 100): "Arjovsky 2016: LSTM beats 0.167 up to T = 400; tanh RNN never",
    ("adding", 200): "Arjovsky 2016: LSTM beats 0.167 up to T = 400; tanh RNN never",
    ("copy", 100): "Arjovsky 2016: LSTM beats 10·ln8/(T+20) only at T = 100",
}


def command(task: str, length: int, model: str, extra: list[str], seed: int) -> list[str]:
    return [
        sys.executable, "-m", "lstmkit", "experiment", task, "--cell", model, "--length", str(length),
        "--seed", str(seed), *BUDGET, *extra,
    ]  # fmt: skip


def key(row: dict) -> tuple:
    return (row["task"], row["length"], row["model"], row.get("forget_bias") or 1.0)


def run_one(task: str, length: int, model: str, extra: list[str], seed: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = command(task, length, model, extra, seed)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:  # the run's result.json holds the full summary a row records
        run_dir = Path(tmp) / "run"
        proc = subprocess.run([*cmd, "--out", str(run_dir)], capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        summary = json.loads((run_dir / "result.json").read_text())
    summary["run_dir"] = None
    summary["command"] = "lstmkit " + " ".join(cmd[3:])
    summary["wall_seconds"] = round(time.time() - started, 1)
    print(
        f"{task:15s} T={length:<4d} {model:4s} solved={summary['solved']!s:5s} {summary['metric']}="
        f"{summary['value']:.4g} seen={summary['sequences_seen']:,} {summary['seconds']:.0f}s",
        flush=True,
    )
    return summary


def write_doc(rows: list[dict]) -> None:
    lines = [
        "# Long time lags: LSTM against GRU and tanh RNN",
        "",
        "Each row is one run of the command in its last column (fixed seed 0, one thread, 2-core machine):",
        "training on freshly generated sequences until the task's success criterion holds on a validation batch",
        "of 512, or the budget (400,000 sequences or 5 minutes) is spent; then the criterion is judged on 2,560 fresh",
        "test sequences. Reproduce the whole table with `.venv/bin/python experiments/long_lag.py --jobs 2`.",
        "",
        "Our learner is not the 1997 one (forget gate, Adam, mini-batches of 64, H = 64 unless noted), so sequence",
        "counts are comparable only in order of magnitude. Criteria (from `lstmkit.tasks.long_lag.problems`): adding",
        "test MSE <= 0.1 x 1/6; copy cross-entropy < 0.9 x 10 ln 8 / (T + 20); temporal order and adding_1997 at",
        "most 1 of 2,560 wrong (the paper's abs error thresholds 0.3 / 0.04); embedded Reber every next symbol legal",
        "in every string; noise-free lag max abs error < 0.25.",
        "",
        "| task | T | model | solved | test metric | baseline | sequences to solve | seconds | 1997 / published "
        "| command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        to_solve = f"{r['sequences_to_solve']:,}" if r["sequences_to_solve"] else f"— ({r['sequences_seen']:,} seen)"
        paper = PAPER.get((r["task"], r["length"]), "") if r["model"] == "lstm" else ""
        model = r["model"] + (f" (forget bias {r['forget_bias']:g})" if (r.get("forget_bias") or 1.0) != 1.0 else "")
        lines.append(
            f"| {r['task']} | {r['length']} | {model} | {'yes' if r['solved'] else 'no'} | "
            f"{r['metric']} {r['value']:.4g} | {r['baseline']:.4g} | {to_solve} | {r['seconds']:.0f} | {paper} | "
            f"`{r['command']}` |"
        )
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default=None, help="run only this task")
    parser.add_argument("--model", default=None, help="run only this model")
    parser.add_argument("--forget-bias", type=float, default=None, help="run only rows with this LSTM forget bias")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    def bias_of(extra: list[str]) -> float:
        return float(extra[extra.index("--forget-bias") + 1]) if "--forget-bias" in extra else 1.0

    grid = [
        (t, n, m, e) for t, n, ms, e in GRID for m in ms
        if args.only in (None, t) and args.model in (None, m) and args.forget_bias in (None, bias_of(e))
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda g: run_one(g[0], g[1], g[2], g[3], args.seed), grid))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = []
    if RESULTS.exists():
        new = {key(r) for r in rows}
        previous = [r for r in map(json.loads, RESULTS.read_text().splitlines()) if key(r) not in new]
    everything = previous + rows
    order = {(t, n): i for i, (t, n, _, _) in enumerate(GRID)}
    everything.sort(key=lambda r: (order.get((r["task"], r["length"]), 99), MODELS.index(r["model"]), key(r)[3]))
    RESULTS.write_text("".join(json.dumps(r) + "\n" for r in everything))
    write_doc(everything)


if __name__ == "__main__":
    main()
