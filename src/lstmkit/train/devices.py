"""Where a task trains: ``TrainConfig.device`` (``"cpu"``, ``"cuda"`` or ``"auto"``) as a ``torch.device``.

The task places its model there before :meth:`Trainer.fit`; the Trainer moves each batch to the device of the
model's first parameter, and the tasks move the model back to the CPU to save and to predict.
"""

from __future__ import annotations

import os

import torch


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` as a device; CUDA is this process's GPU (``LOCAL_RANK`` under torchrun).

    Raises:
        ValueError: for ``"cuda"`` on a machine without one, or a name that is none of the three.
    """
    if name not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {name!r}.")
    cuda = torch.cuda.is_available()
    if name == "cuda" and not cuda:
        raise ValueError("device='cuda' was asked for, but PyTorch sees no CUDA GPU here. Use device='cpu' or 'auto'.")
    if name == "cuda" or (name == "auto" and cuda):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")
