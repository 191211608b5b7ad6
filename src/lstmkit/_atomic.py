"""Atomic file and directory writes, shared by run directories (``lstmkit.runs``) and checkpoints (``lstmkit.train``).

A file written here is either absent, the old file, or the complete new one: the bytes go to a temporary file in the
same directory, are flushed and fsynced, and the temporary file is renamed over the target (``os.replace`` is atomic on
POSIX and Windows); the directory is then fsynced so that the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["atomic_write_bytes", "fsync_dir", "tensors_for_saving", "write_and_sync"]


def fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable; best effort (some platforms cannot open a directory)."""
    try:
        dir_fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_and_sync(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` and fsync it (no rename: for files inside a directory renamed later)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the complete new one, never partial."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes files 0600; outputs should be as readable as any other file
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def tensors_for_saving(tensors: Mapping[str, Any], what: str) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies (copies, so tied weights do not trip safetensors' shared-memory check).

    Raises:
        TypeError: for a non-string key, a value that is not a tensor, or a sparse tensor.
    """
    import torch  # here, not at the top: the command line imports this module before it knows it needs torch

    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"{what} keys must be strings, got {type(name).__name__} {name!r}.")
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"{what}[{name!r}] is a {type(t).__name__}, not a tensor; safetensors stores tensors only. "
                "Put non-tensor values in the config instead."
            )
        if t.layout != torch.strided:
            raise TypeError(f"{what}[{name!r}] is a {t.layout} tensor; convert it with .to_dense() before saving.")
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out
