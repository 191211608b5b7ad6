"""``lstmkit demo``: the main job on bundled data. Trains an LSTM and a tanh RNN on the adding problem (T=100),
says who solved it, and writes the gradient-flow and gate pictures. Under 5 minutes on 2 cores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import app
from ._console import err, print_json, setup_logging


def _fresh_dir(base: Path) -> Path:
    """``base``, or ``base-1``, ``base-2``... : a demo never overwrites an earlier run."""
    candidate, n = base, 0
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the runs and pictures go (a fresh directory).")] = Path(
        "runs/demo"
    ),
    length: Annotated[int, typer.Option("--length", help="Adding-problem length T.")] = 100,
    max_minutes: Annotated[float, typer.Option("--max-minutes", help="Training budget per model, in minutes.")] = 2.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show what an LSTM is for: it learns the adding problem across a 100-step lag, where a tanh RNN fails."""
    setup_logging()
    import torch

    from ..tasks.long_lag import experiment as long_lag
    from ..viz.plots import plot_gradient_flow

    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = _fresh_dir(out)
    out.mkdir(parents=True)
    summaries, curves = {}, {}
    for cell in ("lstm", "rnn"):
        err.print(f"[bold]training {cell.upper()}[/] on the adding problem, T={length} (budget {max_minutes:g} min)...")
        cfg = long_lag.ExperimentConfig.from_dict({
            "task": "adding", "length": length, "max_sequences": 250_000, "net": {"cell": cell},
            "train": {"max_minutes": max_minutes, "seed": seed, "progress": not as_json},
        })  # fmt: skip
        result = long_lag.run(cfg, out / cell)
        summaries[cell] = result.summary()
        loaded = long_lag.LongLagRun.load(out / cell)
        from ..runs import read_extra_tensors

        extra = read_extra_tensors(out / cell)
        curves[f"{cell} (init)"] = extra["gradient_norms_init"].numpy()
        curves[f"{cell} (trained)"] = extra["gradient_norms_trained"].numpy()
        del loaded
        s = summaries[cell]
        verdict = "[green]SOLVED[/]" if s["solved"] else "[red]not solved[/]"
        err.print(
            f"  {cell.upper()}: {verdict}  test MSE {s['value']:.4f} (baseline {s['baseline']:.3f}, "
            f"threshold {0.1 * s['baseline']:.4f}) after {s['sequences_seen']:,} sequences in {s['seconds']:.0f} s"
        )
    lags = list(range(len(next(iter(curves.values())))))
    picture = plot_gradient_flow(
        __import__("numpy").asarray(lags), curves, out / "gradient_flow.png",
        title=f"adding T={length}: ||dL/dh_t|| against time lag, LSTM vs tanh RNN",
    )  # fmt: skip
    solved = [cell.upper() for cell, s in summaries.items() if s["solved"]]
    err.print(f"\nSolved by: {', '.join(solved) if solved else 'neither'}.")
    err.print(f"Pictures: {picture}, {out / 'lstm' / 'gates.png'}; runs in {out}/lstm and {out}/rnn.")
    if as_json:
        print_json({"out": str(out), "results": summaries, "gradient_flow": str(picture)})
