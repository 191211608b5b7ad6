"""Shared by the experiment scripts: rewrite a results page's table, keeping the hand-written notes below it."""

from __future__ import annotations

import os
from pathlib import Path


def write_keeping_notes(doc: Path, lines: list[str]) -> None:
    """Write ``lines`` to ``doc``, then the page's existing ``## Notes`` section (or an empty one)."""
    old = doc.read_text() if doc.exists() else ""
    notes = old[old.index("## Notes") :] if "## Notes" in old else "## Notes\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n\n" + notes)
    os.replace(tmp, doc)  # the page is the old one or the new one, never half written


def run_setups(description: str, setups: list[str], run, results: Path, write_doc, default_threads: int = 1) -> None:
    """The command line shared by the experiment scripts that run named setups: ``--only NAME`` and ``--threads N``;
    each setup's row (``run(name, threads)``) is appended to ``results`` (JSON lines) and the page rewritten."""
    import argparse
    import json

    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", choices=sorted(setups))
    parser.add_argument("--threads", type=int, default=default_threads)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in [args.only] if args.only else list(setups):
        row = run(name, args.threads)
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        write_doc()


def lm_seconds_per_step(net, vocab: int, batch_size: int, bptt: int, lr: float, steps: int = 6) -> float:
    """Seconds per training step of a token language model ``net`` (``net(ids, state) -> (logits, state)``, as
    LMNet) with Adam on random tokens, (batch_size, bptt) a batch; the first two steps warm up. The experiments
    size their schedules to a wall-clock budget with it."""
    import time

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr)
    x = torch.randint(0, vocab, (batch_size, bptt))
    state, t0 = None, 0.0
    for i in range(steps):
        if i == 2:
            t0 = time.perf_counter()
        logits, state = net(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, vocab), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / (steps - 2)
