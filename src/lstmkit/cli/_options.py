"""Options every command group shares, declared once so that they read and behave the same everywhere."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..config import ConfigError, StrictConfig

AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON last on stdout.")]
Seed = Annotated[int, typer.Option("--seed", help="Seeds every random draw: the same seed repeats the run.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted training in --out.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens as it happens.")]
Out = Annotated[Path, typer.Option("--out", help="The run directory to write.")]


# ---- the options every `train` command shares, generated onto the command from its task's config -------------------
CORE_PATHS: dict[str, str] = {
    "hidden_size": "net.hidden_size",
    "layers": "net.num_layers",
    "lr": "train.lr",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "max_minutes": "train.max_minutes",
    "seed": "train.seed",
    "device": "train.device",
}
"""Each shared option and the config field it sets. A task config has a ``net`` section with ``hidden_size`` and
``num_layers`` and a ``train`` section (a :class:`lstmkit.config.TrainConfig`)."""

_CORE_HELP = {
    "hidden_size": "Units in each recurrent layer.",
    "layers": "Stacked recurrent layers.",
    "lr": "Learning rate.",
    "epochs": "Passes over the training data.",
    "batch_size": "Sequences per optimizer step.",
    "max_minutes": "Time budget: training stops cleanly (checkpoint and result written) when it is spent.",
    "seed": "Seeds every random draw: the same seed repeats the run.",
    "device": "cpu, cuda or auto (cuda when PyTorch sees a GPU).",
}
_CORE_TYPES: dict[str, Any] = {
    "hidden_size": int, "layers": int, "lr": float, "epochs": int, "batch_size": int, "max_minutes": float, "seed": int,
    "device": str,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CoreOptions:
    """What the shared options of a ``train`` command said: ``None`` where the user gave nothing (the config's
    default then holds, declared once in its dataclass)."""

    hidden_size: int | None = None
    layers: int | None = None
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    max_minutes: float | None = None
    seed: int | None = None
    device: str | None = None
    sets: tuple[str, ...] = ()
    config_file: Path | None = None

    def overrides(self) -> dict[str, Any]:
        """The dotted config paths the options set, in the order they apply: core options, then ``--set``."""
        core = {CORE_PATHS[k]: getattr(self, k) for k in CORE_PATHS if getattr(self, k) is not None}
        return {**core, **self.set_pairs()}

    def set_pairs(self) -> dict[str, str]:
        """``--set KEY=VALUE`` as ``{KEY: VALUE}`` (the text, read by the field's type later)."""
        out: dict[str, str] = {}
        for item in self.sets:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--set takes key=value (for example --set train.lr=3e-3), got {item!r}.")
            out[key.strip()] = value.strip()
        return out

    def build(self, config_cls: type[C], given: Mapping[str, Any]) -> C:
        """The task config: its defaults < ``--config FILE`` < ``given`` (the command's own options) < the shared
        options < ``--set``.

        Args:
            config_cls: the task's config class.
            given: the command's own options and data defaults; flat names or sections, as ``from_dict`` reads them.

        Raises:
            ConfigError: on an unreadable ``--config`` file, an unknown field, a wrong type or a value out of range;
                the message names the option where one set the field.
        """
        base: dict[str, Any] = {}
        if self.config_file is not None:
            base = read_config_file(self.config_file)
            if _is_run_config(self.config_file):
                base = _fields_for(config_cls, base)
        cfg = config_cls.from_dict(_merge(config_cls, base, given))
        sets = self.set_pairs()
        for name in CORE_PATHS:  # one at a time, so that a refused value names its own option
            value = getattr(self, name)
            if value is None or CORE_PATHS[name] in sets:
                continue  # --set on the same field wins
            try:
                cfg = cfg.with_overrides({CORE_PATHS[name]: value})
            except ConfigError as e:
                raise ConfigError(f"--{name.replace('_', '-')}: {e}") from None
        return cfg.with_overrides(sets) if sets else cfg


C = TypeVar("C", bound=StrictConfig)


def _merge(config_cls: type[StrictConfig], base: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``base``, both first read into the config's sections (flat keys move into net / train)."""
    out = config_cls._upgrade(base)
    for key, value in config_cls._upgrade(given).items():
        if key in config_cls.sections() and isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _fields_for(config_cls: type[StrictConfig], doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a saved run's payload that is ``config_cls``'s fields: the payload itself, or (a run saves
    its config beside what it learned: ``{"music": {...}, "tokens": [...]}``) the entry that names the most of those
    fields, less what the run recorded beside them (resolved columns, the data's source)."""
    fields = set(config_cls.field_names())

    def known(d: dict[str, Any]) -> set[str]:
        try:
            return set(config_cls._upgrade(d)) & fields
        except ConfigError:
            return set()

    upgraded = config_cls._upgrade(doc)
    if set(upgraded) <= fields:
        return doc
    entries = [v for v in doc.values() if isinstance(v, dict) and v]
    if not entries:
        return doc
    best = max(entries, key=lambda d: len(known(d)))
    if not known(best):
        return doc
    return {k: v for k, v in config_cls._upgrade(best).items() if k in fields}


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is a run directory's config.json (``{"kind", "config", ...}``), not a file of fields."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("config"), dict) and "kind" in doc


def read_config_file(path: Path) -> dict[str, Any]:
    """A JSON file of config fields (sections nested, as a run's ``config.json`` writes them under ``"config"``).

    Raises:
        ConfigError: if the file is missing, is not JSON or does not hold an object.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file. Give a JSON file of config fields.") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"--config {path}: not a readable JSON file ({e}).") from None
    if isinstance(doc, dict) and isinstance(doc.get("config"), dict) and "kind" in doc:
        doc = doc["config"]  # a run directory's config.json: reuse that run's settings
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of config fields, got {type(doc).__name__}.")
    return doc


def train_options(config_cls: type[StrictConfig]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the shared training options to a ``train`` command, their help showing ``config_cls``'s defaults.

    The command receives them as one ``core: CoreOptions`` keyword and builds its config with
    :meth:`CoreOptions.build`: ``--hidden-size --layers --lr --epochs --batch-size --max-minutes --seed --device
    --set KEY=VALUE (repeatable) --config FILE``.
    """

    def default_of(path: str) -> Any:
        """The default a dotted path has in ``config_cls``, read from the dataclass fields (no instance needed)."""
        head, *rest = path.split(".")
        field = {f.name: f for f in dataclasses.fields(config_cls)}[head]
        node: Any = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        for part in rest:
            node = getattr(node, part)
        return node

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func, eval_str=True)
        params = [p for p in sig.parameters.values() if p.name != "core"]
        extra = []
        for name, path in CORE_PATHS.items():
            flag = "--" + name.replace("_", "-")
            shown = default_of(path)
            unset = "none: no budget" if name == "max_minutes" else "chosen at fit from the data and the budget"
            help_ = f"{_CORE_HELP[name]} (default {unset if shown is None else shown})"
            tp = Annotated[_CORE_TYPES[name] | None, typer.Option(flag, help=help_, show_default=False)]
            extra.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=tp))
        set_help = "Any config field: --set train.lr=3e-3 (repeatable; the fields of a run's config.json)."
        file_help = "A JSON file of config fields (or a run's config.json); options on the command line win."
        sets = Annotated[list[str] | None, typer.Option("--set", help=set_help)]
        cfile = Annotated[Path | None, typer.Option("--config", help=file_help)]
        extra.append(inspect.Parameter("sets", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=sets))
        extra.append(inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=cfile))
        taken = {p.name for p in params} & ({*CORE_PATHS, "sets", "config_file"})
        if taken:
            raise TypeError(f"{func.__name__} declares {sorted(taken)} itself; train_options adds them.")
        positional = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is p.POSITIONAL_OR_KEYWORD else p
                      for p in params]  # fmt: skip

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            core = CoreOptions(
                **{k: kwargs.pop(k) for k in CORE_PATHS},
                sets=tuple(kwargs.pop("sets") or ()),
                config_file=kwargs.pop("config_file"),
            )
            return func(**kwargs, core=core)

        wrapper.__signature__ = sig.replace(parameters=[*positional, *extra])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
        wrapper.config_class = config_cls  # type: ignore[attr-defined]
        return wrapper

    return decorate
