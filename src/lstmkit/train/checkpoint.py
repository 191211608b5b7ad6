"""Crash-safe training checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint is a directory ``<run_dir>/checkpoints/step-00000120/`` holding

- ``model.safetensors``: the model's ``state_dict``;
- ``state.safetensors``: every other tensor: the optimizer's state (Adam's moments and step counts), the torch RNG
  states (CPU and each CUDA device), the carried recurrent state of truncated BPTT;
- ``trainer.json``: everything else, as JSON: the resolved configs (training and task), the lstmkit and torch
  versions, the optimizer's structure and hyper-parameters, the schedule, the Python and NumPy RNG states, the data
  position (epoch, batches and chunks done) with the RNG and data-source state at the start of that epoch, the
  epoch's running sums, the metrics history, early-stopping state and callback states.

No pickle: tensors go to safetensors and the structure that holds them to JSON, with each tensor replaced by a
``{"__tensor__": key}`` marker (:func:`flatten_state` / :func:`unflatten_state`).

Atomicity: the files are written and fsynced inside a temporary directory ``checkpoints/.tmp-*``, ``trainer.json``
last, and the directory is then renamed to its final name (a single atomic rename) and the parent fsynced. A crash
at any moment leaves either no new checkpoint or a complete one; leftovers of an interrupted write are ``.tmp-*``
directories, which are ignored and cleaned up by the next write.

Kept: the last ``keep_checkpoints`` regular checkpoints, plus the best one by the monitored validation metric
(``best-step-*``, hard links to the files of the regular checkpoint it was taken from when the file system allows).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from lstmkit._atomic import fsync_dir, tensors_for_saving, write_and_sync

__all__ = [
    "CHECKPOINT_DIR",
    "CheckpointError",
    "ResumeError",
    "capture_rng",
    "check_writable",
    "config_differences",
    "flatten_state",
    "latest_checkpoint",
    "list_checkpoints",
    "read_checkpoint",
    "remove_checkpoints",
    "restore_rng",
    "step_of",
    "unflatten_state",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
META_FILE = "trainer.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
FORMAT_VERSION = 1

# step-00000120 (taken mid-epoch) and step-00000120-end (the end of an epoch, taken after the first when both fall on
# one step): the "-end" one is the newer.
_NAME = re.compile(r"^(step|best-step)-(\d+)(-end)?$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (full disk, unwritable directory, non-finite weights)."""


class ResumeError(ValueError):
    """A run cannot be resumed: no checkpoint, a corrupt one, or one from a different config or version."""


# --------------------------------------------------------------------------- nested state <-> JSON + tensors


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """A JSON-able copy of ``obj`` with every tensor moved into ``tensors`` and replaced by ``{"__tensor__": key}``.

    Handles dicts (any JSON-scalar keys, kept with their type), lists, tuples, named tuples are saved as tuples,
    str / int / float (NaN and infinities included) / bool / None.

    Raises:
        TypeError: for any other type, naming where it was found.
    """
    if isinstance(obj, torch.Tensor):
        key = prefix or "tensor"
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"Cannot checkpoint a dict key of type {type(k).__name__} at {prefix or 'top level'}.")
            items.append([k, flatten_state(v, tensors, f"{prefix}.{k}" if prefix else str(k))])
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(
        f"Cannot checkpoint a value of type {type(obj).__name__} at {prefix or 'top level'}: only tensors, numbers, "
        "strings, None and dicts/lists/tuples of them are stored (no pickle). Give the object a state_dict() that "
        "returns those."
    )


def unflatten_state(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of :func:`flatten_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["__dict__"]}
        raise ValueError(f"Corrupt checkpoint structure: a JSON object without a type marker ({sorted(obj)[:3]}).")
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


# --------------------------------------------------------------------------- RNG states


def capture_rng() -> dict[str, Any]:
    """Every global RNG state: Python's ``random``, NumPy's legacy global generator, torch CPU and each CUDA device."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's device only: under DDP each rank owns one
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set every global RNG to a state from :func:`capture_rng` (after a JSON round trip through a checkpoint)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        if torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])
        else:
            logger.warning("the checkpoint holds a CUDA RNG state but there is no GPU here: it is not restored")


# --------------------------------------------------------------------------- listing and reading


def step_of(path: Path) -> int:
    """The optimizer step a checkpoint directory was taken after (-1 for a name that is not a checkpoint's)."""
    m = _NAME.match(path.name)
    return int(m.group(2)) if m else -1


def _order(path: Path) -> tuple[int, int]:
    m = _NAME.match(path.name)
    return (int(m.group(2)), 1 if m.group(3) else 0) if m else (-1, 0)


def _remove_dir(path: Path) -> None:
    """Delete a directory so that it vanishes at once: rename it to a ``.tmp-del-*`` name, then remove that. A crash
    in between leaves a ``.tmp-*`` directory (ignored, cleaned up later), never a half-deleted checkpoint."""
    trash = path.parent / f".tmp-del-{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def remove_checkpoints(run_dir: str | os.PathLike[str]) -> None:
    """Delete every checkpoint of a run (regular and best)."""
    for path in list_checkpoints(run_dir) + list_checkpoints(run_dir, best=True):
        _remove_dir(path)


def list_checkpoints(run_dir: str | os.PathLike[str], *, best: bool = False) -> list[Path]:
    """Complete checkpoints of a run (those with a ``trainer.json``), oldest first.

    Args:
        run_dir: the run directory (its ``checkpoints/`` subdirectory is searched).
        best: list the best-by-validation checkpoints (``best-step-*``) instead of the regular ones.
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    kind = "best-step" if best else "step"
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and m.group(1) == kind and (p / META_FILE).is_file():
            found.append(p)
    return sorted(found, key=_order)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete regular checkpoint of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint directory: ``(model_state_dict, other_tensors, meta)``.

    Raises:
        ResumeError: if a file is missing or unreadable.
    """
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        model = safetensors.torch.load_file(path / MODEL_FILE, device="cpu")
        tensors = safetensors.torch.load_file(path / STATE_FILE, device="cpu")
    except (OSError, ValueError, safetensors.SafetensorError) as e:
        raise ResumeError(
            f"Checkpoint {path} cannot be read ({e}). Delete that directory to resume from the one before it."
        ) from e
    if meta.get("format") != FORMAT_VERSION:
        raise ResumeError(
            f"Checkpoint {path} has format {meta.get('format')!r}; this lstmkit reads format {FORMAT_VERSION}. "
            "Resume it with the lstmkit version that wrote it, or start a new run."
        )
    return model, tensors, meta


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Readable differences between two JSON-like configs: ``["lr: 0.001 in the checkpoint, 0.01 now", ...]``."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        out = []
        for k in sorted(set(saved) | set(current), key=str):
            where = f"{prefix}.{k}" if prefix else str(k)
            if k not in current:
                out.append(f"{where}: {saved[k]!r} in the checkpoint, absent now")
            elif k not in saved:
                out.append(f"{where}: absent in the checkpoint, {current[k]!r} now")
            else:
                out.extend(config_differences(saved[k], current[k], where))
        return out
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        saved, current = list(saved), list(current)
    if saved != current:
        return [f"{prefix or 'config'}: {saved!r} in the checkpoint, {current!r} now"]
    return []


# --------------------------------------------------------------------------- writing


def check_writable(run_dir: str | os.PathLike[str], need_bytes: int) -> None:
    """Fail before training if the run directory cannot hold checkpoints: not writable, or too little free space.

    Args:
        run_dir: the run directory (created if missing).
        need_bytes: the space two checkpoints need (one being written while the last good one is kept).

    Raises:
        CheckpointError: naming the directory, the problem and the fix.
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CheckpointError(
            f"Cannot write checkpoints to {root} ({e.strerror or e}). Choose a run directory you can write to, or "
            "fix its permissions, before training."
        ) from e
    free = shutil.disk_usage(root).free
    if free < need_bytes:
        raise CheckpointError(
            f"Not enough free space for checkpoints in {root}: {free / 2**20:.1f} MiB free, about "
            f"{need_bytes / 2**20:.1f} MiB needed (two checkpoints of this model and its optimizer). Free some space "
            "or choose a run directory on another disk."
        )


def _clean_tmp(root: Path) -> None:
    for p in root.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)


def _dump_json(meta: Mapping[str, Any]) -> bytes:
    return (json.dumps(meta, indent=1, allow_nan=True) + "\n").encode("utf-8")


def write_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    model_state: Mapping[str, torch.Tensor],
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    *,
    keep: int,
    best: bool = False,
    epoch_end: bool = False,
) -> Path:
    """Write ``checkpoints/step-<step>/`` atomically, then prune to the last ``keep``; optionally mark it the best.

    Args:
        run_dir: the run directory.
        step: the optimizer step the checkpoint is taken after; names the directory.
        model_state: the model's ``state_dict``.
        tensors: every other tensor (see the module docstring), keyed as :func:`flatten_state` named them.
        meta: the JSON part; ``format`` is added.
        keep: how many regular checkpoints to keep (the newest).
        best: also record this checkpoint as ``best-step-<step>`` (replacing the previous best).
        epoch_end: the checkpoint closes an epoch; named ``step-<step>-end`` so that it does not replace a
            mid-epoch checkpoint of the same step (it is the newer of the two).

    Returns:
        The checkpoint's directory.

    Raises:
        CheckpointError: if writing fails (full disk, permissions); the temporary directory is removed and every
            earlier checkpoint is left as it was.
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    final = root / (f"step-{step:08d}" + ("-end" if epoch_end else ""))
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _clean_tmp(root)
        model_bytes = safetensors.torch.save(tensors_for_saving(model_state, "model.state_dict()"))
        state_bytes = safetensors.torch.save(tensors_for_saving(tensors, "checkpoint state"))
        meta_bytes = _dump_json({**meta, "format": FORMAT_VERSION, "step": step})
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-step-{step:08d}-"))
        write_and_sync(tmp / MODEL_FILE, model_bytes)
        write_and_sync(tmp / STATE_FILE, state_bytes)
        write_and_sync(tmp / META_FILE, meta_bytes)  # last: its presence marks a complete checkpoint
        fsync_dir(tmp)
        if final.exists():  # the same step again (after a rollback): the old one goes only once the new one is whole
            _remove_dir(final)
        os.rename(tmp, final)
        tmp = None
        fsync_dir(root)
    except OSError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        last = latest_checkpoint(run_dir)
        reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise CheckpointError(
            f"Could not write the checkpoint of step {step} to {root}: {reason}. "
            + (
                f"The last good checkpoint, {last.name}, is intact. Free space (or fix permissions) and continue "
                "with resume."
                if last is not None
                else "No earlier checkpoint exists. Free space (or fix permissions) and start the run again."
            )
        ) from e
    if best:
        try:
            _mark_best(root, final)
        except OSError as e:
            raise CheckpointError(
                f"The checkpoint {final.name} was written, but marking it the best one failed ({e.strerror or e}). "
                "Free space (or fix permissions) and continue with resume."
            ) from e
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        _remove_dir(old)
    return final


def _mark_best(root: Path, source: Path) -> None:
    """Make ``best-<source name>`` a copy (hard links where possible) of ``source``; drop older best checkpoints."""
    target = root / f"best-{source.name}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-best-{source.name}-"))
    try:
        for name in (MODEL_FILE, STATE_FILE, META_FILE):  # META_FILE last, as for a regular checkpoint
            try:
                os.link(source / name, tmp / name)
            except OSError:
                shutil.copy2(source / name, tmp / name)
        fsync_dir(tmp)
        if target.exists():
            _remove_dir(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    for old in list_checkpoints(root.parent, best=True):
        if old != target:
            _remove_dir(old)


def mark_best(run_dir: str | os.PathLike[str], checkpoint: Path) -> None:
    """Record ``checkpoint`` as the best one (used when a resume finds the best marker missing or stale)."""
    _mark_best(Path(run_dir) / CHECKPOINT_DIR, Path(checkpoint))
