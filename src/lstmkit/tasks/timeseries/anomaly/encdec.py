"""EncDec-AD's network (Malhotra et al. 2016): an LSTM encoder-decoder that reconstructs a window in reverse order,
its training windows, how per-window errors become one error per step, and the dtype every score is computed in."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ....data import SeededBatches
from ....nn import LSTM

__all__ = ["SCORE_DTYPE", "EncDecNet", "WindowBatches", "combine_windows", "full_windows"]

# Scores are computed by float64 copies of the networks. In float32 a forecast (or reconstruction) depends on how many
# windows share its batch: the matrix kernels sum in a blocking order chosen per batch size and per CPU (oneDNN and
# MKL pick differently on AMD and Intel), which moves an output by ~1e-6, and the Mahalanobis distance multiplies that
# by the inverse error variance (1e3-1e4 for a well-predicted series). In float64 the same reordering moves a score by
# ~1e-12, so the stream (one window per step) and the batch (thousands per pass) agree to rtol 1e-9 on any CPU.
SCORE_DTYPE = torch.float64


class EncDecNet(nn.Module):
    """LSTM encoder-decoder that reconstructs a window in reverse order (EncDec-AD).

    Shapes: ``B`` windows, ``L`` window length, ``H`` hidden size, ``N`` stacked layers (encoder and decoder alike);
    one input channel (the scaled value).
    """

    def __init__(self, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.encoder = LSTM(1, hidden_size, num_layers)
        self.decoder = LSTM(1, hidden_size, num_layers)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Teacher-forced reconstruction (training): x (B, L, 1) -> (B, L), in the window's own order."""
        _, state = self.encoder(x)  # h, c: (N, B, H), the encoder's final state
        first = self.head(state[0][-1])  # (B, 1): x'_L from the encoder's state
        reverse = x.flip(1)  # (B, L, 1): x_L .. x_1
        out, _ = self.decoder(reverse[:, :-1], state)  # (B, L - 1, H): after reading the true x_L .. x_2
        rest = self.head(out)[..., 0]  # (B, L - 1): x'_{L-1} .. x'_1
        return torch.cat([first, rest], dim=1).flip(1)  # (B, L): x'_1 .. x'_L

    @torch.no_grad()
    def reconstruct(self, state: tuple[Tensor, Tensor], length: int) -> Tensor:
        """Inference: from the encoder's final state (h, c) (N, B, H), each output fed back -> (B, L), in order."""
        h, c = state
        x_hat = self.head(h[-1])  # (B, 1): x'_L
        outputs = [x_hat]
        for _ in range(length - 1):
            y, (h, c) = self.decoder.step(x_hat, (h, c))  # y (B, H)
            x_hat = self.head(y)  # (B, 1)
            outputs.append(x_hat)
        return torch.cat(outputs[::-1], dim=1)  # (B, L)


class WindowBatches(SeededBatches):
    """Training windows ``(x,)`` (N, L, 1), reshuffled each epoch from the source's own generator (exact resume)."""

    def __init__(self, x: Tensor, batch_size: int, seed: int) -> None:
        super().__init__(x, batch_size=batch_size, seed=seed)


def full_windows(z: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Every full window of the scaled series z (T,): (N, L) values with NaN set to 0, and (N,) True where whole."""
    view = np.lib.stride_tricks.sliding_window_view(z, length)  # (N, L), N = T - L + 1
    whole = ~np.isnan(view).any(axis=1)
    return np.nan_to_num(view), whole


def combine_windows(window_errors: np.ndarray, n: int) -> np.ndarray:
    """(T,) the smallest error of each step over the full windows containing it; window_errors (N, L) has NaN for
    left-out windows. Window s holds steps s .. s + L - 1."""
    N, L = window_errors.shape
    best = np.full(n, np.inf)
    for k in range(L):  # position k of window s is step s + k
        best[k : k + N] = np.fmin(best[k : k + N], window_errors[:, k])  # fmin: a NaN (left-out) window is skipped
    return np.where(np.isinf(best), np.nan, best)
