"""The size and the steps of a language model from its time budget, this machine's speed and the corpus (issue 20).

A default 2x512 character LSTM trained 8 minutes on a few-MB corpus saw under one pass of it and lost to a 5-gram.
:func:`choose_size` times a few training steps of each of :data:`SIZES` (smallest first) and keeps the largest that,
within the budget, trains on at least :data:`TOKENS_PER_PARAMETER` tokens per parameter and has at most
:data:`PARAMETERS_PER_TOKEN` parameters per training token (char-rnn's rule of thumb: the two of the same order).
The steps that fit the budget become ``max_steps``, so the cosine schedule ends as the budget does.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .config import LanguageModelConfig, LanguageModelNet

__all__ = [
    "BY_HAND", "PARAMETERS_PER_TOKEN", "SIZES", "SMALL_MODEL_LR", "STEP_SHARE", "TOKENS_PER_PARAMETER", "SizeChoice",
    "StepSeconds", "choose_size", "chosen_lr", "measure_step_seconds", "n_parameters", "saved_choice",
]  # fmt: skip

SIZES: tuple[tuple[int, int], ...] = ((128, 1), (256, 1), (256, 2), (512, 1), (512, 2))
"""The (units, layers) :func:`choose_size` picks from, smallest first (parameters and step time grow along it)."""
TOKENS_PER_PARAMETER = 5.0
"""The least training tokens per parameter a chosen size must reach within the budget. On the validation parts of
both bundled corpora (5-minute runs), 1x256 at 1.5 tokens per parameter scored worse than 1x128 at 10, and 1x256 at
5.2 better than 1x128 at 15.6: the threshold lies between (docs/results/language-model.md; loosely bracketed)."""
PARAMETERS_PER_TOKEN = 1.0
"""The most parameters per training token: char-rnn's rule of thumb that the two be of the same order."""
BY_HAND = {"hidden_size": 512, "num_layers": 2}
"""The size of the one of hidden_size / num_layers that is not given when the other is (the defaults before 0.4)."""
SMALL_MODEL_LR = 1e-2
"""The learning rate a chosen size under 512 units trains with when ``lr`` is left at its default: on the validation
parts of both bundled corpora, a 1x128 model trained the default 5 minutes scored 1.89 / 1.63 nats per character with
it against 2.31 / 2.12 with 2e-3 (with more steps too: the load had dropped). 512 units keep the default 2e-3 (the
recorded 30-minute 2x512 run); 1e-2 is untested there."""
PROBE_STEPS = 4  # timed training steps per candidate size, after one warm-up step
STEP_SHARE = 0.85  # of the budget left after the probe, given to steps (validation and the rest take the remainder)

StepSeconds = Callable[[LanguageModelNet], float]
"""Seconds per training step of a network config (the sizing's speed measurement; tests inject a fixed one)."""


def measure_step_seconds(
    vocab_size: int, net: LanguageModelNet, batch_size: int, bptt: int, lr: float, device: torch.device,
    steps: int = PROBE_STEPS,
) -> float:  # fmt: skip
    """Seconds per training step (forward, backward, Adam) of a throwaway network on random tokens: one warm-up
    step, then the mean of ``steps``. Seeds torch's global generator (``fit`` seeds it again afterwards)."""
    from .language import LMNet

    torch.manual_seed(0)
    model = LMNet.build(vocab_size, net).to(device)
    opt = torch.optim.Adam(model.parameters(), lr)
    x = torch.randint(0, vocab_size, (batch_size, bptt), device=device)
    state, t0 = None, 0.0
    for i in range(steps + 1):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps


def n_parameters(vocab_size: int, net: LanguageModelNet) -> int:
    """Parameters of the network ``net`` describes (embedding, LSTM, decoder; a tied decoder counted once)."""
    E, H, L, P, V = net.embedding_size, net.hidden_size or 0, net.num_layers or 0, net.proj_size, vocab_size
    out = P or H
    per_gate = 4 * H
    lstm = sum(per_gate * ((E if k == 0 else out) + out) + 2 * per_gate + (P * H if P else 0) for k in range(L))
    lstm += 2 * H * L if net.layer_norm else 0  # gains and shifts of the cell's layer norm (an estimate)
    return V * E + lstm + (0 if net.tie_weights else V * out) + V


@dataclass
class SizeChoice:
    """What :func:`choose_size` found: the size kept, the steps the budget allows it, why, and the table of every
    size timed (``units``, ``layers``, ``parameters``, ``seconds_per_step``, ``steps``, ``tokens_per_parameter``,
    ``ok``)."""

    hidden_size: int
    num_layers: int
    max_steps: int | None
    reason: str
    table: list[dict[str, Any]] = field(default_factory=list)
    probe_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers, "max_steps": self.max_steps,
                "reason": self.reason, "probe_seconds": round(self.probe_seconds, 2), "table": self.table}  # fmt: skip


def choose_size(
    net: LanguageModelNet, vocab_size: int, *, train_tokens: int, steps_per_epoch: int, cfg: LanguageModelConfig,
    budget_seconds: float | None, step_seconds: StepSeconds,
) -> SizeChoice:  # fmt: skip
    """The network size and the step count for a run.

    With ``net`` unsized, each of :data:`SIZES` in turn is timed (``step_seconds``) and given the steps that fit
    ``budget_seconds`` (capped by ``max_steps`` and ``epochs`` passes); a size is kept when those steps reach
    :data:`TOKENS_PER_PARAMETER` training tokens per parameter and it has at most :data:`PARAMETERS_PER_TOKEN`
    parameters per training token. The largest size kept wins (the timing stops at the first that fails: larger
    ones are slower); when none is kept, the smallest. A sized ``net`` is timed alone, for its steps. ``max_steps``
    of the result is None where the budget does not bind (``epochs`` passes end first) or there is no budget.
    """
    tr = cfg.train
    tokens_per_step = tr.batch_size * cfg.bptt
    cap = tr.epochs * max(steps_per_epoch, 1)
    if tr.max_steps is not None:
        cap = min(cap, tr.max_steps)
    sizes = SIZES if not net.sized else ((net.hidden_size, net.num_layers),)
    rows: list[dict[str, Any]] = []
    kept: dict[str, Any] | None = None
    t0 = time.perf_counter()
    for units, layers in sizes:
        candidate = net.replace(hidden_size=units, num_layers=layers)
        params = n_parameters(vocab_size, candidate)
        row: dict[str, Any] = {"units": units, "layers": layers, "parameters": params}
        steps = cap
        if budget_seconds is not None:
            seconds = float(step_seconds(candidate))
            row["seconds_per_step"] = round(seconds, 4)
            steps = min(cap, int(max(budget_seconds, 0.0) / max(seconds, 1e-9)))
        row["steps"] = steps
        row["tokens_per_parameter"] = round(steps * tokens_per_step / params, 2)
        fits_corpus = params <= PARAMETERS_PER_TOKEN * train_tokens
        row["ok"] = row["tokens_per_parameter"] >= TOKENS_PER_PARAMETER and fits_corpus
        rows.append(row)
        if net.sized:
            kept = row
            break
        if not row["ok"]:
            break
        kept = row
    probe = time.perf_counter() - t0
    if net.sized:
        reason = "given"
    elif kept is not None:
        reason = (f"the largest size that trains on at least {TOKENS_PER_PARAMETER:g} tokens per parameter within the "
                  f"budget, with at most {PARAMETERS_PER_TOKEN:g} parameter per training token")  # fmt: skip
    else:
        kept = rows[0]
        reason = (f"no size reaches {TOKENS_PER_PARAMETER:g} tokens per parameter within the budget (or the corpus is "
                  "smaller than its parameters): the smallest")  # fmt: skip
    assert kept is not None
    binding = budget_seconds is not None and kept["steps"] < cap
    max_steps = max(kept["steps"], 1) if binding else tr.max_steps
    return SizeChoice(kept["units"], kept["layers"], max_steps, reason, rows, probe)


def saved_choice(run_dir: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The sizes and steps an interrupted run in ``run_dir`` chose (its config.json, written as training started)."""
    if run_dir is None or not (Path(run_dir) / "config.json").is_file():
        return None
    try:
        saved = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))["config"]
        saved = saved.get("lm", saved)
        net, train = saved["net"], saved["train"]
        return {"hidden_size": int(net["hidden_size"]), "num_layers": int(net["num_layers"]),
                "max_steps": train.get("max_steps"), "lr": train.get("lr")}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def chosen_lr(cfg: LanguageModelConfig, units: int) -> float:
    """The learning rate of a chosen size: :data:`SMALL_MODEL_LR` under 512 units when ``lr`` is its default."""
    from .config import LanguageModelTrain

    default = LanguageModelTrain().lr
    return SMALL_MODEL_LR if cfg.train.lr == default and units < 512 else cfg.train.lr
