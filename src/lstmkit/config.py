"""Frozen, typed configuration dataclasses with strict ``from_dict`` / ``to_dict``.

Config is data: every config is a frozen dataclass whose fields carry types and reasoned defaults. Building one,
directly or through :meth:`StrictConfig.from_dict`, checks every field against its annotation and then runs
``validate()``, so an invalid config cannot exist. Unknown keys and wrong types are errors, never silently ignored.

Supported field annotations: ``bool``, ``int``, ``float`` (an ``int`` is accepted and converted), ``str``, ``None``,
``X | None`` / ``Optional[X]`` / other unions, ``Literal[...]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``,
``dict[str, X]``, ``Any`` and nested :class:`StrictConfig` subclasses (given as an instance or a dict).

Example:
    >>> cfg = TrainConfig.from_dict({"epochs": 3, "lr": 0.01})
    >>> cfg.epochs, cfg.optimizer
    (3, 'adam')
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

__all__ = ["ConfigError", "StrictConfig", "TrainConfig", "parse_value"]


class ConfigError(ValueError):
    """A config got an unknown key, a value of the wrong type, or a value out of range."""


def _type_name(tp: Any) -> str:
    """A short, readable name for a type annotation (``float``, ``int | None``, ``one of 'a', 'b'``)."""
    if tp is type(None) or tp is None:
        return "None"
    if tp is Any:
        return "any value"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{_type_name(args[0])}, ...]"
        return "tuple[" + ", ".join(_type_name(a) for a in args) + "]"
    if origin in (list, dict):
        return f"{origin.__name__}[" + ", ".join(_type_name(a) for a in args) + "]"
    return getattr(tp, "__name__", repr(tp))


def _check(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` and return it normalised (int -> float, list -> tuple, dict -> config).

    Raises:
        ConfigError: if ``value`` does not match ``tp``; the message names ``where``, the expected type and the value.
    """

    def fail() -> ConfigError:
        return ConfigError(
            f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}. "
            f"Pass a value of type {_type_name(tp)}."
        )

    if tp is Any:
        return value
    if tp is None or tp is type(None):
        if value is None:
            return None
        raise fail()
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        # Compare type as well as value, so True does not pass for Literal[1] and 1 does not pass for Literal[True].
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(
            f"{where}: expected one of {', '.join(repr(a) for a in args)}, got {value!r}. "
            "Pick one of the listed values."
        )
    if origin is typing.Union or origin is types.UnionType:
        for arm in args:
            try:
                return _check(value, arm, where)
            except ConfigError:
                continue
        raise fail()
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise fail()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(
                f"{where}: expected {_type_name(tp)} with {len(args)} items, got {len(value)} items {value!r}. "
                f"Pass exactly {len(args)} items."
            )
        return tuple(_check(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is list:
        if not isinstance(value, (tuple, list)):
            raise fail()
        return [_check(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail()
        if not args:
            return dict(value)
        return {_check(k, args[0], f"{where} key"): _check(v, args[1], f"{where}[{k!r}]") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        # bool is a subclass of int in Python; a config that says int means a count, not a flag.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail()
    if isinstance(tp, type) and issubclass(tp, StrictConfig):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return tp.from_dict(value)
        raise fail()
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise fail()
    raise TypeError(
        f"{where}: the annotation {tp!r} is not supported by StrictConfig. "
        "Use one of the types listed in the lstmkit.config module docstring."
    )


def _to_plain(value: Any) -> Any:
    """Convert a config value to plain JSON-friendly Python (nested configs to dicts, tuples to lists)."""
    if isinstance(value, StrictConfig):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class StrictConfig:
    """Base for frozen, typed configs: type-checked on construction, strict ``from_dict``, plain ``to_dict``.

    Subclasses are ``@dataclasses.dataclass(frozen=True)`` and override :meth:`validate` to check ranges and
    combinations; it runs after the type checks every time an instance is built.

    A config may nest others (a task's ``net:`` and ``train:`` sections). :meth:`from_dict` reads the flat layout that
    older versions saved (``{"hidden_size": 64, "epochs": 300}``) into those sections, and :data:`RENAMED` maps a
    field's former name to its current one, so every saved run stays loadable. :meth:`with_overrides` sets fields by
    dotted path (``{"train.lr": 3e-3}``), which is what ``--set`` and ``--config`` on the command line do.
    """

    # Former field name -> (current name, converter of the old value or None). Read by from_dict only.
    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            checked = _check(value, hints[f.name], f"{type(self).__name__}.{f.name}")
            if checked is not value:
                object.__setattr__(self, f.name, checked)  # frozen: normalise in place (int -> float, list -> tuple)
        self.validate()

    def validate(self) -> None:
        """Check ranges and combinations of fields. Subclasses override; the base accepts everything.

        Raises:
            ConfigError: with what is wrong, what was expected and how to fix it.
        """

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of this config's fields, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Build a config from a mapping, rejecting unknown keys and values of the wrong type.

        Missing keys take their defaults. Lists are accepted for tuple fields and ints for float fields (JSON has
        neither tuples nor a float/int split), and nested configs may be given as dicts.

        Args:
            d: field name -> value.

        Returns:
            The validated config.

        Raises:
            ConfigError: on a non-mapping input, unknown keys (the message lists the valid ones), missing required
                keys, wrong types or values that fail ``validate()``.
        """
        if isinstance(d, Mapping):
            d = cls._upgrade(d)
        if not isinstance(d, Mapping):
            raise ConfigError(
                f"{cls.__name__}.from_dict expected a mapping of field name -> value, got {type(d).__name__}. "
                f"Pass a dict such as {{{cls.field_names()[0]!r}: ...}}."
                if cls.field_names()
                else f"{cls.__name__}.from_dict expected a mapping, got {type(d).__name__}."
            )
        valid = cls.field_names()
        unknown = [k for k in d if k not in valid]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(str(k), valid, n=1)
                if close:
                    hints.append(f"{k!r} -> {close[0]!r}?")
            suggestion = f" Did you mean: {', '.join(hints)}" if hints else ""
            raise ConfigError(
                f"{cls.__name__} got unknown key(s) {', '.join(repr(k) for k in unknown)}. "
                f"Valid keys are: {', '.join(valid)}.{suggestion} Remove or rename the unknown key(s)."
            )
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in d
        ]
        if required:
            raise ConfigError(
                f"{cls.__name__} is missing required key(s) {', '.join(repr(k) for k in required)}. Add them."
            )
        return cls(**d)

    @classmethod
    def sections(cls) -> dict[str, type[StrictConfig]]:
        """The fields that hold a nested config (``{"net": ForecastNet, "train": ForecastTrain}``), by name."""
        hints = typing.get_type_hints(cls)
        return {
            f.name: hints[f.name]
            for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and issubclass(hints[f.name], StrictConfig)
        }

    @classmethod
    def _upgrade(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """Read a saved layout into the current one: renamed fields, and flat keys into the one section that owns them.

        Raises:
            ConfigError: when a flat key and its section both give a value (which one was meant is unclear).
        """
        d = dict(d)
        for old, (new, convert) in cls.RENAMED.items():
            if old in d and new not in d:
                value = d.pop(old)
                d[new] = convert(value) if convert is not None else value
        sections = cls.sections()
        if not sections:
            return d
        fields = set(cls.field_names())
        for key in [k for k in d if k not in fields]:
            owners = [n for n, sub in sections.items() if key in sub.field_names() or key in sub.RENAMED]
            if len(owners) != 1:
                continue  # unknown everywhere (from_dict says so), or ambiguous: left for the unknown-key message
            name = owners[0]
            section = d.get(name, {})
            section = section.to_dict() if isinstance(section, StrictConfig) else dict(section)
            if key in section:
                raise ConfigError(
                    f"{cls.__name__}: {key!r} is given both at the top level and in {name!r}. Keep only {name}.{key}."
                )
            section[key] = d.pop(key)
            d[name] = section
        return d

    @classmethod
    def paths(cls) -> dict[str, Any]:
        """Every settable field by dotted path (``"train.lr"``), with its type annotation; sections are walked."""
        hints = typing.get_type_hints(cls)
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if isinstance(tp, type) and issubclass(tp, StrictConfig):
                out.update({f"{f.name}.{k}": v for k, v in tp.paths().items()})
            else:
                out[f.name] = tp
        return out

    def with_overrides(self, changes: Mapping[str, Any]) -> Self:
        """A copy with fields set by dotted path: ``cfg.with_overrides({"train.lr": 3e-3, "net.hidden_size": 32})``.

        A value given as text (from ``--set key=value``) is read as its field's type: ``3e-3``, ``true``, ``none``,
        ``[0.1, 0.5]`` or ``0.1,0.5`` for a tuple; anything else stays text.

        Raises:
            ConfigError: on an unknown path (with the closest valid ones), a wrong type or a value out of range.
        """
        paths = self.paths()
        d = self.to_dict()
        for key, value in changes.items():
            if key not in paths:
                close = difflib.get_close_matches(key, list(paths), n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"{type(self).__name__} has no field {key!r}.{hint} Settable fields: {', '.join(paths)}."
                )
            if isinstance(value, str):
                value = parse_value(value, paths[key])
            *parents, leaf = key.split(".")
            node = d
            for p in parents:
                node = node[p]
            node[leaf] = _to_plain(value)
        return type(self).from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a plain dict (tuples become lists, nested configs dicts): ready for ``json.dumps``."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied, type-checked and validated like a new config.

        Raises:
            ConfigError: on unknown field names, wrong types or invalid values.
        """
        unknown = [k for k in changes if k not in self.field_names()]
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}.replace got unknown field(s) {', '.join(map(repr, unknown))}. "
                f"Valid fields are: {', '.join(self.field_names())}."
            )
        return dataclasses.replace(self, **changes)


def parse_value(text: str, tp: Any) -> Any:
    """Read ``text`` (a value typed on the command line) as annotation ``tp`` wants it; the check comes later.

    JSON first (``3e-3``, ``true``, ``null``, ``[1, 2]``), then ``none`` for None and comma lists for tuples and
    lists; a field that takes text keeps the text as typed (``--set time=2020`` is the column "2020").
    """
    import json

    wants_text = (
        tp is str
        or str in typing.get_args(tp)
        or (typing.get_origin(tp) is Literal and any(isinstance(a, str) for a in typing.get_args(tp)))
    )
    wants_seq = typing.get_origin(tp) in (tuple, list) or any(
        typing.get_origin(a) in (tuple, list) for a in typing.get_args(tp)
    )
    if text.strip().lower() in ("none", "null"):
        choices = [a for t in (tp, *typing.get_args(tp)) if typing.get_origin(t) is Literal for a in typing.get_args(t)]
        return text.strip() if text.strip() in choices else None  # a choice named "none" is that choice
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, str) and wants_seq:
        return [parse_value(part.strip(), Any) for part in text.split(",") if part.strip()]
    if wants_text and not isinstance(value, str) and not (wants_seq and isinstance(value, list)):
        try:
            _check(value, tp, "value")
        except ConfigError:
            return text
    return value


def _require(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class TrainConfig(StrictConfig):
    """How :class:`lstmkit.train.Trainer` trains a model: optimiser, schedule, BPTT, clipping, stopping, seeding.

    Steps are optimizer steps: with truncated BPTT one batch gives ``ceil(T / tbptt_steps)`` of them.
    """

    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {
        "max_seconds": ("max_minutes", lambda s: None if s is None else s / 60),  # before 0.3: one name per idea
    }

    epochs: int = 10
    # The Trainer takes batches as given; task modules read batch_size when they build their loaders.
    batch_size: int = 32
    lr: float = 1e-3  # Adam's default step size (Kingma & Ba, 2015); a safe start for LSTMs with adam/adamw.
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    weight_decay: float = 0.0  # Off: small recurrent models rarely need it; adamw decouples it when you do.
    momentum: float = 0.0  # Used by "sgd" and "rmsprop" only; must stay 0 for "adam"/"adamw" (they use betas).
    # Exploding gradients are the classic failure of BPTT (Pascanu et al., 2013); clipping the global norm at 1.0 is a
    # cheap guard that rarely binds on a healthy run (nanoGPT uses the same bound). None turns clipping off.
    clip_grad_norm: float | None = 1.0
    schedule: Literal["constant", "cosine", "step", "plateau"] = "constant"
    warmup_steps: int = 0  # Linear warm-up from lr / warmup_steps to lr over this many steps, before any schedule.
    # Cosine: steps (after warm-up) to decay from lr to min_lr. None: all remaining steps, from max_steps if set,
    # else epochs x steps per epoch (needs train_data with a len()).
    decay_steps: int | None = None
    min_lr: float = 0.0  # Floor for "cosine" (its end value) and "plateau".
    step_size: int = 1000  # "step": multiply lr by gamma every step_size steps (counted after warm-up).
    gamma: float = 0.1  # Decay factor for "step" and "plateau"; 0.1 is torch's StepLR / ReduceLROnPlateau default.
    plateau_patience: int = 3  # "plateau": epochs without improvement of `monitor` before lr is multiplied by gamma.
    tbptt_steps: int | None = None  # None: full BPTT over each batch; k: truncated BPTT in k-step chunks.
    # Char-rnn style: consecutive batches continue the same streams, so the (detached) state flows across batches;
    # reset at each epoch and whenever the batch size changes.
    carry_state_across_batches: bool = False
    early_stopping_patience: int | None = None  # None: off; n: stop after n epochs without improvement of `monitor`.
    monitor: str = "val_loss"  # Metric watched by early stopping and the "plateau" schedule.
    monitor_mode: Literal["min", "max"] = "min"  # "min" for losses, "max" for accuracies.
    seed: int = 0  # Seeds torch, numpy and random at the start of fit(), so runs repeat bit for bit on CPU.
    max_steps: int | None = None  # Cap on total optimizer steps; training stops when reached, even mid-epoch.
    # Wall-clock budget in minutes for one fit() call, checked after each optimizer step (a resumed fit starts a new
    # budget). For "train for 30 minutes"; runs stopped by time do not repeat across machines: max_steps does.
    max_minutes: float | None = None
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # "auto": CUDA when PyTorch sees a GPU, else the CPU.
    log_every_steps: int | None = None  # None: metrics once per epoch; n: also a row every n steps to steps.csv.
    progress: bool = True  # a live progress bar on a terminal; elsewhere (logs, pipes) one line per epoch on stderr
    # "bf16": forward passes (training and evaluation) under torch.autocast with bfloat16, on CPUs with AVX-512 BF16
    # / AMX and on GPUs; weights, gradients and the optimizer stay float32. "float32": no autocast.
    precision: Literal["float32", "bf16"] = "float32"
    # Crash-safe checkpoints in <run_dir>/checkpoints (only when the Trainer has a run_dir): one at the start, one at
    # every epoch end, and one every checkpoint_every_steps optimizer steps if set. Each holds what an exact resume
    # needs (weights, optimizer, schedule, RNGs, data position, carried TBPTT state).
    checkpoint: bool = True
    checkpoint_every_steps: int | None = None
    keep_checkpoints: int = 2  # The newest N regular checkpoints are kept, plus the best by `monitor`.
    # A non-finite loss or gradient: "raise" stops with where it arose (module, time step); "skip" drops that step's
    # update; "rollback" restores weights and optimizer from the last checkpoint and goes on with the next batch
    # (the batches in between are skipped, as PaLM did for loss spikes).
    on_nonfinite: Literal["raise", "skip", "rollback"] = "raise"
    max_nonfinite_steps: int = 10  # Give up after this many non-finite steps in a row, whatever on_nonfinite says.
    # Stochastic weight averaging (Izmailov et al., 2018; dense, as SWAD, Cha et al., 2021): from the start of this
    # epoch (1-based) on, an equal-weight running mean of the weights after every optimizer step is kept
    # (torch.optim.swa_utils.AveragedModel), and the model ends fit() with it. SWAD reports flatter minima that read
    # unseen domains better; on lstmkit's handwriting stand-in fonts it did not help (docs/results/handwriting.md).
    # Validation after each epoch scores the current (not the averaged) weights. None: off.
    average_from_epoch: int | None = None

    def validate(self) -> None:
        """Check ranges and combinations.

        Raises:
            ConfigError: naming the field, the value received and what is allowed.
        """
        _require(self.epochs >= 1, f"TrainConfig.epochs must be >= 1, got {self.epochs}. Set epochs to a positive int.")
        _require(
            self.max_minutes is None or (math.isfinite(self.max_minutes) and self.max_minutes > 0),
            f"TrainConfig.max_minutes must be a positive number of minutes or None (no budget), got "
            f"{self.max_minutes}.",
        )
        _require(
            self.batch_size >= 1,
            f"TrainConfig.batch_size must be >= 1, got {self.batch_size}. Set batch_size to a positive int.",
        )
        _require(
            math.isfinite(self.lr) and self.lr > 0,
            f"TrainConfig.lr must be a positive finite float, got {self.lr}. Try lr=1e-3.",
        )
        _require(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay}. Use 0.0 to turn it off.",
        )
        _require(
            0.0 <= self.momentum < 1.0,
            f"TrainConfig.momentum must be in [0, 1), got {self.momentum}. Typical values are 0.0 or 0.9.",
        )
        _require(
            self.momentum == 0.0 or self.optimizer in ("sgd", "rmsprop"),
            f"TrainConfig.momentum={self.momentum} has no effect with optimizer={self.optimizer!r}: only 'sgd' and "
            "'rmsprop' use it. Set momentum=0.0, or choose optimizer='sgd' or 'rmsprop'.",
        )
        _require(
            self.clip_grad_norm is None or (math.isfinite(self.clip_grad_norm) and self.clip_grad_norm > 0),
            f"TrainConfig.clip_grad_norm must be a positive float or None (no clipping), got {self.clip_grad_norm}.",
        )
        _require(
            self.warmup_steps >= 0,
            f"TrainConfig.warmup_steps must be >= 0, got {self.warmup_steps}. Use 0 for no warm-up.",
        )
        _require(
            self.decay_steps is None or self.decay_steps >= 1,
            f"TrainConfig.decay_steps must be >= 1 or None (infer from the run length), got {self.decay_steps}.",
        )
        _require(
            0.0 <= self.min_lr <= self.lr,
            f"TrainConfig.min_lr must be in [0, lr={self.lr}], got {self.min_lr}. Lower min_lr or raise lr.",
        )
        _require(
            self.step_size >= 1,
            f"TrainConfig.step_size must be >= 1, got {self.step_size}. It counts optimizer steps between decays.",
        )
        _require(
            0.0 < self.gamma <= 1.0,
            f"TrainConfig.gamma must be in (0, 1], got {self.gamma}. It multiplies lr at each decay; try 0.1 or 0.5.",
        )
        _require(
            self.plateau_patience >= 0,
            f"TrainConfig.plateau_patience must be >= 0, got {self.plateau_patience}.",
        )
        _require(
            self.tbptt_steps is None or self.tbptt_steps >= 1,
            f"TrainConfig.tbptt_steps must be >= 1 or None (full BPTT), got {self.tbptt_steps}.",
        )
        _require(
            self.early_stopping_patience is None or self.early_stopping_patience >= 1,
            f"TrainConfig.early_stopping_patience must be >= 1 or None (off), got {self.early_stopping_patience}.",
        )
        _require(
            bool(self.monitor.strip()),
            "TrainConfig.monitor must name a metric, got an empty string. Use e.g. 'val_loss' or 'train_loss'.",
        )
        _require(
            0 <= self.seed < 2**32,
            f"TrainConfig.seed must be in [0, 2**32), got {self.seed} (numpy's seed range). Pick a smaller seed.",
        )
        _require(
            self.max_steps is None or self.max_steps >= 1,
            f"TrainConfig.max_steps must be >= 1 or None (no cap), got {self.max_steps}.",
        )
        _require(
            self.log_every_steps is None or self.log_every_steps >= 1,
            f"TrainConfig.log_every_steps must be >= 1 or None (per-epoch rows only), got {self.log_every_steps}.",
        )
        _require(
            self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
            f"TrainConfig.checkpoint_every_steps must be >= 1 or None (epoch ends only), got "
            f"{self.checkpoint_every_steps}.",
        )
        _require(
            self.keep_checkpoints >= 1,
            f"TrainConfig.keep_checkpoints must be >= 1, got {self.keep_checkpoints}. Set checkpoint=False to write "
            "none.",
        )
        _require(
            self.max_nonfinite_steps >= 1,
            f"TrainConfig.max_nonfinite_steps must be >= 1, got {self.max_nonfinite_steps}.",
        )
        _require(
            self.average_from_epoch is None or 1 <= self.average_from_epoch <= self.epochs,
            f"TrainConfig.average_from_epoch must be an epoch from 1 to epochs={self.epochs}, or None (off), got "
            f"{self.average_from_epoch}.",
        )
        _require(
            self.average_from_epoch is None or self.early_stopping_patience is None,
            "TrainConfig.average_from_epoch and early_stopping_patience both choose the final weights (the average, "
            "or the best epoch's); set one of them to None.",
        )
