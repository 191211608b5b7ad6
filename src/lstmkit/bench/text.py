"""The ``text`` suite: a character language model's training step, lstmkit vs the same ``torch.nn`` network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .core import TARGET_TEXT, Row, Settings


class _TorchCharRNN(torch.nn.Module):
    """The peer: a character LM from ``torch.nn`` modules, as PyTorch's ``word_language_model`` example builds it."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, emb)
        self.lstm = torch.nn.LSTM(emb, hidden, layers, batch_first=True)
        self.decoder = torch.nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        out, state = self.lstm(self.embedding(ids), state)  # (B, T, H)
        return self.decoder(out), state  # (B, T, V)


def suite_text(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Char-LM training step: lstmkit.LanguageModel's network vs the same from torch.nn modules, same weights."""
    import torch.nn.functional as F

    from ..tasks.text.language import LMNet

    B, T, V, E, H, L = (4, 8, 20, 8, 16, 2) if settings.quick else (64, 100, 85, 128, 512, 2)
    torch.manual_seed(0)
    mine = LMNet(V, embedding_size=E, hidden_size=H, num_layers=L, dropout=0.0)
    peer = _TorchCharRNN(V, E, H, L)
    peer.load_state_dict(mine.state_dict())  # the same weights: lstmkit speaks torch's state_dict keys
    x = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, dims=1)

    def step(model: torch.nn.Module) -> Callable[[], None]:
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def fn() -> None:
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return fn

    progress("text char-lm train step")
    t = settings.measure({"lstmkit": step(mine), "torch": step(peer)})
    chars = B * T
    note = (f"{chars / t['lstmkit'].median:,.0f} chars/s trained (torch.nn: {chars / t['torch'].median:,.0f}); "
            f"backend {mine.lstm.explain().backend}")  # fmt: skip
    shape = f"B={B} T={T} V={V} E={E} H={H} L={L}"
    return [Row("text", "char-lm", "train step", shape, "s/step", t["lstmkit"], "torch.nn char-rnn", t["torch"],
                TARGET_TEXT, note=note)]  # fmt: skip
