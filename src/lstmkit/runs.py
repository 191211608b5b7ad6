"""Run directories: ``config.json`` + ``model.safetensors`` (+ ``metrics.csv`` from the Trainer), and ``load(path)``.

A run directory holds everything needed to rebuild a trained model without pickle:

- ``config.json``: ``{"kind": ..., "lstmkit_version": ..., "config": {...}}``; ``kind`` names the class that rebuilds
  the model (lstmkit's own kinds are listed in :data:`BUILTIN_KINDS`, others come from :func:`register_kind`),
  ``config`` is that class's resolved config.
- ``model.safetensors``: the model's ``state_dict``.
- ``extra.safetensors`` (optional): other tensors the class needs (normalisation statistics, say).
- ``metrics.csv`` / ``steps.csv`` (optional): written by :class:`lstmkit.train.Trainer`.

A run's ``config.json`` is written twice. When training starts (:func:`start_run`, called by the Trainer of every
task) it says ``"status": "training"`` and holds the training config and the command line that started the run, so
that ``lstmkit report`` can draw a run in progress and ``lstmkit resume`` can continue one that was cut short; such a
run is not loadable yet (:class:`UnfinishedRunError`). When the model is saved (:func:`save_run`) it is replaced by the
model's config, without a status: :func:`is_finished` tells the two apart.

Every file is written atomically (temporary file in the same directory, flush, fsync, ``os.replace``), weights first and
the final ``config.json`` last, so a directory whose ``config.json`` has no ``"status": "training"`` is always complete
and no file is ever half written.

Example:
    >>> import tempfile, torch
    >>> @register_kind("doc_linear")
    ... class DocLinear(torch.nn.Linear):
    ...     @classmethod
    ...     def load(cls, path):
    ...         cfg = read_run_config(path)["config"]
    ...         model = cls(cfg["in_features"], cfg["out_features"])
    ...         model.load_state_dict(read_state_dict(path))
    ...         return model
    >>> run = save_run(tempfile.mkdtemp(), "doc_linear", {"in_features": 2, "out_features": 1}, DocLinear(2, 1))
    >>> type(load(run)).__name__
    'DocLinear'
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported where used: `lstmkit --help` and a user's mistake pay nothing for torch
    import torch

from lstmkit._atomic import atomic_write_bytes, tensors_for_saving
from lstmkit._version import __version__

__all__ = [
    "BUILTIN_KINDS",
    "CONFIG_FILE",
    "EXTRA_FILE",
    "WEIGHTS_FILE",
    "STATUS_TRAINING",
    "UnfinishedRunError",
    "UnknownKindError",
    "is_finished",
    "load",
    "read_extra_tensors",
    "read_run_config",
    "read_state_dict",
    "recording_command",
    "register_kind",
    "registered_kinds",
    "resolve_kind",
    "save_run",
    "start_run",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
EXTRA_FILE = "extra.safetensors"
STATUS_TRAINING = "training"  # config.json's "status" from the start of training until the model is saved

T = TypeVar("T", bound=type)

# lstmkit's own kinds: kind name -> "module:Class". load() imports only the module of the kind it reads, so that
# neither `import lstmkit` nor this module imports a task; tests/test_lazy_import.py checks that this table and the
# @register_kind decorators of lstmkit.tasks agree.
BUILTIN_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "anomaly_detector": "lstmkit.tasks.timeseries.anomaly.detector:AnomalyDetector",
        "forecaster": "lstmkit.tasks.timeseries.forecasting:Forecaster",
        "handwriting": "lstmkit.tasks.recognition.handwriting.recognizer:HandwritingRecognizer",
        "language_model": "lstmkit.tasks.text.language:LanguageModel",
        "long_lag": "lstmkit.tasks.long_lag.experiment:LongLagRun",
        "music": "lstmkit.tasks.music.model:MusicModel",
        "seq2seq": "lstmkit.tasks.text.seq2seq:Seq2Seq",
        "sequence_classifier": "lstmkit.tasks.sequence.estimators:SequenceClassifier",
        "sequence_regressor": "lstmkit.tasks.sequence.estimators:SequenceRegressor",
        "speech_recognizer": "lstmkit.tasks.recognition.speech.recognizer:SpeechRecognizer",
        "text_classifier": "lstmkit.tasks.text.classification:TextClassifier",
    }
)

_KINDS: dict[str, type] = {}  # filled by @register_kind: lstmkit's own classes once their module is imported, and yours


class UnknownKindError(KeyError):
    """A saved run names a kind that no class is registered for."""

    def __str__(self) -> str:  # KeyError would show the repr of the message, quotes and escapes included
        return str(self.args[0]) if self.args else ""


class UnfinishedRunError(ValueError):
    """A run directory whose training started but whose model was never saved (still training, or cut short)."""


_COMMAND: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("lstmkit_command", default=None)


@contextlib.contextmanager
def recording_command(argv: Sequence[str], cwd: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """While this is open, a run that starts training records ``argv`` (and the working directory) in its
    ``config.json``, so that ``lstmkit resume RUN`` can run the same command again with ``--resume``. The command line
    opens it around each command."""
    token = _COMMAND.set({"argv": [str(a) for a in argv], "cwd": str(cwd if cwd is not None else os.getcwd())})
    try:
        yield
    finally:
        _COMMAND.reset(token)


def save_run(
    run_dir: str | os.PathLike[str],
    kind: str,
    config: Mapping[str, Any] | Any,
    model: torch.nn.Module,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Save a model to a run directory: ``model.safetensors``, optional ``extra.safetensors``, then ``config.json``.

    Args:
        run_dir: the directory; created if missing. Other files in it (``metrics.csv``) are left alone.
        kind: the registered name of the class that rebuilds the model (see :func:`register_kind`).
        config: the model's resolved config: a JSON-serialisable dict, or an object with ``to_dict()`` (a
            :class:`lstmkit.config.StrictConfig`).
        model: the module whose ``state_dict`` is saved.
        extra_tensors: more named tensors to keep beside the weights, read back by :func:`read_extra_tensors`.
        overwrite: replace an existing saved run in ``run_dir``; by default that is an error.

    Returns:
        ``run_dir`` as a ``Path``.

    Raises:
        FileExistsError: if ``run_dir`` already holds a saved run (see :func:`is_finished`) and ``overwrite`` is
            False; the ``config.json`` that :func:`start_run` wrote is replaced.
        TypeError: if ``config`` is not JSON-serialisable or a state_dict entry is not a tensor.
    """
    run_dir = Path(run_dir)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"save_run needs kind as a non-empty string (a registered model kind), got {kind!r}.")
    import safetensors.torch
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"save_run needs a torch.nn.Module as model, got {type(model).__name__}.")
    if hasattr(config, "to_dict") and callable(config.to_dict):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise TypeError(f"save_run needs config as a dict (or an object with to_dict()), got {type(config).__name__}.")
    config_path = run_dir / CONFIG_FILE
    if config_path.exists() and not overwrite and is_finished(run_dir):
        raise FileExistsError(
            f"{config_path} already exists: {run_dir} holds a saved run. Choose a new run directory, delete the old "
            "run, or pass overwrite=True to replace it."
        )
    payload = {"kind": kind, "lstmkit_version": __version__, "config": dict(config)}
    try:
        config_bytes = (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"save_run could not write the config of kind {kind!r} as JSON ({e}). Use plain values only (str, int, "
            "float, bool, None, lists, dicts with string keys); finite floats only."
        ) from e
    metadata = {"kind": kind, "lstmkit_version": payload["lstmkit_version"]}
    weights = tensors_for_saving(model.state_dict(), "model.state_dict()")
    extra = tensors_for_saving(extra_tensors, "extra_tensors") if extra_tensors else None

    run_dir.mkdir(parents=True, exist_ok=True)
    # Weights before config: config.json is written last, so its presence marks a complete run.
    atomic_write_bytes(run_dir / WEIGHTS_FILE, safetensors.torch.save(weights, metadata=metadata))
    if extra is not None:
        atomic_write_bytes(run_dir / EXTRA_FILE, safetensors.torch.save(extra, metadata=metadata))
    elif (run_dir / EXTRA_FILE).exists():
        os.unlink(run_dir / EXTRA_FILE)  # overwrite=True without extras: drop the stale file of the old run
    atomic_write_bytes(config_path, config_bytes)
    logger.info("saved run of kind %r to %s", kind, run_dir)
    return run_dir


def _read_payload(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def is_finished(run_dir: str | os.PathLike[str]) -> bool:
    """True if ``run_dir`` holds a saved run: a ``config.json`` that is not the one :func:`start_run` writes (an
    unreadable one counts as finished, so that nothing overwrites it)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return False
    payload = _read_payload(path)
    return not (isinstance(payload, dict) and payload.get("status") == STATUS_TRAINING)


def start_run(
    run_dir: str | os.PathLike[str], kind: str, config: Mapping[str, Any] | Any, *, replace: bool = True
) -> Path | None:
    """Write the ``config.json`` of a run whose training starts: ``{"kind", "lstmkit_version", "status": "training",
    "config", "command"}`` (``command``: the command line running now, see :func:`recording_command`, or the one
    recorded by an earlier start of this run). Atomic; the :class:`lstmkit.train.Trainer` of every task calls it.

    Args:
        run_dir: the run directory; created if missing.
        kind: the task's run kind. config: its resolved config (a dict, or an object with ``to_dict()``).
        replace: replace the config.json of an earlier start of this run (a re-run or a resume after a failure);
            with False it is kept.

    Returns:
        The path written, or None when ``run_dir`` holds a finished run (its config.json is never touched) or an
        earlier start was kept.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if is_finished(run_dir):
        return None
    earlier = _read_payload(path) if path.is_file() else None
    if earlier is not None and not replace:
        return None
    if hasattr(config, "to_dict") and callable(config.to_dict):
        config = config.to_dict()
    payload: dict[str, Any] = {"kind": kind, "lstmkit_version": __version__, "status": STATUS_TRAINING}
    payload["config"] = dict(config) if isinstance(config, Mapping) else {}
    command = _COMMAND.get() or (earlier.get("command") if isinstance(earlier, dict) else None)
    if command is not None:
        payload["command"] = command
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, default=str)  # a path or a tuple in a config is written as text
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))
    return path


def _resolve_run_dir(path: str | os.PathLike[str]) -> Path:
    """Accept a run directory or the path of its ``config.json``."""
    path = Path(path)
    if path.name == CONFIG_FILE and path.is_file():
        return path.parent
    return path


def read_run_config(run_dir: str | os.PathLike[str], expected_kind: str | None = None) -> dict[str, Any]:
    """Read and check a run's ``config.json``.

    Args:
        run_dir: the run directory (or the path of its ``config.json``).
        expected_kind: the kind the caller can rebuild; another kind is a ValueError naming both.

    Returns:
        ``{"kind": str, "lstmkit_version": str, "config": dict}``.

    Raises:
        FileNotFoundError: if the directory or its ``config.json`` is missing.
        ValueError: if ``config.json`` is not valid JSON or lacks ``kind`` / ``config``, or holds another kind
            than ``expected_kind``.
        UnfinishedRunError: (a ``ValueError``) with ``expected_kind`` (a caller that rebuilds the model), if the run's
            training started but its model was never saved.
    """
    run_dir = _resolve_run_dir(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"No run directory at {run_dir}. Pass the --out directory of a training run.")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        present = sorted(p.name for p in run_dir.iterdir())
        raise FileNotFoundError(
            f"{run_dir} has no {CONFIG_FILE}, so it is not a saved run (or saving did not finish); it contains "
            f"{present or 'nothing'}. Pass the --out directory of a finished training run."
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}). The file is corrupt: re-save the run.") from e
    if not isinstance(payload, dict):
        raise ValueError(f"{path} should hold a JSON object, got {type(payload).__name__}. Re-save the run.")
    missing = [k for k in ("kind", "config") if k not in payload]
    if missing:
        raise ValueError(
            f"{path} lacks the key(s) {missing}; a run config has 'kind', 'lstmkit_version' and 'config'. "
            "Train or save the run again."
        )
    if not isinstance(payload["kind"], str) or not isinstance(payload["config"], dict):
        raise ValueError(
            f"{path}: 'kind' must be a string and 'config' an object, got {type(payload['kind']).__name__} and "
            f"{type(payload['config']).__name__}. Re-save the run."
        )
    payload.setdefault("lstmkit_version", "unknown")
    if expected_kind is not None:
        _check_finished(run_dir, payload)
    if expected_kind is not None and payload["kind"] != expected_kind:
        raise ValueError(
            f"{run_dir} holds a {payload['kind']!r} run, not a {expected_kind!r} one; pass a run directory of that "
            "kind (in Python, lstmkit.load opens a run of any kind)."
        )
    return payload


def _check_finished(run_dir: Path, payload: Mapping[str, Any]) -> None:
    if payload.get("status") == STATUS_TRAINING:
        raise UnfinishedRunError(
            f"{run_dir} holds a {payload.get('kind')!r} run whose model has not been saved: its config.json was "
            "written when training started and is replaced when the model is saved. Wait for the training to end, "
            f"continue a run that was cut short with `lstmkit resume {run_dir}`, or save the fitted model there."
        )


def _read_safetensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    import safetensors
    import safetensors.torch

    try:
        return safetensors.torch.load_file(path, device="cpu")
    except safetensors.SafetensorError as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}). The {what} are corrupt: re-save.") from e


def read_state_dict(run_dir: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read the saved ``state_dict`` (on CPU) of a run; pass it to ``model.load_state_dict``.

    Raises:
        FileNotFoundError: if ``model.safetensors`` is missing.
        ValueError: if it is corrupt.
    """
    path = _resolve_run_dir(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the run has no saved weights (was the file moved or deleted?). Train the run again "
            "or restore the file."
        )
    return _read_safetensors(path, "weights")


def read_extra_tensors(run_dir: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read the run's ``extra_tensors`` (on CPU); an empty dict if none were saved.

    Raises:
        ValueError: if ``extra.safetensors`` is corrupt.
    """
    path = _resolve_run_dir(run_dir) / EXTRA_FILE
    return _read_safetensors(path, "extra tensors") if path.is_file() else {}


def register_kind(name: str) -> Callable[[T], T]:
    """Class decorator: register a class as the loader of runs whose ``config.json`` says ``"kind": name``.

    The class must have a ``load(path)`` classmethod (or staticmethod) that rebuilds the object from a run directory.

    A name of :data:`BUILTIN_KINDS` belongs to its lstmkit class, imported or not: registering another class under it
    is refused, as if that class were registered already.

    Raises:
        TypeError: if the class has no ``load``.
        ValueError: if ``name`` is already registered to a different class (or is a built-in kind's name).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_kind needs a non-empty string name, got {name!r}.")

    def decorator(cls: T) -> T:
        if not callable(getattr(cls, "load", None)):
            raise TypeError(
                f"{cls.__qualname__} cannot be registered as kind {name!r}: it has no load(path) classmethod. "
                "Add one that rebuilds the object from a run directory."
            )
        existing = _KINDS.get(name)
        owner = (existing.__module__, existing.__qualname__) if existing is not None else None
        if owner is None and name in BUILTIN_KINDS:
            owner = tuple(BUILTIN_KINDS[name].split(":"))
        # Re-registering the same class (a module reloaded, e.g. by autoreload) replaces the entry silently.
        if owner is not None and owner != (cls.__module__, cls.__qualname__):
            raise ValueError(
                f"Kind {name!r} is already registered to {'.'.join(owner)}; cannot "
                f"register {cls.__module__}.{cls.__qualname__} under the same name. Pick another kind name."
            )
        _KINDS[name] = cls
        return cls

    return decorator


def registered_kinds() -> list[str]:
    """The kind names known to :func:`load`, sorted: :data:`BUILTIN_KINDS` and those of :func:`register_kind`."""
    return sorted({*BUILTIN_KINDS, *_KINDS})


def _find_kind(kind: str) -> type | None:
    """The class registered for ``kind``; for a built-in kind not imported yet, import its one module first."""
    cls = _KINDS.get(kind)
    if cls is None and kind in BUILTIN_KINDS:
        module_name, _, class_name = BUILTIN_KINDS[kind].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)  # its @register_kind fills _KINDS too
    return cls


def resolve_kind(kind: str) -> type:
    """The class that loads runs of ``kind``, importing only the module that defines it (for lstmkit's own kinds).

    Importing a task module also registers what else it provides for its kind (how :func:`lstmkit.train.resume`
    resumes it, say).

    Raises:
        UnknownKindError: (a ``KeyError``) if no class is known for ``kind``; the message lists the known kinds.
    """
    cls = _find_kind(kind)
    if cls is None:
        raise UnknownKindError(f"No class is registered for kind {kind!r}. {_known_kinds_sentence()}")
    return cls


def _known_kinds_sentence() -> str:
    return (
        f"Known kinds: {registered_kinds()}. If the class is your own, import the module that defines it so that its "
        "@register_kind decorator runs, then try again."
    )


def load(path: str | os.PathLike[str]) -> Any:
    """Load a saved run: read ``config.json``, find the class registered for its ``kind``, return ``cls.load(path)``.

    Args:
        path: the run directory (or the path of its ``config.json``).

    Only the module that defines the run's kind is imported (see :data:`BUILTIN_KINDS`); nothing needs importing
    first, except the module of a kind of your own.

    Returns:
        Whatever the registered class's ``load`` returns (usually a ready-to-use model or estimator).

    Raises:
        FileNotFoundError, ValueError: see :func:`read_run_config`.
        UnfinishedRunError: (a ``ValueError``) if the run's training started but its model was never saved.
        UnknownKindError: (a ``KeyError``) if no class is registered for the saved kind; the message lists the
            known kinds.
    """
    run_dir = _resolve_run_dir(path)
    payload = read_run_config(run_dir)
    _check_finished(run_dir, payload)
    kind = payload["kind"]
    cls = _find_kind(kind)
    if cls is None:
        raise UnknownKindError(
            f"{run_dir} holds a run of kind {kind!r}, but no class is registered for it. {_known_kinds_sentence()}"
        )
    return cls.load(run_dir)
