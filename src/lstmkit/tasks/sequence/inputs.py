"""The estimators' input preparation: array-likes read as (N, T, F) float32 sequences (ragged lists right-padded,
with their lengths), the per-channel scaler fitted on the training sequences' valid steps, and the shuffled
mini-batches training draws."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from ...data import SeededBatches


def as_float32(X: Any, name: str, shape: str) -> np.ndarray:
    """``X`` as a float32 array; refuses what the conversion would misread (a sparse matrix; complex numbers, whose
    imaginary part it drops) and, with numpy's error class, what it cannot read (TypeError for a cell that is no
    number)."""
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix; sparse input is not supported: pass a dense array ({name}.toarray())."
        )
    try:
        arr = np.asarray(X)
        if arr.dtype.kind == "c":
            raise ValueError("Complex data not supported")
        arr = arr.astype(np.float32, copy=False)
    except (TypeError, ValueError) as exc:
        error = TypeError if isinstance(exc, TypeError) else ValueError
        raise error(f"{name} must be real numbers, shaped {shape}; it could not be read: {exc}.") from None
    return arr if arr.flags.writeable else arr.copy()  # torch.from_numpy shares memory and refuses to own read-only


def as_sequences(X: Any, name: str = "X") -> np.ndarray:
    """(N, T, F) float32 from an array-like; (N, T) becomes (N, T, 1)."""
    arr = as_float32(X, name, "(N, T, F) or (N, T)")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be shaped (samples N, time steps T, features F) or (N, T), got one dimension with shape "
            f"{arr.shape}. Reshape your data: {name}[None] is one sequence of {arr.shape[0]} steps, {name}[:, None] "
            f"{arr.shape[0]} sequences of one step."
        )
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be shaped (samples N, time steps T, features F) or (N, T), got {arr.ndim} dimensions "
            f"with shape {arr.shape}."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} has no samples or no time steps (shape {arr.shape}).")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (the first at sample {bad[0]}, step {bad[1]}, feature {bad[2]}); "
            "impute or drop them before fitting."
        )
    return arr


def as_ragged(X: Any, name: str = "X") -> tuple[np.ndarray, np.ndarray | None]:
    """``(x (N, T_max, F) float32, lengths (N,) int64 or None)`` from an array or a list of (T_i, F) / (T_i,) arrays.

    ``lengths`` is None when every sequence is full length (an array input, or a list of equal lengths). Padding
    is zeros after each sequence's end.
    """
    if isinstance(X, np.ndarray) or not isinstance(X, (list, tuple)) or not X:
        return as_sequences(X, name), None
    if all(np.ndim(x) == np.ndim(X[0]) and np.shape(x) == np.shape(X[0]) for x in X):
        return as_sequences(X, name), None  # equal lengths: one array
    seqs = []
    for i, x in enumerate(X):
        arr = as_float32(x, f"{name}[{i}]", "(T, F) or (T,)")
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise ValueError(
                f"{name}[{i}] must be one sequence shaped (time steps T, features F) or (T,) with T >= 1, got shape "
                f"{arr.shape}."
            )
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(
                f"{name}[{i}] contains NaN or infinite values (the first at step {bad[0]}, feature {bad[1]}); impute "
                "or drop them before fitting."
            )
        seqs.append(arr)
    features = {a.shape[1] for a in seqs}
    if len(features) > 1:
        raise ValueError(
            f"The sequences of {name} have different numbers of features ({sorted(features)}); every sequence needs "
            "the same channels."
        )
    lengths = np.array([len(a) for a in seqs], dtype=np.int64)
    x = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), dtype=np.float32)  # (N, T_max, F)
    for i, a in enumerate(seqs):
        x[i, : len(a)] = a
    return x, lengths


class ShuffledBatches(SeededBatches):
    """Shuffled mini-batches by slicing whole tensors: no per-sample indexing and collation as in a DataLoader,
    which costs as much as the model itself at the estimators' small sizes. Re-iterable, one pass per epoch, with
    its own generator (exact resume)."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, seed: int, lengths: Tensor | None = None) -> None:
        super().__init__(x, y, batch_size=batch_size, seed=seed)
        self.x, self.y, self.lengths = x, y, lengths

    def collate(self, index: Tensor) -> tuple[Tensor, ...]:
        if self.lengths is None:
            return self.x[index], self.y[index]
        lengths = self.lengths[index]  # ragged: cut the batch to its longest sequence, so it runs over less padding
        return self.x[index, : int(lengths.max())], self.y[index], lengths


def fit_scaler(x: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (F,) over the valid steps of ``x`` (N, T, F); a constant channel gets
    a standard deviation of 1 (it is only centred)."""
    # fmt: off
    valid = valid_mask(x, lengths)                                                    # (N, T, 1)
    count = valid.sum()
    mean = (x * valid).sum(axis=(0, 1), dtype=np.float64) / count                     # (F,)
    var = (((x - mean) ** 2) * valid).sum(axis=(0, 1), dtype=np.float64) / count      # (F,)
    # fmt: on
    std = np.sqrt(var)
    std[std < 1e-12] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def valid_mask(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """(N, T, 1) float32: 1 on each sequence's valid steps, 0 on padding."""
    if lengths is None:
        return np.ones((x.shape[0], x.shape[1], 1), dtype=np.float32)
    return (np.arange(x.shape[1])[None, :] < lengths[:, None]).astype(np.float32)[..., None]
