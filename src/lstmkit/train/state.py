"""The Trainer's checkpoints: what one holds beside the weights, writing it, reading it back, and the replay of an
interrupted epoch on resume.

A checkpoint (see :mod:`lstmkit.train.checkpoint` for the files) keeps the weights, the optimizer, the schedule, the
running mean of the weights, the metrics so far, the callbacks' states and, for each process, the RNG states and the
data's state when the epoch began, the epoch's running sums and the carried recurrent state. A resumed epoch
restores the RNG and data state of its start, re-reads the batches already trained on and skips them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from lstmkit.config import TrainConfig
from lstmkit.train import checkpoint as ckpt
from lstmkit.train import distributed
from lstmkit.train.guards import all_finite
from lstmkit.train.metrics import EpochSums, rewrite_csv
from lstmkit.train.tensors import to_device

__all__ = [
    "RESUME_FREE_FIELDS",
    "RunCheckpoints",
    "callback_states",
    "data_generators",
    "is_stateful",
    "load_callback_states",
    "package_version",
    "plain_run_config",
    "rank_position",
    "restore_epoch_start",
    "restore_weights",
    "skip_done_batches",
]

logger = logging.getLogger(__name__)

# Fields that may change between a run and its resume without changing what is computed (max_minutes: a resumed fit
# starts a new budget, and a run its budget cut short is resumed with a larger one).
RESUME_FREE_FIELDS = frozenset(
    {"progress", "log_every_steps", "checkpoint_every_steps", "keep_checkpoints", "max_minutes"}
)


def package_version() -> str:
    """The version of the source running (not the installed metadata, which an editable install leaves stale)."""
    from lstmkit._version import __version__

    return __version__


def is_stateful(obj: Any) -> bool:
    """Whether ``obj`` has ``state_dict()`` and ``load_state_dict()`` (its state is checkpointed)."""
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


def plain_run_config(run_config: Mapping[str, Any] | Any) -> dict[str, Any] | None:
    """The task's config (a dict or an object with ``to_dict()``) as it will read back from a checkpoint's JSON, so
    a resume compares like with like."""
    if run_config is None:
        return None
    if callable(getattr(run_config, "to_dict", None)):
        run_config = run_config.to_dict()
    if not isinstance(run_config, Mapping):
        raise TypeError(f"run_config must be a dict or have to_dict(), got {type(run_config).__name__}.")
    try:
        return dict(json.loads(json.dumps(run_config, allow_nan=True)))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"run_config must be JSON-serialisable (it is saved in every checkpoint): {e}. Use plain values "
            "(str, int, float, bool, None, lists, dicts); convert paths with str()."
        ) from e


def callback_states(callbacks: list[Any], tensors: dict[str, torch.Tensor]) -> list[Any]:
    """Each callback's ``state_dict()`` (None for a stateless one), its tensors put into ``tensors``."""
    return [
        ckpt.flatten_state(cb.state_dict(), tensors, f"callback{i}") if is_stateful(cb) else None
        for i, cb in enumerate(callbacks)
    ]


def load_callback_states(callbacks: list[Any], saved: list[Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Give each stateful callback its state from a checkpoint (see :func:`callback_states`)."""
    for cb, state in zip(callbacks, saved, strict=False):
        if state is not None and is_stateful(cb):
            cb.load_state_dict(ckpt.unflatten_state(state, tensors))


def data_generators(data: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects a DataLoader (or a sampler) draws its order from, if it was given its own."""
    found: list[torch.Generator] = []
    for obj in (data, getattr(data, "sampler", None), getattr(getattr(data, "batch_sampler", None), "sampler", None)):
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not f for f in found):
            found.append(g)
    return found


def snapshot_epoch_start(train_data: Any) -> dict[str, Any]:
    """The RNG states and the data's state as an epoch starts: a resume replays the epoch from here."""
    data_state = train_data.state_dict() if is_stateful(train_data) else None
    generators = [g.get_state() for g in data_generators(train_data)]
    return {"rng": ckpt.capture_rng(), "data": data_state, "generators": generators}


def restore_epoch_start(train_data: Any, epoch_start: Mapping[str, Any]) -> None:
    """Put the RNGs and the data back as they were when the epoch began."""
    ckpt.restore_rng(epoch_start["rng"])
    if is_stateful(train_data) and epoch_start.get("data") is not None:
        train_data.load_state_dict(epoch_start["data"])
    saved_generators = epoch_start.get("generators") or []
    for generator, saved in zip(data_generators(train_data), saved_generators, strict=False):
        generator.set_state(saved)


def skip_done_batches(
    batches: Callable[[], Iterator[Any]], train_data: Any, epoch: int, skip_batches: int, skip_chunks: int
) -> tuple[Iterator[Any], list[Any]]:
    """Start the epoch's pass over ``train_data`` (``batches()``) past the batches a checkpoint had trained on.

    Returns the iterator and the half-done batch to finish (a list of one, when ``skip_chunks``; else empty).

    Raises:
        ResumeError: the data yields fewer batches than the checkpoint had trained on.
    """
    to_read = skip_batches + (1 if skip_chunks else 0)  # batches to read again (the last one is half done)
    if skip_batches and callable(getattr(train_data, "iter_from", None)):
        iterator = iter(train_data.iter_from(skip_batches))  # the source can start mid-epoch without re-reading
        to_read -= skip_batches
    else:
        iterator = batches()
    for i in range(to_read):
        try:
            raw = next(iterator)
        except StopIteration:
            raise ckpt.ResumeError(
                f"The training data yields {i} batches in epoch {epoch}, but the checkpoint was taken after "
                f"{skip_batches} batches of it: the data is not the data the run was trained on. Resume with "
                "the same data, or start a new run."
            ) from None
    return iterator, [raw] if skip_chunks else []


def restore_weights(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: Any, average: Any
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights, optimizer, schedule (and the running mean of the weights) from a checkpoint; return its meta
    and tensors (the step counter is ``meta["global_step"]``)."""
    model_state, tensors, meta = ckpt.read_checkpoint(path)
    model.load_state_dict(model_state)
    optimizer.load_state_dict(ckpt.unflatten_state(meta["optimizer"], tensors))
    schedule.load_state_dict(meta["schedule"])
    if average is not None and meta.get("average") is not None:  # the running mean as it was then
        average.load_state_dict(ckpt.unflatten_state(meta["average"], tensors))
    return meta, tensors


def rank_position(
    path: Path,
    meta: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    dist: distributed.DistInfo | None,
    device: torch.device,
) -> dict[str, Any]:
    """Where this process continues from: the checkpoint's position plus this rank's RNG states, epoch start,
    running sums, batch size and carried state."""
    position = dict(meta["position"])
    ranks = [ckpt.unflatten_state(r, tensors) for r in meta["ranks"]]
    world, rank = (dist.world_size, dist.rank) if dist is not None else (1, 0)
    mid_epoch = any(r["acc"] is not None for r in ranks)
    if len(ranks) != world and mid_epoch:
        raise ckpt.ResumeError(
            f"Checkpoint {path} was taken mid-epoch by {len(ranks)} process(es); this run has {world}. Each "
            "process carries its own rows' state within an epoch, so resume it with the same number of processes "
            "(checkpoints taken at an epoch's end can be resumed with any number)."
        )
    mine = ranks[rank] if rank < len(ranks) else ranks[0]
    position["rng"], position["epoch_start"] = mine["rng"], mine["epoch_start"]
    position["acc"], position["prev_batch_size"] = mine["acc"], mine["prev_batch_size"]
    position["carried_state"] = to_device(mine["carried"], device)
    if position.get("finished"):
        ckpt.restore_rng(position["rng"])
    return position


class RunCheckpoints:
    """The checkpoints of one Trainer's run directory.

    Attributes:
        epoch_start: RNG and data state when the current epoch began (see :func:`snapshot_epoch_start`).
        wrote: whether this run has written (or resumed from) a checkpoint.
        last: the directory of the newest checkpoint written or resumed from, or None.
    """

    def __init__(self, run_dir: Path | None, config: TrainConfig, run_config: dict[str, Any] | None, kind: str | None):
        self.run_dir, self.config, self.run_config, self.kind = run_dir, config, run_config, kind
        self.epoch_start: dict[str, Any] | None = None
        self.wrote = False
        self.last: Path | None = None

    def snapshot_epoch_start(self, train_data: Any) -> None:
        self.epoch_start = snapshot_epoch_start(train_data)

    def claim(self, is_main: bool) -> None:
        """Refuse a run directory holding another run's checkpoints; clear one left by a start that never stepped."""
        assert self.run_dir is not None
        existing = ckpt.list_checkpoints(self.run_dir)
        if any(ckpt.step_of(p) > 0 for p in existing):
            raise ckpt.ResumeError(
                f"{self.run_dir} already holds checkpoints of an earlier run (the newest after step "
                f"{ckpt.step_of(existing[-1])}). Pass resume=True (--resume) to continue it, or choose a new run "
                "directory."
            )
        if existing and is_main:  # an earlier start that failed before its first step: nothing to keep
            ckpt.remove_checkpoints(self.run_dir)

    def newest(self) -> tuple[Path, dict[str, Any]]:
        """The newest complete checkpoint to resume from and its meta, checked against this run's config.

        Raises:
            ResumeError: there is none, or it is from another lstmkit version or config.
        """
        assert self.run_dir is not None
        path = ckpt.latest_checkpoint(self.run_dir)
        if path is None:
            raise ckpt.ResumeError(
                f"Nothing to resume in {self.run_dir}: it has no complete checkpoint in "
                f"{self.run_dir / ckpt.CHECKPOINT_DIR}. Start the run without resume."
            )
        _, _, meta = ckpt.read_checkpoint(path)
        self.check_compatible(path, meta)
        return path, meta

    def bytes_estimate(self, model: torch.nn.Module) -> int:
        """The checkpoints kept at once: ``keep_checkpoints``, the one being written and the best one, each the model
        and its optimizer state (Adam keeps two moments per parameter), plus 1 MiB for the rest."""
        param_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        copies = 4 if self.config.average_from_epoch else 3  # weights, Adam's two moments (and the running mean)
        return (self.config.keep_checkpoints + 2) * (copies * param_bytes + (1 << 20))

    def meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lstmkit_version": package_version(),
            "torch_version": torch.__version__,
            "train_config": self.config.to_dict(),
            "run_config": self.run_config,
        }

    def save(
        self,
        model: torch.nn.Module,
        global_step: int,
        position: dict[str, Any],
        acc: EpochSums | None,
        state: Any,
        progress: Callable[[dict[str, torch.Tensor]], dict[str, Any]],
        dist: distributed.DistInfo | None,
        *,
        best: bool = False,
        epoch_end: bool = False,
    ) -> Path | None:
        """Write a checkpoint after ``global_step``; refuses (with a warning) to write non-finite weights.

        ``progress(tensors)`` gives the trainer's part of the meta (optimizer, schedule, metrics so far, ...), its
        tensors put into ``tensors``.
        """
        if not all_finite(dict(model.state_dict())):
            logger.warning("not writing a checkpoint at step %d: the weights hold NaN or inf", global_step)
            return None
        # Each rank has its own running sums, carried state (its rows), batch size and RNG states (its dropout draws
        # and its GPU); the checkpoint keeps every rank's.
        local = {
            "acc": acc.state_dict() if acc is not None else None,
            "carried": to_device(state, torch.device("cpu")),
            "prev_batch_size": position.get("prev_batch_size"),
            "rng": ckpt.capture_rng(),
            "epoch_start": self.epoch_start,
        }
        per_rank = distributed.gather_objects(local) if dist is not None else [local]
        if dist is not None and dist.rank != 0:
            self.wrote = True
            return None
        assert self.run_dir is not None
        tensors: dict[str, torch.Tensor] = {}
        meta = self.meta()
        meta.update(
            {
                "global_step": global_step,
                "world_size": len(per_rank),
                "position": {k: v for k, v in position.items() if k != "prev_batch_size"},
                "ranks": [ckpt.flatten_state(r, tensors, f"rank{i}") for i, r in enumerate(per_rank)],
            }
        )
        meta.update(progress(tensors))
        path = ckpt.write_checkpoint(
            self.run_dir, global_step, model.state_dict(), tensors, meta,
            keep=self.config.keep_checkpoints, best=best, epoch_end=epoch_end,
        )  # fmt: skip
        self.wrote = True
        self.last = path
        return path

    def check_compatible(self, path: Path, meta: Mapping[str, Any]) -> None:
        """Refuse a checkpoint from another lstmkit version or another config, naming the difference."""
        version = package_version()
        if meta.get("lstmkit_version") != version:
            raise ckpt.ResumeError(
                f"Checkpoint {path} was written by lstmkit {meta.get('lstmkit_version')}, this is lstmkit {version}: "
                "an exact resume needs the same version. Install that version to resume, or start a new run."
            )
        if meta.get("torch_version") != torch.__version__:
            logger.warning(
                "checkpoint %s was written with torch %s, this is torch %s: a resumed run may differ in its last bits",
                path, meta.get("torch_version"), torch.__version__,
            )  # fmt: skip
        saved = {k: v for k, v in (meta.get("train_config") or {}).items() if k not in RESUME_FREE_FIELDS}
        current = {k: v for k, v in self.config.to_dict().items() if k not in RESUME_FREE_FIELDS}
        diffs = ckpt.config_differences(saved, current)
        diffs += ckpt.config_differences(meta.get("run_config"), self.run_config, "run config")
        if diffs:
            shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
            raise ckpt.ResumeError(
                f"Checkpoint {path} was written with a different config ({shown}). Resume with the config the run "
                "started with, or start a new run in another directory."
            )

    def find_best(self, path: Path, meta: Mapping[str, Any], best_epoch: int, is_main: bool) -> Path | None:
        """The best epoch's checkpoint after a resume (for early stopping), mending a stale best marker; None (with
        a warning) when it is missing.

        A crash between writing an epoch's checkpoint and marking it the best leaves the marker on an older one.
        """
        assert self.run_dir is not None
        best_dirs = ckpt.list_checkpoints(self.run_dir, best=True)
        marked = None
        if best_dirs:
            _, _, best_meta = ckpt.read_checkpoint(best_dirs[-1])
            if len(best_meta.get("history") or []) == best_epoch:
                marked = best_dirs[-1]
        if marked is None and len(meta["history"]) == best_epoch and meta["position"]["batches_done"] == 0:
            marked = path  # the resumed checkpoint closes the best epoch itself
            if is_main:
                ckpt.mark_best(self.run_dir, path)
        if marked is None:
            logger.warning(
                "the best checkpoint (epoch %s) is missing: early stopping keeps the last weights", best_epoch
            )
        return marked

    def rewrite_logs(self, epochs: int, global_step: int) -> None:
        """Make metrics.csv / steps.csv agree with the checkpoint: drop rows written after it (they will be redone)."""
        assert self.run_dir is not None
        metrics = self.run_dir / "metrics.csv"
        if metrics.exists():
            rewrite_csv(metrics, lambda row: int(float(row["epoch"])) <= epochs)
        steps = self.run_dir / "steps.csv"
        if steps.exists():
            rewrite_csv(steps, lambda row: int(float(row["step"])) <= global_step)
