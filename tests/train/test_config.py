"""Strict config base (from_dict / to_dict / type checks) and TrainConfig validation."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import pytest

from lstmkit.config import ConfigError, StrictConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class _Inner(StrictConfig):
    width: int = 4


@dataclasses.dataclass(frozen=True)
class _Example(StrictConfig):
    name: str  # required
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[int, str] = (0, "a")
    mode: Literal["a", "b"] = "a"
    scale: float | None = None
    inner: _Inner = _Inner()


def test_train_config_defaults_round_trip_through_json() -> None:
    cfg = TrainConfig()
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    changed = TrainConfig.from_dict({"epochs": 3, "optimizer": "sgd", "momentum": 0.9, "tbptt_steps": 5})
    assert (changed.epochs, changed.optimizer, changed.momentum, changed.tbptt_steps) == (3, "sgd", 0.9, 5)
    assert TrainConfig.from_dict(changed.to_dict()) == changed


def test_train_config_is_frozen() -> None:
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.1  # type: ignore[misc]


def test_unknown_key_lists_valid_keys_and_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'lrr'") as info:
        TrainConfig.from_dict({"lrr": 0.1})
    message = str(info.value)
    assert "Valid keys are: epochs, batch_size, lr, optimizer" in message
    assert "Did you mean: 'lrr' -> 'lr'?" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lr", "fast", r"TrainConfig\.lr: expected float, got str 'fast'"),
        ("epochs", 2.5, r"TrainConfig\.epochs: expected int, got float 2\.5"),
        ("epochs", True, r"TrainConfig\.epochs: expected int, got bool True"),
        ("progress", 1, r"TrainConfig\.progress: expected bool, got int 1"),
        ("optimizer", "Adam", r"TrainConfig\.optimizer: expected one of 'adam', 'adamw', 'sgd', 'rmsprop', got 'Adam'"),
        ("clip_grad_norm", "1.0", r"TrainConfig\.clip_grad_norm: expected float \| None, got str '1\.0'"),
        ("tbptt_steps", 3.0, r"TrainConfig\.tbptt_steps: expected int \| None, got float 3\.0"),
    ],
)
def test_wrong_types_are_rejected(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TrainConfig.from_dict({key: value})


def test_int_is_accepted_for_float_and_converted() -> None:
    cfg = TrainConfig.from_dict({"lr": 1, "clip_grad_norm": 5})
    assert type(cfg.lr) is float and cfg.lr == 1.0
    assert type(cfg.clip_grad_norm) is float
    assert TrainConfig.from_dict({"clip_grad_norm": None}).clip_grad_norm is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"epochs": 0}, r"epochs must be >= 1, got 0"),
        ({"lr": -1.0}, r"lr must be a positive finite float, got -1\.0"),
        ({"momentum": 0.9}, r"momentum=0\.9 has no effect with optimizer='adam'"),
        ({"min_lr": 0.1, "lr": 0.01}, r"min_lr must be in \[0, lr=0\.01\], got 0\.1"),
        ({"tbptt_steps": 0}, r"tbptt_steps must be >= 1 or None"),
        ({"clip_grad_norm": 0.0}, r"clip_grad_norm must be a positive float or None"),
        ({"early_stopping_patience": 0}, r"early_stopping_patience must be >= 1 or None"),
        ({"gamma": 0.0}, r"gamma must be in \(0, 1\]"),
        ({"seed": -1}, r"seed must be in \[0, 2\*\*32\)"),
        ({"monitor": " "}, r"monitor must name a metric"),
        ({"average_from_epoch": 0}, r"average_from_epoch must be an epoch from 1 to epochs=10"),
        ({"average_from_epoch": 3, "epochs": 2}, r"average_from_epoch must be an epoch from 1 to epochs=2"),
        ({"average_from_epoch": 2, "early_stopping_patience": 3}, r"both choose the final weights"),
    ],
)
def test_validate_rejects_out_of_range_values(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TrainConfig.from_dict(changes)
    with pytest.raises(ConfigError, match=expected):  # direct construction checks too
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_replace_checks_like_construction() -> None:
    cfg = TrainConfig().replace(epochs=2)
    assert cfg.epochs == 2
    with pytest.raises(ConfigError, match="unknown field"):
        cfg.replace(epoch=2)
    with pytest.raises(ConfigError, match="expected int"):
        cfg.replace(epochs="2")


def test_strict_config_handles_tuple_literal_optional_and_nested() -> None:
    cfg = _Example.from_dict({"name": "x", "sizes": [3, 4, 5], "pair": [1, "b"], "scale": 2, "inner": {"width": 8}})
    assert cfg.sizes == (3, 4, 5) and cfg.pair == (1, "b") and cfg.scale == 2.0 and cfg.inner == _Inner(8)
    assert cfg.to_dict() == {
        "name": "x",
        "sizes": [3, 4, 5],
        "pair": [1, "b"],
        "mode": "a",
        "scale": 2.0,
        "inner": {"width": 8},
    }
    assert _Example.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        ({"name": "x", "sizes": [1, "2"]}, r"_Example\.sizes\[1\]: expected int, got str '2'"),
        ({"name": "x", "sizes": 3}, r"_Example\.sizes: expected tuple\[int, \.\.\.\], got int 3"),
        ({"name": "x", "pair": [1, "b", 2]}, r"_Example\.pair: expected tuple\[int, str\] with 2 items, got 3"),
        ({"name": "x", "mode": "c"}, r"_Example\.mode: expected one of 'a', 'b', got 'c'"),
        ({"name": "x", "inner": {"depth": 1}}, r"_Inner got unknown key\(s\) 'depth'\. Valid keys are: width\."),
        ({"sizes": [1]}, r"_Example is missing required key\(s\) 'name'"),
    ],
)
def test_strict_config_error_messages(d: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        _Example.from_dict(d)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        TrainConfig.from_dict([("epochs", 1)])  # type: ignore[arg-type]
