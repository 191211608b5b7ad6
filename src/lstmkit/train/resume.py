"""``lstmkit.train.resume(run_dir)``: continue an interrupted run, whatever task started it.

The Trainer's checkpoints name the task (``kind``) and hold its resolved config. Each task registers a function that
rebuilds its model, data and loss from that config and calls ``Trainer.fit(..., resume=True)``; :func:`resume` finds
it. The loop itself knows no task: tasks register themselves when their module is imported, and :func:`resume` has
:func:`lstmkit.runs.resolve_kind` import the module of the checkpoint's kind (one of lstmkit's own) first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lstmkit.train.checkpoint import CHECKPOINT_DIR, ResumeError, latest_checkpoint, read_checkpoint

__all__ = ["register_resumer", "resume", "resumable_kinds"]

Resumer = Callable[[Path, dict[str, Any]], Any]
_RESUMERS: dict[str, Resumer] = {}


def register_resumer(kind: str, fn: Resumer) -> None:
    """Register ``fn(run_dir, run_config) -> result`` as the way to resume runs of ``kind``."""
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"register_resumer needs a non-empty string kind, got {kind!r}.")
    _RESUMERS[kind] = fn


def resumable_kinds() -> list[str]:
    """The task kinds :func:`resume` knows, sorted."""
    return sorted(_RESUMERS)


def _known_kinds() -> list[str]:
    from lstmkit.runs import registered_kinds

    return registered_kinds()


def _import_kind(kind: str) -> None:
    """Import the module of one of lstmkit's own kinds, which registers how it resumes (if it does)."""
    from lstmkit.runs import UnknownKindError, resolve_kind

    try:
        resolve_kind(kind)
    except UnknownKindError:  # a kind of the user's own whose module is not imported: the error below says so
        pass


def resume(run_dir: str | os.PathLike[str]) -> Any:
    """Continue the run in ``run_dir`` from its newest checkpoint, to the end; returns what the task returns.

    Raises:
        lstmkit.train.checkpoint.ResumeError: no checkpoint in ``run_dir``, a checkpoint without a task kind (a
            Trainer used directly: call ``Trainer.fit(..., resume=True)`` yourself), or an unknown kind.
    """
    run_dir = Path(run_dir)
    path = latest_checkpoint(run_dir)
    if path is None:
        raise ResumeError(
            f"Nothing to resume in {run_dir}: no complete checkpoint in {run_dir / CHECKPOINT_DIR}. Check the path; "
            "a run writes checkpoints only when it has a run directory."
        )
    _, _, meta = read_checkpoint(path)
    kind = meta.get("kind")
    if kind is None:
        raise ResumeError(
            f"The checkpoints in {run_dir} come from a Trainer used directly (no task kind), so lstmkit cannot rebuild "
            "the model and data. Build them as before and call Trainer.fit(train_data, resume=True)."
        )
    if kind not in _RESUMERS:
        _import_kind(kind)
    fn = _RESUMERS.get(kind)
    if fn is None and kind in _known_kinds():
        raise ResumeError(
            f"{run_dir} holds a {kind!r} run whose data is not in its checkpoints and whose config.json records no "
            "command line, so it was started from Python: continue it there, with the same data and the task's fit "
            "given run_dir and resume=True."
        )
    if fn is None:
        raise ResumeError(
            f"{run_dir} holds a run of kind {kind!r}, which no loaded task resumes (known: "
            f"{', '.join(resumable_kinds()) or 'none'}). Import the module that defines it and registers "
            "its resumer, then resume again."
        )
    return fn(run_dir, dict(meta.get("run_config") or {}))
