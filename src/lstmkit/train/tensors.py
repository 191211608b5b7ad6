"""Nested tensor structures (a recurrent state, a batch): map, detach and move them, keeping the nesting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["detach_state", "detached", "map_tensors", "to_device"]


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``obj`` with ``fn`` applied to every tensor inside it, keeping the nesting (tuples, named tuples, lists,
    dicts); other values (flags, numbers, None) are kept as they are."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # named tuple
        return type(obj)(*(map_tensors(v, fn) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    return obj


def detached(obj: Any) -> Any:
    """``obj`` with every tensor detached from the graph (no checks)."""
    return map_tensors(obj, torch.Tensor.detach)


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor moved to ``device``."""
    return map_tensors(obj, lambda t: t.to(device))


def detach_state(state: Any) -> Any:
    """Detach every tensor in ``state`` from the graph, keeping the nesting (tuples, lists, dicts, named tuples).

    Raises:
        TypeError: for anything that is not None, a tensor, or a tuple/list/dict of those.
    """

    def check(obj: Any) -> None:
        if isinstance(obj, (tuple, list)):
            for v in obj:
                check(v)
        elif isinstance(obj, dict):
            for v in obj.values():
                check(v)
        elif obj is not None and not isinstance(obj, torch.Tensor):
            raise TypeError(
                f"Cannot detach a recurrent state of type {type(obj).__name__}. StepOutput.state must be None, a "
                "tensor, or a tuple/list/dict of tensors (e.g. (h_n, c_n)). Return the state in one of those forms "
                "from loss_fn."
            )

    check(state)
    return detached(state)
