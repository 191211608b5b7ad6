"""Plumbing shared by LSTM, GRU and RNN: input checks with clear sentences, padded reversal, initial states."""

from __future__ import annotations

import os

import torch
from torch import Tensor


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def check_parameter_memory(name: str, n_params: int, what: str) -> None:
    """Refuse, before anything is allocated, parameters that alone exceed this machine's memory (an allocator error
    for 1.6e17 bytes says nothing of the hidden size that asked for it)."""
    need = n_params * torch.empty((), dtype=torch.get_default_dtype()).element_size()
    total = physical_memory()
    if total is not None and need > total:
        raise ValueError(
            f"{name}: {what} would hold {n_params:,} parameters, about {_bytes(need)} ({need:.2g} bytes) before any "
            f"training state, more than this machine's memory ({_bytes(total)}). Choose a smaller hidden size or "
            "fewer layers."
        )


def check_input(name: str, x: Tensor, input_size: int, batch_first: bool, params_dtype: torch.dtype) -> None:
    """Raise a ValueError naming what is wrong with ``x`` and how to fix it."""
    layout = "(B, T, I)" if batch_first else "(T, B, I)"
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected the input to be a torch.Tensor shaped {layout}, got {type(x).__name__}.")
    if x.dim() != 3:
        raise ValueError(
            f"{name}: expected input of 3 dimensions {layout} (batch_first={batch_first}), got {x.dim()} dimensions "
            f"with shape {tuple(x.shape)}. For a single sequence add a batch dimension, e.g. x.unsqueeze(0)."
        )
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{name}: input has {x.shape[-1]} features in its last dimension, but the layer was built with "
            f"input_size={input_size}. Build the layer with input_size={x.shape[-1]}, or fix the data's feature axis."
        )
    time_dim = 1 if batch_first else 0
    if x.shape[time_dim] == 0 or x.shape[1 - time_dim] == 0:
        raise ValueError(f"{name}: input has an empty batch or time dimension (shape {tuple(x.shape)}).")
    if not x.is_floating_point():
        raise ValueError(f"{name}: input must be a floating-point tensor, got {x.dtype}; convert it with x.float().")
    if x.dtype != params_dtype:
        raise ValueError(
            f"{name}: input dtype {x.dtype} differs from the parameters' dtype {params_dtype}; "
            f"convert one of them, e.g. x.to({params_dtype}) or layer.to({x.dtype})."
        )


def check_finite(name: str, x: Tensor, lengths: Tensor | None = None, batch_first: bool = True) -> None:
    """Raise if ``x`` holds NaN or infinity at a valid step (padding past ``lengths`` may hold anything)."""
    bad = ~torch.isfinite(x)
    if lengths is not None:
        time = x.shape[1] if batch_first else x.shape[0]
        valid = torch.arange(time, device=x.device)[None, :] < lengths[:, None]  # (B, T)
        bad &= (valid if batch_first else valid.T).unsqueeze(-1)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name}: input contains {int(bad.sum())} NaN or infinite values (the first at index {first}). "
            f"Clean or impute the data before the layer, or pass lengths= to exclude padded steps."
        )


def check_lengths(name: str, lengths: Tensor | None, batch: int, time: int, device: torch.device) -> Tensor | None:
    """Validate ``lengths`` (B,) with values in [1, T]; return it as a long tensor on ``device``."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(
            f"{name}: lengths must be a 1-D tensor with one length per sequence (shape ({batch},)), "
            f"got shape {tuple(lengths.shape)}."
        )
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(f"{name}: lengths must hold integers, got dtype {lengths.dtype}.")
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > time:
        raise ValueError(
            f"{name}: every length must be between 1 and the padded sequence length {time}, "
            f"got lengths from {low} to {high}."
        )
    return lengths.to(device=device, dtype=torch.long)


def check_state(name: str, part: str, s: Tensor, expected: tuple[int, ...], dtype: torch.dtype) -> None:
    """Raise if one state tensor does not have the expected shape."""
    if not isinstance(s, Tensor):
        raise TypeError(f"{name}: {part} must be a torch.Tensor of shape {expected}, got {type(s).__name__}.")
    if tuple(s.shape) != expected:
        raise ValueError(
            f"{name}: {part} has shape {tuple(s.shape)}, expected {expected} "
            f"(num_layers * num_directions, batch, size). Pass the state returned by the previous call, or None."
        )
    if s.dtype != dtype:
        raise ValueError(f"{name}: {part} has dtype {s.dtype}, expected {dtype} like the input.")


def valid_mask(lengths: Tensor | None, time: int, dtype: torch.dtype) -> Tensor | None:
    """(T, B, 1): 1.0 at steps inside each sequence, 0.0 past its end."""
    if lengths is None:
        return None
    steps = torch.arange(time, device=lengths.device)
    return (steps[:, None] < lengths[None, :]).to(dtype).unsqueeze(-1)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse time (dim 0) within each sequence's own length; padding stays in place. x: (T, B, ...)."""
    if lengths is None:
        return x.flip(0)
    time = x.shape[0]
    steps = torch.arange(time, device=x.device)[:, None]  # (T, 1)
    index = torch.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps)  # (T, B)
    index = index.view(time, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def unbatched(x: Tensor) -> bool:
    """True for a single sequence given without a batch dimension, (T, I)."""
    return isinstance(x, Tensor) and x.dim() == 2
